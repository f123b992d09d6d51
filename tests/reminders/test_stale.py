"""Stale deals and leads become reminders, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crmkit import Lead, MemoryStore, Opportunity, Rep, StageChange
from crmkit.activities import log
from crmkit.reminders import stale_work

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_stale_deals_and_leads() -> None:
    store = MemoryStore()
    store.reps.add(Rep(id="ana", name="Ana", timezone="America/Sao_Paulo"))
    store.opportunities.add_many(
        [
            Opportunity(id="o1", name="A", stage="proposal", owner_id="ana", created_at=T0),
            Opportunity(id="o2", name="B", stage="proposal", created_at=T0),
            Opportunity(id="o3", name="C", stage="closing", created_at=T0),
            Opportunity(id="o4", name="D", stage="proposal", status="won", created_at=T0),
        ]
    )
    # o2 moved into proposal on day 5: only 5 days in stage at day 10
    store.stage_changes.add(
        StageChange(id="s1", opportunity_id="o2", to_stage="proposal", at=T0 + timedelta(days=5))
    )
    store.leads.add_many(
        [
            Lead(id="l1", company="Quiet", created_at=T0),
            Lead(id="l2", company="Busy", created_at=T0),
            Lead(id="l3", company="Done", status="converted", created_at=T0),
        ]
    )
    log(store, "call", T0 + timedelta(days=9, hours=20), id="a1", lead_id="l2")
    now = T0 + timedelta(days=10)
    made = stale_work(store, now, stage_days={"proposal": 7, "closing": 30}, lead_sla_hours=24)
    by_id = {r.opportunity_id or r.lead_id: r for r in made}
    assert sorted(by_id) == ["l1", "o1"]
    assert by_id["o1"].timezone == "America/Sao_Paulo"
    assert by_id["o1"].owner_id == "ana"
    assert by_id["o1"].due_at == now
    again = stale_work(
        store, now + timedelta(hours=1), stage_days={"proposal": 7}, lead_sla_hours=24
    )
    assert again == []
    later = stale_work(store, T0 + timedelta(days=13), stage_days={"proposal": 7})
    assert [r.opportunity_id for r in later] == ["o2"]  # 8 days since its stage change
    assert len(store.reminders) == 3
