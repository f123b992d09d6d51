"""Merge and lead conversion are read-modify-writes: real processes racing on one store."""

from __future__ import annotations

from typing import Any

from crmkit.dedupe import convert_lead, merge
from crmkit.errors import NotFound, ValidationError
from crmkit.records import Activity, Contact, Lead

from .._processes import run_processes
from .._stores import StoreFactory


def _convert(index: int, factory: StoreFactory) -> str:
    store = factory()
    try:
        done = convert_lead(store, "l1", ids={"account": f"acc-{index}", "contact": f"c-{index}"})
        return f"converted {done.account.id}"
    except ValidationError as err:
        return f"refused {err.field}"
    finally:
        store.close()


def test_a_lead_converts_once_whatever_the_race(store_factory: Any) -> None:
    store = store_factory()
    store.leads.add(Lead(id="l1", first_name="Ann", last_name="Lee", company="Initech"))
    store.close()
    outcomes = run_processes(_convert, 4, store_factory)
    assert sorted(o.split()[0] for o in outcomes) == ["converted", "refused", "refused", "refused"]
    store = store_factory()
    try:
        assert len(store.accounts) == 1
        assert len(store.contacts) == 1
        winner = next(o for o in outcomes if o.startswith("converted")).split()[1]
        assert store.leads.get("l1").converted_account_id == winner
    finally:
        store.close()


def _merge(index: int, factory: StoreFactory) -> str:
    store = factory()
    try:
        group = ["c0", "c1"] if index % 2 == 0 else ["c1", "c2"]
        return merge(store, "Contact", group, survivor=group[0]).survivor_id
    except NotFound as err:
        return f"gone {err.record_id}"
    finally:
        store.close()


def test_overlapping_merges_leave_no_dangling_reference(store_factory: Any) -> None:
    from datetime import UTC, datetime

    store = store_factory()
    store.contacts.add_many([Contact(id=f"c{i}") for i in range(3)])
    store.activities.add_many(
        Activity(id=f"a{i}", kind="call", at=datetime(2026, 1, 5, tzinfo=UTC), contact_id=f"c{i}")
        for i in range(3)
    )
    store.close()
    outcomes = run_processes(_merge, 4, store_factory)
    store = store_factory()
    try:
        alive = {c.id for c in store.contacts}
        assert {a.contact_id for a in store.activities} <= alive
        assert len(store.activities) == 3
        assert len(alive) + sum(len(m.merged_ids) for m in store.merges) == 3
        assert any(not o.startswith("gone") for o in outcomes)
    finally:
        store.close()
