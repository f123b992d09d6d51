"""Datetimes as the integers the stores and columns use, and time zones by name."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
"""The earliest instant a record can hold: 0001-01-01T00:00:00+00:00."""
LAST_INSTANT = datetime.max.replace(tzinfo=UTC)
"""The latest instant a record can hold: 9999-12-31T23:59:59.999999+00:00."""


def micros(value: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch (UTC).

    >>> micros(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    1000000
    """
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; an instant past either end of the calendar is clamped.

    ``9999-12-31T23:00-05:00`` is later than the last instant Python can hold in UTC;
    exports write such values to mean "no end", so it becomes :data:`LAST_INSTANT` (and
    an instant before year 1 in UTC becomes :data:`FIRST_INSTANT`). Offsets are under a
    day, so a clamped value moves by less than a day.

    >>> from datetime import timedelta, timezone
    >>> to_utc(datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))))
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.timezone.utc)
    """
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return LAST_INSTANT if value.year > 1 else FIRST_INSTANT


def zone_named(name: Any) -> ZoneInfo | None:
    """The IANA time zone called ``name``, or ``None`` when there is none.

    Never raises: a folder of the tz database (``"America"``), an over-long name or
    a non-string is simply not a zone.

    >>> zone_named("Europe/Paris")
    zoneinfo.ZoneInfo(key='Europe/Paris')
    >>> zone_named("America") is None
    True
    """
    if not isinstance(name, str) or not 0 < len(name) <= 255:
        return None
    return _load_zone(name)


@lru_cache(maxsize=512)
def _load_zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
