"""BusinessCalendar against an independent minute-by-minute oracle, near DST transitions.

The oracle converts each UTC minute to the zone's wall clock with zoneinfo and checks the
weekday, the wall-clock windows and the holidays directly; it never builds windows.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import Rep, ValidationError
from crmkit.reminders import BusinessCalendar, localize

ZONES = {
    "America/New_York": 2026,
    "Europe/Paris": 2026,
    "Australia/Sydney": 2026,
    "America/Sao_Paulo": 2018,  # Brazil stopped DST in 2019; 2018 had both changes
}

TEMPLATES: list[list[tuple[int, int]]] = [
    [],
    [(9, 17)],
    [(0, 4), (9, 17)],
    [(1, 3)],
    [(2, 3), (22, 23)],
    [(0, 23)],
    [(6, 8), (12, 13)],
]


@functools.cache
def transitions(zone: str, year: int) -> list[datetime]:
    tz = ZoneInfo(zone)
    start = datetime(year, 1, 1, tzinfo=UTC)
    found = []
    previous = start.astimezone(tz).utcoffset()
    for hour in range(1, 366 * 24):
        moment = start + timedelta(hours=hour)
        offset = moment.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(moment)
            previous = offset
    return found


def hours_of(templates: list[int]) -> dict[int, list[tuple[time, time]]]:
    result: dict[int, list[tuple[time, time]]] = {}
    for day, index in enumerate(templates):
        windows = [(time(a), time(b)) for a, b in TEMPLATES[index] if a < b]
        if windows:
            result[day] = windows
    return result


def oracle_open(
    hours: dict[int, list[tuple[time, time]]], zone: str, holidays: set[date], m: datetime
) -> bool:
    local = m.astimezone(ZoneInfo(zone))
    wall = local.time().replace(tzinfo=None)
    if local.date() in holidays:
        return False
    return any(a <= wall < b for a, b in hours.get(local.weekday(), []))


def oracle_between(
    hours: dict[int, list[tuple[time, time]]],
    zone: str,
    holidays: set[date],
    a: datetime,
    b: datetime,
) -> timedelta:
    minutes = 0
    m = a
    while m < b:
        minutes += oracle_open(hours, zone, holidays, m)
        m += timedelta(minutes=1)
    return timedelta(minutes=minutes)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, dict[int, list[tuple[time, time]]], set[date], datetime]:
    zone = draw(st.sampled_from(sorted(ZONES)))
    templates = draw(st.lists(st.integers(0, len(TEMPLATES) - 1), min_size=7, max_size=7))
    if not any(TEMPLATES[i] for i in templates):
        templates[0] = 2
    hours = hours_of(templates)
    pivot = draw(st.sampled_from(transitions(zone, ZONES[zone])))
    start = pivot + timedelta(minutes=15 * draw(st.integers(-4 * 60, 4 * 60)))
    holidays = set()
    if draw(st.booleans()):
        holidays.add(
            pivot.astimezone(ZoneInfo(zone)).date() + timedelta(days=draw(st.integers(-1, 1)))
        )
    return zone, hours, holidays, start


@settings(max_examples=60, deadline=None)
@given(cases(), st.integers(0, 48 * 60))
def test_between_matches_oracle(
    case: tuple[str, dict[int, list[tuple[time, time]]], set[date], datetime], span: int
) -> None:
    zone, hours, holidays, a = case
    cal = BusinessCalendar(zone, hours, holidays)
    b = a + timedelta(minutes=span)
    expected = oracle_between(hours, zone, holidays, a, b)
    assert cal.business_time_between(a, b) == expected
    assert cal.business_time_between(b, a) == -expected


@settings(max_examples=60, deadline=None)
@given(cases(), st.integers(0, 30 * 60))
def test_add_business_time_inverts_between(
    case: tuple[str, dict[int, list[tuple[time, time]]], set[date], datetime], minutes: int
) -> None:
    zone, hours, holidays, a = case
    cal = BusinessCalendar(zone, hours, holidays)
    result = cal.add_business_time(a, hours=minutes / 60)
    assert result >= a
    assert oracle_between(hours, zone, holidays, a, result) == timedelta(minutes=minutes)
    if minutes:
        # the last minute before the result was working time: no closed tail added
        assert oracle_open(hours, zone, holidays, result - timedelta(minutes=1))
    opened = cal.next_open(a)
    assert oracle_open(hours, zone, holidays, opened)
    assert oracle_between(hours, zone, holidays, a, opened) == timedelta()
    assert cal.is_open(a) == oracle_open(hours, zone, holidays, a)


def test_spring_forward_day_has_an_hour_less() -> None:
    # 2026-03-08 (Sunday): New York clocks jump 02:00 -> 03:00
    cal = BusinessCalendar("America/New_York", {6: (time(0), time(4))})
    day_start = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST
    assert cal.business_time_between(day_start, day_start + timedelta(days=1)) == timedelta(
        hours=3
    )
    # the window ends at 04:00 EDT = 08:00 UTC
    assert cal.add_business_time(day_start, hours=3) == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)


def test_fall_back_day_has_an_hour_more() -> None:
    # 2026-11-01 (Sunday): 01:00-02:00 happens twice
    cal = BusinessCalendar("America/New_York", {6: (time(0), time(4))})
    day_start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
    assert cal.business_time_between(day_start, day_start + timedelta(days=1)) == timedelta(
        hours=5
    )
    assert cal.is_open(datetime(2026, 11, 1, 6, 30, tzinfo=UTC))  # second 01:30 (EST)


def test_sao_paulo_midnight_gap() -> None:
    # 2018-11-04: Sao Paulo clocks jumped from 00:00 to 01:00
    cal = BusinessCalendar("America/Sao_Paulo", {6: (time(0), time(2))})
    assert localize(datetime(2018, 11, 4, 0, 30), "America/Sao_Paulo") == datetime(
        2018, 11, 4, 3, 30, tzinfo=UTC
    )
    start = datetime(2018, 11, 4, 3, 0, tzinfo=UTC)  # 00:00 -03 == 01:00 -02
    assert cal.business_time_between(start, start + timedelta(days=1)) == timedelta(hours=1)


def test_add_days_keeps_wall_time_and_skips_holidays() -> None:
    weekdays = {d: (time(9), time(17)) for d in range(5)}
    cal = BusinessCalendar("Europe/Paris", weekdays, {date(2026, 3, 30)})
    friday = datetime(2026, 3, 27, 10, 0, tzinfo=UTC)  # 11:00 CET
    # Mon 30 is a holiday; Tue 31 11:00 CEST (after the 29 March change) = 09:00 UTC
    assert cal.add_business_time(friday, days=1) == datetime(2026, 3, 31, 9, 0, tzinfo=UTC)


def test_from_rep_and_validation() -> None:
    rep = Rep(id="r", name="R", timezone="Australia/Sydney", work_days=(0, 2))
    cal = BusinessCalendar.from_rep(rep)
    assert [bool(cal.hours[d]) for d in range(7)] == [
        True,
        False,
        True,
        False,
        False,
        False,
        False,
    ]
    with pytest.raises(ValidationError, match="work_end"):
        BusinessCalendar.from_rep(Rep(id="n", name="N", work_start=time(22), work_end=time(6)))
    with pytest.raises(ValidationError, match="timezone"):
        BusinessCalendar("Mars/Olympus", {0: (time(9), time(17))})
    with pytest.raises(ValidationError, match="start < end"):
        BusinessCalendar("UTC", {0: (time(17), time(9))})
    with pytest.raises(ValidationError, match="at least one"):
        BusinessCalendar("UTC", {})
    with pytest.raises(ValidationError, match="timezone-aware"):
        BusinessCalendar("UTC").is_open(datetime(2026, 1, 5, 9))
    with pytest.raises(ValidationError, match="hours"):
        BusinessCalendar("UTC").add_business_time(datetime(2026, 1, 5, tzinfo=UTC), hours=-1)


def test_round_the_clock_has_no_gaps_at_midnight() -> None:
    cal = BusinessCalendar("Europe/Paris", {d: (time(0), time.max) for d in range(7)})
    a = datetime(2026, 3, 28, 12, tzinfo=UTC)
    # 48 real hours, across the 29 March DST change and two midnights
    assert cal.business_time_between(a, a + timedelta(hours=48)) == timedelta(hours=48)
    assert cal.add_business_time(a, hours=48) == a + timedelta(hours=48)
