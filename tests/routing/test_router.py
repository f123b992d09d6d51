"""Routing: worked examples, eligibility reasons, persistence, bulk == singles, never dropped."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, time, timedelta

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit import (
    Account,
    F,
    FixedClock,
    Inquiry,
    Lead,
    MemoryStore,
    OwnershipChange,
    Rep,
    RoutingRule,
    ValidationError,
)
from crmkit.routing import (
    Escalation,
    Reason,
    Router,
    RoutingStatus,
    RuleSet,
    Target,
    load_rules,
)

MONDAY_10 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def team_store(*reps: Rep, strategy: str = "round_robin", **custom: object) -> MemoryStore:
    store = MemoryStore()
    for rep in reps:
        store.reps.add(rep)
    store.routing_rules.add(
        RoutingRule(id="all", target_kind="team", target_id="t", strategy=strategy, custom=custom)
    )
    return store


def rep(rid: str, **kw: object) -> Rep:
    return Rep(id=rid, name=rid.upper(), team_ids=["t"], **kw)


def leads(n: int, **kw: object) -> list[Lead]:
    return [Lead(id=f"l{i:04}", **kw) for i in range(n)]


def owners(decisions: list) -> list[str | None]:
    return [d.owner_id for d in decisions]


def test_round_robin_cycles_a_b_c_a() -> None:
    store = team_store(rep("a"), rep("b"), rep("c"))
    router = Router(store, clock=FixedClock(MONDAY_10))
    assert owners([router.route(lead) for lead in leads(4)]) == ["a", "b", "c", "a"]


@pytest.mark.parametrize(("n_reps", "expected"), [(3, [10, 10, 10]), (2, [15, 15])])
def test_load_balancing_evens_out(n_reps: int, expected: list[int]) -> None:
    reps = [rep(r, capacity=100) for r in "abc"[:n_reps]]
    store = team_store(*reps, strategy="load_balanced")
    decisions = Router(store, clock=FixedClock(MONDAY_10)).route_many(leads(30))
    counts = Counter(owners(decisions))
    assert sorted(counts.values()) == expected


def test_load_balancing_prefers_most_remaining_capacity() -> None:
    store = team_store(rep("a", capacity=5), rep("b", capacity=3), strategy="load_balanced")
    store.leads.add(Lead(id="old", owner_id="a"))  # a: 4 left, b: 3 left
    decisions = Router(store, clock=FixedClock(MONDAY_10)).route_many(leads(5))
    # by hand: a(4->3), then tie 3/3 -> b waited longer, then a(3->2), b, a
    assert owners(decisions) == ["a", "b", "a", "b", "a"]


def test_weighted_one_to_two_over_six_is_two_and_four() -> None:
    store = team_store(rep("a", weight=1), rep("b", weight=2), strategy="weighted")
    decisions = [Router(store, clock=FixedClock(MONDAY_10)).route(lead) for lead in leads(6)]
    assert Counter(owners(decisions)) == {"a": 2, "b": 4}


def test_ineligible_reps_are_skipped_with_reasons() -> None:
    tokyo = rep("tokyo", timezone="Asia/Tokyo")  # 19:00 in Tokyo on Monday
    away = rep(
        "away", away_from=MONDAY_10 - timedelta(days=1), away_until=MONDAY_10 + timedelta(days=1)
    )
    full = rep("full", capacity=1)
    quota = rep("quota", custom={"quota_per_day": 1})
    store = team_store(rep("gone", active=False), tokyo, away, full, quota, rep("ok"))
    store.leads.add(Lead(id="held", owner_id="full"))
    store.ownership_changes.add(
        OwnershipChange(
            id="c1",
            record_type="Lead",
            record_id="x",
            to_owner_id="quota",
            at=MONDAY_10 - timedelta(hours=2),
        )
    )
    decision = Router(store, clock=FixedClock(MONDAY_10)).route(Lead(id="new"))
    assert decision.owner_id == "ok"
    codes = {d.rep_id: d.code for d in decision.dropped}
    assert codes == {
        "gone": Reason.INACTIVE,
        "tokyo": Reason.OUTSIDE_HOURS,
        "away": Reason.OUT_OF_OFFICE,
        "full": Reason.AT_CAPACITY,
        "quota": Reason.DAILY_QUOTA,
    }
    assert all(d.text for d in decision.dropped)


def test_no_eligible_rep_queues_with_reason() -> None:
    store = team_store(rep("a", active=False), fallback_queue="overflow")
    decision = Router(store, clock=FixedClock(MONDAY_10)).route(Lead(id="x"))
    assert decision.status == RoutingStatus.QUEUED
    assert (decision.queue, decision.reason) == ("overflow", Reason.NO_ELIGIBLE_REP)
    assert store.leads.get("x").queue == "overflow"


def test_apply_writes_owner_and_history() -> None:
    store = team_store(rep("a"))
    Router(store, clock=FixedClock(MONDAY_10)).route(Lead(id="x"))
    lead = store.leads.get("x")
    assert (lead.owner_id, lead.assigned_at) == ("a", MONDAY_10)
    (change,) = list(store.ownership_changes)
    assert (change.record_id, change.from_owner_id, change.to_owner_id) == ("x", None, "a")


def test_preview_writes_nothing_and_apply_commits() -> None:
    store = team_store(rep("a"), rep("b"))
    router = Router(store, clock=FixedClock(MONDAY_10))
    lead = Lead(id="x")
    preview = router.route(lead, apply=False)
    assert len(store.leads) == 0
    assert router.route(Lead(id="y"), apply=False).owner_id == preview.owner_id == "a"
    router.apply(preview, lead)
    assert store.leads.get("x").owner_id == "a"
    assert router.route(Lead(id="y")).owner_id == "b"


def test_restart_keeps_rotation() -> None:
    store = team_store(rep("a"), rep("b"), rep("c"))
    clock = FixedClock(MONDAY_10)
    first = [Router(store, clock=clock).route(lead) for lead in leads(2)]  # new router each time
    again = Router(store, clock=clock).route(Lead(id="z"))
    assert [*owners(first), again.owner_id] == ["a", "b", "c"]


def test_manual_assignments_count_when_asked() -> None:
    store = team_store(rep("a"), rep("b"), rep("c"), count_manual=True)
    clock = FixedClock(MONDAY_10)
    router = Router(store, clock=clock)
    assert router.route(Lead(id="l1")).owner_id == "a"
    store.ownership_changes.add(
        OwnershipChange(
            id="m1",
            record_type="Lead",
            record_id="other",
            to_owner_id="b",
            at=MONDAY_10,
            changed_by="manager",
        )
    )
    # b just got one by hand, so c is next, then a
    assert owners([router.route(Lead(id="l2")), router.route(Lead(id="l3"))]) == ["c", "a"]


def test_rules_first_match_default_window_and_inactive() -> None:
    store = MemoryStore()
    store.reps.add(Rep(id="de", name="DE"))
    store.routing_rules.add_many(
        [
            RoutingRule(
                id="off",
                position=0,
                active=False,
                criteria=(F.country == "DE").to_dict(),
                target_kind="queue",
                target_id="never",
            ),
            RoutingRule(
                id="later",
                position=1,
                starts_at=MONDAY_10 + timedelta(days=1),
                criteria=(F.country == "DE").to_dict(),
                target_kind="queue",
                target_id="future",
            ),
            RoutingRule(
                id="de",
                position=2,
                criteria=(F.country == "DE").to_dict(),
                target_kind="rep",
                target_id="de",
            ),
            RoutingRule(
                id="big",
                position=3,
                criteria=(F.employees >= 1000).to_dict(),
                target_kind="queue",
                target_id="enterprise",
            ),
        ]
    )
    router = Router(store, clock=FixedClock(MONDAY_10))
    de = router.route(Lead(id="1", country="DE", employees=5000))
    assert (de.owner_id, de.rule_id) == ("de", "de")
    big = router.route(Lead(id="2", country="FR", employees=5000))
    assert (big.queue, big.reason) == ("enterprise", Reason.QUEUE_TARGET)
    other = router.route(Lead(id="3", country="FR"))
    assert (other.queue, other.reason) == ("unrouted", Reason.DEFAULT_TARGET)


def test_rules_load_from_toml_and_json(tmp_path) -> None:
    toml = tmp_path / "rules.toml"
    toml.write_text(
        '[[rules]]\nid = "us"\ntarget_kind = "team"\ntarget_id = "na"\n'
        'criteria = {field = "country", op = "==", value = "US"}\n'
        '[[rules]]\nid = "rest"\ntarget_kind = "queue"\ntarget_id = "world"\n'
    )
    rules = load_rules(toml, rule_set="web")
    assert [(r.id, r.position, r.rule_set) for r in rules] == [
        ("us", 0, "web"),
        ("rest", 10, "web"),
    ]
    data = {
        "rules": [
            {"id": "x", "target_id": "q", "criteria": {"field": "nope", "op": "==", "value": 1}}
        ]
    }
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="nope"):
        load_rules(bad)


def test_bad_strategy_is_a_validation_error() -> None:
    store = team_store(rep("a"), strategy="random")
    with pytest.raises(ValidationError, match="strategy"):
        Router(store)


def test_attribute_matching_country_and_languages() -> None:
    store = MemoryStore()
    store.reps.add_many(
        [
            Rep(id="us1", name="U", country="US", team_ids=["t"]),
            Rep(id="de1", name="D", country="DE", team_ids=["t"], languages=["de"]),
            Rep(id="de2", name="E", country="DE", team_ids=["t"]),
        ]
    )
    store.routing_rules.add(
        RoutingRule(
            id="r",
            target_kind="team",
            target_id="t",
            custom={"match": "rep.country == lead.country"},
        )
    )
    router = Router(store, clock=FixedClock(MONDAY_10))
    batch = [
        Lead(id="1", country="DE"),
        Lead(id="2", country="US"),
        Lead(id="3", country="DE"),
        Lead(id="4", country="FR"),
    ]
    decisions = router.route_many(batch)
    assert owners(decisions) == ["de1", "us1", "de2", None]
    assert {d.code for d in decisions[3].dropped} == {Reason.ATTRIBUTE_MISMATCH}


def test_account_prematch_and_duplicates() -> None:
    store = team_store(rep("a"), rep("b"))
    store.reps.add(Rep(id="owner", name="O"))
    store.accounts.add(Account(id="acc", name="Acme, Inc.", domain="acme.com", owner_id="owner"))
    store.leads.add(Lead(id="l0", email="ada@acme.com", owner_id="a"))
    router = Router(store, clock=FixedClock(MONDAY_10), match_accounts=True)
    by_domain = router.route(Lead(id="l1", email="Ada@ACME.com"))
    assert (by_domain.owner_id, by_domain.reason, by_domain.account_id) == (
        "owner",
        Reason.ACCOUNT_MATCH,
        "acc",
    )
    assert by_domain.duplicate_of == "l0"
    by_name = router.route(Lead(id="l2", email="x@gmail.com", company="ACME Incorporated"))
    assert by_name.owner_id == "owner"
    assert router.route(Lead(id="l3", company="Other")).owner_id == "a"


def test_sweep_retries_queued_and_escalates_past_sla() -> None:
    store = team_store(rep("a"))
    store.reps.add(Rep(id="boss", name="Boss"))
    night = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
    clock = FixedClock(night)
    router = Router(store, clock=clock)
    first = router.route(Lead(id="x"))
    assert first.status == RoutingStatus.QUEUED
    assert {d.code for d in first.dropped} == {Reason.OUTSIDE_HOURS}
    done = router.sweep(datetime(2026, 1, 6, 9, 30, tzinfo=UTC))
    assert [(d.record_id, d.owner_id) for d in done] == [("x", "a")]
    # an inactive team: the lead waits; 4 business hours later it escalates to the boss
    store2 = team_store(rep("a", active=False))
    store2.reps.add(Rep(id="boss", name="Boss"))
    router2 = Router(
        store2,
        clock=FixedClock(night),
        escalation=Escalation(after_hours=4, target=Target("rep", "boss")),
    )
    router2.route(Lead(id="y"))
    assert router2.sweep(datetime(2026, 1, 6, 12, 0, tzinfo=UTC)) == []  # 3 business hours
    (esc,) = router2.sweep(datetime(2026, 1, 6, 13, 30, tzinfo=UTC))
    assert (esc.owner_id, esc.reason) == ("boss", Reason.ESCALATED)
    assert store2.leads.get("y").owner_id == "boss"


def test_inquiry_routing_keywords_domain_channel_and_template() -> None:
    store = MemoryStore()
    store.reps.add_many(
        [
            Rep(id="s1", name="S", team_ids=["support"]),
            Rep(id="b1", name="B", team_ids=["billing"]),
        ]
    )
    store.routing_rules.add_many(
        [
            RoutingRule(
                id="refund",
                position=0,
                applies_to="Inquiry",
                rule_set="inbox",
                criteria=(F.subject.contains("refund") | F.body.contains("invoice")).to_dict(),
                target_kind="team",
                target_id="billing",
                template_id="tpl-billing",
            ),
            RoutingRule(
                id="vip",
                position=1,
                applies_to="Inquiry",
                rule_set="inbox",
                criteria=(F.sender_domain == "bigco.com").to_dict(),
                target_kind="rep",
                target_id="s1",
                template_id="tpl-vip",
            ),
            RoutingRule(
                id="chat",
                position=2,
                applies_to="Inquiry",
                rule_set="inbox",
                criteria=(F.channel == "chat").to_dict(),
                target_kind="team",
                target_id="support",
                template_id="tpl-chat",
            ),
        ]
    )
    router = Router(store, "inbox", record_type=Inquiry, clock=FixedClock(MONDAY_10))
    refund = router.route(Inquiry(id="i1", subject="Need a refund", channel="email"))
    assert (refund.team_id, refund.owner_id, refund.template_id) == (
        "billing",
        "b1",
        "tpl-billing",
    )
    vip = router.route(Inquiry(id="i2", sender_domain="bigco.com", channel="chat"))
    assert (vip.owner_id, vip.template_id) == ("s1", "tpl-vip")
    stored = store.inquiries.get("i1")
    assert (stored.owner_id, stored.team_id, stored.template_id) == (
        "b1",
        "billing",
        "tpl-billing",
    )


def test_route_many_rejects_duplicate_ids_and_wrong_types() -> None:
    router = Router(team_store(rep("a")), clock=FixedClock(MONDAY_10))
    with pytest.raises(ValidationError, match="twice"):
        router.route_many([Lead(id="x"), Lead(id="x")])
    with pytest.raises(ValidationError, match="routes Lead"):
        router.route(Account(id="a", name="A"))  # type: ignore[arg-type]


def test_ruleset_index_agrees_with_masks() -> None:
    rules = [
        RoutingRule(
            id=f"r{i}",
            position=i,
            criteria=(F.country == c).to_dict() if i % 3 else (F.employees >= 100 * i).to_dict(),
            target_id="q",
        )
        for i, c in enumerate(["US", "DE", "FR", "US", "GB", "DE", "JP"])
    ]
    rs = RuleSet(rules)
    sample = [
        Lead(id=str(i), country=c, employees=e)
        for i, (c, e) in enumerate(
            [("US", 50), ("DE", 700), ("JP", 0), (None, 400), ("XX", None), ("FR", 10000)]
        )
    ]
    from crmkit._columns import columns_of

    cols = columns_of(Lead, sample, ["country", "employees"])
    by_mask = rs.first_match_columns(cols, MONDAY_10).tolist()
    naive = [next((i for i, r in enumerate(rs.bound) if r.matches(s)), -1) for s in sample]
    assert by_mask == naive == [rs.first_match_index(s, MONDAY_10) for s in sample]


# -- properties ---------------------------------------------------------------------------------

COUNTRIES = ["US", "DE", "FR", None]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Rep], list[RoutingRule], list[Lead], bool]:
    n_reps = draw(st.integers(1, 6))
    reps = []
    for i in range(n_reps):
        reps.append(
            Rep(
                id=f"r{i}",
                name=f"R{i}",
                active=draw(st.booleans()) or i == 0,
                capacity=draw(st.one_of(st.none(), st.integers(0, 6))),
                weight=draw(st.sampled_from([0.0, 1.0, 2.0, 3.0])),
                country=draw(st.sampled_from(COUNTRIES)),
                languages=draw(st.lists(st.sampled_from(["en", "de"]), max_size=2)),
                team_ids=draw(st.lists(st.sampled_from(["t1", "t2"]), max_size=2)),
                work_days=draw(st.sampled_from([(0, 1, 2, 3, 4), (1, 2)])),
                custom={"quota_per_day": draw(st.integers(0, 4))} if draw(st.booleans()) else {},
            )
        )
    rules = []
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["team", "team", "rep", "queue"]))
        target = {
            "team": draw(st.sampled_from(["t1", "t2", "t3"])),
            "rep": f"r{draw(st.integers(0, n_reps))}",
            "queue": "q",
        }[kind]
        criteria = draw(
            st.sampled_from(
                [
                    None,
                    (F.country == "US").to_dict(),
                    (F.employees >= 100).to_dict(),
                    F.country.isin(["DE", "FR"]).to_dict(),
                    (F.source == "web").to_dict(),
                ]
            )
        )
        custom = {}
        match = draw(st.sampled_from([None, "country", "languages = custom.lang"]))
        if match:
            custom["match"] = match
        if draw(st.booleans()):
            custom["count_manual"] = True
        rules.append(
            RoutingRule(
                id=f"rule{i}",
                position=i,
                criteria=criteria,
                target_kind=kind,
                target_id=target,
                strategy=draw(st.sampled_from(["round_robin", "load_balanced", "weighted"])),
                active=draw(st.booleans()) or True,
                custom=custom,
            )
        )
    batch = []
    for i in range(draw(st.integers(0, 25))):
        batch.append(
            Lead(
                id=f"l{i:03}",
                country=draw(st.sampled_from(COUNTRIES)),
                employees=draw(st.one_of(st.none(), st.integers(0, 300))),
                source=draw(st.sampled_from(["web", "event", None])),
                email=draw(st.sampled_from([None, "a@x.com", "b@y.com", f"u{i}@z.com"])),
                owner_id=draw(st.sampled_from([None, None, None, "r0"])),
                status=draw(st.sampled_from(["new", "new", "working", "disqualified"])),
                company=draw(st.sampled_from([None, "Acme Inc.", "Other"])),
                custom={"lang": draw(st.sampled_from(["en", "de"]))},
            )
        )
    with_default = draw(st.booleans())
    return reps, rules, batch, with_default


def world_store(reps: list[Rep], rules: list[RoutingRule]) -> MemoryStore:
    store = MemoryStore()
    store.reps.add_many(reps)
    store.routing_rules.add_many(rules)
    store.leads.add(Lead(id="old", email="a@x.com", owner_id=reps[0].id))
    store.accounts.add(Account(id="acme", name="ACME", domain="x.com", owner_id=reps[-1].id))
    return store


def state_of(store: MemoryStore) -> dict:
    return {k: store.load_state(k) for k in sorted(store._state)}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    worlds(),
    st.sampled_from([MONDAY_10, datetime(2026, 1, 6, 20, 0, tzinfo=UTC)]),
    st.booleans(),
)
def test_route_many_equals_route_one_by_one(world, now, match_accounts) -> None:
    reps, rules, batch, with_default = world
    default = Target("team", "t1") if with_default else Target("queue", "unrouted")
    one, many = world_store(reps, rules), world_store(reps, rules)
    options = {"clock": FixedClock(now), "default": default, "match_accounts": match_accounts}
    single = [Router(one, **options).route(lead) for lead in batch]
    bulk = Router(many, **options).route_many(batch)
    assert bulk == single
    assert state_of(many) == state_of(one)
    assert [attrs.evolve(x, version=0) for x in many.leads] == [
        attrs.evolve(x, version=0) for x in one.leads
    ]
    # and the column path agrees without building records
    fresh = world_store(reps, rules)
    router = Router(fresh, **options)
    if batch:
        from crmkit._columns import columns_of

        result = router.route_columns(columns_of(Lead, batch, router.batch_fields()))
        assert result.decisions() == single


@settings(max_examples=80, deadline=None)
@given(worlds())
def test_never_dropped(world) -> None:
    reps, rules, batch, _ = world
    store = world_store(reps, rules)
    for decision in Router(store, clock=FixedClock(MONDAY_10)).route_many(batch):
        assert decision.status in (RoutingStatus.ASSIGNED, RoutingStatus.QUEUED)
        assert (decision.owner_id is not None) != (decision.queue is not None)
        assert decision.reason in Reason
        if decision.status == RoutingStatus.QUEUED and decision.reason == Reason.NO_ELIGIBLE_REP:
            assert (
                len(decision.dropped)
                == len([r for r in store.reps if decision.team_id in r.team_ids])
                or decision.team_id is None
            )
    for lead in store.leads:
        assert lead.owner_id is not None or lead.queue is not None


def test_schedule_business_hours_respects_weekends() -> None:
    from crmkit.routing import Schedule

    friday_16 = datetime(2026, 1, 9, 16, 0, tzinfo=UTC)
    monday_11 = datetime(2026, 1, 12, 11, 0, tzinfo=UTC)
    assert Schedule().business_hours_between(friday_16, monday_11) == 3.0
    berlin = Schedule(timezone="Europe/Berlin", start=time(8), end=time(12))
    assert berlin.business_hours_between(friday_16, monday_11) == 4.0  # 08:00-12:00 local


# -- load follows the store; defects found as a new user (issue 18) ------------------------


def close(store: MemoryStore, owner: str, how_many: int) -> None:
    held = store.leads.query(F.owner_id == owner, order_by="id", limit=how_many)
    for lead in held:
        store.leads.update(attrs.evolve(lead, status="disqualified"))


@pytest.mark.parametrize("bulk", [False, True])
def test_load_balancing_without_capacity_gives_the_fewest_open_leads(bulk: bool) -> None:
    store = team_store(rep("a"), rep("b"), rep("c"), strategy="load_balanced")
    router = Router(store, clock=FixedClock(MONDAY_10))
    first = router.route_many(leads(30))
    assert Counter(owners(first)) == {"a": 10, "b": 10, "c": 10}
    close(store, "a", 5)  # a holds 5 open leads, b and c 10 each
    batch = [Lead(id=f"n{i}") for i in range(5)]
    nxt = router.route_many(batch) if bulk else [router.route(lead) for lead in batch]
    assert owners(nxt) == ["a"] * 5
    # all at 10 again: ties go to who waited longest (b had lead 29, c lead 30, a lead 35)
    assert owners([router.route(Lead(id=f"m{i}")) for i in range(3)]) == ["b", "c", "a"]


def test_load_balancing_ties_go_to_the_rep_who_waited_longest() -> None:
    store = team_store(rep("a"), rep("b"), rep("c"), strategy="load_balanced")
    store.leads.add(Lead(id="held", owner_id="b"))  # a: 0, b: 1, c: 0 open
    router = Router(store, clock=FixedClock(MONDAY_10))
    # a and c tie at 0 (never assigned: rep id), then c, then all at 1: a waited longest
    assert owners(router.route_many(leads(4))) == ["a", "c", "b", "a"]


def test_live_router_sees_leads_closed_after_it_was_built() -> None:
    store = team_store(rep("a", capacity=2), rep("b", capacity=2))
    router = Router(store, clock=FixedClock(MONDAY_10))
    assert owners([router.route(lead) for lead in leads(4)]) == ["a", "b", "a", "b"]
    assert router.route(Lead(id="full")).reason == Reason.NO_ELIGIBLE_REP
    close(store, "b", 1)
    assert router.route(Lead(id="again")).owner_id == "b"
    assert router.route_many([Lead(id="more")])[0].reason == Reason.NO_ELIGIBLE_REP


def test_two_live_routers_see_each_others_assignments() -> None:
    store = team_store(rep("a", capacity=1), rep("b", capacity=1))
    one = Router(store, clock=FixedClock(MONDAY_10))
    two = Router(store, clock=FixedClock(MONDAY_10))
    assert one.route(Lead(id="x")).owner_id == "a"
    assert two.route(Lead(id="y")).owner_id == "b"  # a is full, and the rotation moved on
    assert two.route(Lead(id="z")).reason == Reason.NO_ELIGIBLE_REP


def test_rule_naming_a_team_that_does_not_exist_has_its_own_reason() -> None:
    store = team_store(rep("a"))
    store.routing_rules.add(
        RoutingRule(
            id="a-typo",  # before the team_store's rule "all" (same position, then id)
            name="Typo",
            criteria=(F.country == "DE").to_dict(),
            target_kind="team",
            target_id="ghost",
        )
    )
    router = Router(store, clock=FixedClock(MONDAY_10))
    for decision in [
        router.route(Lead(id="1", country="DE")),
        router.route_many([Lead(id="2", country="DE")])[0],
    ]:
        assert decision.status == RoutingStatus.QUEUED
        assert (decision.reason, decision.queue, decision.team_id) == (
            Reason.UNKNOWN_TEAM,
            "ghost",
            "ghost",
        )
        assert "team 'ghost' does not exist" in decision.explain()
    # a team known only as a Team record, with nobody in it, says so
    from crmkit import Team

    store.teams.add(Team(id="ghost", name="Ghost"))
    empty = Router(store, clock=FixedClock(MONDAY_10)).route(Lead(id="3", country="DE"))
    assert empty.reason == Reason.NO_ELIGIBLE_REP
    assert "team 'ghost' has no members" in empty.explain()


@pytest.mark.parametrize("bulk", [False, True])
def test_account_owner_who_cannot_take_it_is_listed_once_and_explained(bulk: bool) -> None:
    tokyo = rep("owner", timezone="Asia/Tokyo")  # in team t, 19:00 in Tokyo
    store = team_store(rep("a"), tokyo)
    store.accounts.add(Account(id="acc", name="Acme", domain="acme.com", owner_id="owner"))
    router = Router(store, clock=FixedClock(MONDAY_10), match_accounts=True)
    lead = Lead(id="l1", email="ada@acme.com")
    decision = router.route_many([lead])[0] if bulk else router.route(lead)
    assert decision.owner_id == "a"
    assert [d.rep_id for d in decision.dropped] == ["owner"]
    assert (decision.account_id, decision.account_owner_id) == ("acc", "owner")
    text = decision.explain()
    assert "account acc matched first, but its owner owner could not take it" in text
    assert text.count("skipped owner") == 1


@pytest.mark.parametrize("bulk", [False, True])
def test_leads_that_arrive_with_an_owner_are_stored(bulk: bool) -> None:
    store = team_store(rep("a"), rep("b"))
    router = Router(store, clock=FixedClock(MONDAY_10))
    batch = [Lead(id="o1", owner_id="b"), Lead(id="o2")]
    decisions = router.route_many(batch) if bulk else [router.route(x) for x in batch]
    assert [(d.reason, d.owner_id) for d in decisions] == [
        (Reason.ALREADY_OWNED, "b"),
        (Reason.RULE_MATCHED, "a"),
    ]
    assert store.leads.get("o1").owner_id == "b"
    assert store.leads.get("o1").created_at == MONDAY_10
    assert [c.record_id for c in store.ownership_changes] == ["o2"]  # o1's owner never changed


def test_owned_leads_in_a_batch_count_toward_load_from_their_row_on() -> None:
    store = team_store(rep("a", capacity=1), rep("b", capacity=3), strategy="load_balanced")
    batch = [Lead(id="1"), Lead(id="2", owner_id="b"), Lead(id="3"), Lead(id="4")]
    single_store = team_store(rep("a", capacity=1), rep("b", capacity=3), strategy="load_balanced")
    one = Router(single_store, clock=FixedClock(MONDAY_10))
    single = [one.route(x) for x in batch]
    # b (3 left) takes 1; b's own lead 2 leaves it 1, a has 1 left: tie, a waited longest
    assert owners(single) == ["b", "b", "a", "b"]
    assert Router(store, clock=FixedClock(MONDAY_10)).route_many(batch) == single


def test_inquiries_from_known_contacts_go_to_the_account_owner() -> None:
    from crmkit import Contact

    store = MemoryStore()
    store.reps.add_many([Rep(id="s1", name="S", team_ids=["support"]), Rep(id="am", name="AM")])
    store.accounts.add_many(
        [
            Account(id="acc", name="Acme", owner_id="am"),
            Account(id="big", name="BigCo", domain="bigco.com", owner_id="am"),
        ]
    )
    store.contacts.add(Contact(id="c1", first_name="Ada", email="Ada@Acme.com", account_id="acc"))
    store.routing_rules.add(
        RoutingRule(
            id="all",
            applies_to="Inquiry",
            rule_set="inbox",
            target_kind="team",
            target_id="support",
        )
    )
    router = Router(
        store, "inbox", record_type=Inquiry, clock=FixedClock(MONDAY_10), match_accounts=True
    )
    batch = [
        Inquiry(id="i1", sender_email="ada@acme.com"),
        Inquiry(id="i2", sender_email="bob@bigco.com"),
        Inquiry(id="i3", sender_email="eve@gmail.com"),
    ]
    single = [router.route(x, apply=False) for x in batch]
    assert [(d.owner_id, d.reason, d.account_id) for d in single] == [
        ("am", Reason.ACCOUNT_MATCH, "acc"),
        ("am", Reason.ACCOUNT_MATCH, "big"),
        ("s1", Reason.RULE_MATCHED, None),
    ]
    assert router.route_many(batch) == single
    stored = store.inquiries.get("i1")
    assert (stored.owner_id, stored.account_id, stored.contact_id) == ("am", "acc", "c1")


def test_inquiry_sender_domain_is_derived_from_the_sender_email() -> None:
    assert Inquiry(id="i", sender_email="Bob@BigCo.com").sender_domain == "bigco.com"
    assert (
        Inquiry(id="i", sender_email="bob@x.com", sender_domain="y.com").sender_domain == "y.com"
    )
    assert Inquiry(id="i", sender_email="not an email").sender_domain is None
    store = MemoryStore()
    store.reps.add(Rep(id="s1", name="S"))
    store.routing_rules.add(
        RoutingRule(
            id="vip",
            applies_to="Inquiry",
            criteria=(F.sender_domain == "bigco.com").to_dict(),
            target_kind="rep",
            target_id="s1",
        )
    )
    router = Router(store, record_type=Inquiry, clock=FixedClock(MONDAY_10))
    assert router.route(Inquiry(id="i1", sender_email="bob@bigco.com")).owner_id == "s1"


def test_route_columns_arrays_say_queued_where_the_pool_had_nobody() -> None:
    store = team_store(rep("a", active=False), fallback_queue="overflow")
    store.routing_rules.add(
        RoutingRule(id="a-us", criteria=(F.country == "US").to_dict(), target_id="us")
    )
    router = Router(store, clock=FixedClock(MONDAY_10), default=None)
    from crmkit._columns import columns_of

    batch = [Lead(id="1"), Lead(id="2", country="US"), Lead(id="3", owner_id="a")]
    result = router.route_columns(columns_of(Lead, batch, router.batch_fields()))
    assert result.status.tolist() == ["queued", "queued", "assigned"]
    assert result.queue.tolist() == ["overflow", "us", None]
    assert result.counts() == {"a": 1, "queue:overflow": 1, "queue:us": 1}
    nobody = Router(MemoryStore(), clock=FixedClock(MONDAY_10), default=None)
    empty = nobody.route_columns(columns_of(Lead, [Lead(id="x")], nobody.batch_fields()))
    assert empty.status.tolist() == ["unassigned"]
    assert empty.counts() == {"unassigned": 1}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.sampled_from([None, Target("queue", "unrouted"), Target("team", "t1")]))
def test_route_columns_arrays_agree_with_decisions_row_for_row(world, default) -> None:
    from crmkit._columns import columns_of

    reps, rules, batch, _ = world
    router = Router(world_store(reps, rules), clock=FixedClock(MONDAY_10), default=default)
    result = router.route_columns(columns_of(Lead, batch, router.batch_fields()))
    decisions = result.decisions()
    assert decisions == router.route_many(batch, apply=False)
    assert result.owner.tolist() == [d.owner_id for d in decisions]
    assert result.queue.tolist() == [d.queue for d in decisions]
    assert result.status.tolist() == [str(d.status) for d in decisions]
    labels = Counter(
        d.owner_id or (f"queue:{d.queue}" if d.queue else "unassigned") for d in decisions
    )
    assert result.counts() == dict(labels)


@st.composite
def inquiry_worlds(draw: st.DrawFn) -> list[Inquiry]:
    senders = [None, "ada@acme.com", "ADA@acme.com", "bob@acme.com", "eve@gmail.com", "x@big.io"]
    return [
        Inquiry(
            id=f"i{i:02}",
            sender_email=draw(st.sampled_from(senders)),
            account_id=draw(st.sampled_from([None, None, "acme", "nope"])),
            contact_id=draw(st.sampled_from([None, None, "c1", "c2"])),
            owner_id=draw(st.sampled_from([None, None, None, "s1"])),
            channel=draw(st.sampled_from(["email", "chat"])),
        )
        for i in range(draw(st.integers(0, 12)))
    ]


def inquiry_store() -> MemoryStore:
    from crmkit import Contact

    store = MemoryStore()
    store.reps.add_many(
        [
            Rep(id="s1", name="S1", team_ids=["support"]),
            Rep(id="s2", name="S2", team_ids=["support"], capacity=2),
            Rep(id="am", name="AM", capacity=3),
            Rep(id="off", name="Off", active=False),
        ]
    )
    store.accounts.add_many(
        [
            Account(id="acme", name="Acme", domain="acme.com", owner_id="am"),
            Account(id="big", name="Big", domain="big.io", owner_id="off"),
            Account(id="free", name="Free", domain="gmail.com", owner_id="am"),
        ]
    )
    store.contacts.add_many(
        [
            Contact(id="c1", first_name="Ada", email="ada@acme.com", account_id="acme"),
            Contact(id="c2", first_name="Xi", email="x@big.io", account_id="big"),
        ]
    )
    store.routing_rules.add(
        RoutingRule(
            id="chat",
            applies_to="Inquiry",
            criteria=(F.channel == "chat").to_dict(),
            target_kind="team",
            target_id="support",
            strategy="load_balanced",
        )
    )
    return store


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inquiry_worlds())
def test_inquiry_route_many_equals_route_one_by_one(batch: list[Inquiry]) -> None:
    one, many = inquiry_store(), inquiry_store()
    options = {"record_type": Inquiry, "clock": FixedClock(MONDAY_10), "match_accounts": True}
    single = [Router(one, **options).route(x) for x in batch]
    assert Router(many, **options).route_many(batch) == single
    assert [attrs.evolve(x, version=0) for x in many.inquiries] == [
        attrs.evolve(x, version=0) for x in one.inquiries
    ]
    for decision in single:
        if decision.reason == Reason.ACCOUNT_MATCH:
            assert decision.owner_id == "am"
        assert decision.account_id != "free"  # free-mail domains never match
