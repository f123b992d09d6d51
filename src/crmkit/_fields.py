"""Field makers for records: one converter + validator + schema kind per field type.

Converters only coerce what is unambiguous (``"won"`` to ``OpportunityStatus.WON``,
``12`` to ``Decimal(12)``, an aware datetime to UTC) and otherwise leave the value alone;
validators then raise :class:`~crmkit.errors.ValidationError` naming the record, field
and value. Each field records its *kind* in ``metadata["kind"]``; criteria, stores,
numpy columns and CSV import all read the kind from there (see ``_schema``).

The limits every store keeps alike are checked here, once, for every backend: whole
numbers fit in 64 bits, floats are finite, text is valid Unicode without NUL, and JSON
documents nest at most :data:`MAX_JSON_DEPTH` levels (see :func:`check_json`).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import attrs

from crmkit._repr import short_repr
from crmkit._time import to_utc, zone_named
from crmkit.errors import ValidationError

Scalar = str | int | float | bool | None
"""The types a custom field can hold."""

_CUSTOM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_MONEY_PLACES = 16383  # PostgreSQL's numeric keeps at most this many decimal places
MAX_JSON_DEPTH = 100
"""How deep a JSON document (a saved state, a JSON field) may nest lists and objects."""


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or ``None``.

    >>> text_problem("café"), text_problem(chr(0xD800))
    (None, 'must be valid Unicode text (it holds a lone surrogate)')
    """
    if "\x00" in value:
        return "must not contain NUL characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def scalar_problem(value: Any) -> str | None:
    """Why a JSON scalar cannot be kept alike by every store, or ``None``.

    Whole numbers must fit in 64 bits, floats must be finite (NaN and infinity are
    refused), and text must be valid Unicode without NUL.

    >>> scalar_problem(2**63)
    'must fit in a 64-bit integer (-2**63 to 2**63-1)'
    >>> scalar_problem(float("nan")), scalar_problem(7)
    ('must be finite (not NaN or infinity)', None)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return "must fit in a 64-bit integer (-2**63 to 2**63-1)"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be finite (not NaN or infinity)"
    if isinstance(value, str):
        return text_problem(value)
    return None


def check_json(
    record: str,
    field: str | None,
    value: Any,
    *,
    record_id: str | None = None,
    max_depth: int = MAX_JSON_DEPTH,
) -> None:
    """Refuse a document that some store could not keep and read back equal.

    A document is ``None``, ``bool``, ``int``, ``float``, ``str``, lists or tuples of
    documents, and dicts with text keys, nested at most ``max_depth`` levels; its
    scalars pass :func:`scalar_problem`. Anything else is a
    :class:`~crmkit.errors.ValidationError` naming ``record``, ``field`` and the value.
    Stores call it in ``save_state`` so every backend refuses the same documents.

    >>> check_json("State", "pool", {"next": [1, 2.5, "x", None, True]})
    >>> deep: list[object] = []
    >>> for _ in range(5_000):
    ...     deep = [deep]
    >>> check_json("State", "pool", deep)
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: State.pool = [[[[[[[[[...]]]]]]]]]: nests deeper than 100 ...
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                raise ValidationError(
                    record,
                    field,
                    value,
                    f"nests deeper than {max_depth} levels; flatten the document",
                    record_id=record_id,
                )
            if isinstance(item, dict):
                for key, entry in item.items():
                    if not isinstance(key, str):
                        raise ValidationError(
                            record,
                            field,
                            value,
                            f"object keys must be text, not {type(key).__name__}",
                            record_id=record_id,
                        )
                    problem = text_problem(key)
                    if problem is not None:
                        raise ValidationError(
                            record, field, key, f"an object key {problem}", record_id=record_id
                        )
                    stack.append((entry, depth + 1))
            else:
                stack.extend((entry, depth + 1) for entry in item)
            continue
        if item is not None and not isinstance(item, (str, int, float)):
            raise ValidationError(
                record,
                field,
                item,
                f"is a {type(item).__name__}; a JSON document holds only text, numbers, "
                "true/false, null, lists and objects",
                record_id=record_id,
            )
        problem = scalar_problem(item)
        if problem is not None:
            raise ValidationError(record, field, item, problem, record_id=record_id)


#: validators the compiled ``__init__`` may check inline, with the field maker's
#: parameters (see :func:`compile_init`)
_FAST: dict[Callable[..., Any], tuple[Any, ...]] = {}


#: ``(kind, minimum, maximum, optional)`` of every number validator, for the column-wise
#: checks of ``store._columnar``
NUMBER_SPECS: dict[Callable[..., Any], tuple[str, float | None, float | None, bool]] = {}


def fail(inst: Any, attribute: attrs.Attribute[Any], value: Any, reason: str) -> NoReturn:
    raise ValidationError(
        type(inst).__name__,
        attribute.name,
        value,
        reason,
        record_id=getattr(inst, "id", None) if attribute.name != "id" else None,
    )


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def check_state(name: Any, data: Any) -> None:
    """Refuse a ``save_state(name, data)`` that some store could not keep alike.

    ``name`` must be text (valid Unicode, no NUL) and ``data`` a dict that passes
    :func:`check_json`: at most :data:`MAX_JSON_DEPTH` levels deep, 64-bit ints, finite
    floats. Every store calls it first, so all refuse the same documents with a
    :class:`~crmkit.errors.ValidationError` (record ``"State"``, field ``name``).

    >>> check_state("crmkit.routing.Lead.pool", {"next": 3, "waiting": ["r1", "r2"]})
    >>> check_state("pool", {"n": float("nan")})
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: State.pool = nan: must be finite (not NaN or infinity)
    """
    if not isinstance(name, str) or not name:
        raise ValidationError("State", None, name, "the state name must be non-empty text")
    problem = text_problem(name)
    if problem is not None:
        raise ValidationError("State", None, name, f"the state name {problem}")
    if not isinstance(data, Mapping):
        raise ValidationError("State", name, data, "must be a mapping (a JSON object)")
    check_json("State", name, dict(data))


def _check_text(required: bool) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            if required:
                fail(inst, attribute, value, "is required and must not be empty")
            return
        if not isinstance(value, str):
            fail(inst, attribute, value, f"must be a string, not {type(value).__name__}")
        problem = text_problem(value)
        if problem is not None:
            fail(inst, attribute, value, problem)

    _FAST[check] = ("text", required)
    return check


def record_id() -> Any:
    """The required string id of a record."""
    return attrs.field(
        converter=_blank_to_none,
        validator=_check_text(required=True),
        metadata={"kind": "text"},
    )


def text(*, required: bool = False, default: str | None = None) -> Any:
    """A text field; surrounding blanks are stripped and empty text is ``None``.

    A field with a text ``default`` never holds ``None``.
    """
    if required:
        return attrs.field(
            converter=_blank_to_none,
            validator=_check_text(required=True),
            metadata={"kind": "text"},
        )
    return attrs.field(
        default=default,
        converter=_blank_to_none,
        validator=_check_text(required=default is not None),
        metadata={"kind": "text"},
    )


def choice(enum_type: type[enum.Enum], *, default: Any = attrs.NOTHING) -> Any:
    """An enum field that also accepts the enum's string value."""

    def convert(value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, enum_type):
            try:
                return enum_type(value.strip().lower())
            except ValueError:
                return value
        return value

    allowed = ", ".join(str(m.value) for m in enum_type)

    optional = default is None

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, enum_type):
            fail(inst, attribute, value, f"must be one of {allowed}")

    _FAST[check] = ("enum", enum_type, optional)

    return attrs.field(
        default=default,
        converter=convert,
        validator=check,
        metadata={"kind": "enum", "enum": enum_type},
    )


def _number_check(
    kind: str, minimum: float | None, maximum: float | None, optional: bool
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            if not optional:
                fail(inst, attribute, value, "is required")
            return
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                fail(inst, attribute, value, "must be a whole number")
            if not INT64_MIN <= value <= INT64_MAX:
                fail(inst, attribute, value, "must fit in a 64-bit integer (-2**63 to 2**63-1)")
        elif kind == "money":
            if not isinstance(value, Decimal) or not value.is_finite():
                fail(inst, attribute, value, "must be a finite decimal amount")
            if not math.isfinite(float(value)):  # criteria and columns read it as float64
                fail(inst, attribute, value, "is too large (at most about 1.8e308)")
            if value.as_tuple().exponent < -_MONEY_PLACES:  # type: ignore[operator]
                fail(inst, attribute, value, f"has more than {_MONEY_PLACES} decimal places")
        elif isinstance(value, int) and not isinstance(value, bool):  # too large for a float
            fail(inst, attribute, value, "is too large for a float (at most about 1.8e308)")
        elif isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value):
            fail(inst, attribute, value, "must be a finite number (not NaN or infinity)")
        if minimum is not None and value < minimum:
            fail(inst, attribute, value, f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            fail(inst, attribute, value, f"must be <= {maximum}")

    NUMBER_SPECS[check] = (kind, minimum, maximum, optional)
    if kind == "int":
        low = INT64_MIN if minimum is None else max(int(minimum), INT64_MIN)
        high = INT64_MAX if maximum is None else min(int(maximum), INT64_MAX)
        _FAST[check] = ("int", low, high, optional)
    elif kind == "float":
        low_f = -math.inf if minimum is None else minimum
        high_f = math.inf if maximum is None else maximum
        _FAST[check] = ("float", low_f, high_f, optional)
    elif kind == "money" and maximum is None:
        _FAST[check] = ("money", -math.inf if minimum is None else minimum, optional)
    return check


def _to_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and value.adjusted() < 19  # Decimal("1e999999999") would take a billion digits
        and value == value.to_integral_value()
    ):
        return int(value)
    return value


def _to_float(value: Any) -> Any:
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        try:
            return float(value)
        except (OverflowError, ValueError):  # an int beyond float64, a signalling NaN
            return value
    return value


def _to_money(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            return value
    return value


def integer(*, default: Any = None, minimum: int | None = 0, maximum: int | None = None) -> Any:
    """An optional whole number (``None`` when ``default`` is ``None``)."""
    return attrs.field(
        default=default,
        converter=_to_int,
        validator=_number_check("int", minimum, maximum, optional=default is None),
        metadata={"kind": "int"},
    )


def number(
    *, default: Any = None, minimum: float | None = None, maximum: float | None = None
) -> Any:
    """A finite float (ints are accepted and converted)."""
    return attrs.field(
        default=default,
        converter=_to_float,
        validator=_number_check("float", minimum, maximum, optional=default is None),
        metadata={"kind": "float", "minimum": minimum},
    )


def money(*, default: Any = None, minimum: float | None = 0) -> Any:
    """A ``Decimal`` amount; ints, floats and numeric strings are converted."""
    return attrs.field(
        default=default,
        converter=_to_money,
        validator=_number_check("money", minimum, None, optional=default is None),
        metadata={"kind": "money"},
    )


def flag(*, default: bool) -> Any:
    """A ``bool``."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, bool):
            fail(inst, attribute, value, "must be True or False")

    _FAST[check] = ("bool",)
    return attrs.field(default=default, validator=check, metadata={"kind": "bool"})


def _to_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        return to_utc(value)
    return value


def moment(*, required: bool = False) -> Any:
    """A timezone-aware datetime, stored in UTC; a naive datetime is refused.

    An instant past the end of the calendar in UTC (``9999-12-31T23:00-05:00``, a common
    "no end" value) is clamped to the last representable instant (see ``_time.to_utc``).
    """

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            if required:
                fail(inst, attribute, value, "is required (a timezone-aware datetime)")
            return
        if not isinstance(value, datetime):
            fail(inst, attribute, value, "must be a datetime")
        if value.tzinfo is None:
            fail(
                inst,
                attribute,
                value,
                "must be timezone-aware; add tzinfo=timezone.utc or a ZoneInfo",
            )

    _FAST[check] = ("moment", required)
    if required:
        return attrs.field(converter=_to_utc, validator=check, metadata={"kind": "datetime"})
    return attrs.field(
        default=None, converter=_to_utc, validator=check, metadata={"kind": "datetime"}
    )


def day() -> Any:
    """An optional calendar date."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, datetime) or not isinstance(value, date):
            fail(inst, attribute, value, "must be a date (not a datetime)")

    return attrs.field(default=None, validator=check, metadata={"kind": "date"})


def _to_tags(value: Any) -> Any:
    if isinstance(value, str):
        value = (value,)  # one tag, stripped like the others ("" is none)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [v.strip() if isinstance(v, str) else v for v in value]
        if all(isinstance(v, str) for v in items):
            return tuple(sorted({v for v in items if v}))
    return value


def tags() -> Any:
    """A sorted, duplicate-free tuple of non-empty strings (skills, team ids ...)."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
            fail(inst, attribute, value, "must be a list of strings")
        for item in value:
            problem = text_problem(item)
            if problem is not None:
                fail(inst, attribute, item, problem)

    return attrs.field(
        factory=tuple, converter=_to_tags, validator=check, metadata={"kind": "tags"}
    )


def zone(*, default: str = "UTC") -> Any:
    """An IANA time zone name, checked against the tz database."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str):
            fail(inst, attribute, value, "must be an IANA time zone name such as 'Europe/Paris'")
        if zone_named(value) is None:
            fail(inst, attribute, value, "is not a known IANA time zone such as 'Europe/Paris'")

    return attrs.field(default=default, validator=check, metadata={"kind": "text"})


def _to_custom(value: Any) -> Any:
    if isinstance(value, Mapping):
        cleaned = {k: _blank_to_none(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None}
    return value


#: record type -> checker of its declared custom fields (see ``crmkit.registry``); the
#: ``custom`` validator and the stores' write checks call it for types that have one
CUSTOM_CHECKS: dict[type[Any], Callable[[Any, dict[str, Any], bool], None]] = {}


def custom() -> Any:
    """User-defined fields: names are identifiers, values are scalars.

    Fields declared with :func:`crmkit.registry.declare_custom_field` are checked (and
    defaults filled in) too.

    Empty text and ``None`` values are dropped (a custom field is either present with a
    value or absent); whole numbers must fit in 64 bits, floats must be finite and text
    valid Unicode (see ``scalar_problem``), so a custom value means the same in a
    record, a numpy column and a row of any store.
    """

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, dict):
            fail(inst, attribute, value, "must be a mapping of field name to value")
        declared = CUSTOM_CHECKS.get(type(inst))
        if declared is not None:  # first: it turns declared money and enums into scalars
            declared(inst, value, True)
        for key, item in value.items():
            if not isinstance(key, str) or not _CUSTOM_KEY.match(key):
                fail(inst, attribute, key, "custom field names must be identifiers like 'tier'")
            if item is not None and not isinstance(item, (str, int, float, bool)):
                fail(
                    inst,
                    attribute,
                    item,
                    f"custom field {key!r} must hold str, int, float, bool or None",
                )
            problem = scalar_problem(item)
            if problem is not None:
                fail(inst, attribute, item, f"custom field {key!r} {problem}")

    _FAST[check] = ("custom",)
    return attrs.field(
        factory=dict,
        converter=_to_custom,
        validator=check,
        hash=False,
        metadata={"kind": "custom"},
    )


def reference(target: type[Any] | str, *, required: bool = False) -> Any:
    """The id of a record of ``target`` (a record type or its name): text that
    :func:`crmkit.dedupe.merge` re-points and roll-ups group by.

    >>> import attrs
    >>> from crmkit.records import Account
    >>> @attrs.frozen(kw_only=True)
    ... class Seat:
    ...     id: str = record_id()
    ...     account_id: str | None = reference(Account)
    ...     version: int = version()
    >>> attrs.fields(Seat).account_id.metadata["references"]
    'Account'
    """
    name = target if isinstance(target, str) else getattr(target, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValidationError(
            "reference", None, target, "must name a record type, like reference(Account)"
        )
    metadata = {"kind": "text", "references": name}
    if required:
        return attrs.field(
            converter=_blank_to_none, validator=_check_text(required=True), metadata=metadata
        )
    return attrs.field(
        default=None,
        converter=_blank_to_none,
        validator=_check_text(required=False),
        metadata=metadata,
    )


def version() -> Any:
    """The optimistic-concurrency version; 0 until a store first writes the record."""
    return integer(default=0, minimum=0)


def _to_weekdays(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)) and all(
        isinstance(d, int) and not isinstance(d, bool) for d in value
    ):
        return tuple(sorted(set(value)))
    return value


def weekdays() -> Any:
    """Days of the week as sorted ints, 0 = Monday; Monday to Friday by default."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, tuple) or not all(
            isinstance(d, int) and 0 <= d <= 6 for d in value
        ):
            fail(inst, attribute, value, "must be weekday numbers 0 (Monday) to 6 (Sunday)")

    return attrs.field(
        default=(0, 1, 2, 3, 4), converter=_to_weekdays, validator=check, metadata={"kind": "json"}
    )


def _to_steps(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and all(isinstance(v, Mapping) for v in value):
        return tuple(dict(v) for v in value)
    return value


def json_steps() -> Any:
    """An ordered tuple of small JSON objects (the steps of a cadence)."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, tuple):
            fail(inst, attribute, value, "must be a list of steps (dicts)")
        for index, step in enumerate(value):
            if not isinstance(step, dict):
                fail(inst, attribute, step, f"step {index} must be a dict like {{'kind': 'call'}}")
            for key, item in step.items():
                if not isinstance(key, str):
                    fail(inst, attribute, step, "step keys must be strings")
                problem = text_problem(key)
                if problem is not None:
                    fail(inst, attribute, key, f"step key {problem}")
                if item is not None and not isinstance(item, (str, int, float, bool)):
                    fail(inst, attribute, step, f"step field {key!r} must be a scalar")
                problem = scalar_problem(item)
                if problem is not None:
                    fail(inst, attribute, step, f"step field {key!r} {problem}")

    return attrs.field(
        factory=tuple, converter=_to_steps, validator=check, metadata={"kind": "json"}
    )


def clock_time(*, default: time) -> Any:
    """A wall-clock time of day."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, time) or value.tzinfo is not None:
            fail(inst, attribute, value, "must be a time of day without tzinfo")

    return attrs.field(default=default, validator=check, metadata={"kind": "time"})


def criteria_field() -> Any:
    """Criteria in their JSON form, checked when the record is built.

    They must bind to the record type (so at most 20 levels deep) and be a JSON
    document (:func:`check_json`): dates and datetimes as ISO text, numbers as int or
    float, as ``Criteria.to_dict()`` writes them, so every store and the codec read
    back equal criteria.
    """

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        from crmkit._schema import record_type_named  # these import records: import late
        from crmkit.criteria import _MAX_DEPTH, Criteria, bind

        try:
            bind(value, record_type_named(inst.applies_to))
        except Exception as err:
            fail(inst, attribute, value, f"is not valid criteria: {err}")
        if isinstance(value, Criteria):
            return
        try:
            check_json(type(inst).__name__, attribute.name, value, max_depth=2 * _MAX_DEPTH + 2)
        except ValidationError as err:
            fail(
                inst,
                attribute,
                value,
                f"must be criteria in their JSON form (Criteria.to_dict() writes dates as "
                f"ISO text): {short_repr(err.value)} {err.reason}",
            )

    return attrs.field(default=None, validator=check, metadata={"kind": "json"})


def _namespace() -> dict[str, Any]:
    return {
        "_NOTHING": attrs.NOTHING,
        "_isfinite": math.isfinite,
        "_datetime": datetime,
        "_Decimal": Decimal,
        "_repr": repr,
        "_str": str,
        "_len": len,
        "_new": object.__new__,
        "_disabled": attrs.validators.get_disabled,
    }


def _setter(cls: type[Any], a: attrs.Attribute[Any]) -> Any:
    """The slot setter of field ``a``, or ``None`` for a field the compilers skip."""
    setter = getattr(cls.__dict__.get(a.name), "__set__", None)
    if (
        setter is None
        or a.alias is None
        or not a.alias.isidentifier()
        or a.alias.startswith("_")
        or isinstance(a.converter, attrs.Converter)
    ):
        return None
    return setter


def _kind(a: attrs.Attribute[Any]) -> tuple[str | None, tuple[Any, ...] | None]:
    """The inline check a field's validator allows (see ``_FAST``), and its parameters."""
    spec = _FAST.get(a.validator) if a.validator is not None else None
    kind = None if spec is None else spec[0]
    converter: Any = a.converter
    if kind == "text" and converter is not _blank_to_none:
        kind = None
    if kind == "money" and converter is not _to_money:
        kind = None
    return kind, spec


def _convert_code(
    x: str, i: int, a: attrs.Attribute[Any], kind: str | None, spec: Any, ns: dict[str, Any]
) -> str:
    """Source converting the local ``x`` with field ``i``'s converter, plain types inline."""
    if kind == "text":
        return (  # None stays None: no call
            f"    if type({x}) is str:\n        {x} = {x}.strip() or None\n"
            f"    elif {x} is not None:\n        {x} = _k{i}({x})"
        )
    if kind == "enum" and spec is not None:
        ns[f"_e{i}"] = spec[1]
        return f"    if type({x}) is not _e{i}:\n        {x} = _k{i}({x})"
    if kind in ("int", "float"):
        return f"    if {x} is not None and type({x}) is not {kind}:\n        {x} = _k{i}({x})"
    if kind == "moment":
        return f"    if {x} is not None:\n        {x} = _k{i}({x})"
    if kind == "money":  # a finite float is written as its shortest repr, as _to_money does
        return (
            f"    if type({x}) is float and _isfinite({x}):\n        {x} = _Decimal(_repr({x}))\n"
            f"    elif {x} is not None and type({x}) is not _Decimal:\n        {x} = _k{i}({x})"
        )
    return f"    {x} = _k{i}({x})"


def _check_code(x: str, i: int, kind: str | None, spec: Any, ns: dict[str, Any]) -> str:
    """Source checking the local ``x`` (already set on ``self``) with field ``i``'s
    validator, called only when the inline test of a plain value does not pass."""
    call = f"_v{i}(self, _a{i}, {x})"
    if kind == "text" and spec is not None:
        plain = f"type({x}) is str and {x}.isascii() and '\\x00' not in {x}"
        none = f"{x} is None or" if spec[1] else f"{x} is not None and"
        return f"    if {none} not ({plain}):\n        {call}"
    if kind == "enum" and spec is not None:
        ns[f"_e{i}"] = spec[1]
        none_ok = f"{x} is not None and " if spec[2] else ""
        return f"    if {none_ok}type({x}) is not _e{i}:\n        {call}"
    if kind in ("int", "float") and spec is not None:
        ns[f"_lo{i}"], ns[f"_hi{i}"] = spec[1], spec[2]
        finite = f" or not _isfinite({x})" if kind == "float" else ""
        bad = f"type({x}) is not {kind}{finite} or {x} < _lo{i} or {x} > _hi{i}"
        none = f"{x} is not None and" if spec[3] else f"{x} is None or"
        return f"    if {none} ({bad}):\n        {call}"
    if kind == "money" and spec is not None:
        # short plain text (no exponent, < 300 characters) proves the decimal places
        # and the float64 range the validator checks
        ns[f"_lo{i}"] = spec[1]
        good = (
            f"type({x}) is _Decimal and {x}.is_finite() and {x} >= _lo{i}"
            f" and _len(_t := _str({x})) < 300 and 'E' not in _t"
        )
        none = f"{x} is not None and" if spec[2] else f"{x} is None or"
        return f"    if {none} not ({good}):\n        {call}"
    if kind == "bool":
        return f"    if type({x}) is not bool:\n        {call}"
    if kind == "moment" and spec is not None:
        bad = f"type({x}) is not _datetime or {x}.tzinfo is None"
        none = f"{x} is None or" if spec[1] else f"{x} is not None and"
        return f"    if {none} ({bad}):\n        {call}"
    if kind == "custom":
        ns["_custom_checks"] = CUSTOM_CHECKS  # declared fields: required, defaults
        return (
            f"    if type({x}) is not dict or {x} or type(self) in _custom_checks:\n        {call}"
        )
    return f"    {call}"


def compile_init(cls: type[Any]) -> None:
    """Give the record class ``cls`` an ``__init__`` that converts and checks its fields
    inline, about twice as fast as the one attrs writes, with the same results and errors.

    Every field is converted first and then checked in field order, as attrs does. A
    value of the plain expected type (``str`` for text, ``int`` for a whole number ...)
    is handled inline; anything else goes to the field's own converter and validator, so
    every message stays the one they raise. The code is generated from the class's attrs
    fields (never from data), the way attrs generates its own.

    >>> @attrs.frozen(kw_only=True)
    ... class Note:
    ...     id: str = record_id()
    ...     stars: int | None = integer(maximum=5)
    >>> compile_init(Note)
    >>> Note(id=" n1 ", stars=5)
    Note(id='n1', stars=5)
    >>> Note(id="n1", stars=6)
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Note 'n1' field 'stars' = 6: must be <= 5
    """
    ns = _namespace()
    params: list[str] = []
    convert: list[str] = []
    check: list[str] = []
    for i, a in enumerate(attrs.fields(cls)):
        setter = _setter(cls, a)
        factory = a.default if isinstance(a.default, attrs.Factory) else None  # type: ignore[arg-type]
        if setter is None or not a.init or (factory is not None and factory.takes_self):
            return  # a shape this compiler does not know: keep attrs' __init__
        x = a.alias
        ns[f"_s{i}"], ns[f"_a{i}"] = setter, a
        ns[f"_k{i}"], ns[f"_v{i}"] = a.converter, a.validator
        kind, spec = _kind(a)
        converted = False
        if factory is not None:
            params.append(f"{x}=_NOTHING")
            ns[f"_f{i}"] = factory.factory
            if kind == "custom" and factory.factory is dict:  # {} converts to a new {}
                convert.append(f"    {x} = {{}} if {x} is _NOTHING else _k{i}({x})")
                converted = True
            else:
                convert.append(f"    if {x} is _NOTHING:\n        {x} = _f{i}()")
        elif a.default is attrs.NOTHING:
            params.append(x)
        else:
            ns[f"_d{i}"] = a.default
            params.append(f"{x}=_d{i}")
        if not converted and a.converter is not None:
            convert.append(_convert_code(x, i, a, kind, spec, ns))
        convert.append(f"    _s{i}(self, {x})")
        if a.validator is not None:
            check.append(_check_code(x, i, kind, spec, ns))
    lines = [f"def __init__(self, *, {', '.join(params)}):", *convert]
    if check:
        lines += ["    if not _disabled():", *("    " + c.replace("\n", "\n    ") for c in check)]
    if hasattr(cls, "__attrs_post_init__"):
        lines.append("    self.__attrs_post_init__()")
    exec(compile("\n".join(lines) + "\n", f"<crmkit init {cls.__name__}>", "exec"), ns)
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    type.__setattr__(cls, "__init__", init)


#: fields whose validator reads another field: changing the key re-checks the values
VALIDATED_WITH: dict[str, tuple[str, ...]] = {"applies_to": ("criteria",)}

_PATCHERS: dict[tuple[type[Any], tuple[str, ...]], Callable[..., Any] | None] = {}


def patcher(cls: type[Any], names: tuple[str, ...]) -> Callable[..., Any] | None:
    """``patch(record, version, *values)``: a copy of ``record`` whose fields ``names``
    hold ``values``, converted and checked as the compiled ``__init__`` does (in field
    order, plain values inline, anything else by the field's own converter and
    validator), the other fields copied unchecked, and ``version`` stamped. ``None`` when
    a field of ``names`` needs more than itself checked (see :data:`VALIDATED_WITH`), or
    for a shape the compiler does not know; the caller then takes the slow path.

    >>> from crmkit.records import Account
    >>> patch = patcher(Account, ("employees",))
    >>> patch(Account(id="a1", name="Acme"), 2, 12.0)
    Account(id='a1', name='Acme', ..., employees=12, ..., version=2)
    >>> patch(Account(id="a1", name="Acme"), 2, -1)
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Account 'a1' field 'employees' = -1: must be >= 0
    """
    key = (cls, names)
    if key in _PATCHERS:
        return _PATCHERS[key]
    made = _compile_patcher(cls, names)
    if len(_PATCHERS) >= 1024:
        _PATCHERS.clear()
    _PATCHERS[key] = made
    return made


def _compile_patcher(cls: type[Any], names: tuple[str, ...]) -> Callable[..., Any] | None:
    fields = attrs.fields(cls)
    changed = {name: j for j, name in enumerate(names)}
    known = {a.name for a in fields}
    if (
        len(changed) != len(names)
        or not known >= changed.keys()
        or "version" not in known
        or "version" in changed
        or any(n in VALIDATED_WITH or any(n in d for d in VALIDATED_WITH.values()) for n in names)
        or hasattr(cls, "__attrs_post_init__")
    ):
        return None
    ns = _namespace()
    ns["_cls"] = cls
    convert: list[str] = []
    sets: list[str] = []
    check: list[str] = []
    for i, a in enumerate(fields):
        setter = _setter(cls, a)
        if setter is None:
            return None
        ns[f"_s{i}"] = setter
        j = changed.get(a.name)
        if a.name == "version":
            sets.append(f"    _s{i}(self, version)")
            continue
        if j is None:
            sets.append(f"    _s{i}(self, r.{a.name})")
            continue
        x = f"_p{j}"
        ns[f"_a{i}"], ns[f"_k{i}"], ns[f"_v{i}"] = a, a.converter, a.validator
        kind, spec = _kind(a)
        if a.converter is not None:
            convert.append(_convert_code(x, i, a, kind, spec, ns))
        sets.append(f"    _s{i}(self, {x})")
        if a.validator is not None:
            check.append(_check_code(x, i, kind, spec, ns))
    params = "".join(f", _p{j}" for j in range(len(names)))
    lines = [
        f"def patch(r, version{params}):",
        *convert,
        "    self = _new(_cls)",
        *sets,
        *check,
        "    return self",
    ]
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<crmkit patch {cls.__name__} {' '.join(names)}>", "exec"), ns)
    made: Callable[..., Any] = ns["patch"]
    return made
