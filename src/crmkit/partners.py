"""Partner relationship management: deal registration and partner performance.

A :class:`~crmkit.records.Partner` is a partner company (its own
:class:`~crmkit.records.Account`) with a tier, a grade, regions and a capacity. Partners
*register* deals: :func:`register` stores a
:class:`~crmkit.records.DealRegistration` and reports every conflict it finds, an open
opportunity at the same account or another partner's live registration on the same
account (approved, or submitted earlier: first come, first served; not expired). A
registration with conflicts is stored (so the partner's claim is on record) but
:func:`approve` refuses it unless ``override=True``.
Decisions keep their history on the record (``decided_at``, ``decided_by``,
``decision_reason``); :func:`expire` ends registrations past their ``expires_on``.

A lead handed to a partner carries ``custom["partner_id"]``; :func:`performance` counts
those leads, the ones accepted (status working, qualified or converted) and converted,
their pipeline and won revenue, and the median hours from assignment to the first activity.

Examples
--------
>>> from datetime import datetime, timezone
>>> from crmkit import Account, MemoryStore, Opportunity, Partner
>>> from crmkit import partners
>>> store = MemoryStore()
>>> _ = store.accounts.add_many([Account(id="p", name="Reseller"), Account(id="a", name="A")])
>>> _ = store.partners.add(Partner(id="p1", account_id="p", grade=2.0))
>>> _ = store.opportunities.add(Opportunity(id="o1", name="Direct deal", account_id="a"))
>>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
>>> result = partners.register(store, "p1", account_id="a", amount=5000, at=at)
>>> [c.kind for c in result.conflicts]
['open_opportunity']
>>> partners.approve(store, result.registration.id, by="mgr", at=at)
Traceback (most recent call last):
...
crmkit.errors.ValidationError: DealRegistration 'reg-p1-a-...' field 'status' = 'approved': ...
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import numpy as np

from crmkit._time import micros
from crmkit.errors import NotFound, ValidationError
from crmkit.pipeline import Table
from crmkit.records import (
    DealRegistration,
    Lead,
    Partner,
    RegistrationStatus,
    Rep,
    RoutingRule,
    TargetKind,
)
from crmkit.routing import RoutingDecision
from crmkit.store._base import Store

__all__ = [
    "Conflict",
    "Registered",
    "approve",
    "conflicts",
    "expire",
    "performance",
    "register",
    "reject",
    "route_leads",
]

_LIVE = (RegistrationStatus.SUBMITTED.value, RegistrationStatus.APPROVED.value)


@attrs.frozen(kw_only=True)
class Conflict:
    """Why a registration clashes: ``kind`` is ``"open_opportunity"`` or
    ``"other_partner"``, ``record_id`` the opportunity or registration it clashes with."""

    kind: str
    record_id: str
    detail: str


@attrs.frozen(kw_only=True)
class Registered:
    """What :func:`register` stored, and the conflicts it found (empty: none)."""

    registration: DealRegistration
    conflicts: tuple[Conflict, ...]


def _aware(value: Any, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            "DealRegistration", field, value, "must be a timezone-aware datetime"
        )
    return value


def _partner(store: Store, partner_id: str) -> Partner:
    partner = store.partners.find(partner_id)
    if partner is None:
        raise NotFound("Partner", partner_id)
    return partner


def conflicts(store: Store, registration: DealRegistration, today: date) -> tuple[Conflict, ...]:
    """The conflicts of ``registration`` with the store's records as of ``today``.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore, Opportunity, Partner
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="p", name="Reseller"), Account(id="a", name="A")])
    >>> _ = store.partners.add(Partner(id="p1", account_id="p"))
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> reg = register(store, "p1", account_id="a", at=at).registration
    >>> conflicts(store, reg, at.date())
    ()
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="Direct", account_id="a"))
    >>> [(c.kind, c.record_id) for c in conflicts(store, reg, at.date())]
    [('open_opportunity', 'o1')]
    """
    found: list[Conflict] = []
    account_id = registration.account_id
    if account_id is None:
        return ()
    opps = store.opportunities.columns(
        ["id"],
        {
            "all": [
                {"field": "account_id", "op": "==", "value": account_id},
                {"field": "status", "op": "==", "value": "open"},
            ]
        },
    )
    for opp_id in opps["id"].tolist():
        if opp_id != registration.opportunity_id:
            found.append(
                Conflict(
                    kind="open_opportunity",
                    record_id=opp_id,
                    detail=f"open opportunity {opp_id!r} at account {account_id!r}",
                )
            )
    regs = store.deal_registrations.columns(
        ["id", "partner_id", "status", "expires_on", "submitted_at"],
        {
            "all": [
                {"field": "account_id", "op": "==", "value": account_id},
                {"field": "status", "op": "in", "value": list(_LIVE)},
            ]
        },
    )
    live = (regs["partner_id"] != registration.partner_id) & (regs["id"] != registration.id)
    live &= np.isnat(regs["expires_on"]) | (regs["expires_on"] >= np.datetime64(today, "D"))
    # first come, first served: a later submission does not block an earlier one
    mine = np.datetime64(micros(registration.submitted_at), "us")
    earlier = (regs["submitted_at"] < mine) | (
        (regs["submitted_at"] == mine) & (regs["id"] < registration.id)
    )
    live &= earlier | (regs["status"] == RegistrationStatus.APPROVED.value)
    for reg_id, partner_id in zip(
        regs["id"][live].tolist(), regs["partner_id"][live].tolist(), strict=True
    ):
        found.append(
            Conflict(
                kind="other_partner",
                record_id=reg_id,
                detail=f"partner {partner_id!r} registered account {account_id!r} ({reg_id!r})",
            )
        )
    return tuple(found)


def register(
    store: Store,
    partner_id: str,
    *,
    account_id: str | None = None,
    company: str | None = None,
    opportunity_id: str | None = None,
    product: str | None = None,
    amount: Any = None,
    at: datetime,
    valid_days: int = 90,
    registration_id: str | None = None,
) -> Registered:
    """Store a partner's deal registration (status ``submitted``) and report conflicts.

    The registration expires ``valid_days`` after ``at``. Its id defaults to
    ``reg-<partner>-<account or company>-<YYYYMMDD>``. An inactive or unknown partner, or an
    unknown account or opportunity, raises and stores nothing.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore, Partner
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="p", name="Reseller"), Account(id="a", name="A")])
    >>> _ = store.partners.add_many([Partner(id="p1", account_id="p"),
    ...                              Partner(id="p2", account_id="p")])
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> first = register(store, "p1", account_id="a", amount=5000, at=at)
    >>> reg = first.registration
    >>> reg.id, reg.status.value, str(reg.expires_on), first.conflicts  # 90 days later
    ('reg-p1-a-20260105', 'submitted', '2026-04-05', ())
    >>> later = datetime(2026, 1, 6, tzinfo=timezone.utc)
    >>> second = register(store, "p2", account_id="a", at=later)
    >>> [(c.kind, c.record_id) for c in second.conflicts]
    [('other_partner', 'reg-p1-a-20260105')]
    """
    partner = _partner(store, partner_id)
    at = _aware(at, "submitted_at")
    if not partner.active:
        raise ValidationError("DealRegistration", "partner_id", partner_id, "partner is inactive")
    if account_id is None and company is None:
        raise ValidationError("DealRegistration", "account_id", None, "give account_id or company")
    if account_id is not None and store.accounts.find(account_id) is None:
        raise ValidationError("DealRegistration", "account_id", account_id, "no such account")
    if opportunity_id is not None and store.opportunities.find(opportunity_id) is None:
        raise ValidationError(
            "DealRegistration", "opportunity_id", opportunity_id, "no such opportunity"
        )
    rid = registration_id or f"reg-{partner_id}-{account_id or company}-{at:%Y%m%d}"
    registration = DealRegistration(
        id=rid,
        partner_id=partner_id,
        account_id=account_id,
        opportunity_id=opportunity_id,
        company=company,
        product=product,
        amount=amount,
        submitted_at=at,
        expires_on=(at + timedelta(days=valid_days)).date(),
    )
    found = conflicts(store, registration, at.date())
    if found:
        registration = attrs.evolve(
            registration,
            custom={"conflicts": "; ".join(c.detail for c in found)},
        )
    with store.transaction():
        stored = store.deal_registrations.add(registration)
    return Registered(registration=stored, conflicts=found)


def _decide(
    store: Store,
    registration_id: str,
    status: RegistrationStatus,
    by: str,
    at: datetime,
    reason: str | None,
) -> DealRegistration:
    reg = store.deal_registrations.find(registration_id)
    if reg is None:
        raise NotFound("DealRegistration", registration_id)
    at = _aware(at, "decided_at")
    if reg.status != RegistrationStatus.SUBMITTED:
        raise ValidationError(
            "DealRegistration",
            "status",
            status.value,
            f"already {reg.status.value}; only submitted registrations can be decided",
            record_id=registration_id,
        )
    changed = attrs.evolve(
        reg, status=status, decided_at=at, decided_by=by, decision_reason=reason
    )
    return store.deal_registrations.update(changed)


def approve(
    store: Store,
    registration_id: str,
    *,
    by: str,
    at: datetime,
    reason: str | None = None,
    override: bool = False,
) -> DealRegistration:
    """Approve a submitted registration. Conflicts (checked again now) refuse it unless
    ``override=True``, which should come with a ``reason``.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore, Opportunity, Partner
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="p", name="Reseller"), Account(id="a", name="A")])
    >>> _ = store.partners.add(Partner(id="p1", account_id="p"))
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="Renewal", account_id="a"))
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> reg_id = register(store, "p1", account_id="a", at=at).registration.id
    >>> approve(store, reg_id, by="mgr", at=at)
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: DealRegistration 'reg-p1-a-20260105' field 'status' = ...
    >>> reg = approve(store, reg_id, by="mgr", at=at, override=True, reason="o1 is a renewal")
    >>> reg.status.value, reg.decided_by, reg.decision_reason
    ('approved', 'mgr', 'o1 is a renewal')
    """
    reg = store.deal_registrations.find(registration_id)
    if reg is None:
        raise NotFound("DealRegistration", registration_id)
    found = conflicts(store, reg, _aware(at, "decided_at").date())
    if found and not override:
        raise ValidationError(
            "DealRegistration",
            "status",
            "approved",
            "conflicts: "
            + "; ".join(c.detail for c in found)
            + " (reject it, or approve with override=True and a reason)",
            record_id=registration_id,
        )
    return _decide(store, registration_id, RegistrationStatus.APPROVED, by, at, reason)


def reject(
    store: Store, registration_id: str, *, by: str, at: datetime, reason: str
) -> DealRegistration:
    """Reject a submitted registration, with the reason.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore, Partner
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="p", name="Reseller"), Account(id="a", name="A")])
    >>> _ = store.partners.add(Partner(id="p1", account_id="p"))
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> reg_id = register(store, "p1", account_id="a", at=at).registration.id
    >>> reg = reject(store, reg_id, by="mgr", at=at, reason="customer buys direct")
    >>> reg.status.value, reg.decided_by, reg.decision_reason
    ('rejected', 'mgr', 'customer buys direct')
    """
    return _decide(store, registration_id, RegistrationStatus.REJECTED, by, at, reason)


def expire(store: Store, today: date) -> list[DealRegistration]:
    """Mark every submitted or approved registration whose ``expires_on`` is before
    ``today`` as expired (in one transaction); returns them.

    Examples
    --------
    >>> from datetime import date, datetime, timezone
    >>> from crmkit import Account, MemoryStore, Partner
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="p", name="Reseller"), Account(id="a", name="A")])
    >>> _ = store.partners.add(Partner(id="p1", account_id="p"))
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> reg = register(store, "p1", account_id="a", at=at, valid_days=30).registration
    >>> str(reg.expires_on), expire(store, date(2026, 2, 4))  # expires_on is not before today
    ('2026-02-04', [])
    >>> [(r.id, r.status.value, r.decision_reason) for r in expire(store, date(2026, 2, 5))]
    [('reg-p1-a-20260105', 'expired', 'expired 2026-02-05')]
    """
    cols = store.deal_registrations.columns(
        ["id", "expires_on"], {"field": "status", "op": "in", "value": list(_LIVE)}
    )
    due = ~np.isnat(cols["expires_on"]) & (cols["expires_on"] < np.datetime64(today, "D"))
    done = []
    with store.transaction():
        for reg_id in cols["id"][due].tolist():
            reg = store.deal_registrations.get(reg_id)
            done.append(
                store.deal_registrations.update(
                    attrs.evolve(
                        reg,
                        status=RegistrationStatus.EXPIRED,
                        decision_reason=reg.decision_reason or f"expired {today}",
                    )
                )
            )
    return done


_STATE_PREFIX = "crmkit.partners.routing."


def _default_rules(partners: list[Partner]) -> list[RoutingRule]:
    regions = sorted({r for p in partners for r in p.regions})
    rules = [
        RoutingRule(
            id=f"partners-{region}",
            name=f"region {region}",
            rule_set="partners",
            position=i,
            criteria={"field": "region", "op": "==", "value": region},
            target_kind=TargetKind.TEAM,
            target_id=f"partners-{region}",
            strategy="weighted",
        )
        for i, region in enumerate(regions)
    ]
    rules.append(
        RoutingRule(
            id="partners-all",
            name="any partner",
            rule_set="partners",
            position=len(regions),
            target_kind=TargetKind.TEAM,
            target_id="partners",
            strategy="weighted",
        )
    )
    return rules


def route_leads(
    store: Store,
    leads: Iterable[Lead],
    *,
    at: datetime,
    rules: Iterable[RoutingRule] | None = None,
    apply: bool = True,
) -> list[RoutingDecision]:
    """Route leads to partners with the routing engine (:class:`crmkit.routing.Router`).

    Each active partner stands in the engine as a rep whose id is the partner id, whose
    ``weight`` is its grade (1 when missing), whose ``capacity`` is its capacity (the open
    leads it holds count against it) and whose teams are ``partners`` and
    ``partners-<region>`` for each of its regions. The default rules send a lead with a
    ``region`` to the weighted pool of that region's partners, and everything else to the
    weighted pool of all partners; pass ``rules`` (targets ``team:partners...``) for your
    own. A lead no partner can take is queued, never dropped: on the matched pool's queue
    (``partners-<region>``) when every partner there is full or inactive, else on
    ``partner-unrouted``. Applied decisions set ``custom["partner_id"]`` and ``assigned_at`` (or
    ``queue``); rotation state is kept in the store under ``crmkit.partners.routing.*``.

    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, Lead, MemoryStore, Partner
    >>> store = MemoryStore()
    >>> _ = store.accounts.add(Account(id="pa", name="PA"))
    >>> _ = store.partners.add_many([Partner(id="gold", account_id="pa", grade=3.0),
    ...                              Partner(id="silver", account_id="pa", grade=1.0)])
    >>> leads = store.leads.add_many([Lead(id=f"l{i}") for i in range(8)])
    >>> at = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
    >>> [d.owner_id for d in route_leads(store, leads, at=at)].count("gold")
    6
    """
    from crmkit import MemoryStore
    from crmkit.clock import FixedClock
    from crmkit.routing import Router, Target

    at = _aware(at, "assigned_at")
    batch = list(leads)
    active = [p for p in store.partners.query(order_by="id") if p.active]
    rule_list = list(rules) if rules is not None else _default_rules(active)
    scratch = MemoryStore()
    scratch.reps.add_many(
        [
            Rep(
                id=p.id,
                name=p.id,
                weight=1.0 if p.grade is None else p.grade,
                capacity=p.capacity,
                team_ids=("partners", *(f"partners-{r}" for r in p.regions)),
            )
            for p in active
        ]
    )
    held = store.leads.columns(["id", "status", "custom.partner_id"])
    holder = np.asarray(held["custom.partner_id"]).astype(str)
    busy = np.isin(holder, [p.id for p in active]) & ~np.isin(held["id"], [b.id for b in batch])
    scratch.leads.add_many(
        [
            Lead(id=i, status=st, owner_id=h)
            for i, st, h in zip(
                held["id"][busy].tolist(),
                held["status"][busy].tolist(),
                holder[busy].tolist(),
                strict=True,
            )
        ]
    )
    keys = sorted({f"{r.target_kind.value}:{r.target_id}" for r in rule_list})
    for key in keys:
        state = store.load_state(_STATE_PREFIX + key)
        if state is not None:
            scratch.save_state(f"crmkit.routing.Lead.{key}", state)
    router = Router(
        scratch,
        rules=rule_list,
        default=Target("queue", "partner-unrouted"),
        clock=FixedClock(at),
        respect_hours=False,
    )
    decisions = router.route_many([attrs.evolve(lead, owner_id=None) for lead in batch])
    if apply:
        with store.transaction():
            for key in keys:
                state = scratch.load_state(f"crmkit.routing.Lead.{key}")
                if state is not None:
                    store.save_state(_STATE_PREFIX + key, state)
            for lead, decision in zip(batch, decisions, strict=True):
                current = store.leads.get(lead.id)
                custom = dict(current.custom)
                if decision.owner_id is not None:
                    custom["partner_id"] = decision.owner_id
                    changed = attrs.evolve(current, custom=custom, assigned_at=at, queue=None)
                else:
                    changed = attrs.evolve(current, queue=decision.queue)
                store.leads.update(changed)
    return decisions


def _lookup(ids: np.ndarray[Any, Any], keys: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Position of each key in ``ids`` (``-1`` if absent)."""
    order = np.argsort(ids)
    if len(ids) == 0:
        return np.full(len(keys), -1)
    pos = np.minimum(np.searchsorted(ids[order], keys), len(ids) - 1)
    return np.where(ids[order][pos] == keys, order[pos], -1)


def performance(store: Store) -> Table:
    """Per partner: leads received, accepted, converted; pipeline and won revenue of their
    leads' opportunities and of approved registrations; median hours to first touch.

    >>> from crmkit import MemoryStore
    >>> len(performance(MemoryStore()))
    0
    """
    pids = np.sort(store.partners.columns(["id"])["id"])
    leads = store.leads.columns(["id", "custom.partner_id", "status", "assigned_at"])
    owner = np.asarray(leads["custom.partner_id"]).astype(str)
    owner = np.where(owner == "None", "", owner)
    lp = _lookup(pids, owner)
    has = lp >= 0
    n = len(pids)

    def count(mask: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.bincount(lp[has & mask], minlength=n).astype(int)

    accepted = np.isin(leads["status"], ["working", "qualified", "converted"])
    opps = store.opportunities.columns(["id", "lead_id", "amount", "status"])
    regs = store.deal_registrations.columns(["partner_id", "opportunity_id", "status"])
    approved = regs["status"] == "approved"
    # an opportunity belongs to a partner through its lead, else an approved registration
    via_lead = _lookup(leads["id"], opps["lead_id"])
    partner_of = np.where(via_lead >= 0, lp[np.maximum(via_lead, 0)], -1)
    via_reg = _lookup(regs["opportunity_id"][approved], opps["id"])
    reg_partner = _lookup(pids, regs["partner_id"][approved])
    partner_of = np.where(
        (partner_of < 0) & (via_reg >= 0),
        reg_partner[np.maximum(via_reg, 0)] if len(reg_partner) else -1,
        partner_of,
    )
    amount = np.nan_to_num(opps["amount"])
    owned = partner_of >= 0

    def money(mask: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        pick = owned & mask
        return np.bincount(partner_of[pick], weights=amount[pick], minlength=n)

    acts = store.activities.columns(["lead_id", "at"])
    first_touch = np.full(len(leads["id"]), np.nan)
    act_lead = _lookup(leads["id"], acts["lead_id"])
    ok = act_lead >= 0
    if ok.any():
        after = acts["at"][ok] >= leads["assigned_at"][act_lead[ok]]
        rows, when = act_lead[ok][after], acts["at"][ok][after].astype(np.int64)
        earliest = np.full(len(leads["id"]), np.iinfo(np.int64).max)
        np.minimum.at(earliest, rows, when)
        seen = earliest < np.iinfo(np.int64).max
        first_touch[seen] = (earliest[seen] - leads["assigned_at"][seen].astype(np.int64)) / 3.6e9
    median = np.full(n, np.nan)
    touched = has & ~np.isnan(first_touch)
    if touched.any():
        order = np.lexsort((first_touch[touched], lp[touched]))
        grouped, values = lp[touched][order], first_touch[touched][order]
        for p in np.unique(grouped):  # one median per partner, not per lead
            median[p] = float(np.median(values[grouped == p]))
    return Table(
        columns={
            "partner_id": pids,
            "leads": count(np.ones(len(lp), bool)),
            "accepted": count(accepted),
            "converted": count(leads["status"] == "converted"),
            "pipeline": money(opps["status"] == "open"),
            "won_revenue": money(opps["status"] == "won"),
            "hours_to_first_touch": median,
        },
        keys=("partner_id",),
        title="partner performance",
    )


def _demo_lines() -> list[str]:
    """Deal registrations with one conflict, on a scratch store (for the demo)."""
    from datetime import UTC

    from crmkit import Account, MemoryStore, Opportunity

    store = MemoryStore()
    store.accounts.add_many(
        [
            Account(id="north", name="Northwind Resellers"),
            Account(id="south", name="Southern Systems"),
            Account(id="umbrella", name="Umbrella"),
            Account(id="hooli", name="Hooli"),
        ]
    )
    store.partners.add_many(
        [
            Partner(id="northwind", account_id="north", tier="gold", grade=3.0),
            Partner(id="southern", account_id="south", tier="silver", grade=1.5),
        ]
    )
    store.opportunities.add(Opportunity(id="hooli-renewal", name="Renewal", account_id="hooli"))
    at = datetime(2026, 3, 2, tzinfo=UTC)
    lines = []
    first = register(store, "northwind", account_id="umbrella", amount=Decimal(40000), at=at)
    second = register(
        store, "southern", account_id="umbrella", amount=Decimal(35000), at=at + timedelta(days=1)
    )
    third = register(store, "southern", account_id="hooli", amount=Decimal(9000), at=at)
    for result in (first, second, third):
        reg = result.registration
        note = "; ".join(c.detail for c in result.conflicts) or "no conflict"
        lines.append(f"{reg.partner_id:<10} {reg.account_id:<9} {reg.amount:>7,}  {note}")
    approve(store, first.registration.id, by="channel-mgr", at=at + timedelta(days=2))
    reject(
        store,
        second.registration.id,
        by="channel-mgr",
        at=at + timedelta(days=2),
        reason="northwind registered first",
    )
    expired = expire(store, date(2026, 7, 1))
    for reg in store.deal_registrations.query(order_by="id"):
        lines.append(
            f"  {reg.id}: {reg.status.value}"
            + (f" ({reg.decision_reason})" if reg.decision_reason else "")
        )
    lines.append(f"expired by 2026-07-01: {len(expired)}")
    return lines
