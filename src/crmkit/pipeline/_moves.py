"""Moving a deal through its pipeline, with a StageChange for every move."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs

from crmkit.errors import ValidationError
from crmkit.events import emit
from crmkit.pipeline._stages import DEFAULT_PIPELINE, Pipeline
from crmkit.records import Opportunity, OpportunityStatus, StageChange
from crmkit.store._base import Store

__all__ = ["close_lost", "close_won", "move"]


def _refuse(opp: Opportunity, to_stage: str, reason: str) -> ValidationError:
    return ValidationError(
        "Opportunity",
        "stage",
        to_stage,
        f"cannot move from {opp.stage!r} to {to_stage!r}: {reason}",
        record_id=opp.id,
    )


def move(
    store: Store,
    opportunity_id: str,
    to_stage: str,
    *,
    at: datetime,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    changed_by: str | None = None,
    reopen: bool = False,
    amount: Decimal | float | int | str | None = None,
    probability: float | None = None,
    close_date: date | None = None,
    reason: str | None = None,
    expected_version: int | None = None,
) -> Opportunity:
    """Move an opportunity to ``to_stage`` and record a :class:`StageChange`, atomically.

    The deal takes the stage's default probability (or ``probability``). Moving to a won
    or lost stage closes it: ``status``, ``closed_at = at`` and ``close_date`` (``at``'s
    UTC day unless given) are set; ``reason`` becomes the ``loss_reason`` of a lost deal.
    A closed deal is only moved again with ``reopen=True``. ``expected_version`` makes
    the update fail with :class:`~crmkit.errors.ConflictError` if the deal changed since
    you read it. The StageChange keeps the amount, probability and close date after the
    move (and in ``custom`` the close date and amount before it, when they changed), which
    :func:`snapshot` uses to rebuild the past.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="Deal", amount=1000))
    >>> at = datetime(2026, 2, 3, 10, tzinfo=timezone.utc)
    >>> deal = move(store, "o1", "proposal", at=at)
    >>> deal.stage, deal.probability, len(store.stage_changes)
    ('proposal', 0.5, 1)
    >>> close_won(store, "o1", at=at).status
    <OpportunityStatus.WON: 'won'>
    >>> move(store, "o1", "negotiation", at=at)
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Opportunity 'o1' field 'stage' = 'negotiation': cannot move
    from 'closed_won' to 'negotiation': the deal is closed (won); pass reopen=True ...
    """
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValidationError(
            "StageChange", "at", at, "must be a timezone-aware datetime", record_id=opportunity_id
        )
    with store.transaction():
        opp = store.opportunities.get(opportunity_id)
        if not isinstance(to_stage, str) or to_stage not in pipeline.names:
            raise _refuse(
                opp, str(to_stage), f"unknown stage; known stages: {', '.join(pipeline.names)}"
            )
        target = pipeline.stage(to_stage)
        closed = opp.status is not OpportunityStatus.OPEN
        if closed and not reopen:
            raise _refuse(
                opp,
                to_stage,
                f"the deal is closed ({opp.status.value}); pass reopen=True to reopen it",
            )
        if to_stage == opp.stage and not closed:
            raise _refuse(opp, to_stage, "the deal is already in that stage")
        if (
            pipeline.forward_only
            and not closed
            and target.is_open
            and opp.stage in pipeline.names
            and pipeline.index(to_stage) < pipeline.index(opp.stage)
        ):
            raise _refuse(opp, to_stage, f"pipeline {pipeline.name!r} only moves forward")
        changes: dict[str, Any] = {
            "stage": target.name,
            "probability": target.probability if probability is None else probability,
            "status": target.outcome,
        }
        if amount is not None:
            changes["amount"] = amount
        if target.is_open:
            changes["closed_at"] = None
            if closed:
                changes["loss_reason"] = None
            if close_date is not None:
                changes["close_date"] = close_date
        else:
            changes["closed_at"] = at
            changes["close_date"] = close_date or at.astimezone(UTC).date()
            if target.outcome is OpportunityStatus.LOST and reason is not None:
                changes["loss_reason"] = reason
        try:
            new = attrs.evolve(opp, **changes)
        except (ValueError, TypeError) as err:
            raise _refuse(opp, to_stage, str(err)) from err
        version = opp.version if expected_version is None else expected_version
        stored = store.opportunities.update(new, expected_version=version)
        change_id = f"{opp.id}:stage:{stored.version:04d}"
        if change_id in store.stage_changes:
            change_id += f":{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S%f')}"
        custom: dict[str, Any] = {}
        if stored.close_date is not None:
            custom["close_date"] = stored.close_date.isoformat()
        if opp.close_date is not None and opp.close_date != stored.close_date:
            custom["previous_close_date"] = opp.close_date.isoformat()
        if opp.amount is not None and opp.amount != stored.amount:
            custom["previous_amount"] = float(opp.amount)
        store.stage_changes.add(
            StageChange(
                id=change_id,
                opportunity_id=opp.id,
                from_stage=opp.stage,
                to_stage=target.name,
                at=at,
                amount=stored.amount,
                probability=stored.probability,
                changed_by=changed_by,
                custom=custom,
            )
        )
        moved = {"from_stage": opp.stage, "to_stage": target.name, "amount": stored.amount}
        emit(store, "opportunity.stage_changed", subject=opp.id, payload={**moved, "at": at})
        if not target.is_open:  # opportunity.won / opportunity.lost
            emit(store, f"opportunity.{stored.status.value}", subject=opp.id, payload=moved)
        return stored


def close_won(
    store: Store,
    opportunity_id: str,
    *,
    at: datetime,
    amount: Decimal | float | int | str | None = None,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    changed_by: str | None = None,
    close_date: date | None = None,
    expected_version: int | None = None,
) -> Opportunity:
    """Close a deal as won (optionally with its final ``amount``); see :func:`move`.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="Deal"))
    >>> won = close_won(store, "o1", at=datetime(2026, 3, 1, tzinfo=timezone.utc), amount=500)
    >>> won.amount, won.close_date.isoformat(), won.probability
    (Decimal('500'), '2026-03-01', 1.0)
    """
    return move(
        store,
        opportunity_id,
        pipeline.won_stage.name,
        at=at,
        pipeline=pipeline,
        changed_by=changed_by,
        amount=amount,
        close_date=close_date,
        expected_version=expected_version,
    )


def close_lost(
    store: Store,
    opportunity_id: str,
    *,
    at: datetime,
    reason: str | None = None,
    amount: Decimal | float | int | str | None = None,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    changed_by: str | None = None,
    close_date: date | None = None,
    expected_version: int | None = None,
) -> Opportunity:
    """Close a deal as lost, with an optional loss ``reason``; see :func:`move`.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="Deal"))
    >>> lost = close_lost(store, "o1", at=datetime(2026, 3, 1, tzinfo=timezone.utc),
    ...                   reason="price")
    >>> lost.status.value, lost.loss_reason
    ('lost', 'price')
    """
    return move(
        store,
        opportunity_id,
        pipeline.lost_stage.name,
        at=at,
        pipeline=pipeline,
        changed_by=changed_by,
        amount=amount,
        close_date=close_date,
        reason=reason,
        expected_version=expected_version,
    )
