"""Every store crmkit ships passes the same contract (crmkit.testing.StoreContract)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmkit.store import MemoryStore
from crmkit.testing import StoreContract


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


class TestPostgresStore(StoreContract):
    """Each test in a schema of its own, dropped afterwards (see tests/_stores.py)."""

    @pytest.fixture
    def store(self, postgres_factory: Any) -> Iterator[Any]:
        store = postgres_factory()
        yield store
        store.close()
