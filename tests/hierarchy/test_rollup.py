from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import (
    Account,
    Activity,
    CriteriaError,
    MemoryStore,
    NotFound,
    Opportunity,
    ValidationError,
)
from crmkit.hierarchy import (
    AccountHierarchy,
    activity_counts,
    members,
    open_pipeline,
    rollup,
    rollup_field,
    won_revenue,
)

from ._forests import forests, naive_subtrees

AT = datetime(2026, 2, 1, tzinfo=UTC)


def naive(values: dict[str, float], subtree: list[str], how: str) -> tuple[float, int]:
    got = [values[a] for a in subtree if not math.isnan(values[a])]
    if how == "count":
        return float(len(got)), len(got)
    if how == "sum":
        return float(sum(got)), len(got)
    if not got:
        return math.nan, 0
    if how == "mean":
        return sum(got) / len(got), len(got)
    return (min(got) if how == "min" else max(got)), len(got)


values_strategy = st.one_of(
    st.just(math.nan), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
)


@settings(max_examples=80, deadline=None)
@given(forests(), st.data(), st.sampled_from(["sum", "count", "min", "max", "mean"]))
def test_rollup_equals_naive_recursion_and_members(
    forest: tuple[list[str], list[str]], data: st.DataObject, how: str
) -> None:
    ids, parents = forest
    raw = data.draw(st.lists(values_strategy, min_size=len(ids), max_size=len(ids)))
    h = AccountHierarchy.from_arrays(ids, parents)
    result = rollup(h, np.array(raw), how)
    values = dict(zip(ids, raw, strict=True))
    subtrees = naive_subtrees(ids, parents)
    for account in ids:
        expected, count = naive(values, subtrees[account], how)
        listed = result.members(account)
        # count and list can never disagree, and the list is exactly the valued subtree
        assert result.count(account) == len(listed) == count
        assert sorted(listed) == sorted(a for a in subtrees[account] if not math.isnan(values[a]))
        assert listed == members(h, account, np.array(raw))
        if how == "sum":
            assert result.get(account) == pytest.approx(sum(values[a] for a in listed), abs=1e-6)
        if math.isnan(expected):
            assert math.isnan(result.get(account))
        else:
            assert result.get(account) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_rollup_examples_by_hand() -> None:
    #   a(1) -> b(2) -> d(nan), a -> c(4)
    h = AccountHierarchy.from_arrays(["a", "b", "c", "d"], ["", "a", "a", "b"])
    vals = {"a": 1.0, "b": 2.0, "c": 4.0}
    total = rollup(h, vals)
    assert total.to_dict() == {"a": 7.0, "b": 2.0, "c": 4.0, "d": 0.0}
    assert total.counts.tolist() == [3, 1, 1, 0]
    assert rollup(h, vals, "mean").get("a") == pytest.approx(7 / 3)
    assert math.isnan(rollup(h, vals, "min").get("d"))
    assert rollup(h, vals, "min").get("a") == 1.0
    assert rollup(h, vals, "max").get("b") == 2.0
    assert rollup(h, None, "count").to_dict() == {"a": 4.0, "b": 2.0, "c": 1.0, "d": 1.0}
    assert total["a"] == 7.0
    assert members(h, "b") == ["b", "d"]
    assert total.members("b") == ["b"]


def test_rollup_to_pandas() -> None:
    h = AccountHierarchy.from_arrays(["a", "b"], ["", "a"])
    frame = rollup(h, [1.0, 2.0]).to_pandas()
    assert frame.loc["a", "value"] == 3.0
    assert frame.loc["a", "count"] == 2
    assert frame.index.name == "account_id"


def test_rollup_bad_input() -> None:
    h = AccountHierarchy.from_arrays(["a", "b"], ["", "a"])
    with pytest.raises(ValidationError, match="how"):
        rollup(h, [1.0, 2.0], "median")
    with pytest.raises(ValidationError, match="aligned"):
        rollup(h, [1.0, 2.0, 3.0])
    with pytest.raises(ValidationError, match="numbers"):
        rollup(h, ["x", "y"])
    with pytest.raises(NotFound, match="zz"):
        rollup(h, {"zz": 1.0})
    with pytest.raises(ValidationError, match="numbers"):
        rollup(h, {"a": "lots"})


def _store() -> MemoryStore:
    store = MemoryStore()
    store.accounts.add_many(
        [
            Account(id="hq", name="HQ", annual_revenue=1000, custom={"seats": 10}),
            Account(id="eu", name="EU", parent_id="hq", annual_revenue=300),
            Account(id="fr", name="FR", parent_id="eu", custom={"seats": 5}),
            Account(id="x", name="X", annual_revenue=7),
        ]
    )
    store.opportunities.add_many(
        [
            Opportunity(id="o1", name="1", account_id="fr", amount=50),
            Opportunity(id="o2", name="2", account_id="eu", amount=20),
            Opportunity(id="o3", name="3", account_id="hq", amount=99, status="won"),
            Opportunity(id="o4", name="4", account_id="fr", amount=11, status="lost"),
            Opportunity(id="o5", name="5", amount=1000),  # no account
        ]
    )
    store.activities.add_many(
        [
            Activity(id=f"a{i}", kind=k, at=AT, account_id=acc)
            for i, (k, acc) in enumerate(
                [("call", "fr"), ("call", "fr"), ("meeting", "eu"), ("call", "x"), ("note", None)]
            )
        ]
    )
    return store


def test_store_rollups() -> None:
    store = _store()
    h = AccountHierarchy.from_store(store)
    revenue = rollup_field(store, h, "annual_revenue")
    assert revenue.get("hq") == 1300.0
    assert revenue.count("hq") == 2  # fr has no revenue
    assert revenue.members("hq") == ["hq", "eu"]
    assert rollup_field(store, h, "custom.seats").get("hq") == 15.0
    assert open_pipeline(store, h).get("hq") == 70.0
    assert open_pipeline(store, h).get("eu") == 70.0
    assert won_revenue(store, h).get("hq") == 99.0
    assert won_revenue(store, h).get("eu") == 0.0
    assert activity_counts(store, h).get("hq") == 3.0
    calls = activity_counts(store, h, {"field": "kind", "op": "==", "value": "call"})
    assert calls.get("hq") == 2.0
    assert calls.get("x") == 1.0
    # an engagement score per account, rolled up as the family's best
    scores = np.array([0.2, 0.9, 0.4, 0.1])  # aligned with h.ids: eu, fr, hq, x
    assert h.ids.tolist() == ["eu", "fr", "hq", "x"]
    assert rollup(h, scores, "max").get("hq") == 0.9


def test_rollup_field_refuses_non_numeric() -> None:
    store = _store()
    h = AccountHierarchy.from_store(store)
    with pytest.raises(ValidationError, match="numeric"):
        rollup_field(store, h, "name")
    with pytest.raises(CriteriaError, match="no field"):
        rollup_field(store, h, "revenue")
