"""Repeated queries reuse bound criteria, and the cache never changes an answer."""

from __future__ import annotations

import gc

import pytest

from crmkit.criteria import F
from crmkit.errors import CriteriaError
from crmkit.records import Account
from crmkit.store import MemoryStore
from crmkit.store._base import bound
from crmkit.store.sqlite import SQLiteStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> MemoryStore | SQLiteStore:
    store = MemoryStore() if request.param == "memory" else SQLiteStore(":memory:")
    store.accounts.add_many(
        [
            Account(id="one", name="One", custom={"x": 1}),
            Account(id="true", name="True", custom={"x": True}),
            Account(id="text", name="Text", custom={"x": "1"}),
        ]
    )
    return store


def test_equal_but_differently_typed_values_are_kept_apart(
    store: MemoryStore | SQLiteStore,
) -> None:
    for _ in range(2):  # the second round reads from the cache
        assert [a.id for a in store.accounts.query(F.custom["x"] == 1)] == ["one"]
        assert [a.id for a in store.accounts.query(F.custom["x"] == True)] == ["true"]  # noqa: E712
        assert [a.id for a in store.accounts.query(F.custom["x"] == "1")] == ["text"]
        assert [
            a.id for a in store.accounts.query({"field": "custom.x", "op": "==", "value": 1.0})
        ] == ["one"]


def test_a_changed_dict_is_bound_afresh(store: MemoryStore | SQLiteStore) -> None:
    criteria = {"field": "custom.x", "op": "==", "value": 1}
    assert [a.id for a in store.accounts.query(criteria)] == ["one"]
    criteria["value"] = "1"
    assert [a.id for a in store.accounts.query(criteria)] == ["text"]


def test_the_same_object_is_bound_once_and_a_reused_id_is_not_confused() -> None:
    criteria = F.country == "US"
    first = bound(criteria, Account)
    assert bound(criteria, Account) is first
    del criteria
    gc.collect()
    for _ in range(50):  # new objects may get the old one's id: they must bind afresh
        other = F.country == "FR"
        assert bound(other, Account).criteria == other
        del other


def test_criteria_that_are_not_json_still_bind() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert bound(F.created_at >= when, Account).matches(Account(id="a", name="A", created_at=when))


def test_a_cached_plan_follows_the_data_it_plans_for() -> None:
    """A memory store keeps the plan of a repeated query; writes, a dropped index and a
    rolled-back transaction never make it miss a record or return a stale one."""
    store = MemoryStore(index_from=0)
    criteria = (F.industry == "Energy") & (F.employees >= 10)

    def expected() -> list[str]:
        return sorted(
            a.id
            for a in store.accounts
            if a.industry == "Energy" and a.employees is not None and a.employees >= 10
        )

    def ids() -> list[str]:
        return [a.id for a in store.accounts.query(criteria)]

    assert ids() == expected() == []
    store.accounts.add(Account(id="a", name="A", industry="Energy", employees=50))
    assert ids() == expected() == ["a"]
    big = [  # enough to drop and rebuild the indexes, with a different best index
        Account(id=f"b{i:04d}", name="B", industry="Energy" if i % 2 else "Retail", employees=i)
        for i in range(3_000)
    ]
    store.accounts.add_many(big)
    assert ids() == expected()
    seen_inside: list[str] = []

    def patch_then_fail() -> None:
        with store.transaction():
            store.accounts.patch("a", employees=1)
            seen_inside.extend(ids())
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        patch_then_fail()
    assert "a" not in seen_inside
    assert "a" in ids()
    assert ids() == expected()
    store.accounts.patch("b0003", industry="Retail")
    assert "b0003" not in ids()
    assert ids() == expected()


def test_a_repeated_order_by_is_checked_every_time(store: MemoryStore | SQLiteStore) -> None:
    for _ in range(2):
        assert [a.id for a in store.accounts.query(order_by=["-name"])] == ["true", "text", "one"]
        with pytest.raises(CriteriaError):
            store.accounts.query(order_by=["nope"])


def test_a_repeated_lookup_of_exact_keys_reads_each_record_once() -> None:
    store = MemoryStore(index_from=0)
    store.accounts.add_many(
        [Account(id=f"a{i:02d}", name="A", industry=f"i{i % 10}") for i in range(40)]
    )
    for _ in range(3):  # the first query plans, the others read the cached plan's keys
        assert [a.id for a in store.accounts.query(F.industry == "i3")] == [
            "a03",
            "a13",
            "a23",
            "a33",
        ]
        assert [a.id for a in store.accounts.query(F.industry.isin(["i1", "i2", "i1"]))] == [
            "a01",
            "a02",
            "a11",
            "a12",
            "a21",
            "a22",
            "a31",
            "a32",
        ]
        assert store.accounts.query(F.industry == "Mining") == []
