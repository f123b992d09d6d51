"""Text criteria on integer codes: factorising agrees with numpy, rules and territories
decided on codes agree with the record-by-record evaluation of the same criteria, and
half-open ranges keep their boundaries."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import Account, F, FixedClock, Lead, MemoryStore, Rep, RoutingRule, Territory
from crmkit._codes import ShortKeys, text_codes
from crmkit._columns import columns_of
from crmkit.criteria import bind
from crmkit.routing import Router, RuleSet, assign_columns
from crmkit.routing._territories import match_territories

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

# -- factorising ----------------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.sampled_from(["a", "b", "Z", "0", "9", " ", "é", "ÿ", "€", "中", "𝄞"]),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, max_size=60))
def test_text_codes_agree_with_sorting(values: list[str]) -> None:
    column = np.array(values, dtype=str)
    codes = text_codes(column)
    uniq, inverse = np.unique(column, return_inverse=True)
    assert codes.values.tolist() == uniq.tolist()
    assert codes.codes.tolist() == inverse.reshape(-1).tolist()
    for k, value in enumerate(uniq.tolist()):
        assert codes.code_of(value) == k
    assert codes.code_of("not there") == -1


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=40), st.lists(TEXT, max_size=8), st.lists(TEXT))
def test_short_keys_are_exact_and_in_text_order(
    values: list[str], extra: list[str], asked: list[str]
) -> None:
    """Keys of the column and of ``extra`` are equal exactly when the text is, ordered as
    the text; other text never gets one of their keys."""
    column = np.array(values, dtype=str)
    more = np.array(extra, dtype=str) if extra else None
    fitted = ShortKeys.fit(column, 1 << 20, more)
    if fitted is None:  # not Latin-1, or too many keys
        return
    short, keys = fitted
    known = [*values, *extra]
    found = short.keys(np.array(known, dtype=str))
    assert found[: len(values)].tolist() == keys.tolist()
    assert (found >= 0).all()
    assert (found < short.span).all()
    pairs = sorted(zip(known, found.tolist(), strict=True))
    for (a, ka), (b, kb) in itertools.pairwise(pairs):
        assert (ka < kb) if a < b else (ka == kb)
    where = dict(zip(known, found.tolist(), strict=True))
    got = short.keys(np.array(asked, dtype=str)) if asked else np.zeros(0, dtype=np.int64)
    for query, key in zip(asked, got.tolist(), strict=True):  # other text: -1 or a new key
        assert key == where[query] if query in where else key not in where.values()


def test_short_keys_see_a_character_only_one_row_has() -> None:
    """The characters of a sample of rows are numbered first; a character the sample
    missed must still get its own keys (the whole column is then read)."""
    column = np.char.zfill((np.arange(50_000) % 700).astype(str), 4)
    column[12_345] = "0z07"  # an odd row: not in the sample of every other row
    fitted = ShortKeys.fit(column, 1 << 22)
    assert fitted is not None
    short, keys = fitted
    uniq, inverse = np.unique(column, return_inverse=True)
    ranked = np.empty(uniq.size, dtype=np.int64)
    ranked[np.argsort(short.keys(uniq))] = np.arange(uniq.size)
    assert np.array_equal(ranked, np.arange(uniq.size))  # key order is text order
    assert np.array_equal(np.unique(keys, return_inverse=True)[1].reshape(-1), inverse)
    assert short.keys(np.array(["0z07", "0y07"])).tolist() == [keys[12_345], -1]


@pytest.mark.parametrize(
    "column",
    [
        np.char.zfill(np.arange(70_000).astype(str), 6),  # many values: no perfect hash
        np.arange(100_000)[::-1].astype(str),  # dense span, one word
        np.char.add("industry-name-", (np.arange(50_000) % 37).astype(str)),  # two words
        np.array(["x" * 30, "x" * 29 + "y", "x" * 29, ""] * 10),  # four words
    ],
)
def test_text_codes_on_large_columns(column: np.ndarray) -> None:
    codes = text_codes(column)
    uniq, inverse = np.unique(column, return_inverse=True)
    assert np.array_equal(codes.values, uniq)
    assert np.array_equal(codes.codes, inverse.reshape(-1))
    if codes.order is not None:  # rows in code order, when factorising sorted them
        assert np.all(np.diff(codes.codes[codes.order]) >= 0)
        assert np.array_equal(np.sort(codes.order), np.arange(column.size))


# -- rules on codes -------------------------------------------------------------------------

COUNTRIES = ["US", "DE", "FR", "GB", "Ünited", "United States"]


@st.composite
def rule_worlds(draw: st.DrawFn) -> tuple[list[RoutingRule], list[Lead]]:
    countries = st.sampled_from(COUNTRIES)
    makers = [
        lambda: F.country == draw(countries),
        lambda: F.country.isin(draw(st.lists(countries, min_size=1, max_size=6))),
        lambda: F.country != draw(countries),
        lambda: F.country.notin(draw(st.lists(countries, max_size=3))),
        lambda: F.country < draw(countries),
        lambda: F.country.between(*sorted(draw(st.lists(countries, min_size=2, max_size=2)))),
        lambda: F.country.startswith(draw(st.sampled_from(["U", "D", "Un"]))),
        lambda: F.country.isnull(),
        lambda: F.source == draw(st.sampled_from(["web", "event"])),
        lambda: F.employees >= draw(st.integers(-5, 300)),
        lambda: F.employees < draw(st.floats(-5, 300, allow_nan=False)),
        lambda: F.employees.between(draw(st.integers(0, 150)), draw(st.integers(100, 300))),
        lambda: F.employees == draw(st.sampled_from([0, 10, 10.5])),
        lambda: F.employees.isin(draw(st.lists(st.integers(0, 20), max_size=3))),
        lambda: F.employees.range(draw(st.integers(0, 100)), draw(st.integers(50, 300))),
        lambda: F.custom["score"] >= draw(st.floats(0, 100, allow_nan=False)),
        lambda: (F.country == "US") | (F.employees > 200),
        lambda: ~(F.source == "web"),
    ]
    rules = []
    for i in range(draw(st.integers(0, 10))):
        parts = [draw(st.sampled_from(makers))() for _ in range(draw(st.integers(0, 3)))]
        criteria = None
        if parts:
            c = parts[0]
            for p in parts[1:]:
                c = c & p
            criteria = c.to_dict()
        rules.append(
            RoutingRule(id=f"r{i}", position=i, criteria=criteria, target_id="q", active=True)
        )
    leads = [
        Lead(
            id=f"l{i}",
            country=draw(st.sampled_from([*COUNTRIES, "JP", None])),
            source=draw(st.sampled_from(["web", "event", None])),
            employees=draw(st.one_of(st.none(), st.integers(0, 300))),
            custom={"score": draw(st.floats(0, 100, allow_nan=False))}
            if draw(st.booleans())
            else {},
        )
        for i in range(draw(st.integers(0, 40)))
    ]
    return rules, leads


@settings(max_examples=150, deadline=None)
@given(rule_worlds(), st.booleans())
def test_rules_on_codes_agree_with_records(world, integer_employees: bool) -> None:
    rules, leads = world
    rule_set = RuleSet(rules)
    fields = ["country", "source", "employees", "custom.score"]
    columns = columns_of(Lead, leads, fields)
    if integer_employees:  # an int32 column takes the integer comparisons
        if any(lead.employees is None for lead in leads):
            return
        columns["employees"] = np.array([lead.employees for lead in leads], dtype=np.int32)
    got = rule_set.first_match_columns(columns, NOW).tolist()
    naive = [next((i for i, b in enumerate(rule_set.bound) if b.matches(x)), -1) for x in leads]
    assert got == naive == [rule_set.first_match_index(x, NOW) for x in leads]


def test_route_columns_returns_codes_and_the_id_table() -> None:
    store = MemoryStore()
    store.reps.add_many([Rep(id=f"r{k}", name="R", team_ids=["t"]) for k in range(3)])
    store.routing_rules.add_many(
        [
            RoutingRule(id="us", position=1, criteria=(F.country == "US").to_dict(),
                        target_kind="team", target_id="t"),
            RoutingRule(id="de", position=2, criteria=(F.country == "DE").to_dict(),
                        target_id="germany"),
        ]
    )  # fmt: skip
    router = Router(store, clock=FixedClock(NOW))
    leads = [Lead(id=f"l{i}", country=c) for i, c in enumerate(["US", "DE", "FR", "US", "US"])]
    batch = router.route_columns(columns_of(Lead, leads, router.batch_fields()))
    owners = [batch.owner_ids[c] if c >= 0 else None for c in batch.owner_code.tolist()]
    queues = [batch.queue_ids[c] if c >= 0 else None for c in batch.queue_code.tolist()]
    assert owners == batch.owner.tolist() == ["r0", None, None, "r1", "r2"]
    assert queues == batch.queue.tolist() == [None, "germany", "unrouted", None, None]
    assert batch.status.tolist() == ["assigned", "queued", "queued", "assigned", "assigned"]
    assert [d.owner_id for d in batch.decisions()] == owners


# -- half-open ranges -----------------------------------------------------------------------


def test_half_open_range_builder() -> None:
    c = F.employees.range(50, 250)
    assert c.to_dict() == {
        "all": [
            {"field": "employees", "op": ">=", "value": 50},
            {"field": "employees", "op": "<", "value": 250},
        ]
    }
    test = bind(c, Account).matches
    assert [test(Account(id="a", name="a", employees=e)) for e in (49, 50, 249, 250)] == [
        False,
        True,
        True,
        False,
    ]


def test_half_open_postal_ranges_keep_their_boundaries() -> None:
    territories = [
        Territory(
            id=f"t{k}",
            name="t",
            priority=k,
            criteria=((F.country == "US") & F.postal_code.range(lo, hi)).to_dict(),
        )
        for k, (lo, hi) in enumerate([("10000", "20000"), ("20000", "30000")])
    ]
    postal = ["09999", "10000", "19999", "20000", "29999", "30000", "2", ""]
    columns = {
        "id": np.array([f"a{i}" for i in range(len(postal))]),
        "country": np.array(["US"] * len(postal)),
        "postal_code": np.array(postal),
    }
    result = assign_columns(territories, columns)
    assert result.primary.tolist() == ["", "t0", "t0", "t1", "t1", "", "t0", ""]  # text order
    assert result.primary_index.tolist() == [-1, 0, 0, 1, 1, -1, 0, -1]
    assert result.reason.tolist()[:2] == ["no_match", "primary"]


@st.composite
def range_worlds(draw: st.DrawFn) -> tuple[list[Territory], list[Account]]:
    postals = ["00000", "09999", "10000", "15000", "19999", "20000", "5", "99999"]
    accounts = [
        Account(
            id=f"a{i:03}",
            name="x",
            country=draw(st.sampled_from(["US", "DE", None])),
            postal_code=draw(st.sampled_from([*postals, None])),
            employees=draw(st.one_of(st.none(), st.integers(0, 300))),
            industry=draw(st.sampled_from(["Retail", "Tech", None])),
        )
        for i in range(draw(st.integers(0, 40)))
    ]
    territories = []
    for k in range(draw(st.integers(0, 10))):
        lo, hi = sorted(draw(st.lists(st.sampled_from(postals), min_size=2, max_size=2)))
        crit = F.postal_code.range(lo, hi)
        if draw(st.booleans()):
            crit = (F.country == draw(st.sampled_from(["US", "DE"]))) & crit
        if draw(st.booleans()):
            crit = crit & F.industry.isin(draw(st.lists(st.sampled_from(["Retail", "Tech"]))))
        if draw(st.booleans()):
            a, b = sorted(draw(st.lists(st.integers(0, 300), min_size=2, max_size=2)))
            crit = crit & F.employees.range(a, b)
        if draw(st.booleans()):  # an open side: only a lower bound
            crit = crit & (F.postal_code >= draw(st.sampled_from(postals)))
        territories.append(
            Territory(
                id=f"t{k}", name="t", priority=draw(st.integers(0, 3)), criteria=crit.to_dict()
            )
        )
    return territories, accounts


@settings(max_examples=150, deadline=None)
@given(range_worlds())
def test_half_open_ranges_on_codes_agree_with_records(world) -> None:
    territories, accounts = world
    columns = columns_of(
        Account, accounts, ["id", "country", "postal_code", "employees", "industry"]
    )
    acc, ter, _ = match_territories(territories, columns)
    got = set(zip(acc.tolist(), ter.tolist(), strict=True))
    expected = {
        (i, k)
        for k, t in enumerate(territories)
        for i, a in enumerate(accounts)
        if bind(t.criteria, Account).matches(a)
    }
    assert got == expected
    result = assign_columns(territories, columns)
    for i in range(len(accounts)):
        hits = sorted((territories[k].priority, k) for (a, k) in expected if a == i)
        if not hits:
            assert result.reason[i] == "no_match"
        elif len(hits) > 1 and hits[0][0] == hits[1][0]:
            assert (result.reason[i], result.primary_index[i]) == ("tie", -1)
        else:
            assert result.primary_index[i] == hits[0][1]
            assert result.primary[i] == territories[hits[0][1]].id
