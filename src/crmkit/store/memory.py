"""MemoryStore: every record in dicts, guarded by a lock. A product, not a fake.

It behaves exactly like :class:`~crmkit.store.SQLiteStore` (the same contract tests and
a stateful hypothesis test hold both to it) and is the store to use in test suites and
notebooks.

>>> from crmkit.records import Account
>>> store = MemoryStore()
>>> store.accounts.add(Account(id="a1", name="Acme", country="US")).version
1
>>> [a.name for a in store.accounts.query({"field": "country", "op": "==", "value": "US"})]
['Acme']
>>> with store.transaction():
...     _ = store.accounts.add(Account(id="a2", name="Globex"))
...     raise_it = False
>>> len(store.accounts)
2
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import attrs
import numpy as np

from crmkit._columns import columns_of, field_kind
from crmkit._schema import plural
from crmkit.errors import AlreadyExists, ConflictError, NotFound, ValidationError
from crmkit.records import (
    RECORD_TYPES,
)
from crmkit.store._base import (
    CriteriaLike,
    RepositoryAccess,
    bound,
    check_batch,
    check_page,
    check_type,
    sort_records,
)

__all__ = ["MemoryRepository", "MemoryStore"]

T = TypeVar("T")

_MISSING = object()
_STATE = "<state>"  # journal key prefix for state documents (not a record type name)


class _Journal:
    """Undo log of one open transaction: the first old value of every key it touched."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Any] = {}


class MemoryRepository(Generic[T]):
    """The records of one type in a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore, record_type: type[T]) -> None:
        self._store = store
        self._type = record_type
        self._name = record_type.__name__
        self._rows: dict[str, T] = {}

    def __repr__(self) -> str:
        return f"<MemoryRepository {plural(self._type)}: {len(self._rows)} records>"

    @property
    def record_type(self) -> type[T]:
        return self._type

    # -- reads --

    def get(self, record_id: str) -> T:
        record = self._rows.get(record_id)
        if record is None:
            raise NotFound(self._name, record_id)
        return record

    def find(self, record_id: str) -> T | None:
        return self._rows.get(record_id)

    def __iter__(self) -> Iterator[T]:
        with self._store._lock:
            records = [self._rows[k] for k in sorted(self._rows)]
        return iter(records)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._rows

    def query(
        self,
        criteria: CriteriaLike = None,
        *,
        order_by: str | Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[T]:
        """Matching records, ordered (see the store contract), paged by ``limit``/``offset``."""
        test = bound(criteria, self._type)
        check_page(limit, offset)
        with self._store._lock:
            rows = list(self._rows.values())
        found = rows if test.matches_everything else test.filter(rows)
        sort_records(found, self._type, order_by)
        end = None if limit is None else offset + limit
        return found[offset:end]

    def count(self, criteria: CriteriaLike = None) -> int:
        test = bound(criteria, self._type)
        with self._store._lock:
            if test.matches_everything:
                return len(self._rows)
            return len(test.filter(list(self._rows.values())))

    def columns(
        self, fields: Sequence[str], criteria: CriteriaLike = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """The named fields of the matching records (in id order) as numpy columns."""
        for name in fields:
            field_kind(self._type, name)
        records = self.query(criteria)
        return columns_of(self._type, records, fields)

    # -- writes --

    def add(self, record: T) -> T:
        check_type(self._type, record)
        new: Any = record
        with self._store._lock:
            if new.id in self._rows:
                raise AlreadyExists(self._name, new.id)
            stored: T = attrs.evolve(new, version=1)
            self._write(new.id, stored)
            return stored

    def put(self, record: T) -> T:
        check_type(self._type, record)
        new: Any = record
        with self._store._lock:
            stored: T = attrs.evolve(new, version=self._next_version(new.id))
            self._write(new.id, stored)
            return stored

    def update(self, record: T, *, expected_version: int | None = None) -> T:
        check_type(self._type, record)
        new: Any = record
        expected: int = new.version if expected_version is None else expected_version
        with self._store._lock:
            old: Any = self._rows.get(new.id)
            if old is None:
                raise NotFound(self._name, new.id)
            if old.version != expected:
                raise ConflictError(self._name, new.id, expected, old.version)
            stored: T = attrs.evolve(new, version=expected + 1)
            self._write(new.id, stored)
            return stored

    def delete(self, record_id: str, *, expected_version: int | None = None) -> None:
        with self._store._lock:
            old: Any = self._rows.get(record_id)
            if old is None:
                raise NotFound(self._name, record_id)
            if expected_version is not None and old.version != expected_version:
                raise ConflictError(self._name, record_id, expected_version, old.version)
            self._write(record_id, _MISSING)

    def add_many(self, records: Iterable[T]) -> list[T]:
        """Add every record or none: a bad one raises ``BatchError`` listing them all."""
        with self._store._lock:
            batch = check_batch(self._type, records, self._rows.__contains__)
            stored = [attrs.evolve(r, version=1) for r in batch]
            for record in stored:
                self._write(record.id, record)
            return stored

    def put_many(self, records: Iterable[T]) -> list[T]:
        """Insert or replace every record or none (no version check)."""
        with self._store._lock:
            batch = check_batch(self._type, records, None)
            stored = [attrs.evolve(r, version=self._next_version(r.id)) for r in batch]
            for record in stored:
                self._write(record.id, record)
            return stored

    def _next_version(self, record_id: str) -> int:
        old: Any = self._rows.get(record_id)
        return 1 if old is None else int(old.version) + 1

    def _write(self, record_id: str, value: Any) -> None:
        journal = self._store._journal()
        if journal is not None:
            key = (self._name, record_id)
            if key not in journal.entries:
                journal.entries[key] = self._rows.get(record_id, _MISSING)
        if value is _MISSING:
            del self._rows[record_id]
        else:
            self._rows[record_id] = value

    def _restore(self, record_id: str, value: Any) -> None:
        if value is _MISSING:
            self._rows.pop(record_id, None)
        else:
            self._rows[record_id] = value


class MemoryStore(RepositoryAccess):
    """A complete store in memory: fast, isolated per instance, thread-safe.

    A transaction holds the store's lock for its whole duration, so other threads wait
    rather than see half of it.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._journals: list[_Journal] = []
        self._owner: int | None = None
        self._repos: dict[type[Any], MemoryRepository[Any]] = {
            t: MemoryRepository(self, t) for t in RECORD_TYPES
        }
        self._state: dict[str, dict[str, Any]] = {}
        self._closed = False

    def __repr__(self) -> str:
        counts = ", ".join(f"{plural(t)}={len(r)}" for t, r in self._repos.items() if len(r))
        return f"<MemoryStore {counts or 'empty'}>"

    def repository(self, record_type: type[T]) -> MemoryRepository[T]:
        """The repository for ``record_type``."""
        try:
            return self._repos[record_type]
        except KeyError:
            raise ValidationError(
                "Store", None, record_type, "is not a crmkit record type"
            ) from None

    def _journal(self) -> _Journal | None:
        return self._journals[-1] if self._journals else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside lands together or not at all; transactions nest."""
        with self._lock:
            journal = _Journal()
            self._journals.append(journal)
            try:
                yield
            except BaseException:
                self._journals.pop()
                by_name = {t.__name__: r for t, r in self._repos.items()}
                for (name, key), old in journal.entries.items():
                    if name == _STATE:
                        self._restore_state(key, old)
                    else:
                        by_name[name]._restore(key, old)
                raise
            else:
                self._journals.pop()
                outer = self._journal()
                if outer is not None:  # the outer transaction may still roll this back
                    for entry, old in journal.entries.items():
                        outer.entries.setdefault(entry, old)

    def load_state(self, name: str) -> dict[str, Any] | None:
        """A small JSON document saved with :meth:`save_state`, or ``None``."""
        with self._lock:
            data = self._state.get(name)
            return copy.deepcopy(data) if data is not None else None

    def save_state(self, name: str, data: Mapping[str, Any]) -> None:
        """Keep ``data`` (JSON-able) under ``name``; transactions cover it."""
        import json

        try:
            text = json.dumps(dict(data), sort_keys=True)
        except (TypeError, ValueError) as err:
            raise ValidationError("State", name, data, f"must be JSON-able: {err}") from err
        with self._lock:
            journal = self._journal()
            if journal is not None and (_STATE, name) not in journal.entries:
                journal.entries[(_STATE, name)] = self._state.get(name, _MISSING)
            self._state[name] = json.loads(text)

    def _restore_state(self, name: str, old: Any) -> None:
        if old is _MISSING:
            self._state.pop(name, None)
        else:
            self._state[name] = old

    def close(self) -> None:
        """Nothing to release; here so code can close any store."""
        self._closed = True

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
