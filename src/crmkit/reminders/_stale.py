"""Stale work: deals stuck in a stage and leads nobody touched, turned into reminders."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from crmkit._time import micros
from crmkit.criteria import F
from crmkit.errors import ValidationError
from crmkit.records import LeadStatus, OpportunityStatus, Reminder
from crmkit.reminders._transact import transact
from crmkit.store._base import Store

__all__ = ["stale_work"]


def _latest(ids: np.ndarray[Any, Any], at: np.ndarray[Any, Any]) -> dict[str, int]:
    """Latest ``at`` (microseconds) per id, numpy-grouped."""
    if len(ids) == 0:
        return {}
    keys, inverse = np.unique(ids, return_inverse=True)
    latest = np.full(len(keys), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest, inverse, at.astype(np.int64))
    return dict(zip(keys.tolist(), latest.tolist(), strict=True))


def _us(value: datetime | None) -> int | None:
    return None if value is None else micros(value)


def stale_work(
    store: Store,
    now: datetime,
    *,
    stage_days: Mapping[str, float] | None = None,
    default_stage_days: float | None = None,
    lead_sla_hours: float | None = None,
) -> list[Reminder]:
    """Create a reminder for each open deal whose stage has not changed for longer than
    its stage's threshold (``stage_days[stage]``, else ``default_stage_days``) and each
    new/working lead with no activity for ``lead_sla_hours``; return the new reminders.

    A deal's stage age runs from its last :class:`~crmkit.records.StageChange` (else its
    ``created_at``); a lead's idle time from its last activity (else ``assigned_at``, else
    ``created_at``). Reminder ids name the record and the instant it went quiet
    (``stale.opp.<id>.<us>``), so running again creates nothing new until the record moves
    and goes quiet again.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> from crmkit.records import Opportunity
    >>> store = MemoryStore()
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="Big", stage="proposal",
    ...                                         owner_id="ana", created_at=t0))
    >>> [r.title for r in stale_work(store, t0 + timedelta(days=10),
    ...                               stage_days={"proposal": 7})]
    ["Deal 'Big' has been in proposal for 10 days"]
    >>> stale_work(store, t0 + timedelta(days=11), stage_days={"proposal": 7})
    []
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValidationError("Reminder", "now", now, "must be a timezone-aware datetime")
    now = now.astimezone(UTC)
    return transact(
        store, lambda: _stale(store, now, stage_days, default_stage_days, lead_sla_hours)
    )


def _stale(
    store: Store,
    now: datetime,
    stage_days: Mapping[str, float] | None,
    default_stage_days: float | None,
    lead_sla_hours: float | None,
) -> list[Reminder]:
    reps = store.reps.columns(["id", "timezone"])
    zones = dict(zip(reps["id"].tolist(), reps["timezone"].tolist(), strict=True))
    found: list[Reminder] = []
    if stage_days or default_stage_days is not None:
        stages = stage_days or {}
        opps = store.opportunities.query(F.status == OpportunityStatus.OPEN.value)
        cols = store.stage_changes.columns(
            ["opportunity_id", "at"], F.opportunity_id.isin([o.id for o in opps])
        )
        moved = _latest(cols["opportunity_id"], cols["at"])
        for o in opps:
            limit = stages.get(o.stage, default_stage_days)
            since = moved.get(o.id, _us(o.created_at))
            if limit is None or since is None:
                continue
            age = timedelta(microseconds=micros(now) - since)
            if age > timedelta(days=limit):
                found.append(
                    Reminder(
                        id=f"stale.opp.{o.id}.{since}",
                        title=f"Deal {o.name!r} has been in {o.stage} for {age.days} days",
                        owner_id=o.owner_id,
                        due_at=now,
                        timezone=str(zones.get(o.owner_id or "", "UTC")),
                        opportunity_id=o.id,
                        account_id=o.account_id,
                    )
                )
    if lead_sla_hours is not None:
        leads = store.leads.query(F.status.isin([LeadStatus.NEW.value, LeadStatus.WORKING.value]))
        cols = store.activities.columns(["lead_id", "at"], F.lead_id.isin([x.id for x in leads]))
        touched = _latest(cols["lead_id"], cols["at"])
        for lead in leads:
            since = touched.get(lead.id, _us(lead.assigned_at or lead.created_at))
            if since is None:
                continue
            idle = timedelta(microseconds=micros(now) - since)
            if idle > timedelta(hours=lead_sla_hours):
                name = lead.company or lead.email or lead.id
                found.append(
                    Reminder(
                        id=f"stale.lead.{lead.id}.{since}",
                        title=f"Lead {name} untouched for {idle.total_seconds() / 3600:.0f} h",
                        owner_id=lead.owner_id,
                        due_at=now,
                        timezone=str(zones.get(lead.owner_id or "", "UTC")),
                        lead_id=lead.id,
                    )
                )
    fresh = [r for r in found if r.id not in store.reminders]
    return store.reminders.add_many(fresh) if fresh else []
