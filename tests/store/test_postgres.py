"""PostgresStore beyond the shared contract: migrations, host connections, schemas, faults.

Every test runs in a schema of its own (``postgres_factory``), dropped afterwards; the
tests skip with the reason where no server is reachable (see tests/_stores.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import psycopg
import pytest

from crmkit.criteria import F
from crmkit.errors import (
    AlreadyExists,
    BatchError,
    StatementTimeout,
    StorageError,
    StorageUnavailable,
    TransactionConflict,
    ValidationError,
)
from crmkit.records import Account, Lead
from crmkit.store import run_transaction

from .._processes import run_processes
from .._stores import POSTGRES_DSN, StoreFactory, drop_schema, require_postgres


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[Any]]:
    """A plain autocommit connection, to look at the database behind the store's back."""
    require_postgres()
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        yield conn


@pytest.fixture
def store(postgres_factory: StoreFactory) -> Iterator[Any]:
    store = postgres_factory()
    yield store
    store.close()


def _tables(admin: psycopg.Connection[Any], schema: str) -> list[str]:
    rows = admin.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
    ).fetchall()
    return [row[0] for row in rows]


def _count(admin: psycopg.Connection[Any], schema: str, table: str) -> int:
    row = admin.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
    assert row is not None
    return int(row[0])


# -- migrations -----------------------------------------------------------------------------


def _open_and_report(index: int, factory: StoreFactory) -> int:
    store = factory()
    try:
        store.accounts.put(Account(id=f"w{index}", name=f"Worker {index}"))
        return int(store.layout_version)
    finally:
        store.close()


def test_processes_opening_a_new_schema_at_once_migrate_it_once(
    postgres_factory: StoreFactory, admin: psycopg.Connection[Any]
) -> None:
    from crmkit.store.postgres import SCHEMA_VERSION

    versions = run_processes(_open_and_report, 4, postgres_factory)
    assert versions == [SCHEMA_VERSION] * 4
    schema = postgres_factory.schema or ""
    rows = admin.execute(f'SELECT version FROM "{schema}".crmkit_migrations ORDER BY 1').fetchall()
    assert [row[0] for row in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert _count(admin, schema, "accounts") == 4


def test_reopening_keeps_the_data(postgres_factory: StoreFactory) -> None:
    with postgres_factory() as first:
        first.accounts.add(Account(id="a1", name="Acme", annual_revenue=Decimal("1.10")))
    with postgres_factory() as again:
        assert again.accounts.get("a1").annual_revenue == Decimal("1.10")
        assert str(again.accounts.get("a1").annual_revenue) == "1.10"


def test_a_newer_layout_is_refused_untouched(
    postgres_factory: StoreFactory, admin: psycopg.Connection[Any]
) -> None:
    schema = postgres_factory.schema or ""
    postgres_factory().close()
    admin.execute(
        f"INSERT INTO \"{schema}\".crmkit_migrations (version, description) VALUES (99, 'x')"
    )
    before = _tables(admin, schema)
    with pytest.raises(StorageError, match="newer than this crmkit knows"):
        postgres_factory()
    assert _tables(admin, schema) == before


def test_a_foreign_schema_is_refused_untouched(admin: psycopg.Connection[Any]) -> None:
    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        admin.execute(f'CREATE TABLE "{schema}".accounts (id int PRIMARY KEY, title text)')
        admin.execute(f"INSERT INTO \"{schema}\".accounts VALUES (1, 'theirs')")
        with pytest.raises(StorageError, match="crmkit did not create") as info:
            StoreFactory("postgres", POSTGRES_DSN, schema)()
        assert not isinstance(info.value, StorageUnavailable)
        assert _tables(admin, schema) == ["accounts"]
        assert admin.execute(f'SELECT * FROM "{schema}".accounts').fetchall() == [(1, "theirs")]
    finally:
        drop_schema(schema)


def test_tables_live_beside_the_apps_own(admin: psycopg.Connection[Any]) -> None:
    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        admin.execute(f'CREATE TABLE "{schema}".orders (id int PRIMARY KEY)')
        admin.execute(f'INSERT INTO "{schema}".orders VALUES (7)')
        with StoreFactory("postgres", POSTGRES_DSN, schema)() as store:
            store.accounts.add(Account(id="a1", name="Acme"))
        tables = _tables(admin, schema)
        assert "orders" in tables
        assert "accounts" in tables
        assert admin.execute(f'SELECT id FROM "{schema}".orders').fetchall() == [(7,)]
    finally:
        drop_schema(schema)


def test_schemas_are_isolated(postgres_factory: StoreFactory) -> None:
    other = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    try:
        with postgres_factory() as one, StoreFactory("postgres", POSTGRES_DSN, other)() as two:
            one.accounts.add(Account(id="a1", name="In one"))
            two.accounts.add(Account(id="a1", name="In two"))
            one.save_state("pool", {"n": 1})
            assert one.accounts.get("a1").name == "In one"
            assert two.accounts.get("a1").name == "In two"
            assert two.load_state("pool") is None
            assert len(two.accounts) == 1
    finally:
        drop_schema(other)


@pytest.mark.parametrize("schema", ["", "two words", 'quo"te', "x" * 64, 5])
def test_bad_schema_names_are_refused(schema: Any) -> None:
    from crmkit.store.postgres import PostgresStore

    with pytest.raises(ValidationError):
        PostgresStore(POSTGRES_DSN, schema=schema)


# -- a connection the host app owns ---------------------------------------------------------


def test_host_transaction_is_the_hosts_to_commit(
    postgres_factory: StoreFactory, admin: psycopg.Connection[Any]
) -> None:
    from crmkit.store.postgres import PostgresStore

    schema = postgres_factory.schema or ""
    with psycopg.connect(POSTGRES_DSN) as conn:  # not autocommit: the host's transaction
        store = PostgresStore(connection=conn, schema=schema)
        conn.commit()  # the migrations ran inside the host's transaction
        assert store.in_transaction
        store.accounts.add(Account(id="a1", name="Acme"))
        assert _count(admin, schema, "accounts") == 0  # nothing committed by crmkit
        conn.rollback()
        assert "a1" not in store.accounts

        store.accounts.add(Account(id="a2", name="Kept"))

        def undone() -> None:
            with store.transaction():  # a savepoint
                store.accounts.add(Account(id="a3", name="Undone"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            undone()
        with store.transaction():
            store.leads.add(Lead(id="l1"))
        assert _count(admin, schema, "accounts") == 0
        conn.commit()
        assert sorted(a.id for a in store.accounts) == ["a2"]
        assert _count(admin, schema, "accounts") == 1
        assert _count(admin, schema, "leads") == 1
        store.close()
        assert not conn.closed  # the host's connection stays open


def test_run_transaction_on_a_host_transaction_runs_once(postgres_factory: StoreFactory) -> None:
    from crmkit.store.postgres import PostgresStore

    postgres_factory().close()
    with psycopg.connect(POSTGRES_DSN) as conn:
        store = PostgresStore(connection=conn, schema=postgres_factory.schema or "")
        calls = []

        def operation() -> int:
            calls.append(1)
            return len(store.accounts)

        assert run_transaction(store, operation) == 0
        assert calls == [1]


def test_host_autocommit_connection_commits_store_transactions(
    postgres_factory: StoreFactory, admin: psycopg.Connection[Any]
) -> None:
    from crmkit.store.postgres import PostgresStore

    schema = postgres_factory.schema or ""
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        store = PostgresStore(connection=conn, schema=schema)
        assert not store.in_transaction
        with store.transaction():
            assert store.in_transaction
            store.accounts.add(Account(id="a1", name="Acme"))
            assert _count(admin, schema, "accounts") == 0
        assert _count(admin, schema, "accounts") == 1
        store.close()
        assert not conn.closed


def test_host_autocommit_connection_inside_its_own_transaction_block(
    postgres_factory: StoreFactory, admin: psycopg.Connection[Any]
) -> None:
    from crmkit.store.postgres import PostgresStore

    schema = postgres_factory.schema or ""
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        store = PostgresStore(connection=conn, schema=schema)

        def host_block() -> None:
            with conn.transaction():  # the host's own block
                assert store.in_transaction
                with store.transaction():  # a savepoint: must not commit the host's block
                    store.accounts.add(Account(id="a1", name="Acme"))
                assert _count(admin, schema, "accounts") == 0
                raise RuntimeError("the host changes its mind")

        with pytest.raises(RuntimeError):
            host_block()
        assert _count(admin, schema, "accounts") == 0
        assert not store.in_transaction


def test_host_connection_and_dsn_are_exclusive() -> None:
    from crmkit.store.postgres import PostgresStore

    require_postgres()
    with psycopg.connect(POSTGRES_DSN) as conn, pytest.raises(ValidationError):
        PostgresStore(POSTGRES_DSN, connection=conn)


# -- transactions and threads ---------------------------------------------------------------


def test_in_transaction_is_per_thread(store: Any) -> None:
    seen: list[bool] = []
    with store.transaction():
        thread = threading.Thread(target=lambda: seen.append(store.in_transaction))
        thread.start()
        thread.join()
        assert store.in_transaction
    assert seen == [False]
    assert not store.in_transaction


def test_other_threads_do_not_see_an_open_transaction(store: Any) -> None:
    seen: list[bool] = []
    with store.transaction():
        store.accounts.add(Account(id="a1", name="Acme"))
        thread = threading.Thread(target=lambda: seen.append("a1" in store.accounts))
        thread.start()
        thread.join()
    assert seen == [False]
    assert "a1" in store.accounts


def test_a_thread_waiting_for_the_only_connection_gets_it(
    postgres_factory: StoreFactory,
) -> None:
    # between calls the store keeps idle connections parked; one must not stay parked
    # while another thread waits for it on the pool
    store = postgres_factory(pool_size=1, connect_timeout=3)
    try:
        store.accounts.add(Account(id="a1", name="Acme"))
        seen: list[str] = []
        with store.transaction():
            assert store.accounts.get("a1").name == "Acme"
            thread = threading.Thread(target=lambda: seen.append(store.accounts.get("a1").name))
            thread.start()
            while not store._wanting and thread.is_alive():
                time.sleep(0.01)
        thread.join()
        assert seen == ["Acme"]
        assert store.accounts.get("a1").version == 1  # and the connection comes back again
    finally:
        store.close()


def test_failed_add_inside_a_transaction_keeps_it_usable(store: Any) -> None:
    with store.transaction():
        store.accounts.add(Account(id="a1", name="Acme"))
        with pytest.raises(AlreadyExists):
            store.accounts.add(Account(id="a1", name="Again"))
        with pytest.raises(BatchError):
            store.accounts.add_many([Account(id="a2", name="B"), Account(id="a1", name="C")])
        store.accounts.add(Account(id="a3", name="After"))
    assert [a.id for a in store.accounts] == ["a1", "a3"]


# -- bulk paths ------------------------------------------------------------------------------


def test_bulk_batches_and_streamed_queries(store: Any) -> None:
    n = 5_000  # more than one streamed chunk
    batch = [
        Account(id=f"a{i:05d}", name=f"Account {i}", employees=i, custom={"tier": i % 3})
        for i in range(n)
    ]
    assert [a.version for a in store.accounts.add_many(batch)] == [1] * n
    replaced = store.accounts.put_many(
        [attrs.evolve(a, name="Renamed") for a in batch[::2]]
        + [Account(id=f"b{i}", name="New") for i in range(3)]
    )
    assert [r.version for r in replaced] == [2] * len(batch[::2]) + [1, 1, 1]
    found = store.accounts.query(F.custom["tier"] == 0)
    assert [a.id for a in found] == [a.id for a in batch if a.custom["tier"] == 0]
    assert sum(a.name == "Renamed" for a in store.accounts.query()) == len(batch[::2])
    cols = store.accounts.columns(["employees"], F.employees < 10)
    assert cols["employees"].tolist() == [float(i) for i in range(10)]
    assert len(store.accounts) == n + 3


def test_bad_row_in_a_big_batch_writes_nothing(store: Any) -> None:
    batch: list[Any] = [Account(id=f"a{i}", name="A", employees=i) for i in range(3_000)]
    bad = attrs.evolve(batch[2_500])
    object.__setattr__(bad, "employees", 2**63)  # past the record's own check: the store's
    batch[2_500] = bad
    with pytest.raises(BatchError) as info:
        store.accounts.add_many(batch)
    assert [index for index, _ in info.value.errors] == [2_500]
    with pytest.raises(BatchError):
        store.accounts.put_many(batch)
    assert len(store.accounts) == 0
    assert len(store.accounts.add_many(batch[:10])) == 10  # the aborted COPY left it usable


def test_large_floats_in_custom_keep_their_type_through_add_many(store: Any) -> None:
    custom = {"big": 1e16, "huge": -1.7e308, "note": "e+1", "n": 10**15}
    stored = store.accounts.add_many([Account(id="a1", name="A", custom=custom)])
    assert stored[0].version == 1
    back = store.accounts.get("a1").custom
    assert back == custom
    assert {k: type(v) for k, v in back.items()} == {k: type(v) for k, v in custom.items()}


# -- declared indexes ------------------------------------------------------------------------


def _plan(store: Any, admin: psycopg.Connection[Any], criteria: Any) -> str:
    repo = store.accounts
    where, params = repo._where(criteria)
    rows = admin.execute(f"EXPLAIN SELECT id FROM {repo._table}{where}", params).fetchall()
    return "\n".join(row[0] for row in rows)


def test_declared_index_on_a_custom_field_is_used(
    store: Any, admin: psycopg.Connection[Any]
) -> None:
    industries = ["retail", "energy", "banking", "health", "media"]
    store.accounts.add_many(
        Account(
            id=f"a{i}",
            name="A",
            employees=i,
            custom={"industry": f"{industries[i % 5]}-{i % 400}", "score": i},
        )
        for i in range(4_000)
    )
    admin.execute(f'ANALYZE "{store.schema}".accounts')
    by_industry = F.custom["industry"] == "energy-1"
    by_score = F.custom["score"] > 3_990
    assert "ix_accounts_custom_industry" not in _plan(store, admin, by_industry)

    assert store.ensure_index(Account, "custom.industry") == ("custom.industry",)
    assert store.ensure_index(Account, "custom.industry") == ("custom.industry",)  # idempotent
    assert store.ensure_index(Account, "custom.score") == ("custom.score",)
    store.ensure_index(Account, "employees")
    admin.execute(f'ANALYZE "{store.schema}".accounts')
    assert store.indexes(Account) == [("custom.industry",), ("custom.score",), ("employees",)]
    assert store.indexes(Lead) == []

    assert "Index" in _plan(store, admin, by_industry)
    assert "ix_accounts_custom_industry " in _plan(store, admin, by_industry)
    assert "ix_accounts_custom_score_num" in _plan(store, admin, by_score)
    assert "ix_accounts_employees" in _plan(store, admin, F.employees.between(10, 12))
    expected = sorted(f"a{i}" for i in range(1, 4_000, 400))  # i % 400 == 1, so i % 5 == 1
    assert [a.id for a in store.accounts.query(by_industry)] == expected
    assert store.accounts.count(by_score) == 9


def test_ensure_index_checks_its_fields(store: Any) -> None:
    with pytest.raises(ValidationError, match="no_such_field"):
        store.ensure_index(Account, "no_such_field")
    with pytest.raises(ValidationError, match="identifier"):
        store.ensure_index(Account, "custom.not-an-identifier")
    with pytest.raises(ValidationError, match="one to four"):
        store.ensure_index(Account)
    with pytest.raises(ValidationError):
        store.ensure_index(int, "id")
    assert store.indexes(Account) == []


# -- faults ----------------------------------------------------------------------------------


def test_connection_refused_is_unavailable() -> None:
    from crmkit.store.postgres import PostgresStore

    require_postgres()
    with pytest.raises(StorageUnavailable) as info:
        PostgresStore("host=127.0.0.1 port=1 dbname=test", connect_timeout=2)
    assert info.value.retryable
    assert "Connection refused" in str(info.value)
    assert "retry" in str(info.value)


@pytest.mark.parametrize(
    "dsn", [f"{POSTGRES_DSN} user=crmkit_no_such_role", "dbname=crmkit_no_such_database"]
)
def test_refused_credentials_are_not_retryable(dsn: str) -> None:
    from crmkit.store.postgres import PostgresStore

    require_postgres()
    with pytest.raises(StorageError) as info:
        PostgresStore(dsn)
    assert not info.value.retryable
    assert not isinstance(info.value, StorageUnavailable)
    assert "check the user, password and database name in the DSN" in str(info.value)


def test_statement_timeout(postgres_factory: StoreFactory, admin: psycopg.Connection[Any]) -> None:
    store = postgres_factory(statement_timeout=0.2)
    try:
        stored = store.accounts.add(Account(id="a1", name="Acme"))
        schema = postgres_factory.schema
        with psycopg.connect(POSTGRES_DSN) as locker:  # holds the row lock
            locker.execute(f"SELECT 1 FROM \"{schema}\".accounts WHERE id = 'a1' FOR UPDATE")
            with pytest.raises(StatementTimeout) as info:
                store.accounts.update(attrs.evolve(stored, name="Blocked"))
            locker.rollback()
        assert not info.value.retryable
        assert "statement_timeout" in str(info.value)
        assert store.accounts.get("a1").name == "Acme"
        assert store.accounts.update(attrs.evolve(stored, name="Later")).version == 2
    finally:
        store.close()


def test_serialization_failure_is_a_conflict_and_writes_nothing(
    postgres_factory: StoreFactory,
) -> None:
    one, two = postgres_factory(), postgres_factory()
    try:
        one.accounts.add_many([Account(id="x", name="X"), Account(id="y", name="Y")])

        def write_skew() -> None:  # each transaction reads what the other one writes
            with one.transaction():
                x = one.accounts.get("x")
                with two.transaction():
                    y = two.accounts.get("y")
                    two.accounts.update(attrs.evolve(x, name="X by two"))
                one.accounts.update(attrs.evolve(y, name="Y by one"))

        with pytest.raises(TransactionConflict) as info:
            write_skew()
        assert info.value.retryable
        assert isinstance(info.value.__cause__, psycopg.errors.SerializationFailure)
        assert one.accounts.get("x").name == "X by two"
        assert one.accounts.get("y").name == "Y"
    finally:
        one.close()
        two.close()


def test_deadlock_is_a_conflict(postgres_factory: StoreFactory) -> None:
    one, two = postgres_factory(), postgres_factory()
    one.accounts.add_many([Account(id="x", name="X"), Account(id="y", name="Y")])
    both_locked = threading.Barrier(2, timeout=30)
    outcomes: dict[str, BaseException | None] = {}

    def work(store: Any, first: str, second: str) -> None:
        try:
            with store.transaction():
                store.accounts.update(store.accounts.get(first), expected_version=1)
                both_locked.wait()
                store.accounts.update(store.accounts.get(second))
            outcomes[first] = None
        except BaseException as err:
            outcomes[first] = err

    threads = [
        threading.Thread(target=work, args=(one, "x", "y")),
        threading.Thread(target=work, args=(two, "y", "x")),
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        errors = [e for e in outcomes.values() if e is not None]
        assert len(outcomes) == 2
        assert len(errors) >= 1
        assert all(isinstance(e, TransactionConflict) for e in errors), errors
        assert any(isinstance(e.__cause__, psycopg.errors.DeadlockDetected) for e in errors)
        versions = {a.id: a.version for a in one.accounts}
        assert versions in ({"x": 1, "y": 1}, {"x": 2, "y": 2})
    finally:
        one.close()
        two.close()


def _terminate(admin: psycopg.Connection[Any], conn: psycopg.Connection[Any]) -> None:
    pid = conn.info.backend_pid
    admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_backend_killed_mid_transaction(store: Any, admin: psycopg.Connection[Any]) -> None:
    batch = [Account(id=f"a{i}", name="A") for i in range(1_000)]

    def work() -> None:
        with store.transaction():
            store.accounts.add_many(batch[:500])
            _terminate(admin, store._local.conn)
            store.accounts.add_many(batch[500:])

    with pytest.raises(StorageUnavailable) as info:
        work()
    assert info.value.retryable
    assert "retry" in str(info.value)
    assert not store.in_transaction
    assert _count(admin, store.schema, "accounts") == 0  # nothing half-written
    assert len(store.accounts.add_many(batch)) == 1_000  # and the store works again
    assert len(store.accounts) == 1_000


def _kill_pool(store: Any, admin: psycopg.Connection[Any]) -> None:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
        (f"crmkit-{store.schema}",),
    ).fetchall()
    assert rows
    for (pid,) in rows:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_idle_connections_killed_then_the_pool_recovers(
    store: Any, admin: psycopg.Connection[Any]
) -> None:
    store.accounts.add(Account(id="a1", name="Acme"))
    _kill_pool(store, admin)
    assert store.accounts.get("a1").name == "Acme"  # a read runs again on a live connection
    _kill_pool(store, admin)
    with contextlib.suppress(StorageUnavailable):  # a write is never repeated: it may fail
        store.accounts.add(Account(id="a2", name="Two"))
    assert store.accounts.add(Account(id="a3", name="Three")).version == 1  # the next works
    assert store.accounts.count() in (2, 3)


def test_run_transaction_retries_after_a_lost_connection(
    store: Any, admin: psycopg.Connection[Any]
) -> None:
    attempts: list[int] = []

    def operation() -> None:
        attempts.append(1)
        store.accounts.add(Account(id=f"a{len(attempts)}", name="A"))
        if len(attempts) == 1:
            _terminate(admin, store._local.conn)
        store.leads.add(Lead(id="l1"))

    run_transaction(store, operation)
    assert len(attempts) == 2
    assert [a.id for a in store.accounts] == ["a2"]  # the first attempt left nothing
    assert [lead.id for lead in store.leads] == ["l1"]


def test_closed_store_says_so(postgres_factory: StoreFactory) -> None:
    store = postgres_factory()
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed") as info:
        store.accounts.get("a1")
    assert not info.value.retryable


def _import_accounts(index: int, factory: StoreFactory) -> int:
    store = factory()
    try:
        for batch in range(30):
            store.accounts.add_many(
                Account(id=f"w{index}-{batch}-{i}", name="A", country="US") for i in range(20)
            )
            store.accounts.put_many(
                Account(id=f"w{index}-{batch}-{i}", name="B", country="FR") for i in range(10)
            )
        return len(store.accounts.query(F.id.startswith(f"w{index}-")))
    finally:
        store.close()


def test_concurrent_imports_of_different_ids_do_not_conflict(
    postgres_factory: StoreFactory,
) -> None:
    postgres_factory().close()
    assert run_processes(_import_accounts, 4, postgres_factory) == [600] * 4


def test_a_store_nobody_holds_is_collected(postgres_factory: StoreFactory) -> None:
    import gc
    import weakref

    store = postgres_factory()
    store.accounts.add(Account(id="a1", name="Acme"))
    ref = weakref.ref(store)
    del store
    gc.collect()
    assert ref() is None


def test_values_travel_as_parameters_never_in_the_sql(store: Any) -> None:
    from crmkit.criteria import _postgres_sql, bind

    nasty = "x'); DROP TABLE accounts; --"
    store.accounts.add(Account(id="a1", name=nasty, custom={"note": nasty}))
    criteria = (F.name == nasty) & (F.custom["note"].isin([nasty, "%s"]))
    sql, params = _postgres_sql(bind(criteria, Account), lambda name: f'"{name}"')
    assert nasty not in sql
    assert params == [nasty, [nasty, "%s"]]
    assert [a.id for a in store.accounts.query(criteria)] == ["a1"]
    assert store.accounts.count(F.name.contains("%")) == 0
    assert len(store.accounts) == 1
