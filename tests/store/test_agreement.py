"""MemoryStore, SQLiteStore and PostgresStore driven side by side must never disagree.

A hypothesis state machine applies the same random operations to both stores (adds,
puts, updates with right and stale versions, deletes, batches with bad rows,
transactions that commit or fail midway, queries with random criteria, order and
paging) and checks after every step that both returned the same thing or raised the
same kind of error, and that both hold the same records. A MemoryStore that answers
from its ordered indexes from the first record must agree as well, and so must a
PostgresStore (one schema for the whole run, emptied before each example) when a server
is reachable (see tests/_stores.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from crmkit._schema import QUERYABLE_KINDS, schema_of
from crmkit.errors import BatchError, CrmError
from crmkit.records import Account, Lead, Opportunity
from crmkit.store import MemoryStore
from crmkit.testing.strategies import CUSTOM_KEYS, criteria_for, ids, records

from .._stores import (
    POSTGRES_DSN,
    StoreFactory,
    drop_schema,
    empty_schema,
    postgres_unreachable,
)

sqlite = pytest.importorskip("crmkit.store.sqlite", reason="SQLiteStore is not available")

_POSTGRES: list[StoreFactory] = []  # the run's schema, when a server is reachable


@pytest.fixture(scope="module", autouse=True)
def postgres_schema() -> Iterator[None]:
    reason = postgres_unreachable()
    if reason is not None:
        if os.environ.get("CRMKIT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CRMKIT_REQUIRE_POSTGRES=1 but {reason}")
        yield  # the machine runs without PostgreSQL; test_postgres_joins says why
        return
    factory = StoreFactory("postgres", POSTGRES_DSN, f"crmkit_test_{uuid.uuid4().hex[:12]}")
    factory().close()  # create the tables once
    _POSTGRES.append(factory)
    try:
        yield
    finally:
        _POSTGRES.clear()
        drop_schema(factory.schema or "")


def test_postgres_joins() -> None:
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(f"the agreement machine runs without PostgreSQL: {reason}")
    assert _POSTGRES


TYPES = (Account, Lead, Opportunity)
types = st.sampled_from(TYPES)


class _Abort(Exception):
    """Raised inside a transaction to roll it back."""


def _order_fields(record_type: type[Any]) -> list[str]:
    names = [f.name for f in schema_of(record_type).fields if f.kind in QUERYABLE_KINDS]
    return names + [f"custom.{key}" for key in CUSTOM_KEYS]


def _patchable(record_type: type[Any]) -> list[str]:
    return [f.name for f in schema_of(record_type).fields if f.name not in ("id", "version")]


def _outcome(call: Callable[[Any], Any], store: Any) -> tuple[str, Any]:
    """What happened: ("ok", result) or ("error", class, detail) for a crmkit error."""
    try:
        return ("ok", call(store))
    except BatchError as err:
        return ("error", (BatchError, [index for index, _ in err.errors]))
    except _Abort:
        return ("error", (_Abort, None))
    except CrmError as err:
        return ("error", (type(err), None))


class StoresAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.memory = MemoryStore(index_from=None)
        self.indexed = MemoryStore(index_from=0)
        self.sqlite = sqlite.SQLiteStore(":memory:")
        self.durable: list[tuple[str, Any]] = [("SQLiteStore", self.sqlite)]
        if _POSTGRES:
            empty_schema(_POSTGRES[0])
            self.durable.append(("PostgresStore", _POSTGRES[0]()))

    def teardown(self) -> None:
        for _, store in self.durable:
            store.close()

    def both(self, call: Callable[[Any], Any]) -> Any:
        expected = _outcome(call, self.memory)
        for name, store in self.durable:
            got = _outcome(call, store)
            assert got == expected, f"MemoryStore: {expected!r}\n{name}: {got!r}"
        indexed = _outcome(call, self.indexed)
        assert indexed == expected, f"MemoryStore: {expected!r}\nindexed: {indexed!r}"
        return expected

    def record(self, data: st.DataObject, record_type: type[Any]) -> Any:
        return data.draw(records(record_type, ids=ids(small=True), narrow=True))

    # -- writes ----------------------------------------------------------------------------

    @rule(data=st.data(), record_type=types)
    def add(self, data: st.DataObject, record_type: type[Any]) -> None:
        record = self.record(data, record_type)
        self.both(lambda s: s.repository(record_type).add(record))

    @rule(data=st.data(), record_type=types)
    def put(self, data: st.DataObject, record_type: type[Any]) -> None:
        record = self.record(data, record_type)
        self.both(lambda s: s.repository(record_type).put(record))

    @rule(
        data=st.data(),
        record_type=types,
        how=st.sampled_from(["read", "stale", "explicit", "explicit-stale"]),
    )
    def update(self, data: st.DataObject, record_type: type[Any], how: str) -> None:
        record = self.record(data, record_type)
        current = self.memory.repository(record_type).find(record.id)
        version = current.version if current is not None else data.draw(st.integers(0, 3))
        if how == "read":
            self.both(
                lambda s: s.repository(record_type).update(attrs.evolve(record, version=version))
            )
        elif how == "stale":
            stale = attrs.evolve(record, version=max(version - 1, 0))
            self.both(lambda s: s.repository(record_type).update(stale))
        else:
            expected = version if how == "explicit" else version + 1
            self.both(
                lambda s: s.repository(record_type).update(record, expected_version=expected)
            )

    @rule(
        record_type=types,
        record_id=ids(small=True),
        version=st.one_of(st.none(), st.integers(1, 4)),
    )
    def delete(self, record_type: type[Any], record_id: str, version: int | None) -> None:
        self.both(lambda s: s.repository(record_type).delete(record_id, expected_version=version))

    @rule(
        data=st.data(),
        record_type=types,
        record_id=ids(small=True),
        version=st.one_of(st.none(), st.integers(1, 4)),
    )
    def conditional_patch(
        self, data: st.DataObject, record_type: type[Any], record_id: str, version: int | None
    ) -> None:
        """``patch(where=...)``: applied, refused (ConflictError) or NotFound alike."""
        source = self.record(data, record_type)
        names = data.draw(
            st.lists(st.sampled_from(_patchable(record_type)), min_size=1, max_size=3)
        )
        fields = {name: getattr(source, name) for name in names}
        where = data.draw(criteria_for(record_type, narrow=True, max_leaves=3))
        self.both(
            lambda s: s.repository(record_type).patch(
                record_id, expected_version=version, where=where, **fields
            )
        )

    @rule(data=st.data(), record_type=types, replace=st.booleans(), wrong=st.booleans())
    def batch(
        self, data: st.DataObject, record_type: type[Any], replace: bool, wrong: bool
    ) -> None:
        rows: list[Any] = data.draw(
            st.lists(records(record_type, ids=ids(small=True), narrow=True), max_size=4)
        )
        if wrong:  # a record of another type somewhere in the batch
            other = Lead if record_type is not Lead else Account
            position = data.draw(st.integers(0, len(rows)))
            rows.insert(position, self.record(data, other))
        if replace:
            self.both(lambda s: s.repository(record_type).put_many(rows))
        else:
            self.both(lambda s: s.repository(record_type).add_many(rows))

    @rule(data=st.data(), fail=st.booleans())
    def transaction(self, data: st.DataObject, fail: bool) -> None:
        steps = data.draw(
            st.lists(
                st.one_of(
                    types.flatmap(lambda t: records(t, ids=ids(small=True), narrow=True)).map(
                        lambda r: ("put", r)
                    ),
                    st.tuples(st.just("delete"), types, ids(small=True)),
                    st.tuples(st.just("state"), st.integers(0, 9)),
                ),
                min_size=1,
                max_size=4,
            )
        )
        fail_at = data.draw(st.integers(0, len(steps))) if fail else None

        def run(store: Any) -> None:
            with store.transaction():
                for position, step in enumerate(steps):
                    if position == fail_at:
                        raise _Abort
                    if step[0] == "put":
                        store.repository(type(step[1])).put(step[1])
                    elif step[0] == "delete":
                        repo = store.repository(step[1])
                        if step[2] in repo:
                            repo.delete(step[2])
                    else:
                        store.save_state("pool", {"next": step[1]})
                if fail_at == len(steps):
                    raise _Abort

        self.both(run)

    @rule(name=st.sampled_from(["pool", "other"]), value=st.integers(0, 9))
    def save_state(self, name: str, value: int) -> None:
        self.both(lambda s: s.save_state(name, {"value": value, "seen": [value]}))

    # -- reads -----------------------------------------------------------------------------

    @rule(data=st.data(), record_type=types)
    def query(self, data: st.DataObject, record_type: type[Any]) -> None:
        criteria = data.draw(criteria_for(record_type, narrow=True, max_leaves=3))
        fields = _order_fields(record_type)
        order_by = data.draw(
            st.lists(
                st.tuples(st.sampled_from(["", "-"]), st.sampled_from(fields)).map("".join),
                max_size=2,
            )
        )
        limit = data.draw(st.one_of(st.none(), st.integers(0, 4)))
        offset = data.draw(st.integers(0, 3))
        self.both(
            lambda s: s.repository(record_type).query(
                criteria, order_by=order_by, limit=limit, offset=offset
            )
        )
        self.both(lambda s: s.repository(record_type).count(criteria))

    @rule(data=st.data(), record_type=types)
    def columns(self, data: st.DataObject, record_type: type[Any]) -> None:
        fields = data.draw(
            st.lists(
                st.sampled_from(_order_fields(record_type)), min_size=1, max_size=4, unique=True
            )
        )
        mem = self.memory.repository(record_type).columns(fields)
        for store_name, store in self.durable:
            sql = store.repository(record_type).columns(fields)
            assert list(mem) == list(sql) == fields
            for name in fields:
                assert mem[name].dtype == sql[name].dtype, (store_name, name)
                np.testing.assert_array_equal(mem[name], sql[name], err_msg=name)

    # -- the invariant ---------------------------------------------------------------------

    @invariant()
    def same_contents(self) -> None:
        for record_type in TYPES:
            mem = list(self.memory.repository(record_type))
            assert list(self.indexed.repository(record_type)) == mem, record_type.__name__
            for store_name, store in self.durable:
                sql = list(store.repository(record_type))
                assert sql == mem, (store_name, record_type.__name__)
                assert len(store.repository(record_type)) == len(mem)
        for store_name, store in self.durable:
            for name in ("pool", "other"):
                assert store.load_state(name) == self.memory.load_state(name), store_name


StoresAgree.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestStoresAgree = StoresAgree.TestCase
