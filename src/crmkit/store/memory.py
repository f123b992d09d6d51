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

import bisect
import copy
import heapq
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import numpy as np

from crmkit._columns import columns_of, field_kind
from crmkit._fields import check_state
from crmkit._schema import plural
from crmkit._time import micros
from crmkit.criteria import BoundCriteria
from crmkit.errors import AlreadyExists, ConflictError, NotFound, ValidationError
from crmkit.records import Reminder, ReminderStatus
from crmkit.registry import DECLARED, STATE, record_types
from crmkit.store._base import (
    CHECKED_TYPES,
    CriteriaLike,
    IntegrityChecked,
    RepositoryAccess,
    bound,
    check_batch,
    check_page,
    check_patches,
    check_type,
    condition_failed,
    index_fields,
    order_fields,
    patch_fields,
    patch_record,
    paused_gc,
    sort_records,
    version_copier,
)
from crmkit.store._columnar import AddsColumns
from crmkit.store._events import EmitsChanges, Outbox
from crmkit.store._index import (
    Access,
    FieldIndex,
    estimate,
    exact_lookup,
    ids_of,
    ordered_scan,
    plan,
    point_ids,
)

__all__ = ["MemoryRepository", "MemoryStore"]

T = TypeVar("T")

_MISSING = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_STATE = "<state>"  # journal key prefix for state documents (not a record type name)
_SCAN_FRACTION = 4  # read candidates from an index only when they are at most 1/4 of all
_PLANS = 256  # plans kept per repository (bound criteria are cached, so they repeat)
# accesses, their size, their ids, and whether those ids are exactly the matches in id order
_Planned = tuple[list[Access], int, "list[str] | None", bool]


class _Journal:
    """Undo log of one open transaction: the first old value of every key it touched."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Any] = {}


class MemoryRepository(AddsColumns, Generic[T]):
    """The records of one type in a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore, record_type: type[T]) -> None:
        self._store = store
        self._type = record_type
        self._name = record_type.__name__
        self._rows: dict[str, T] = {}
        self._indexes: dict[tuple[str, str | None], FieldIndex] = {}
        self._declared: list[tuple[str, ...]] = []
        self._copy: Callable[[Any, int], Any] = version_copier(record_type)
        # bound criteria -> (rows when planned, accesses or None, exact): a repeated query
        # reuses the plan and only re-counts its candidates
        self._plans: dict[BoundCriteria, tuple[int, list[Access] | None, bool]] = {}

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
        order = order_fields(self._type, order_by)
        end = None if limit is None else offset + limit
        with self._store._lock:
            planned = self._plan(test)
            if (
                end is not None
                and len(order) == 1
                and self._uses_indexes()
                and (planned is None or planned[1] > 4 * end + 256)
            ):  # many candidates: walk an index in order and stop after `end` matches
                found = self._ordered(test, order[0], end)
                if found is not None:
                    return found[offset:end]
            if planned is not None and planned[3] and planned[2] is not None and not order:
                table = self._rows  # one exact lookup: the index's ids are the answer, in order
                exact = [table[i] for i in planned[2]]
                return exact if offset == 0 and end is None else exact[offset:end]
            rows = self._candidates(planned)
        found = rows if test.matches_everything else test.filter(rows)
        if len(found) > 1:
            sort_records(found, self._type, order_by)
        return found if offset == 0 and end is None else found[offset:end]

    def count(self, criteria: CriteriaLike = None) -> int:
        test = bound(criteria, self._type)
        with self._store._lock:
            if test.matches_everything:
                return len(self._rows)
            return len(test.filter(self._candidates(self._plan(test))))

    # -- indexes --

    def _uses_indexes(self) -> bool:
        if self._declared:
            return True
        threshold = self._store.index_from
        return threshold is not None and len(self._rows) >= threshold

    def _declare(self, fields: tuple[str, ...]) -> None:
        # the planner reads record attributes only: a custom field is recorded, then scanned
        attributes = [f for f in fields if not f.startswith("custom.")]
        with self._store._lock:
            if fields not in self._declared:
                self._declared.append(fields)
            for field in attributes:
                self._index(field, None)

    def _index(self, field: str, partition: str | None) -> FieldIndex:
        index = self._indexes.get((field, partition))
        if index is None:
            index = FieldIndex(self._type, field, partition, self._rows)
            self._indexes[(field, partition)] = index
        return index

    def _plan(self, test: BoundCriteria) -> _Planned | None:
        """Index accesses for ``test``, how many ids they read, and those ids when reading
        them was as cheap as counting them (a lookup of exact keys)."""
        if test.matches_everything or not self._uses_indexes():
            return None
        size = len(self._rows)
        known = self._plans.get(test)
        if known is not None and size <= 2 * known[0] + 64 and known[0] <= 2 * size + 64:
            accesses = known[1]
            if accesses is None:
                return None
            index = self._index
            ids = point_ids(accesses, index)
            if ids is not None:
                return accesses, len(ids), ids, known[2]
            return accesses, sum(estimate(access, index) for access in accesses), None, False
        planned = plan(test, self._index)
        if len(self._plans) >= _PLANS:
            self._plans.clear()
        if planned is None:
            self._plans[test] = (size, None, False)
            return None
        exact = exact_lookup(test, planned[0])
        self._plans[test] = (size, planned[0], exact)
        ids = point_ids(planned[0], self._index) if exact else None
        return planned[0], planned[1] if ids is None else len(ids), ids, exact

    def _candidates(self, planned: _Planned | None) -> list[T]:
        """Every record that may match: from the indexes when they narrow the search."""
        rows = self._rows
        if planned is not None and planned[1] <= len(rows) // _SCAN_FRACTION:
            ids = planned[2]
            return [rows[i] for i in (ids_of(planned[0], self._index) if ids is None else ids)]
        return list(rows.values())

    def _ordered(self, test: BoundCriteria, order: tuple[str, bool], end: int) -> list[T] | None:
        """The first ``end`` matches in ``order``, read from the index on that field."""
        walk = ordered_scan(test, order[0], order[1], self._index)
        if walk is None or end == 0:
            return None if walk is None else []
        rows, matches = self._rows, test.matches
        found: list[T] = []
        for record_id in walk:
            record = rows[record_id]
            if matches(record):
                found.append(record)
                if len(found) == end:
                    break
        return found

    def _reindex(self, record_id: str, old: Any, new: Any) -> None:
        for index in self._indexes.values():
            before = None if old is _MISSING else index.keys_of(old)
            after = None if new is _MISSING else index.keys_of(new)
            if before == after:
                continue
            if before is not None:
                index.remove(record_id, before)
            if after is not None:
                index.add(record_id, after)

    def _drop_indexes_for(self, changes: int) -> None:
        """Drop the indexes before a large batch; the next query rebuilds them in one sort
        (declared indexes: the batch itself, see :meth:`_rebuild_declared`)."""
        if changes > max(256, len(self._rows) // 8):
            self._indexes.clear()

    def _rebuild_declared(self) -> None:
        """Build the declared indexes a large batch dropped, at the end of the batch, so
        the first query after a bulk load does not pay for them (as a hand-kept index
        does not)."""
        for fields in self._declared:
            for field in fields:
                if not field.startswith("custom."):
                    self._index(field, None)

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
            # a record already at version 1 is kept as it is (frozen), as add_many does
            stored: T = new if new.version == 1 else self._copy(new, 1)
            self._write(new.id, stored)
            return stored

    def put(self, record: T) -> T:
        check_type(self._type, record)
        new: Any = record
        with self._store._lock:
            stored: T = self._copy(new, self._next_version(new.id))
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
            stored: T = self._copy(new, expected + 1)
            self._write(new.id, stored)
            return stored

    def patch(
        self,
        record_id: str,
        *,
        expected_version: int | None = None,
        where: CriteriaLike = None,
        **fields: Any,
    ) -> T:
        """Change only ``fields`` of a stored record (checked like the record itself), if
        it is at ``expected_version`` and matches ``where``."""
        changes = patch_fields(self._type, record_id, fields)
        test = None if where is None else bound(where, self._type)
        with self._store._lock:
            old: Any = self.get(record_id)
            if expected_version is not None and old.version != expected_version:
                raise ConflictError(self._name, record_id, expected_version, old.version)
            if test is not None and not test.matches(old):
                raise condition_failed(self._name, record_id, test, old.version)
            stored: T = patch_record(old, changes, old.version + 1)
            self._write(record_id, stored)
            return stored

    def patch_many(
        self,
        changes: Mapping[str, Mapping[str, Any]],
        *,
        expected_versions: Mapping[str, int] | None = None,
        where: CriteriaLike = None,
    ) -> list[T]:
        """Patch every record or none: a bad entry raises ``BatchError`` listing them all."""
        with self._store._lock:
            with paused_gc(len(changes) if isinstance(changes, Mapping) else 0):
                pairs = check_patches(self._type, changes, expected_versions, self.get, where)
                self._drop_indexes_for(len(pairs))
                stored = [record for _, record in pairs]  # stamped with the next version
                names = {name for fields in changes.values() for name in fields}
                self._write_many(stored, names)
                self._rebuild_declared()
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
            self._drop_indexes_for(len(batch))
            copy = self._copy  # a record already at version 1 is kept as it is (frozen)
            with paused_gc(len(batch)):
                stored = [r if r.version == 1 else copy(r, 1) for r in batch]
                self._write_many(stored)
                self._rebuild_declared()
            return stored

    def put_many(self, records: Iterable[T]) -> list[T]:
        """Insert or replace every record or none (no version check)."""
        with self._store._lock:
            batch = check_batch(self._type, records, None)
            self._drop_indexes_for(len(batch))
            with paused_gc(len(batch)):
                stored = [self._copy(r, self._next_version(r.id)) for r in batch]
                self._write_many(stored)
                self._rebuild_declared()
            return stored

    def _next_version(self, record_id: str) -> int:
        old: Any = self._rows.get(record_id)
        return 1 if old is None else int(old.version) + 1

    def _write(self, record_id: str, value: Any) -> None:
        old = self._rows.get(record_id, _MISSING)
        journal = self._store._journal()
        if journal is not None:
            journal.entries.setdefault((self._name, record_id), old)
        if self._indexes:
            self._reindex(record_id, old, value)
        if value is _MISSING:
            del self._rows[record_id]
        else:
            self._rows[record_id] = value

    def _write_many(self, records: list[Any], changed: Iterable[str] | None = None) -> None:
        """``_write`` of each record; one ``dict.update`` when nothing needs the old values
        (no open transaction, no index on the ``changed`` fields (default: all), no
        subclass tracking writes)."""
        indexed = bool(self._indexes)
        if indexed and changed is not None:
            names = set(changed)
            indexed = any(f in names or p in names for f, p in self._indexes)
        if indexed or self._store._journals or type(self)._write is not _plain_write:
            for record in records:
                self._write(record.id, record)
        else:
            self._rows.update({record.id: record for record in records})

    def _restore(self, record_id: str, value: Any) -> None:
        if self._indexes:
            self._reindex(record_id, self._rows.get(record_id, _MISSING), value)
        if value is _MISSING:
            self._rows.pop(record_id, None)
        else:
            self._rows[record_id] = value


_plain_write = MemoryRepository._write


class _EmittingMemoryRepository(EmitsChanges, MemoryRepository[T]):
    """A MemoryRepository whose writes yield change events (when the store's are on)."""


class _CheckedMemoryRepository(IntegrityChecked, EmitsChanges, MemoryRepository[T]):
    """A MemoryRepository whose writes check the rules that span records (campaign members)."""


def _open_due(reminder: Any) -> int | None:
    """When an open reminder is effectively due (``snoozed_until``, else ``due_at``), in
    microseconds (integers sort and compare faster than datetimes)."""
    if reminder is _MISSING or reminder.status is not ReminderStatus.OPEN:
        return None
    return micros(reminder.snoozed_until or reminder.due_at)


_SLOT_BITS = 32  # a reminder heap entry: due << 32 | slot
_SLOT_MASK = (1 << _SLOT_BITS) - 1


class MemoryReminderRepository(MemoryRepository[Reminder]):
    """The reminders of a :class:`MemoryStore`: also keeps the open ones in a heap by their
    effective due time, so ``next_due`` reads the first in O(1) (amortised) and ``due``
    the k earliest in O(k log k), however many reminders are snoozed or done.

    A write pushes the reminder's new due time and leaves its old entry in place (skipped
    on read: a dict of the open reminders' due times says which entries are current); the
    heap is rebuilt from that dict when stale entries outnumber the open reminders. An
    entry is one integer, ``due << 32 | slot`` (``slot`` numbers the reminder's id), so
    keeping the heap costs a write one ``heappush`` and no object the garbage collector
    tracks (at 1e6 reminders, a full collection costs about a second).

    >>> from datetime import UTC, datetime
    >>> store = MemoryStore()
    >>> t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> _ = store.reminders.add_many([Reminder(id="b", title="Call", due_at=t),
    ...                               Reminder(id="a", title="Mail", due_at=t)])
    >>> store.reminders.first_open().id, [r.id for r in store.reminders.open_due_by(t)]
    ('a', ['a', 'b'])
    """

    STALE_SLACK = 1024  # stale heap entries kept beyond the open count before a rebuild
    STALE_READ = 64  # stale entries a read steps over, beyond what it returns, before dropping

    def __init__(self, store: MemoryStore, record_type: type[Reminder]) -> None:
        super().__init__(store, record_type)
        # open reminder id -> effective due (microseconds); None: rebuilt on the next read
        self._due: dict[str, int] | None = {}
        self._heap: list[int] = []  # due << 32 | slot; stale entries skipped on read
        self._slots: dict[str, int] = {}  # id -> slot, and slot -> id
        self._ids: list[str] = []

    def _opened(self) -> dict[str, int]:
        """The open reminders' due times (rebuilt, with the heap, after a large batch)."""
        live = self._due
        if live is None:
            pairs = ((i, _open_due(r)) for i, r in self._rows.items())
            live = {i: due for i, due in pairs if due is not None}
            self._rebuild(live)
        return live

    def _rebuild(self, live: dict[str, int]) -> None:
        """The heap of ``live`` alone, its ids numbered afresh."""
        self._ids = list(live)
        self._slots = {record_id: slot for slot, record_id in enumerate(self._ids)}
        heap = [due << _SLOT_BITS | slot for slot, due in enumerate(live.values())]
        heapq.heapify(heap)
        self._due, self._heap = live, heap

    def _scan(self, live: dict[str, int], bound: int) -> tuple[list[tuple[int, str]], int]:
        """The current ``(due, id)`` entries due at or before ``bound`` (unsorted, a
        reminder moved away and back may appear twice), and how many stale ones were
        stepped over. Only entries <= bound and their children are visited."""
        heap, ids, limit = self._heap, self._ids, (bound + 1) << _SLOT_BITS
        found: list[tuple[int, str]] = []
        size, stale = len(heap), 0
        stack = [0] if size else []
        while stack:
            i = stack.pop()
            key = heap[i]
            if key < limit:
                due, record_id = key >> _SLOT_BITS, ids[key & _SLOT_MASK]
                if live.get(record_id) == due:
                    found.append((due, record_id))
                else:
                    stale += 1
                child = 2 * i + 1
                if child < size:
                    stack.append(child)
                    if child + 1 < size:
                        stack.append(child + 1)
        return found, stale

    def first_open(self) -> Reminder | None:
        """The open reminder effectively due first (ties by id), or ``None``."""
        with self._store._lock:
            live = self._opened()
            heap, ids = self._heap, self._ids
            while heap:
                key = heap[0]
                due, record_id = key >> _SLOT_BITS, ids[key & _SLOT_MASK]
                if live.get(record_id) == due:
                    break
                heapq.heappop(heap)  # stale: done, cancelled, deleted or moved
            else:
                return None
            same, size = due + 1 << _SLOT_BITS, len(heap)  # ties: a child due then too
            if (size > 1 and heap[1] < same) or (size > 2 and heap[2] < same):
                record_id = min(i for _, i in self._scan(live, due)[0])
            return self._rows[record_id]

    def open_due_by(self, limit: datetime) -> list[Reminder]:
        """The open reminders effectively due at or before ``limit``, by (due, id)."""
        with self._store._lock:
            live = self._opened()
            bound = micros(limit)
            found, stale = self._scan(live, bound)
            if stale > len(found) + self.STALE_READ:  # mostly done or moved: drop them now
                self._drop_stale(live, bound)
            found.sort()
            rows = self._rows
            # a reminder moved away and back has two current entries: keep one
            return [rows[e[1]] for k, e in enumerate(found) if k == 0 or e != found[k - 1]]

    def _drop_stale(self, live: dict[str, int], bound: int) -> None:
        """Pop every entry due at or before ``bound`` and push back the current ones, so
        each stale entry is paid for once (a rebuild would cost every open reminder)."""
        heap, ids, limit = self._heap, self._ids, (bound + 1) << _SLOT_BITS
        kept: list[int] = []
        while heap and heap[0] < limit:
            key = heapq.heappop(heap)
            current = live.get(ids[key & _SLOT_MASK]) == key >> _SLOT_BITS
            if current and (not kept or kept[-1] != key):
                kept.append(key)
        for key in kept:
            heapq.heappush(heap, key)

    def _track(self, record_id: str, new: Any) -> None:
        live = self._due
        if live is None:
            return
        before, after = live.get(record_id), _open_due(new)
        if before == after:
            return
        if after is None:
            del live[record_id]
        else:
            live[record_id] = after
            slot = self._slots.get(record_id)
            if slot is None:
                slot = self._slots[record_id] = len(self._ids)
                self._ids.append(record_id)
            heapq.heappush(self._heap, after << _SLOT_BITS | slot)
        if len(self._heap) > 2 * len(live) + self.STALE_SLACK:
            self._rebuild(live)

    def _write(self, record_id: str, value: Any) -> None:
        self._track(record_id, value)
        super()._write(record_id, value)

    def _restore(self, record_id: str, value: Any) -> None:
        self._track(record_id, value)
        super()._restore(record_id, value)

    def _drop_indexes_for(self, changes: int) -> None:
        if changes > max(256, len(self._rows) // 8):
            self._due, self._heap, self._slots, self._ids = None, [], {}, []
        super()._drop_indexes_for(changes)

    def add_many(self, records: Iterable[Reminder]) -> list[Reminder]:
        """Add every reminder or none; a large batch re-heaps the open ones once, here."""
        with self._store._lock:
            stored = super().add_many(records)
            self._opened()
            return stored

    def patch_open(
        self, record_id: str, check: Callable[[Reminder], bool], **fields: Any
    ) -> Reminder | None:
        """Read a reminder, and patch ``fields`` when ``check(reminder)`` is true (``check``
        may raise to refuse), all under the store's lock: a read-modify-write of one
        record needs no transaction here, as its one write lands whole or not at all.
        ``None`` when ``check`` says no (nothing written).

        >>> from datetime import UTC, datetime
        >>> store = MemoryStore()
        >>> t = datetime(2026, 1, 5, tzinfo=UTC)
        >>> _ = store.reminders.add(Reminder(id="r", title="Call", due_at=t))
        >>> store.reminders.patch_open("r", lambda r: r.rrule is None, title="Call back").title
        'Call back'
        """
        with self._store._lock:
            if not check(self.get(record_id)):
                return None
            return self.patch(record_id, **fields)


class _EmittingMemoryReminderRepository(EmitsChanges, MemoryReminderRepository):
    """A MemoryReminderRepository whose writes yield change events (when the store's are on)."""


class MemoryStore(RepositoryAccess):
    """A complete store in memory: fast, isolated per instance, thread-safe.

    A transaction holds the store's lock for its whole duration, so other threads wait
    rather than see half of it.

    Once a repository holds ``index_from`` records, queries use ordered indexes: the first
    query that filters or sorts on a field builds that field's index (one sort), and
    writes keep it current. A field compared together with an equality on an enum, like
    ``status == "open"``, gets an index per status, as SQLite's ``(status, due_at)``
    index would. ``index_from=None`` turns indexes off; ``0`` uses them from the first
    record. Results never depend on it. Each index costs about 60 bytes per record.

    ``events=True`` keeps an outbox of change and domain events (see
    :mod:`crmkit.events`), written with each transaction.

    >>> MemoryStore(index_from=0).index_from
    0
    """

    def __init__(self, *, index_from: int | None = 1_000, events: bool = False) -> None:
        if index_from is not None and (
            isinstance(index_from, bool) or not isinstance(index_from, int) or index_from < 0
        ):
            raise ValidationError(
                "MemoryStore", "index_from", index_from, "must be a whole number >= 0 or None"
            )
        self.index_from = index_from
        self._lock = threading.RLock()
        self._journals: list[_Journal] = []
        self._owner: int | None = None  # the thread inside a transaction, if any
        if not isinstance(events, bool):
            raise ValidationError("MemoryStore", "events", events, "must be True or False")
        self._outbox = Outbox(self._events_write, enabled=events)
        self._events: list[tuple[Any, ...]] = []  # rows, position first
        self._next_position = 1
        self._repos: dict[type[Any], MemoryRepository[Any]] = {}
        self._generation = -1  # the registry's generation the repositories reflect
        self._state: dict[str, dict[str, Any]] = {}
        self._closed = False
        self._sync()

    def __repr__(self) -> str:
        counts = ", ".join(f"{plural(t)}={len(r)}" for t, r in self._repos.items() if len(r))
        return f"<MemoryStore {counts or 'empty'}>"

    def _sync(self) -> None:
        """Repositories for the record types registered now (see ``crmkit.registry``),
        and the indexes of custom fields declared ``indexed``."""
        with self._lock:
            self._generation = STATE.generation
            types = record_types()
            for gone in [t for t in self._repos if t not in types]:
                del self._repos[gone]
            for t in types:
                if t not in self._repos:
                    kind: type[MemoryRepository[Any]] = _EmittingMemoryRepository
                    if t in CHECKED_TYPES:
                        kind = _CheckedMemoryRepository
                    elif t is Reminder:
                        kind = _EmittingMemoryReminderRepository
                    self._repos[t] = kind(self, t)
            for t, declared in list(DECLARED.items()):
                for name, field in declared.items():
                    if field.indexed and t in self._repos:
                        self.ensure_index(t, f"custom.{name}")

    def repository(self, record_type: type[T]) -> MemoryRepository[T]:
        """The repository for ``record_type`` (a built-in or registered record type)."""
        if self._generation != STATE.generation:
            self._sync()
        try:
            return self._repos[record_type]
        except (KeyError, TypeError):
            raise ValidationError(
                "Store", None, record_type, "is not a crmkit record type"
            ) from None

    def ensure_index(self, record_type: type[Any], *fields: str) -> tuple[str, ...]:
        """Declare an index on ``fields`` of ``record_type`` and build it now.

        A MemoryStore builds the index of any field a query compares once a repository
        holds ``index_from`` records; a declared index is used from the first record.
        Returns the checked fields (the index's key).

        >>> from crmkit.records import Account
        >>> store = MemoryStore()
        >>> store.ensure_index(Account, "industry")
        ('industry',)
        >>> store.indexes(Account)
        [('industry',)]
        """
        key = index_fields(record_type, fields)
        self.repository(record_type)._declare(key)
        return key

    def indexes(self, record_type: type[Any]) -> list[tuple[str, ...]]:
        """The indexes declared with :meth:`ensure_index` on ``record_type``."""
        return list(self.repository(record_type)._declared)

    def _journal(self) -> _Journal | None:
        return self._journals[-1] if self._journals else None

    @property
    def in_transaction(self) -> bool:
        """Whether the calling thread is inside a :meth:`transaction` of this store."""
        return self._owner == threading.get_ident()

    @contextmanager
    def transaction(self, *, lock: str | None = None) -> Iterator[None]:
        """Everything inside lands together or not at all; transactions nest.

        ``lock`` is accepted for the protocol and ignored: a transaction already holds
        the store's lock, so transactions run one at a time."""
        with self._outbox.delivering(), self._lock:
            journal = _Journal()
            outermost = not self._journals
            self._journals.append(journal)
            self._owner = threading.get_ident()
            try:
                with self._outbox.level(outermost):
                    yield
            except BaseException:
                self._journals.pop()
                if not self._journals:
                    self._owner = None
                by_name = {t.__name__: r for t, r in self._repos.items()}
                undone = Counter(name for name, _ in journal.entries)
                for name, changes in undone.items():
                    if name != _STATE:
                        by_name[name]._drop_indexes_for(changes)
                for (name, key), old in journal.entries.items():
                    if name == _STATE:
                        self._restore_state(key, old)
                    else:
                        by_name[name]._restore(key, old)
                raise
            else:
                self._journals.pop()
                if not self._journals:
                    self._owner = None
                outer = self._journal()
                if outer is not None:  # the outer transaction may still roll this back
                    for entry, old in journal.entries.items():
                        outer.entries.setdefault(entry, old)

    # -- events (see crmkit.events) --

    def _events_transaction(self) -> AbstractContextManager[None]:
        return self.transaction()

    def _events_write(self, rows: list[tuple[Any, ...]], at: datetime) -> int:
        first = self._next_position
        micros = (at - _EPOCH) // _US
        self._events.extend((first + i, *row, micros) for i, row in enumerate(rows))
        self._next_position = first + len(rows)
        return first

    def _events_read(self, after: int, limit: int | None) -> list[tuple[Any, ...]]:
        with self._lock:
            start = bisect.bisect_right(self._events, after, key=lambda row: row[0])
            end = None if limit is None else start + limit
            return self._events[start:end]

    def _events_trim(self, through: int) -> int:
        with self._lock:
            end = bisect.bisect_right(self._events, through, key=lambda row: row[0])
            del self._events[:end]
            return end

    def load_state(self, name: str) -> dict[str, Any] | None:
        """A small JSON document saved with :meth:`save_state`, or ``None``."""
        with self._lock:
            data = self._state.get(name)
            return copy.deepcopy(data) if data is not None else None

    def save_state(self, name: str, data: Mapping[str, Any]) -> None:
        """Keep ``data`` (JSON-able) under ``name``; transactions cover it."""
        check_state(name, data)
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
