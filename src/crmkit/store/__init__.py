"""Stores: where records live. ``MemoryStore`` for tests and notebooks, ``SQLiteStore``
for an embedded, durable database, ``PostgresStore`` for apps that run many processes;
all follow the :class:`Store` protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit.store._base import CriteriaLike, Repository, RepositoryAccess, Store, run_transaction
from crmkit.store.memory import MemoryRepository, MemoryStore

if TYPE_CHECKING:
    from crmkit.store.postgres import PostgresStore
    from crmkit.store.sqlite import SQLiteStore

__all__ = [
    "CriteriaLike",
    "MemoryRepository",
    "MemoryStore",
    "PostgresStore",
    "Repository",
    "RepositoryAccess",
    "SQLiteStore",
    "Store",
    "run_transaction",
]


def __getattr__(name: str) -> Any:
    if name == "SQLiteStore":
        from crmkit.store.sqlite import SQLiteStore

        return SQLiteStore
    if name == "PostgresStore":
        from crmkit.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'crmkit.store' has no attribute {name!r}")
