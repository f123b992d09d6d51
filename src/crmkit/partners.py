"""Partner relationship management: deal registration and partner performance.

A :class:`~crmkit.records.Partner` is a partner company (its own
:class:`~crmkit.records.Account`) with a tier, a grade, regions and a capacity. Partners
*register* deals: :func:`register` stores a
:class:`~crmkit.records.DealRegistration` and reports every conflict it finds, an open
opportunity at the same account or another partner's live registration of the same
opportunity or at the same account (first come, first served, in the order they are
recorded; not expired). A registration with conflicts is stored (so the partner's claim
is on record, queued behind the earlier ones) but :func:`approve` refuses it unless
``override=True``.
Decisions keep their history on the record (``decided_at``, ``decided_by``,
``decision_reason``); :func:`expire` ends registrations past their ``expires_on``.

A lead handed to a partner carries ``custom["partner_id"]``; :func:`performance` counts
those leads, the ones accepted (status working, qualified or converted) and converted,
their pipeline, won revenue and win rate, and the median hours from assignment to the
first activity.

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

import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import numpy as np

from crmkit.errors import NotFound, ValidationError
from crmkit.events import emit
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
from crmkit.store._base import Store, run_transaction

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
_QUEUED = "queued_behind"


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


def _queued_behind(registration: DealRegistration) -> list[str]:
    """The registrations this one was queued behind when it was recorded."""
    text = registration.custom.get(_QUEUED)
    if not isinstance(text, str):
        return []
    try:
        ids = json.loads(text)
    except ValueError:
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


def conflicts(store: Store, registration: DealRegistration, today: date) -> tuple[Conflict, ...]:
    """The conflicts of ``registration`` with the store's records as of ``today``.

    - ``open_opportunity``: an open opportunity at the registration's account, other than
      the registered one;
    - ``other_partner``: another partner's live registration (submitted or approved, not
      expired) of the same opportunity or at the same account;
    - ``duplicate``: the same partner's live registration of the same opportunity.

    First come, first served, by the order registrations are recorded: for a registration
    not yet stored, every live registration of the deal on record counts; for a stored one,
    the approved ones and those it was queued behind when it was recorded (so the first
    registration of a deal never conflicts with the later ones).

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
    opportunity_id = registration.opportunity_id
    if account_id is not None:
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
            if opp_id != opportunity_id:
                found.append(
                    Conflict(
                        kind="open_opportunity",
                        record_id=opp_id,
                        detail=f"open opportunity {opp_id!r} at account {account_id!r}",
                    )
                )
    same_deal = [
        {"field": field, "op": "==", "value": value}
        for field, value in (("account_id", account_id), ("opportunity_id", opportunity_id))
        if value is not None
    ]
    if not same_deal:
        return tuple(found)
    on_record = registration.version > 0
    ahead = set(_queued_behind(registration))
    for other in store.deal_registrations.query(
        {"all": [{"any": same_deal}, {"field": "status", "op": "in", "value": list(_LIVE)}]},
        order_by=["submitted_at", "id"],
    ):
        if other.id == registration.id:
            continue
        if other.expires_on is not None and other.expires_on < today:
            continue
        same_opportunity = opportunity_id is not None and other.opportunity_id == opportunity_id
        if other.partner_id == registration.partner_id and not same_opportunity:
            continue  # one partner may register several deals at one account
        approved = other.status == RegistrationStatus.APPROVED
        if on_record and not approved and other.id not in ahead:
            continue  # recorded after this one: it queues behind, not the other way
        what = f"opportunity {opportunity_id!r}" if same_opportunity else f"account {account_id!r}"
        kind = "duplicate" if other.partner_id == registration.partner_id else "other_partner"
        found.append(
            Conflict(
                kind=kind,
                record_id=other.id,
                detail=f"partner {other.partner_id!r} registered {what} ({other.id!r}, "
                f"{other.status.value})",
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

    Name the deal by ``opportunity_id`` (its account is taken from the opportunity), by
    ``account_id``, or by ``company`` for a company not yet in the CRM. The registration
    expires ``valid_days`` after ``at``. Its id defaults to
    ``reg-<partner>-<account or company>-<YYYYMMDD>``, with ``-2``, ``-3`` ... appended
    when a partner registers several deals at one account on one day. An inactive or
    unknown partner, an unknown account or opportunity, or an account that is not the
    opportunity's raises and stores nothing.

    Conflicts (see :func:`conflicts`) are read and the registration written in one
    transaction (:func:`crmkit.store.run_transaction`; idempotent, so retried on a
    transaction conflict): when several partners register one deal at once, exactly one
    is recorded first and without an ``other_partner`` conflict; the others queue behind
    it (``custom["queued_behind"]`` lists what they queue behind, ``custom["conflicts"]``
    says why).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore, Opportunity, Partner
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="p", name="Reseller"), Account(id="a", name="A")])
    >>> _ = store.partners.add_many([Partner(id="p1", account_id="p"),
    ...                              Partner(id="p2", account_id="p")])
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> first = register(store, "p1", account_id="a", amount=5000, at=at)
    >>> reg = first.registration
    >>> reg.id, reg.status.value, str(reg.expires_on), first.conflicts  # 90 days later
    ('reg-p1-a-20260105', 'submitted', '2026-04-05', ())
    >>> register(store, "p1", account_id="a", amount=900, at=at).registration.id
    'reg-p1-a-20260105-2'
    >>> _ = store.opportunities.add(Opportunity(id="o9", name="Big", account_id="a"))
    >>> second = register(store, "p2", opportunity_id="o9", at=at)
    >>> second.registration.account_id, [(c.kind, c.record_id) for c in second.conflicts]
    ('a', [('other_partner', 'reg-p1-a-20260105'), ('other_partner', 'reg-p1-a-20260105-2')])
    """
    at = _aware(at, "submitted_at")
    if account_id is None and company is None and opportunity_id is None:
        raise ValidationError(
            "DealRegistration", "account_id", None, "give opportunity_id, account_id or company"
        )

    def write() -> Registered:
        partner = _partner(store, partner_id)
        if not partner.active:
            raise ValidationError(
                "DealRegistration", "partner_id", partner_id, "partner is inactive"
            )
        account = account_id
        if opportunity_id is not None:
            opp = store.opportunities.find(opportunity_id)
            if opp is None:
                raise ValidationError(
                    "DealRegistration", "opportunity_id", opportunity_id, "no such opportunity"
                )
            if account is None:
                account = opp.account_id
            elif opp.account_id is not None and opp.account_id != account:
                raise ValidationError(
                    "DealRegistration",
                    "account_id",
                    account,
                    f"opportunity {opportunity_id!r} is at account {opp.account_id!r}",
                )
        if account is not None and store.accounts.find(account) is None:
            raise ValidationError("DealRegistration", "account_id", account, "no such account")
        rid = registration_id
        if rid is None:
            base = f"reg-{partner_id}-{account or company or opportunity_id}-{at:%Y%m%d}"
            rid, n = base, 1
            while rid in store.deal_registrations:
                n += 1
                rid = f"{base}-{n}"
        registration = DealRegistration(
            id=rid,
            partner_id=partner_id,
            account_id=account,
            opportunity_id=opportunity_id,
            company=company,
            product=product,
            amount=amount,
            submitted_at=at,
            expires_on=(at + timedelta(days=valid_days)).date(),
        )
        found = conflicts(store, registration, at.date())
        if found:
            custom: dict[str, Any] = {"conflicts": "; ".join(c.detail for c in found)}
            ahead = [c.record_id for c in found if c.kind != "open_opportunity"]
            if ahead:
                custom[_QUEUED] = json.dumps(ahead)
            registration = attrs.evolve(registration, custom=custom)
        stored = store.deal_registrations.add(registration)
        if found:
            emit(
                store,
                "registration.conflict",
                subject=stored.id,
                payload={"partner_id": partner_id, "conflicts": [attrs.asdict(c) for c in found]},
            )
        return Registered(registration=stored, conflicts=found)

    return run_transaction(store, write)


def _decide(
    store: Store,
    registration_id: str,
    status: RegistrationStatus,
    by: str,
    at: datetime,
    reason: str | None,
    override: bool = False,
) -> DealRegistration:
    at = _aware(at, "decided_at")

    def write() -> DealRegistration:
        reg = store.deal_registrations.find(registration_id)
        if reg is None:
            raise NotFound("DealRegistration", registration_id)
        if reg.status != RegistrationStatus.SUBMITTED:
            raise ValidationError(
                "DealRegistration",
                "status",
                status.value,
                f"already {reg.status.value}; only submitted registrations can be decided",
                record_id=registration_id,
            )
        if status == RegistrationStatus.APPROVED and not override:
            found = conflicts(store, reg, at.date())
            if found:
                raise ValidationError(
                    "DealRegistration",
                    "status",
                    "approved",
                    "conflicts: "
                    + "; ".join(c.detail for c in found)
                    + " (reject it, or approve with override=True and a reason)",
                    record_id=registration_id,
                )
        changed = attrs.evolve(
            reg, status=status, decided_at=at, decided_by=by, decision_reason=reason
        )
        return store.deal_registrations.update(changed)

    return run_transaction(store, write)


def approve(
    store: Store,
    registration_id: str,
    *,
    by: str,
    at: datetime,
    reason: str | None = None,
    override: bool = False,
) -> DealRegistration:
    """Approve a submitted registration. Conflicts (checked again now, in the same
    transaction as the write, so two approvals of one deal at once cannot both pass)
    refuse it unless ``override=True``, which should come with a ``reason``.

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
    return _decide(
        store, registration_id, RegistrationStatus.APPROVED, by, at, reason, override=override
    )


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
    ``today`` as expired (reads and writes in one transaction, idempotent); returns them.

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

    def write() -> list[DealRegistration]:
        cols = store.deal_registrations.columns(
            ["id", "expires_on"], {"field": "status", "op": "in", "value": list(_LIVE)}
        )
        due = ~np.isnat(cols["expires_on"]) & (cols["expires_on"] < np.datetime64(today, "D"))
        done = []
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

    return run_transaction(store, write)


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

    Each partner stands in the engine as a rep whose id is the partner id, whose
    ``weight`` is its grade (1 when missing), whose ``capacity`` is its capacity (the open
    leads it holds count against it) and whose teams are ``partners`` and
    ``partners-<region>`` for each of its regions. An inactive partner never gets a lead:
    like an inactive rep, it is listed in each decision's ``dropped`` (reason
    ``inactive``, "partner 'x' is inactive"). The default rules send a lead with a
    ``region`` of an active partner to the weighted pool of that region's partners, and
    everything else to the weighted pool of all partners; pass ``rules`` (targets
    ``team:partners...``) for your own. A lead no partner can take is queued, never
    dropped: on the matched pool's queue (``partners-<region>``) when every partner there
    is full or inactive, else on ``partner-unrouted``. Applied decisions set
    ``custom["partner_id"]`` and ``assigned_at`` (or ``queue``); rotation state is kept in
    the store under ``crmkit.partners.routing.*``. With ``apply=True`` the reads (rotation
    state, partners' open leads) and the writes share one transaction
    (:func:`crmkit.store.run_transaction`; idempotent, so retried on a conflict).

    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, Lead, MemoryStore, Partner
    >>> store = MemoryStore()
    >>> _ = store.accounts.add(Account(id="pa", name="PA"))
    >>> _ = store.partners.add_many([Partner(id="gold", account_id="pa", grade=3.0),
    ...                              Partner(id="silver", account_id="pa", grade=1.0),
    ...                              Partner(id="gone", account_id="pa", active=False)])
    >>> leads = store.leads.add_many([Lead(id=f"l{i}") for i in range(8)])
    >>> at = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
    >>> decisions = route_leads(store, leads, at=at)
    >>> [d.owner_id for d in decisions].count("gold")
    6
    >>> [(d.rep_id, d.code.value, d.text) for d in decisions[0].dropped]
    [('gone', 'inactive', "partner 'gone' is inactive")]
    """
    at = _aware(at, "assigned_at")
    batch = list(leads)
    rule_list = None if rules is None else list(rules)
    if not apply:
        return _route(store, batch, at, rule_list, apply=False)
    return run_transaction(store, lambda: _route(store, batch, at, rule_list, apply=True))


def _route(
    store: Store,
    batch: list[Lead],
    at: datetime,
    rules: list[RoutingRule] | None,
    *,
    apply: bool,
) -> list[RoutingDecision]:
    from crmkit import MemoryStore
    from crmkit.clock import FixedClock
    from crmkit.routing import Router, Target

    everyone = store.partners.query(order_by="id")
    active = [p for p in everyone if p.active]
    rule_list = rules if rules is not None else _default_rules(active)
    scratch = MemoryStore()
    scratch.reps.add_many(
        [
            Rep(
                id=p.id,
                name=p.id,
                active=p.active,
                weight=1.0 if p.grade is None else p.grade,
                capacity=p.capacity,
                team_ids=("partners", *(f"partners-{r}" for r in p.regions)),
            )
            for p in everyone
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
    decisions = [
        _as_partners(d)
        for d in router.route_many([attrs.evolve(lead, owner_id=None) for lead in batch])
    ]
    if apply:
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


def _as_partners(decision: RoutingDecision) -> RoutingDecision:
    """The decision with its skipped candidates called partners, not reps."""
    if not decision.dropped:
        return decision
    dropped = tuple(
        attrs.evolve(d, text=d.text.replace(f"rep {d.rep_id!r}", f"partner {d.rep_id!r}", 1))
        for d in decision.dropped
    )
    return attrs.evolve(decision, dropped=dropped)


def _lookup(ids: np.ndarray[Any, Any], keys: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Position of each key in ``ids`` (``-1`` if absent)."""
    order = np.argsort(ids)
    if len(ids) == 0:
        return np.full(len(keys), -1)
    pos = np.minimum(np.searchsorted(ids[order], keys), len(ids) - 1)
    return np.where(ids[order][pos] == keys, order[pos], -1)


def performance(store: Store) -> Table:
    """Per partner: leads received, accepted, converted; pipeline and won revenue of their
    opportunities; deals won and lost and the win rate; median hours to first touch.

    A partner's opportunities are those of the leads routed to it
    (``custom["partner_id"]``), and else those named by its approved registrations.
    ``win_rate`` is ``deals_won / (deals_won + deals_lost)``: won over closed, open deals
    left out; NaN for a partner with no closed deal.

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

    def deals(status: str) -> np.ndarray[Any, Any]:
        pick = owned & (opps["status"] == status)
        return np.bincount(partner_of[pick], minlength=n).astype(int)

    won, lost = deals("won"), deals("lost")
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = np.where(won + lost > 0, won / (won + lost), np.nan)
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
            "deals_won": won,
            "deals_lost": lost,
            "win_rate": win_rate,
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
