"""The stores the dedupe tests run on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from crmkit.store import MemoryStore, SQLiteStore

from .._stores import empty_schema


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Makes an empty store of each real kind (PostgreSQL: one schema, emptied per call)."""
    opened: list[Any] = []
    factory = request.getfixturevalue("postgres_factory") if request.param == "postgres" else None

    def make() -> Any:
        if factory is not None:
            empty_schema(factory)
            store = factory()
        else:
            store = MemoryStore() if request.param == "memory" else SQLiteStore(":memory:")
        while opened:  # one store open at a time: each holds a pool of connections
            opened.pop().close()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
