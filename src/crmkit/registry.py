"""Your own record types beside crmkit's, and typed custom fields on crmkit's records.

A **custom record type** is a frozen attrs class whose fields are made with
:mod:`crmkit.fields` (``id`` first, ``version`` last). Registered, it gets a repository in
every store (``store.repository(Subscription)``), criteria, numpy columns, CSV
import/export, the codec, hypothesis strategies and ``StoreContract``:

>>> import attrs
>>> from crmkit import fields
>>> from crmkit.records import Account
>>> @register_record
... @attrs.frozen(kw_only=True)
... class Seat:
...     id: str = fields.record_id()
...     account_id: str | None = fields.reference(Account)
...     seats: int | None = fields.integer()
...     version: int = fields.version()
>>> table_of(Seat), Seat in record_types()
('seats', True)
>>> unregister_record(Seat)

A **typed custom field** gives ``custom.<name>`` of a record type a kind (text, int,
float, money, bool or an enum), makes it required or gives it a default, and has
criteria check values against it:

>>> field = declare_custom_field(Account, "seats", "int", default=1)
>>> Account(id="a1", name="Acme").custom
{'seats': 1}
>>> Account(id="a1", name="Acme", custom={"seats": "many"})
Traceback (most recent call last):
...
crmkit.errors.ValidationError: Account 'a1' field 'custom.seats' = 'many': must be a whole number
>>> undeclare_custom_field(Account, "seats")

Both registries are process-wide, like the classes they describe: a record is valid or
not whatever store it is written to, criteria bind to a record type without a store, and
the codec and CSV import read the same declarations. Register and declare at start-up,
before the stores are used (a store opened earlier picks them up on its next use).
"""

from __future__ import annotations

import contextlib
import enum
import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

import attrs

from crmkit import _fields
from crmkit.errors import ValidationError
from crmkit.records import RECORD_TYPES

__all__ = [
    "CustomField",
    "custom_fields",
    "declare_custom_field",
    "is_custom",
    "record_types",
    "references_to",
    "register_record",
    "table_of",
    "undeclare_custom_field",
    "unregister_record",
]

T = TypeVar("T")

#: what a field maker may declare (``metadata["kind"]``)
_KINDS = frozenset(
    {"text", "enum", "int", "float", "money", "bool", "datetime", "date", "time", "custom"}
    | {"tags", "json"}
)
_TABLE = re.compile(r"^[a-z][a-z0-9_]{0,50}$")
_BUILTIN_NAMES = frozenset(t.__name__ for t in RECORD_TYPES)
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_MONEY_DIGITS = 15  # a float64 keeps 15 significant decimal digits exactly


class _State:
    """The registered types; ``generation`` grows on every change so that stores notice."""

    def __init__(self) -> None:
        self.types: dict[str, type[Any]] = {}
        self.tables: dict[type[Any], str] = {}
        self.generation = 0


STATE = _State()


def record_types() -> tuple[type[Any], ...]:
    """Every record type: crmkit's (``RECORD_TYPES``), then the registered ones in the
    order they were registered.

    >>> record_types()[:2]
    (<class 'crmkit.records.Account'>, <class 'crmkit.records.Contact'>)
    """
    if not STATE.types:
        return RECORD_TYPES
    return RECORD_TYPES + tuple(STATE.types.values())


def is_custom(record_type: Any) -> bool:
    """Whether ``record_type`` is a registered (not a built-in) record type."""
    return isinstance(record_type, type) and STATE.tables.get(record_type) is not None


def table_of(record_type: type[Any]) -> str:
    """The table (and repository) name of a registered record type."""
    try:
        return STATE.tables[record_type]
    except (KeyError, TypeError):
        raise ValidationError(
            "registry", None, record_type, "is not a registered record type"
        ) from None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _refuse(cls: Any, reason: str, field: str | None = None) -> ValidationError:
    name = getattr(cls, "__name__", None)
    return ValidationError(
        name if isinstance(name, str) else "register_record", field, cls, reason
    )


def register_record(cls: type[T], *, table: str | None = None) -> type[T]:
    """Make ``cls`` a record type of every store; usable as a class decorator.

    ``cls`` must be a frozen, slotted attrs class (``@attrs.frozen(kw_only=True)``)
    whose fields are all made with :mod:`crmkit.fields`, starting with
    ``id = fields.record_id()`` and ending with ``version = fields.version()``; its name
    must not be a built-in record type's. ``table`` names its table and repository
    (default: the class name in snake case plus ``s``: ``Subscription`` ->
    ``subscriptions``). Registering the same class again changes nothing; anything else
    is a :class:`~crmkit.errors.ValidationError` saying what to fix.

    >>> import attrs
    >>> @attrs.frozen
    ... class Loose:
    ...     id: str
    >>> register_record(Loose)
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Loose.id = <class ...>: is not made with a crmkit.fields ...
    """
    if not isinstance(cls, type) or not attrs.has(cls):
        raise _refuse(cls, "must be an attrs class, like @attrs.frozen(kw_only=True)")
    name = cls.__name__
    if STATE.types.get(name) is cls:
        return cls
    if name in _BUILTIN_NAMES:
        raise _refuse(cls, f"is a built-in record type's name; rename the class ({name}X ...)")
    if name in STATE.types:
        raise _refuse(
            cls,
            f"another class named {name} is registered; unregister_record() it first",
        )
    if not name.isidentifier() or name.startswith("_"):
        raise _refuse(cls, "the class name must be a public identifier")
    if getattr(cls.__setattr__, "__name__", "") != "_frozen_setattrs" or "__slots__" not in (
        cls.__dict__
    ):
        raise _refuse(cls, "must be frozen and slotted: declare it with @attrs.frozen")
    fields = attrs.fields(cls)
    for a in fields:
        kind = a.metadata.get("kind")
        if kind not in _KINDS:
            raise _refuse(
                cls,
                "is not made with a crmkit.fields maker (fields.text(), fields.integer() ...)",
                a.name,
            )
        if a.name.startswith("_") or "__" in a.name or not a.name.isidentifier():
            raise _refuse(cls, "field names must be identifiers without '__'", a.name)
        if (a.name == "custom") != (kind == "custom"):
            raise _refuse(cls, "only a field named 'custom' may be fields.custom()", a.name)
        target = a.metadata.get("references")
        known = {t.__name__ for t in record_types()} | {name}
        if target is not None and target not in known:
            raise _refuse(
                cls, f"refers to {target!r}, which is not a record type; register it first", a.name
            )
    if not fields or fields[0].name != "id" or fields[0].metadata.get("kind") != "text":
        raise _refuse(cls, "the first field must be id: str = fields.record_id()", "id")
    if fields[-1].name != "version" or fields[-1].metadata.get("kind") != "int":
        raise _refuse(cls, "the last field must be version: int = fields.version()", "version")
    table = _snake(name) + "s" if table is None else table
    from crmkit._schema import builtin_tables

    if not isinstance(table, str) or not _TABLE.match(table) or table.startswith("crmkit"):
        raise _refuse(
            cls, f"table {table!r} must be lower-case letters, digits and _, not crmkit_..."
        )
    if table in builtin_tables() or table in STATE.tables.values():
        raise _refuse(cls, f"table {table!r} is taken; pass register_record(cls, table=...)")
    attrs.resolve_types(cls)  # string annotations -> types, for the codec
    STATE.types[name] = cls
    STATE.tables[cls] = table
    STATE.generation += 1
    return cast(type[T], cls)


def unregister_record(cls: type[Any]) -> None:
    """Forget a registered record type (for tests); its stored rows stay where they are.

    Stores drop its repository on their next use; unknown classes are ignored.
    """
    if isinstance(cls, type) and STATE.types.get(cls.__name__) is cls:
        del STATE.types[cls.__name__]
        del STATE.tables[cls]
        STATE.generation += 1


def references_to(target: str) -> tuple[tuple[type[Any], str], ...]:
    """``(record type, field)`` of every registered type's field declared with
    ``fields.reference(target)`` (``target`` is a type name such as ``"Account"``)."""
    return tuple(
        (t, a.name)
        for t in STATE.types.values()
        for a in attrs.fields(t)
        if a.metadata.get("references") == target
    )


# -- typed custom fields ------------------------------------------------------------------

_CUSTOM_KINDS = ("text", "int", "float", "money", "bool", "enum")


@attrs.frozen
class CustomField:
    """The declaration of ``custom.<name>`` on one record type."""

    record_type: type[Any]
    name: str
    kind: str
    enum: type[enum.Enum] | None = None
    required: bool = False
    default: _fields.Scalar = None
    indexed: bool = False

    def convert(self, value: Any) -> tuple[Any, str | None]:
        """``(the value as stored, None)`` or ``(value, why it does not fit)``."""
        kind = self.kind
        if kind == "text":
            return (value, None) if isinstance(value, str) else (value, "must be text")
        if kind == "bool":
            if isinstance(value, str) and value.lower() in _BOOLS:
                return _BOOLS[value.lower()], None
            return (value, None) if isinstance(value, bool) else (value, "must be True or False")
        if kind == "enum":
            assert self.enum is not None
            allowed = {str(m.value): m.value for m in self.enum}
            if isinstance(value, self.enum):
                return value.value, None
            if isinstance(value, str):
                for text in (value, value.strip().lower()):
                    if text in allowed:
                        return allowed[text], None
            return value, f"must be one of {', '.join(allowed)}"
        if isinstance(value, bool):
            return value, "must be a number, not True/False"
        if isinstance(value, str) and kind in ("int", "float"):  # a CSV cell, a form field
            with contextlib.suppress(ValueError):
                value = int(value) if kind == "int" else float(value)
        if kind == "int":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                return value, "must be a whole number"
            return value, _fields.scalar_problem(value)
        if kind == "float":
            if isinstance(value, int) and _fields.scalar_problem(value) is None:
                value = float(value)
            if not isinstance(value, float) or not math.isfinite(value):
                return value, "must be a finite number"
            return value, None
        # money: kept as a JSON number so criteria, columns and SQL compare it as one
        number = value
        if isinstance(value, str):
            try:
                number = Decimal(value.strip().replace(",", ""))
            except InvalidOperation:
                return value, "must be an amount like 1200.50"
        if isinstance(number, (int, float)):
            number = Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
        if not isinstance(number, Decimal) or not number.is_finite():
            return value, "must be a finite amount (Decimal, int, float or numeric text)"
        if len(number.normalize().as_tuple().digits) > _MONEY_DIGITS:
            return value, f"has more than {_MONEY_DIGITS} significant digits"
        return (int(number) if number == number.to_integral_value() else float(number)), None


#: record type -> name -> declaration
DECLARED: dict[type[Any], dict[str, CustomField]] = {}


def _checker(record_type: type[Any]) -> Callable[[Any, dict[str, Any], bool], None]:
    declared = DECLARED[record_type]
    record = record_type.__name__

    def check(inst: Any, custom: dict[str, Any], building: bool) -> None:
        for name, field in declared.items():
            if name not in custom:
                if field.default is not None:
                    if building:
                        custom[name] = field.default
                    continue
                if field.required:
                    raise ValidationError(
                        record,
                        f"custom.{name}",
                        None,
                        "is required (declared with declare_custom_field)",
                        record_id=getattr(inst, "id", None),
                    )
                continue
            value, problem = field.convert(custom[name])
            if problem is not None:
                raise ValidationError(
                    record,
                    f"custom.{name}",
                    custom[name],
                    problem,
                    record_id=getattr(inst, "id", None),
                )
            if building:
                custom[name] = value

    return check


def declare_custom_field(
    record_type: type[Any],
    name: str,
    kind: str | None = None,
    *,
    enum: type[enum.Enum] | None = None,
    required: bool = False,
    default: Any = None,
    indexed: bool = False,
) -> CustomField:
    """Give ``custom.<name>`` of ``record_type`` a kind; returns the declaration.

    ``kind`` is ``"text"``, ``"int"``, ``"float"``, ``"money"``, ``"bool"`` or
    ``"enum"`` (implied by ``enum=``, an enum with text values; the record keeps the
    value's text). Money is kept as a number (an int when whole, else a float), so it
    must have at most 15 significant digits. ``default`` fills a record built without
    the field; ``required`` refuses one built without it. Records are checked when built
    and when written; criteria on the field are checked against the kind. ``indexed``
    makes every store call ``store.ensure_index(record_type, "custom.<name>")`` on its
    next use. Declaring a name again replaces the declaration.
    """
    from crmkit._schema import schema_of

    record = getattr(record_type, "__name__", "declare_custom_field")
    if record_type not in record_types():
        raise ValidationError(
            "declare_custom_field", "record_type", record_type, "is not a crmkit record type"
        )
    if "custom" not in {f.name for f in schema_of(record_type).fields if f.kind == "custom"}:
        raise ValidationError(record, "custom", name, f"{record} has no custom fields")
    if isinstance(name, str):
        name = name.removeprefix("custom.")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise ValidationError(record, "custom", name, "custom field names are identifiers")
    field = f"custom.{name}"
    if enum is not None:
        if kind not in (None, "enum"):
            raise ValidationError(record, field, kind, "enum= goes with kind 'enum'")
        kind = "enum"
        if not (isinstance(enum, type) and issubclass(enum, _Enum)) or not all(
            isinstance(m.value, str) for m in enum
        ):
            raise ValidationError(record, field, enum, "must be an enum with text values")
    if kind not in _CUSTOM_KINDS:
        raise ValidationError(
            record, field, kind, f"kind must be one of {', '.join(_CUSTOM_KINDS)}"
        )
    if kind == "enum" and enum is None:
        raise ValidationError(record, field, kind, "give the enum: enum=Tier")
    for flag, value in (("required", required), ("indexed", indexed)):
        if not isinstance(value, bool):
            raise ValidationError(record, field, value, f"{flag} must be True or False")
    declaration = CustomField(record_type, name, kind, enum, required, None, indexed)
    if default is not None:
        converted, problem = declaration.convert(default)
        if problem is not None:
            raise ValidationError(record, field, default, f"the default {problem}")
        declaration = attrs.evolve(declaration, default=converted)
    DECLARED.setdefault(record_type, {})[name] = declaration
    _fields.CUSTOM_CHECKS[record_type] = _checker(record_type)
    STATE.generation += 1
    return declaration


_Enum = enum.Enum


def undeclare_custom_field(record_type: type[Any], name: str) -> None:
    """Forget a declaration (for tests); an undeclared field is untyped again."""
    declared = DECLARED.get(record_type, {})
    declared.pop(name.removeprefix("custom."), None)
    if not declared:
        DECLARED.pop(record_type, None)
        _fields.CUSTOM_CHECKS.pop(record_type, None)
    STATE.generation += 1


def custom_fields(record_type: type[Any]) -> dict[str, CustomField]:
    """The declared custom fields of ``record_type`` by name."""
    return dict(DECLARED.get(record_type, {}))
