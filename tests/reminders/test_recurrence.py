"""RRULE expansion across DST changes (no duplicate instants, the repeated autumn hour kept
for sub-daily rules), rule validation, and bounded expansion of any rule text.

Every expected instant is written by hand from the zone's offsets, noted beside it:
Berlin CET +1 / CEST +2 (2026: forward 29 March 02:00, back 25 October 03:00); New York
EST -5 / EDT -4 (forward 8 March 02:00, back 1 November 02:00); Sydney AEST +10 / AEDT +11
(back 5 April 03:00, forward 4 October 02:00).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmkit import CrmError, MemoryStore, SQLiteStore, ValidationError
from crmkit.reminders import complete, occurrences, schedule, tick


def z(day: str) -> datetime:
    """``"2026-03-29T01:30"`` as a UTC instant."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


HOURLY = [
    # zone, first wall time, expected instants (UTC)
    (
        "Europe/Berlin",  # spring: 02:30 does not exist, read as CET = 03:30 CEST = 01:30Z
        datetime(2026, 3, 29, 0, 30),
        ["2026-03-28T23:30", "2026-03-29T00:30", "2026-03-29T01:30", "2026-03-29T02:30"],
    ),
    (
        "Europe/Berlin",  # autumn: 02:30 CEST (00:30Z) then 02:30 CET (01:30Z)
        datetime(2026, 10, 25, 0, 30),
        [
            "2026-10-24T22:30",
            "2026-10-24T23:30",
            "2026-10-25T00:30",
            "2026-10-25T01:30",
            "2026-10-25T02:30",
        ],
    ),
    (
        "America/New_York",  # spring: 01:30 EST 06:30Z, 02:30 read as EST 07:30Z, 04:30 EDT
        datetime(2026, 3, 8, 0, 30),
        ["2026-03-08T05:30", "2026-03-08T06:30", "2026-03-08T07:30", "2026-03-08T08:30"],
    ),
    (
        "America/New_York",  # autumn: 01:30 EDT 05:30Z, 01:30 EST 06:30Z
        datetime(2026, 11, 1, 0, 30),
        ["2026-11-01T04:30", "2026-11-01T05:30", "2026-11-01T06:30", "2026-11-01T07:30"],
    ),
    (
        "Australia/Sydney",  # autumn: 02:30 AEDT 15:30Z, 02:30 AEST 16:30Z
        datetime(2026, 4, 5, 1, 30),
        ["2026-04-04T14:30", "2026-04-04T15:30", "2026-04-04T16:30", "2026-04-04T17:30"],
    ),
    (
        "Australia/Sydney",  # spring: 02:30 read as AEST 16:30Z = 03:30 AEDT
        datetime(2026, 10, 4, 0, 30),
        ["2026-10-03T14:30", "2026-10-03T15:30", "2026-10-03T16:30", "2026-10-03T17:30"],
    ),
]

DAILY = [
    (
        "Europe/Berlin",  # 02:30 CET, gap read as CET, then CEST
        datetime(2026, 3, 28, 2, 30),
        ["2026-03-28T01:30", "2026-03-29T01:30", "2026-03-30T00:30"],
    ),
    (
        "Europe/Berlin",  # 02:30 CEST, fold: first (CEST), then CET
        datetime(2026, 10, 24, 2, 30),
        ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"],
    ),
    (
        "America/New_York",  # 02:30 EST, gap read as EST, then EDT
        datetime(2026, 3, 7, 2, 30),
        ["2026-03-07T07:30", "2026-03-08T07:30", "2026-03-09T06:30"],
    ),
    (
        "America/New_York",  # 01:30 EDT, fold: first (EDT), then EST
        datetime(2026, 10, 31, 1, 30),
        ["2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"],
    ),
    (
        "Australia/Sydney",  # 02:30 AEDT, fold: first (AEDT), then AEST
        datetime(2026, 4, 4, 2, 30),
        ["2026-04-03T15:30", "2026-04-04T15:30", "2026-04-05T16:30"],
    ),
    (
        "Australia/Sydney",  # 02:30 AEST, gap read as AEST, then AEDT
        datetime(2026, 10, 3, 2, 30),
        ["2026-10-02T16:30", "2026-10-03T16:30", "2026-10-04T15:30"],
    ),
]


@pytest.mark.parametrize(("zone", "start", "expected"), HOURLY)
def test_hourly_rule_has_each_real_hour_once_across_dst(
    zone: str, start: datetime, expected: list[str]
) -> None:
    got = occurrences("FREQ=HOURLY", start, zone, count=len(expected))
    assert got == [z(e) for e in expected]


@pytest.mark.parametrize(("zone", "start", "expected"), DAILY)
def test_daily_rule_keeps_wall_time_across_dst(
    zone: str, start: datetime, expected: list[str]
) -> None:
    assert occurrences("FREQ=DAILY", start, zone, count=3) == [z(e) for e in expected]


def test_count_counts_wall_times_and_drops_the_duplicate() -> None:
    # five wall times 00:30..04:30 in Berlin on the spring night; 02:30 and 03:30 are
    # one instant (01:30Z), so four instances
    got = occurrences("FREQ=HOURLY;COUNT=5", datetime(2026, 3, 29, 0, 30), "Europe/Berlin")
    assert got == [z(e) for e in HOURLY[0][2]]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MemoryStore | SQLiteStore:
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "r.db")


@pytest.mark.parametrize(("zone", "start", "expected"), HOURLY)
def test_completing_an_hourly_series_walks_the_same_instants(
    store: MemoryStore | SQLiteStore, zone: str, start: datetime, expected: list[str]
) -> None:
    r = schedule(store, id="h", title="Check", due_at=start, timezone=zone, rrule="FREQ=HOURLY")
    seen = [r.due_at]
    for _ in expected[1:]:
        c = complete(store, r.id, r.due_at)
        assert c.next is not None
        r = c.next
        seen.append(r.due_at)
    assert seen == [z(e) for e in expected]


# -- validation: rules that never finish or cannot be expanded -----------------------------

BAD_RULES = [
    ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL"),
    ("FREQ=DAILY;INTERVAL=-2", "INTERVAL"),
    ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "no occurrence"),
    ("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", "no occurrence"),
    ("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30", "no occurrence"),
    ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "no occurrence"),  # from 2026: never leap
    ("FREQ=HOURLY;BYSETPOS=2", "BYSETPOS"),
    ("FREQ=MONTHLY;BYSETPOS=40", "no occurrence"),
    ("FREQ=YEARLY;BYEASTER=1", "BYEASTER"),
    ("FREQ=DAILY;COUNT=0", "COUNT"),
    ("FREQ=DAILY;UNTIL=20250101T000000", "UNTIL"),
    ("FREQ=DAILY\nRDATE:20260301T090000", "single RRULE"),
    ("FREQ=SOMETIMES", "not a valid RRULE"),
    ("FREQ=YEARLY;UNTIL=20270101T000000;COUNT=2", "both COUNT and UNTIL"),
    # out of their RFC 5545 ranges: dateutil accepts these, then searches to the year 9999
    ("FREQ=SECONDLY;COUNT=93;BYMINUTE=-262,39,17186;BYMONTH=-372,1908;BYDAY=FR", "BYMINUTE"),
    ("FREQ=DAILY;BYSECOND=61", "BYSECOND value 61 is not within 0..60"),
    ("FREQ=DAILY;BYMINUTE=60", "BYMINUTE value 60"),
    ("FREQ=DAILY;BYHOUR=24", "BYHOUR value 24"),
    ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY value 32 is not within -31..-1 or 1..31"),
    ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY value 0"),
    ("FREQ=YEARLY;BYYEARDAY=-367", "BYYEARDAY value -367"),
    ("FREQ=YEARLY;BYWEEKNO=54", "BYWEEKNO value 54"),
    ("FREQ=YEARLY;BYMONTH=13", "BYMONTH value 13 is not within 1..12"),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=367", "BYSETPOS value 367"),
    ("FREQ=YEARLY;BYDAY=54MO", "BYDAY ordinal 54MO"),
    ("FREQ=MONTHLY;BYDAY=-60FR", "BYDAY ordinal -60FR"),
    # sub-daily rules whose days never come: refused after a day-by-day search, not a
    # second-by-second one
    ("FREQ=SECONDLY;BYMINUTE=39;BYMONTH=2;BYMONTHDAY=30", "no occurrence"),
    ("FREQ=SECONDLY;BYHOUR=23;BYMONTH=4;BYMONTHDAY=31", "no occurrence"),
    ("FREQ=MINUTELY;BYHOUR=23;BYYEARDAY=366;BYMONTH=1", "no occurrence"),
    ("FREQ=SECONDLY;BYHOUR=23;BYWEEKNO=1;BYMONTH=6", "no occurrence"),
    ("FREQ=SECONDLY;INTERVAL=86401;BYHOUR=23;BYMONTH=2", "no occurrence"),  # 1 s drift a day
]


@pytest.mark.parametrize(("rule", "reason"), BAD_RULES)
def test_bad_rules_are_refused_when_scheduled(
    store: MemoryStore | SQLiteStore, rule: str, reason: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(ValidationError, match=reason) as info:
        schedule(store, id="x", title="t", due_at=datetime(2026, 1, 1, 9), rrule=rule)
    assert time.perf_counter() - started < HANG_SECONDS
    assert info.value.field == "rrule"
    assert info.value.value == rule
    assert "x" not in store.reminders


# sub-daily rules on rare days: dateutil alone steps through every second (or minute) of
# every day in between; expanded day by day they are immediate. Expected instants by hand.
RARE_SUB_DAILY = [
    # 29 February on a Monday (2044), 23:00:00.. UTC
    (
        "FREQ=SECONDLY;BYHOUR=23;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
        ["2044-02-29T23:00:00", "2044-02-29T23:00:01", "2044-02-29T23:00:02"],
    ),
    (
        "FREQ=MINUTELY;BYHOUR=23;BYMINUTE=58,59;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
        ["2044-02-29T23:58", "2044-02-29T23:59", "2072-02-29T23:58"],  # the next Monday 29 Feb
    ),
    # the last day of a year whose 31 December is in ISO week 53 (2026 ends on a Thursday)
    (
        "FREQ=SECONDLY;BYWEEKNO=53;BYYEARDAY=-1;BYHOUR=23;BYMINUTE=59;BYSECOND=58,59",
        ["2026-12-31T23:59:58", "2026-12-31T23:59:59", "2032-12-31T23:59:58"],
    ),
    # every 7 hours in February only: from 2026-01-01 09:00, 1 February 00:00 is 735 = 7 * 105
    # hours later
    ("FREQ=HOURLY;INTERVAL=7;BYMONTH=2", ["2026-02-01T00:00", "2026-02-01T07:00"]),
]


@pytest.mark.parametrize(("rule", "expected"), RARE_SUB_DAILY)
def test_sub_daily_rule_on_rare_days_is_found_at_once(rule: str, expected: list[str]) -> None:
    got = occurrences(rule, datetime(2026, 1, 1, 9), "UTC", count=len(expected))
    assert got == [z(e) for e in expected]


def test_rare_but_real_rule_is_accepted() -> None:
    # 29 February on a Monday: 2044 is the next one after 2026
    got = occurrences(
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", datetime(2026, 1, 1, 9), "UTC", count=1
    )
    assert got == [z("2044-02-29T09:00")]


# -- fuzz: any rule text either works or is a CrmError, and every call returns promptly ----

PARTS = st.sampled_from(
    [
        "FREQ=YEARLY",
        "FREQ=MONTHLY",
        "FREQ=WEEKLY",
        "FREQ=DAILY",
        "FREQ=HOURLY",
        "FREQ=MINUTELY",
        "FREQ=SECONDLY",
        "FREQ=FORTNIGHTLY",
    ]
)
INTS = st.integers(-60, 60) | st.integers(-400, 400) | st.integers(-(10**12), 10**12)


def _part(key: str, values: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return st.lists(values, min_size=1, max_size=3).map(
        lambda v: f"{key}={','.join(str(x) for x in v)}"
    )


DAYS = st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU", "1MO", "-1FR", "53SU", "XX"])
RULE_PARTS = st.one_of(
    _part("INTERVAL", INTS).map(lambda p: p.split(",")[0]),
    _part("COUNT", INTS).map(lambda p: p.split(",")[0]),
    _part("BYMONTH", INTS),
    _part("BYMONTHDAY", INTS),
    _part("BYYEARDAY", INTS),
    _part("BYWEEKNO", INTS),
    _part("BYHOUR", INTS),
    _part("BYMINUTE", INTS),
    _part("BYSECOND", INTS),
    _part("BYSETPOS", INTS),
    _part("BYEASTER", INTS),
    st.lists(DAYS, min_size=1, max_size=3).map(lambda d: "BYDAY=" + ",".join(d)),
    st.sampled_from(["WKST=MO", "WKST=SU", "WKST=ZZ", "UNTIL=20270101T000000", "UNTIL=bad"]),
    st.text(max_size=12),
)
RULES = st.builds(
    lambda freq, parts: ";".join([freq, *parts]), PARTS, st.lists(RULE_PARTS, max_size=4)
) | st.text(max_size=40)
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"])
# Work is bounded by counted steps in the code (MAX_WALLS, MAX_STEPS, a day-by-day search
# over HORIZON_YEARS); this wall-clock guard only detects a hang on a shared machine.
HANG_SECONDS = 60.0


def _prompt(call: object) -> object:
    started = time.perf_counter()
    try:
        return call() if callable(call) else None
    except CrmError:
        return None
    finally:
        assert time.perf_counter() - started < HANG_SECONDS


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # took 163 s before BY* ranges were checked and sub-daily rules went day by day
    rule="FREQ=SECONDLY;COUNT=93;BYMINUTE=-262,39,17186;BYMONTH=-372,1908;BYDAY=FR,MO,FR",
    zone="Australia/Sydney",
    start=datetime(2014, 10, 16, 2, 56, 43, 86233),
    after_hours=0,
)
@example(
    rule="FREQ=SECONDLY;BYMINUTE=39;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
    zone="Australia/Sydney",
    start=datetime(2014, 10, 16, 2, 56, 43),
    after_hours=24 * 400,
)
@given(
    rule=RULES,
    zone=ZONES,
    start=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1)),
    after_hours=st.integers(0, 24 * 400),
)
def test_any_rule_text_is_a_crm_error_or_works_promptly(
    rule: str, zone: str, start: datetime, after_hours: int
) -> None:
    store = MemoryStore()
    _prompt(lambda: occurrences(rule, start, zone, count=5))
    r = _prompt(
        lambda: schedule(store, id="r", title="t", due_at=start, timezone=zone, rrule=rule)
    )
    if r is None:
        return
    now = start.replace(tzinfo=UTC) + timedelta(hours=after_hours)
    _prompt(lambda: tick(store, now))  # rolls a missed series forward
    for reminder in store.reminders.query():
        if reminder.status.value == "open":
            _prompt(lambda rid=reminder.id: complete(store, rid, now))


def test_a_never_ending_rule_stored_around_schedule_cannot_hang(
    store: MemoryStore | SQLiteStore,
) -> None:
    from crmkit import Reminder

    rule = "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30"
    store.reminders.add(Reminder(id="raw", title="t", due_at=z("2026-01-01T09:00"), rrule=rule))
    started = time.perf_counter()
    assert [e.kind for e in tick(store, z("2026-01-02T09:00"))] == ["due"]  # not rolled
    with pytest.raises(ValidationError, match="no occurrence"):
        complete(store, "raw", z("2026-01-02T09:00"))
    assert store.reminders.get("raw").status.value == "open"  # nothing half-written
    assert time.perf_counter() - started < HANG_SECONDS


CHANGES = {  # the nights the clocks change in 2026 and 2027
    "Europe/Berlin": ["2026-03-29", "2026-10-25", "2027-03-28", "2027-10-31"],
    "America/New_York": ["2026-03-08", "2026-11-01", "2027-03-14", "2027-11-07"],
    "Australia/Sydney": ["2026-04-05", "2026-10-04", "2027-04-04", "2027-10-03"],
}


@settings(max_examples=60, deadline=None)
@given(
    zone_night=st.sampled_from(
        [(zone, night) for zone, nights in CHANGES.items() for night in nights]
    ),
    hours_before=st.integers(0, 30),
    minute=st.integers(0, 59),
)
def test_hourly_instants_are_consecutive_real_hours(
    zone_night: tuple[str, str], hours_before: int, minute: int
) -> None:
    # these zones shift by whole hours, so "every hour at :mm" is every real hour at :mm
    zone, night = zone_night
    start = datetime.fromisoformat(night).replace(minute=minute) - timedelta(hours=hours_before)
    got = occurrences("FREQ=HOURLY", start, zone, count=40)  # spans the change
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(got))
    assert all(i.minute == minute for i in got)


def test_steps_between_times_of_day_are_counted_and_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # from 09:00:00 the first second of 23:00 is 14 * 3600 = 50,400 seconds away
    rule, start = "FREQ=SECONDLY;BYHOUR=23", datetime(2026, 1, 1, 9)
    assert occurrences(rule, start, "UTC", count=1) == [z("2026-01-01T23:00:00")]
    monkeypatch.setattr("crmkit.reminders._recurrence.MAX_STEPS", 50_399)
    with pytest.raises(ValidationError, match="too costly to expand") as info:
        occurrences(rule, start, "UTC", count=1)
    assert info.value.value == rule
    monkeypatch.setattr("crmkit.reminders._recurrence.MAX_STEPS", 50_400)
    assert occurrences(rule, start, "UTC", count=1) == [z("2026-01-01T23:00:00")]
