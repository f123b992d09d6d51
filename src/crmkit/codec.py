"""Records to and from JSON-able data, through crmkit's own cattrs converter.

crmkit never touches cattrs' global converter; :func:`make_converter` builds a new one
that you can extend with your own hooks.

>>> from decimal import Decimal
>>> from crmkit.records import Opportunity
>>> deal = Opportunity(id="o-1", name="Renewal", amount=Decimal("1200.50"))
>>> data = to_dict(deal)
>>> data["amount"], data["status"]
('1200.50', 'open')
>>> from_json(Opportunity, to_json(deal)) == deal
True
"""

from __future__ import annotations

import collections.abc
import enum
import json
import typing
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

import attrs
import cattrs

from crmkit._repr import short_repr
from crmkit.errors import CrmError, ValidationError
from crmkit.registry import record_types

__all__ = ["from_dict", "from_json", "make_converter", "to_dict", "to_json"]

T = TypeVar("T")


def make_converter() -> cattrs.Converter:
    """A new converter that turns every crmkit record into JSON-able data and back.

    Datetimes become ISO 8601 strings with their UTC offset, dates and times ISO strings,
    ``Decimal`` a string (no float rounding), enums their value, tuples lists.

    >>> from decimal import Decimal
    >>> from crmkit.records import Opportunity
    >>> converter = make_converter()
    >>> converter is make_converter()  # a new one each call: add hooks without side effects
    False
    >>> converter.unstructure(Opportunity(id="o", name="O", amount=Decimal("0.10")))["amount"]
    '0.10'
    """
    for record_type in record_types():
        attrs.resolve_types(record_type)  # string annotations -> types, for cattrs' dispatch
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_structure_hook(datetime, lambda v, _: _parse(datetime, v))
    converter.register_unstructure_hook(date, date.isoformat)
    converter.register_structure_hook(date, lambda v, _: _parse(date, v))
    converter.register_unstructure_hook(time, time.isoformat)
    converter.register_structure_hook(time, lambda v, _: _parse(time, v))
    converter.register_unstructure_hook(enum.Enum, lambda member: member.value)
    converter.register_unstructure_hook(enum.StrEnum, lambda member: member.value)
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(Decimal, lambda v, _: _decimal(v))
    # custom fields and criteria are already JSON-able scalars/mappings: pass them through
    converter.register_structure_hook_func(_is_passthrough_mapping, lambda v, _: _mapping(v))
    return converter


def _is_passthrough_mapping(tp: Any) -> bool:
    """Custom fields and criteria (``Mapping[str, ...]``) are JSON already."""
    return typing.get_origin(tp) is collections.abc.Mapping


def _mapping(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return dict(value)


def _parse(kind: type[Any], value: Any) -> Any:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO {kind.__name__} string, got {short_repr(value)}")
    return kind.fromisoformat(value)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise TypeError(f"expected a decimal string, got {short_repr(value)}")
    if isinstance(value, int):
        return Decimal(value)  # str() of an int past 4,300 digits raises
    return Decimal(str(value))


@cache
def _default() -> cattrs.Converter:
    return make_converter()


def to_dict(record: Any) -> dict[str, Any]:
    """A record as a JSON-able dict.

    >>> from crmkit.records import Lead
    >>> data = to_dict(Lead(id="l1", status="working", custom={"score": 7}))
    >>> data["status"], data["custom"], data["version"]
    ('working', {'score': 7}, 0)
    """
    result: dict[str, Any] = _default().unstructure(record)
    return result


def from_dict(record_type: type[T], data: Any) -> T:
    """Build and validate a record from a dict; bad data raises :class:`ValidationError`.

    >>> from crmkit.records import Account
    >>> from_dict(Account, {"id": "a", "name": "A", "employees": "many"})
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Account 'a' field 'employees' = 'many': cannot be read: ...
    """
    name = record_type.__name__
    record_id = data.get("id") if isinstance(data, dict) else None
    record_id = record_id if isinstance(record_id, str) else None
    try:
        return _default().structure(data, record_type)
    except CrmError:
        raise
    except cattrs.ClassValidationError as err:
        for sub in err.exceptions:
            if isinstance(sub, CrmError):
                raise sub from err
        sub = err.exceptions[0]
        field = _failed_field(sub)
        if field is not None and isinstance(data, dict):
            raise ValidationError(
                name,
                field,
                data.get(field),
                f"cannot be read: {_describe(sub)}",
                record_id=record_id,
            ) from err
        raise ValidationError(
            name, None, data, f"cannot be read as a {name}: {_describe(sub)}", record_id=record_id
        ) from err
    except Exception as err:  # cattrs reports missing keys, bad types, extra keys
        raise ValidationError(
            name, None, data, f"cannot be read as a {name}: {_describe(err)}", record_id=record_id
        ) from err


def _describe(err: BaseException) -> str:
    if isinstance(err, KeyError):
        return f"missing field {short_repr(err.args[0])}"
    if isinstance(err, cattrs.ForbiddenExtraKeysError):
        return f"unknown field(s) {short_repr(sorted(err.extra_fields))}"
    if isinstance(err, cattrs.ClassValidationError) and err.exceptions:
        return _describe(err.exceptions[0])
    if isinstance(err, RecursionError):
        return "the data nests too deep"
    return f"{type(err).__name__}: {_short(str(err))}"


def _json_int(digits: str) -> int:
    if len(digits) > 4000:  # int() refuses past 4,300 digits with advice to change sys
        raise ValueError(f"holds a whole number of {len(digits)} digits")
    return int(digits)


def _short(text: str) -> str:
    return text if len(text) <= 300 else text[:300] + "..."


def _failed_field(err: BaseException) -> str | None:
    for note in getattr(err, "__notes__", ()):
        if isinstance(note, cattrs.AttributeValidationNote):
            return str(note.name)
    return None


def to_json(record: Any, **kwargs: Any) -> str:
    """A record as a JSON string; keyword arguments go to :func:`json.dumps`.

    >>> from crmkit.records import Team
    >>> print(to_json(Team(id="t1", name="EMEA", region="EU"), indent=1))
    {
     "id": "t1",
     "name": "EMEA",
     "manager_id": null,
     "parent_id": null,
     "region": "EU",
     "created_at": null,
     "custom": {},
     "version": 0
    }
    """
    return json.dumps(to_dict(record), **kwargs)


def from_json(record_type: type[T], text: str | bytes) -> T:
    """Read a record from a JSON string; bad JSON or bad data is a ``ValidationError``.

    Bytes must be UTF-8 (or UTF-16/32 with a byte order mark, as :func:`json.loads`
    reads them). Input that no record could come from is refused the same way: JSON
    nested deeper than Python can read, a number of more than 4,300 digits.

    >>> from crmkit.records import Team
    >>> from_json(Team, '{"id": "t1", "name": "EMEA"}').name
    'EMEA'
    >>> from_json(Team, "{not json")
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Team: is not JSON: ...
    """
    try:
        data = json.loads(text, parse_int=_json_int)
    except (ValueError, TypeError, RecursionError) as err:
        # ValueError covers bad JSON, bad UTF-8 and numbers past Python's digit limit
        reason = "nests too deep" if isinstance(err, RecursionError) else str(err)
        raise ValidationError(
            record_type.__name__, None, text, f"is not JSON: {_short(reason)}"
        ) from err
    return from_dict(record_type, data)
