"""Events across real OS processes: a writer and a consumer killed with SIGKILL lose
nothing, and concurrent writers never make a consumer skip an event."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from crmkit import Account
from crmkit.events import Consumer, read, subscribe

from .._processes import run_processes
from .._stores import StoreFactory

WRITES = 40
KILLED_AT = 25  # the writer dies delivering the event of account a25, after its commit
DIES_AFTER = 10  # the first consumer dies having handled 10 events, 2 of them not acked


def _write_then_die(factory: StoreFactory) -> None:
    store = factory()

    def die(event: Any) -> None:
        if getattr(event, "record_id", None) == f"a{KILLED_AT:02d}":
            os.kill(os.getpid(), signal.SIGKILL)

    subscribe(store, die)
    for i in range(WRITES):
        store.accounts.add(Account(id=f"a{i:02d}", name=f"Account {i}"))


def _consume(factory: StoreFactory, effects: str, dies_after: int | None) -> int:
    """Handle every event (append its key to ``effects``, durably), ack per batch."""
    store = factory()
    consumer = Consumer(store, "indexer")
    handled = 0
    while batch := consumer.poll(limit=4):
        for event in batch:
            with open(effects, "a") as log:
                log.write(f"{event.position} {event.key}\n")
                log.flush()
                os.fsync(log.fileno())
            handled += 1
            if handled == dies_after:
                os.kill(os.getpid(), signal.SIGKILL)
        consumer.ack(batch[-1])
    store.close()
    return handled


def _restart(index: int, factory: StoreFactory, effects: str) -> int:
    return _consume(factory, effects, None)


def _killed(target: Any, *args: Any) -> None:
    """Run ``target(*args)`` in a forked process and check that SIGKILL ended it."""
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    process.join(timeout=120)
    assert process.exitcode == -signal.SIGKILL


def test_a_crash_between_commit_and_delivery_loses_and_duplicates_nothing(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    store_factory(events=True).close()  # nothing open in this process while children fork
    _killed(_write_then_die, store_factory)
    effects = str(tmp_path / "effects.log")
    _killed(_consume, store_factory, effects, DIES_AFTER)
    (handled,) = run_processes(_restart, 1, store_factory, effects)

    store = store_factory()
    try:
        events = read(store)
        assert [e.record_id for e in events] == [f"a{i:02d}" for i in range(KILLED_AT + 1)]
        assert len(store.accounts) == KILLED_AT + 1  # the last commit stood
        lines = Path(effects).read_text().splitlines()
        keys = [line.split()[1] for line in lines]
        assert sorted(set(keys)) == sorted(e.key for e in events)  # every event arrived
        twice = sorted(k for k, n in Counter(keys).items() if n > 1)
        assert twice == sorted(e.key for e in events[8:DIES_AFTER])  # handled, never acked
        assert handled == len(events) - 8
        assert list(dict.fromkeys(keys)) == [e.key for e in events]  # in commit order
        assert Consumer(store, "indexer").position == events[-1].position
    finally:
        store.close()


WRITERS = 3
EACH = 40


def _write_or_follow(index: int, factory: StoreFactory) -> list[int]:
    """Worker 0 follows the events as they commit; the others write, one per transaction."""
    store = factory()
    try:
        if index > 0:
            for i in range(EACH):
                store.accounts.add(Account(id=f"w{index}-{i:03d}", name="Concurrent"))
            return []
        consumer = Consumer(store, "follower")
        seen: list[int] = []
        while len(seen) < WRITERS * EACH:
            if not consumer.wait(30):
                break
            batch = consumer.poll(limit=7)
            seen += [e.position for e in batch]
            consumer.ack(batch[-1])
        return seen
    finally:
        store.close()


def test_a_consumer_following_concurrent_writers_skips_no_event(
    store_factory: StoreFactory,
) -> None:
    store_factory(events=True).close()
    seen = run_processes(_write_or_follow, WRITERS + 1, store_factory)[0]
    store = store_factory()
    try:
        committed = [e.position for e in read(store)]
    finally:
        store.close()
    assert len(committed) == WRITERS * EACH
    assert seen == committed  # each one, once, in order: none committed behind the cursor
