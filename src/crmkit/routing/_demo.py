"""The routing section of ``python -m crmkit demo``: route new leads, then territories.

>>> import io
>>> from datetime import datetime, timezone
>>> from crmkit import Account, Lead, MemoryStore, Rep, Territory, TerritoryModel
>>> store = MemoryStore()
>>> _ = store.reps.add_many([Rep(id=f"r{i}", name=f"R{i}", country="US", team_ids=["na"])
...                          for i in range(3)])
>>> _ = store.leads.add_many([Lead(id=f"l{i}", country="US",
...     created_at=datetime(2026, 1, 5, 14, tzinfo=timezone.utc)) for i in range(7)])
>>> _ = store.territory_models.add(TerritoryModel(id="m", name="M", state="active"))
>>> _ = store.territories.add(Territory(id="t-us", name="US", model_id="m",
...                                     criteria={"field": "country", "op": "==", "value": "US"}))
>>> _ = store.accounts.add(Account(id="a", name="A", country="US"))
>>> out = io.StringIO()
>>> section(store, out)
>>> print(out.getvalue())
== Lead routing ==
routed 7 new lead(s) at 2026-01-05 14:00 UTC: 7 assigned, 0 queued
  r0  3
  r1  2
  r2  2
three decisions, explained:
Lead l0: assigned to r0 (rule 'na countries' matched; team na, load_balanced)
...
== Territories (M) ==
1 of 1 account(s) have a primary territory (100.0%), 0 tie(s), 0 unmatched
busiest: US 1
emptiest: US 1
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import numpy as np

from crmkit.clock import FixedClock
from crmkit.records import (
    Account,
    Lead,
    LeadStatus,
    OwnershipChange,
    Rep,
    RoutingRule,
    TargetKind,
    Team,
    Territory,
    TerritoryModel,
)
from crmkit.routing._router import Router
from crmkit.routing._territories import active_model, assign_territories
from crmkit.routing._types import RoutingStatus
from crmkit.store.memory import MemoryStore

__all__ = ["section"]


def _now(store: Any) -> datetime:
    """The demo's "now": the dataset's as-of time, else the newest lead's creation time."""
    if store.load_state("crmkit.demo") is not None:
        from crmkit.datasets import AS_OF

        return AS_OF
    moments = store.leads.columns(["created_at"])["created_at"]
    moments = moments[~np.isnat(moments)]
    if moments.size == 0:
        return datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    return datetime.fromisoformat(str(moments.max().astype("M8[us]"))).replace(tzinfo=UTC)


def _demo_rules(store: Any) -> list[RoutingRule]:
    """One rule per team: leads from its reps' countries, load balanced."""
    countries: dict[str, set[str]] = {}
    for rep in store.reps:
        for team in rep.team_ids:
            if rep.country:
                countries.setdefault(team, set()).add(rep.country)
    return [
        RoutingRule(
            id=f"demo-{team}",
            name=f"{team} countries",
            position=k,
            criteria={"field": "country", "op": "in", "value": sorted(found)},
            target_kind=TargetKind.TEAM,
            target_id=team,
            strategy="load_balanced",
        )
        for k, (team, found) in enumerate(sorted(countries.items()))
    ]


def section(store: Any, out: TextIO) -> None:
    """Route the store's new, unowned leads and summarise territories.

    Routing writes owners and history, so it runs on a scratch copy in memory: the demo
    database is left as it was, and running the demo again prints the same decisions.
    """
    store = _scratch_copy(store)
    now = _now(store)
    stored = store.routing_rules.query({"field": "applies_to", "op": "==", "value": "Lead"})
    rules = None if stored else _demo_rules(store)
    router = Router(store, rules=rules, clock=FixedClock(now))
    waiting = store.leads.query(
        {
            "all": [
                {"field": "owner_id", "op": "is null"},
                {"field": "status", "op": "==", "value": LeadStatus.NEW.value},
            ]
        }
    )
    decisions = router.route_many(waiting)
    assigned = [d for d in decisions if d.status == RoutingStatus.ASSIGNED]
    out.write("== Lead routing ==\n")
    out.write(
        f"routed {len(decisions)} new lead(s) at {now:%Y-%m-%d %H:%M} UTC: "
        f"{len(assigned)} assigned, {len(decisions) - len(assigned)} queued\n"
    )
    counts: dict[str, int] = {}
    for d in decisions:
        key = d.owner_id if d.owner_id else f"queue:{d.queue}"
        counts[key] = counts.get(key, 0) + 1
    for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
        out.write(f"  {key:<{_width(counts)}}  {count}\n")
    shown = _examples(decisions)
    if shown:
        out.write("three decisions, explained:\n")
        for d in shown:
            out.write(d.explain() + "\n")
    queued = len(decisions) - len(assigned)
    if queued:
        later = now + timedelta(hours=8)
        swept = router.sweep(later)
        done = sum(1 for d in swept if d.status == RoutingStatus.ASSIGNED)
        out.write(f"sweep at {later:%H:%M} UTC retried the queue: {done} more assigned\n")
    model = active_model(store)
    if model is None:
        return
    result = assign_territories(store, model.id)
    names = {
        t.id: t.name
        for t in store.territories.query({"field": "model_id", "op": "==", "value": model.id})
    }
    per = result.counts()
    out.write(f"\n== Territories ({model.name}) ==\n")
    placed = int((result.reason == "primary").sum() + (result.reason == "locked").sum())
    ties = int((result.reason == "tie").sum())
    out.write(
        f"{placed} of {result.account_ids.size} account(s) have a primary territory "
        f"({100 * result.coverage:.1f}%), {ties} tie(s), "
        f"{int((result.reason == 'no_match').sum())} unmatched\n"
    )
    ranked = sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))
    out.write("busiest: " + ", ".join(f"{names.get(t, t)} {n}" for t, n in ranked[:3]) + "\n")
    out.write(
        "emptiest: " + ", ".join(f"{names.get(t, t)} {n}" for t, n in ranked[::-1][:3]) + "\n"
    )


_ROUTED_TYPES = (
    Account,
    Lead,
    OwnershipChange,
    Rep,
    RoutingRule,
    Team,
    Territory,
    TerritoryModel,
)


def _scratch_copy(store: Any) -> MemoryStore:
    scratch = MemoryStore()
    with scratch.transaction():
        for record_type in _ROUTED_TYPES:
            scratch.repository(record_type).put_many(list(store.repository(record_type)))
        demo = store.load_state("crmkit.demo")
        if demo is not None:
            scratch.save_state("crmkit.demo", demo)
    return scratch


def _width(counts: dict[str, int]) -> int:
    return max((len(k) for k in counts), default=1)


def _examples(decisions: list[Any]) -> list[Any]:
    """An assignment with skipped reps, a plain assignment, and a queued lead if any."""
    picked: list[Any] = []
    tests: tuple[Callable[[Any], bool], ...] = (
        lambda d: d.status == RoutingStatus.ASSIGNED and bool(d.dropped),
        lambda d: d.status == RoutingStatus.ASSIGNED,
        lambda d: d.status != RoutingStatus.ASSIGNED,
    )
    for test in tests:
        found = next((d for d in decisions if test(d) and d not in picked), None)
        if found is not None:
            picked.append(found)
    for d in decisions:
        if len(picked) >= 3:
            break
        if d not in picked:
            picked.append(d)
    return picked[:3]
