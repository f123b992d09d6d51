"""A business calendar: working hours per weekday in one time zone, minus holidays.

Wall-clock to instant policy (used everywhere in ``crmkit.reminders``): a wall-clock time
is read with ``fold=0`` and normalised through UTC. In a DST *gap* (02:30 on the night the
clocks jump from 02:00 to 03:00) that shifts the time forward by the gap (02:30 becomes
03:30); in a *fold* (01:30 happens twice when the clocks go back) it picks the first
occurrence. Business time is real elapsed time inside the working windows.

Public holidays can come from the optional ``holidays`` package through
:func:`country_holidays` (extra ``crmkit[holidays]``); the calendar itself only ever sees a
set of dates.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from crmkit._optional import require
from crmkit.errors import ValidationError
from crmkit.records import Rep

__all__ = ["BusinessCalendar", "country_holidays", "localize"]

Window = tuple[time, time]
_SCAN_DAYS = 3 * 366  # how far next_open looks before giving up


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError(
            "BusinessCalendar", "timezone", name, "is not a known IANA zone like 'Europe/Paris'"
        ) from None


def localize(wall: datetime, timezone: str) -> datetime:
    """A naive wall-clock time in ``timezone`` as an aware UTC instant (gap: shift forward
    by the gap; fold: first occurrence).

    Examples
    --------
    >>> localize(datetime(2026, 3, 8, 2, 30), "America/New_York").isoformat()
    '2026-03-08T07:30:00+00:00'
    >>> localize(datetime(2026, 11, 1, 1, 30), "America/New_York").isoformat()
    '2026-11-01T05:30:00+00:00'
    """
    if wall.tzinfo is not None:
        raise ValidationError("Reminder", "due_at", wall, "a wall-clock time must be naive")
    return wall.replace(tzinfo=_zone(timezone), fold=0).astimezone(UTC)


def _to_hours(value: Any) -> tuple[tuple[Window, ...], ...]:
    if (
        isinstance(value, tuple)
        and len(value) == 7
        and all(isinstance(day, tuple) for day in value)
        and all(all(isinstance(w, tuple) and len(w) == 2 for w in day) for day in value)
    ):
        return value
    if not isinstance(value, Mapping):
        raise ValidationError(
            "BusinessCalendar",
            "hours",
            value,
            "must map weekday (0 = Monday) to (start, end) or a list of (start, end) windows",
        )
    days: list[list[Window]] = [[] for _ in range(7)]
    for day, spec in value.items():
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            raise ValidationError(
                "BusinessCalendar", "hours", day, "weekdays are 0 (Monday) to 6 (Sunday)"
            )
        windows = [spec] if spec and isinstance(spec[0], time) else list(spec)
        for window in windows:
            if (
                not isinstance(window, (tuple, list))
                or len(window) != 2
                or not all(isinstance(t, time) and t.tzinfo is None for t in window)
                or not window[0] < window[1]
            ):
                raise ValidationError(
                    "BusinessCalendar",
                    "hours",
                    window,
                    f"weekday {day}: a window is (start, end) naive times with start < end",
                )
            days[day].append((window[0], window[1]))
    for day_windows in days:
        day_windows.sort()
        for (_, end), (start, _) in itertools.pairwise(day_windows):
            if start < end:
                raise ValidationError(
                    "BusinessCalendar", "hours", day_windows, "windows of a day must not overlap"
                )
    if not any(days):
        raise ValidationError("BusinessCalendar", "hours", value, "needs at least one window")
    return tuple(tuple(d) for d in days)


def _to_holidays(value: Iterable[date]) -> frozenset[date]:
    result = frozenset(value)
    for day in result:
        if not isinstance(day, date) or isinstance(day, datetime):
            raise ValidationError("BusinessCalendar", "holidays", day, "must be dates")
    return result


def _to_years(years: Any) -> list[int]:
    values = [years] if isinstance(years, int) else years
    try:
        if isinstance(values, (str, bytes)):
            raise TypeError
        values = list(values)
    except TypeError:
        raise ValidationError(
            "BusinessCalendar", "years", years, "must be a year or an iterable of years"
        ) from None
    for year in values:
        if isinstance(year, bool) or not isinstance(year, int) or not 1 <= year <= 9999:
            raise ValidationError(
                "BusinessCalendar", "years", year, "years are whole numbers from 1 to 9999"
            )
    if not values:
        raise ValidationError("BusinessCalendar", "years", years, "give at least one year")
    return sorted(set(values))


def country_holidays(
    country: str, years: int | Iterable[int], *, subdiv: str | None = None
) -> frozenset[date]:
    """The public holidays of ``country`` (and ``subdiv``) in ``years``, from the optional
    ``holidays`` package, as the set of dates :class:`BusinessCalendar` takes.

    ``country`` is an ISO 3166-1 alpha-2 code (``"US"``, ``"FR"``; case-insensitive),
    ``subdiv`` a subdivision code the package knows (``"CA"`` for California). The dates
    are the package's defaults for that country, which include "observed" days off (a US
    holiday on a Saturday is also observed on the Friday). An unknown country or
    subdivision raises :class:`~crmkit.errors.ValidationError`; without the package,
    :class:`~crmkit.errors.MissingDependencyError` says to ``pip install 'crmkit[holidays]'``.

    Examples
    --------
    >>> from crmkit.errors import MissingDependencyError
    >>> try:
    ...     days = country_holidays("US", 2026)
    ... except MissingDependencyError:  # the holidays extra is not installed
    ...     days = frozenset({date(2026, 12, 25)})
    >>> date(2026, 12, 25) in days, date(2026, 12, 24) in days
    (True, False)
    """
    if not isinstance(country, str) or not country.strip():
        raise ValidationError(
            "BusinessCalendar", "country", country, "must be a country code like 'US' or 'FR'"
        )
    if subdiv is not None and (not isinstance(subdiv, str) or not subdiv.strip()):
        raise ValidationError(
            "BusinessCalendar", "subdiv", subdiv, "must be a subdivision code like 'CA' or None"
        )
    code = country.strip().upper()
    wanted = _to_years(years)
    pkg = require("holidays", extra="holidays", feature="country_holidays()")
    try:
        found = pkg.country_holidays(code, subdiv=subdiv, years=wanted)
    except NotImplementedError:
        known = pkg.list_supported_countries()
        if code not in known:
            raise ValidationError(
                "BusinessCalendar",
                "country",
                country,
                "is not a country code the holidays package knows (ISO 3166-1 alpha-2, "
                "like 'US' or 'FR')",
            ) from None
        subdivs = list(known[code])
        hint = ", ".join(subdivs[:8]) + (", ..." if len(subdivs) > 8 else "")
        raise ValidationError(
            "BusinessCalendar",
            "subdiv",
            subdiv,
            f"is not a subdivision of {code} the holidays package knows ({hint or 'none'})",
        ) from None
    return frozenset(found)


@functools.lru_cache(maxsize=4096)
def _windows(
    zone: str, hours: tuple[Window, ...], day: date
) -> tuple[tuple[datetime, datetime], ...]:
    result = []
    for start, end in hours:
        a = localize(datetime.combine(day, start), zone)
        if end == time.max:  # "until midnight": the next day's 00:00
            b = localize(datetime.combine(day + timedelta(days=1), time(0)), zone)
        else:
            b = localize(datetime.combine(day, end), zone)
        if a < b:
            result.append((a, b))
    return tuple(result)


@attrs.frozen
class BusinessCalendar:
    """Working hours per weekday in ``timezone``, minus ``holidays`` (local dates; see
    :func:`country_holidays` for a country's public holidays).

    ``hours`` maps a weekday (0 = Monday) to a ``(start, end)`` window or a list of them;
    an end of ``time.max`` means midnight (``{d: (time(0), time.max) for d in range(7)}``
    is round the clock).
    All results are aware UTC datetimes; inputs may be in any zone but must be aware.

    Examples
    --------
    >>> from datetime import time
    >>> cal = BusinessCalendar("Europe/Paris", {d: (time(9), time(17)) for d in range(5)})
    >>> friday_4pm = datetime(2026, 1, 9, 15, 0, tzinfo=UTC)   # 16:00 in Paris
    >>> cal.is_open(friday_4pm)
    True
    >>> cal.add_business_time(friday_4pm, hours=2).isoformat()  # Monday 10:00 Paris
    '2026-01-12T09:00:00+00:00'
    >>> cal.business_time_between(friday_4pm, datetime(2026, 1, 12, 9, tzinfo=UTC))
    datetime.timedelta(seconds=7200)
    """

    timezone: str = attrs.field(default="UTC")
    hours: tuple[tuple[Window, ...], ...] = attrs.field(
        default=attrs.Factory(lambda: {d: (time(9), time(17)) for d in range(5)}),
        converter=_to_hours,
    )
    holidays: frozenset[date] = attrs.field(default=frozenset(), converter=_to_holidays)

    def __attrs_post_init__(self) -> None:
        _zone(self.timezone)

    @classmethod
    def from_rep(cls, rep: Rep, holidays: Iterable[date] = ()) -> BusinessCalendar:
        """The rep's working days and hours in the rep's time zone.

        >>> rep = Rep(id="r", name="Ana", timezone="America/Sao_Paulo")
        >>> BusinessCalendar.from_rep(rep).hours[0]
        ((datetime.time(9, 0), datetime.time(17, 0)),)
        """
        if not rep.work_start < rep.work_end:
            raise ValidationError(
                "Rep",
                "work_end",
                rep.work_end,
                "must be after work_start for a business calendar",
                record_id=rep.id,
            )
        if not rep.work_days:
            raise ValidationError(
                "Rep", "work_days", rep.work_days, "has no working day", record_id=rep.id
            )
        return cls(
            rep.timezone,
            dict.fromkeys(rep.work_days, (rep.work_start, rep.work_end)),
            holidays,
        )

    # -- windows --

    def local_date(self, dt: datetime) -> date:
        """The date of ``dt`` on a wall clock in this calendar's zone."""
        return _aware(dt).astimezone(ZoneInfo(self.timezone)).date()

    def is_business_day(self, day: date) -> bool:
        """Whether ``day`` has working hours and is not a holiday."""
        return bool(self.hours[day.weekday()]) and day not in self.holidays

    def windows(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working windows of a local date as ``(start, end)`` UTC instants."""
        if not self.is_business_day(day):
            return ()
        return _windows(self.timezone, self.hours[day.weekday()], day)

    def _iter_windows(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        day = self.local_date(since) - timedelta(days=1)
        for offset in range(_SCAN_DAYS):
            for window in self.windows(day + timedelta(days=offset)):
                if window[1] > since:
                    yield window
        raise ValidationError(
            "BusinessCalendar",
            "holidays",
            len(self.holidays),
            f"no working time within {_SCAN_DAYS} days after {since.isoformat()}",
        )

    # -- queries --

    def is_open(self, dt: datetime) -> bool:
        """Whether ``dt`` falls inside working hours (start inclusive, end exclusive)."""
        dt = _aware(dt)
        day = self.local_date(dt)
        return any(a <= dt < b for a, b in self.windows(day))

    def next_open(self, dt: datetime) -> datetime:
        """``dt`` itself if open, else the start of the next working window (UTC)."""
        dt = _aware(dt)
        for start, _ in self._iter_windows(dt):
            return max(start, dt.astimezone(UTC))
        raise AssertionError("unreachable")  # pragma: no cover

    def add_business_time(self, dt: datetime, *, hours: float = 0, days: int = 0) -> datetime:
        """``dt`` moved forward by working time.

        ``days`` first: the same wall-clock time ``days`` business days later (moved to
        the next opening if that time is closed); then ``hours`` of working time, counted
        as real elapsed time inside windows. The end of a window counts as reached (adding
        exactly the rest of a day's hours returns that day's closing time).
        """
        dt = _aware(dt)
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise ValidationError("BusinessCalendar", "days", days, "must be a whole number >= 0")
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not hours >= 0:
            raise ValidationError("BusinessCalendar", "hours", hours, "must be a number >= 0")
        cursor = dt.astimezone(UTC)
        if days:
            zone = ZoneInfo(self.timezone)
            local = cursor.astimezone(zone)
            day, left = local.date(), days
            for _ in range(_SCAN_DAYS):
                if not left:
                    break
                day += timedelta(days=1)
                if self.is_business_day(day):
                    left -= 1
            cursor = self.next_open(
                localize(datetime.combine(day, local.time().replace(tzinfo=None)), self.timezone)
            )
        remaining = timedelta(hours=hours)
        if not remaining:
            return cursor if days else dt.astimezone(UTC)
        for start, end in self._iter_windows(cursor):
            begin = max(start, cursor)
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        raise AssertionError("unreachable")  # pragma: no cover

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time from ``a`` to ``b`` (negative if ``b`` is before ``a``)."""
        a, b = _aware(a).astimezone(UTC), _aware(b).astimezone(UTC)
        if b < a:
            return -self.business_time_between(b, a)
        total = timedelta()
        day = self.local_date(a) - timedelta(days=1)
        last = self.local_date(b)
        while day <= last:
            for start, end in self.windows(day):
                lo, hi = max(start, a), min(end, b)
                if lo < hi:
                    total += hi - lo
            day += timedelta(days=1)
        return total


def _aware(dt: Any) -> datetime:
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise ValidationError(
            "BusinessCalendar", "dt", dt, "must be a timezone-aware datetime (add tzinfo=...)"
        )
    return dt
