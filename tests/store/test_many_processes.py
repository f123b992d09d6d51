"""Several OS processes on one durable store: read-modify-write loses nothing."""

from __future__ import annotations

import attrs
import pytest

from crmkit.records import Account
from crmkit.store import run_transaction

from .._processes import run_processes
from .._stores import StoreFactory

WORKERS = 4
ROUNDS = 25


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
