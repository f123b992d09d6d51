from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import (
    Account,
    ConflictError,
    CriteriaError,
    Lead,
    MemoryStore,
    NotFound,
    Opportunity,
    Reminder,
    Rep,
    ValidationError,
)
from crmkit.ownership import ownership_history, plan_departure, reassign

AT = datetime(2026, 5, 4, 9, tzinfo=UTC)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.reps.add_many(
        [
            Rep(id="gone", name="Gone"),
            Rep(id="ann", name="Ann"),
            Rep(id="bob", name="Bob"),
            Rep(id="off", name="Off", active=False),
        ]
    )
    return store


def test_reassign_writes_history(store: MemoryStore) -> None:
    store.accounts.add(Account(id="acme", name="Acme", owner_id="ann"))
    first = reassign(store, "Account", "acme", "bob", reason="swap", at=AT, changed_by="mgr")
    assert first is not None
    assert (first.from_owner_id, first.to_owner_id, first.changed_by) == ("ann", "bob", "mgr")
    second = reassign(store, Account, "acme", "ann", reason="back", at=AT + timedelta(days=1))
    assert second is not None
    assert store.accounts.get("acme").owner_id == "ann"
    assert store.accounts.get("acme").version == 3
    history = ownership_history(store, "accounts", "acme")
    assert [(c.from_owner_id, c.to_owner_id) for c in history] == [("ann", "bob"), ("bob", "ann")]
    assert reassign(store, "Account", "acme", "ann", reason="noop", at=AT) is None
    assert len(store.ownership_changes) == 2


def test_reassign_refuses_bad_reps_and_writes_nothing(store: MemoryStore) -> None:
    store.leads.add(Lead(id="l1", email="x@y.com", owner_id="ann"))
    with pytest.raises(ValidationError, match=r"'off'.*inactive"):
        reassign(store, "Lead", "l1", "off", reason=None, at=AT)
    with pytest.raises(ValidationError, match=r"'ghost'.*not a known rep") as err:
        reassign(store, "Lead", "l1", "ghost", reason=None, at=AT)
    assert (err.value.record, err.value.field, err.value.record_id) == ("Lead", "owner_id", "l1")
    with pytest.raises(NotFound):
        reassign(store, "Lead", "nope", "bob", reason=None, at=AT)
    with pytest.raises(ValidationError, match="no owner"):
        reassign(store, "Activity", "a", "bob", reason=None, at=AT)
    with pytest.raises(CriteriaError, match="unknown record type"):
        reassign(store, "Widget", "a", "bob", reason=None, at=AT)
    with pytest.raises(ValidationError, match="timezone"):
        reassign(store, "Lead", "l1", "bob", reason=None, at=datetime(2026, 1, 1))
    with pytest.raises(ConflictError):
        reassign(store, "Lead", "l1", "bob", reason=None, at=AT, expected_version=5)
    assert store.leads.get("l1").owner_id == "ann"
    assert len(store.ownership_changes) == 0


def _book(store: MemoryStore) -> None:
    store.accounts.add_many(
        [
            Account(id="a1", name="A1", owner_id="gone", annual_revenue=900, domain="a1.com"),
            Account(id="a2", name="A2", owner_id="gone", annual_revenue=500),
            Account(id="a3", name="A3", owner_id="gone", annual_revenue=400),
            Account(id="a4", name="A4", owner_id="gone"),
            Account(id="keep", name="K", owner_id="bob", annual_revenue=600),
        ]
    )
    store.opportunities.add_many(
        [
            Opportunity(id="o1", name="o", account_id="a1", owner_id="gone"),
            Opportunity(id="o2", name="o", account_id="a1", owner_id="gone", status="won"),
            Opportunity(id="o3", name="o", account_id="keep", owner_id="gone"),
        ]
    )
    store.leads.add_many(
        [
            Lead(id="l1", email="cto@A1.com", owner_id="gone"),
            Lead(id="l2", email="x@elsewhere.org", owner_id="gone"),
            Lead(id="l3", email="old@a1.com", owner_id="gone", status="disqualified"),
        ]
    )
    store.reminders.add_many(
        [
            Reminder(id="r1", title="call", due_at=AT, owner_id="gone", account_id="a2"),
            Reminder(id="r2", title="call", due_at=AT, owner_id="gone", opportunity_id="o1"),
            Reminder(id="r3", title="call", due_at=AT, owner_id="gone", lead_id="l1"),
            Reminder(id="r4", title="call", due_at=AT, owner_id="gone"),
        ]
    )


def test_plan_by_revenue_is_greedy_largest_first(store: MemoryStore) -> None:
    _book(store)
    plan = plan_departure(
        store, "gone", ["bob", "ann", "off", "ghost"], balance_by="revenue", at=AT
    )
    # bob starts at 600, ann at 0: a1 (900) -> ann; a2 (500) -> bob (600 < 900);
    # a3 (400) -> ann (900 < 1100); a4 (0) -> bob (1100 < 1300)
    assert plan.assignments() == {"ann": ["a1", "a3"], "bob": ["a2", "a4"]}
    assert dict(plan.workload_before) == {"gone": 1800.0, "ann": 0.0, "bob": 600.0}
    assert dict(plan.workload_after) == {"gone": 0.0, "ann": 1300.0, "bob": 1100.0}
    assert dict(plan.excluded) == {"off": "inactive", "ghost": "unknown rep"}
    assert plan.receivers == ("ann", "bob")
    assert plan.assignments("Opportunity") == {"ann": ["o1"], "bob": []}
    assert plan.assignments("Lead") == {"ann": ["l1"], "bob": []}
    assert plan.assignments("Reminder") == {"ann": ["r2", "r3"], "bob": ["r1"]}
    assert set(plan.left_over) == {("Opportunity", "o3"), ("Lead", "l2"), ("Reminder", "r4")}
    assert "hand-over of gone" in str(plan)
    assert len(store.ownership_changes) == 0  # a plan writes nothing

    changes = plan.apply(store, changed_by="mgr")
    assert len(changes) == len(plan.moves) == 9
    assert store.accounts.get("a3").owner_id == "ann"
    assert store.reminders.get("r1").owner_id == "bob"
    assert store.opportunities.get("o3").owner_id == "gone"
    assert store.opportunities.get("o2").owner_id == "gone"  # won deals stay
    assert {c.changed_by for c in changes} == {"mgr"}
    assert all(c.reason == "rep departure" for c in changes)


def test_plan_by_count_and_without_cascade(store: MemoryStore) -> None:
    _book(store)
    plan = plan_departure(store, "gone", ["ann", "bob"], cascade=(), at=AT)
    # ann 0, bob 1: a1 -> ann (1, 1); a2 tie -> ann (2, 1); a3 -> bob (2, 2); a4 tie -> ann
    assert plan.assignments() == {"ann": ["a1", "a2", "a4"], "bob": ["a3"]}
    assert dict(plan.workload_after) == {"gone": 0.0, "ann": 3.0, "bob": 2.0}
    assert {m.record_type for m in plan.moves} == {"Account"}


def test_apply_is_atomic_and_version_checked(store: MemoryStore) -> None:
    _book(store)
    plan = plan_departure(store, "gone", ["ann", "bob"], at=AT)
    o1 = store.opportunities.get("o1")
    store.opportunities.update(attrs.evolve(o1, name="changed"))
    with pytest.raises(ConflictError, match="o1"):
        plan.apply(store)
    assert store.accounts.get("a1").owner_id == "gone"
    assert len(store.ownership_changes) == 0
    fresh = plan_departure(store, "gone", ["ann", "bob"], at=AT)
    store.reps.update(attrs.evolve(store.reps.get("ann"), active=False))
    with pytest.raises(ValidationError, match="inactive"):
        fresh.apply(store)
    assert len(store.ownership_changes) == 0


def test_plan_bad_input(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="no active rep"):
        plan_departure(store, "gone", ["off", "gone"], at=AT)
    with pytest.raises(ValidationError, match="balance_by"):
        plan_departure(store, "gone", ["ann"], balance_by="mood", at=AT)
    with pytest.raises(ValidationError, match="cascade"):
        plan_departure(store, "gone", ["ann"], cascade=("contacts",), at=AT)
    with pytest.raises(NotFound):
        plan_departure(store, "nobody", ["ann"], at=AT)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=1000), max_size=25),
    st.lists(st.integers(min_value=0, max_value=3), min_size=3, max_size=3),
)
def test_plan_properties(revenues: list[int], owned: list[int]) -> None:
    """Every account moves exactly once, to an active receiver, and the greedy result is
    never worse than the largest account above the best possible balance."""
    store = MemoryStore()
    store.reps.add_many([Rep(id=r, name=r) for r in ("gone", "r1", "r2", "r3")])
    store.reps.add(Rep(id="r0", name="r0", active=False))
    store.accounts.add_many(
        [
            Account(id=f"a{i:02d}", name="A", owner_id="gone", annual_revenue=v)
            for i, v in enumerate(revenues)
        ]
        + [
            Account(id=f"k{r}{j}", name="K", owner_id=f"r{r + 1}", annual_revenue=100)
            for r, count in enumerate(owned)
            for j in range(count)
        ]
    )
    plan = plan_departure(store, "gone", ["r0", "r1", "r2", "r3"], balance_by="revenue", at=AT)
    moved = [m.record_id for m in plan.moves]
    assert sorted(moved) == [f"a{i:02d}" for i in range(len(revenues))]
    assert {m.to_owner_id for m in plan.moves} <= {"r1", "r2", "r3"}
    after = plan.workload_after
    total = sum(revenues) + 100 * sum(owned)
    assert sum(after[r] for r in ("r1", "r2", "r3")) == pytest.approx(total)
    if revenues:
        spread = max(after[r] for r in ("r1", "r2", "r3")) - min(
            after[r] for r in ("r1", "r2", "r3")
        )
        start_spread = max(owned) * 100 - min(owned) * 100
        assert spread <= max(max(revenues), start_spread)
    plan.apply(store)
    for account_id in moved:
        assert store.accounts.get(account_id).owner_id in {"r1", "r2", "r3"}
