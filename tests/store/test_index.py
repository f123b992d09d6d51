"""The MemoryStore's ordered indexes and planner, checked against brute force."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit._schema import QUERYABLE_KINDS, schema_of
from crmkit.criteria import Condition, Criteria, F, bind
from crmkit.errors import ValidationError
from crmkit.records import Account, Lead, Opportunity, Reminder
from crmkit.store import MemoryStore
from crmkit.store._base import sort_records
from crmkit.store._index import (
    FieldIndex,
    Interval,
    SortedRun,
    exact_lookup,
    ids_of,
    ordered_scan,
    plan,
    point_ids,
)
from crmkit.testing.strategies import criteria_for, ids, records


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few pairs, so small examples split and empty chunks."""
    monkeypatch.setattr(SortedRun, "LOAD", 3)


keys = st.integers(-5, 5)
bounds = st.one_of(st.none(), keys)
intervals = st.builds(Interval, bounds, st.booleans(), bounds, st.booleans())


def _inside(key: int, i: Interval) -> bool:
    above = i.low is None or key > i.low or (i.low_inclusive and key == i.low)
    below = i.high is None or key < i.high or (i.high_inclusive and key == i.high)
    return above and below


@settings(max_examples=200)
@given(
    start=st.lists(st.tuples(keys, st.sampled_from("abcdef")), unique=True),
    edits=st.lists(st.tuples(st.booleans(), keys, st.sampled_from("abcdef"))),
    probe=intervals,
)
def test_sorted_run_agrees_with_a_sorted_list(
    start: list[tuple[int, str]], edits: list[tuple[bool, int, str]], probe: Interval
) -> None:
    run, oracle = SortedRun(start), set(start)
    for add, key, record_id in edits:
        if add and (key, record_id) not in oracle:
            run.add(key, record_id)
            oracle.add((key, record_id))
        elif not add:
            run.remove(key, record_id)  # removing an absent pair is a no-op
            oracle.discard((key, record_id))
    inside = sorted(p for p in oracle if _inside(p[0], probe))
    assert len(run) == len(oracle)
    assert list(run.pairs(probe)) == inside
    assert run.count(probe) == len(inside)
    descending = sorted(inside, key=lambda p: (-p[0], p[1]))
    assert sorted(run.pairs_descending(probe), key=lambda p: (-p[0], p[1])) == descending
    assert [k for k, _ in run.pairs_descending(probe)] == [k for k, _ in descending]


TYPES = (Account, Lead, Opportunity)


def _orderable(record_type: type[Any]) -> list[str]:
    return [f.name for f in schema_of(record_type).fields if f.kind in QUERYABLE_KINDS]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), record_type=st.sampled_from(TYPES))
def test_plans_cover_every_match_and_scans_keep_the_order(
    data: st.DataObject, record_type: type[Any]
) -> None:
    rows = data.draw(st.lists(records(record_type, ids=ids(), narrow=True), max_size=25))
    table = {r.id: r for r in rows}
    test = bind(data.draw(criteria_for(record_type, narrow=True, max_leaves=4)), record_type)
    built: dict[tuple[str, str | None], FieldIndex] = {}

    def index_for(field: str, partition: str | None) -> FieldIndex:
        if (field, partition) not in built:
            built[(field, partition)] = FieldIndex(record_type, field, partition, table)
        return built[(field, partition)]

    matching = {r.id for r in table.values() if test.matches(r)}
    planned = plan(test, index_for)
    if planned is not None:
        assert ids_of(planned[0], index_for) >= matching
        assert planned[1] >= len(matching)
        if exact_lookup(test, planned[0]):  # the ids are the answer, in id order
            assert point_ids(planned[0], index_for) == sorted(matching)

    field = data.draw(st.sampled_from(_orderable(record_type)))
    descending = data.draw(st.booleans())
    walk = ordered_scan(test, field, descending, index_for)
    assert walk is not None
    got = [i for i in walk if test.matches(table[i])]
    expected = sort_records(
        [table[i] for i in matching], record_type, ("-" if descending else "") + field
    )
    assert got == [r.id for r in expected]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), record_type=st.sampled_from(TYPES))
def test_bounds_on_stored_values(data: st.DataObject, record_type: type[Any]) -> None:
    """Ranges whose bounds are values the records hold: every edge case of inclusivity,
    alone or beside an equality that partitions the index."""
    drawn = data.draw(st.lists(records(record_type, ids=ids(), narrow=True), min_size=1))
    table = {r.id: r for r in drawn}
    rows = list(table.values())
    field = data.draw(st.sampled_from(_orderable(record_type)))
    values = [getattr(r, field) for r in rows if getattr(r, field) not in (None, "")]
    if not values or isinstance(values[0], bool):
        return
    low, high = sorted(data.draw(st.lists(st.sampled_from(values), min_size=2, max_size=2)))
    ordered = not isinstance(values[0], enum.Enum)
    op = data.draw(
        st.sampled_from(["==", "<", "<=", ">", ">=", "between", "in"] if ordered else ["==", "in"])
    )
    criteria: Criteria = Condition(field, op, (low, high) if op in ("between", "in") else low)
    partner = data.draw(st.sampled_from(_orderable(record_type)))
    other = getattr(data.draw(st.sampled_from(rows)), partner)
    if other not in (None, "") and data.draw(st.booleans()):
        criteria = criteria & Condition(partner, "==", other)
    test = bind(criteria, record_type)
    built: dict[tuple[str, str | None], FieldIndex] = {}

    def index_for(name: str, partition: str | None) -> FieldIndex:
        if (name, partition) not in built:
            built[(name, partition)] = FieldIndex(record_type, name, partition, table)
        return built[(name, partition)]

    matching = {r.id for r in rows if test.matches(r)}
    planned = plan(test, index_for)
    assert planned is not None
    assert ids_of(planned[0], index_for) >= matching
    descending = data.draw(st.booleans())
    walk = ordered_scan(test, field, descending, index_for)
    assert walk is not None
    expected = sort_records(
        [table[i] for i in matching], record_type, [("-" if descending else "") + field]
    )
    assert [i for i in walk if test.matches(table[i])] == [r.id for r in expected]


START = datetime(2026, 1, 1, tzinfo=UTC)


def _reminders(n: int) -> list[Reminder]:
    return [
        Reminder(
            id=f"r{i:04d}",
            title="Call",
            owner_id=f"rep{i % 7}",
            due_at=START + timedelta(minutes=(i * 37) % 1000),
            snoozed_until=START + timedelta(minutes=i % 500) if i % 10 == 0 else None,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("index_from", [0, 50])
def test_indexes_follow_writes_and_rollbacks(index_from: int) -> None:
    """Writes, deletes, a rolled back batch and a big batch leave indexed answers right."""
    indexed, plain = MemoryStore(index_from=index_from), MemoryStore(index_from=None)
    queries = [
        (F.status == "open") & (F.due_at <= START + timedelta(minutes=300)),
        (F.status == "open") & F.snoozed_until.notnull(),
        F.owner_id.isin(["rep1", "rep3"]) & (F.due_at > START + timedelta(minutes=900)),
        F.snoozed_until.isnull() | (F.due_at < START + timedelta(minutes=10)),
    ]

    def agree() -> None:
        for q in queries:
            for order in ([], ["due_at"], ["-snoozed_until"], ["owner_id"]):
                for limit in (None, 1, 5):
                    a = indexed.reminders.query(q, order_by=order, limit=limit)
                    b = plain.reminders.query(q, order_by=order, limit=limit)
                    assert a == b, (q, order, limit)
            assert indexed.reminders.count(q) == plain.reminders.count(q)

    first = _reminders(200)
    for store in (indexed, plain):
        store.reminders.add_many(first)
    agree()
    for store in (indexed, plain):
        for r in first[:40]:
            store.reminders.put(_done(r))
        for r in first[40:60]:
            store.reminders.delete(r.id)
        _rolled_back(store, [_done(r) for r in first[60:120]])
    agree()
    for store in (indexed, plain):
        store.reminders.add_many(_reminders(2000)[200:])  # large: indexes rebuilt lazily
    agree()


def _rolled_back(store: MemoryStore, batch: list[Reminder]) -> None:
    try:
        with store.transaction():
            store.reminders.put_many(batch)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass


def _done(r: Reminder) -> Reminder:
    return attrs.evolve(r, status="done")


def test_index_from_is_checked() -> None:
    with pytest.raises(ValidationError, match="index_from"):
        MemoryStore(index_from=-1)
    with pytest.raises(ValidationError, match="index_from"):
        MemoryStore(index_from=True)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), record_type=st.sampled_from(TYPES))
def test_an_equality_on_one_field_reads_the_index_alone(
    data: st.DataObject, record_type: type[Any]
) -> None:
    """``F.x == v`` with a value some record holds (or not): the store answers from the
    index without testing or sorting, and must equal a full scan, before and after writes."""
    rows = data.draw(st.lists(records(record_type, ids=ids(), narrow=True), max_size=25))
    rows = list({r.id: r for r in rows}.values())
    field = data.draw(st.sampled_from(_orderable(record_type)))
    held = [getattr(r, field) for r in rows if getattr(r, field) is not None]
    values = held or [None]
    value = data.draw(st.sampled_from(values))
    if value is None:
        return
    criteria = F[field] == (value.value if isinstance(value, enum.Enum) else value)
    indexed, scanned = MemoryStore(index_from=0), MemoryStore(index_from=None)
    for store in (indexed, scanned):
        store.ensure_index(record_type, field)
        store.repository(record_type).add_many(rows)
    repo = indexed.repository(record_type)
    test = bind(criteria, record_type)
    planned = plan(test, repo._index)
    assert planned is not None
    assert exact_lookup(test, planned[0])
    for _ in range(2):
        expected = scanned.repository(record_type).query(criteria)
        assert repo.query(criteria) == expected == sorted(expected, key=lambda r: r.id)
        assert repo.query(criteria, limit=2, offset=1) == expected[1:3]
        if rows:  # a write that moves one record out of (or into) the answer
            moved = attrs.evolve(rows[0], **{field: getattr(rows[-1], field)})
            for store in (indexed, scanned):
                store.repository(record_type).put(moved)


def test_sorted_run_grouped_equals_sorted_pairs() -> None:
    groups = {"b": ["y", "x"], "a": ["z", "c"], "c": ["a"]}
    pairs = [(k, i) for k, ids_ in groups.items() for i in ids_]
    assert list(SortedRun.grouped(groups).pairs(Interval.everything())) == sorted(pairs)


@pytest.mark.parametrize("caller_paused", [False, True])
def test_a_large_batch_leaves_the_collector_as_it_found_it(caller_paused: bool) -> None:
    import gc

    from crmkit.store._base import GC_PAUSE_FROM

    store = MemoryStore()
    accounts = [Account(id=f"a{i:06d}", name="A") for i in range(GC_PAUSE_FROM)]
    if caller_paused:
        gc.disable()
    try:
        store.accounts.add_many(accounts)
        store.accounts.put_many(accounts[:GC_PAUSE_FROM])
        store.accounts.patch_many({a.id: {"employees": 3} for a in accounts})
        assert gc.isenabled() is not caller_paused
    finally:
        gc.enable()
    assert store.accounts.get("a000001").version == 3
