"""Cell text to field values and back, one parser and one formatter per field kind.

A parser gets the stripped, non-empty text of a cell and returns the value, or raises
:class:`CellError` with a reason a person can act on. Blank cells never reach a parser:
the importer decides what a blank means for the field (see ``_csv``).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from crmkit._time import FIRST_INSTANT, LAST_INSTANT, to_utc

Parser = Callable[[str], Any]

TAG_SEPARATOR = ";"

_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})

#: the types ``custom_types`` may name, and the header suffix each one is written with
CUSTOM_TYPES: dict[str, type[Any] | None] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "json": None,
}


class CellError(ValueError):
    """A cell cannot be read as the field's kind; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _ungroup(text: str) -> str:
    """``"1,200.5"`` -> ``"1200.5"``; a comma that is not a thousands separator is an error."""
    if "," not in text:
        return text
    if _GROUPED.match(text):
        return text.replace(",", "")
    raise CellError(
        "has a ',' that is not a thousands separator (write 1200.5 or 1,200.5; "
        "a decimal comma is not supported)"
    )


_TOO_LARGE = "is too large: whole numbers must fit in 64 bits (-2**63 to 2**63-1)"


def parse_int(text: str) -> int:
    plain = _ungroup(text)
    if _INTEGER.match(plain):
        if len(plain) > 40:  # the record refuses anything past 64 bits; int() past 4,300
            raise CellError(_TOO_LARGE)
        return int(plain)
    try:
        number = Decimal(plain)
    except InvalidOperation:
        raise CellError("is not a whole number") from None
    if number.is_finite() and number == number.to_integral_value():
        if number.adjusted() > 40:  # "1e999999999" would take a billion digits
            raise CellError(_TOO_LARGE)
        return int(number)
    raise CellError("is not a whole number")


def parse_float(text: str) -> float:
    try:
        return float(_ungroup(text))
    except ValueError:
        raise CellError("is not a number") from None


def parse_money(text: str) -> Decimal:
    try:
        return Decimal(_ungroup(text))
    except InvalidOperation:
        raise CellError("is not an amount such as 1200.50 or 1,200.50") from None


def parse_bool(text: str) -> bool:
    word = text.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise CellError("is not a yes/no value (true/false, yes/no, y/n, 1/0)")


def enum_parser(enum_type: type[enum.Enum]) -> Parser:
    by_value = {str(m.value).lower(): m for m in enum_type}
    allowed = ", ".join(str(m.value) for m in enum_type)

    def parse(text: str) -> enum.Enum:
        try:
            return by_value[text.lower()]
        except KeyError:
            raise CellError(f"must be one of {allowed}") from None

    return parse


def datetime_parser(zone: ZoneInfo, fmt: str | None) -> Parser:
    """ISO 8601 (or ``fmt`` for :meth:`datetime.strptime`); a value without an offset is
    wall-clock time in ``zone``."""

    def parse(text: str) -> datetime:
        try:
            value = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
        except ValueError:
            expected = f"the format {fmt!r}" if fmt else "ISO 8601 such as 2026-03-01T09:30:00Z"
            raise CellError(f"is not a datetime in {expected}") from None
        if value.tzinfo is not None and value.utcoffset() is not None:
            return to_utc(value)
        local = value.replace(tzinfo=zone)
        utc = to_utc(local)
        if utc in (FIRST_INSTANT, LAST_INSTANT):
            return utc  # clamped at an end of the calendar, where no zone skips an hour
        if utc.astimezone(zone).replace(tzinfo=None) != value:
            raise CellError(f"does not exist in {zone.key} (the clocks skip it); add an offset")
        return utc

    return parse


def date_parser(fmt: str | None) -> Parser:
    def parse(text: str) -> date:
        try:
            if fmt:
                return datetime.strptime(text, fmt).date()
            return date.fromisoformat(text)
        except ValueError:
            expected = f"the format {fmt!r}" if fmt else "ISO 8601 such as 2026-03-01"
            raise CellError(f"is not a date in {expected}") from None

    return parse


def parse_time(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise CellError("is not a time of day such as 09:30") from None


def parse_tags(text: str) -> list[str]:
    return [part.strip() for part in text.split(TAG_SEPARATOR) if part.strip()]


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise CellError("is not valid JSON") from None
    except RecursionError:
        raise CellError("is JSON nested too deep") from None


def parse_text(text: str) -> str:
    return text


def parse_json_scalar(text: str) -> Any:
    value = parse_json(text)
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise CellError("must be a JSON string, number, true, false or null")
    return value


def custom_parser(type_name: str) -> Parser:
    """The parser for a custom field declared as ``str``, ``int``, ``float``, ``bool``
    or ``json``."""
    return {
        "str": parse_text,
        "int": parse_int,
        "float": parse_float,
        "bool": parse_bool,
        "json": parse_json_scalar,
    }[type_name]


def field_parser(
    kind: str, enum_type: type[enum.Enum] | None, zone: ZoneInfo, fmts: tuple[str | None, ...]
) -> Parser:
    """The parser for a record field of ``kind``; ``fmts`` is ``(date_format,
    datetime_format)``."""
    date_format, datetime_format = fmts
    if kind == "enum" and enum_type is not None:
        return enum_parser(enum_type)
    simple: dict[str, Parser] = {
        "text": parse_text,
        "int": parse_int,
        "float": parse_float,
        "money": parse_money,
        "bool": parse_bool,
        "tags": parse_tags,
        "json": parse_json,
        "time": parse_time,
    }
    if kind == "datetime":
        return datetime_parser(zone, datetime_format)
    if kind == "date":
        return date_parser(date_format)
    return simple.get(kind, parse_text)


# -- formatting (export) -------------------------------------------------------------------


def format_value(kind: str, value: Any) -> str:
    """A field value as cell text that the matching parser reads back to an equal value."""
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if kind == "bool" or isinstance(value, bool):
        return "true" if value else "false"
    if kind == "money" or isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if kind == "tags":
        return TAG_SEPARATOR.join(value)
    if kind == "json":
        return json.dumps(_jsonable(value), sort_keys=True)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def custom_type_of(values: list[Any]) -> str:
    """The narrowest custom type that holds every present value exactly."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, str) for v in present):
        return "str"
    if all(isinstance(v, bool) for v in present):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if all(isinstance(v, float) for v in present):
        return "float"
    return "json"


def format_custom(type_name: str, value: Any) -> str:
    if value is None:
        return ""
    if type_name == "json":
        return json.dumps(value)
    return format_value("custom", value)
