"""Territories: matching, primary by priority (ties), locks, indexed == naive, realignment."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import Account, F, MemoryStore, Opportunity, Rep, Territory, TerritoryModel
from crmkit.criteria import bind
from crmkit.routing import (
    activate_model,
    apply_realignment,
    assign_columns,
    assign_territories,
    imbalance,
    realignment_diff,
    suggest_balance,
)
from crmkit.routing._territories import match_territories

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def model_store() -> MemoryStore:
    store = MemoryStore()
    store.territory_models.add_many(
        [TerritoryModel(id="m1", name="FY26"), TerritoryModel(id="m2", name="FY27")]
    )
    return store


def test_primary_by_priority_and_tie_without_primary() -> None:
    store = model_store()
    store.territories.add_many(
        [
            Territory(
                id="na",
                name="NA",
                model_id="m1",
                priority=50,
                criteria=F.country.isin(["US", "CA"]).to_dict(),
            ),
            Territory(
                id="us-west",
                name="US West",
                model_id="m1",
                parent_id="na",
                priority=10,
                criteria=F.postal_code.between("90000", "99999").to_dict(),
            ),
            Territory(
                id="retail",
                name="Retail",
                model_id="m1",
                priority=10,
                criteria=(F.industry == "Retail").to_dict(),
            ),
            Territory(
                id="big",
                name="Big",
                model_id="m1",
                priority=10,
                criteria=(F.employees >= 1000).to_dict(),
            ),
        ]
    )
    store.accounts.add_many(
        [
            Account(id="a1", name="A1", country="US", postal_code="94105"),  # us-west (10) < na
            Account(id="a2", name="A2", country="US", postal_code="10001"),  # na only
            Account(id="a3", name="A3", country="US", postal_code="94105", industry="Retail"),
            Account(id="a4", name="A4", country="FR"),
            Account(id="a5", name="A5", country="FR", postal_code="94105"),  # child needs parent
            Account(
                id="a6",
                name="A6",
                country="FR",
                industry="Tech",
                territory_id="old",
                realignment_locked=True,
            ),
            Account(id="a7", name="A7", country="FR", industry="Retail", employees=5000),
        ]
    )
    activate_model(store, "m1", now=NOW)
    result = assign_territories(store)
    assert result.primary_of("a1") == ("us-west", "primary")
    assert result.primary_of("a2") == ("na", "primary")
    # us-west and retail share priority 10: the deeper (more specific) us-west wins
    assert result.primary_of("a3") == ("us-west", "primary")
    assert result.matches("a3") == ["na", "retail", "us-west"]
    # retail and big: same priority, same depth -> no primary, with the reason
    assert result.primary_of("a7") == (None, "tie")
    assert result.primary_of("a4") == (None, "no_match")
    assert result.matches("a5") == []
    assert result.primary_of("a6") == ("old", "locked")
    assert result.counts()["na"] == 1


def test_deeper_territory_wins_a_priority_tie() -> None:
    store = model_store()
    store.territories.add_many(
        [
            Territory(
                id="p", name="P", model_id="m1", priority=5, criteria=(F.country == "US").to_dict()
            ),
            Territory(
                id="c",
                name="C",
                model_id="m1",
                parent_id="p",
                priority=5,
                criteria=(F.employees >= 100).to_dict(),
            ),
        ]
    )
    store.accounts.add(Account(id="a", name="A", country="US", employees=500))
    assert assign_territories(store, "m1").primary_of("a") == ("c", "primary")


@st.composite
def territory_worlds(draw: st.DrawFn):
    n = draw(st.integers(0, 40))
    countries = ["US", "DE", "FR", "GB"]
    accounts = [
        Account(
            id=f"a{i:03}",
            name="x",
            country=draw(st.sampled_from([*countries, None])),
            region=draw(st.sampled_from(["N", "S", None])),
            postal_code=draw(st.sampled_from(["10000", "20000", "35000", "90000", None])),
            employees=draw(st.one_of(st.none(), st.integers(0, 2000))),
            industry=draw(st.sampled_from(["Retail", "Tech", None])),
        )
        for i in range(n)
    ]
    conds = [
        lambda: F.country == draw(st.sampled_from(countries)),
        lambda: F.country.isin(draw(st.lists(st.sampled_from(countries), min_size=1, max_size=3))),
        lambda: F.region == draw(st.sampled_from(["N", "S"])),
        lambda: F.postal_code.between(
            *sorted(
                draw(
                    st.lists(
                        st.sampled_from(["0", "15000", "30000", "99999"]), min_size=2, max_size=2
                    )
                )
            )
        ),
        lambda: F.employees >= draw(st.integers(0, 2000)),
        lambda: F.employees < draw(st.integers(0, 2000)),
        lambda: F.postal_code <= draw(st.sampled_from(["15000", "90000"])),
        lambda: (F.industry == "Tech") | (F.employees > 1000),
        lambda: ~(F.industry == "Retail"),
    ]
    territories = []
    for k in range(draw(st.integers(0, 12))):
        parts = [draw(st.sampled_from(conds))() for _ in range(draw(st.integers(0, 3)))]
        criteria = None
        if parts:
            c = parts[0]
            for p in parts[1:]:
                c = c & p
            criteria = c.to_dict()
        parent = f"t{draw(st.integers(0, k - 1))}" if k and draw(st.booleans()) else None
        territories.append(
            Territory(
                id=f"t{k}",
                name="t",
                model_id="m",
                parent_id=parent,
                priority=draw(st.integers(0, 3)),
                criteria=criteria,
            )
        )
    return accounts, territories


@settings(max_examples=100, deadline=None)
@given(territory_worlds())
def test_indexed_assignment_equals_naive_masks(world) -> None:
    accounts, territories = world
    from crmkit._columns import columns_of

    fields = ["id", "country", "region", "postal_code", "employees", "industry"]
    cols = columns_of(Account, accounts, fields)
    acc, ter, _depth = match_territories(territories, cols)
    got = set(zip(acc.tolist(), ter.tolist(), strict=True))
    by_id = {t.id: t for t in territories}
    expected = set()
    for k, t in enumerate(territories):
        node, ok = t, np.ones(len(accounts), dtype=bool)
        while node is not None:  # naive: each record, each territory and its ancestors
            test = bind(node.criteria, Account).matches
            ok &= np.array([test(a) for a in accounts], dtype=bool)
            node = by_id.get(node.parent_id) if node.parent_id else None
        expected |= {(i, k) for i in np.flatnonzero(ok).tolist()}
    assert got == expected


def realign_store() -> MemoryStore:
    store = model_store()
    store.reps.add_many([Rep(id=r, name=r) for r in ("ann", "bob", "cat")])
    store.territories.add_many(
        [
            Territory(id="old-all", name="All", model_id="m1", owner_id="ann"),
            Territory(
                id="east",
                name="East",
                model_id="m2",
                owner_id="bob",
                criteria=F.postal_code.between("00000", "49999").to_dict(),
            ),
            Territory(
                id="west",
                name="West",
                model_id="m2",
                owner_id="cat",
                criteria=F.postal_code.between("50000", "99999").to_dict(),
            ),
        ]
    )
    store.accounts.add_many(
        [
            Account(
                id="a1",
                name="A1",
                postal_code="10000",
                owner_id="ann",
                territory_id="old-all",
                annual_revenue=100,
            ),
            Account(
                id="a2",
                name="A2",
                postal_code="60000",
                owner_id="ann",
                territory_id="old-all",
                annual_revenue=200,
            ),
            Account(
                id="a3",
                name="A3",
                postal_code="70000",
                owner_id="ann",
                territory_id="old-all",
                annual_revenue=300,
                realignment_locked=True,
            ),
            Account(id="a4", name="A4", owner_id="ann", territory_id="old-all"),  # no postal code
        ]
    )
    store.opportunities.add_many(
        [
            Opportunity(id="o1", name="O1", account_id="a1", amount=Decimal(1000), owner_id="ann"),
            Opportunity(id="o2", name="O2", account_id="a2", amount=Decimal(500), owner_id="ann"),
            Opportunity(
                id="o3",
                name="O3",
                account_id="a2",
                amount=Decimal(99),
                status="won",
                owner_id="ann",
            ),
        ]
    )
    activate_model(store, "m1", now=NOW)
    return store


def test_realignment_diff_by_hand() -> None:
    store = realign_store()
    diff = realignment_diff(store, "m2")
    moves = {m.account_id: (m.to_territory, m.to_owner) for m in diff.moves}
    assert moves == {"a1": ("east", "bob"), "a2": ("west", "cat")}
    assert diff.pipeline_moving == 1500.0  # o1 1000 + o2 500; o3 is won
    assert diff.kept_locked == ("a3",)
    assert diff.unplaced == (("a4", "no_match"),)
    assert diff.workload["ann"]["accounts"] == (4.0, 2.0)
    assert diff.workload["bob"]["revenue"] == (0.0, 100.0)
    assert diff.workload["cat"]["pipeline"] == (0.0, 500.0)


def test_apply_realignment_is_atomic_with_history() -> None:
    store = realign_store()
    diff = realignment_diff(store, "m2")
    assert apply_realignment(store, diff, now=NOW) == 3  # a1, a2 move; a4's territory cleared
    assert store.accounts.get("a2").owner_id == "cat"
    assert store.accounts.get("a3").territory_id == "old-all"
    assert store.opportunities.get("o2").owner_id == "cat"
    assert store.opportunities.get("o3").owner_id == "ann"
    history = sorted((c.record_type, c.record_id, c.to_owner_id) for c in store.ownership_changes)
    assert history == [
        ("Account", "a1", "bob"),
        ("Account", "a2", "cat"),
        ("Opportunity", "o1", "bob"),
        ("Opportunity", "o2", "cat"),
    ]
    assert store.territory_models.get("m2").state == "active"
    assert store.territory_models.get("m1").state == "archived"


def test_balancer_lowers_imbalance() -> None:
    store = MemoryStore()
    store.reps.add_many([Rep(id=r, name=r) for r in ("a", "b", "c")])
    store.accounts.add_many(
        [Account(id=f"x{i}", name="x", owner_id="a") for i in range(9)]
        + [Account(id="y", name="y", owner_id="b", realignment_locked=True)]
    )
    plan = suggest_balance(store, measure="accounts")
    assert plan.before == {"a": 9.0, "b": 1.0, "c": 0.0}
    assert sorted(plan.after.values()) == [3.0, 3.0, 4.0]
    assert plan.imbalance_after < plan.imbalance_before
    assert plan.imbalance_before == imbalance([9, 1, 0])
    assert "y" not in {m[0] for m in plan.moves}


def test_assign_columns_without_territories() -> None:
    cols = {"id": np.array(["a", "b"])}
    result = assign_columns([], cols)
    assert result.reason.tolist() == ["no_match", "no_match"]
    assert result.coverage == 0.0


def test_realignment_clears_territories_of_unplaced_accounts() -> None:
    store = realign_store()
    diff = realignment_diff(store, "m2")
    assert [(m.account_id, m.from_territory, m.to_territory) for m in diff.cleared] == [
        ("a4", "old-all", None)
    ]
    assert "1 unplaced (1 cleared)" in diff.summary()
    assert apply_realignment(store, diff, now=NOW) == 3
    a4 = store.accounts.get("a4")
    assert (a4.territory_id, a4.owner_id) == (None, "ann")  # no territory, same owner
    live = {t.id for t in store.territories.query(F.model_id == "m2")}
    assert {a.territory_id for a in store.accounts if not a.realignment_locked} <= live | {None}


def test_applying_a_realignment_twice_changes_nothing_the_second_time() -> None:
    store = realign_store()
    diff = realignment_diff(store, "m2")
    assert apply_realignment(store, diff, now=NOW) == 3
    before = sorted((a.id, a.version) for a in store.accounts)
    changes = len(store.ownership_changes)
    assert apply_realignment(store, diff, now=NOW) == 0
    assert sorted((a.id, a.version) for a in store.accounts) == before
    assert len(store.ownership_changes) == changes == 4


def test_a_stale_realignment_diff_is_refused_whole() -> None:
    import attrs
    import pytest

    from crmkit import ValidationError

    store = realign_store()
    diff = realignment_diff(store, "m2")
    a2 = store.accounts.get("a2")
    store.accounts.update(attrs.evolve(a2, owner_id="bob"))  # a manager moved it meanwhile
    with pytest.raises(ValidationError, match="a2"):
        apply_realignment(store, diff, now=NOW)
    assert store.accounts.get("a1").owner_id == "ann"  # nothing written
    assert len(store.ownership_changes) == 0
    assert store.territory_models.get("m1").state == "active"


@st.composite
def cell_worlds(draw: st.DrawFn):
    """Worlds whose territories are mostly cells: equality, one range, number bounds."""
    accounts, territories = draw(territory_worlds())
    extra = [
        lambda: F.postal_code.range(*sorted(draw(st.lists(POSTAL, min_size=2, max_size=2)))),
        lambda: F.employees.range(*sorted(draw(st.lists(st.integers(0, 2000), min_size=2)))[:2]),
        lambda: F.postal_code > draw(POSTAL),
        lambda: F.employees.between(*sorted(draw(st.lists(st.integers(0, 2000), min_size=2)))[:2]),
        lambda: F.industry.isin(["Retail", "Tech"]) & (F.country == "US"),
    ]
    for k in range(len(territories), len(territories) + draw(st.integers(0, 6))):
        parts = [draw(st.sampled_from(extra))() for _ in range(draw(st.integers(1, 3)))]
        c = parts[0]
        for p in parts[1:]:
            c = c & p
        territories.append(
            Territory(
                id=f"t{k}",
                name="t",
                model_id="m",
                priority=draw(st.integers(0, 3)),
                criteria=c.to_dict(),
            )
        )
    return accounts, territories


POSTAL = st.sampled_from(["0", "10000", "15000", "20000", "35000", "99999", "9"])


@settings(max_examples=150, deadline=None)
@given(cell_worlds())
def test_cell_assignment_equals_pairs_and_records(world) -> None:
    accounts, territories = world
    from crmkit._columns import columns_of
    from crmkit.routing import TerritoryIndex

    fields = ["id", "country", "region", "postal_code", "employees", "industry"]
    cols = columns_of(Account, accounts, fields)
    index = TerritoryIndex(territories)
    result = assign_columns(index, cols)
    acc, ter = index.match(cols)  # the pair path
    by_id = {t.id: t for t in territories}
    expected = set()
    for k, t in enumerate(territories):
        node, ok = t, np.ones(len(accounts), dtype=bool)
        while node is not None:  # record by record
            test = bind(node.criteria, Account).matches
            ok &= np.array([test(a) for a in accounts], dtype=bool)
            node = by_id.get(node.parent_id) if node.parent_id else None
        expected |= {(i, k) for i in np.flatnonzero(ok).tolist()}
    assert set(zip(acc.tolist(), ter.tolist(), strict=True)) == expected
    pairs = list(zip(result.pair_account.tolist(), result.pair_territory.tolist(), strict=True))
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == expected
    for i in range(len(accounts)):
        hits = [k for a, k in expected if a == i]
        assert result.match_count[i] == len(hits)
        key = {k: (territories[k].priority, -int(index.depth[k])) for k in hits}
        best = min(key.values(), default=None)
        top = [k for k in hits if key[k] == best]
        want = top[0] if len(top) == 1 else -1
        assert result.primary_index[i] == want
        reason = "no_match" if not hits else ("primary" if len(top) == 1 else "tie")
        assert result.reason[i] == reason
    filled = np.nan_to_num(np.asarray(cols["employees"], dtype=np.float64), nan=-1.0)
    as_float = assign_columns(index, {**cols, "employees": filled})
    as_int = assign_columns(index, {**cols, "employees": filled.astype(np.int64)})
    assert as_int.primary_index.tolist() == as_float.primary_index.tolist()
    assert as_int.match_count.tolist() == as_float.match_count.tolist()
