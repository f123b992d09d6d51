"""Merge and unmerge: every reference re-pointed in one transaction, and undone exactly."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crmkit.dedupe import REFERENCES, merge, unmerge
from crmkit.errors import ConflictError, HierarchyCycleError, NotFound, ValidationError
from crmkit.records import (
    RECORD_TYPES,
    Account,
    Activity,
    Campaign,
    CampaignMember,
    Contact,
    DealRegistration,
    Enrollment,
    HierarchyChange,
    Inquiry,
    Lead,
    LifecycleChange,
    Merge,
    Opportunity,
    OwnershipChange,
    Partner,
    Reminder,
    StageChange,
)
from crmkit.store import SQLiteStore
from crmkit.testing import build

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CAMPAIGNS = ["camp", "camp2"]
N = 4  # records of each referenced type


def _ref(draw: st.DrawFn, prefix: str) -> str | None:
    return draw(st.none() | st.sampled_from([f"{prefix}{i}" for i in range(N)]))


@st.composite
def worlds(draw: st.DrawFn) -> list[Any]:
    """A small CRM where every kind of reference points at random records."""
    out: list[Any] = []
    for i in range(N):
        parent = draw(st.none() | st.sampled_from([f"a{j}" for j in range(i)])) if i else None
        out.append(
            Account(
                id=f"a{i}",
                name=draw(st.sampled_from(["Acme", "ACME Inc", "Globex"])),
                domain=draw(st.none() | st.just("acme.com")),
                parent_id=parent,
                created_at=T0 + timedelta(days=draw(st.integers(0, 3))),
                custom=draw(st.sampled_from([{}, {"tier": "gold"}, {"tier": "x", "n": 1}])),
            )
        )
        out.append(
            Contact(
                id=f"c{i}",
                account_id=_ref(draw, "a"),
                email=draw(st.none() | st.just("ada@acme.com")),
                phone=draw(st.none() | st.just("555 0100")),
                created_at=draw(st.none() | st.just(T0)),
            )
        )
        out.append(
            Lead(
                id=f"l{i}",
                email=draw(st.none() | st.just("x@y.com")),
                converted_account_id=_ref(draw, "a"),
                converted_contact_id=_ref(draw, "c"),
                converted_opportunity_id=_ref(draw, "o"),
            )
        )
        out.append(
            Opportunity(
                id=f"o{i}",
                name=f"Deal {i}",
                account_id=_ref(draw, "a"),
                contact_id=_ref(draw, "c"),
                lead_id=_ref(draw, "l"),
            )
        )
    for i in range(draw(st.integers(0, 6))):
        out.append(
            Activity(
                id=f"act{i}",
                kind="call",
                at=T0,
                account_id=_ref(draw, "a"),
                contact_id=_ref(draw, "c"),
                lead_id=_ref(draw, "l"),
                opportunity_id=_ref(draw, "o"),
            )
        )
    for i in range(draw(st.integers(0, 3))):
        out.append(
            Reminder(
                id=f"rem{i}",
                title="Call",
                due_at=T0,
                account_id=_ref(draw, "a"),
                contact_id=_ref(draw, "c"),
                lead_id=_ref(draw, "l"),
                opportunity_id=_ref(draw, "o"),
            )
        )
        out.append(
            Enrollment(
                id=f"enr{i}",
                cadence_id="cad",
                enrolled_at=T0,
                contact_id=_ref(draw, "c"),
                lead_id=_ref(draw, "l"),
            )
        )
        out.append(
            DealRegistration(
                id=f"reg{i}",
                partner_id="p",
                submitted_at=T0,
                account_id=_ref(draw, "a"),
                opportunity_id=_ref(draw, "o"),
            )
        )
        out.append(Inquiry(id=f"inq{i}", account_id=_ref(draw, "a"), contact_id=_ref(draw, "c")))
        out.append(Partner(id=f"par{i}", account_id=f"a{draw(st.integers(0, N - 1))}"))
        kind, prefix = draw(st.sampled_from([("Account", "a"), ("Contact", "c"), ("Lead", "l")]))
        out.append(
            OwnershipChange(
                id=f"own{i}",
                record_type=kind,
                at=T0,
                record_id=f"{prefix}{draw(st.integers(0, N - 1))}",
            )
        )
        out.append(
            StageChange(
                id=f"st{i}",
                opportunity_id=f"o{draw(st.integers(0, N - 1))}",
                to_stage="won",
                at=T0,
            )
        )
        out.append(
            LifecycleChange(
                id=f"lc{i}",
                account_id=f"a{draw(st.integers(0, N - 1))}",
                to_stage="customer",
                at=T0,
            )
        )
        out.append(
            HierarchyChange(
                id=f"hc{i}",
                account_id=f"a{draw(st.integers(0, N - 1))}",
                from_parent_id=_ref(draw, "a"),
                to_parent_id=_ref(draw, "a"),
                at=T0,
            )
        )
    # members of two stored campaigns, each person (contact, else lead, else account) once
    # per campaign as the stores require; several records of one kind in one campaign
    # make the merge case where two merged records share a campaign
    out.extend(Campaign(id=c, name=c.title()) for c in CAMPAIGNS)
    members: list[CampaignMember] = []
    for i in range(draw(st.integers(0, 8))):
        member = CampaignMember(
            id=f"cm{i}",
            campaign_id=draw(st.sampled_from(CAMPAIGNS)),
            account_id=_ref(draw, "a"),
            contact_id=_ref(draw, "c"),
            lead_id=_ref(draw, "l"),
        )
        if not any(_clash(member, other) for other in members):
            members.append(member)
    out.extend(members)
    return out


def _state(store: Any) -> dict[str, dict[str, Any]]:
    """Every record of every repository but the merge history, versions left out."""
    return {
        t.__name__: {r.id: attrs.evolve(r, version=0) for r in store.repository(t)}
        for t in RECORD_TYPES
        if t is not Merge
    }


def _load(store: Any, records: list[Any]) -> None:
    with store.transaction():
        for record in records:
            store.repository(type(record)).add(record)


def _pointing_at(store: Any, name: str, ids: set[str]) -> list[tuple[str, str, str]]:
    found = []
    for ref_type, field in REFERENCES[name]:
        for record in store.repository(ref_type):
            if getattr(record, field) in ids:
                found.append((ref_type.__name__, record.id, field))
    for change in store.ownership_changes:
        if change.record_type == name and change.record_id in ids:
            found.append(("OwnershipChange", change.id, "record_id"))
    return found


groups = st.tuples(
    st.sampled_from([("Account", "a"), ("Contact", "c"), ("Lead", "l"), ("Opportunity", "o")]),
    st.lists(st.integers(0, N - 1), min_size=2, max_size=3, unique=True),
    st.sampled_from(["oldest", "most_complete", "most_recent_activity"]),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(world=worlds(), group=groups)
def test_merge_repoints_everything_and_unmerge_restores_it(
    make_store: Any, world: list[Any], group: Any
) -> None:
    (name, prefix), picks, rule = group
    ids = [f"{prefix}{i}" for i in picks]
    store = make_store()
    _load(store, world)
    before = _state(store)
    try:
        done = merge(store, name, ids, rule=rule, merge_id="m1", clock=_clock())
    except HierarchyCycleError:
        assert _state(store) == before  # refused whole
        assert len(store.merges) == 0
        return
    gone = set(done.merged_ids)
    assert done.survivor_id in ids
    assert gone == set(ids) - {done.survivor_id}
    assert _pointing_at(store, name, gone) == []
    assert _any_field_equal_to(store, gone) == []  # independent of REFERENCES
    after = _state(store)
    # a membership that re-pointed would be a person twice in a campaign is removed, not
    # re-pointed: it counts as merged (a third outcome beside kept and re-pointed)
    removed = set(before["CampaignMember"]) - set(after["CampaignMember"])
    snapshot = json.loads(store.merges.get("m1").snapshot)
    assert {m["id"] for m in snapshot["removed_members"]} == removed
    if removed:
        event("a merge removed doubled campaign memberships")
    for type_name, records in before.items():
        expected = len(records) - (len(gone) if type_name == name else 0)
        if type_name == "CampaignMember":
            expected -= len(removed)
        assert len(after[type_name]) == expected, type_name
    members = list(after["CampaignMember"].values())
    assert not [(m.id, n.id) for m in members for n in members if m is not n and _clash(m, n)]
    field = {"Account": "account_id", "Contact": "contact_id", "Lead": "lead_id"}.get(name)
    for member_id in removed:  # only doubles go, and each had a reason to
        old = before["CampaignMember"][member_id]
        assert getattr(old, field) in ids
        moved = attrs.evolve(old, **{field: done.survivor_id})
        assert any(_clash(moved, m) for m in members)
        if _person(old) == (field, done.survivor_id):  # yields only to someone else's
            assert any(_clash(moved, m) and _person(m)[0] != field for m in members)
    assert len(store.merges) == 1
    # every reference that pointed into the group now points at the survivor (or, for
    # a doubled membership, went with it)
    for type_name, record_id, ref_field in _pointing_at_in(before, name, set(ids)):
        if type_name == "CampaignMember" and record_id in removed:
            continue
        assert getattr(after[type_name][record_id], ref_field) == done.survivor_id

    unmerge(store, "m1", clock=_clock())
    assert _state(store) == before
    assert store.merges.get("m1").unmerged_at == T0


def _person(member: CampaignMember) -> tuple[str, str | None]:
    """The person a member stands for under the store's rule."""
    for field in ("contact_id", "lead_id", "account_id"):
        if getattr(member, field) is not None:
            return field, getattr(member, field)
    return "", None


def _clash(member: CampaignMember, other: CampaignMember) -> bool:
    """Whether the stores' rule forbids both members (one person twice in a campaign):
    the person is the contact, else the lead, else an account member's account."""
    if member.campaign_id != other.campaign_id:
        return False
    for one, two in ((member, other), (other, member)):
        field, person = _person(one)
        if person is None or getattr(two, field) != person:
            continue
        if field != "account_id" or (two.contact_id is None and two.lead_id is None):
            return True
    return False


def _any_field_equal_to(store: Any, ids: set[str]) -> list[tuple[str, str, str]]:
    """Every field of every stored record (merge history aside) holding one of ``ids``:
    ids in these worlds are unique across types, so any hit is a dangling reference."""
    hits = []
    for record_type in RECORD_TYPES:
        if record_type is Merge:
            continue
        for record in store.repository(record_type):
            for field in attrs.fields(record_type):
                value = getattr(record, field.name)
                if isinstance(value, str) and value in ids:
                    hits.append((record_type.__name__, record.id, field.name))
    return hits


def _pointing_at_in(
    state: dict[str, dict[str, Any]], name: str, ids: set[str]
) -> list[tuple[str, str, str]]:
    found = []
    for ref_type, field in REFERENCES[name]:
        for record in state[ref_type.__name__].values():
            if ref_type.__name__ == name and record.id in ids:
                continue
            if getattr(record, field) in ids:
                found.append((ref_type.__name__, record.id, field))
    return found


def _clock() -> Any:
    from crmkit.clock import FixedClock

    return FixedClock(T0)


def test_field_survivorship_and_custom_fields(make_store: Any) -> None:
    store = make_store()
    store.contacts.add_many(
        [
            Contact(id="old", email="old@x.com", created_at=T0, custom={"a": 1, "b": 1}),
            Contact(
                id="new",
                email="new@x.com",
                phone="555",
                title="CTO",
                created_at=T0 + timedelta(days=9),
                custom={"b": 2, "c": 2},
            ),
        ]
    )
    merge(store, "Contact", ["new", "old"], fields={"email": "newest", "title": "survivor"})
    kept = store.contacts.get("old")
    assert (kept.email, kept.phone, kept.title) == ("new@x.com", "555", None)
    assert kept.custom == {"a": 1, "b": 1, "c": 2}
    assert kept.created_at == T0


def test_explicit_survivor_and_most_recent_activity(make_store: Any) -> None:
    store = make_store()
    store.leads.add_many([Lead(id="l1", created_at=T0), Lead(id="l2"), Lead(id="l3")])
    store.activities.add_many(
        [
            Activity(id="x", kind="call", at=T0, lead_id="l2"),
            Activity(id="y", kind="call", at=T0 + timedelta(hours=1), lead_id="l3"),
        ]
    )
    assert merge(store, Lead, ["l1", "l2", "l3"], rule="most_recent_activity").survivor_id == "l3"
    store2 = make_store()
    store2.leads.add_many([Lead(id="l1", created_at=T0), Lead(id="l2")])
    assert merge(store2, "leads", ["l1", "l2"], survivor="l2").survivor_id == "l2"


def test_account_merge_keeps_the_hierarchy_acyclic(make_store: Any) -> None:
    store = make_store()
    store.accounts.add_many(
        [
            Account(id="top", name="Top"),
            Account(id="b", name="B", parent_id="top", created_at=T0),
            Account(id="a", name="A", parent_id="b", created_at=T0 + timedelta(days=1)),
            Account(id="kid", name="Kid", parent_id="b"),
        ]
    )
    done = merge(store, "Account", ["a", "b"], survivor="a")
    assert done.merged_ids == ("b",)
    assert store.accounts.get("a").parent_id == "top"  # b's place in the tree
    assert store.accounts.get("kid").parent_id == "a"


def test_a_merge_that_would_make_a_cycle_changes_nothing(make_store: Any) -> None:
    store = make_store()
    store.accounts.add_many(
        [
            Account(id="b", name="B"),
            Account(id="c", name="C", parent_id="b"),
            Account(id="a", name="A", parent_id="c"),
        ]
    )
    before = _state(store)
    with pytest.raises(HierarchyCycleError):
        merge(store, "Account", ["a", "b"], survivor="a")
    assert _state(store) == before


def test_unmerge_refuses_after_later_writes_unless_forced(make_store: Any) -> None:
    store = make_store()
    store.contacts.add_many([Contact(id="c1", email="a@x.com"), Contact(id="c2")])
    store.activities.add(Activity(id="act", kind="call", at=T0, contact_id="c2"))
    merge(store, "Contact", ["c1", "c2"], merge_id="m")
    touched = store.activities.get("act")
    store.activities.update(attrs.evolve(touched, subject="later"))
    with pytest.raises(ConflictError):
        unmerge(store, "m")
    assert "c2" not in store.contacts  # nothing changed
    unmerge(store, "m", force=True)
    assert store.activities.get("act").contact_id == "c2"
    assert store.activities.get("act").subject == "later"
    with pytest.raises(ValidationError, match="already unmerged"):
        unmerge(store, "m")


def test_bad_merges(make_store: Any) -> None:
    store = make_store()
    store.contacts.add(Contact(id="c1"))
    with pytest.raises(ValidationError, match="at least two"):
        merge(store, "Contact", ["c1", "c1"])
    with pytest.raises(ValidationError, match="record_type"):
        merge(store, "Rep", ["r1", "r2"])
    with pytest.raises(NotFound):
        merge(store, "Contact", ["c1", "nope"])
    with pytest.raises(ValidationError, match="survivor"):
        merge(store, "Contact", ["c1", "c2"], survivor="c3")
    store.contacts.add(Contact(id="c2"))
    with pytest.raises(ValidationError, match="field survivorship"):
        merge(store, "Contact", ["c1", "c2"], fields={"shoe": "first"})
    with pytest.raises(ValidationError, match="rule"):
        merge(store, "Contact", ["c1", "c2"], rule="loudest")
    assert len(store.contacts) == 2


def test_a_version_2_file_gains_the_merge_table(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    with SQLiteStore(path) as store:
        store.contacts.add(build(Contact, id="c"))
    raw = sqlite3.connect(path)
    raw.execute("DROP TABLE merges")
    raw.execute("PRAGMA user_version = 2")
    raw.commit()
    raw.close()
    with SQLiteStore(path) as store:
        store.merges.add(build(Merge, id="m"))
        assert [m.id for m in store.merges] == ["m"]
        assert [c.id for c in store.contacts] == ["c"]


def test_merged_contacts_in_one_campaign_leave_one_membership_and_unmerge_restores_it(
    make_store: Any,
) -> None:
    store = make_store()
    store.campaigns.add_many([Campaign(id="spring", name="Spring"), Campaign(id="fall", name="F")])
    store.contacts.add_many([Contact(id="keep", created_at=T0), Contact(id="dup")])
    store.campaign_members.add_many(
        [
            CampaignMember(id="m-keep", campaign_id="spring", contact_id="keep"),
            CampaignMember(id="m-dup", campaign_id="spring", contact_id="dup", lead_id="l7",
                           status="responded", responded_at=T0),
            CampaignMember(id="m-fall", campaign_id="fall", contact_id="dup"),
        ]
    )  # fmt: skip
    before = _state(store)
    old = store.campaign_members.get("m-dup")
    merge(store, "Contact", ["keep", "dup"], merge_id="m")
    assert sorted((m.id, m.campaign_id, m.contact_id) for m in store.campaign_members) == [
        ("m-fall", "fall", "keep"),  # re-pointed: the survivor was not in that campaign
        ("m-keep", "spring", "keep"),  # the survivor's own stands; m-dup was removed
    ]
    unmerge(store, "m")
    assert _state(store) == before
    back = store.campaign_members.get("m-dup")
    assert attrs.evolve(back, version=old.version) == old  # same id, same fields


def test_merged_leads_yield_to_a_contact_membership(make_store: Any) -> None:
    store = make_store()
    store.campaigns.add(Campaign(id="camp", name="Camp"))
    store.leads.add_many([Lead(id="l1", created_at=T0), Lead(id="l2")])
    store.contacts.add(Contact(id="c"))
    store.campaign_members.add_many(
        [
            CampaignMember(id="lead-own", campaign_id="camp", lead_id="l1"),
            CampaignMember(id="as-contact", campaign_id="camp", contact_id="c", lead_id="l2"),
        ]
    )
    before = _state(store)
    merge(store, "Lead", ["l1", "l2"], merge_id="m")
    # both would name lead l1 in one campaign: the contact's membership stays
    assert [(m.id, m.lead_id) for m in store.campaign_members] == [("as-contact", "l1")]
    unmerge(store, "m")
    assert _state(store) == before
