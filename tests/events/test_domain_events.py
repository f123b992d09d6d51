"""The engines write domain events in the transactions of their changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crmkit import (
    Account,
    Cadence,
    FixedClock,
    Lead,
    Opportunity,
    Partner,
    Rep,
    RoutingRule,
    acting_as,
)
from crmkit.events import ChangeEvent, DomainEvent, read

AT = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _domain(store: Any, after: int = 0) -> list[tuple[str, str | None]]:
    return [(e.name, e.subject) for e in read(store, after=after) if isinstance(e, DomainEvent)]


def _last(store: Any) -> int:
    events = read(store)
    return events[-1].position if events else 0


def test_routing_a_lead(store: Any) -> None:
    from crmkit.routing import Router

    store.reps.add_many([Rep(id="a", name="A", team_ids=["sales"]), Rep(id="b", name="B")])
    store.routing_rules.add(RoutingRule(id="all", target_kind="team", target_id="sales"))
    router = Router(store, clock=FixedClock(AT))
    with acting_as("intake-api"):
        router.route(Lead(id="l1", email="ada@example.com"))
    events = read(store)
    assert _domain(store) == [("lead.routed", "l1"), ("owner.changed", "l1")]
    routed = next(e for e in events if isinstance(e, DomainEvent) and e.name == "lead.routed")
    assert routed.payload["owner_id"] == "a"
    assert routed.payload["status"] == "assigned"
    assert routed.actor == "intake-api"
    assert ("Lead", "l1", "insert") in [
        (e.record_type, e.record_id, e.operation) for e in events if isinstance(e, ChangeEvent)
    ]


def test_stage_moves_and_wins(store: Any) -> None:
    from crmkit.pipeline import close_lost, close_won, move

    store.opportunities.add_many(
        [Opportunity(id="o1", name="Deal", amount=1000), Opportunity(id="o2", name="Other")]
    )
    mark = _last(store)
    move(store, "o1", "proposal", at=AT)
    close_won(store, "o1", at=AT, amount=1200)
    close_lost(store, "o2", at=AT, reason="price")
    assert _domain(store, mark) == [
        ("opportunity.stage_changed", "o1"),
        ("opportunity.stage_changed", "o1"),
        ("opportunity.won", "o1"),
        ("opportunity.stage_changed", "o2"),
        ("opportunity.lost", "o2"),
    ]
    won = [e for e in read(store, after=mark) if getattr(e, "name", "") == "opportunity.won"]
    assert won[0].payload == {"from_stage": "proposal", "to_stage": "closed_won", "amount": "1200"}


def test_lifecycle_and_reassignment(store: Any) -> None:
    from crmkit.lifecycle import move
    from crmkit.ownership import reassign

    store.reps.add(Rep(id="ana", name="Ana"))
    store.accounts.add(Account(id="acme", name="Acme"))
    mark = _last(store)
    move(store, "acme", "onboarding", at=AT, reason="signed")
    reassign(store, "Account", "acme", "ana", reason="territory", at=AT)
    assert _domain(store, mark) == [
        ("account.lifecycle_changed", "acme"),
        ("owner.changed", "acme"),
    ]


def test_reminders_due_and_escalated(store: Any) -> None:
    from crmkit.reminders import schedule, tick

    schedule(store, id="r1", title="Call Ada", due_at=AT, remind_before_minutes=15)
    mark = _last(store)
    tick(store, AT - timedelta(minutes=15))
    tick(store, AT - timedelta(minutes=15))  # idempotent: nothing new
    tick(store, AT + timedelta(days=3), escalate_after_hours=1)
    assert _domain(store, mark) == [("reminder.due", "r1"), ("reminder.escalated", "r1")]


def test_cadence_steps_due(store: Any) -> None:
    from crmkit.reminders import cadence_tick, enroll

    store.cadences.add(Cadence(id="c", name="Intro", steps=({"kind": "email"},)))
    enroll(store, "c", id="e1", contact_id="ada", now=AT)
    mark = _last(store)
    cadence_tick(store, AT)
    assert _domain(store, mark) == [("cadence.step_due", "e1"), ("cadence.completed", "e1")]


def test_registration_conflicts_and_merges(store: Any) -> None:
    from crmkit import partners
    from crmkit.dedupe import merge

    store.accounts.add_many([Account(id="p", name="Reseller"), Account(id="a", name="A")])
    store.partners.add(Partner(id="p1", account_id="p", grade=2.0))
    store.opportunities.add(Opportunity(id="o1", name="Direct deal", account_id="a"))
    mark = _last(store)
    result = partners.register(store, "p1", account_id="a", amount=5000, at=AT)
    assert _domain(store, mark) == [("registration.conflict", result.registration.id)]
    store.accounts.add_many([Account(id="x1", name="Dup"), Account(id="x2", name="Dup")])
    mark = _last(store)
    with acting_as("dana"):
        done = merge(store, "Account", ["x1", "x2"], survivor="x1")
    assert done.merged_by == "dana"  # the actor fills the history record
    merged = [e for e in read(store, after=mark) if isinstance(e, DomainEvent)]
    assert [(e.name, e.subject, e.payload["merged_ids"]) for e in merged] == [
        ("records.merged", "x1", ["x2"])
    ]


def test_engines_emit_nothing_with_events_off() -> None:
    from crmkit.reminders import schedule, tick
    from crmkit.store import MemoryStore

    store = MemoryStore()
    schedule(store, id="r1", title="Call", due_at=AT)
    assert [e.kind for e in tick(store, AT)] == ["due"]
    assert read(store) == []
