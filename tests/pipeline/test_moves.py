from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from crmkit import ConflictError, Opportunity, OpportunityStatus, ValidationError
from crmkit.pipeline import (
    DEFAULT_PIPELINE,
    ForecastCategory,
    Pipeline,
    Stage,
    close_lost,
    close_won,
    move,
)
from crmkit.store import MemoryStore

AT = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


@pytest.fixture
def deal_store() -> MemoryStore:
    s = MemoryStore()
    s.opportunities.add(Opportunity(id="d1", name="Deal", amount=100))
    return s


def test_default_pipeline_shape() -> None:
    assert DEFAULT_PIPELINE.names == (
        "prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost",
    )  # fmt: skip
    assert [s.probability for s in DEFAULT_PIPELINE.open_stages] == [0.1, 0.25, 0.5, 0.8]
    assert DEFAULT_PIPELINE.stage("negotiation").category is ForecastCategory.COMMIT
    assert DEFAULT_PIPELINE.won_stage.outcome is OpportunityStatus.WON


def test_pipeline_validation() -> None:
    talk = Stage(name="talk", probability=0.2)
    with pytest.raises(ValidationError, match="needs at least one won stage"):
        Pipeline(stages=[talk, Stage(name="lost", probability=0, outcome="lost")])
    with pytest.raises(ValidationError, match="unique"):
        Pipeline(stages=[talk, talk])
    with pytest.raises(ValidationError, match="probability"):
        Stage(name="x", probability=1.5)
    with pytest.raises(ValidationError, match="rotting_days"):
        Stage(name="x", probability=0.5, rotting_days=0)


def test_move_records_stage_change(deal_store: MemoryStore) -> None:
    deal = move(deal_store, "d1", "negotiation", at=AT, changed_by="ann")
    assert (deal.stage, deal.probability, deal.status, deal.version) == (
        "negotiation", 0.8, OpportunityStatus.OPEN, 2,
    )  # fmt: skip
    (change,) = list(deal_store.stage_changes)
    assert (change.from_stage, change.to_stage, change.at, change.changed_by) == (
        "prospecting", "negotiation", AT, "ann",
    )  # fmt: skip
    assert change.amount == 100
    assert change.probability == 0.8


def test_close_won_sets_status_dates_amount(deal_store: MemoryStore) -> None:
    won = close_won(deal_store, "d1", at=AT, amount="250.50")
    assert won.status is OpportunityStatus.WON
    assert won.closed_at == AT
    assert won.close_date == date(2026, 3, 2)
    assert str(won.amount) == "250.50"
    assert won.probability == 1.0


def test_close_lost_with_reason_then_reopen(deal_store: MemoryStore) -> None:
    lost = close_lost(deal_store, "d1", at=AT, reason="budget")
    assert (lost.status, lost.loss_reason, lost.probability) == (
        OpportunityStatus.LOST, "budget", 0.0,
    )  # fmt: skip
    with pytest.raises(ValidationError) as info:
        move(deal_store, "d1", "proposal", at=AT)
    message = str(info.value)
    assert "'d1'" in message
    assert "closed_lost" in message
    assert "proposal" in message
    assert "reopen=True" in message
    again = move(deal_store, "d1", "proposal", at=AT, reopen=True)
    assert (again.status, again.closed_at, again.loss_reason) == (
        OpportunityStatus.OPEN, None, None,
    )  # fmt: skip
    assert len(deal_store.stage_changes) == 2


def test_unknown_stage_and_same_stage_refused(deal_store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match=r"'d1'.*'prospecting' to 'demo'.*unknown stage"):
        move(deal_store, "d1", "demo", at=AT)
    with pytest.raises(ValidationError, match="already in that stage"):
        move(deal_store, "d1", "prospecting", at=AT)
    assert len(deal_store.stage_changes) == 0
    assert deal_store.opportunities.get("d1").version == 1


def test_forward_only_pipeline(deal_store: MemoryStore) -> None:
    forward = Pipeline(stages=DEFAULT_PIPELINE.stages, name="strict", forward_only=True)
    move(deal_store, "d1", "proposal", at=AT, pipeline=forward)
    with pytest.raises(ValidationError, match="only moves forward"):
        move(deal_store, "d1", "qualification", at=AT, pipeline=forward)
    # the default pipeline allows it
    assert move(deal_store, "d1", "qualification", at=AT).stage == "qualification"


def test_optimistic_version_check(deal_store: MemoryStore) -> None:
    with pytest.raises(ConflictError):
        move(deal_store, "d1", "proposal", at=AT, expected_version=7)
    assert len(deal_store.stage_changes) == 0
    assert deal_store.opportunities.get("d1").stage == "prospecting"


def test_naive_time_refused(deal_store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        move(deal_store, "d1", "proposal", at=datetime(2026, 1, 1))


def test_change_id_collision_gets_a_fresh_id(deal_store: MemoryStore) -> None:
    """A stage change id already taken (e.g. after put()) does not block the move."""
    move(deal_store, "d1", "proposal", at=AT)
    deal_store.opportunities.put(deal_store.opportunities.get("d1"))  # version 3, id taken
    from crmkit import StageChange

    deal_store.stage_changes.add(
        StageChange(id="d1:stage:0004", opportunity_id="x", to_stage="proposal", at=AT)
    )
    moved = move(deal_store, "d1", "negotiation", at=AT)  # picks a fresh change id
    assert moved.stage == "negotiation"
    assert len(deal_store.stage_changes) == 3
