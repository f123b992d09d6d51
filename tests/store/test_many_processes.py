"""Several OS processes on one durable store: read-modify-write loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import numpy as np
import pytest

from crmkit.criteria import F
from crmkit.errors import BatchError, ConflictError
from crmkit.records import Account, Reminder
from crmkit.store import run_transaction

from .._processes import run_processes
from .._stores import StoreFactory

WORKERS = 4
ROUNDS = 25
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _increment(index: int, factory: StoreFactory, lock: str | None) -> int:
    store = factory()
    try:

        def bump() -> None:
            account = store.accounts.get("counter")
            store.accounts.update(attrs.evolve(account, employees=account.employees + 1))

        for _ in range(ROUNDS):
            run_transaction(store, bump, attempts=50, lock=lock)
        return ROUNDS
    finally:
        store.close()


@pytest.mark.parametrize("lock", [None, "counter"], ids=["retry", "named lock"])
def test_read_modify_write_in_run_transaction_loses_no_update(
    store_factory: StoreFactory, lock: str | None
) -> None:
    store = store_factory()
    store.accounts.add(Account(id="counter", name="Counter", employees=0))
    done = run_processes(_increment, WORKERS, store_factory, lock)
    assert sum(done) == WORKERS * ROUNDS
    assert store.accounts.get("counter").employees == WORKERS * ROUNDS
    assert store.accounts.get("counter").version == WORKERS * ROUNDS + 1
    store.close()


RACED = 40


def _close_open(index: int, factory: StoreFactory, ids: list[str]) -> list[tuple[str, str]]:
    """Patch each reminder to done ``where`` it is still open: ``(id, "won")`` or
    ``(id, the ConflictError's record id)`` for each."""
    store = factory()
    outcomes: list[tuple[str, str]] = []
    try:
        for rid in ids:
            try:
                store.reminders.patch(
                    rid,
                    where=F.status == "open",
                    status="done",
                    completed_at=T0,
                    owner_id=str(index),
                )
            except ConflictError as err:
                outcomes.append((rid, f"{err.record_id} lost" if err.condition else "stale"))
            else:
                outcomes.append((rid, "won"))
        return outcomes
    finally:
        store.close()


def test_a_conditional_patch_has_one_winner_across_processes(store_factory: StoreFactory) -> None:
    """Two processes patch the same open reminders ``where=F.status == "open"``: each
    reminder is taken by exactly one of them, and it holds that one's write."""
    store = store_factory()
    ids = [f"r{i:03d}" for i in range(RACED)]
    store.reminders.add_many([Reminder(id=rid, title="Call", due_at=T0) for rid in ids])
    first, second = run_processes(_close_open, 2, store_factory, ids)
    for (rid, one), (_, other) in zip(first, second, strict=True):
        assert sorted([one, other]) == sorted(["won", f"{rid} lost"])
        stored = store.reminders.get(rid)
        winner = "0" if one == "won" else "1"
        assert (stored.status.value, stored.owner_id, stored.version) == ("done", winner, 2)
    store.close()


def _patch_all_from_version_1(index: int, factory: StoreFactory, ids: list[str]) -> str:
    """One ``patch_columns`` of every account, expected at version 1: "won", or the
    kinds of the errors it was refused with."""
    store = factory()
    try:
        store.accounts.patch_columns(
            {"id": np.array(ids), "employees": np.full(len(ids), index, dtype=np.int64)},
            expected_versions=np.ones(len(ids), dtype=np.int64),
        )
    except BatchError as err:
        return ",".join(sorted({type(e).__name__ for _, e in err.errors}))
    else:
        return "won"
    finally:
        store.close()


def test_patch_columns_from_one_version_has_one_winner_across_processes(
    store_factory: StoreFactory,
) -> None:
    """Three processes each patch the same accounts, all expected at version 1: the
    versions are read and the rows written in one transaction, so exactly one batch
    lands whole and the others are refused whole."""
    store = store_factory()
    ids = [f"a{i:03d}" for i in range(RACED)]
    store.accounts.add_many([Account(id=i, name=i) for i in ids])
    outcomes = run_processes(_patch_all_from_version_1, 3, store_factory, ids)
    assert sorted(outcomes) == ["ConflictError", "ConflictError", "won"]
    winner = outcomes.index("won")
    assert {(a.employees, a.version) for a in store.accounts} == {(winner, 2)}
    store.close()
