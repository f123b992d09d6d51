"""Activities: logging, timelines (with family and contacts), last touch and counts.

Expectations are worked out by hand or by an independent pure-Python loop over the records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import Account, Activity, Contact, MemoryStore, SQLiteStore, ValidationError
from crmkit.activities import (
    activity_counts,
    last_touch,
    log,
    log_many,
    timeline,
    timeline_page,
)
from crmkit.errors import BatchError

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryStore | SQLiteStore]:
    s: MemoryStore | SQLiteStore = (
        MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "a.db")
    )
    s.accounts.add_many(
        [
            Account(id="hq", name="HQ"),
            Account(id="eu", name="EU", parent_id="hq"),
            Account(id="fr", name="FR", parent_id="eu"),
            Account(id="other", name="Other"),
        ]
    )
    s.contacts.add_many(
        [Contact(id="c-fr", account_id="fr"), Contact(id="c-other", account_id="other")]
    )
    yield s
    s.close()


def test_log_rejects_unknown_field_and_naive_time(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="colour"):
        log(store, "call", T0, id="x", colour="red")
    with pytest.raises(ValidationError, match="timezone-aware"):
        log(store, "call", datetime(2026, 1, 5), id="y")
    assert len(store.activities) == 0


def test_log_many_is_all_or_nothing(store: MemoryStore) -> None:
    good = Activity(id="a", kind="call", at=T0)
    with pytest.raises(BatchError):
        log_many(store, [good, Activity(id="a", kind="note", at=T0)])
    assert len(store.activities) == 0


def test_timeline_newest_first_ties_by_id_and_paging(store: MemoryStore) -> None:
    log(store, "call", T0, id="b", account_id="hq")
    log(store, "note", T0, id="a", account_id="hq")
    log(store, "meeting", T0 + timedelta(hours=1), id="c", account_id="hq")
    log(store, "call", T0 + timedelta(hours=2), id="d", account_id="other")
    assert [a.id for a in timeline(store, "account", "hq")] == ["c", "a", "b"]
    assert [a.id for a in timeline(store, "account", "hq", limit=2, offset=1)] == ["a", "b"]
    assert [a.id for a in timeline(store, "account", "hq", kinds=["call", "meeting"])] == [
        "c",
        "b",
    ]
    window = timeline(store, "account", "hq", since=T0, until=T0 + timedelta(hours=1))
    assert [a.id for a in window] == ["a", "b"]


def test_timeline_family_and_contacts(store: MemoryStore) -> None:
    log(store, "call", T0, id="1", account_id="fr")
    log(store, "email_replied", T0 + timedelta(minutes=1), id="2", contact_id="c-fr")
    log(store, "email_replied", T0 + timedelta(minutes=2), id="3", contact_id="c-other")
    log(store, "call", T0 + timedelta(minutes=3), id="4", account_id="hq")
    assert [a.id for a in timeline(store, "account", "eu")] == []
    assert [a.id for a in timeline(store, "account", "eu", include_family=True)] == ["4", "1"]
    both = timeline(store, "account", "eu", include_family=True, include_contacts=True)
    assert [a.id for a in both] == ["4", "2", "1"]
    assert [a.id for a in timeline(store, "contact", "c-fr")] == ["2"]


def test_timeline_bad_ref_kind(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="ref_kind"):
        timeline(store, "team", "x")
    with pytest.raises(ValidationError, match="kind"):
        timeline(store, "account", "hq", kinds=["telegram"])


def test_last_touch_and_counts_by_hand(store: MemoryStore) -> None:
    log(store, "call", T0, id="1", account_id="hq", actor_id="rep")
    log(store, "web_visit", T0 + timedelta(days=2), id="2", account_id="hq")
    log(store, "call", T0 + timedelta(days=1), id="3", account_id="fr", actor_id="rep")
    log(store, "note", T0 + timedelta(days=3), id="4")
    lt = last_touch(store)
    assert lt["account_id"].tolist() == ["fr", "hq"]
    assert lt["at"].tolist() == [
        (T0 + timedelta(days=1)).replace(tzinfo=None),
        (T0 + timedelta(days=2)).replace(tzinfo=None),
    ]
    mine = last_touch(store, outbound_only=True)
    assert mine["at"][1] == np.datetime64(T0.replace(tzinfo=None), "us")
    counts = activity_counts(store)
    assert counts["account_id"].tolist() == ["fr", "hq"]
    assert counts["total"].tolist() == [1, 2]
    assert counts["call"].tolist() == [1, 1]
    assert counts["web_visit"].tolist() == [0, 1]
    recent = activity_counts(store, since=T0 + timedelta(days=1), kinds=["call"])
    assert recent["account_id"].tolist() == ["fr"]


def test_counts_reject_bad_by(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="by"):
        activity_counts(store, by="kind")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", None]),
            st.sampled_from(["call", "meeting", "note"]),
            st.integers(0, 1000),
        ),
        max_size=40,
    )
)
def test_counts_and_last_touch_match_a_loop(rows: list[tuple[str | None, str, int]]) -> None:
    store = MemoryStore()
    acts = [
        Activity(id=f"x{i:03d}", kind=k, at=T0 + timedelta(hours=h), account_id=acc)
        for i, (acc, k, h) in enumerate(rows)
    ]
    log_many(store, acts)
    expected_total = Counter(a.account_id for a in acts if a.account_id)
    counts = activity_counts(store)
    assert dict(zip(counts["account_id"].tolist(), counts["total"].tolist(), strict=True)) == (
        dict(expected_total)
    )
    expected_call = Counter(a.account_id for a in acts if a.account_id and a.kind == "call")
    calls = activity_counts(store, kinds=["call"])
    assert dict(zip(calls["account_id"].tolist(), calls["call"].tolist(), strict=True)) == (
        dict(expected_call)
    )
    assert calls["total"].tolist() == calls["call"].tolist()
    latest: dict[str, datetime] = {}
    for a in acts:
        if a.account_id:
            latest[a.account_id] = max(latest.get(a.account_id, a.at), a.at)
    lt = last_touch(store)
    assert dict(zip(lt["account_id"].tolist(), lt["at"].tolist(), strict=True)) == {
        k: v.replace(tzinfo=None) for k, v in latest.items()
    }


# -- last touch through contacts; timeline pages (issue 13, item 15) -----------------------


def test_last_touch_counts_an_activity_logged_on_a_contact_for_its_account(
    store: MemoryStore,
) -> None:
    log(store, "call", T0, id="1", account_id="other")
    log(store, "email_replied", T0 + timedelta(days=1), id="2", contact_id="c-other")
    log(store, "meeting", T0 + timedelta(days=2), id="3", contact_id="c-fr")
    log(store, "note", T0 + timedelta(days=3), id="4", contact_id="nobody")  # unknown contact
    # an activity with its own account keeps it, even if the contact is elsewhere
    log(store, "call", T0 + timedelta(days=4), id="5", account_id="hq", contact_id="c-fr")
    lt = last_touch(store)
    assert lt["account_id"].tolist() == ["fr", "hq", "other"]
    assert lt["at"].tolist() == [
        (T0 + timedelta(days=2)).replace(tzinfo=None),
        (T0 + timedelta(days=4)).replace(tzinfo=None),
        (T0 + timedelta(days=1)).replace(tzinfo=None),
    ]


def test_timeline_returns_everything_by_default(store: MemoryStore) -> None:
    log_many(
        store,
        [Activity(id=f"x{i:03d}", kind="call", at=T0, account_id="hq") for i in range(120)],
    )
    assert len(timeline(store, "account", "hq")) == 120


@settings(max_examples=25, deadline=None)
@given(
    hours=st.lists(st.integers(0, 5), max_size=30),
    limit=st.integers(1, 7),
)
def test_timeline_pages_cover_everything_once_in_order(hours: list[int], limit: int) -> None:
    store = MemoryStore()
    acts = [
        Activity(id=f"x{i:02d}", kind="call", at=T0 + timedelta(hours=h), account_id="hq")
        for i, h in enumerate(hours)
    ]
    log_many(store, acts)
    expected = [a.id for a in sorted(acts, key=lambda a: (-a.at.timestamp(), a.id))]
    seen: list[str] = []
    cursor = None
    while True:
        page = timeline_page(store, "account", "hq", cursor=cursor, limit=limit)
        assert len(page.items) <= limit
        seen += [a.id for a in page.items]
        assert page.has_more == (len(seen) < len(expected))
        if not page.has_more:
            assert page.next_cursor is None
            break
        cursor = page.next_cursor
    assert seen == expected


def test_timeline_cursor_is_stable_when_newer_activities_arrive(store: MemoryStore) -> None:
    for i in range(4):
        log(store, "call", T0 + timedelta(hours=i), id=f"x{i}", account_id="hq")
    first = timeline_page(store, "account", "hq", limit=2)
    assert [a.id for a in first.items] == ["x3", "x2"]
    log(store, "call", T0 + timedelta(hours=9), id="new", account_id="hq")
    second = timeline_page(store, "account", "hq", limit=2, cursor=first.next_cursor)
    assert [a.id for a in second.items] == ["x1", "x0"]
    assert not second.has_more


def test_timeline_page_rejects_a_bad_cursor_and_limit(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="cursor"):
        timeline_page(store, "account", "hq", cursor="yesterday")
    with pytest.raises(ValidationError, match="limit"):
        timeline_page(store, "account", "hq", limit=0)
