"""Duplicate jobs, the incremental index and duplicate rules."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.dedupe import (
    DuplicateError,
    DuplicateIndex,
    DuplicatePolicy,
    MatchField,
    MatchRule,
    find_duplicate_pairs,
    find_duplicates,
    rules_from_data,
)
from crmkit.errors import ValidationError
from crmkit.records import Account, Contact, Lead
from crmkit.store import MemoryStore, SQLiteStore

EMAIL_RULE = MatchRule(id="email", record_type="Contact", fields=[{"field": "email"}])

emails = st.sampled_from(
    ["ada@x.com", "ADA@x.com ", "bob@y.org", "Bob@Y.org", "cy@z.net", None, "broken"]
)
contact_lists = st.lists(emails, max_size=25).map(
    lambda es: [Contact(id=f"c{i:02d}", email=e) for i, e in enumerate(es)]
)


def _same_email(a: Contact, b: Contact) -> bool:
    def norm(e: str | None) -> str | None:
        return e.strip().lower() if e and "@" in e else None

    return norm(a.email) is not None and norm(a.email) == norm(b.email)


@settings(max_examples=60, deadline=None)
@given(contact_lists, st.integers(1, 5))
def test_blocking_loses_no_exact_pair_against_brute_force(
    contacts: list[Contact], window: int
) -> None:
    # a block of k equal emails needs a window of k-1 to see every pair; blocks here
    # can be larger than the window, but the clusters are still complete (neighbours chain)
    report = find_duplicate_pairs(contacts, EMAIL_RULE, window=window)
    truth = {(a.id, b.id) for a, b in itertools.combinations(contacts, 2) if _same_email(a, b)}
    found = {(p.left_id, p.right_id) for p in report.pairs}
    assert found <= truth
    clustered = {frozenset(c) for c in report.clusters}
    expected: dict[str, set[str]] = {}
    for c in contacts:
        if c.email and "@" in c.email:
            expected.setdefault(c.email.strip().lower(), set()).add(c.id)
    assert clustered == {frozenset(g) for g in expected.values() if len(g) > 1}
    if window >= len(contacts):
        assert found == truth


@settings(max_examples=40, deadline=None)
@given(contact_lists)
def test_index_finds_what_the_job_finds(contacts: list[Contact]) -> None:
    report = find_duplicate_pairs(contacts, EMAIL_RULE, window=50)
    partners: dict[str, set[str]] = {c.id: set() for c in contacts}
    for p in report.pairs:
        partners[p.left_id].add(p.right_id)
        partners[p.right_id].add(p.left_id)
    index = DuplicateIndex(EMAIL_RULE, window=50).add_many(contacts)
    for c in contacts:
        found = {p.left_id if p.right_id == c.id else p.right_id for p in index.find(c)}
        assert found == partners[c.id]


def test_pairs_explain_each_field() -> None:
    people = [
        Contact(id="a", first_name="Katherine", last_name="Jones", phone="+44 20 7946 0001"),
        Contact(id="b", first_name="Kathryn", last_name="Jones", phone="020 7946 0001"),
        Contact(id="c", first_name="Kathryn", last_name="Jones", phone="020 7946 9999"),
    ]
    report = find_duplicate_pairs(people)
    assert [(p.left_id, p.right_id) for p in report.pairs] == [("a", "b")]
    pair = report.pairs[0]
    assert pair.rule_id == "contact-name-phone"
    name, phone = pair.fields
    assert (name.field, name.left, name.right) == ("name", "jones katherine", "jones kathryn")
    assert name.score is not None
    assert 0.85 <= name.score < 1
    assert name.passed
    assert (phone.left, phone.score, phone.passed) == ("079460001", 1.0, True)
    # name 0.9x * 2 and phone 1 * 1, weighted mean
    assert pair.score == pytest.approx((2 * name.score + 1.0) / 3)
    assert "jones kathryn" in pair.explain()
    assert "1 duplicate pairs" in report.summary()


def test_any_rule_blocks_on_every_field() -> None:
    rule = MatchRule(
        id="either",
        record_type="Lead",
        combine="any",
        fields=[{"field": "email"}, {"field": "company"}],
    )
    leads = [
        Lead(id="1", email="a@acme.com", company="Acme Inc"),
        Lead(id="2", email="b@acme.com", company="ACME Ltd"),
        Lead(id="3", email="A@acme.com", company="Other"),
    ]
    report = find_duplicate_pairs(leads, rule)
    assert {(p.left_id, p.right_id) for p in report.pairs} == {("1", "2"), ("1", "3")}
    assert report.clusters == (("1", "2", "3"),)


def test_missing_fields_do_not_match_under_all() -> None:
    rule = MatchRule(
        id="r", record_type="Contact", fields=[{"field": "email"}, {"field": "phone"}]
    )
    people = [Contact(id="a", email="x@y.com"), Contact(id="b", email="x@y.com")]
    assert find_duplicate_pairs(people, rule).pairs == ()


def test_phonetic_and_exact_methods() -> None:
    rule = MatchRule(
        id="r",
        record_type="Contact",
        fields=[
            {"field": "last_name", "method": "phonetic"},
            {"field": "title", "method": "exact"},
        ],
    )
    people = [
        Contact(id="a", last_name="Smith", title="CEO"),
        Contact(id="b", last_name="Smyth", title="CEO"),
        Contact(id="c", last_name="Smyth", title="ceo"),
    ]
    report = find_duplicate_pairs(people, rule)
    assert [(p.left_id, p.right_id) for p in report.pairs] == [("a", "b")]


def test_accounts_by_domain_and_fuzzy_name() -> None:
    accounts = [
        Account(id="a1", name="Acme Corporation", domain="https://www.acme.com", country="US"),
        Account(id="a2", name="ACME Corp.", domain="acme.com", country="US"),
        Account(id="a3", name="The ACME Co.", country="us"),
        Account(id="a4", name="Acme Corporation", country="DE"),
    ]
    report = find_duplicate_pairs(accounts)
    assert report.clusters == (("a1", "a2", "a3"),)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    s = MemoryStore() if request.param == "memory" else SQLiteStore(str(tmp_path / "d.db"))
    yield s
    s.close()


def test_jobs_read_stores(store: Any) -> None:
    store.contacts.add_many(
        [
            Contact(id="c1", email="ada@example.com"),
            Contact(id="c2", email=" Ada@Example.com"),
            Contact(id="c3", email="bob@example.com"),
        ]
    )
    report = find_duplicate_pairs(store, record_type="Contact")
    assert report.clusters == (("c1", "c2"),)
    assert find_duplicate_pairs(store.contacts).clusters == (("c1", "c2"),)
    assert [
        p.left_id for p in find_duplicates(store, Contact(id="n", email="BOB@example.com"))
    ] == ["c3"]


def test_index_add_and_discard() -> None:
    index = DuplicateIndex(EMAIL_RULE)
    index.add(Contact(id="a", email="a@x.com"))
    index.add(Contact(id="b", email="b@x.com"))
    probe = Contact(id="p", email="A@x.com")
    assert [p.left_id for p in index.find(probe)] == ["a"]
    index.add(Contact(id="a", email="changed@x.com"))  # replaced: old key gone
    assert index.find(probe) == []
    index.add_many([Contact(id="c", email="a@x.com")])
    index.discard("c")
    assert index.find(probe) == []
    assert len(index) == 2


def test_policies() -> None:
    index = DuplicateIndex(EMAIL_RULE).add_many([Contact(id="a", email="a@x.com")])
    dup = Contact(id="n", email="a@x.com")
    assert DuplicatePolicy(action="allow").check(index, dup).allowed
    alert = DuplicatePolicy(action="alert").check(index, dup)
    assert alert.allowed
    assert alert.alert
    assert alert.matches[0].left_id == "a"
    with pytest.raises(DuplicateError, match="duplicates a"):
        DuplicatePolicy(action="block").enforce(index, dup)
    fresh = Contact(id="m", email="m@x.com")
    assert DuplicatePolicy(action="block").enforce(index, fresh).matches == ()


def test_bad_rules_raise_validation_errors() -> None:
    with pytest.raises(ValidationError, match="method"):
        MatchField(field="email", method="sounds-like")
    with pytest.raises(ValidationError, match="threshold"):
        MatchField(field="email", threshold=2)
    with pytest.raises(ValidationError, match="not a field of Contact"):
        MatchRule(id="r", fields=[{"field": "nope"}])
    with pytest.raises(ValidationError, match="combine"):
        MatchRule(id="r", fields=[{"field": "email"}], combine="most")
    with pytest.raises(ValidationError):
        rules_from_data([{"id": "r", "fields": [{"field": "email", "colour": 1}]}])
    with pytest.raises(ValidationError, match="window"):
        find_duplicate_pairs([], EMAIL_RULE, window=0)
    with pytest.raises(ValidationError, match="record_type"):
        find_duplicate_pairs([])


@pytest.mark.parametrize("seed", [0, 1])
def test_index_agrees_with_the_job_on_generated_contacts(seed: int) -> None:
    from crmkit.dedupe import generate_duplicates

    records = generate_duplicates(400, duplicate_rate=0.2, seed=seed).records()
    report = find_duplicate_pairs(records)
    assert len(report.pairs) > 40
    by_pair = {(p.left_id, p.right_id): p for p in report.pairs}
    index = DuplicateIndex(record_type="Contact").add_many(records)
    seen = {}
    for record in records:
        for pair in index.find(record):
            seen[(pair.left_id, pair.right_id)] = pair
    assert seen.keys() == by_pair.keys()
    for key, pair in seen.items():
        assert pair.score == by_pair[key].score
        assert (pair.rule_id, pair.fields) == (by_pair[key].rule_id, by_pair[key].fields)


def test_index_built_one_by_one_equals_one_built_at_once() -> None:
    from crmkit.dedupe import generate_duplicates

    records = generate_duplicates(300, duplicate_rate=0.2, seed=5).records()
    at_once = DuplicateIndex(record_type="Contact").add_many(records)
    one_by_one = DuplicateIndex(record_type="Contact")
    for record in records:
        one_by_one.add(record)
    for record in records:
        assert one_by_one.find(record) == at_once.find(record)


def test_number_and_custom_fields_compare_the_same_in_the_job_and_the_index() -> None:
    rule = MatchRule(
        id="r",
        record_type="Account",
        fields=[{"field": "employees", "method": "exact"}, {"field": "custom.duns"}],
    )
    accounts = [
        Account(id="a", name="A", employees=50, custom={"duns": 1234}),
        Account(id="b", name="B", employees=50, custom={"duns": 1234}),
        Account(id="c", name="C", custom={"duns": 1234}),
        Account(id="d", name="D", employees=50),
    ]
    report = find_duplicate_pairs(accounts, rule)
    assert [(p.left_id, p.right_id) for p in report.pairs] == [("a", "b")]
    assert report.pairs[0].fields[0].left == "50"
    index = DuplicateIndex(rule).add_many(accounts)
    assert [(p.left_id, p.right_id) for p in index.find(accounts[0])] == [("a", "b")]
    assert index.find(accounts[2]) == []
