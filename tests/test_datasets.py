"""The synthetic dataset: deterministic, realistic in shape, and referentially whole."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.criteria import bind
from crmkit.datasets import AS_OF, SIZES, STAGES, Dataset, generate, load
from crmkit.errors import BatchError, ValidationError
from crmkit.records import Account, LeadStatus, OpportunityStatus
from crmkit.store.memory import MemoryStore


@pytest.fixture(scope="module")
def small() -> Dataset:
    return generate(seed=0, size="small")


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return generate(seed=3, size="tiny")


def both(request: pytest.FixtureRequest, name: str) -> Dataset:
    data: Dataset = request.getfixturevalue(name)
    return data


DATASETS = pytest.mark.parametrize("name", ["tiny", "small"])


# -- determinism -----------------------------------------------------------------------------


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_same_seed_gives_equal_records(seed: int) -> None:
    first, second = generate(seed, "tiny"), generate(seed, "tiny")
    assert first == second
    assert first.counts() == second.counts()


def test_different_seeds_give_different_records(tiny: Dataset) -> None:
    other = generate(seed=4, size="tiny")
    assert other != tiny
    assert [a.name for a in other.accounts] != [a.name for a in tiny.accounts]
    assert [a.at for a in other.activities] != [a.at for a in tiny.activities]


def test_bad_arguments_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="size"):
        generate(size="enormous")
    with pytest.raises(ValidationError, match="seed"):
        generate(seed=-1, size="tiny")
    with pytest.raises(ValidationError, match="as_of"):
        generate(size="tiny", as_of=datetime(2026, 1, 1))


# -- sizes -----------------------------------------------------------------------------------


@DATASETS
def test_counts_follow_the_size(request: pytest.FixtureRequest, name: str) -> None:
    data = both(request, name)
    spec = SIZES[data.size]
    counts = data.counts()
    assert counts["accounts"] == spec.accounts
    assert counts["leads"] == spec.leads
    assert counts["opportunities"] == spec.opportunities
    assert counts["activities"] == spec.activities
    assert counts["reps"] == spec.reps
    expected_contacts = spec.accounts * spec.contacts_per_account
    assert 0.75 * expected_contacts <= counts["contacts"] <= 1.25 * expected_contacts
    # every opportunity has at least one stage change, at most five
    assert counts["opportunities"] <= counts["stage_changes"] <= 5 * counts["opportunities"]
    assert counts == {name: len(records) for name, records in data.records().items()}


def test_documented_sizes() -> None:
    assert (SIZES["small"].accounts, SIZES["small"].activities) == (200, 10_000)
    assert (SIZES["medium"].accounts, SIZES["medium"].activities) == (5_000, 200_000)
    assert (SIZES["large"].accounts, SIZES["large"].activities) == (50_000, 2_000_000)


# -- referential integrity -------------------------------------------------------------------


@DATASETS
def test_every_reference_resolves(request: pytest.FixtureRequest, name: str) -> None:
    data = both(request, name)
    reps = {r.id for r in data.reps}
    teams = {t.id for t in data.teams}
    accounts = {a.id for a in data.accounts}
    contacts = {c.id for c in data.contacts}
    leads = {lead.id for lead in data.leads}
    opps = {o.id for o in data.opportunities}
    territories = {t.id for t in data.territories}
    models = {m.id for m in data.territory_models}
    for kind in (reps, teams, accounts, contacts, leads, opps, territories):
        assert kind  # nothing is empty

    def ok(value: str | None, pool: set[str]) -> bool:
        return value is None or value in pool

    assert all(ok(t.manager_id, reps) and ok(t.parent_id, teams) for t in data.teams)
    assert all(ok(r.manager_id, reps) for r in data.reps)
    assert all(set(r.team_ids) <= teams and r.team_ids for r in data.reps)
    assert all(
        ok(t.owner_id, reps) and ok(t.parent_id, territories) and t.model_id in models
        for t in data.territories
    )
    assert all(
        ok(a.owner_id, reps) and ok(a.parent_id, accounts) and ok(a.territory_id, territories)
        for a in data.accounts
    )
    assert all(c.account_id in accounts and ok(c.owner_id, reps) for c in data.contacts)
    assert all(
        ok(lead.owner_id, reps)
        and ok(lead.converted_account_id, accounts)
        and ok(lead.converted_contact_id, contacts)
        for lead in data.leads
    )
    assert all(
        ok(o.account_id, accounts) and ok(o.contact_id, contacts) and ok(o.owner_id, reps)
        for o in data.opportunities
    )
    assert all(s.opportunity_id in opps and ok(s.changed_by, reps) for s in data.stage_changes)
    for a in data.activities:
        assert ok(a.account_id, accounts)
        assert ok(a.contact_id, contacts)
        assert ok(a.lead_id, leads)
        assert ok(a.opportunity_id, opps)
        assert ok(a.actor_id, reps)
        assert (a.account_id is None) != (a.lead_id is None)  # about an account or a lead
    # a contact or deal linked from an activity belongs to that activity's account
    contact_account = {c.id: c.account_id for c in data.contacts}
    opp_account = {o.id: o.account_id for o in data.opportunities}
    for a in data.activities:
        if a.contact_id is not None:
            assert contact_account[a.contact_id] == a.account_id
        if a.opportunity_id is not None:
            assert opp_account[a.opportunity_id] == a.account_id
    ids = [r.id for records in data.records().values() for r in records]
    assert len(ids) == len(set(ids))


def _depths(parents: dict[str, str | None]) -> dict[str, int]:
    """Depth of every node; fails on a cycle (a walk longer than the node count)."""
    depths = {}
    for node in parents:
        depth, current = 0, parents[node]
        while current is not None:
            depth += 1
            assert depth <= len(parents), f"cycle through {node}"
            current = parents[current]
        depths[node] = depth
    return depths


def test_account_families_are_acyclic_some_deep_many_standalone(small: Dataset) -> None:
    depths = _depths({a.id: a.parent_id for a in small.accounts})
    assert max(depths.values()) in (2, 3)  # families three or four levels deep
    assert sum(d >= 2 for d in depths.values()) >= 3
    has_children = {a.parent_id for a in small.accounts if a.parent_id}
    standalone = [a for a in small.accounts if a.parent_id is None and a.id not in has_children]
    assert len(standalone) >= 0.5 * len(small.accounts)
    # teams nest three levels: global -> regions -> offices
    assert max(_depths({t.id: t.parent_id for t in small.teams}).values()) == 2
    assert _depths({r.id: r.manager_id for r in small.reps})  # the management chain ends


# -- realistic shape --------------------------------------------------------------------------


def test_reps_and_accounts_look_like_a_crm(small: Dataset) -> None:
    zones = {r.timezone for r in small.reps}
    assert {"America/New_York", "America/Sao_Paulo", "Europe/Paris", "Asia/Tokyo"} <= zones
    assert any(r.capacity for r in small.reps)
    assert all(r.skills for r in small.reps)
    assert any(r.away_from is not None for r in small.reps) or len(small.reps) < 60
    assert len({a.country for a in small.accounts}) >= 8
    assert all(a.region and a.postal_code and a.domain for a in small.accounts)
    assert all(a.annual_revenue is not None and a.annual_revenue > 0 for a in small.accounts)
    tiers = Counter(a.custom["tier"] for a in small.accounts)
    assert set(tiers) == {"gold", "silver", "bronze"}
    assert all(("nps" in a.custom) == (a.lifecycle_stage in ("customer", "churned"))
               for a in small.accounts)  # fmt: skip
    assert len({a.domain for a in small.accounts}) == len(small.accounts)


def test_account_lifecycle_follows_its_deals(small: Dataset) -> None:
    won = {o.account_id for o in small.opportunities if o.status is OpportunityStatus.WON}
    for account in small.accounts:
        assert (account.id in won) == (account.lifecycle_stage in ("customer", "churned"))


def test_territories_match_their_accounts(small: Dataset) -> None:
    by_id = {t.id: t for t in small.territories}
    for account in small.accounts:
        assert account.territory_id is not None
        territory = by_id[account.territory_id]
        assert bind(territory.criteria, Account).matches(account)
        parent = by_id[territory.parent_id] if territory.parent_id else None
        assert parent is None or bind(parent.criteria, Account).matches(account)


def test_contacts_and_leads(small: Dataset) -> None:
    domains = {a.id: a.domain for a in small.accounts}
    assert all(c.email and c.email.endswith("@" + domains[c.account_id]) for c in small.contacts)
    assert 0 < sum(c.opted_out for c in small.contacts) < 0.2 * len(small.contacts)
    statuses = Counter(lead.status for lead in small.leads)
    assert set(statuses) == set(LeadStatus)
    queued = [lead for lead in small.leads if lead.owner_id is None]
    assert queued
    assert all(lead.queue and lead.status is LeadStatus.NEW for lead in queued)
    assert all(lead.assigned_at is not None for lead in small.leads if lead.owner_id)
    account_domains = set(domains.values())
    emails = [lead.email for lead in small.leads if lead.email]
    at_accounts = [e for e in emails if e.split("@")[1] in account_domains]
    assert 0.1 * len(emails) < len(at_accounts) < 0.6 * len(emails)
    assert any(n > 1 for n in Counter(emails).values())  # duplicate leads exist
    converted = [lead for lead in small.leads if lead.status is LeadStatus.CONVERTED]
    assert converted
    assert all(lead.converted_account_id for lead in converted)


def test_opportunities_and_their_stage_history(small: Dataset) -> None:
    assert any(o.account_id is None for o in small.opportunities)
    assert {o.status for o in small.opportunities} == set(OpportunityStatus)
    history: dict[str, list] = {}
    for change in small.stage_changes:
        history.setdefault(change.opportunity_id, []).append(change)
    for opp in small.opportunities:
        changes = sorted(history[opp.id], key=lambda c: (c.at, c.id))
        assert changes[0].from_stage is None
        assert changes[0].to_stage == "prospecting"
        assert changes[0].at == opp.created_at
        for before, after in itertools.pairwise(changes):
            assert after.from_stage == before.to_stage
            assert STAGES.index(after.to_stage) > STAGES.index(before.to_stage)
        assert changes[-1].to_stage == opp.stage
        assert all(c.at < small.as_of for c in changes)
        assert opp.amount is not None
        assert opp.amount > 0
        assert opp.product
        if opp.status is OpportunityStatus.OPEN:
            assert opp.stage in STAGES[:4]
            assert opp.closed_at is None
            assert opp.close_date is not None
            assert opp.close_date > small.as_of.date()
            assert opp.probability is not None
            assert 0 < opp.probability < 1
        else:
            expected = "closed_won" if opp.status is OpportunityStatus.WON else "closed_lost"
            assert opp.stage == expected
            assert opp.closed_at == changes[-1].at
            assert opp.close_date == opp.closed_at.date()
            assert opp.probability == (1.0 if opp.status is OpportunityStatus.WON else 0.0)
            assert (opp.loss_reason is not None) == (opp.status is OpportunityStatus.LOST)


def test_nothing_happens_at_or_after_as_of() -> None:
    as_of = datetime(2024, 6, 30, 18, 0, tzinfo=UTC)
    data = generate(seed=5, size="tiny", as_of=as_of)
    moments = [a.at for a in data.activities]
    moments += [s.at for s in data.stage_changes]
    moments += [
        getattr(r, "created_at", None) for records in data.records().values() for r in records
    ]
    moments += [m.activated_at for m in data.territory_models]
    moments += [o.closed_at for o in data.opportunities]
    assert all(m is None or m < as_of for m in moments)
    assert min(a.at for a in data.activities) >= as_of - timedelta(days=30 * 6 + 3)


def test_activities_are_recent_skewed_and_varied(small: Dataset) -> None:
    assert all(a.at < AS_OF for a in small.activities)
    per_account = Counter(a.account_id for a in small.activities if a.account_id)
    busiest = sum(n for _, n in per_account.most_common(len(small.accounts) // 10))
    assert busiest > 0.3 * sum(per_account.values())  # the top tenth does a third or more
    assert len(per_account) < len(small.accounts)  # some accounts are quiet
    kinds = Counter(a.kind for a in small.activities)
    assert len(kinds) >= 10
    last_quarter = sum(a.at >= AS_OF - timedelta(days=90) for a in small.activities)
    first_quarter = sum(a.at < AS_OF - timedelta(days=270) for a in small.activities)
    assert last_quarter > first_quarter
    by_rep = [a for a in small.activities if a.actor_id is not None]
    calls = [a for a in by_rep if a.kind.value in ("call", "meeting")]
    # reps work on weekdays (a lead that arrived over the last weekend may be the exception)
    assert sum(a.at.weekday() >= 5 for a in calls) <= 0.01 * len(calls)
    hours = Counter(a.at.hour for a in small.activities)
    assert sum(hours[h] for h in range(9, 20)) > 0.6 * len(small.activities)


# -- loading ---------------------------------------------------------------------------------


def test_load_writes_everything_in_order(tiny: Dataset) -> None:
    store = MemoryStore()
    calls: list[tuple[str, int, int]] = []
    load(store, tiny, progress=lambda step, done, total: calls.append((step, done, total)))
    for name, records in tiny.records().items():
        repo = getattr(store, name)
        assert len(repo) == len(records)
        assert repo.get(records[0].id) == attrs.evolve(records[0], version=1)
    steps = list(dict.fromkeys(step for step, _, _ in calls))
    assert steps == list(tiny.counts())
    finals = {step: (done, total) for step, done, total in calls}
    assert all(done == total == tiny.counts()[step] for step, (done, total) in finals.items())


def test_load_is_atomic(tiny: Dataset) -> None:
    store = MemoryStore()
    clash = tiny.activities[-1]
    store.activities.add(clash)
    with pytest.raises(BatchError):
        load(store, tiny)
    assert len(store.accounts) == 0
    assert len(store.activities) == 1
