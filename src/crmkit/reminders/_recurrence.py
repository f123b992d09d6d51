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
least 1, ``COUNT`` at most :data:`MAX_COUNT`, ``BYEASTER`` (not RFC 5545) is refused, every
``BY*`` value must be in its RFC 5545 range (``BYMINUTE=75`` is refused, not searched for),
and the rule must have an occurrence within :data:`HORIZON_YEARS` of its start.

Every expansion is bounded by counted work, not by time. It reads at most
:data:`MAX_WALLS` wall times per call. Daily and sub-daily rules are expanded day by day:
the days their ``BYMONTH``/``BYWEEKNO``/``BYYEARDAY``/``BYMONTHDAY``/``BYDAY`` parts allow
are found first (one cheap step per calendar day, over at most :data:`HORIZON_YEARS` from
the expansion's start), and the times of day are expanded only on those days, so a
secondly rule never steps second by second through months it cannot match. The steps
taken between allowed times of day are counted; past :data:`MAX_STEPS` the rule is
refused as too expensive.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from crmkit.errors import ValidationError
from crmkit.reminders._calendar import _zone

__all__ = [
    "HORIZON_YEARS",
    "MAX_COUNT",
    "MAX_STEPS",
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
MAX_STEPS = 2_000_000
"""The most candidate times (of the rule's ``FREQ`` and ``INTERVAL``) one daily or
sub-daily expansion may step over in all, counting from each restart to the next allowed
time of day."""

# RFC 5545 3.3.10 ranges: (smallest, largest, negative values allowed)
_RANGES = {
    "BYSECOND": (0, 60, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_WEEKDAY = re.compile(r"([+-]?\d+)?(MO|TU|WE|TH|FR|SA|SU)")

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
    _check_ranges(text, body, record_id)
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


def _check_ranges(text: str, body: str, record_id: str | None) -> None:
    """Refuse a ``BY*`` value outside its RFC 5545 range (dateutil accepts many and then
    searches for them until the year 9999), and ``COUNT`` together with ``UNTIL``."""
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    keys = {pair.partition("=")[0].strip().upper() for pair in body.split(";")}
    if {"COUNT", "UNTIL"} <= keys:
        raise _bad(text, "must not have both COUNT and UNTIL (RFC 5545)", record_id)
    for pair in body.split(";"):
        key, _, value = pair.partition("=")
        key = key.strip().upper()
        for item in value.split(","):
            item = item.strip().upper()
            if key == "BYDAY":
                match = _WEEKDAY.fullmatch(item)
                if match and match[1] and not 1 <= abs(int(match[1])) <= 53:
                    raise _bad(
                        text, f"BYDAY ordinal {item} is not within -53..-1 or 1..53", record_id
                    )
                continue
            if key not in _RANGES:
                continue
            try:
                number = int(item)
            except ValueError:
                continue  # dateutil has accepted it; it is not a plain number we can range
            low, high, negative = _RANGES[key]
            if not (low <= number <= high or (negative and -high <= number <= -low)):
                span = f"{-high}..{-low} or {low}..{high}" if negative else f"{low}..{high}"
                raise _bad(text, f"{key} value {number} is not within {span}", record_id)


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

    The search is bounded: daily and sub-daily rules are searched day by day (see the
    module docstring); coarser ones run from a start moved forward by whole 400-year
    cycles (which keeps every date and weekday) to just before the year 9999, where
    dateutil stops on its own.

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
    if rule._freq >= _DAILY:
        try:
            first = next(
                _day_by_day(rule.replace(count=None, until=None), wall, text, record_id), None
            )
        except ValidationError:
            raise
        except _RAISED_BY_DATEUTIL as err:
            raise _bad(text, f"cannot be expanded ({err})", record_id) from None
    else:
        first = _first_coarse(text, rule, wall, record_id)
    if first is None or first - wall > timedelta(days=365.25 * HORIZON_YEARS):
        raise _bad(text, f"has no occurrence within {HORIZON_YEARS} years of its start", record_id)
    if rule._until is not None and rule._until < first:
        raise _bad(text, "UNTIL is before the rule's first occurrence", record_id)


def _first_coarse(text: str, rule: Any, wall: datetime, record_id: str | None) -> datetime | None:
    """The first wall time of a weekly or coarser rule, searched from a start moved forward
    by whole 400-year cycles to just before the year 9999, where dateutil stops."""
    step = 400 * (rule._interval // math.gcd(rule._interval, _PER_400_YEARS[rule._freq]))
    room = datetime.max.year - HORIZON_YEARS - 1 - wall.year
    shift = (room // step) * step if room >= step else 0
    try:
        probe = rule.replace(dtstart=wall.replace(year=wall.year + shift), count=None, until=None)
        first = next(iter(probe), None)
    except _RAISED_BY_DATEUTIL as err:
        raise _bad(text, f"cannot be expanded ({err})", record_id) from None
    return None if first is None else first.replace(year=first.year - shift)


_UNITS = {3: timedelta(days=1), 4: timedelta(hours=1), 5: timedelta(minutes=1)}
_DAY_PARTS = ("_bymonth", "_byweekno", "_byyearday", "_bymonthday", "_bynmonthday", "_byweekday")


def _allowed_days(rule: Any, first: date) -> Iterator[date]:
    """The days from ``first`` on that the rule's day parts allow, within
    :data:`HORIZON_YEARS`. Each calendar day is one check: the search runs a yearly rule
    (every day of each year, filtered by the day parts) from a start moved forward by whole
    400-year cycles (same dates and weekdays) so that dateutil stops on its own at the year
    9999."""
    from dateutil.rrule import YEARLY, rrule

    last = first + min(timedelta(days=int(365.25 * HORIZON_YEARS)), date.max - first)
    if not any(getattr(rule, part) for part in _DAY_PARTS):
        for offset in range((last - first).days + 1):
            yield first + timedelta(days=offset)
        return
    room = datetime.max.year - HORIZON_YEARS - 1 - first.year
    shift = (room // 400) * 400 if room >= 400 else 0
    days = rrule(
        YEARLY,
        dtstart=datetime.combine(first.replace(year=first.year + shift), time()),
        wkst=rule._wkst,
        bymonth=rule._bymonth,
        byweekno=rule._byweekno,
        byyearday=rule._byyearday,
        bymonthday=(*rule._bymonthday, *rule._bynmonthday),
        byweekday=rule._byweekday or range(7),  # all days: no yearly default day
    )
    for moment in days:
        day = moment.date()
        day = day.replace(year=day.year - shift)
        if day > last:
            return
        yield day


def _day_by_day(
    rule: Any, start: datetime, text: str, record_id: str | None
) -> Iterator[datetime]:
    """The wall times of a daily or sub-daily ``rule`` from ``start``, expanded only on the
    days its day parts allow (see the module docstring); ``COUNT`` and ``UNTIL`` kept."""
    from dateutil.rrule import rrule

    freq, interval = rule._freq, rule._interval
    step = _UNITS.get(freq, timedelta(seconds=1)) * interval
    start = start.replace(microsecond=0)
    origin = {
        3: start.replace(hour=0, minute=0, second=0),
        4: start.replace(minute=0, second=0),
        5: start.replace(second=0),
    }.get(freq, start)
    period = {3: 1, 4: 24, 5: 1440}.get(freq, 86400)
    most = period // math.gcd(interval, period)  # dateutil's own cap on one search

    def times(begin: datetime) -> Iterator[datetime]:
        # the rule with its day parts dropped (the allowed days are chosen above)
        return iter(
            rrule(
                freq,
                dtstart=begin,
                interval=interval,
                wkst=rule._wkst,
                byhour=rule._byhour,
                byminute=rule._byminute,
                bysecond=rule._bysecond,
                bysetpos=rule._bysetpos,
            )
        )

    left = rule._count
    steps = 0
    days = _allowed_days(rule, start.date())
    day = next(days, None)
    while day is not None and left != 0:
        midnight = datetime.combine(day, time())
        begin = start if midnight <= start else origin + -((origin - midnight) // step) * step
        previous = begin
        walls = times(begin)
        for wall in walls:
            steps += min((wall - previous) // step, most)
            if steps > MAX_STEPS:
                raise _bad(
                    text,
                    f"is too costly to expand (over {MAX_STEPS} steps in one expansion)",
                    record_id,
                )
            previous = wall
            while day is not None and day < wall.date():
                day = next(days, None)
            if day is None or day > wall.date():
                break  # restart on the next allowed day
            if rule._until is not None and wall > rule._until:
                return
            yield wall
            if left is not None:
                left -= 1
                if left == 0:
                    return
        else:
            return  # dateutil reached the year 9999


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
    walls = _day_by_day(rule, start, text, record_id) if rule._freq >= _DAILY else iter(rule)
    for _ in range(MAX_WALLS):
        try:
            wall = next(walls, None)
            if wall is None:
                return
            found = _instants(wall, zone, both)
        except ValidationError:
            raise
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
    if count == 0:
        return result
    for _, instant in walk(text, start, timezone):
        result.append(instant)
        if len(result) >= count:
            break
    return result
