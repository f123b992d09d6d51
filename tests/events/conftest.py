"""A store with events on, in each backend: memory, a SQLite file, a PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmkit.store import MemoryStore

from .._stores import POSTGRES_DSN, StoreFactory, drop_schema, require_postgres


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A new, empty store whose events are on."""
    if request.param == "memory":
        yield MemoryStore(events=True)
        return
    if request.param == "sqlite":
        factory = StoreFactory("sqlite", str(tmp_path / "events.db"))
        opened = factory(events=True)
        yield opened
        opened.close()
        return
    require_postgres()
    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    opened = StoreFactory("postgres", POSTGRES_DSN, schema)(events=True)
    try:
        yield opened
    finally:
        opened.close()
        drop_schema(schema)
