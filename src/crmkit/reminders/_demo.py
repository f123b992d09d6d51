"""Demo section: today's agenda for two reps in different time zones, and one cadence.

Everything runs on a scratch :class:`~crmkit.store.MemoryStore` holding copies of what the
section needs, so the store it is given is never changed and every run prints the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from crmkit.criteria import F
from crmkit.records import Cadence, Contact, Opportunity, Rep
from crmkit.reminders._cadence import cadence_tick, enroll
from crmkit.reminders._calendar import localize
from crmkit.reminders._scheduler import complete, schedule, state_of, tick
from crmkit.reminders._stale import stale_work
from crmkit.store.memory import MemoryStore

__all__ = ["section"]


def _now(store: Any) -> datetime:
    if store.load_state("crmkit.demo") is not None:
        from crmkit.datasets import AS_OF

        return AS_OF
    moments = store.activities.columns(["at"])["at"]
    if len(moments):
        latest = moments.max()
        return datetime.fromisoformat(str(latest)[:26]).replace(tzinfo=UTC)
    return datetime(2026, 1, 5, 9, tzinfo=UTC)


def _two_reps(store: Any) -> list[Rep]:
    """The busiest two deal owners in different zones (by open deals, ties by id)."""
    owners = store.opportunities.columns(["owner_id"], F.status == "open")["owner_id"]
    counts: dict[str, int] = {}
    for owner in owners[owners != ""].tolist():
        counts[owner] = counts.get(owner, 0) + 1
    ranked = [o for o, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    reps = [r for r in (store.reps.find(o) for o in ranked) if r is not None]
    reps += store.reps.query(order_by="id")
    first = reps[0] if reps else Rep(id="rep-ny", name="Nora", timezone="America/New_York")
    other = next((r for r in reps if r.timezone != first.timezone), None)
    if other is None:
        other = Rep(id="rep-sp", name="Sara", timezone="America/Sao_Paulo")
    return [first, other]


def section(store: Any, out: TextIO) -> None:
    """Write the reminders demo to ``out`` without changing ``store``."""
    now = _now(store)
    reps = _two_reps(store)
    scratch = MemoryStore()
    scratch.reps.put_many(reps)
    opps: list[Opportunity] = []
    for rep in reps:
        mine = store.opportunities.query(
            F.owner_id.isin([rep.id]) & (F.status == "open"), order_by="id", limit=3
        )
        opps += mine
    scratch.opportunities.put_many(opps)
    with scratch.transaction():
        for rep in reps:
            zone = ZoneInfo(rep.timezone)
            today = now.astimezone(zone).date()
            mine = [o for o in opps if o.owner_id == rep.id]
            names = [o.name for o in mine] or ["Acme", "Globex"]
            plan = [
                (today - timedelta(days=1), time(15), f"Send proposal to {names[0]}"),
                (today, time(8, 30), f"Call {names[-1]}"),
                (today, time(16), f"Prepare QBR for {names[0]}"),
                (today + timedelta(days=2), time(11), f"Check in with {names[-1]}"),
            ]
            for i, (day, at, title) in enumerate(plan):
                schedule(
                    scratch,
                    id=f"{rep.id}.r{i}",
                    title=title,
                    owner_id=rep.id,
                    due_at=datetime.combine(day, at),
                    remind_before_minutes=15,
                )
            schedule(
                scratch,
                id=f"{rep.id}.weekly",
                title="Weekly pipeline review",
                owner_id=rep.id,
                due_at=datetime.combine(today, time(9)),
                rrule="FREQ=WEEKLY",
            )
    stale_work(scratch, now, default_stage_days=30)
    events = tick(scratch, now, escalate_after_hours=4)

    out.write("== Reminders: today's agenda ==\n")
    out.write(f"now: {now:%Y-%m-%d %H:%M} UTC\n")
    for rep in reps:
        zone = ZoneInfo(rep.timezone)
        local = now.astimezone(zone)
        out.write(f"{rep.name} ({rep.id}, {rep.timezone}, local {local:%a %H:%M}):\n")
        mine = scratch.reminders.query(F.owner_id == rep.id, order_by=["due_at", "id"])
        for r in mine:
            state = state_of(scratch, r, now).value
            if state == "planned":
                continue
            due_local = r.due_at.astimezone(zone)
            out.write(f"  {state:<9}  {due_local:%a %d %b %H:%M}  {r.title}\n")
        planned = sum(state_of(scratch, r, now).value == "planned" for r in mine)
        out.write(f"  ... and {planned} planned later\n")
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    out.write("tick at now: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + "\n")
    _cadence_demo(store, scratch, reps[0], now, out)


def _cadence_demo(store: Any, scratch: MemoryStore, rep: Rep, now: datetime, out: TextIO) -> None:
    contacts = store.contacts.query(F.opted_out == False, order_by="id", limit=3)  # noqa: E712
    if not contacts:
        contacts = [Contact(id=f"demo-contact-{i}", first_name=f"Contact {i}") for i in range(3)]
    scratch.contacts.put_many(contacts)
    cadence = Cadence(
        id="demo-intro",
        name="Intro sequence",
        timezone=rep.timezone,
        owner_id=rep.id,
        steps=(
            {"kind": "email", "title": "Intro email"},
            {"kind": "call", "wait_days": 2, "business_days": True, "title": "First call"},
            {"kind": "task", "wait_days": 1, "title": "Send a case study"},
            {"kind": "email", "wait_days": 3, "title": "Break-up email"},
        ),
    )
    scratch.cadences.put(cadence)
    zone = ZoneInfo(rep.timezone)
    week_ago = now.astimezone(zone).date() - timedelta(days=7)
    start = localize(datetime.combine(week_ago, time(9)), rep.timezone)
    for i, c in enumerate(contacts):
        enroll(scratch, cadence.id, id=f"enr-{i}", contact_id=c.id, now=start)
    from crmkit.activities import log

    log(
        scratch,
        "email_replied",
        start + timedelta(days=1),
        id="demo-reply",
        contact_id=contacts[0].id,
    )
    out.write(f"\n== Cadence {cadence.name!r} ({len(cadence.steps)} steps, {rep.timezone}) ==\n")
    moment = start
    while moment <= now:
        for task in scratch.reminders.query(F.id.startswith("enr-1.") & (F.status == "open")):
            if task.due_at + timedelta(days=1) <= moment:  # the rep does enr-1's task a day late
                complete(scratch, task.id, moment)
        for e in cadence_tick(scratch, moment):
            who = e.contact_id or e.lead_id
            label = e.title or ""
            out.write(f"  {e.at.astimezone(zone):%a %d %b %H:%M}  {who:<12} {e.kind:<9} {label}\n")
        moment += timedelta(hours=6)
    for enrollment in scratch.enrollments.query(order_by="id"):
        due = enrollment.next_due_at
        when = f"next {due.astimezone(zone):%a %d %b %H:%M}" if due else "waiting on its task"
        if enrollment.status.value in ("completed", "exited"):
            when = enrollment.exit_reason or enrollment.status.value
        out.write(
            f"  {enrollment.id}: {enrollment.status.value}, step {enrollment.step_index + 1}, "
            f"{when}\n"
        )
