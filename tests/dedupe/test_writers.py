"""Duplicate rules honoured by the writers (CSV import, lead capture and routing) and
account-based routing, on every store."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock
from crmkit.dedupe import (
    AccountMatcher,
    DuplicateBatchError,
    DuplicateError,
    DuplicatePolicy,
    MatchRule,
)
from crmkit.errors import CrmError, ValidationError
from crmkit.io import ImportFailed, import_csv
from crmkit.records import Account, Inquiry, Lead, Rep, RoutingRule
from crmkit.routing import Reason, Router, RoutingStatus
from crmkit.store import MemoryStore

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday, in working hours
CLOCK = FixedClock(T0)

STORED = Lead(
    id="l1", first_name="Ann", last_name="Lee", email="ann@initech.com", phone="555 0100"
)
CSV = (
    "id,first_name,last_name,email,phone\n"
    "n1,Anne,Lee,ANN@initech.com,\n"  # the stored l1 by email
    "n2,Bo,Ray,bo@ray.com,\n"
    "n3,Robert,Ray,,\n"  # nothing to compare
    "n4,Bo,Ray,BO@ray.com,\n"  # the file's own n2
)


def seeded(make_store: Any) -> Any:
    store = make_store()
    store.leads.add(STORED)
    return store


# -- import_csv --------------------------------------------------------------------------


def test_import_block_writes_nothing_and_names_row_field_and_duplicate(make_store: Any) -> None:
    store = seeded(make_store)
    with pytest.raises(ImportFailed) as caught:
        import_csv(store, "leads", io.StringIO(CSV), duplicates=DuplicatePolicy(action="block"))
    assert isinstance(caught.value, CrmError)
    errors = caught.value.report.errors
    assert [(e.row, e.column, e.value) for e in errors] == [
        (2, "email", "ANN@initech.com"),
        (5, "email", "BO@ray.com"),
    ]
    assert "duplicates l1 on email" in errors[0].reason
    assert "duplicates n2 on email" in errors[1].reason
    assert "row 2, column 'email'" in str(caught.value)
    assert [lead.id for lead in store.leads] == ["l1"]


def test_import_block_skip_bad_rows_writes_the_others(make_store: Any) -> None:
    store = seeded(make_store)
    report = import_csv(
        store,
        "leads",
        io.StringIO(CSV),
        duplicates=DuplicatePolicy(action="block"),
        skip_bad_rows=True,
    )
    assert report.bad_rows == (2, 5)
    assert sorted(lead.id for lead in store.leads) == ["l1", "n2", "n3"]


def test_import_alert_writes_and_reports(make_store: Any) -> None:
    store = seeded(make_store)
    report = import_csv(
        store, "leads", io.StringIO(CSV), duplicates=DuplicatePolicy(action="alert")
    )
    assert report.ok
    assert report.written == 4
    assert [(d.row, d.record_id) for d in report.duplicates] == [(2, "n1"), (5, "n4")]
    assert [m.rule_id for m in report.duplicates[0].matches] == ["lead-email"]
    assert "row 2: 'n1' duplicates l1 on email (lead-email, score 1.00)" in str(report)
    assert len(store.leads) == 5


@pytest.mark.parametrize("policy", [None, DuplicatePolicy(action="allow")])
def test_import_without_a_rule_or_allow_checks_nothing(make_store: Any, policy: Any) -> None:
    store = seeded(make_store)
    report = import_csv(store, "leads", io.StringIO(CSV), duplicates=policy)
    assert report.ok
    assert report.written == 4
    assert report.duplicates == ()
    assert len(store.leads) == 5


def test_import_rules_of_the_policy_and_min_score(make_store: Any) -> None:
    store = seeded(make_store)
    by_phone = MatchRule(id="phone", record_type="Lead", fields=[{"field": "phone"}])
    text = "id,email,phone\nn1,other@x.com,(555) 0100\n"
    with pytest.raises(ImportFailed, match="duplicates l1 on phone"):
        import_csv(
            store,
            "leads",
            io.StringIO(text),
            duplicates=DuplicatePolicy(action="block", rules=[by_phone]),
        )
    contacts_rule = MatchRule(id="c", record_type="Contact", fields=[{"field": "email"}])
    with pytest.raises(ValidationError, match="compare Contact records, not Lead"):
        import_csv(
            store, "leads", io.StringIO(text), duplicates=DuplicatePolicy(rules=[contacts_rule])
        )
    assert len(store.leads) == 1


def test_import_dry_run_reports_alerts(make_store: Any) -> None:
    store = seeded(make_store)
    report = import_csv(
        store, "leads", io.StringIO(CSV), duplicates=DuplicatePolicy(action="alert"), dry_run=True
    )
    assert [d.row for d in report.duplicates] == [2, 5]
    assert len(store.leads) == 1


# -- lead capture and routing ---------------------------------------------------------------


def routing_store(make_store: Any) -> Any:
    store = seeded(make_store)
    store.reps.add_many(
        [
            Rep(id="a", name="A", team_ids=["sales"]),
            Rep(id="b", name="B", team_ids=["sales"]),
            Rep(id="owner", name="Owner"),
            Rep(id="away", name="Away", active=False),
        ]
    )
    store.routing_rules.add(RoutingRule(id="all", target_kind="team", target_id="sales"))
    store.accounts.add_many(
        [
            Account(id="acme", name="Acme Corporation", domain="acme.com", country="US",
                    owner_id="owner"),
            Account(id="globex", name="Globex GmbH", country="DE", owner_id="away"),
            Account(id="orphan", name="Orphan Ltd", domain="orphan.io"),
        ]
    )  # fmt: skip
    return store


def test_router_block_refuses_and_writes_nothing(make_store: Any) -> None:
    store = routing_store(make_store)
    router = Router(store, clock=CLOCK, duplicates=DuplicatePolicy(action="block"))
    with pytest.raises(DuplicateError) as caught:
        router.route(Lead(id="n1", email="Ann@Initech.com"))
    assert str(caught.value) == "Lead 'n1': duplicates l1 on email (lead-email, score 1.00)"
    assert caught.value.check is not None
    assert caught.value.check.duplicate_ids == ("l1",)
    with pytest.raises(DuplicateBatchError) as many:
        router.route_many(
            [Lead(id="n2", email="new@x.com"), Lead(id="n3", email="NEW@x.com"), STORED]
        )
    assert [i for i, _ in many.value.errors] == [1]
    assert "#1: Lead 'n3': duplicates n2 on email" in str(many.value)
    assert [lead.id for lead in store.leads] == ["l1"]
    assert len(store.ownership_changes) == 0
    # a lead routed by this router is a duplicate for the next one
    router.route(Lead(id="n4", email="fresh@x.com"))
    with pytest.raises(DuplicateError, match="duplicates n4 on email"):
        router.route(Lead(id="n5", email="FRESH@x.com"), apply=False)


def test_router_alert_routes_and_reports(make_store: Any) -> None:
    store = routing_store(make_store)
    router = Router(store, clock=CLOCK, duplicates=DuplicatePolicy(action="alert"))
    one = router.route(Lead(id="n1", first_name="Anne", last_name="Lee", phone="555-0100"))
    assert one.status == RoutingStatus.ASSIGNED
    assert [(p.left_id, p.rule_id) for p in one.duplicates] == [("l1", "lead-name-phone")]
    assert "duplicate of Lead l1 on name, phone (lead-name-phone" in one.explain()
    assert one.to_dict()["duplicates"][0]["id"] == "l1"
    many = router.route_many([Lead(id="n2", email="q@x.com"), Lead(id="n3", email="Q@x.com")])
    assert next(d.duplicates for d in many) == ()
    assert [p.left_id for p in many[1].duplicates] == ["n2"]
    assert sorted(lead.id for lead in store.leads) == ["l1", "n1", "n2", "n3"]


def test_router_without_a_rule_reports_nothing(make_store: Any) -> None:
    store = routing_store(make_store)
    for policy in (None, DuplicatePolicy(action="allow")):
        decision = Router(store, clock=CLOCK, duplicates=policy).route(
            Lead(id=f"n-{policy}", email="ann@initech.com"), apply=False
        )
        assert decision.duplicates == ()


def test_router_rule_needs_a_record_type_with_rules(make_store: Any) -> None:
    store = make_store()
    with pytest.raises(ValidationError, match="no default rules"):
        Router(store, record_type=Inquiry, duplicates=DuplicatePolicy(action="block"))


# -- account-based routing ------------------------------------------------------------------


def test_lead_goes_to_the_matched_account_owner(make_store: Any) -> None:
    store = routing_store(make_store)
    router = Router(store, clock=CLOCK, account_min_score=0.6)
    decision = router.route(
        Lead(id="n1", company="ACME Inc.", email="jo@eu.acme.com", country="US")
    )
    assert (decision.reason, decision.owner_id, decision.account_id) == (
        Reason.ACCOUNT_MATCH,
        "owner",
        "acme",
    )
    assert decision.account_score == pytest.approx(1.0)
    assert decision.account_reasons == ("domain acme.com", "name acme", "country US")
    assert decision.explain().startswith(
        "Lead n1: assigned to owner (matches account acme (score 1.00: domain acme.com, "
        "name acme, country US), routed to its owner"
    )
    assert store.leads.get("n1").owner_id == "owner"


def test_no_match_owner_away_or_no_owner_fall_through_to_the_rules(make_store: Any) -> None:
    store = routing_store(make_store)
    router = Router(store, clock=CLOCK, account_min_score=0.6)
    leads = [
        Lead(id="n1", company="Initrode", email="x@initrode.com"),  # no account
        Lead(id="n2", company="Acme", country="US"),  # name only: 0.4 < 0.6
        Lead(id="n3", company="Globex", country="DE"),  # the owner is inactive... 0.4 too
        Lead(id="n4", email="y@orphan.io"),  # an account without an owner
    ]
    decisions = router.route_many(leads)
    assert [d.reason for d in decisions] == [Reason.RULE_MATCHED] * 4
    assert [d.owner_id for d in decisions] == ["a", "b", "a", "b"]
    assert decisions[3].account_id == "orphan"
    assert decisions[3].account_score == 0.6
    assert "account orphan matched first, but it has no owner" in decisions[3].explain()
    low = Router(store, clock=CLOCK, account_min_score=0.4).route(
        Lead(id="n5", company="Globex GmbH", country="DE")
    )
    assert low.reason == Reason.RULE_MATCHED
    assert low.account_id == "globex"
    assert [d.code for d in low.dropped] == [Reason.INACTIVE]
    assert len(store.leads) == 6


def test_account_routing_is_for_leads_and_a_score() -> None:
    store = MemoryStore()
    with pytest.raises(ValidationError, match="account_min_score"):
        Router(store, record_type=Inquiry, account_min_score=0.5)
    with pytest.raises(ValidationError, match="account_min_score"):
        Router(store, account_min_score=2)


def test_route_columns_uses_the_scored_match() -> None:
    store = routing_store(lambda: MemoryStore())
    router = Router(store, clock=CLOCK, account_min_score=0.6)
    assert {"email", "company", "country"} <= set(router.batch_fields())
    batch = router.route_columns(
        {"id": [*"xy"], "email": ["a@acme.com", "b@nowhere.org"], "company": ["", ""]}
    )
    assert batch.owner.tolist() == ["owner", "a"]


companies = st.sampled_from(["Acme", "ACME Inc.", "Acme GmbH", "Globex", "Initech", ""])
domains = st.sampled_from(["acme.com", "globex.de", "initech.io", "gmail.com", ""])
countries = st.sampled_from(["US", "DE", ""])
owners = st.sampled_from(["a", "b", "owner", "away", "ghost", None])


@st.composite
def worlds(draw: Any) -> tuple[list[Account], list[Lead], float]:
    accounts = [
        Account(
            id=f"acc{i}",
            name=draw(companies) or "Unnamed",
            domain=draw(domains) or None,
            country=draw(countries) or None,
            owner_id=draw(owners),
        )
        for i in range(draw(st.integers(0, 5)))
    ]
    leads = [
        Lead(
            id=f"lead{i}",
            company=draw(companies) or None,
            email=(f"p{i}@{draw(domains)}" if draw(st.booleans()) else None),
            country=draw(countries) or None,
            owner_id=draw(st.sampled_from([None, None, None, "b"])),
        )
        for i in range(draw(st.integers(1, 12)))
    ]
    return accounts, leads, draw(st.sampled_from([0.3, 0.5, 0.6, 0.9]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_account_routing_drops_no_lead(world: tuple[list[Account], list[Lead], float]) -> None:
    accounts, leads, min_score = world
    stores = []
    for _ in range(2):
        store = MemoryStore()
        store.reps.add_many(
            [
                Rep(id="a", name="A", team_ids=["sales"]),
                Rep(id="b", name="B", team_ids=["sales"]),
                Rep(id="owner", name="Owner"),
                Rep(id="away", name="Away", active=False),
            ]
        )
        store.routing_rules.add(RoutingRule(id="all", target_kind="team", target_id="sales"))
        store.accounts.add_many(accounts)
        stores.append(store)
    many = Router(stores[0], clock=CLOCK, account_min_score=min_score).route_many(leads)
    one_router = Router(stores[1], clock=CLOCK, account_min_score=min_score)
    one = [one_router.route(lead) for lead in leads]
    matcher = AccountMatcher(accounts)
    assert many == one
    assert sorted(lead.id for lead in stores[0].leads) == sorted(lead.id for lead in leads)
    for lead, decision in zip(leads, many, strict=True):
        assert decision.record_id == lead.id
        assert decision.status == RoutingStatus.ASSIGNED  # the team always has a rep
        stored = stores[0].leads.get(lead.id)
        assert stored.owner_id == decision.owner_id
        best = matcher.match(lead, limit=1, min_score=min_score) if lead.owner_id is None else []
        if decision.reason == Reason.ACCOUNT_MATCH:
            assert best
            assert decision.account_id == best[0].account_id
            assert decision.owner_id == best[0].owner_id
            assert decision.owner_id in ("a", "b", "owner")
            assert decision.account_score == best[0].score >= min_score
        elif lead.owner_id is None:
            assert decision.reason == Reason.RULE_MATCHED
            assert decision.owner_id in ("a", "b")
            if best:
                assert best[0].owner_id in (None, "away", "ghost")  # no owner to take it
                assert decision.account_reasons == best[0].reasons


def test_sweep_and_apply_use_the_scored_match(make_store: Any) -> None:
    store = routing_store(make_store)
    store.leads.add(Lead(id="waiting", company="Acme", email="w@acme.com", created_at=T0))
    router = Router(store, clock=CLOCK, account_min_score=0.6)
    swept = {d.record_id: d for d in router.sweep(T0)}
    assert swept["waiting"].reason == Reason.ACCOUNT_MATCH
    assert swept["waiting"].account_score == pytest.approx(0.9)
    assert store.leads.get("waiting").owner_id == "owner"
    lead = Lead(id="later", email="l@acme.com")
    decision = router.route(lead, apply=False)
    assert decision.account_reasons == ("domain acme.com",)
    assert router.apply(decision, lead).owner_id == "owner"


def test_import_upsert_of_the_same_record_is_not_its_own_duplicate(make_store: Any) -> None:
    store = seeded(make_store)
    text = "id,first_name,last_name,email\nl1,Ann,Lee,ANN@initech.com\n"
    report = import_csv(
        store,
        "leads",
        io.StringIO(text),
        upsert=True,
        duplicates=DuplicatePolicy(action="block"),
    )
    assert report.written == 1
    assert store.leads.get("l1").email == "ANN@initech.com"
