"""Several OS processes ticking reminders and cadences on one store (issue 12, item 4).

No lost update (a reminder completed or snoozed by another process is never put back to
open), each reminder alert fires exactly once, each cadence step is handed out exactly
once, counted across every worker's returned events.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from crmkit.errors import ValidationError
from crmkit.records import Cadence, Reminder
from crmkit.reminders import cadence_tick, complete, enroll, schedule_many, snooze, tick

from .._processes import run_processes
from .._stores import StoreFactory

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WORKERS = 4


def _interleave(store: Any, hook: Callable[[], None]) -> None:
    """Run ``hook`` once, just before ``store`` opens its first outermost transaction.

    The store stays the real one; this only fixes *when* another process acts: after
    anything read outside a transaction, before anything read or written inside one.
    """
    original = store.transaction
    fired: list[bool] = []

    @contextlib.contextmanager
    def transaction() -> Iterator[None]:
        if not fired and not getattr(store, "in_transaction", False):
            fired.append(True)
            hook()
        with original():
            yield

    store.transaction = transaction


def _complete(index: int, factory: StoreFactory, reminder_id: str) -> str:
    store = factory()
    try:
        return complete(store, reminder_id, T0).done.status.value
    finally:
        store.close()


def _snooze(index: int, factory: StoreFactory, reminder_id: str) -> str:
    store = factory()
    try:
        return snooze(store, reminder_id, T0 + timedelta(hours=3)).id
    finally:
        store.close()


def _due(ids: list[str], every: timedelta = timedelta()) -> list[Reminder]:
    return [Reminder(id=rid, title="Call", due_at=T0 + i * every) for i, rid in enumerate(ids)]


def test_tick_never_reopens_a_reminder_completed_by_another_process(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    schedule_many(store, _due(["a", "b"]))
    # another process completes "a" after tick could have read it and before it writes
    _interleave(store, lambda: run_processes(_complete, 1, store_factory, "a"))
    events = tick(store, T0)
    assert [(e.kind, e.reminder_id) for e in events] == [("due", "b")]
    assert store.reminders.get("a").status.value == "done"
    assert store.reminders.get("b").custom["reminder_alerted"] is not None
    store.close()


def test_tick_never_undoes_a_snooze_by_another_process(store_factory: StoreFactory) -> None:
    store = store_factory()
    schedule_many(store, _due(["a"]))
    _interleave(store, lambda: run_processes(_snooze, 1, store_factory, "a"))
    assert tick(store, T0) == []
    assert store.reminders.get("a").snoozed_until == T0 + timedelta(hours=3)
    store.close()


REMINDERS = 120
TICKS = [T0 + timedelta(minutes=m) for m in range(0, 130, 10)]


def _tick_all(index: int, factory: StoreFactory) -> list[tuple[str, str]]:
    store = factory()
    try:
        return [(e.kind, e.reminder_id) for now in TICKS for e in tick(store, now)]
    finally:
        store.close()


def test_each_alert_fires_once_across_processes(store_factory: StoreFactory) -> None:
    store = store_factory()
    ids = [f"r{i:03d}" for i in range(REMINDERS)]
    schedule_many(store, _due(ids, every=timedelta(minutes=1)))
    results = run_processes(_tick_all, WORKERS, store_factory)
    counts = Counter(event for events in results for event in events)
    assert set(counts) == {("due", rid) for rid in ids}
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    store.close()


def test_each_missed_occurrence_rolls_forward_once_across_processes(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    daily = [
        Reminder(id=f"d{i:02d}", title="Daily", due_at=T0 - timedelta(days=1), rrule="FREQ=DAILY")
        for i in range(30)
    ]
    schedule_many(store, daily)
    results = run_processes(_tick_all, WORKERS, store_factory)
    counts = Counter(event for events in results for event in events)
    expected = set()
    for r in daily:
        expected |= {("missed", r.id), ("due", f"{r.id}.1")}
    assert set(counts) == expected
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    assert Counter(r.status.value for r in store.reminders) == {"missed": 30, "open": 30}
    store.close()


def _complete_all(index: int, factory: StoreFactory, ids: list[str]) -> int:
    store = factory()
    try:
        for rid in ids:
            complete(store, rid, T0)
        return len(ids)
    finally:
        store.close()


def _tick_or_complete(index: int, factory: StoreFactory, ids: list[str]) -> int:
    if index == 0:
        return _complete_all(index, factory, ids)
    return len(_tick_all(index, factory))


def test_racing_completions_and_ticks_lose_no_completion(store_factory: StoreFactory) -> None:
    store = store_factory()
    ids = [f"r{i:03d}" for i in range(60)]
    schedule_many(store, _due(ids))
    run_processes(_tick_or_complete, 3, store_factory, ids)
    assert Counter(r.status.value for r in store.reminders) == {"done": len(ids)}
    store.close()


def _complete_each(index: int, factory: StoreFactory, ids: list[str]) -> list[str]:
    """Complete every reminder of ``ids``: "won" or the error each completion met."""
    store = factory()
    outcomes: list[str] = []
    try:
        for rid in ids:
            try:
                complete(store, rid, T0 + timedelta(minutes=index))
            except ValidationError as err:
                outcomes.append(f"{err.record_id} {err.field}={err.value}")
            else:
                outcomes.append("won")
        return outcomes
    finally:
        store.close()


def test_two_processes_completing_the_same_reminders_one_wins_each(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    ids = [f"r{i:03d}" for i in range(40)]
    weekly = [
        Reminder(id=f"w{i}", title="Weekly", due_at=T0, rrule="FREQ=WEEKLY") for i in range(5)
    ]
    schedule_many(store, [*_due(ids), *weekly])
    every = ids + [r.id for r in weekly]
    first, second = run_processes(_complete_each, 2, store_factory, every)
    for rid, one, other in zip(every, first, second, strict=True):
        assert sorted([one, other]) == sorted(["won", f"{rid} status=done"])
        done = store.reminders.get(rid)
        assert done.completed_at == T0 + timedelta(minutes=0 if one == "won" else 1)
        assert done.version == 2
    spawned = sorted(r.id for r in store.reminders if r.id not in every)
    assert spawned == [f"w{i}.1" for i in range(5)]  # one next occurrence each, not two
    store.close()


ENROLLED = 60
CADENCE_TICKS = [T0 + timedelta(hours=h) for h in range(0, 80, 8)]


def _cadence_all(index: int, factory: StoreFactory) -> list[tuple[str, str, int]]:
    store = factory()
    try:
        return [
            (e.kind, e.enrollment_id, e.step_index)
            for now in CADENCE_TICKS
            for e in cadence_tick(store, now)
        ]
    finally:
        store.close()


def test_each_cadence_step_is_handed_out_once_across_processes(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    store.cadences.add(
        Cadence(
            id="intro",
            name="Intro",
            weekdays_only=False,
            steps=(
                {"kind": "email"},
                {"kind": "call", "wait_days": 1},
                {"kind": "email", "wait_days": 1},
            ),
        )
    )
    ids = [f"e{i:03d}" for i in range(ENROLLED)]
    for eid in ids:
        enroll(store, "intro", id=eid, contact_id=f"c-{eid}", now=T0)
    results = run_processes(_cadence_all, WORKERS, store_factory)
    counts = Counter(event for events in results for event in events)
    expected = set()
    for eid in ids:
        expected |= {("email", eid, 0), ("call", eid, 1), ("email", eid, 2), ("completed", eid, 2)}
    assert set(counts) == expected
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    assert {e.status.value for e in store.enrollments} == {"completed"}
    store.close()
