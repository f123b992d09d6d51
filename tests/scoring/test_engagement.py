"""Engagement against a naive pure-Python implementation, and its input handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import HierarchyCycleError, ValidationError
from crmkit.scoring import engagement_scores

NOW = datetime(2026, 3, 1, tzinfo=UTC)
KINDS = ["meeting", "call", "email_opened", "web_visit", "note"]


def naive(events, weights, half_lives, now, window=None, caps=None, total_cap=None):
    """One event at a time, in plain Python: the definition of the score."""
    per_kind: dict[str, dict[str, float]] = {}
    for account, kind, at in events:
        if not account or at is None or at > now or kind not in weights:
            continue
        age = (now - at).total_seconds() / 86_400
        if window is not None and age > window:
            continue
        hl = half_lives.get(kind)
        value = weights[kind] * (0.5 ** (age / hl) if hl else 1.0)
        per_kind.setdefault(account, {}).setdefault(kind, 0.0)
        per_kind[account][kind] += value
    totals = {}
    for account, kinds in per_kind.items():
        total = 0.0
        for kind, value in kinds.items():
            total += min(value, caps[kind]) if caps and kind in caps else value
        if total_cap is not None:
            total = min(total, total_cap)
        totals[account] = total
    return totals


def columns(events):
    return {
        "account_id": np.array([a for a, _, _ in events], dtype=str),
        "kind": np.array([k for _, k, _ in events], dtype=str),
        "at": np.array(
            [np.datetime64(t.replace(tzinfo=None), "us") for _, _, t in events],
            dtype="datetime64[us]",
        ),
    }


event = st.tuples(
    st.sampled_from(["a", "b", "c", ""]),
    st.sampled_from(KINDS),
    st.integers(-5 * 24, 400 * 24).map(lambda h: NOW - timedelta(hours=h)),
)


@settings(max_examples=60, deadline=None)
@given(
    events=st.lists(event, min_size=1, max_size=40),
    weights=st.dictionaries(
        st.sampled_from(KINDS[:4]), st.floats(0, 20, allow_nan=False), min_size=1
    ),
    half_lives=st.dictionaries(st.sampled_from(KINDS[:4]), st.floats(0.5, 200), max_size=4),
    window=st.none() | st.floats(1, 500),
    caps=st.none() | st.dictionaries(st.sampled_from(KINDS[:4]), st.floats(0, 30), max_size=2),
    total_cap=st.none() | st.floats(0, 50),
    explain=st.booleans(),
)
def test_matches_naive_python(events, weights, half_lives, window, caps, total_cap, explain):
    ids = np.array(["a", "b", "c"])
    result = engagement_scores(
        columns(events),
        weights=weights,
        half_lives=half_lives,
        window=window,
        caps=caps,
        total_cap=total_cap,
        now=NOW,
        ids=ids,
        explain=explain,
    )
    expected = naive(events, weights, half_lives, NOW, window, caps, total_cap)
    want = np.array([expected.get(i, 0.0) for i in ids])
    np.testing.assert_allclose(result.values, want, rtol=1e-9, atol=1e-9)
    assert np.isfinite(result.values).all()
    if explain:
        np.testing.assert_allclose(result.contributions.sum(axis=1), result.values, atol=1e-9)
    again = engagement_scores(
        columns(events),
        weights=weights,
        half_lives=half_lives,
        window=window,
        caps=caps,
        total_cap=total_cap,
        now=NOW,
        ids=ids,
        explain=explain,
    )
    np.testing.assert_array_equal(again.values, result.values)


def test_hand_computed_decay():
    events = [
        ("a", "meeting", NOW - timedelta(days=14)),  # one half-life: 10 * 0.5
        ("a", "meeting", NOW - timedelta(days=28)),  # two: 10 * 0.25
        ("a", "call", NOW + timedelta(days=1)),  # after now: ignored
        ("b", "call", NOW),  # 5
    ]
    r = engagement_scores(
        columns(events), weights={"meeting": 10, "call": 5}, half_lives={"meeting": 14}, now=NOW
    )
    assert r.ids.tolist() == ["a", "b"]
    assert r.values.tolist() == pytest.approx([7.5, 5.0], rel=1e-14)


def test_integer_codes_equal_strings():
    rng = np.random.default_rng(0)
    n = 2000
    codes = rng.integers(0, len(KINDS), n)
    acc = rng.integers(0, 50, n)
    at = np.datetime64("2026-03-01T00:00:00", "us") - rng.integers(0, 10**13, n).astype(
        "timedelta64[us]"
    )
    weights = {"meeting": 3.0, "call": 2.0, "email_opened": 0.5}
    as_text = engagement_scores(
        {"account_id": acc, "kind": np.array(KINDS)[codes], "at": at},
        weights=weights,
        half_lives=20,
        now=NOW,
        ids=50,
    )
    as_codes = engagement_scores(
        {"account_id": acc, "kind": codes, "at": at},
        weights=weights,
        half_lives=20,
        now=NOW,
        ids=50,
        kind_names=KINDS,
    )
    np.testing.assert_allclose(as_text.values, as_codes.values, rtol=1e-12)


def test_unknown_kinds_that_look_like_known_ones_count_zero():
    # "email_snet" shares the characters the fast lookup keys on with "email_sent"
    kinds = np.array(["email_sent", "email_snet", "email_sen", "meeting", "meetinG"])
    cols = {
        "account_id": np.array(["a", "b", "c", "d", "e"]),
        "kind": kinds,
        "at": np.full(5, np.datetime64("2026-03-01", "us")),
    }
    r = engagement_scores(
        cols, weights={"email_sent": 1.0, "meeting": 2.0}, now=NOW, ids=["a", "b", "c", "d", "e"]
    )
    assert r.values.tolist() == [1.0, 0.0, 0.0, 2.0, 0.0]


def test_from_store_with_contacts_and_hierarchy(crm):
    events = crm.activities.columns(["account_id", "contact_id", "kind", "at"])
    contacts = crm.contacts.columns(["id", "account_id"])
    accounts = crm.accounts.columns(["id", "parent_id"])
    weights = {"meeting": 5.0, "call": 3.0, "web_visit": 1.0}
    own = engagement_scores(
        events, weights=weights, half_lives=60, now=NOW, ids=accounts["id"], contacts=contacts
    )
    # by hand: credit contact-only events to the contact's account, then the naive sum
    contact_account = dict(
        zip(contacts["id"].tolist(), contacts["account_id"].tolist(), strict=True)
    )
    rows = []
    for a, c, k, t in zip(
        events["account_id"].tolist(),
        events["contact_id"].tolist(),
        events["kind"].tolist(),
        events["at"].tolist(),
        strict=True,
    ):
        rows.append((a or contact_account.get(c, ""), k, t.replace(tzinfo=UTC)))
    expected = naive(rows, weights, dict.fromkeys(weights, 60.0), NOW)
    want = np.array([expected.get(i, 0.0) for i in accounts["id"].tolist()])
    np.testing.assert_allclose(own.values, want, rtol=1e-9)

    rolled = engagement_scores(
        events,
        weights=weights,
        half_lives=60,
        now=NOW,
        ids=accounts["id"],
        contacts=contacts,
        parent_ids=accounts["parent_id"],
        explain=True,
    )
    parent = dict(zip(accounts["id"].tolist(), accounts["parent_id"].tolist(), strict=True))
    for i, account in enumerate(accounts["id"].tolist()):
        total = 0.0
        for j, other in enumerate(accounts["id"].tolist()):
            node = other
            while node:  # is `account` an ancestor-or-self of `other`?
                if node == account:
                    total += own.values[j]
                    break
                node = parent[node]
        assert rolled.values[i] == pytest.approx(total, rel=1e-9)
    np.testing.assert_allclose(rolled.contributions.sum(axis=1), rolled.values, rtol=1e-12)


def test_dataframe_input_and_custom_rollup():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "account_id": [0, 1, 1],
            "kind": pd.Categorical(["call", "call", "meeting"]),
            "at": pd.to_datetime(["2026-02-28", "2026-03-01", "2026-03-01"], utc=True),
        }
    )
    r = engagement_scores(
        frame, weights={"call": 2, "meeting": 4}, now=NOW, ids=2, rollup=lambda v: v * 10
    )
    assert r.values.tolist() == [20.0, 60.0]


def test_bad_input_is_reported():
    cols = columns([("a", "call", NOW)])
    with pytest.raises(ValidationError, match="meetings"):
        engagement_scores(cols, weights={"meetings": 1}, now=NOW)
    with pytest.raises(ValidationError, match="timezone-aware"):
        engagement_scores(cols, weights={"call": 1}, now=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="'at' is missing"):
        engagement_scores(
            {"account_id": cols["account_id"], "kind": cols["kind"]}, weights={"call": 1}, now=NOW
        )
    with pytest.raises(ValidationError, match="positive"):
        engagement_scores(cols, weights={"call": 1}, half_lives=-3, now=NOW)
    with pytest.raises(ValidationError, match="not among"):
        engagement_scores(cols, weights={"call": 1}, now=NOW, ids=["b"])


def test_hierarchy_cycle_is_refused():
    cols = columns([("a", "call", NOW)])
    with pytest.raises(HierarchyCycleError):
        engagement_scores(
            cols, weights={"call": 1}, now=NOW, ids=["a", "b", "c"], parent_ids=["b", "c", "a"]
        )


def test_empty_store_and_empty_columns():
    from crmkit.store import MemoryStore

    store = MemoryStore()
    events = store.activities.columns(["account_id", "contact_id", "kind", "at"])
    r = engagement_scores(events, weights={"call": 1}, now=NOW, explain=True)
    assert len(r) == 0
    r = engagement_scores(events, weights={"call": 1}, now=NOW, ids=["a", "b"])
    assert r.values.tolist() == [0.0, 0.0]
    with pytest.raises(ValidationError, match="total_cap"):
        engagement_scores(events, weights={"call": 1}, now=NOW, total_cap=-1)


def test_no_events_with_caps_scores_every_account_zero() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    columns = {
        "account_id": np.array([], dtype=object),
        "kind": np.array([], dtype=object),
        "at": np.array([], dtype="datetime64[us]"),
    }
    result = engagement_scores(
        columns, weights={"call": 1.0}, now=now, caps={"call": 5.0}, ids=["a", "b"]
    )
    assert result.values.dtype == np.float64
    assert result.values.tolist() == [0.0, 0.0]


def test_an_event_without_a_timestamp_counts_zero_without_a_warning() -> None:
    # pytest turns warnings into errors: an overflow in the decay would fail here
    now = datetime(2026, 1, 1, tzinfo=UTC)
    columns = {
        "account_id": np.array(["a", "b"], dtype=object),
        "kind": np.array(["call", "call"], dtype=object),
        "at": np.array(["2025-12-02", "NaT"], dtype="datetime64[us]"),
    }
    result = engagement_scores(columns, weights={"call": 8.0}, now=now, half_lives=30.0)
    assert dict(zip(result.ids.tolist(), result.values.tolist(), strict=True)) == {
        "a": pytest.approx(4.0),
        "b": 0.0,
    }
