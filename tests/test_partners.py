"""Deal registration (conflicts, decisions, expiry) and partner performance."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import attrs
import numpy as np
import pytest

from crmkit import partners
from crmkit.errors import NotFound, ValidationError
from crmkit.records import Account, Activity, Lead, Opportunity, Partner, RoutingRule
from crmkit.store import MemoryStore, SQLiteStore

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else SQLiteStore(str(tmp_path / "p.db"))
    s.accounts.add_many(
        [Account(id=i, name=i) for i in ("pa", "pb", "pc", "acme", "globex", "hooli")]
    )
    s.partners.add_many(
        [
            Partner(id="a", account_id="pa", grade=3.0),
            Partner(id="b", account_id="pb", grade=1.0),
            Partner(id="c", account_id="pc", active=False),
        ]
    )
    return s


def test_clean_registration_has_no_conflict_and_can_be_approved(store):
    result = partners.register(store, "a", account_id="acme", amount=5000, at=T0)
    assert result.conflicts == ()
    reg = result.registration
    assert reg.status.value == "submitted"
    assert reg.expires_on == date(2026, 5, 31)
    approved = partners.approve(store, reg.id, by="mgr", at=day(1), reason="ok")
    assert (approved.status.value, approved.decided_by, approved.decided_at) == (
        "approved",
        "mgr",
        day(1),
    )
    assert approved.decision_reason == "ok"


def test_open_opportunity_conflict_is_reported_and_blocks_approval(store):
    store.opportunities.add(Opportunity(id="direct", name="D", account_id="acme"))
    store.opportunities.add(Opportunity(id="old", name="Old", account_id="acme", status="won"))
    result = partners.register(store, "a", account_id="acme", at=T0)
    assert [(c.kind, c.record_id) for c in result.conflicts] == [("open_opportunity", "direct")]
    stored = store.deal_registrations.get(result.registration.id)
    assert "direct" in stored.custom["conflicts"]
    with pytest.raises(ValidationError) as info:
        partners.approve(store, stored.id, by="mgr", at=day(1))
    assert "direct" in str(info.value)
    assert store.deal_registrations.get(stored.id).status.value == "submitted"
    forced = partners.approve(
        store, stored.id, by="vp", at=day(1), reason="joint deal", override=True
    )
    assert forced.status.value == "approved"


def test_registering_the_opportunity_itself_is_not_a_conflict(store):
    store.opportunities.add(Opportunity(id="o", name="O", account_id="acme"))
    result = partners.register(store, "a", account_id="acme", opportunity_id="o", at=T0)
    assert result.conflicts == ()


def test_other_partner_registration_conflict_first_come_first_served(store):
    first = partners.register(store, "a", account_id="globex", at=T0)
    second = partners.register(store, "b", account_id="globex", at=day(1))
    assert [(c.kind, c.record_id) for c in second.conflicts] == [
        ("other_partner", first.registration.id)
    ]
    # the earlier registration is not blocked by the later one
    partners.approve(store, first.registration.id, by="mgr", at=day(2))
    with pytest.raises(ValidationError):
        partners.approve(store, second.registration.id, by="mgr", at=day(2))
    rejected = partners.reject(
        store, second.registration.id, by="mgr", at=day(2), reason="a was first"
    )
    assert (rejected.status.value, rejected.decision_reason) == ("rejected", "a was first")
    with pytest.raises(ValidationError):  # decided already
        partners.approve(store, second.registration.id, by="mgr", at=day(3))
    # the same partner registering again is not a conflict with itself
    assert partners.register(store, "a", account_id="globex", at=day(4)).conflicts == ()


def test_account_is_derived_from_the_opportunity(store):
    store.opportunities.add(Opportunity(id="deal", name="D", account_id="acme"))
    reg = partners.register(store, "a", opportunity_id="deal", at=T0).registration
    assert (reg.account_id, reg.opportunity_id) == ("acme", "deal")
    with pytest.raises(ValidationError) as info:
        partners.register(store, "b", opportunity_id="deal", account_id="globex", at=T0)
    assert "acme" in str(info.value)
    assert info.value.field == "account_id"
    assert store.deal_registrations.count() == 1


def test_two_partners_naming_only_the_opportunity_conflict(store):
    store.opportunities.add(Opportunity(id="deal", name="D", account_id="acme"))
    first = partners.register(store, "a", opportunity_id="deal", at=T0)
    second = partners.register(store, "b", opportunity_id="deal", at=T0)
    assert first.conflicts == ()
    assert [(c.kind, c.record_id) for c in second.conflicts] == [
        ("other_partner", first.registration.id)
    ]
    assert "opportunity 'deal'" in second.conflicts[0].detail
    with pytest.raises(ValidationError):
        partners.approve(store, second.registration.id, by="mgr", at=day(1))
    assert partners.approve(store, first.registration.id, by="mgr", at=day(1)).status == (
        "approved"
    )


def test_an_opportunity_without_account_conflicts_by_opportunity(store):
    store.opportunities.add(Opportunity(id="loose", name="L"))
    first = partners.register(store, "a", opportunity_id="loose", company="Initech", at=T0)
    second = partners.register(store, "b", opportunity_id="loose", at=T0)
    assert first.registration.account_id is None
    assert [c.record_id for c in second.conflicts] == [first.registration.id]


def test_conflict_by_account_with_another_opportunity(store):
    store.opportunities.add_many(
        [
            Opportunity(id="o1", name="1", account_id="globex", status="won"),
            Opportunity(id="o2", name="2", account_id="globex", status="lost"),
        ]
    )
    first = partners.register(store, "a", opportunity_id="o1", at=T0)
    second = partners.register(store, "b", opportunity_id="o2", at=T0)
    assert [(c.kind, c.record_id) for c in second.conflicts] == [
        ("other_partner", first.registration.id)
    ]
    assert "account 'globex'" in second.conflicts[0].detail


def test_default_ids_are_unique_for_two_deals_at_one_account_on_one_day(store):
    one = partners.register(store, "a", account_id="acme", product="x", at=T0)
    two = partners.register(store, "a", account_id="acme", product="y", at=T0 + timedelta(hours=1))
    three = partners.register(store, "a", account_id="acme", product="z", at=T0)
    ids = [r.registration.id for r in (one, two, three)]
    assert ids == ["reg-a-acme-20260302", "reg-a-acme-20260302-2", "reg-a-acme-20260302-3"]
    assert (two.conflicts, three.conflicts) == ((), ())  # one partner, several deals


def test_same_partner_registering_one_opportunity_twice_is_a_duplicate(store):
    store.opportunities.add(Opportunity(id="deal", name="D", account_id="acme"))
    first = partners.register(store, "a", opportunity_id="deal", at=T0)
    again = partners.register(store, "a", opportunity_id="deal", at=day(1))
    assert [(c.kind, c.record_id) for c in again.conflicts] == [
        ("duplicate", first.registration.id)
    ]


def test_queued_registrations_are_approvable_in_the_order_recorded(store):
    regs = [partners.register(store, p, account_id="hooli", at=T0) for p in ("b", "a")]
    third = store.partners.add(Partner(id="d", account_id="pa"))
    late = partners.register(store, third.id, account_id="hooli", at=T0 - timedelta(days=1))
    # recorded last although its `at` is earliest: it queues behind both
    assert [c.record_id for c in late.conflicts] == sorted(r.registration.id for r in regs)
    assert regs[0].conflicts == ()
    first, second = (r.registration.id for r in regs)
    with pytest.raises(ValidationError):
        partners.approve(store, second, by="mgr", at=day(1))
    partners.reject(store, first, by="mgr", at=day(1), reason="lost the customer")
    assert partners.approve(store, second, by="mgr", at=day(1)).status.value == "approved"
    with pytest.raises(ValidationError):  # behind an approved registration
        partners.approve(store, late.registration.id, by="mgr", at=day(1))


def test_rejected_and_expired_registrations_do_not_conflict(store):
    old = partners.register(store, "a", account_id="hooli", at=T0, valid_days=10)
    assert [r.id for r in partners.expire(store, date(2026, 3, 20))] == [old.registration.id]
    assert store.deal_registrations.get(old.registration.id).status.value == "expired"
    assert partners.register(store, "b", account_id="hooli", at=day(30)).conflicts == ()
    assert partners.expire(store, date(2026, 3, 20)) == []  # idempotent


def test_expiry_respects_the_date(store):
    reg = partners.register(store, "a", account_id="acme", at=T0, valid_days=5).registration
    assert partners.expire(store, reg.expires_on) == []
    assert len(partners.expire(store, reg.expires_on + timedelta(days=1))) == 1


@pytest.mark.parametrize(
    ("partner_id", "kwargs", "error"),
    [
        ("ghost", {"account_id": "acme"}, NotFound),
        ("c", {"account_id": "acme"}, ValidationError),
        ("a", {}, ValidationError),
        ("a", {"account_id": "nowhere"}, ValidationError),
        ("a", {"account_id": "acme", "opportunity_id": "nope"}, ValidationError),
    ],
)
def test_register_bad_input_writes_nothing(store, partner_id, kwargs, error):
    with pytest.raises(error):
        partners.register(store, partner_id, at=T0, **kwargs)
    assert store.deal_registrations.count() == 0


def test_naive_time_is_refused(store):
    with pytest.raises(ValidationError):
        partners.register(store, "a", account_id="acme", at=datetime(2026, 1, 1))


def test_performance_by_hand():
    store = MemoryStore()
    store.accounts.add_many([Account(id="pa", name="PA"), Account(id="x", name="X")])
    store.partners.add_many([Partner(id="a", account_id="pa"), Partner(id="b", account_id="pa")])
    leads = [
        Lead(id="l1", status="new", custom={"partner_id": "a"}, assigned_at=T0),
        Lead(id="l2", status="working", custom={"partner_id": "a"}, assigned_at=T0),
        Lead(id="l3", status="converted", custom={"partner_id": "a"}, assigned_at=T0),
        Lead(id="l4", status="qualified", custom={"partner_id": "b"}, assigned_at=T0),
        Lead(id="l5", status="converted"),
    ]
    store.leads.add_many(leads)
    store.activities.add_many(
        [
            Activity(id="t1", kind="call", at=T0 + timedelta(hours=2), lead_id="l1"),
            Activity(id="t2", kind="call", at=T0 + timedelta(hours=8), lead_id="l1"),
            Activity(id="t3", kind="call", at=T0 + timedelta(hours=6), lead_id="l2"),
            Activity(id="t4", kind="call", at=T0 - timedelta(hours=6), lead_id="l4"),
        ]
    )
    store.opportunities.add_many(
        [
            Opportunity(id="o1", name="1", lead_id="l3", amount=7000, status="won"),
            Opportunity(id="o2", name="2", lead_id="l2", amount=3000),
            Opportunity(id="o3", name="3", lead_id="l5", amount=999),
            Opportunity(id="o4", name="4", account_id="x", amount=4000),
        ]
    )
    reg = partners.register(store, "b", account_id="x", opportunity_id="o4", at=T0)
    partners.approve(store, reg.registration.id, by="m", at=T0)
    perf = partners.performance(store)
    a, b = perf.row("a"), perf.row("b")
    assert (a["leads"], a["accepted"], a["converted"]) == (3, 2, 1)
    assert (a["pipeline"], a["won_revenue"]) == (3000, 7000)
    assert a["hours_to_first_touch"] == pytest.approx(4.0)  # median of 2 h and 6 h
    assert (b["leads"], b["accepted"], b["converted"]) == (1, 1, 0)
    assert (b["pipeline"], b["won_revenue"]) == (4000, 0)
    assert np.isnan(b["hours_to_first_touch"])  # the only activity was before assignment
    # closed deals: a won o1 only, b none (o4 is open)
    assert (a["deals_won"], a["deals_lost"], a["win_rate"]) == (1, 0, 1.0)
    assert (b["deals_won"], b["deals_lost"]) == (0, 0)
    assert np.isnan(b["win_rate"])


def test_win_rate_is_won_over_closed():
    store = MemoryStore()
    store.accounts.add(Account(id="pa", name="PA"))
    store.partners.add(Partner(id="a", account_id="pa"))
    store.leads.add_many(
        [Lead(id=f"l{i}", status="converted", custom={"partner_id": "a"}) for i in range(6)]
    )
    # 2 won, 1 lost, 3 open: 2 / (2 + 1); open deals are left out
    statuses = ["won", "won", "lost", "open", "open", "open"]
    store.opportunities.add_many(
        [
            Opportunity(id=f"o{i}", name=str(i), lead_id=f"l{i}", amount=100, status=status)
            for i, status in enumerate(statuses)
        ]
    )
    row = partners.performance(store).row("a")
    assert (row["deals_won"], row["deals_lost"]) == (2, 1)
    assert row["win_rate"] == pytest.approx(2 / 3)


# -- lead routing to partners ------------------------------------------------------------


def _routing_store():
    s = MemoryStore()
    s.accounts.add(Account(id="pa", name="PA"))
    s.partners.add_many(
        [
            Partner(id="gold", account_id="pa", grade=3.0, regions=("emea",)),
            Partner(id="silver", account_id="pa", grade=1.0, regions=("emea", "apac")),
            Partner(id="tiny", account_id="pa", grade=5.0, capacity=1, regions=("amer",)),
            Partner(id="gone", account_id="pa", grade=9.0, regions=("emea",), active=False),
        ]
    )
    return s


def test_routing_by_region_weighted_by_grade():
    s = _routing_store()
    leads = s.leads.add_many([Lead(id=f"e{i}", region="emea") for i in range(8)])
    decisions = partners.route_leads(s, leads, at=T0)
    owners = [d.owner_id for d in decisions]
    # weights 3:1 among the emea partners; the inactive one never gets a lead
    assert owners.count("gold") == 6
    assert owners.count("silver") == 2
    assert all(s.leads.get(f"e{i}").custom["partner_id"] in ("gold", "silver") for i in range(8))
    assert s.leads.get("e0").assigned_at == T0
    apac = s.leads.add(Lead(id="p1", region="apac"))
    assert partners.route_leads(s, [apac], at=T0)[0].owner_id == "silver"


def test_routing_respects_capacity_and_never_drops():
    s = _routing_store()
    s.partners.add(Partner(id="solo", account_id="pa", capacity=1, regions=("latam",)))
    s.partners.update(attrs.evolve(s.partners.get("gold"), active=False))
    s.partners.update(attrs.evolve(s.partners.get("silver"), active=False))
    s.partners.update(attrs.evolve(s.partners.get("tiny"), active=False))
    leads = s.leads.add_many([Lead(id=f"l{i}", region="latam") for i in range(3)])
    decisions = partners.route_leads(s, leads, at=T0)
    assert [d.owner_id for d in decisions] == ["solo", None, None]
    assert [d.status.value for d in decisions[1:]] == ["queued", "queued"]
    assert s.leads.get("l1").queue == "partners-latam"  # the full pool's queue
    assert "partner_id" not in s.leads.get("l1").custom


def test_routing_state_persists_between_calls():
    one, two = _routing_store(), _routing_store()
    leads = [Lead(id=f"e{i}", region="emea") for i in range(8)]
    one.leads.add_many(leads)
    two.leads.add_many(leads)
    together = [d.owner_id for d in partners.route_leads(one, leads, at=T0)]
    split = [d.owner_id for d in partners.route_leads(two, leads[:3], at=T0)]
    split += [d.owner_id for d in partners.route_leads(two, leads[3:], at=T0)]
    assert split == together


def test_inactive_partners_are_skipped_with_a_reason():
    s = _routing_store()
    leads = s.leads.add_many([Lead(id=f"e{i}", region="emea") for i in range(3)])
    for decision in partners.route_leads(s, leads, at=T0):
        assert decision.owner_id in ("gold", "silver")
        skipped = {d.rep_id: (d.code.value, d.text) for d in decision.dropped}
        assert skipped["gone"] == ("inactive", "partner 'gone' is inactive")
        assert "skipped gone: inactive" in decision.explain()


def test_region_with_only_inactive_partners_goes_to_all_and_says_why():
    s = _routing_store()
    for pid in ("gold", "silver"):
        s.partners.update(attrs.evolve(s.partners.get(pid), active=False))
    lead = s.leads.add(Lead(id="e", region="emea"))
    [decision] = partners.route_leads(s, [lead], at=T0, apply=False)
    # no active emea partner: the lead goes to the pool of all partners
    assert (decision.owner_id, decision.rule_id) == ("tiny", "partners-all")
    inactive = {d.rep_id for d in decision.dropped if d.code.value == "inactive"}
    assert inactive == {"gold", "silver", "gone"}
    assert "partner_id" not in s.leads.get("e").custom  # apply=False writes nothing


def test_no_matching_rule_queues_on_the_default():
    s = _routing_store()
    rule = RoutingRule(
        id="r",
        rule_set="partners",
        criteria={"field": "region", "op": "==", "value": "emea"},
        target_kind="team",
        target_id="partners-emea",
        strategy="weighted",
    )
    lead = s.leads.add(Lead(id="x", region="mars"))
    [decision] = partners.route_leads(s, [lead], at=T0, rules=[rule])
    assert decision.status.value == "queued"
    assert decision.owner_id is None
    assert s.leads.get("x").queue == "partner-unrouted"
