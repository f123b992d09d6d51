"""Field makers for records: one converter + validator + schema kind per field type.

Converters only coerce what is unambiguous (``"won"`` to ``OpportunityStatus.WON``,
``12`` to ``Decimal(12)``, an aware datetime to UTC) and otherwise leave the value alone;
validators then raise :class:`~crmkit.errors.ValidationError` naming the record, field
and value. Each field records its *kind* in ``metadata["kind"]``; criteria, stores,
numpy columns and CSV import all read the kind from there (see ``_schema``).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from crmkit.errors import ValidationError

Scalar = str | int | float | bool | None
"""The types a custom field can hold."""

_CUSTOM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def _check_text(required: bool) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            if required:
                fail(inst, attribute, value, "is required and must not be empty")
            return
        if not isinstance(value, str):
            fail(inst, attribute, value, f"must be a string, not {type(value).__name__}")
        if "\x00" in value:
            fail(inst, attribute, value, "must not contain NUL characters")

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
        elif kind == "money":
            if not isinstance(value, Decimal) or not value.is_finite():
                fail(inst, attribute, value, "must be a finite decimal amount")
        elif isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value):
            fail(inst, attribute, value, "must be a finite number")
        if minimum is not None and value < minimum:
            fail(inst, attribute, value, f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            fail(inst, attribute, value, f"must be <= {maximum}")

    return check


def _to_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


def _to_float(value: Any) -> Any:
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return float(value)
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

    return attrs.field(default=default, validator=check, metadata={"kind": "bool"})


def _to_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(UTC)
    return value


def moment(*, required: bool = False) -> Any:
    """A timezone-aware datetime, stored in UTC; a naive datetime is refused."""

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
        return (value,)
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

    return attrs.field(
        factory=tuple, converter=_to_tags, validator=check, metadata={"kind": "tags"}
    )


def zone(*, default: str = "UTC") -> Any:
    """An IANA time zone name, checked against the tz database."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str):
            fail(inst, attribute, value, "must be an IANA time zone name such as 'Europe/Paris'")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            fail(inst, attribute, value, "is not a known IANA time zone such as 'Europe/Paris'")

    return attrs.field(default=default, validator=check, metadata={"kind": "text"})


def _to_custom(value: Any) -> Any:
    if isinstance(value, Mapping):
        cleaned = {k: _blank_to_none(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None}
    return value


def custom() -> Any:
    """User-defined fields: names are identifiers, values are scalars.

    Empty text and ``None`` values are dropped (a custom field is either present with a
    value or absent) and non-finite floats are refused, so a custom value means the same
    in a record, a numpy column and a SQL row.
    """

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, dict):
            fail(inst, attribute, value, "must be a mapping of field name to value")
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
            if isinstance(item, float) and not math.isfinite(item):
                fail(inst, attribute, item, f"custom field {key!r} must be finite")
            if isinstance(item, str) and "\x00" in item:
                fail(inst, attribute, item, f"custom field {key!r} must not contain NUL")

    return attrs.field(
        factory=dict,
        converter=_to_custom,
        validator=check,
        hash=False,
        metadata={"kind": "custom"},
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
        for step in value:
            for key, item in step.items():
                if not isinstance(key, str):
                    fail(inst, attribute, step, "step keys must be strings")
                if item is not None and not isinstance(item, (str, int, float, bool)):
                    fail(inst, attribute, step, f"step field {key!r} must be a scalar")
                if isinstance(item, float) and not math.isfinite(item):
                    fail(inst, attribute, step, f"step field {key!r} must be finite")

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
    """Criteria in their JSON form, checked when the record is built."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        from crmkit._schema import record_type_named  # these import records: import late
        from crmkit.criteria import bind

        try:
            bind(value, record_type_named(inst.applies_to))
        except Exception as err:
            fail(inst, attribute, value, f"is not valid criteria: {err}")

    return attrs.field(default=None, validator=check, metadata={"kind": "json"})
