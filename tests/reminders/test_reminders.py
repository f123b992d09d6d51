"""Reminders in both stores: DST gap/fold policy, owner-zone states, recurrence, tick.

UTC expectations are worked out by hand from the zones' offsets (noted beside each one).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crmkit import MemoryStore, NotFound, Reminder, Rep, SQLiteStore, ValidationError
from crmkit.reminders import (
    ReminderState,
    alert_at,
    cancel,
    complete,
    due,
    follow_up,
    next_due,
    occurrences,
    overdue,
    plan,
    schedule,
    schedule_many,
    snooze,
    state_of,
    tick,
    upcoming,
)
from crmkit.store.memory import MemoryReminderRepository

AnyStore = MemoryStore | SQLiteStore


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    s: AnyStore = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "r.db")
    s.reps.add_many(
        [
            Rep(id="ana", name="Ana", timezone="America/Sao_Paulo"),  # UTC-3, no DST
            Rep(id="ned", name="Ned", timezone="America/New_York"),
        ]
    )
    yield s
    s.close()


# -- DST gap and fold ----------------------------------------------------------------------


def test_gap_wall_time_shifts_forward_by_the_gap(store: AnyStore) -> None:
    # 2026-03-08 02:30 does not exist in New York; +1h gap -> 03:30 EDT = 07:30 UTC
    r = schedule(store, id="g", title="t", due_at=datetime(2026, 3, 8, 2, 30), owner_id="ned")
    assert r.timezone == "America/New_York"
    assert r.due_at == utc(2026, 3, 8, 7, 30)


def test_fold_wall_time_takes_first_occurrence(store: AnyStore) -> None:
    # 2026-11-01 01:30 happens at 05:30 UTC (EDT) and 06:30 UTC (EST): the first one
    r = schedule(store, id="f", title="t", due_at=datetime(2026, 11, 1, 1, 30), owner_id="ned")
    assert r.due_at == utc(2026, 11, 1, 5, 30)


def test_daily_recurrence_keeps_wall_time_through_gap(store: AnyStore) -> None:
    schedule(
        store,
        id="d",
        title="standup",
        due_at=datetime(2026, 3, 7, 2, 30),
        owner_id="ned",
        rrule="FREQ=DAILY;COUNT=3",
    )
    first = complete(store, "d", utc(2026, 3, 7, 8))
    assert first.next is not None
    assert first.next.due_at == utc(2026, 3, 8, 7, 30)  # gap day: 03:30 EDT
    second = complete(store, first.next.id, utc(2026, 3, 8, 8))
    assert second.next is not None
    # back to 02:30, now EDT (UTC-4): the shifted occurrence did not drag the series
    assert second.next.due_at == utc(2026, 3, 9, 6, 30)
    third = complete(store, second.next.id, utc(2026, 3, 9, 8))
    assert third.next is None  # COUNT=3 exhausted
    assert [r.id for r in store.reminders.query(order_by="due_at")] == ["d", "d.1", "d.2"]


def test_daily_recurrence_in_fold_uses_first_occurrence() -> None:
    got = occurrences("FREQ=DAILY", datetime(2026, 10, 31, 1, 30), "America/New_York", count=3)
    # EDT (-4), first 01:30 of the fold (-4), then EST (-5)
    assert got == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_bad_rrule_is_a_validation_error(store: AnyStore) -> None:
    with pytest.raises(ValidationError, match="rrule"):
        schedule(store, id="x", title="t", due_at=utc(2026, 1, 5), rrule="FREQ=SOMETIMES")
    with pytest.raises(ValidationError, match="DTSTART"):
        schedule(
            store, id="y", title="t", due_at=utc(2026, 1, 5), rrule="DTSTART:20260101\nFREQ=DAILY"
        )
    assert len(store.reminders) == 0


# -- owner's zone vs UTC -------------------------------------------------------------------


def test_owner_zone_day_boundary(store: AnyStore) -> None:
    # due 20:00 in Sao Paulo (23:00 UTC, Jan 5); the reminder's own zone says UTC
    r = schedule(
        store, id="q", title="quote", due_at=utc(2026, 1, 5, 23), owner_id="ana", timezone="UTC"
    )
    late_evening = utc(2026, 1, 6, 1)  # 22:00 in Sao Paulo, already Jan 6 in UTC
    assert state_of(store, r, late_evening) == ReminderState.DUE_TODAY
    assert overdue(store, late_evening) == []
    after_midnight = utc(2026, 1, 6, 3)  # 00:00 Jan 6 in Sao Paulo
    assert state_of(store, r, after_midnight) == ReminderState.OVERDUE
    assert [x.id for x in overdue(store, after_midnight)] == ["q"]
    assert state_of(store, r, utc(2026, 1, 4, 23)) == ReminderState.PLANNED  # 20:00 Jan 4


def test_non_rep_owner_uses_reminder_zone(store: AnyStore) -> None:
    r = schedule(
        store,
        id="z",
        title="t",
        due_at=utc(2026, 1, 5, 23),
        owner_id="nobody",
        timezone="Asia/Tokyo",
    )  # 08:00 Jan 6 in Tokyo
    assert state_of(store, r, utc(2026, 1, 5, 16)) == ReminderState.DUE_TODAY  # 01:00 Jan 6


# -- queries -------------------------------------------------------------------------------


def test_due_respects_remind_before_and_snooze(store: AnyStore) -> None:
    schedule(store, id="a", title="a", due_at=utc(2026, 1, 5, 10), remind_before_minutes=30)
    schedule(store, id="b", title="b", due_at=utc(2026, 1, 5, 9, 45))
    schedule(store, id="c", title="c", due_at=utc(2026, 1, 5, 12))
    assert [r.id for r in due(store, utc(2026, 1, 5, 9, 30))] == ["a"]
    assert [r.id for r in due(store, utc(2026, 1, 5, 9, 45))] == ["a", "b"]
    snooze(store, "a", utc(2026, 1, 5, 11))
    assert [r.id for r in due(store, utc(2026, 1, 5, 10))] == ["b"]
    assert [r.id for r in due(store, utc(2026, 1, 5, 11))] == ["b", "a"]
    nd = next_due(store)
    assert nd is not None
    assert nd.id == "b"
    cancel(store, "b")
    nd = next_due(store)
    assert nd is not None
    assert nd.id == "a"


def test_upcoming_window(store: AnyStore) -> None:
    schedule(store, id="1", title="t", due_at=utc(2026, 1, 5, 10), owner_id="ana")
    schedule(store, id="2", title="t", due_at=utc(2026, 1, 5, 14), owner_id="ana")
    schedule(store, id="3", title="t", due_at=utc(2026, 1, 5, 11), owner_id="ned")
    schedule(store, id="4", title="t", due_at=utc(2026, 1, 5, 8), owner_id="ana")
    got = upcoming(store, "ana", timedelta(hours=6), now=utc(2026, 1, 5, 9))
    assert [r.id for r in got] == ["1", "2"]
    snooze(store, "4", utc(2026, 1, 5, 9, 30))
    got = upcoming(store, "ana", timedelta(hours=2), now=utc(2026, 1, 5, 9))
    assert [r.id for r in got] == ["4", "1"]


def test_state_transitions_are_checked(store: AnyStore) -> None:
    schedule(store, id="s", title="t", due_at=utc(2026, 1, 5))
    done = complete(store, "s", utc(2026, 1, 5, 1))
    assert done.next is None
    assert done.done.completed_at == utc(2026, 1, 5, 1)
    with pytest.raises(ValidationError, match="not open"):
        snooze(store, "s", utc(2026, 1, 6))
    with pytest.raises(NotFound):
        cancel(store, "missing")
    with pytest.raises(ValidationError, match="timezone-aware"):
        due(store, datetime(2026, 1, 5))


def test_completing_twice_or_a_missing_reminder_is_refused_and_writes_nothing(
    store: AnyStore,
) -> None:
    schedule(store, id="s", title="t", due_at=utc(2026, 1, 5))
    schedule(store, id="gone", title="t", due_at=utc(2026, 1, 5))
    cancel(store, "gone")
    done = complete(store, "s", utc(2026, 1, 5, 1)).done
    for rid, status in (("s", "done"), ("gone", "cancelled")):
        before = store.reminders.get(rid)
        with pytest.raises(ValidationError, match="is not open") as info:
            complete(store, rid, utc(2026, 1, 5, 2))
        error = info.value
        assert (error.record, error.record_id, error.field, error.value) == (
            "Reminder",
            rid,
            "status",
            status,
        )
        assert store.reminders.get(rid) == before
    assert store.reminders.get("s") == done
    with pytest.raises(NotFound, match="'missing'"):
        complete(store, "missing", utc(2026, 1, 5, 2))
    assert len(store.reminders) == 2


# -- follow-ups and plans ------------------------------------------------------------------


def test_follow_up_after_completion_or_deadline(store: AnyStore) -> None:
    schedule(store, id="call", title="Call", due_at=datetime(2026, 3, 27, 10), owner_id="ned")
    complete(store, "call", utc(2026, 3, 27, 18))  # 14:00 EDT
    after_done = follow_up(store, "call", days=3)
    assert after_done.due_at == utc(2026, 3, 30, 18)  # 14:00 EDT three days later
    after_due = follow_up(store, "call", days=3, basis="due", id="call.f2")
    assert after_due.due_at == utc(2026, 3, 30, 14)  # 10:00 EDT
    with pytest.raises(ValidationError, match="basis"):
        follow_up(store, "call", days=1, basis="later")


def test_plan_relative_to_renewal_across_dst(store: AnyStore) -> None:
    steps = [(-14, "prep"), (0, "renew")]
    rs = plan(store, date(2026, 4, 2), steps, id_prefix="ren", timezone="Europe/Paris", at=time(9))
    # 19 March: CET (+1) -> 08:00 UTC; 2 April: CEST (+2) -> 07:00 UTC
    assert [r.due_at for r in rs] == [utc(2026, 3, 19, 8), utc(2026, 4, 2, 7)]


# -- tick ----------------------------------------------------------------------------------


def test_tick_escalates_after_business_hours(store: AnyStore) -> None:
    # Ned works 09-17 Mon-Fri New York (EST, UTC-5 in January); due Fri 9 Jan 16:00 EST
    schedule(store, id="e", title="t", due_at=utc(2026, 1, 9, 21), owner_id="ned")
    first = tick(store, utc(2026, 1, 9, 21), escalate_after_hours=2)
    assert [(e.kind, e.reminder_id) for e in first] == [("due", "e")]
    assert tick(store, utc(2026, 1, 10, 21), escalate_after_hours=2) == []  # Saturday: 1h
    assert tick(store, utc(2026, 1, 12, 14, 59), escalate_after_hours=2) == []  # 1h59
    got = tick(store, utc(2026, 1, 12, 15), escalate_after_hours=2)  # Mon 10:00 EST
    assert [(e.kind, e.reminder_id) for e in got] == [("escalated", "e")]
    assert tick(store, utc(2026, 1, 12, 15), escalate_after_hours=2) == []


def test_snooze_rearms_tick(store: AnyStore) -> None:
    schedule(store, id="s", title="t", due_at=utc(2026, 1, 5, 9))
    assert len(tick(store, utc(2026, 1, 5, 9))) == 1
    snooze(store, "s", utc(2026, 1, 5, 10))
    assert tick(store, utc(2026, 1, 5, 9, 30)) == []
    again = tick(store, utc(2026, 1, 5, 10))
    assert [(e.kind, e.at) for e in again] == [("due", utc(2026, 1, 5, 10))]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 48), st.integers(0, 120), st.one_of(st.none(), st.integers(0, 48))
        ),
        max_size=12,
    ),
    st.lists(st.integers(0, 60), min_size=1, max_size=6),
)
def test_tick_is_idempotent_and_emits_each_alert_once(
    specs: list[tuple[int, int, int | None]], now_hours: list[int]
) -> None:
    store = MemoryStore()
    base = utc(2026, 1, 5)
    batch = [
        Reminder(
            id=f"r{i:02d}",
            title="t",
            due_at=base + timedelta(hours=h),
            remind_before_minutes=before,
            snoozed_until=None if s is None else base + timedelta(hours=s),
        )
        for i, (h, before, s) in enumerate(specs)
    ]
    schedule_many(store, batch)
    emitted: list[tuple[str, str]] = []
    for hours in sorted(now_hours):
        now = base + timedelta(hours=hours)
        events = tick(store, now, escalate_after_hours=4)
        assert tick(store, now, escalate_after_hours=4) == []
        emitted += [(e.kind, e.reminder_id) for e in events]
    assert len(emitted) == len(set(emitted))
    last = base + timedelta(hours=max(now_hours))
    expected_due = {r.id for r in batch if alert_at(r) <= last}
    assert {rid for kind, rid in emitted if kind == "due"} == expected_due
    expected_esc = {
        r.id for r in batch if (r.snoozed_until or r.due_at) + timedelta(hours=4) <= last
    }
    assert {rid for kind, rid in emitted if kind == "escalated"} == expected_esc


def _schedule_then_fail(store: AnyStore, rid: str, at: datetime) -> None:
    with store.transaction():
        schedule(store, id=rid, title="t", due_at=at)
        raise RuntimeError("roll back")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["schedule", "snooze", "complete", "cancel", "rollback"]),
            st.integers(0, 7),
            st.integers(0, 40),
        ),
        max_size=30,
    ),
    st.integers(0, 45),
)
def test_next_due_and_due_agree_with_sqlite_and_by_hand(
    ops: list[tuple[str, int, int]], now_hours: int
) -> None:
    """The memory store answers next_due/due from its ordered open reminders: the same
    answers as SQLite's queries and as a scan, after snoozes, completions, cancels,
    rolled-back transactions and a large batch."""
    base = utc(2026, 1, 5)
    stores: list[AnyStore] = [MemoryStore(), SQLiteStore(":memory:")]
    bulk = [
        Reminder(id=f"b{i:03d}", title="t", due_at=base + timedelta(hours=i % 50))
        for i in range(300)  # a large batch: the ordered structure is rebuilt on read
    ]
    for s in stores:
        schedule_many(s, bulk)
    for op, n, hours in ops:
        rid, at = f"r{n}", base + timedelta(hours=hours)
        for s in stores:
            if op == "schedule" and rid not in s.reminders:
                schedule(s, id=rid, title="t", due_at=at, remind_before_minutes=30 * (n % 2))
            elif op == "rollback" and rid not in s.reminders:
                with pytest.raises(RuntimeError):
                    _schedule_then_fail(s, rid, at)
            elif rid in s.reminders and s.reminders.get(rid).status.value == "open":
                if op == "snooze":
                    snooze(s, rid, at)
                elif op == "complete":
                    complete(s, rid, at)
                elif op == "cancel":
                    cancel(s, rid)
        assert next_due(stores[0]) == next_due(stores[1])  # reads between the writes
    now = base + timedelta(hours=now_hours)
    memory, sqlite = stores
    open_ = [r for r in memory.reminders if r.status.value == "open"]
    first = min(open_, key=lambda r: (r.snoozed_until or r.due_at, r.id), default=None)
    assert next_due(memory) == next_due(sqlite) == first
    by_hand = sorted((alert_at(r), r.id) for r in open_ if alert_at(r) <= now)
    assert [r.id for r in due(memory, now)] == [r.id for r in due(sqlite, now)]
    assert [r.id for r in due(memory, now)] == [rid for _, rid in by_hand]
    for s in stores:
        s.close()


def _snooze_complete_then_fail(store: MemoryStore, rid: str, at: datetime) -> None:
    with store.transaction():
        snooze(store, rid, at + timedelta(hours=1))
        complete(store, rid, at)
        raise RuntimeError("roll back")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["schedule", "snooze", "snooze", "complete", "cancel", "rollback"]),
            st.integers(0, 5),
            st.integers(0, 4),
        ),
        max_size=60,
    ),
    st.sampled_from([0, 3, 1024]),
    st.sampled_from([0, 64]),
    st.booleans(),
)
# moved away and back behind an earlier reminder: two current entries for one reminder
@example(
    [("schedule", 0, 0), ("schedule", 1, 2), ("snooze", 1, 3), ("snooze", 1, 2)], 9, 64, False
)
# the first one moved later, done, then rolled back: stale entries at the top
@example(
    [("schedule", 1, 1), ("schedule", 2, 2), ("snooze", 1, 3), ("rollback", 2, 0)], 0, 0, True
)
# a read steps over more done reminders than it returns: it drops them, keeps the rest
@example(
    [("schedule", n, min(n, 1)) for n in range(5)]
    + [("complete", n, 1) for n in (1, 2, 3)]
    + [("schedule", 5, 4)],
    1024,
    0,
    False,
)
def test_memory_next_due_and_due_equal_a_sorted_reference(
    ops: list[tuple[str, int, int]], slack: int, read: int, bulk: bool
) -> None:
    """After any mix of schedules, snoozes (also away and back to the same time),
    completions, cancels and rolled-back transactions, the memory store's next_due and
    due equal a sort of a plain dict of the open reminders: none lost, none twice, in
    (due, id) order. Few due times, so ties are common; ``slack`` 0 rebuilds the heap
    often, ``read`` 0 drops the stale entries a read steps over."""
    base = utc(2026, 1, 5)
    store = MemoryStore()
    repo = store.reminders
    assert isinstance(repo, MemoryReminderRepository)
    repo.STALE_SLACK, repo.STALE_READ = slack, read  # small: frequent rebuilds and drops
    open_: dict[str, datetime] = {}  # the reference: id -> effective due
    if bulk:  # a large batch: the heap is rebuilt from the records on the next read
        batch = [
            Reminder(id=f"b{i:03d}", title="t", due_at=base + timedelta(hours=i % 7))
            for i in range(300)
        ]
        schedule_many(store, batch)
        open_.update((r.id, r.due_at) for r in batch)
    for op, n, hours in ops:
        rid, at = f"r{n:02d}", base + timedelta(hours=hours)
        exists = rid in repo
        if op == "schedule" and not exists:
            schedule(store, id=rid, title="t", due_at=at)
            open_[rid] = at
        elif op == "rollback" and rid in open_:
            with pytest.raises(RuntimeError):
                _snooze_complete_then_fail(store, rid, at)
        elif rid in open_ and op in ("snooze", "complete", "cancel"):
            if op == "snooze":
                snooze(store, rid, at)
                open_[rid] = at
            elif op == "complete":
                complete(store, rid, at)
                del open_[rid]
            else:
                cancel(store, rid)
                del open_[rid]
        elif exists and rid not in open_ and op in ("snooze", "complete", "cancel"):
            with pytest.raises(ValidationError):
                snooze(store, rid, at)
        expected = sorted((due, rid) for rid, due in open_.items())
        first = next_due(store)
        assert (first.id if first else None) == (expected[0][1] if expected else None)
        now = base + timedelta(hours=hours)
        assert [r.id for r in due(store, now)] == [i for d, i in expected if d <= now]
    assert [r.id for r in repo.open_due_by(base + timedelta(days=1))] == [
        i for _, i in sorted((d, i) for i, d in open_.items())
    ]
