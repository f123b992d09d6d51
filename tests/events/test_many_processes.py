"""Engines retried after a lost race write their domain events once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from crmkit.events import DomainEvent, read

from .._processes import run_processes
from .._stores import StoreFactory

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
REMINDERS = 40
WORKERS = 4


def _tick(index: int, factory: StoreFactory) -> int:
    from crmkit.reminders import tick

    store = factory()
    try:
        handed = 0
        for minute in range(0, 31, 3):  # every worker ticks the same moments
            handed += len(tick(store, AT + timedelta(minutes=minute)))
        return handed
    finally:
        store.close()


def test_ticking_in_many_processes_writes_each_reminder_due_once(
    store_factory: StoreFactory,
) -> None:
    from crmkit.reminders import schedule

    store = store_factory(events=True)
    try:
        for i in range(REMINDERS):
            schedule(store, id=f"r{i:02d}", title="Call", due_at=AT + timedelta(minutes=i % 30))
    finally:
        store.close()
    handed = run_processes(_tick, WORKERS, store_factory)
    store = store_factory()
    try:
        due = [e.subject for e in read(store) if isinstance(e, DomainEvent)]
    finally:
        store.close()
    assert sum(handed) == REMINDERS  # each handed out by exactly one tick
    assert Counter(due) == {f"r{i:02d}": 1 for i in range(REMINDERS)}
