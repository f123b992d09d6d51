"""Missed recurring reminders roll forward on tick (issue 13, item 14); follow-ups on the
owner's calendar and per-rep holidays (item 15).

Paris in January is UTC+1, so a 09:00 Paris reminder is due at 08:00Z; expectations are
worked out by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from crmkit import MemoryStore, Rep, SQLiteStore, ValidationError
from crmkit.reminders import (
    ReminderState,
    complete,
    follow_up,
    schedule,
    snooze,
    state_of,
    tick,
)

AnyStore = MemoryStore | SQLiteStore


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    s: AnyStore = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "m.db")
    yield s
    s.close()


def daily(store: AnyStore, rule: str = "FREQ=DAILY", before: int = 0) -> None:
    schedule(
        store,
        id="d",
        title="Check inbox",
        due_at=datetime(2026, 1, 5, 9, 0),  # Monday 09:00 Paris = 08:00Z
        timezone="Europe/Paris",
        rrule=rule,
        remind_before_minutes=before,
    )


def kinds(events: list[object]) -> list[tuple[str, str]]:
    return [(e.kind, e.reminder_id) for e in events]  # type: ignore[attr-defined]


def test_missed_daily_reminder_rolls_to_the_next_day(store: AnyStore) -> None:
    daily(store)
    assert kinds(tick(store, utc(2026, 1, 5, 8))) == [("due", "d")]
    assert tick(store, utc(2026, 1, 6, 7, 59)) == []  # Monday's is overdue, not yet missed
    events = tick(store, utc(2026, 1, 6, 8))  # Tuesday's occurrence comes
    assert kinds(events) == [("missed", "d"), ("due", "d.1")]
    assert events[0].at == utc(2026, 1, 5, 8)
    missed, current = store.reminders.get("d"), store.reminders.get("d.1")
    assert missed.status.value == "missed"
    assert state_of(store, missed, utc(2026, 1, 6, 8)) == ReminderState.MISSED
    assert missed.custom["reminder_skipped"] == 0
    assert current.status.value == "open"
    assert current.due_at == utc(2026, 1, 6, 8)
    assert tick(store, utc(2026, 1, 6, 8)) == []  # idempotent
    with pytest.raises(ValidationError, match="not open"):
        complete(store, "d", utc(2026, 1, 6, 9))


def test_after_downtime_only_the_current_occurrence_is_created(store: AnyStore) -> None:
    daily(store)
    events = tick(store, utc(2026, 1, 9, 8, 30))  # Friday: Tue, Wed, Thu passed unseen
    assert kinds(events) == [("missed", "d"), ("due", "d.4")]
    assert store.reminders.get("d").custom["reminder_skipped"] == 3
    assert store.reminders.get("d.4").due_at == utc(2026, 1, 9, 8)
    assert sorted(r.id for r in store.reminders) == ["d", "d.4"]


def test_lead_time_rolls_at_the_next_alert(store: AnyStore) -> None:
    daily(store, before=30)
    assert kinds(tick(store, utc(2026, 1, 6, 7, 29))) == [("due", "d")]
    assert kinds(tick(store, utc(2026, 1, 6, 7, 30))) == [("missed", "d"), ("due", "d.1")]


def test_a_snooze_is_honoured_before_rolling(store: AnyStore) -> None:
    daily(store)
    snooze(store, "d", utc(2026, 1, 7, 10))  # Wednesday 10:00Z
    assert tick(store, utc(2026, 1, 6, 8)) == []  # Tuesday: the snooze wins
    assert kinds(tick(store, utc(2026, 1, 7, 10))) == [("due", "d")]
    # Thursday 08:00Z is the first occurrence alerting after the snooze
    assert kinds(tick(store, utc(2026, 1, 8, 8))) == [("missed", "d"), ("due", "d.3")]


def test_completed_and_one_off_reminders_never_roll(store: AnyStore) -> None:
    daily(store)
    schedule(store, id="once", title="Once", due_at=utc(2026, 1, 5, 8))
    nxt = complete(store, "d", utc(2026, 1, 5, 8, 30)).next
    assert nxt is not None
    assert nxt.id == "d.1"
    events = tick(store, utc(2026, 1, 6, 8))
    assert kinds(events) == [("due", "once"), ("due", "d.1")]
    assert store.reminders.get("once").status.value == "open"


def test_the_last_occurrence_of_a_series_stays_open(store: AnyStore) -> None:
    daily(store, rule="FREQ=DAILY;COUNT=2")
    assert kinds(tick(store, utc(2026, 1, 6, 8))) == [("missed", "d"), ("due", "d.1")]
    assert tick(store, utc(2026, 1, 9, 8)) == []
    assert store.reminders.get("d.1").status.value == "open"


# -- follow-ups on the owner's calendar, holidays of each rep ------------------------------


def test_follow_up_counts_days_on_the_owners_calendar(store: AnyStore) -> None:
    store.reps.add(Rep(id="eva", name="Eva", timezone="Europe/Paris"))
    schedule(
        store, id="demo", title="Demo", owner_id="eva", timezone="UTC", due_at=utc(2026, 3, 5)
    )
    complete(store, "demo", utc(2026, 3, 27, 15))  # 16:00 CET in Paris
    r = follow_up(store, "demo", days=3)
    # 16:00 in Paris three days later, CEST (UTC+2) after 29 March; in the reminder's
    # own zone (UTC) it would have been 15:00Z
    assert r.due_at == utc(2026, 3, 30, 14)
    assert r.timezone == "Europe/Paris"


def test_each_rep_has_holidays_of_their_own(store: AnyStore) -> None:
    hours = {"work_start": time(9), "work_end": time(17), "timezone": "UTC"}
    store.reps.add_many([Rep(id="ana", name="Ana", **hours), Rep(id="bo", name="Bo", **hours)])
    for rep in ("ana", "bo"):  # due Friday 16:00, one working hour left that day
        schedule(store, id=rep, title="Call", owner_id=rep, due_at=utc(2026, 1, 9, 16))
    tick(store, utc(2026, 1, 9, 16))
    monday_ten = utc(2026, 1, 12, 10)  # Fri 16-17 + Mon 9-10 = 2 working hours
    events = tick(
        store, monday_ten, escalate_after_hours=2, rep_holidays={"ana": [date(2026, 1, 12)]}
    )
    assert kinds(events) == [("escalated", "bo")]  # Ana is off on Monday: 1 hour so far
    events = tick(
        store,
        utc(2026, 1, 13, 10),
        escalate_after_hours=2,
        rep_holidays={"ana": [date(2026, 1, 12)]},
    )
    assert kinds(events) == [("escalated", "ana")]
