"""Every store crmkit ships passes the same contract (crmkit.testing.StoreContract)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmkit.store import MemoryStore
from crmkit.testing import StoreContract

from .._stores import POSTGRES_DSN, StoreFactory, drop_schema, empty_schema, require_postgres


def _sqlite_store(path: str | Path) -> Any:
    sqlite = pytest.importorskip(
        "crmkit.store.sqlite", reason="crmkit.store.sqlite (SQLiteStore) is not written yet"
    )
    return sqlite.SQLiteStore(path)


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


class TestMemoryStoreIndexed(StoreContract):
    """Queries answered from ordered indexes from the first record must keep the contract."""

    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore(index_from=0)


class TestSQLiteStoreFile(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Any]:
        store = _sqlite_store(tmp_path / "crm.db")
        yield store
        store.close()


class TestSQLiteStoreInMemory(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[Any]:
        store = _sqlite_store(":memory:")
        yield store
        store.close()


@pytest.fixture(scope="class")
def shared_postgres() -> Iterator[StoreFactory]:
    """One schema for the whole class (creating crmkit's tables takes most of a second)."""
    require_postgres()
    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    try:
        yield StoreFactory("postgres", POSTGRES_DSN, schema)
    finally:
        drop_schema(schema)


class TestPostgresStore(StoreContract):
    """A new store on the class's schema for each test, emptied afterwards."""

    @pytest.fixture
    def store(self, shared_postgres: StoreFactory) -> Iterator[Any]:
        store = shared_postgres()
        yield store
        store.close()
        empty_schema(shared_postgres)
