"""Several OS processes routing into one durable store stay fair and lose nothing;
a realignment that several workers apply lands exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from crmkit import Account, F, FixedClock, Lead, Rep, RoutingRule, Territory, TerritoryModel
from crmkit.routing import (
    RealignmentDiff,
    Router,
    activate_model,
    apply_realignment,
    realignment_diff,
)

from .._processes import run_processes
from .._stores import StoreFactory

WORKERS = 4
LEADS = 10  # per worker (not a multiple of the 3 reps)
MONDAY_10 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
REPS = ("a", "b", "c")


def _route(index: int, factory: StoreFactory, bulk: bool) -> list[str | None]:
    store = factory()
    try:
        router = Router(store, clock=FixedClock(MONDAY_10))
        batch = [Lead(id=f"w{index}-{k:02}") for k in range(LEADS)]
        if bulk:  # in small batches, so the workers' transactions interleave
            decisions = [
                d for i in range(0, LEADS, 3) for d in router.route_many(batch[i : i + 3])
            ]
        else:
            decisions = [router.route(lead) for lead in batch]
        return [d.owner_id for d in decisions]
    finally:
        store.close()


def _seed(factory: StoreFactory, strategy: str, capacity: int | None = None) -> None:
    store = factory()
    store.reps.add_many(
        [Rep(id=r, name=r.upper(), team_ids=["t"], capacity=capacity) for r in REPS]
    )
    store.routing_rules.add(
        RoutingRule(id="all", target_kind="team", target_id="t", strategy=strategy)
    )
    store.close()


@pytest.mark.parametrize("bulk", [False, True], ids=["route", "route_many"])
@pytest.mark.parametrize("strategy", ["round_robin", "load_balanced"])
def test_workers_routing_into_one_pool_stay_fair(
    store_factory: StoreFactory, strategy: str, bulk: bool
) -> None:
    _seed(store_factory, strategy)
    answered = run_processes(_route, WORKERS, store_factory, bulk)
    store = store_factory()
    try:
        stored = list(store.leads)
        assert len(stored) == WORKERS * LEADS  # every lead stored exactly once
        assert sorted(x.id for x in stored) == sorted(
            f"w{i}-{k:02}" for i in range(WORKERS) for k in range(LEADS)
        )
        assert all(x.owner_id in REPS for x in stored)
        assert sorted(o for worker in answered for o in worker) == sorted(
            x.owner_id for x in stored
        )
        counts = Counter(x.owner_id for x in stored)
        assert max(counts.values()) - min(counts.values()) <= 1, counts
        changes = list(store.ownership_changes)
        assert sorted(c.record_id for c in changes) == sorted(x.id for x in stored)
        if strategy == "round_robin":
            state = store.load_state("crmkit.routing.Lead.team:t")
            assert state is not None
            assert state["seq"] == WORKERS * LEADS
    finally:
        store.close()


def test_workers_never_overfill_a_capacity(store_factory: StoreFactory) -> None:
    capacity = 10  # 30 places for 40 leads: 10 must wait in the queue
    _seed(store_factory, "round_robin", capacity)
    run_processes(_route, WORKERS, store_factory, False)
    store = store_factory()
    try:
        stored = list(store.leads)
        assert len(stored) == WORKERS * LEADS
        held = Counter(x.owner_id for x in stored if x.owner_id is not None)
        assert held == dict.fromkeys(REPS, capacity)
        assert [x.queue for x in stored if x.owner_id is None] == ["t"] * (
            WORKERS * LEADS - capacity * len(REPS)
        )
    finally:
        store.close()


def _apply(index: int, factory: StoreFactory, diff: RealignmentDiff) -> int:
    store = factory()
    try:
        return apply_realignment(store, diff, now=MONDAY_10)
    finally:
        store.close()


def test_workers_applying_one_realignment_apply_it_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    try:
        store.territory_models.add_many(
            [TerritoryModel(id="y1", name="Y1"), TerritoryModel(id="y2", name="Y2")]
        )
        store.territories.add_many(
            [
                Territory(id="old", name="Old", model_id="y1", owner_id="ann"),
                Territory(
                    id="de",
                    name="DE",
                    model_id="y2",
                    owner_id="ben",
                    criteria=(F.country == "DE").to_dict(),
                ),
            ]
        )
        store.accounts.add_many(
            [
                Account(id=f"a{i}", name="A", country=c, owner_id="ann", territory_id="old")
                for i, c in enumerate(["DE", "DE", "FR", "DE"])
            ]
        )
        activate_model(store, "y1", now=MONDAY_10)
        diff = realignment_diff(store, "y2")
        assert [m.account_id for m in diff.moves] == ["a0", "a1", "a3"]
        assert [m.account_id for m in diff.cleared] == ["a2"]
    finally:
        store.close()
    done = run_processes(_apply, 3, store_factory, diff)
    assert sorted(done) == [0, 0, 4]  # one worker applied it, the others found it done
    store = store_factory()
    try:
        owners = {a.id: (a.owner_id, a.territory_id) for a in store.accounts}
        assert owners == {
            "a0": ("ben", "de"),
            "a1": ("ben", "de"),
            "a2": ("ann", None),
            "a3": ("ben", "de"),
        }
        assert len(list(store.ownership_changes)) == 3
        assert store.territory_models.get("y2").state == "active"
    finally:
        store.close()
