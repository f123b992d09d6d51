"""Property: replaying the outbox gives the store's final records and versions."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit import Account, Lead
from crmkit.errors import CrmError
from crmkit.events import ChangeEvent, read
from crmkit.store import MemoryStore

from .._stores import POSTGRES_DSN, StoreFactory, drop_schema, empty_schema, require_postgres

IDS = st.sampled_from(["a", "b", "c", "d"])
TYPES = st.sampled_from([Account, Lead])
SINGLE = st.tuples(
    st.sampled_from(["add", "put", "update", "patch", "delete"]), TYPES, IDS, st.booleans()
)
MANY = st.tuples(
    st.sampled_from(["add_many", "put_many", "patch_many"]),
    TYPES,
    st.lists(IDS, min_size=1, max_size=3),
    st.booleans(),
)
OPERATION = st.one_of(SINGLE, MANY)
STEP = st.one_of(
    OPERATION,
    st.tuples(st.just("rolled_back"), st.lists(OPERATION, min_size=1, max_size=3)),
    st.tuples(st.just("committed"), st.lists(OPERATION, min_size=1, max_size=3)),
)


class Undo(Exception):
    pass


def _record(kind: type[Any], record_id: str, stale: bool) -> Any:
    name = "stale" if stale else f"{kind.__name__} {record_id}"
    if kind is Account:
        return Account(id=record_id, name=name)
    return Lead(id=record_id, company=name)


def _apply(store: Any, step: tuple[Any, ...]) -> None:
    op = step[0]
    if op in ("rolled_back", "committed"):
        try:
            with store.transaction():
                for inner in step[1]:
                    _apply(store, inner)
                if op == "rolled_back":
                    raise Undo
        except (Undo, CrmError):
            pass
        return
    _, kind, ids, flag = step
    repo = store.repository(kind)
    field = "name" if kind is Account else "company"
    try:
        if op == "add":
            repo.add(_record(kind, ids, flag))
        elif op == "put":
            repo.put(_record(kind, ids, flag))
        elif op == "update":
            current = repo.get(ids)
            version = current.version + (1 if flag else 0)  # flag: a stale version
            repo.update(attrs.evolve(current, **{field: "updated"}), expected_version=version)
        elif op == "patch":
            repo.patch(ids, **{field: "patched" if flag else "again"})
        elif op == "delete":
            repo.delete(ids)
        elif op == "add_many":
            repo.add_many([_record(kind, i, flag) for i in ids])
        elif op == "put_many":
            repo.put_many([_record(kind, i, flag) for i in dict.fromkeys(ids)])
        else:
            repo.patch_many({i: {field: "many"} for i in ids})
    except CrmError:
        pass


def _replayed(store: Any) -> dict[tuple[str, str], int]:
    versions: dict[tuple[str, str], int] = {}
    for event in read(store):
        assert isinstance(event, ChangeEvent)
        key = (event.record_type, event.record_id)
        if event.operation == "delete":
            assert versions.pop(key) == event.version
        elif event.operation == "insert":
            assert key not in versions
            versions[key] = event.version
        else:
            assert versions[key] == event.version - 1
            versions[key] = event.version
    return versions


def _stored(store: Any) -> dict[tuple[str, str], int]:
    kinds = (Account, Lead)
    return {(k.__name__, r.id): r.version for k in kinds for r in store.repository(k)}


@pytest.fixture(scope="module")
def postgres_schema() -> Iterator[StoreFactory]:
    require_postgres()
    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    try:
        yield StoreFactory("postgres", POSTGRES_DSN, schema)
    finally:
        drop_schema(schema)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def opener(request: pytest.FixtureRequest) -> Callable[[], Any]:
    """Opens a new, empty store with events on, once per example."""
    if request.param == "memory":
        return lambda: MemoryStore(events=True)
    if request.param == "sqlite":
        from crmkit.store.sqlite import SQLiteStore

        return lambda: SQLiteStore(":memory:", events=True)
    factory: StoreFactory = request.getfixturevalue("postgres_schema")

    def fresh() -> Any:
        store = factory(events=True)
        store.close()
        empty_schema(factory)
        return factory(events=True)

    return fresh


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, max_size=12))
def test_the_outbox_replays_to_the_stored_versions(
    opener: Callable[[], Any], steps: list[tuple[Any, ...]]
) -> None:
    store = opener()
    try:
        for step in steps:
            _apply(store, step)
        assert _replayed(store) == _stored(store)
    finally:
        store.close()
