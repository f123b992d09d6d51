"""Campaign members, status history, attribution, performance and ABM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import campaigns
from crmkit.criteria import F
from crmkit.errors import CrmError, NotFound, ValidationError
from crmkit.records import (
    Account,
    Activity,
    Campaign,
    CampaignMember,
    Contact,
    Lead,
    Opportunity,
)
from crmkit.scoring import Segments, priority_scores
from crmkit.store import MemoryStore, SQLiteStore

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        return MemoryStore()
    return SQLiteStore(str(tmp_path / "crm.db"))


# -- members -----------------------------------------------------------------------------


def test_add_members_from_ids_criteria_and_duplicates(store):
    store.campaigns.add(Campaign(id="c", name="C"))
    store.contacts.add_many(
        [Contact(id=f"k{i}", country="US" if i % 2 else "FR") for i in range(6)]
    )
    first = campaigns.add_members(store, "c", criteria=F.country == "US", at=T0)
    assert sorted(m.contact_id for m in first.added) == ["k1", "k3", "k5"]
    again = campaigns.add_members(store, "c", ids=["k0", "k1", "k5"], at=day(1))
    assert [m.contact_id for m in again.added] == ["k0"]
    assert sorted(again.already_members) == ["k1", "k5"]
    assert store.campaign_members.count() == 4
    assert all(m.added_at is not None for m in store.campaign_members)


def test_add_members_criteria_and_ids_intersect():
    store = MemoryStore()
    store.campaigns.add(Campaign(id="c", name="C"))
    store.leads.add_many([Lead(id=f"l{i}", employees=i * 100) for i in range(5)])
    r = campaigns.add_members(
        store, "c", criteria=F.employees >= 200, ids=["l1", "l2", "l4"], record_type=Lead, at=T0
    )
    assert sorted(m.lead_id for m in r.added) == ["l2", "l4"]


def test_abm_list_from_top_priority_scores():
    store = MemoryStore()
    store.campaigns.add(Campaign(id="abm", name="ABM"))
    revenue = [5.0, 80.0, 20.0, 60.0, 10.0]
    store.accounts.add_many([Account(id=f"a{i}", name=f"A{i}") for i in range(5)])
    ids = np.array([f"a{i}" for i in range(5)])
    scores = priority_scores({"revenue": np.array(revenue)}, {"revenue": 1}, ids=ids)
    result = campaigns.add_members(store, "abm", ids=scores.top(2), record_type=Account, at=T0)
    # the two largest revenues by hand: a1 (80) and a3 (60)
    assert sorted(m.account_id for m in result.added) == ["a1", "a3"]


def test_unknown_ids_raise_and_write_nothing():
    store = MemoryStore()
    store.campaigns.add(Campaign(id="c", name="C"))
    store.contacts.add(Contact(id="k1"))
    with pytest.raises(ValidationError) as info:
        campaigns.add_members(store, "c", ids=["k1", "ghost"], at=T0)
    assert "ghost" in str(info.value)
    assert store.campaign_members.count() == 0


def test_members_of_an_unknown_campaign_are_refused_by_name():
    store = MemoryStore()
    store.contacts.add_many([Contact(id="k1"), Contact(id="k2")])
    with pytest.raises(ValidationError) as info:
        campaigns.add_members(store, "spring", ids=["k2", "k1"], at=T0)
    error = info.value
    assert (error.field, error.value, error.record_id) == (
        "campaign_id",
        "spring",
        "spring:contact:k1",
    )
    assert "'k1', 'k2'" in str(error)
    assert store.campaign_members.count() == 0


def test_a_contact_already_member_under_another_id_is_not_added_again(store):
    store.campaigns.add(Campaign(id="c", name="C"))
    store.contacts.add_many([Contact(id="k1"), Contact(id="k2")])
    store.campaign_members.add(CampaignMember(id="imported-7", campaign_id="c", contact_id="k1"))
    result = campaigns.add_members(store, "c", ids=["k1", "k2"], at=T0)
    assert [m.id for m in result.added] == ["c:contact:k2"]
    assert result.already_members == ("k1",)
    assert sorted(m.contact_id for m in store.campaign_members) == ["k1", "k2"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"campaign_id": "nope", "ids": ["k1"]}, ValidationError),
        ({"campaign_id": "c"}, ValidationError),
        ({"campaign_id": "c", "ids": ["k1"], "record_type": Opportunity}, ValidationError),
        ({"campaign_id": "c", "criteria": F.nonsense == 1}, CrmError),
    ],
)
def test_add_members_bad_input(kwargs, error):
    store = MemoryStore()
    store.campaigns.add(Campaign(id="c", name="C"))
    store.contacts.add(Contact(id="k1"))
    campaign_id = kwargs.pop("campaign_id")
    with pytest.raises(error):
        campaigns.add_members(store, campaign_id, at=T0, **kwargs)


def test_add_members_needs_aware_time():
    store = MemoryStore()
    store.campaigns.add(Campaign(id="c", name="C"))
    store.contacts.add(Contact(id="k1"))
    with pytest.raises(ValidationError):
        campaigns.add_members(store, "c", ids=["k1"], at=datetime(2026, 1, 1))


@settings(max_examples=40, deadline=None)
@given(
    opted=st.lists(st.booleans(), min_size=1, max_size=12),
    picked=st.lists(st.integers(0, 11), max_size=12),
    pre=st.lists(st.integers(0, 11), max_size=4),
    use_criteria=st.booleans(),
)
def test_opted_out_contacts_are_never_added(opted, picked, pre, use_criteria):
    store = MemoryStore()
    store.campaigns.add(Campaign(id="c", name="C"))
    n = len(opted)
    store.contacts.add_many(
        [Contact(id=f"k{i:02d}", opted_out=o, country="US") for i, o in enumerate(opted)]
    )
    # some contacts were members before (possibly before they opted out)
    before = sorted({f"k{i:02d}" for i in pre if i < n})
    store.campaign_members.add_many(
        [CampaignMember(id=f"pre-{k}", campaign_id="c", contact_id=k) for k in before]
    )
    ids = sorted({f"k{i:02d}" for i in picked if i < n})
    if use_criteria:
        result = campaigns.add_members(store, "c", criteria=F.country == "US", at=T0)
        requested = [f"k{i:02d}" for i in range(n)]
    else:
        if not ids:
            return
        result = campaigns.add_members(store, "c", ids=ids, at=T0)
        requested = ids
    out = {f"k{i:02d}" for i, o in enumerate(opted) if o}
    added = {m.contact_id for m in result.added}
    assert not added & out
    assert set(result.skipped) == (set(requested) & out) - set(before)
    assert all(reason == "contact opted out" for reason in result.skipped.values())
    assert added == set(requested) - out - set(before)
    assert set(result.already_members) == set(requested) & set(before)


# -- status history ----------------------------------------------------------------------


def _member_store():
    store = MemoryStore()
    store.campaigns.add(Campaign(id="c", name="C"))
    store.campaign_members.add(CampaignMember(id="m", campaign_id="c", contact_id="k"))
    return store


def test_status_moves_forward_and_keeps_history():
    store = _member_store()
    campaigns.set_status(store, "m", "sent", at=day(1))
    campaigns.set_status(store, "m", "opened", at=day(2))
    m = campaigns.set_status(store, "m", "converted", at=day(4))
    assert m.status.value == "converted"
    # a conversion is a response too: responded_at is stamped with the conversion
    assert (m.sent_at, m.opened_at, m.responded_at, m.converted_at) == (
        day(1),
        day(2),
        day(4),
        day(4),
    )
    assert campaigns.set_status(store, "m", "converted", at=day(5)).version == m.version


def test_converted_after_responded_keeps_the_response_time():
    store = _member_store()
    campaigns.set_status(store, "m", "responded", at=day(1))
    m = campaigns.set_status(store, "m", "converted", at=day(3))
    assert (m.responded_at, m.converted_at) == (day(1), day(3))


@pytest.mark.parametrize("how", ["set_status", "stored"])
def test_member_converted_straight_is_a_response_and_a_touch(how):
    store = _member_store()
    store.campaigns.put(Campaign(id="c", name="C", actual_cost=Decimal(100)))
    if how == "set_status":
        campaigns.set_status(store, "m", "converted", at=day(2))
    else:  # written straight to the store without responded_at: read as responded then
        member = store.campaign_members.get("m")
        store.campaign_members.update(
            CampaignMember(
                id="m",
                campaign_id="c",
                contact_id="k",
                status="converted",
                converted_at=day(2),
                version=member.version,
            )
        )
    store.opportunities.add(
        Opportunity(id="o", name="O", contact_id="k", amount=300, status="won", created_at=day(5))
    )
    row = campaigns.performance(store).row("c")
    assert (row["responses"], row["conversions"], row["won_revenue"]) == (1, 1, Decimal(300))
    assert campaigns.credits(store)["member_id"].tolist() == ["m"]


@pytest.mark.parametrize("back", ["targeted", "sent", "opened"])
def test_status_refuses_to_go_back(back):
    store = _member_store()
    campaigns.set_status(store, "m", "responded", at=day(1))
    with pytest.raises(ValidationError) as info:
        campaigns.set_status(store, "m", back, at=day(2))
    assert info.value.record_id == "m"
    assert store.campaign_members.get("m").status.value == "responded"


def test_unsubscribe_from_anywhere_and_final():
    store = _member_store()
    campaigns.set_status(store, "m", "responded", at=day(1))
    m = campaigns.set_status(store, "m", "unsubscribed", at=day(2))
    assert m.unsubscribed_at == day(2)
    assert m.responded_at == day(1)
    with pytest.raises(ValidationError):
        campaigns.set_status(store, "m", "converted", at=day(3))


def test_status_bad_values():
    store = _member_store()
    with pytest.raises(ValidationError):
        campaigns.set_status(store, "m", "bogus", at=day(1))
    with pytest.raises(NotFound):
        campaigns.set_status(store, "ghost", "sent", at=day(1))
    campaigns.set_status(store, "m", "sent", at=day(3))
    with pytest.raises(ValidationError):  # earlier than the latest change
        campaigns.set_status(store, "m", "opened", at=day(2))


# -- attribution -------------------------------------------------------------------------


def _attribution_store(touch_days, amount=1000, created=10):
    """One opportunity for contact k; campaign c<i> touches it at touch_days[i]."""
    store = MemoryStore()
    for i, d in enumerate(touch_days):
        store.campaigns.add(Campaign(id=f"c{i}", name=f"C{i}", actual_cost=100))
        store.campaign_members.add(
            CampaignMember(
                id=f"m{i}",
                campaign_id=f"c{i}",
                contact_id="k",
                status="responded",
                responded_at=day(d),
            )
        )
    store.opportunities.add(
        Opportunity(id="o", name="O", contact_id="k", amount=amount, created_at=day(created))
    )
    return store


# Hand-computed credits for a 1000 deal: touches at days 1, 2, 3 (campaigns c0, c1, c2).
# Linear: 333.33 each and one cent left, which goes to the earliest touch (equal remainders).
THREE = {
    "first_touch": ["1000.00", "0.00", "0.00"],
    "last_touch": ["0.00", "0.00", "1000.00"],
    "linear": ["333.34", "333.33", "333.33"],
    "u_shaped": ["400.00", "200.00", "400.00"],
}


@pytest.mark.parametrize("model", campaigns.MODELS)
def test_three_touch_worked_example(model):
    store = _attribution_store([1, 2, 3])
    table = campaigns.attribution(store, model)
    assert table["campaign_id"].tolist() == ["c0", "c1", "c2"]
    assert table["amount"].tolist() == [Decimal(x) for x in THREE[model]]
    assert table["pipeline"].tolist() == [Decimal(x) for x in THREE[model]]
    assert sum(table["amount"]) == Decimal(1000)
    credit = campaigns.credits(store, model)["credit"]
    assert all(isinstance(c, Decimal) for c in credit)
    assert sum(credit) == Decimal(1000)


def test_u_shaped_five_and_two_and_one_touches():
    five = campaigns.attribution(_attribution_store([5, 1, 3, 2, 4]), "u_shaped")
    # touch order by day: c1 (1), c3 (2), c2 (3), c4 (4), c0 (5); the middle three share
    # 200.00 as 66.66 each plus two cents, to the two earliest of them (c3, c2)
    assert five["amount"].tolist() == [
        Decimal("400.00"),
        Decimal("400.00"),
        Decimal("66.67"),
        Decimal("66.67"),
        Decimal("66.66"),
    ]
    two = campaigns.attribution(_attribution_store([2, 1], amount="0.03"), "u_shaped")
    assert two["amount"].tolist() == [Decimal("0.01"), Decimal("0.02")]  # c1 touched first
    one = campaigns.attribution(_attribution_store([1]), "u_shaped")
    assert one["amount"].tolist() == [Decimal("1000.00")]


def test_credits_use_the_minor_unit_of_each_currency():
    store = _attribution_store([1, 2, 3], amount=1000)
    store.opportunities.add(
        Opportunity(
            id="yen", name="Y", contact_id="k", amount=1000, currency="JPY", created_at=day(10)
        )
    )
    store.opportunities.add(
        Opportunity(
            id="dinar", name="D", contact_id="k", amount=1, currency="KWD", created_at=day(10)
        )
    )
    table = campaigns.credits(store, "linear")
    by_deal: dict[str, list[Decimal]] = {}
    for deal, credit in zip(table["opportunity_id"], table["credit"], strict=True):
        by_deal.setdefault(str(deal), []).append(credit)
    assert by_deal["yen"] == [Decimal(334), Decimal(333), Decimal(333)]
    assert by_deal["dinar"] == [Decimal("0.334"), Decimal("0.333"), Decimal("0.333")]
    assert by_deal["o"] == [Decimal("333.34"), Decimal("333.33"), Decimal("333.33")]
    assert table["currency"].tolist().count("JPY") == 3


def test_minor_digits_and_to_decimal():
    assert campaigns.minor_digits(["USD", "JPY", "BHD", "CLF", "zzz"]).tolist() == [2, 0, 3, 4, 2]
    assert campaigns.minor_digits([]).tolist() == []
    assert campaigns.to_decimal([-5, 123], [2, 3]).tolist() == [
        Decimal("-0.05"),
        Decimal("0.123"),
    ]


def test_touches_after_creation_or_without_response_do_not_count():
    store = _attribution_store([1, 12])  # c1 responded after the deal was created
    store.campaigns.add(Campaign(id="c9", name="never responded"))
    store.campaign_members.add(CampaignMember(id="m9", campaign_id="c9", contact_id="k"))
    table = campaigns.attribution(store, "linear")
    assert dict(zip(table["campaign_id"].tolist(), table["amount"].tolist(), strict=True)) == {
        "c0": Decimal(1000),
        "c1": Decimal(0),
        "c9": Decimal(0),
    }


def test_touches_match_by_lead_and_account_once():
    store = MemoryStore()
    store.campaigns.add_many([Campaign(id="a", name="A"), Campaign(id="b", name="B")])
    store.campaign_members.add_many(
        [
            CampaignMember(id="m1", campaign_id="a", lead_id="l", responded_at=day(1)),
            # matches by contact AND account: still one touch
            CampaignMember(
                id="m2", campaign_id="b", contact_id="k", account_id="acc", responded_at=day(2)
            ),
            CampaignMember(id="m3", campaign_id="b", account_id="other", responded_at=day(2)),
        ]
    )
    store.opportunities.add(
        Opportunity(
            id="o",
            name="O",
            lead_id="l",
            contact_id="k",
            account_id="acc",
            amount=900,
            status="won",
            created_at=day(5),
        )
    )
    table = campaigns.credits(store, "linear")
    assert sorted(table["member_id"].tolist()) == ["m1", "m2"]
    assert table["credit"].tolist() == [Decimal(450), Decimal(450)]
    attributed = campaigns.attribution(store, "linear")
    assert attributed["won_revenue"].tolist() == [Decimal(450), Decimal(450)]
    assert attributed["pipeline"].tolist() == [Decimal(0), Decimal(0)]


def test_unknown_model_raises():
    with pytest.raises(ValidationError):
        campaigns.attribution(MemoryStore(), "w_shaped")


def _u_shaped(r, k):
    if k <= 2:
        return Fraction(1, k)
    return Fraction(2, 5) if r in (0, k - 1) else Fraction(1, 5 * (k - 2))


_SHARES = {
    "first_touch": lambda r, k: Fraction(int(r == 0)),
    "last_touch": lambda r, k: Fraction(int(r == k - 1)),
    "linear": lambda r, k: Fraction(1, k),
    "u_shaped": _u_shaped,
}


def _reference(members, opps, model):
    """Per-opportunity credits in minor units by touch, written as a plain Python loop:
    exact shares as fractions, whole units first, the rest to the largest remainders
    (ties to the earlier touch)."""
    out = {}
    for o, (oc, ol, oa, minor, created) in enumerate(opps):
        touches = []
        for m, (mc, ml, ma, responded, _campaign) in enumerate(members):
            same = (mc and mc == oc) or (ml and ml == ol) or (ma and ma == oa)
            if same and responded is not None and responded < created:
                touches.append((responded, m))
        touches.sort()
        k = len(touches)
        quotas = [minor * _SHARES[model](r, k) for r in range(k)]
        whole = [q.numerator // q.denominator for q in quotas]
        left = minor - sum(whole)
        by_remainder = sorted(range(k), key=lambda r: (-(quotas[r] - whole[r]), r))
        for r in by_remainder[:left]:
            whole[r] += 1
        for r, (_, m) in enumerate(touches):
            out[(o, m)] = whole[r]
    return out


_DIGITS = {"USD": 2, "JPY": 0, "KWD": 3}


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    model=st.sampled_from(campaigns.MODELS),
)
def test_credits_are_exact_and_add_up_to_each_amount(data, model):
    keys = st.sampled_from(["", "x", "y", "z"])
    members = data.draw(
        st.lists(
            st.tuples(
                keys,
                keys,
                keys,
                st.one_of(st.none(), st.integers(0, 20)),
                st.sampled_from(["c0", "c1", "c2"]),
            ),
            max_size=15,
        )
    )
    opps = data.draw(
        st.lists(
            st.tuples(
                keys,
                keys,
                keys,
                st.integers(0, 10**11),
                st.integers(0, 20),
                st.sampled_from(sorted(_DIGITS)),
            ),
            min_size=1,
            max_size=6,
        )
    )
    member_cols = {
        "contact_id": np.array([m[0] for m in members], dtype=str),
        "lead_id": np.array([m[1] for m in members], dtype=str),
        "account_id": np.array([m[2] for m in members], dtype=str),
        "responded_at": np.array(
            [np.datetime64("NaT") if m[3] is None else np.datetime64(m[3], "D") for m in members],
            dtype="datetime64[us]",
        ),
    }
    amounts = [Decimal(o[3]).scaleb(-_DIGITS[o[5]]) for o in opps]
    opp_cols = {
        "contact_id": np.array([o[0] for o in opps], dtype=str),
        "lead_id": np.array([o[1] for o in opps], dtype=str),
        "account_id": np.array([o[2] for o in opps], dtype=str),
        "amount": np.array([float(a) for a in amounts], dtype=float),
        "currency": np.array([o[5] for o in opps], dtype=str),
        "created_at": np.array([np.datetime64(o[4], "D") for o in opps], dtype="datetime64[us]"),
    }
    got = campaigns.touch_credits(member_cols, opp_cols, model)
    assert got["credit_minor"].dtype == np.int64
    found = {
        (int(o), int(m)): int(c)
        for o, m, c in zip(got["opportunity"], got["member"], got["credit_minor"], strict=True)
    }
    reference = [(o[0], o[1], o[2], o[3], o[4]) for o in opps]
    assert found == _reference(members, reference, model)
    credit = campaigns.to_decimal(got["credit_minor"], got["digits"])
    for o in np.unique(got["opportunity"]):  # Decimal credits add up exactly to the amount
        assert sum(credit[got["opportunity"] == o]) == amounts[o]
        assert got["weight"][got["opportunity"] == o].sum() == pytest.approx(1.0)
    table = campaigns.attribution_from_columns(
        {**member_cols, "campaign_id": np.array([m[4] for m in members], dtype=str)},
        {**opp_cols, "status": np.full(len(opps), "open")},
        model,
    )
    touched = np.unique(got["opportunity"]).tolist()
    assert sum(table["amount"]) == sum((amounts[o] for o in touched), Decimal(0))


@settings(max_examples=40, deadline=None)
@given(
    cents=st.lists(st.integers(0, 10**13), min_size=1, max_size=4),
    touches=st.integers(1, 7),
    model=st.sampled_from(campaigns.MODELS),
)
def test_stored_decimal_amounts_are_credited_to_the_cent(cents, touches, model):
    """Amounts like 0.29 that float cannot hold exactly still add up to the cent."""
    store = MemoryStore()
    store.campaigns.add_many([Campaign(id=f"c{i}", name=f"C{i}") for i in range(touches)])
    store.campaign_members.add_many(
        [
            CampaignMember(id=f"m{i}", campaign_id=f"c{i}", contact_id="k", responded_at=day(i))
            for i in range(touches)
        ]
    )
    amounts = [Decimal(c).scaleb(-2) for c in cents]
    store.opportunities.add_many(
        [
            Opportunity(id=f"o{j}", name="O", contact_id="k", amount=a, created_at=day(30))
            for j, a in enumerate(amounts)
        ]
    )
    table = campaigns.credits(store, model)
    for j, amount in enumerate(amounts):
        mine = table["credit"][table["opportunity_id"] == f"o{j}"]
        assert len(mine) == touches
        assert sum(mine) == amount
        assert all(c == c.quantize(Decimal("0.01")) for c in mine)


# -- performance -------------------------------------------------------------------------


def test_performance_costs_and_roi(store):
    store.campaigns.add_many(
        [
            Campaign(id="a", name="A", actual_cost=Decimal(1000)),
            Campaign(id="b", name="B"),
        ]
    )
    store.contacts.add_many([Contact(id=f"k{i}") for i in range(4)])
    campaigns.add_members(store, "a", ids=["k0", "k1", "k2", "k3"], at=T0)
    campaigns.set_status(store, "a:contact:k0", "responded", at=day(1))
    campaigns.set_status(store, "a:contact:k1", "responded", at=day(1))
    campaigns.set_status(store, "a:contact:k1", "converted", at=day(2))
    campaigns.set_status(store, "a:contact:k2", "unsubscribed", at=day(1))
    store.opportunities.add_many(
        [
            Opportunity(
                id="o1", name="1", contact_id="k0", amount=3000, status="won", created_at=day(5)
            ),
            Opportunity(id="o2", name="2", contact_id="k1", amount=2000, created_at=day(5)),
        ]
    )
    perf = campaigns.performance(store)
    a = perf.row("a")
    assert a["members"] == 4
    assert (a["status_targeted"], a["status_responded"], a["status_converted"]) == (1, 1, 1)
    assert a["status_unsubscribed"] == 1
    assert (a["responses"], a["conversions"]) == (2, 1)
    assert a["response_rate"] == pytest.approx(0.5)
    assert a["cost_per_lead"] == pytest.approx(500)  # 1000 / 2 responses
    assert a["opportunities"] == pytest.approx(2)
    assert a["cost_per_opportunity"] == pytest.approx(500)
    assert (a["pipeline"], a["won_revenue"]) == (Decimal(2000), Decimal(3000))
    assert a["roi"] == pytest.approx((3000 - 1000) / 1000)
    b = perf.row("b")
    assert b["members"] == 0
    assert np.isnan(b["roi"])
    assert np.isnan(b["cost_per_lead"])
    assert perf.missing["no_cost"] == 1
    frame = perf.to_pandas()
    assert frame.loc["a", "won_revenue"] == 3000


# -- ABM ---------------------------------------------------------------------------------


def test_sync_targets_reports_entering_and_leaving():
    store = MemoryStore()
    store.campaigns.add(Campaign(id="abm", name="ABM"))
    store.accounts.add_many(
        [Account(id=n, name=n, employees=e) for n, e in [("a", 900), ("b", 50), ("c", 2000)]]
    )
    first = campaigns.sync_targets(store, "abm", criteria=F.employees >= 500, at=T0)
    assert sorted(first.entered) == ["a", "c"]
    assert first.left == ()
    campaigns.set_status(store, "abm:account:c", "sent", at=day(1))
    for account_id, employees in [("a", 10), ("b", 600), ("c", 30)]:
        acc = store.accounts.get(account_id)
        store.accounts.update(
            acc.__class__(id=acc.id, name=acc.name, employees=employees, version=acc.version)
        )
    second = campaigns.sync_targets(store, "abm", criteria=F.employees >= 500, at=day(2))
    assert second.entered == ("b",)
    assert second.left == ("a",)  # still targeted: its member is deleted
    assert second.kept == ("c",)  # has history: the member stays, reported as kept
    assert second.unchanged == 0
    remaining = sorted(m.account_id for m in store.campaign_members)
    assert remaining == ["b", "c"]
    assert store.campaign_members.get("abm:account:c").custom == {
        "left_targets_at": day(2).isoformat()
    }
    assert [r["account_id"] for r in campaigns.coverage(store, "abm").rows()] == ["b"]
    # a kept account is reported once: later syncs leave it alone while it stays out
    third = campaigns.sync_targets(store, "abm", criteria=F.employees >= 500, at=day(3))
    assert (third.entered, third.left, third.kept, third.unchanged) == ((), (), (), 1)
    # when it comes back it enters again, and the mark is cleared
    acc = store.accounts.get("c")
    store.accounts.update(acc.__class__(id="c", name="c", employees=5000, version=acc.version))
    fourth = campaigns.sync_targets(store, "abm", criteria=F.employees >= 500, at=day(4))
    assert (fourth.entered, fourth.left, fourth.kept, fourth.unchanged) == (("c",), (), (), 1)
    assert store.campaign_members.get("abm:account:c").custom == {}
    assert store.campaign_members.count() == 2


def _segments():
    return Segments(
        ids=np.array(["a", "b", "c", "d"]),
        labels=np.array(["hot", "warm", "cold", "hot"]),
        names=("hot", "warm", "cold"),
    )


def test_sync_targets_with_segments_targets_the_union_of_the_named_ones():
    store = MemoryStore()
    store.campaigns.add(Campaign(id="abm", name="ABM"))
    store.accounts.add_many([Account(id=n, name=n) for n in "abcd"])
    synced = campaigns.sync_targets(store, "abm", ids=_segments(), segments=["hot", "warm"], at=T0)
    assert synced.entered == ("a", "b", "d")
    again = campaigns.sync_targets(store, "abm", ids=_segments(), segments="hot", at=day(1))
    assert (again.entered, again.left, again.unchanged) == ((), ("b",), 2)


@pytest.mark.parametrize(
    "segments", [None, ["lukewarm"], ["hot", "nope"]], ids=["unnamed", "unknown", "one-unknown"]
)
def test_sync_targets_with_segments_refuses_an_unnamed_or_unknown_choice(segments):
    store = MemoryStore()
    store.campaigns.add(Campaign(id="abm", name="ABM"))
    store.accounts.add_many([Account(id=n, name=n) for n in "abcd"])
    with pytest.raises(ValidationError) as info:
        campaigns.sync_targets(store, "abm", ids=_segments(), segments=segments, at=T0)
    assert "segments" in str(info.value)
    assert store.campaign_members.count() == 0


def test_segments_keyword_needs_a_segments_object():
    store = MemoryStore()
    store.campaigns.add(Campaign(id="abm", name="ABM"))
    store.accounts.add(Account(id="a", name="a"))
    with pytest.raises(ValidationError, match="segments"):
        campaigns.add_members(
            store, "abm", ids=["a"], segments=["hot"], record_type=Account, at=T0
        )


def test_engagement_rolls_up_to_family_and_coverage():
    store = MemoryStore()
    store.accounts.add_many(
        [
            Account(id="hq", name="HQ"),
            Account(id="eu", name="EU", parent_id="hq"),
            Account(id="fr", name="FR", parent_id="eu"),
            Account(id="solo", name="Solo"),
        ]
    )
    store.contacts.add_many(
        [
            Contact(id="k1", account_id="eu"),
            Contact(id="k2", account_id="fr"),
            Contact(id="k3", account_id="solo"),
        ]
    )
    store.leads.add(Lead(id="l1", converted_account_id="hq"))
    store.campaigns.add_many([Campaign(id="c", name="C"), Campaign(id="abm", name="ABM")])
    campaigns.add_members(store, "c", ids=["k1", "k2", "k3"], at=T0)
    campaigns.add_members(store, "c", ids=["l1"], record_type=Lead, at=T0)
    for member_id in ("c:contact:k1", "c:contact:k2", "c:lead:l1"):
        campaigns.set_status(store, member_id, "responded", at=day(1))
    table = campaigns.account_engagement(store, "c")
    # by hand: engaged hq 1 (lead), eu 1, fr 1, solo 0; family sums over subtrees
    expected = {"hq": (1, 3, 3), "eu": (1, 2, 2), "fr": (1, 1, 1), "solo": (0, 0, 1)}
    for account_id, (engaged, family, members_family) in expected.items():
        row = table.row(account_id)
        assert (row["engaged"], row["engaged_family"], row["members_family"]) == (
            engaged,
            family,
            members_family,
        )
    assert table.row("fr")["ultimate_parent_id"] == "hq"

    campaigns.add_members(store, "abm", ids=["eu", "solo", "hq"], record_type=Account, at=T0)
    store.activities.add(Activity(id="a1", kind="meeting", at=day(2), account_id="solo"))
    store.activities.add(Activity(id="a2", kind="call", at=day(2), account_id="hq"))
    store.opportunities.add(Opportunity(id="o", name="O", account_id="eu"))
    cover = campaigns.coverage(store, "abm")
    rows = {r["account_id"]: r for r in cover.rows()}
    assert (
        rows["eu"]["engaged_contact"],
        rows["eu"]["meeting"],
        rows["eu"]["open_opportunity"],
    ) == (True, False, True)
    assert (rows["hq"]["engaged_contact"], rows["hq"]["meeting"]) == (False, False)
    assert (rows["solo"]["engaged_contact"], rows["solo"]["meeting"]) == (False, True)
    assert campaigns.coverage(store, "abm", since=day(3))["meeting"].sum() == 0


def test_section_does_not_touch_the_store_and_is_stable():
    import io

    store = MemoryStore()
    store.accounts.add(Account(id="x", name="X"))
    outs = []
    for _ in range(2):
        buffer = io.StringIO()
        campaigns.section(store, buffer)
        outs.append(buffer.getvalue())
    assert outs[0] == outs[1]
    assert "== Partners ==" in outs[0]
    assert "conflict" not in outs[0].split("\n")[-2]
    assert [a.id for a in store.accounts] == ["x"]
    assert store.campaigns.count() == 0


def test_plot_performance_draws_one_bar_per_campaign_and_measure():
    import matplotlib

    matplotlib.use("Agg")
    store = MemoryStore()
    store.campaigns.add_many(
        [Campaign(id="a", name="A", actual_cost=100), Campaign(id="b", name="B")]
    )
    ax = campaigns.plot_performance(store)
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 6  # 2 campaigns x (cost, pipeline, won revenue)
    assert sorted(heights) == [0, 0, 0, 0, 0, 100]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]


def test_touch_credits_names_missing_columns():
    members = {"contact_id": np.array(["k"]), "responded_at": np.array(["2026-01-01"], "M8[us]")}
    opps = {"contact_id": np.array(["k"])}
    with pytest.raises(ValidationError, match="lead_id"):
        campaigns.touch_credits(members, opps, "linear")
