"""Stores the tests share between OS processes: a SQLite file, a PostgreSQL schema.

The PostgreSQL server is found through ``CRMKIT_POSTGRES_DSN`` (default: the local socket,
database ``test``). Where none is reachable the PostgreSQL tests skip with the reason,
unless ``CRMKIT_REQUIRE_POSTGRES=1`` (CI sets it): then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import attrs
import pytest

POSTGRES_DSN = os.environ.get("CRMKIT_POSTGRES_DSN", "dbname=test")


@cache
def postgres_unreachable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or ``None`` when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'crmkit[postgres]')"
    try:
        import crmkit.store.postgres  # noqa: F401
    except ImportError as err:
        return f"crmkit.store.postgres cannot be imported: {err}"
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return f"no PostgreSQL server at CRMKIT_POSTGRES_DSN={POSTGRES_DSN!r}: {err}"
    return None


def require_postgres() -> None:
    """Skip the calling test when no server is reachable (fail instead in CI)."""
    reason = postgres_unreachable()
    if reason is None:
        return
    if os.environ.get("CRMKIT_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"CRMKIT_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def empty_schema(factory: StoreFactory) -> None:
    """Delete every row of crmkit's tables in the factory's schema (keeping the tables)."""
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename NOT IN "
            "('crmkit_migrations', 'crmkit_record_types')",
            (factory.schema,),
        ).fetchall()
        conn.execute("; ".join(f'DELETE FROM "{factory.schema}"."{t}"' for (t,) in tables))


@attrs.frozen
class StoreFactory:
    """Opens a new connection to one shared store each time it is called, in any process."""

    kind: str  # "sqlite" or "postgres"
    target: str  # the SQLite path or the PostgreSQL DSN
    schema: str | None = None

    def __call__(self, **options: Any) -> Any:
        if self.kind == "sqlite":
            from crmkit.store.sqlite import SQLiteStore

            return SQLiteStore(self.target, **options)
        from crmkit.store.postgres import PostgresStore

        return PostgresStore(self.target, schema=self.schema, **options)


@pytest.fixture
def postgres_factory() -> Iterator[StoreFactory]:
    """A fresh PostgreSQL schema of its own, dropped after the test."""
    require_postgres()
    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    try:
        yield StoreFactory("postgres", POSTGRES_DSN, schema)
    finally:
        drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StoreFactory]:
    """One durable store shared by processes: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield StoreFactory("sqlite", str(tmp_path / "shared.db"))
        return
    require_postgres()
    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    try:
        yield StoreFactory("postgres", POSTGRES_DSN, schema)
    finally:
        drop_schema(schema)


Opener = Callable[..., Any]
