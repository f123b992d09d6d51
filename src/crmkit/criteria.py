"""One criteria language for queries, routing rules, territories, scoring rules and segments.

Write criteria with the builder :data:`F` or as JSON-able dicts; both are the same thing.

>>> c = F.country.isin(["US", "CA"]) & (F.employees >= 500) | ~(F.custom["tier"] == "gold")
>>> parse(c.to_dict()) == c
True
>>> c.to_dict()["any"][1]
{'not': {'field': 'custom.tier', 'op': '==', 'value': 'gold'}}

Bind criteria to a record type to check field names and value types, then use one of the
three compiled forms, which always agree:

>>> from crmkit.records import Account
>>> big_na = bind(F.country.isin(["US", "CA"]) & (F.employees >= 500), Account)
>>> big_na.matches(Account(id="a", name="Acme", country="US", employees=800))
True
>>> import numpy as np
>>> big_na.mask({"country": np.array(["US", "FR"]), "employees": np.array([800.0, 900.0])})
array([ True, False])
>>> sql, params = big_na.to_sql()
>>> params
['US', 'CA', 500.0]

Semantics, the same in all three forms:

- A missing value (``None``, NaN, NaT, empty text) never equals, orders, or is ``in``
  anything; ``!=`` and ``not in`` are the exact negations of ``==`` and ``in``, so they are
  true for a missing value. ``is null`` / ``is not null`` / ``exists`` test for it.
- Numbers (ints, floats, ``Decimal`` money) compare as float64. Text compares by code
  point and is case-sensitive. Datetimes compare as instants (microseconds, UTC).
- Enum fields accept their values (``F.status == "won"``) and only ``==``, ``!=``,
  ``in``, ``not in`` and null tests.
- A custom field (``custom.tier``) compares in the domain of the criterion's value
  (text, number or bool); a stored value of another type never matches.

Limits, checked when criteria are built or read, so a store never keeps criteria it
cannot read back: ``all``/``any``/``not`` nest at most 20 levels; numbers must fit in a
float64 (``10**400`` is refused, NaN and infinity too); text must be valid Unicode
without NUL (a lone surrogate such as ``chr(0xD800)`` is refused).

>>> parse({"field": "employees", "op": ">=", "value": 10**400})
Traceback (most recent call last):
...
crmkit.errors.CriteriaError: field 'employees' >= <int of about 401 digits>: numbers must ...
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit._fields import text_problem
from crmkit._repr import short_repr as _show
from crmkit._schema import QUERYABLE_KINDS, schema_of
from crmkit._time import micros, to_utc
from crmkit.errors import CriteriaError
from crmkit.registry import DECLARED

__all__ = [
    "OPERATORS",
    "AllOf",
    "AnyOf",
    "BoundCriteria",
    "Condition",
    "Criteria",
    "F",
    "Field",
    "Not",
    "bind",
    "parse",
]

if TYPE_CHECKING:  # numpy is imported only when a mask is computed
    import numpy as np

    from crmkit._mask import Mask

OPERATORS = (
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "between",
    "startswith",
    "contains",
    "is null",
    "is not null",
    "exists",
)
"""Every operator a :class:`Condition` may use."""

_ORDERING = frozenset({"<", "<=", ">", ">="})
_OPERATOR_SET = frozenset(OPERATORS)
_NO_VALUE = frozenset({"is null", "is not null"})
_TEXT_ONLY = frozenset({"startswith", "contains"})
_NEGATED = {"!=": "==", "not in": "in"}
_MAX_DEPTH = 20
"""Levels of all/any/not, documented in docs/criteria.md. SQLite's SQL parser refuses
and/or nested about 27 levels deep ("parser stack overflow"); 20 leaves room for an
engine that wraps stored criteria in a level or two of its own."""


class Criteria:
    """Base of every criteria node; combine with ``&``, ``|`` and ``~``."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __and__(self, other: Criteria) -> AllOf:
        _require_criteria(other, "&")
        return AllOf(items=(*_flat(self, AllOf), *_flat(other, AllOf)))

    def __or__(self, other: Criteria) -> AnyOf:
        _require_criteria(other, "|")
        return AnyOf(items=(*_flat(self, AnyOf), *_flat(other, AnyOf)))

    def __invert__(self) -> Not:
        return Not(item=self)

    def bind(self, record_type: type[Any]) -> BoundCriteria:
        """Check this criteria against ``record_type`` and compile it."""
        return bind(self, record_type)


def _flat(node: Criteria, kind: type[AllOf] | type[AnyOf]) -> tuple[Criteria, ...]:
    if isinstance(node, kind):
        return node.items
    return (node,)


def _require_criteria(other: object, symbol: str) -> None:
    if not isinstance(other, Criteria):
        raise CriteriaError(
            f"cannot combine criteria with {_show(other)} using {symbol}; wrap comparisons in "
            "parentheses: (F.a == 1) & (F.b == 2)"
        )


def _check_value(field: str, op: str, value: Any) -> Any:
    """Structural checks that need no record type; returns the value as stored."""
    if op not in _OPERATOR_SET:
        raise CriteriaError(
            f"unknown operator {_show(op)} on field {_show(field)}; "
            f"use one of {', '.join(OPERATORS)}"
        )
    if op in _NO_VALUE:
        if value is not None:
            raise CriteriaError(f"operator {_show(op)} on field {_show(field)} takes no value")
        return None
    if op == "exists":
        if value is None:
            return True
        if not isinstance(value, bool):
            raise CriteriaError(
                f"'exists' on field {_show(field)} takes true or false, not {_show(value)}"
            )
        return value
    if op in ("in", "not in"):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise CriteriaError(
                f"operator {_show(op)} on field {_show(field)} needs a list, not {_show(value)}"
            )
        items = tuple(value)
        for item in items:
            _check_scalar(field, op, item)
        return items
    if op == "between":
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
            raise CriteriaError(
                f"'between' on field {_show(field)} needs [low, high], not {_show(value)}"
            )
        low, high = value
        _check_scalar(field, op, low)
        _check_scalar(field, op, high)
        return (low, high)
    _check_scalar(field, op, value)
    if op in _TEXT_ONLY and not isinstance(value, str):
        raise CriteriaError(
            f"operator {_show(op)} on field {_show(field)} needs text, not {_show(value)}"
        )
    return value


def _check_scalar(field: str, op: str, value: Any) -> None:
    if type(value) is str and value:  # the common case: only the text checks apply
        problem = text_problem(value)
        if problem is not None:
            raise CriteriaError(f"field {_show(field)} {op} {_show(value)}: text {problem}")
        return
    if value is None:
        raise CriteriaError(
            f"field {_show(field)} {op} None: to test for a missing value use 'is null'"
        )
    if isinstance(value, str) and value == "":
        raise CriteriaError(
            f"field {_show(field)} {op} '': empty text is a missing value; use 'is null'"
        )
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise CriteriaError(f"field {_show(field)} {op} {_show(value)}: text {problem}")
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        try:
            finite = math.isfinite(float(value))
        except (OverflowError, ValueError):  # an int beyond float64, a signalling NaN
            finite = False
        if not finite:
            raise CriteriaError(
                f"field {_show(field)} {op} {_show(value)}: numbers must be finite "
                "and fit in a float64 (at most about 1.8e308)"
            )
    if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
        raise CriteriaError(
            f"field {_show(field)} {op} {_show(value)}: datetimes must be timezone-aware "
            "(add tzinfo=timezone.utc or a ZoneInfo)"
        )
    if not isinstance(value, (str, int, float, bool, Decimal, datetime, date)):
        raise CriteriaError(
            f"field {_show(field)} {op} {_show(value)}: values must be text, numbers, booleans, "
            "dates or datetimes"
        )


def _check_field_name(field: Any) -> str:
    if not isinstance(field, str) or not field:
        raise CriteriaError(f"a criteria field must be a non-empty string, not {_show(field)}")
    problem = text_problem(field)
    if problem is not None:
        raise CriteriaError(f"the criteria field name {_show(field)} {problem}")
    return field


def _depth_of(items: Iterable[Any]) -> int:
    """The nesting depth of a node over ``items``; refuses more than ``_MAX_DEPTH``."""
    depth = 1 + max((getattr(item, "_depth", 0) for item in items), default=0)
    if depth > _MAX_DEPTH:
        raise CriteriaError(
            f"criteria nest deeper than {_MAX_DEPTH} levels of all/any/not; "
            "flatten them (an 'all' inside an 'all' is one 'all')"
        )
    return depth


@attrs.frozen
class Condition(Criteria):
    """One test on one field: ``Condition("employees", ">=", 500)``."""

    field: str = attrs.field(converter=_check_field_name)
    op: str
    value: Any = None

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "value", _check_value(self.field, self.op, self.value))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "op": self.op}
        if self.op not in _NO_VALUE:
            data["value"] = _jsonable(self.value)
        return data


@attrs.frozen
class AllOf(Criteria):
    """True when every item is (true when empty)."""

    items: tuple[Criteria, ...]
    _depth: int = attrs.field(init=False, default=0, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_depth", _depth_of(self.items))

    def to_dict(self) -> dict[str, Any]:
        return {"all": [item.to_dict() for item in self.items]}


@attrs.frozen
class AnyOf(Criteria):
    """True when at least one item is (false when empty)."""

    items: tuple[Criteria, ...]
    _depth: int = attrs.field(init=False, default=0, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_depth", _depth_of(self.items))

    def to_dict(self) -> dict[str, Any]:
        return {"any": [item.to_dict() for item in self.items]}


@attrs.frozen
class Not(Criteria):
    """True when the item is false."""

    item: Criteria
    _depth: int = attrs.field(init=False, default=0, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_depth", _depth_of((self.item,)))

    def to_dict(self) -> dict[str, Any]:
        return {"not": self.item.to_dict()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


class Field:
    """A field reference made by :data:`F`; comparisons build :class:`Condition` objects."""

    __slots__ = ("name",)
    __hash__ = None  # type: ignore[assignment]  # == builds criteria, so no hashing

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"F[{self.name!r}]"

    def __getitem__(self, key: str) -> Field:
        if self.name != "custom":
            raise CriteriaError(
                f"only F.custom takes [key]; F.{self.name}[{_show(key)}] is not valid"
            )
        return Field(f"custom.{key}")

    def __eq__(self, value: Any) -> Condition:  # type: ignore[override]
        return Condition(self.name, "==", value)

    def __ne__(self, value: Any) -> Condition:  # type: ignore[override]
        return Condition(self.name, "!=", value)

    def __lt__(self, value: Any) -> Condition:
        return Condition(self.name, "<", value)

    def __le__(self, value: Any) -> Condition:
        return Condition(self.name, "<=", value)

    def __gt__(self, value: Any) -> Condition:
        return Condition(self.name, ">", value)

    def __ge__(self, value: Any) -> Condition:
        return Condition(self.name, ">=", value)

    def isin(self, values: Iterable[Any]) -> Condition:
        return Condition(self.name, "in", values)

    def notin(self, values: Iterable[Any]) -> Condition:
        return Condition(self.name, "not in", values)

    def between(self, low: Any, high: Any) -> Condition:
        """Inclusive at both ends."""
        return Condition(self.name, "between", (low, high))

    def range(self, low: Any, high: Any) -> AllOf:
        """Half-open: ``low <= value < high`` (``>=`` and ``<``; territory matching
        indexes the pair as one range).

        >>> F.employees.range(50, 250).to_dict()["all"][1]
        {'field': 'employees', 'op': '<', 'value': 250}
        """
        return AllOf(items=(Condition(self.name, ">=", low), Condition(self.name, "<", high)))

    def startswith(self, prefix: str) -> Condition:
        return Condition(self.name, "startswith", prefix)

    def contains(self, text: str) -> Condition:
        return Condition(self.name, "contains", text)

    def isnull(self) -> Condition:
        return Condition(self.name, "is null")

    def notnull(self) -> Condition:
        return Condition(self.name, "is not null")

    def exists(self, present: bool = True) -> Condition:
        return Condition(self.name, "exists", present)


class _FieldMaker:
    """``F.country``, ``F["country"]`` and ``F.custom["tier"]`` make :class:`Field` refs."""

    def __getattr__(self, name: str) -> Field:
        if name.startswith("__"):
            raise AttributeError(name)
        return Field(name)

    def __getitem__(self, name: str) -> Field:
        return Field(name)

    def __repr__(self) -> str:
        return "F"


F = _FieldMaker()
"""The criteria builder: ``(F.country == "US") & (F.employees >= 500)``."""


def parse(data: Criteria | Mapping[str, Any] | None) -> Criteria:
    """Read criteria from their JSON form (``None`` means everything matches).

    >>> parse({"field": "country", "op": "in", "value": ["US", "CA"]})
    Condition(field='country', op='in', value=('US', 'CA'))
    >>> parse({"any": []}).to_dict()
    {'any': []}
    """
    return _parse(data, 0)


def _parse(data: Criteria | Mapping[str, Any] | None, depth: int) -> Criteria:
    if depth > _MAX_DEPTH:
        raise CriteriaError(
            f"criteria nest deeper than {_MAX_DEPTH} levels of all/any/not; flatten them"
        )
    if type(data) is not dict:  # a plain dict (JSON) skips the abstract type checks
        if data is None:
            return AllOf(items=())
        if isinstance(data, Criteria):
            return data
        if not isinstance(data, Mapping):
            raise CriteriaError(
                f"criteria must be a dict like {{'field': ..., 'op': ...}}, not {_show(data)}"
            )
    size = len(data)
    if "field" in data and "op" in data and (size == 2 or (size == 3 and "value" in data)):
        return Condition(data["field"], data["op"], data.get("value"))
    keys = set(data)
    if keys == {"all"} or keys == {"any"}:
        (key,) = keys
        items = data[key]
        if type(items) is not list and (
            isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable)
        ):
            raise CriteriaError(f"{_show(key)} takes a list of criteria, not {_show(items)}")
        parsed = tuple(_parse(item, depth + 1) for item in items)
        return AllOf(items=parsed) if key == "all" else AnyOf(items=parsed)
    if keys == {"not"}:
        return Not(item=_parse(data["not"], depth + 1))
    raise CriteriaError(
        f"cannot read criteria {_show(data)}: expected {{'field', 'op', 'value'}}, "
        "{'all': [...]}, {'any': [...]} or {'not': {...}}"
    )


# -- binding: check fields and value types against a record type ---------------------------

_DOMAIN_OF_KIND = {
    "text": "text",
    "enum": "text",
    "int": "number",
    "float": "number",
    "money": "number",
    "bool": "bool",
    "datetime": "datetime",
    "date": "date",
}


@attrs.frozen
class _Leaf:
    field: str  # as written: "country" or "custom.tier"
    attr: str | None  # record attribute, or None for a custom field
    key: str | None  # custom key
    domain: str  # text | number | bool | datetime | date
    op: str  # positive op; negation is handled by the `negate` flag
    negate: bool
    value: Any  # normalised: str | float | bool | datetime | date | tuple of those


@attrs.frozen
class _Node:
    kind: str  # all | any | not
    items: tuple[_Leaf | _Node, ...]


def bind(criteria: Criteria | Mapping[str, Any] | None, record_type: type[Any]) -> BoundCriteria:
    """Check ``criteria`` against ``record_type``'s fields and compile it.

    >>> from crmkit.records import Account
    >>> bind(F.employes >= 5, Account)
    Traceback (most recent call last):
    ...
    crmkit.errors.CriteriaError: Account has no field 'employes'; known fields: ...
    """
    parsed = parse(criteria)
    return BoundCriteria(parsed, record_type, _bind(parsed, record_type))


def _bind(node: Criteria, record_type: type[Any], negate: bool = False) -> _Leaf | _Node:
    """The compiled tree, with ``not`` pushed down to the leaves (De Morgan) and
    nested ``all``/``any`` of one kind merged, so its SQL nests as little as it can
    (SQLite's parser has a fixed stack, see ``_MAX_DEPTH``). Every
    leaf is two-valued (a missing value is false, never SQL NULL), so this is exact.
    """
    if isinstance(node, Not):
        return _bind(node.item, record_type, not negate)
    if isinstance(node, (AllOf, AnyOf)):
        kind = "all" if isinstance(node, AllOf) != negate else "any"
        items: list[_Leaf | _Node] = []
        for item in node.items:
            bound = _bind(item, record_type, negate)
            if isinstance(bound, _Node) and bound.kind == kind:
                items.extend(bound.items)
            else:
                items.append(bound)
        return items[0] if len(items) == 1 else _Node(kind, tuple(items))
    if isinstance(node, Condition):
        leaf = _bind_condition(node, record_type)
        return attrs.evolve(leaf, negate=not leaf.negate) if negate else leaf
    raise CriteriaError(f"not a criteria: {_show(node)}")


def _bind_condition(cond: Condition, record_type: type[Any]) -> _Leaf:
    schema = schema_of(record_type)
    op, value = cond.op, cond.value
    negate = False
    if op in _NEGATED:
        op, negate = _NEGATED[op], True
    if op == "exists":
        op, negate = "is null", bool(value)
        value = None
    elif op == "is not null":
        op, negate = "is null", True

    if cond.field.startswith("custom."):
        key = cond.field.removeprefix("custom.")
        if not key.isidentifier():
            raise CriteriaError(
                f"custom field name {_show(key)} must be an identifier like 'tier'"
            )
        attr, kind, enum_type = None, None, None
        declared = DECLARED.get(record_type, {}).get(key)
        if declared is not None:  # a typed custom field: compared as its kind
            kind, enum_type = declared.kind, declared.enum
    else:
        info = schema.field(cond.field)
        if info.kind not in QUERYABLE_KINDS:
            raise CriteriaError(
                f"{schema.name}.{cond.field} ({info.kind}) cannot be used in criteria"
            )
        attr, key, kind, enum_type = info.name, None, info.kind, info.enum

    where = f"{schema.name}.{cond.field} {cond.op}"
    if op == "is null":
        domain = _DOMAIN_OF_KIND[kind] if kind and attr is not None else "any"
        return _Leaf(cond.field, attr, key, domain, op, negate, None)

    scalars = value if isinstance(value, tuple) else (value,)
    if kind is None:  # custom field: the value's type picks the domain
        domains = {_domain_of_value(v) for v in scalars}
        if len(domains) > 1:
            raise CriteriaError(f"{where}: values mix types {sorted(domains)}; use one type")
        domain = domains.pop() if domains else "text"
        normalised = tuple(_normalise(where, domain, v) for v in scalars)
    else:
        domain = _DOMAIN_OF_KIND[kind]
        if kind == "enum" and op not in ("==", "in"):
            raise CriteriaError(f"{where}: enum fields support ==, !=, in, not in and null tests")
        if domain == "bool" and op not in ("==", "in"):
            raise CriteriaError(f"{where}: true/false fields support ==, !=, in and not in")
        normalised = tuple(_normalise(where, domain, v) for v in scalars)
        if kind == "enum":
            assert enum_type is not None
            allowed = {str(m.value) for m in enum_type}
            for v in normalised:
                if v not in allowed:
                    raise CriteriaError(
                        f"{where}: {_show(v)} is not one of {', '.join(sorted(allowed))}"
                    )
    if op in _TEXT_ONLY and domain != "text":
        raise CriteriaError(f"{where}: {_show(op)} works on text fields only")
    if op in _ORDERING | {"between"} and domain == "bool":
        raise CriteriaError(f"{where}: true/false values cannot be ordered")
    bound_value = normalised if isinstance(value, tuple) else normalised[0]
    return _Leaf(cond.field, attr, key, domain, op, negate, bound_value)


def _domain_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    return "text"


def _normalise(where: str, domain: str, value: Any) -> Any:
    if domain == "text":
        if hasattr(value, "value") and isinstance(value.value, str):  # an enum member
            value = value.value
        if not isinstance(value, str):
            raise CriteriaError(f"{where} {_show(value)}: this field holds text; give text")
        return value
    if domain == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise CriteriaError(f"{where} {_show(value)}: this field holds numbers; give a number")
        return float(value)
    if domain == "bool":
        if not isinstance(value, bool):
            raise CriteriaError(f"{where} {_show(value)}: this field holds true/false")
        return value
    if domain == "datetime":
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError as err:
                raise CriteriaError(f"{where} {_show(value)}: not an ISO datetime") from err
        if not isinstance(value, datetime):
            raise CriteriaError(f"{where} {_show(value)}: this field holds datetimes")
        if value.tzinfo is None or value.utcoffset() is None:
            raise CriteriaError(f"{where} {_show(value)}: datetimes must be timezone-aware")
        return to_utc(value)
    # date
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError as err:
            raise CriteriaError(f"{where} {_show(value)}: not an ISO date") from err
    if isinstance(value, datetime) or not isinstance(value, date):
        raise CriteriaError(f"{where} {_show(value)}: this field holds dates")
    return value


# -- the compiled form -------------------------------------------------------------------


class BoundCriteria:
    """Criteria checked against one record type, compiled three ways.

    ``matches(record)`` tests one record, ``mask(columns)`` a dict of numpy columns, and
    ``to_sql()`` gives a parameterised SQL ``WHERE`` clause for the SQLite store.
    """

    def __init__(self, criteria: Criteria, record_type: type[Any], root: _Leaf | _Node) -> None:
        self.criteria = criteria
        self.record_type = record_type
        self._root = root
        self._test = _predicate(root)

    def __repr__(self) -> str:
        return f"BoundCriteria({self.record_type.__name__}, {self.criteria.to_dict()!r})"

    @property
    def fields(self) -> frozenset[str]:
        """The fields the criteria read (custom fields as ``custom.key``)."""
        return frozenset(_leaf.field for _leaf in _leaves(self._root))

    @property
    def matches_everything(self) -> bool:
        return isinstance(self._root, _Node) and self._root.kind == "all" and not self._root.items

    def matches(self, record: Any) -> bool:
        """Whether one record matches."""
        return self._test(record)

    def filter(self, records: Iterable[Any]) -> list[Any]:
        """The records that match, in order."""
        test = self._test
        return [r for r in records if test(r)]

    def mask(self, columns: Mapping[str, np.ndarray[Any, Any]]) -> Mask:
        """A boolean mask over column arrays keyed by field name (``custom.key`` for custom).

        Text columns may be numpy unicode arrays (``""`` is missing) or object arrays
        (``None`` is missing); numbers float arrays (NaN is missing) or ints; datetimes
        ``datetime64`` (NaT is missing); dates ``datetime64[D]``.
        """
        from crmkit._mask import mask_of

        return mask_of(self._root, columns, self.fields)

    def to_sql(self, column: Callable[[str], str] | None = None) -> tuple[str, list[Any]]:
        """``(where_sql, params)``; ``column(name)`` quotes a field's column (default ``"name"``).

        Datetime parameters are integer microseconds since the epoch (UTC), dates ISO
        text and booleans 0/1: the SQLite store's column encodings.
        """
        params: list[Any] = []
        sql = _sql(self._root, column or _quote, params)
        return sql, params


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _leaves(node: _Leaf | _Node) -> Iterable[_Leaf]:
    if isinstance(node, _Leaf):
        yield node
    else:
        for item in node.items:
            yield from _leaves(item)


# -- (a) predicate on one record ---------------------------------------------------------


def _predicate(node: _Leaf | _Node) -> Callable[[Any], bool]:
    if isinstance(node, _Node):
        tests = [_predicate(item) for item in node.items]
        if node.kind == "all":

            def all_of(r: Any) -> bool:
                for t in tests:  # noqa: SIM110 - no generator per record on the hot path
                    if not t(r):
                        return False
                return True

            return all_of
        if node.kind == "any":

            def any_of(r: Any) -> bool:
                for t in tests:  # noqa: SIM110 - no generator per record on the hot path
                    if t(r):
                        return True
                return False

            return any_of
        (test,) = tests
        return lambda r: not test(r)
    leaf = node
    fast = _attribute_test(leaf)
    if fast is not None:
        return (lambda r: not fast(r)) if leaf.negate else fast
    getter = _getter(leaf)
    positive = _leaf_test(leaf)
    if leaf.negate:
        return lambda r: not positive(getter(r))
    return lambda r: positive(getter(r))


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _attribute_test(leaf: _Leaf) -> Callable[[Any], bool] | None:
    """A quicker positive test for a comparison on a record attribute, or ``None``.

    A record's validators guarantee its attribute holds the field's type or ``None``
    (empty text is stored as ``None``), so the value needs no domain check: only
    numbers are turned into floats, as the criteria semantics say.
    """
    if leaf.attr is None or leaf.op not in (*_COMPARE, "in", "between"):
        return None
    get = operator.attrgetter(leaf.attr)
    number = leaf.domain == "number"
    target = leaf.value
    if leaf.op == "in":
        members = frozenset(target)  # values are hashable scalars; a set is O(1) per test
        if number:
            return lambda r: (v := get(r)) is not None and float(v) in members
        return lambda r: (v := get(r)) is not None and v in members
    if leaf.op == "between":
        low, high = target
        if number:
            return lambda r: (v := get(r)) is not None and low <= float(v) <= high
        return lambda r: (v := get(r)) is not None and low <= v <= high
    compare = _COMPARE[leaf.op]
    if number:
        return lambda r: (v := get(r)) is not None and bool(compare(float(v), target))
    return lambda r: (v := get(r)) is not None and bool(compare(v, target))


def _getter(leaf: _Leaf) -> Callable[[Any], Any]:
    if leaf.attr is not None:
        attr = leaf.attr
        return lambda r: getattr(r, attr)
    key = leaf.key
    return lambda r: r.custom.get(key)


def _in_domain(domain: str, value: Any) -> Any:
    """The value as compared in ``domain``, or None when missing or of another type."""
    if value is None:
        return None
    if domain == "text":
        if hasattr(value, "value") and isinstance(value.value, str):
            return value.value
        return value if isinstance(value, str) and value else None
    if domain == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return None
        number = float(value)
        return None if math.isnan(number) else number
    if domain == "bool":
        return value if isinstance(value, bool) else None
    if domain == "datetime":
        return value if isinstance(value, datetime) else None
    if domain == "date":
        return value if isinstance(value, date) and not isinstance(value, datetime) else None
    return value  # "any": only null tests use it


def _leaf_test(leaf: _Leaf) -> Callable[[Any], bool]:
    domain, op, target = leaf.domain, leaf.op, leaf.value

    def typed(value: Any) -> Any:
        return _in_domain(domain, value)

    if op == "is null":
        return lambda v: typed(v) is None
    if op == "==":
        return lambda v: (x := typed(v)) is not None and x == target
    if op == "in":
        members = frozenset(target)
        return lambda v: (x := typed(v)) is not None and x in members
    if op == "<":
        return lambda v: (x := typed(v)) is not None and x < target
    if op == "<=":
        return lambda v: (x := typed(v)) is not None and x <= target
    if op == ">":
        return lambda v: (x := typed(v)) is not None and x > target
    if op == ">=":
        return lambda v: (x := typed(v)) is not None and x >= target
    if op == "between":
        low, high = target
        return lambda v: (x := typed(v)) is not None and low <= x <= high
    if op == "startswith":
        return lambda v: (x := typed(v)) is not None and x.startswith(target)
    if op == "contains":
        return lambda v: (x := typed(v)) is not None and target in x
    raise CriteriaError(f"unknown operator {op!r}")  # pragma: no cover - checked when built


# -- (c) parameterised SQL ---------------------------------------------------------------

_SQL_JSON_TYPES = {
    "text": "('text')",
    "number": "('integer', 'real')",
    "bool": "('true', 'false')",
}


def _sql(node: _Leaf | _Node, column: Callable[[str], str], params: list[Any]) -> str:
    if isinstance(node, _Node):
        if node.kind == "not":
            return f"(NOT {_sql(node.items[0], column, params)})"
        if not node.items:
            return "1" if node.kind == "all" else "0"
        joiner = " AND " if node.kind == "all" else " OR "
        return "(" + joiner.join(_sql(item, column, params) for item in node.items) + ")"
    sql = _leaf_sql(node, column, params)
    return f"(NOT {sql})" if node.negate else sql


def _sql_param(domain: str, value: Any) -> Any:
    if domain == "datetime":
        return micros(value)
    if domain == "date":
        return value.isoformat()
    if domain == "bool":
        return int(value)
    return value


def _leaf_sql(leaf: _Leaf, column: Callable[[str], str], params: list[Any]) -> str:
    if leaf.key is not None:
        # the key is an identifier (checked when bound), so the path is written inline:
        # an index on json_extract(custom, '$."key"') then matches the query's expression
        path = f"'$.\"{leaf.key}\"'"
        custom = column("custom")
        if leaf.op == "is null":
            return f"(COALESCE(json_type({custom}, {path}), 'null') = 'null')"
        if leaf.domain not in _SQL_JSON_TYPES or (leaf.op == "in" and not leaf.value):
            # custom values are JSON scalars: a date or datetime never matches
            return "0"
        guard = f"COALESCE(json_type({custom}, {path}), '') IN {_SQL_JSON_TYPES[leaf.domain]}"
        expr = f"json_extract({custom}, {path})"
        if leaf.domain == "number":  # compare as float64, as the predicate and mask do
            expr = f"CAST({expr} AS REAL)"
        return f"({guard} AND {_compare_sql(leaf, expr, params)})"
    assert leaf.attr is not None
    expr = column(leaf.attr)
    if leaf.op == "is null":
        return f"({expr} IS NULL)"
    return f"({expr} IS NOT NULL AND {_compare_sql(leaf, expr, params)})"


def _compare_sql(leaf: _Leaf, expr: str, params: list[Any]) -> str:
    op, target, domain = leaf.op, leaf.value, leaf.domain
    if op == "in":
        if not target:
            return "0"
        params.extend(_sql_param(domain, v) for v in target)
        return f"{expr} IN ({', '.join('?' * len(target))})"
    if op == "between":
        params.extend(_sql_param(domain, v) for v in target)
        return f"{expr} BETWEEN ? AND ?"
    if op == "startswith":
        params.extend([len(target), target])
        return f"substr({expr}, 1, ?) = ?"
    if op == "contains":
        params.append(target)
        return f"instr({expr}, ?) > 0"
    params.append(_sql_param(domain, target))
    sql_op = "=" if op == "==" else op
    return f"{expr} {sql_op} ?"


# PostgreSQL: the same two-valued logic, ``%s`` placeholders for every value. Custom keys
# (checked identifiers, like field names) are written into the SQL as string literals so
# that an expression index on ``custom ->> 'key'`` matches the compiled criteria.

_PG_JSON_TYPES = {"text": "string", "number": "number", "bool": "boolean"}
_PG_ARRAYS = {
    "text": "text[]",
    "number": "float8[]",
    "bool": "boolean[]",
    "datetime": "timestamptz[]",
    "date": "date[]",
}


def _postgres_sql(criteria: BoundCriteria, column: Callable[[str], str]) -> tuple[str, list[Any]]:
    """``(where_sql, params)`` for PostgreSQL with ``%s`` placeholders (psycopg).

    ``column(name)`` gives a field's column expression: the store casts whole numbers and
    money to ``float8`` there, so numbers compare as float64 as everywhere else.
    """
    params: list[Any] = []
    return _pg_sql(criteria._root, column, params), params


def _postgres_custom_expr(custom: str, key: str, domain: str) -> str:
    """The SQL value of custom field ``key`` compared in ``domain`` (NULL when absent or
    of another JSON type); store indexes on custom fields use the same expression."""
    if not key.isidentifier():
        raise CriteriaError(f"custom field name {key!r} must be an identifier like 'tier'")
    literal = "'" + key.replace("'", "''") + "'"
    guard = f"jsonb_typeof({custom} -> {literal}) = '{_PG_JSON_TYPES[domain]}'"
    value = f"{custom} ->> {literal}"
    if domain == "number":
        return f"(CASE WHEN {guard} THEN ({value})::float8 END)"
    if domain == "bool":
        return f"(CASE WHEN {guard} THEN ({value})::boolean END)"
    return f'((CASE WHEN {guard} THEN {value} END) COLLATE "C")'


def _pg_sql(node: _Leaf | _Node, column: Callable[[str], str], params: list[Any]) -> str:
    if isinstance(node, _Node):
        if node.kind == "not":
            return f"(NOT {_pg_sql(node.items[0], column, params)})"
        if not node.items:
            return "TRUE" if node.kind == "all" else "FALSE"
        joiner = " AND " if node.kind == "all" else " OR "
        return "(" + joiner.join(_pg_sql(item, column, params) for item in node.items) + ")"
    sql = _pg_leaf_sql(node, column, params)
    return f"(NOT {sql})" if node.negate else sql


def _pg_leaf_sql(leaf: _Leaf, column: Callable[[str], str], params: list[Any]) -> str:
    if leaf.key is not None:
        custom = column("custom")
        if leaf.op == "is null":
            key = "'" + leaf.key.replace("'", "''") + "'"
            return f"(COALESCE(jsonb_typeof({custom} -> {key}), 'null') = 'null')"
        if leaf.domain not in _PG_JSON_TYPES or (leaf.op == "in" and not leaf.value):
            return "FALSE"  # custom values are JSON scalars: never a date or datetime
        expr = _postgres_custom_expr(custom, leaf.key, leaf.domain)
    else:
        assert leaf.attr is not None
        expr = column(leaf.attr)
        if leaf.op == "is null":
            return f"({expr} IS NULL)"
    return f"({expr} IS NOT NULL AND {_pg_compare_sql(leaf, expr, params)})"


def _pg_compare_sql(leaf: _Leaf, expr: str, params: list[Any]) -> str:
    op, target, domain = leaf.op, leaf.value, leaf.domain
    if op == "in":
        if not target:
            return "FALSE"
        params.append(list(target))
        return f"{expr} = ANY(%s::{_PG_ARRAYS[domain]})"
    if op == "between":
        params.extend(target)
        return f"{expr} BETWEEN %s AND %s"
    if op == "startswith":
        params.append(target)
        return f"starts_with({expr}, %s)"
    if op == "contains":
        params.append(target)
        return f"strpos({expr}, %s) > 0"
    params.append(target)
    sql_op = "=" if op == "==" else op
    return f"{expr} {sql_op} %s"
