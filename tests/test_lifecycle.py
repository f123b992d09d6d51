from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from crmkit import Account, ConflictError, MemoryStore, NotFound, ValidationError
from crmkit.lifecycle import DEFAULT_LIFECYCLE, LifecycleModel, history, move, time_in_stage

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.accounts.add(Account(id="acme", name="Acme", created_at=T0))
    return store


def test_default_model_transitions() -> None:
    m = DEFAULT_LIFECYCLE
    assert m.stages == ("prospect", "onboarding", "active", "renewal", "churned")
    assert m.allowed("prospect", "onboarding")
    assert not m.allowed("prospect", "active")
    assert m.allowed("renewal", "active")
    assert m.allowed("churned", "prospect")  # win-back
    assert not m.allowed("active", "active")
    forward = m.with_forward_only()
    assert not forward.allowed("renewal", "active")
    assert not forward.allowed("churned", "prospect")
    assert forward.allowed("active", "renewal")


def test_model_validation() -> None:
    with pytest.raises(ValidationError, match="not a stage"):
        LifecycleModel(stages=("a", "b"), transitions={"a": ["nope"]}, initial="a")
    with pytest.raises(ValidationError, match="initial"):
        LifecycleModel(stages=("a",), transitions={}, initial="z")
    with pytest.raises(ValidationError, match="unique"):
        LifecycleModel(stages=("a", "a"), transitions={}, initial="a")


def test_move_history_and_time_in_stage(store: MemoryStore) -> None:
    first = move(store, "acme", "onboarding", at=day(10), reason="signed", changed_by="ann")
    assert (first.from_stage, first.to_stage, first.reason) == ("prospect", "onboarding", "signed")
    move(store, "acme", "active", at=day(20))
    move(store, "acme", "churned", at=day(50))
    move(store, "acme", "prospect", at=day(80), reason="win-back")
    account = store.accounts.get("acme")
    assert account.lifecycle_stage == "prospect"
    assert account.version == 5
    assert [c.to_stage for c in history(store, "acme")] == [
        "onboarding",
        "active",
        "churned",
        "prospect",
    ]
    spent = time_in_stage(store, "acme", now=day(100))
    assert spent == {
        "prospect": timedelta(days=10 + 20),
        "onboarding": timedelta(days=10),
        "active": timedelta(days=30),
        "churned": timedelta(days=30),
    }


def test_time_in_stage_without_created_at() -> None:
    store = MemoryStore()
    store.accounts.add(Account(id="x", name="X"))
    assert time_in_stage(store, "x", now=day(1)) == {}
    move(store, "x", "onboarding", at=day(2))
    assert time_in_stage(store, "x", now=day(5)) == {"onboarding": timedelta(days=3)}


def test_invalid_moves_name_from_and_to_and_write_nothing(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="from 'prospect' to 'active'") as err:
        move(store, "acme", "active", at=day(1))
    assert err.value.record_id == "acme"
    assert err.value.field == "lifecycle_stage"
    with pytest.raises(ValidationError, match="unknown stage"):
        move(store, "acme", "vip", at=day(1))
    move(store, "acme", "onboarding", at=day(5))
    with pytest.raises(ValidationError, match="before the last change"):
        move(store, "acme", "active", at=day(4))
    with pytest.raises(ConflictError):
        move(store, "acme", "active", at=day(6), expected_version=1)
    with pytest.raises(NotFound):
        move(store, "ghost", "active", at=day(6))
    with pytest.raises(ValidationError, match="timezone"):
        move(store, "acme", "active", at=datetime(2026, 1, 1))
    assert store.accounts.get("acme").lifecycle_stage == "onboarding"
    assert len(store.lifecycle_changes) == 1


def test_custom_model_and_forward_only(store: MemoryStore) -> None:
    model = LifecycleModel(
        stages=("prospect", "trial", "paid"),
        transitions={"prospect": ["trial", "paid"], "trial": ["paid", "prospect"]},
        forward_only=True,
    )
    move(store, "acme", "trial", at=day(1), model=model)
    with pytest.raises(ValidationError, match="from 'trial' to 'prospect'"):
        move(store, "acme", "prospect", at=day(2), model=model)
    move(store, "acme", "paid", at=day(3), model=model)
    assert store.accounts.get("acme").lifecycle_stage == "paid"
    stale = attrs.evolve(store.accounts.get("acme"), lifecycle_stage="legacy")
    store.accounts.update(stale)
    with pytest.raises(ValidationError, match="not a stage of this model"):
        move(store, "acme", "active", at=day(4))
