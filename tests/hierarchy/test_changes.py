from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crmkit import (
    Account,
    ConflictError,
    HierarchyCycleError,
    MemoryStore,
    NotFound,
    ValidationError,
)
from crmkit.hierarchy import (
    AccountHierarchy,
    family,
    hierarchy_history,
    merge_under,
    reparent,
    ultimate_parent,
)

AT = datetime(2026, 4, 1, 12, tzinfo=UTC)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.accounts.add_many(
        [
            Account(id="hq", name="HQ"),
            Account(id="eu", name="EU", parent_id="hq"),
            Account(id="fr", name="FR", parent_id="eu"),
            Account(id="buyer", name="Buyer"),
            Account(id="target", name="Target"),
            Account(id="target-uk", name="Target UK", parent_id="target"),
        ]
    )
    return store


def test_reparent_moves_and_bumps_version(store: MemoryStore) -> None:
    done = reparent(store, "fr", "hq", reason="flatten", at=AT, changed_by="ops")
    assert (done.from_parent_id, done.to_parent_id, done.version) == ("eu", "hq", 2)
    assert done.reason == "flatten"
    assert store.accounts.get("fr").parent_id == "hq"
    done = reparent(store, "fr", None, reason="spin-off", at=AT)
    assert store.accounts.get("fr").parent_id is None


def test_reparent_history_is_stored_with_the_move(store: MemoryStore) -> None:
    later = datetime(2026, 5, 1, tzinfo=UTC)
    reparent(store, "fr", "hq", reason="flatten", at=AT, changed_by="ops")
    reparent(store, "fr", None, reason="spin-off", at=later)
    changes = hierarchy_history(store, "fr")
    assert [(c.from_parent_id, c.to_parent_id, c.reason, c.at) for c in changes] == [
        ("eu", "hq", "flatten", AT),
        ("hq", None, "spin-off", later),
    ]
    assert changes[0].changed_by == "ops"
    assert hierarchy_history(store, "eu") == []


def test_reparent_refuses_cycles_and_writes_nothing(store: MemoryStore) -> None:
    with pytest.raises(HierarchyCycleError) as err:
        reparent(store, "hq", "fr", reason="x", at=AT)
    assert err.value.cycle == ["hq", "fr", "eu", "hq"]
    with pytest.raises(HierarchyCycleError) as err:
        reparent(store, "eu", "eu", reason="x", at=AT)
    assert err.value.cycle == ["eu", "eu"]
    assert store.accounts.get("hq").parent_id is None
    assert store.accounts.get("hq").version == 1
    assert len(store.hierarchy_changes) == 0


def test_reparent_bad_input(store: MemoryStore) -> None:
    with pytest.raises(NotFound, match="ghost"):
        reparent(store, "fr", "ghost", reason="x", at=AT)
    with pytest.raises(NotFound, match="ghost"):
        reparent(store, "ghost", "hq", reason="x", at=AT)
    with pytest.raises(ValidationError, match="timezone"):
        reparent(store, "fr", "hq", reason="x", at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="why"):
        reparent(store, "fr", "hq", reason=" ", at=AT)
    with pytest.raises(ConflictError):
        reparent(store, "fr", "hq", reason="x", at=AT, expected_version=7)
    assert store.accounts.get("fr").parent_id == "eu"


def test_merge_under_moves_the_whole_acquired_family(store: MemoryStore) -> None:
    merged = merge_under(store, "target-uk", "buyer", at=AT)
    assert merged.reparented.account_id == "target"
    assert merged.reparented.reason == "acquisition"
    assert set(merged.joined) == {"target", "target-uk"}
    h = AccountHierarchy.from_store(store)
    assert ultimate_parent(h, "target-uk") == "buyer"
    assert sorted(family(h, "buyer")) == ["buyer", "target", "target-uk"]


def test_merge_under_refuses_same_family(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="same family"):
        merge_under(store, "fr", "eu", at=AT)
    with pytest.raises(ValidationError, match="same family"):
        merge_under(store, "hq", "fr", at=AT)
    assert store.accounts.get("hq").version == 1
