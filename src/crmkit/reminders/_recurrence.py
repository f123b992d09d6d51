"""RRULE recurrence expanded in wall-clock time (python-dateutil), then localised.

A rule is expanded over *naive* wall-clock times in the reminder's zone, so "every day at
09:00" stays at 09:00 across DST changes. Each wall time becomes one or two instants:

- a wall time in a DST *gap* is read with the offset before the gap (RFC 5545 3.3.5), so
  02:30 becomes 03:30 after a one-hour jump;
- a wall time in a *fold* (the repeated hour in autumn) is its first occurrence for daily
  and coarser rules; for sub-daily rules (``HOURLY``, ``MINUTELY``, ``SECONDLY``) it is
  both occurrences, so an hourly series does not skip the repeated hour;
- an instant equal to (or before) one already produced is dropped: RFC 5545 ignores
  duplicate instances, and a shifted gap time often equals the next wall time.

Rules are checked when they are scheduled (:func:`check_rule`): ``INTERVAL`` must be at
least 1, ``COUNT`` at most :data:`MAX_COUNT`, ``BYEASTER`` (not RFC 5545) is refused, and
the rule must have an occurrence within :data:`HORIZON_YEARS` of its start. Every
expansion reads at most :data:`MAX_WALLS` wall times per call, so nothing hangs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from crmkit.errors import ValidationError
from crmkit.reminders._calendar import _zone

__all__ = [
    "HORIZON_YEARS",
    "MAX_COUNT",
    "MAX_WALLS",
    "check_rule",
    "occurrences",
    "parse_rule",
    "walk",
]

HORIZON_YEARS = 50
"""A rule with no occurrence within this many years of its start is refused."""
MAX_COUNT = 10_000
"""The largest ``COUNT`` accepted."""
MAX_WALLS = 25_000
"""The most wall times one expansion reads (one call to :func:`walk`)."""

_HOURLY = 4  # dateutil's frequency numbers: YEARLY=0 ... DAILY=3, HOURLY=4 ... SECONDLY=6
_DAILY = 3
# How many periods of each frequency fit in 400 Gregorian years (146097 days): shifting a
# rule's start by 400 years keeps every date, weekday and leap day where it was.
_PER_400_YEARS = (400, 4800, 20871, 146097, 146097 * 24, 146097 * 1440, 146097 * 86400)
_RAISED_BY_DATEUTIL = (ValueError, TypeError, ArithmeticError, LookupError, AttributeError)


def _bad(text: object, reason: str, record_id: str | None) -> ValidationError:
    return ValidationError("Reminder", "rrule", text, reason, record_id=record_id)


def parse_rule(text: str, start: datetime, *, record_id: str | None = None) -> Any:
    """``text`` (``"FREQ=WEEKLY;BYDAY=MO"``, optionally prefixed ``RRULE:``) as a dateutil
    rule starting at the naive wall time ``start``; a bad rule is a ``ValidationError``."""
    from dateutil.rrule import rrule, rrulestr

    if not isinstance(text, str) or not text.strip():
        raise _bad(text, "must be an RRULE string like 'FREQ=WEEKLY;BYDAY=MO'", record_id)
    body = text.strip()
    upper = body.upper()
    if "DTSTART" in upper:
        raise _bad(text, "must not carry DTSTART: the reminder's due time is the start", record_id)
    if "BYEASTER" in upper:
        raise _bad(text, "BYEASTER is not part of RFC 5545", record_id)
    try:
        rule = rrulestr(body, dtstart=start.replace(tzinfo=None))
    except _RAISED_BY_DATEUTIL as err:
        raise _bad(
            text, f"is not a valid RRULE ({err}); write e.g. 'FREQ=WEEKLY;BYDAY=MO,WE'", record_id
        ) from None
    if not isinstance(rule, rrule):
        raise _bad(text, "must be a single RRULE (no RDATE, EXDATE or second rule)", record_id)
    if rule._interval < 1:
        raise _bad(text, f"INTERVAL must be 1 or more, not {rule._interval}", record_id)
    if rule._count is not None and not 1 <= rule._count <= MAX_COUNT:
        raise _bad(text, f"COUNT must be from 1 to {MAX_COUNT}", record_id)
    if rule._bysetpos and rule._freq >= _DAILY:
        per_period = _candidates_per_period(rule)
        if all(abs(pos) > per_period for pos in rule._bysetpos):
            raise _bad(
                text,
                f"BYSETPOS picks none of the {per_period} candidate(s) in each period",
                record_id,
            )
    return rule


def _candidates_per_period(rule: Any) -> int:
    """How many date-times a daily or sub-daily period offers BYSETPOS (never zero)."""
    minutes, seconds = len(rule._byminute or ()), len(rule._bysecond or ())
    if rule._freq == _DAILY:
        return len(rule._timeset or ()) or 1
    if rule._freq == _HOURLY:
        return max(minutes * seconds, 1)
    if rule._freq == _HOURLY + 1:
        return max(seconds, 1)
    return 1


def check_rule(text: str, start: datetime, timezone: str, *, record_id: str | None = None) -> None:
    """Refuse a rule that cannot be expanded, or has no occurrence within
    :data:`HORIZON_YEARS` of the naive wall time ``start`` (``ValidationError``).

    The search is bounded: the probe runs the rule from a start moved forward by whole
    400-year cycles (which keeps every date and weekday) to just before the year 9999,
    where dateutil stops on its own.

    Examples
    --------
    >>> check_rule("FREQ=MONTHLY;BYMONTHDAY=31", datetime(2026, 1, 31, 9), "UTC")  # fine
    >>> check_rule("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", datetime(2026, 1, 1), "UTC")
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Reminder.rrule = 'FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30': ...
    """
    rule = parse_rule(text, start, record_id=record_id)
    _zone(timezone)
    wall = start.replace(tzinfo=None, fold=0)
    step = 400 * (rule._interval // math.gcd(rule._interval, _PER_400_YEARS[rule._freq]))
    room = datetime.max.year - HORIZON_YEARS - 1 - wall.year
    shift = (room // step) * step if room >= step else 0
    try:
        probe = rule.replace(dtstart=wall.replace(year=wall.year + shift), count=None, until=None)
        first = next(iter(probe), None)
    except _RAISED_BY_DATEUTIL as err:
        raise _bad(text, f"cannot be expanded ({err})", record_id) from None
    if first is not None:
        first = first.replace(year=first.year - shift)
    if first is None or first - wall > timedelta(days=365.25 * HORIZON_YEARS):
        raise _bad(text, f"has no occurrence within {HORIZON_YEARS} years of its start", record_id)
    if rule._until is not None and rule._until < first:
        raise _bad(text, "UNTIL is before the rule's first occurrence", record_id)


def _instants(wall: datetime, zone: ZoneInfo, both: bool) -> list[datetime]:
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if not both:
        return [first]
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return [first, second] if second > first else [first]


def walk(
    text: str,
    start: datetime,
    timezone: str,
    *,
    after: datetime | None = None,
    record_id: str | None = None,
) -> Iterator[tuple[datetime, datetime]]:
    """``(wall, instant)`` for each occurrence of the rule from the naive wall time
    ``start``, instants strictly increasing and after ``after``; reads at most
    :data:`MAX_WALLS` wall times, then stops.

    Examples
    --------
    >>> hourly = walk("FREQ=HOURLY;COUNT=4", datetime(2026, 3, 29, 0, 30), "Europe/Berlin")
    >>> [i.strftime("%H:%MZ") for _, i in hourly]  # 02:30 is 03:30, already there
    ['23:30Z', '00:30Z', '01:30Z']
    """
    rule = parse_rule(text, start, record_id=record_id)
    zone = _zone(timezone)
    both = rule._freq >= _HOURLY
    last = after
    walls = iter(rule)
    for _ in range(MAX_WALLS):
        try:
            wall = next(walls, None)
            if wall is None:
                return
            found = _instants(wall, zone, both)
        except _RAISED_BY_DATEUTIL as err:
            raise _bad(text, f"cannot be expanded this far ({err})", record_id) from None
        for instant in found:
            if last is None or instant > last:
                last = instant
                yield wall, instant


def occurrences(text: str, start: datetime, timezone: str, *, count: int = 10) -> list[datetime]:
    """The first ``count`` occurrences from the naive wall time ``start`` as UTC instants
    (no duplicates; the repeated autumn hour kept for sub-daily rules).

    Examples
    --------
    >>> nine = datetime(2026, 3, 6, 9, 0)   # daily 09:00 New York across the DST change
    >>> [d.strftime("%d %H:%M") for d in occurrences("FREQ=DAILY", nine,
    ...                                                 "America/New_York", count=4)]
    ['06 14:00', '07 14:00', '08 13:00', '09 13:00']
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        raise ValidationError("Reminder", "count", count, f"must be from 0 to {MAX_COUNT}")
    if not isinstance(start, datetime):
        raise ValidationError("Reminder", "due_at", start, "must be a datetime")
    check_rule(text, start, timezone)
    result: list[datetime] = []
    for _, instant in walk(text, start, timezone):
        if len(result) >= count:
            break
        result.append(instant)
    return result
