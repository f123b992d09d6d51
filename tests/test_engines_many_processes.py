"""Campaign, partner, ownership and lifecycle engines with several OS processes on one store.

Each test releases real processes at once (``run_processes``) on one SQLite file, then on
one PostgreSQL schema (``store_factory``), and checks what a single process would have
left: nothing lost, nothing done twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from crmkit import campaigns, lifecycle, ownership, partners
from crmkit.criteria import F
from crmkit.errors import ConflictError, ValidationError
from crmkit.records import (
    Account,
    Campaign,
    Contact,
    DealRegistration,
    Lead,
    Opportunity,
    Partner,
    Rep,
)
from crmkit.store import MemoryStore

from ._processes import run_processes
from ._stores import StoreFactory

WORKERS = 4
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


# -- deal registration --------------------------------------------------------------------


def _deal_store(factory: StoreFactory) -> None:
    store = factory()
    store.accounts.add_many([Account(id="pa", name="Partners"), Account(id="acme", name="Acme")])
    store.partners.add_many([Partner(id=f"p{i}", account_id="pa") for i in range(WORKERS)])
    store.opportunities.add(Opportunity(id="deal", name="Platform", account_id="acme"))
    store.close()


def _register(index: int, factory: StoreFactory, by: str) -> tuple[str, list[str]]:
    store = factory()
    try:
        deal = {"opportunity_id": "deal"} if by == "opportunity" else {"account_id": "acme"}
        result = partners.register(store, f"p{index}", at=T0, **deal)
        return result.registration.id, [c.kind for c in result.conflicts]
    finally:
        store.close()


def _approve(index: int, factory: StoreFactory, reg_id: str) -> str:
    store = factory()
    try:
        partners.approve(store, reg_id, by=f"mgr{index}", at=T0 + timedelta(hours=1))
        return "approved"
    except ValidationError:
        return "refused"
    finally:
        store.close()


def _approve_own(index: int, factory: StoreFactory) -> str:
    return _approve(index, factory, f"reg-p{index}-acme-20260302")


@pytest.mark.parametrize("by", ["opportunity", "account"])
def test_registering_one_deal_at_once_accepts_exactly_one(
    store_factory: StoreFactory, by: str
) -> None:
    _deal_store(store_factory)
    results = run_processes(_register, WORKERS, store_factory, by)
    clean = [reg_id for reg_id, kinds in results if "other_partner" not in kinds]
    assert len(clean) == 1
    [first] = clean
    for reg_id, kinds in results:
        if reg_id != first:
            assert kinds.count("other_partner") >= 1
    store = store_factory()
    stored = {r.id: r for r in store.deal_registrations}
    assert len(stored) == WORKERS
    assert "queued_behind" not in stored[first].custom
    for reg_id, registration in stored.items():
        if reg_id != first:
            assert first in registration.custom["queued_behind"]
    store.close()
    if by == "account":
        return  # the open opportunity at acme blocks every account-level approval
    # the managers approve every registration at once: only the first one passes
    outcomes = run_processes(_approve_own, WORKERS, store_factory)
    assert outcomes.count("approved") == 1
    store = store_factory()
    approved = [r.id for r in store.deal_registrations if r.status.value == "approved"]
    assert approved == [first]
    store.close()


DEALS = 10


def _approve_rivals(index: int, factory: StoreFactory) -> int:
    store = factory()
    try:
        approved = 0
        for deal in range(DEALS):
            try:
                reg_id = f"reg-p{index}-deal{deal}"
                partners.approve(store, reg_id, by=f"mgr{index}", at=T0 + timedelta(hours=1))
                approved += 1
            except ValidationError:
                pass
        return approved
    finally:
        store.close()


def test_approving_rival_registrations_at_once_approves_one_per_deal(
    store_factory: StoreFactory,
) -> None:
    _deal_store(store_factory)
    store = store_factory()
    store.accounts.add_many([Account(id=f"acct{d}", name=f"Acct {d}") for d in range(DEALS)])
    # rival claims written straight to the store (no queue order recorded): every one of
    # them may be approved until another one is
    store.deal_registrations.add_many(
        [
            DealRegistration(
                id=f"reg-p{i}-deal{d}",
                partner_id=f"p{i}",
                account_id=f"acct{d}",
                submitted_at=T0,
            )
            for i in range(WORKERS)
            for d in range(DEALS)
        ]
    )
    store.close()
    approved = run_processes(_approve_rivals, WORKERS, store_factory)
    assert sum(approved) == DEALS
    store = store_factory()
    per_deal = {}
    for registration in store.deal_registrations:
        if registration.status.value == "approved":
            per_deal[registration.account_id] = per_deal.get(registration.account_id, 0) + 1
    assert per_deal == {f"acct{d}": 1 for d in range(DEALS)}
    store.close()


# -- lead routing to partners ---------------------------------------------------------------

LEADS_EACH = 6


def _partner_routing_store(store) -> None:
    store.accounts.add(Account(id="pa", name="Partners"))
    store.partners.add_many(
        [
            Partner(id="gold", account_id="pa", grade=3.0),
            Partner(id="silver", account_id="pa", grade=1.0),
            Partner(id="gone", account_id="pa", active=False),
        ]
    )
    store.leads.add_many(
        [Lead(id=f"w{w}-l{i}") for w in range(WORKERS) for i in range(LEADS_EACH)]
    )


def _route_mine(index: int, factory: StoreFactory) -> list[str | None]:
    store = factory()
    try:
        mine = [store.leads.get(f"w{index}-l{i}") for i in range(LEADS_EACH)]
        return [d.owner_id for d in partners.route_leads(store, mine, at=T0)]
    finally:
        store.close()


def test_routing_leads_to_partners_at_once_keeps_the_rotation(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    _partner_routing_store(store)
    store.close()
    owners = [o for got in run_processes(_route_mine, WORKERS, store_factory) for o in got]
    # one process routing every lead in one call is the reference: 3 to gold per 1 to silver
    reference = MemoryStore()
    _partner_routing_store(reference)
    alone = [d.owner_id for d in partners.route_leads(reference, list(reference.leads), at=T0)]
    assert sorted(owners, key=str) == sorted(alone, key=str)
    store = store_factory()
    held = [lead.custom.get("partner_id") for lead in store.leads]
    assert sorted(held, key=str) == sorted(alone, key=str)
    store.close()


# -- ABM target lists ---------------------------------------------------------------------

ACCOUNTS = 12


def _sync(index: int, factory: StoreFactory, day: int) -> tuple[list[str], list[str], list[str]]:
    store = factory()
    try:
        result = campaigns.sync_targets(
            store, "abm", criteria=F.employees >= 500, at=T0 + timedelta(days=day)
        )
        return list(result.entered), list(result.left), list(result.kept)
    finally:
        store.close()


def test_sync_targets_at_once_adds_and_removes_each_account_once(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    store.campaigns.add(Campaign(id="abm", name="ABM"))
    store.accounts.add_many(
        [Account(id=f"a{i:02d}", name=f"A{i}", employees=1000) for i in range(ACCOUNTS)]
    )
    store.close()
    first = run_processes(_sync, WORKERS, store_factory, 0)
    entered = sorted(a for got in first for a in got[0])
    assert entered == [f"a{i:02d}" for i in range(ACCOUNTS)]  # each once, across workers
    store = store_factory()
    assert store.campaign_members.count() == ACCOUNTS
    # half the accounts shrink out of the list; two of them have history
    for i in range(ACCOUNTS // 2):
        account = store.accounts.get(f"a{i:02d}")
        store.accounts.update(attrs.evolve(account, employees=10))
    for i in (0, 1):
        campaigns.set_status(store, f"abm:account:a{i:02d}", "sent", at=T0 + timedelta(days=1))
    store.close()
    second = run_processes(_sync, WORKERS, store_factory, 2)
    left = sorted(a for got in second for a in got[1])
    kept = sorted(a for got in second for a in got[2])
    assert left == [f"a{i:02d}" for i in range(2, ACCOUNTS // 2)]
    assert kept == ["a00", "a01"]  # reported once, by one worker
    assert all(got[0] == [] for got in second)
    store = store_factory()
    members = sorted(m.account_id for m in store.campaign_members)
    assert members == ["a00", "a01"] + [f"a{i:02d}" for i in range(ACCOUNTS // 2, ACCOUNTS)]
    store.close()


def _add(index: int, factory: StoreFactory) -> int:
    store = factory()
    try:
        ids = [f"k{i}" for i in range(10)]
        return len(campaigns.add_members(store, "web", ids=ids, at=T0).added)
    finally:
        store.close()


def test_add_members_at_once_adds_each_contact_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.campaigns.add(Campaign(id="web", name="Webinar"))
    store.contacts.add_many([Contact(id=f"k{i}") for i in range(10)])
    store.close()
    added = run_processes(_add, WORKERS, store_factory)
    assert sum(added) == 10
    store = store_factory()
    assert sorted(m.contact_id for m in store.campaign_members) == sorted(
        f"k{i}" for i in range(10)
    )
    store.close()


# -- ownership ----------------------------------------------------------------------------

OWNED = 8


def _owner_store(factory: StoreFactory) -> None:
    store = factory()
    store.reps.add_many([Rep(id=f"r{i}", name=f"R{i}") for i in range(WORKERS)])
    store.reps.add(Rep(id="gone", name="Gone"))
    store.accounts.add_many(
        [Account(id=f"a{i}", name=f"A{i}", owner_id="gone") for i in range(OWNED)]
    )
    store.close()


def _reassign_all(index: int, factory: StoreFactory, target: str | None) -> int:
    store = factory()
    try:
        rep = target or f"r{index}"
        changes = 0
        for i in range(OWNED):
            change = ownership.reassign(
                store, "Account", f"a{i}", rep, reason="rebalance", at=T0 + timedelta(minutes=i)
            )
            changes += change is not None
        return changes
    finally:
        store.close()


def _history_is_a_chain(store) -> int:
    """Check each account's changes follow one another and end at its owner."""
    total = 0
    for account in store.accounts:
        history = sorted(
            ownership.ownership_history(store, "Account", account.id), key=lambda c: c.id
        )
        owner = "gone"
        for change in history:
            assert change.from_owner_id == owner, (account.id, change)
            owner = change.to_owner_id
        assert owner == account.owner_id
        assert len(history) == account.version - 1
        total += len(history)
    return total


def test_reassigning_the_same_accounts_at_once_loses_no_change(
    store_factory: StoreFactory,
) -> None:
    _owner_store(store_factory)
    written = run_processes(_reassign_all, WORKERS, store_factory, None)
    store = store_factory()
    assert _history_is_a_chain(store) == sum(written)
    assert {a.owner_id for a in store.accounts} <= {f"r{i}" for i in range(WORKERS)}
    store.close()


def test_giving_the_same_accounts_to_one_rep_at_once_writes_one_change_each(
    store_factory: StoreFactory,
) -> None:
    _owner_store(store_factory)
    written = run_processes(_reassign_all, WORKERS, store_factory, "r0")
    assert sum(written) == OWNED
    store = store_factory()
    assert _history_is_a_chain(store) == OWNED
    assert store.ownership_changes.count() == OWNED
    store.close()


def _depart(index: int, factory: StoreFactory) -> str:
    store = factory()
    try:
        plan = ownership.plan_departure(store, "gone", ["r0", "r1"], at=T0)
        try:
            changes = plan.apply(store, changed_by=f"worker{index}")
        except ConflictError:
            return "conflict"
        return "applied" if changes else "nothing to move"
    finally:
        store.close()


def test_a_departure_applied_by_several_processes_is_applied_once(
    store_factory: StoreFactory,
) -> None:
    _owner_store(store_factory)
    outcomes = run_processes(_depart, WORKERS, store_factory)
    assert outcomes.count("applied") == 1
    assert set(outcomes) <= {"applied", "conflict", "nothing to move"}
    store = store_factory()
    assert store.ownership_changes.count() == OWNED
    assert sorted(a.owner_id for a in store.accounts) == ["r0"] * 4 + ["r1"] * 4
    assert _history_is_a_chain(store) == OWNED
    store.close()


# -- lifecycle ----------------------------------------------------------------------------


def _onboard(index: int, factory: StoreFactory) -> str:
    store = factory()
    try:
        lifecycle.move(store, "acme", "onboarding", at=T0, reason=f"worker{index}")
        return "moved"
    except ValidationError:
        return "refused"
    finally:
        store.close()


def test_a_lifecycle_move_made_at_once_is_made_once(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.accounts.add(Account(id="acme", name="Acme"))
    store.close()
    outcomes = run_processes(_onboard, WORKERS, store_factory)
    assert outcomes.count("moved") == 1
    store = store_factory()
    assert store.lifecycle_changes.count() == 1
    assert store.accounts.get("acme").lifecycle_stage == "onboarding"
    store.close()
