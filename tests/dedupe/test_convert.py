"""Lead-to-account matching and lead conversion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.clock import FixedClock
from crmkit.dedupe import AccountMatcher, convert_lead, match_accounts
from crmkit.errors import NotFound, ValidationError
from crmkit.records import (
    RECORD_TYPES,
    Account,
    Activity,
    Campaign,
    CampaignMember,
    Contact,
    Lead,
    LeadStatus,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CLOCK = FixedClock(T0)


ACCOUNTS = [
    Account(id="acme", name="Acme Corporation", domain="www.acme.com", country="US",
            owner_id="rep-a"),
    Account(id="acme-de", name="Acme GmbH", country="DE", owner_id="rep-d"),
    Account(id="globex", name="Globex", domain="globex.co.uk", country="GB"),
]  # fmt: skip


def test_matching_reasons_and_order() -> None:
    lead = Lead(id="l", company="ACME Inc.", email="jo@mail.acme.com", country="us")
    matches = match_accounts(ACCOUNTS, lead)
    assert [m.account_id for m in matches] == ["acme", "acme-de"]
    first, second = matches
    assert first.reasons == ("domain acme.com", "name acme", "country US")
    assert first.score == pytest.approx(1.0)
    assert first.owner_id == "rep-a"
    assert second.reasons == ("name acme", "country DE differs from US")
    assert second.score == pytest.approx(0.2)


def test_free_mail_never_matches_by_domain() -> None:
    accounts = [Account(id="g", name="Google", domain="gmail.com")]
    assert match_accounts(accounts, Lead(id="l", email="x@gmail.com")) == []


def test_fuzzy_name_match() -> None:
    lead = Lead(id="l", company="Globexx Ltd")
    (match,) = AccountMatcher(ACCOUNTS).match(lead)
    assert match.account_id == "globex"
    assert match.reasons[0].startswith("fuzzy name 'globex' 0.9")
    assert 0.2 < match.score < 0.25


def test_convert_creates_account_contact_and_opportunity(make_store: Any) -> None:
    store = make_store()
    store.leads.add(
        Lead(id="l1", first_name="Ana", last_name="Ruiz", company="Initech S.A.",
             email="ana@initech.es", country="ES", owner_id="rep-1", source="web")
    )  # fmt: skip
    store.activities.add(Activity(id="act", kind="call", at=T0, lead_id="l1"))
    store.campaigns.add(Campaign(id="camp", name="Camp"))
    store.campaign_members.add(CampaignMember(id="cm", campaign_id="camp", lead_id="l1"))
    done = convert_lead(
        store, "l1", opportunity=True, ids={"account": "A", "contact": "C", "opportunity": "O"}
    )
    assert (done.account_created, done.contact_created) == (True, True)
    account = store.accounts.get("A")
    assert (account.name, account.domain, account.country, account.owner_id) == (
        "Initech S.A.", "initech.es", "ES", "rep-1"
    )  # fmt: skip
    contact = store.contacts.get("C")
    assert (contact.account_id, contact.email, contact.owner_id) == (
        "A",
        "ana@initech.es",
        "rep-1",
    )
    deal = store.opportunities.get("O")
    assert (deal.account_id, deal.contact_id, deal.lead_id, deal.source) == ("A", "C", "l1", "web")
    assert deal.name == "Initech S.A. (Ana Ruiz)"
    activity = store.activities.get("act")
    assert (activity.lead_id, activity.contact_id, activity.account_id) == ("l1", "C", "A")
    member = store.campaign_members.get("cm")
    assert (member.lead_id, member.contact_id) == ("l1", "C")
    assert done.memberships_merged == 0
    lead = store.leads.get("l1")
    assert lead.status is LeadStatus.CONVERTED
    assert (lead.converted_account_id, lead.converted_contact_id) == ("A", "C")
    assert lead.converted_opportunity_id == "O"


def test_convert_reuses_a_matching_contact(make_store: Any) -> None:
    store = make_store()
    store.accounts.add_many(ACCOUNTS)
    store.contacts.add(Contact(id="bob", account_id="acme", first_name="Robert",
                               last_name="Smith"))  # fmt: skip
    store.leads.add(Lead(id="l", first_name="Bob", last_name="Smith", company="Acme",
                         email="bob@acme.com"))  # fmt: skip
    done = convert_lead(store, "l")
    assert (done.account.id, done.account_created) == ("acme", False)
    assert (done.contact.id, done.contact_created) == ("bob", False)
    assert len(store.contacts) == 1
    assert done.opportunity is None


def test_convert_to_a_contact_already_in_the_campaign_keeps_one_membership(
    make_store: Any,
) -> None:
    store = make_store()
    store.accounts.add_many(ACCOUNTS)
    store.campaigns.add_many([Campaign(id="both", name="B"), Campaign(id="lead-only", name="L")])
    store.contacts.add(Contact(id="bob", account_id="acme", first_name="Robert",
                               last_name="Smith"))  # fmt: skip
    store.leads.add(Lead(id="l", first_name="Bob", last_name="Smith", company="Acme",
                         email="bob@acme.com"))  # fmt: skip
    store.campaign_members.add_many(
        [
            CampaignMember(id="bob-in", campaign_id="both", contact_id="bob", status="responded"),
            CampaignMember(id="lead-in", campaign_id="both", lead_id="l"),
            CampaignMember(id="lead-2", campaign_id="lead-only", lead_id="l"),
        ]
    )
    lead_in = store.campaign_members.get("lead-in")
    done = convert_lead(store, "l", clock=CLOCK)
    assert done.contact.id == "bob"
    assert done.memberships_merged == 1
    in_both = [m for m in store.campaign_members if m.campaign_id == "both"]
    assert [m.id for m in in_both if m.contact_id == "bob"] == ["bob-in"]
    assert store.campaign_members.get("lead-in") == lead_in  # left as the lead's
    carried = store.campaign_members.get("lead-2")
    assert (carried.contact_id, carried.account_id) == ("bob", "acme")


def test_convert_refusals_change_nothing(make_store: Any) -> None:
    store = make_store()
    store.leads.add(Lead(id="nocompany", email="x@gmail.com"))
    with pytest.raises(ValidationError, match="company"):
        convert_lead(store, "nocompany")
    with pytest.raises(NotFound):
        convert_lead(store, "nocompany", account_id="missing")
    with pytest.raises(NotFound):
        convert_lead(store, "nobody")
    with pytest.raises(ValidationError, match="ids"):
        convert_lead(store, "nocompany", ids={"deal": "x"})
    assert len(store.accounts) == 0
    assert len(store.contacts) == 0
    assert store.leads.get("nocompany").status is LeadStatus.NEW


def _state(store: Any) -> dict[str, dict[str, Any]]:
    return {t.__name__: {r.id: r for r in store.repository(t)} for t in RECORD_TYPES}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    company=st.sampled_from(["Acme Inc", "acme", "Globex plc", "Hooli", None]),
    email=st.sampled_from(["a@acme.com", "a@hooli.io", "a@gmail.com", None]),
    first=st.sampled_from(["Robert", "Bob", "Ann", None]),
    activities=st.lists(st.sampled_from([None, "c-old"]), max_size=4),
    opportunity=st.booleans(),
)
def test_conversion_properties(
    make_store: Any,
    company: str | None,
    email: str | None,
    first: str | None,
    activities: list[str | None],
    opportunity: bool,
) -> None:
    store = make_store()
    store.accounts.add_many(ACCOUNTS)
    store.contacts.add(Contact(id="c-old", account_id="acme", first_name="Robert",
                               last_name="Smith", email="a@acme.com"))  # fmt: skip
    store.leads.add(Lead(id="l", first_name=first, last_name="Smith", company=company,
                         email=email, owner_id="rep-9"))  # fmt: skip
    store.activities.add_many(
        Activity(id=f"x{i}", kind="email_sent", at=T0, lead_id="l", contact_id=c)
        for i, c in enumerate(activities)
    )
    before = _state(store)
    try:
        done = convert_lead(store, "l", opportunity=opportunity, clock=CLOCK)
    except ValidationError as err:
        assert err.field == "company"  # noqa: PT017 - which refusal, then no writes
        assert _state(store) == before  # a refused conversion writes nothing
        return
    after = _state(store)
    lead = after["Lead"]["l"]
    # the links exist and agree with each other
    assert lead.status is LeadStatus.CONVERTED
    account = after["Account"][lead.converted_account_id]
    contact = after["Contact"][lead.converted_contact_id]
    assert contact.account_id == account.id
    if opportunity:
        deal = after["Opportunity"][lead.converted_opportunity_id]
        assert (deal.account_id, deal.contact_id, deal.lead_id) == (account.id, contact.id, "l")
    else:
        assert lead.converted_opportunity_id is None
    # at most one new record of each kind; nothing else appears or disappears
    assert len(after["Account"]) - len(before["Account"]) == int(done.account_created)
    assert len(after["Contact"]) - len(before["Contact"]) == int(done.contact_created)
    assert len(after["Opportunity"]) == int(opportunity)
    assert set(after["Activity"]) == set(before["Activity"])
    # every activity of the lead now names a contact; those that had one keep it
    for record_id, old in before["Activity"].items():
        new = after["Activity"][record_id]
        assert new.contact_id == (old.contact_id or contact.id)
        assert new.lead_id == "l"
    # owner carried to what was created
    if done.account_created:
        assert account.owner_id == "rep-9"
    if done.contact_created:
        assert contact.owner_id == "rep-9"
    # converting twice is refused and writes nothing
    with pytest.raises(ValidationError, match="already converted"):
        convert_lead(store, "l", clock=CLOCK)
    assert _state(store) == after
    assert attrs.evolve(lead, version=0) != attrs.evolve(before["Lead"]["l"], version=0)


def test_a_shared_matcher_proposes_and_the_store_decides(make_store: Any) -> None:
    store = make_store()
    store.accounts.add_many(ACCOUNTS)
    matcher = AccountMatcher(store.accounts)
    store.leads.add_many(
        [
            Lead(id="l1", company="Acme", email="a@acme.com"),
            Lead(id="l2", company="Globex", email="b@globex.co.uk"),
        ]
    )
    assert convert_lead(store, "l1", matcher=matcher).account.id == "acme"
    store.accounts.delete("globex")  # the matcher still proposes it
    done = convert_lead(store, "l2", matcher=matcher, ids={"account": "new-globex"})
    assert (done.account.id, done.account_created) == ("new-globex", True)
