"""The outbox every store shares: change events from repository writes, written in the
writing transaction, delivered to in-process subscribers after the outermost commit.

A store that keeps events has an :class:`Outbox` as ``store._outbox`` and three private
methods the outbox and :mod:`crmkit.events` call:

- ``_events_write(rows, at)``: append ``rows`` (see :func:`change_row`) inside the open
  outermost transaction, in one statement, and return the position of the first;
- ``_events_read(after, limit)``: the stored rows after position ``after``, in order;
- ``_events_transaction()``: the transaction a lone write opens so that the write and
  its event commit together.

Events are buffered in memory while the transaction runs and written just before it
commits: a rolled-back savepoint drops its events with it, and a batch of 100,000 writes
costs one bulk insert of 100,000 rows, not 100,000 statements.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from json import dumps as _dumps
from typing import Any, cast

import attrs

from crmkit.events import Event, current_actor, event_from_row
from crmkit.store._columnar import patch_through_patch_many, patches_from_columns

__all__ = ["EmitsChanges", "Outbox", "change_row", "domain_row", "events_setting"]

log = logging.getLogger("crmkit.events")
log.addHandler(logging.NullHandler())

Row = tuple[Any, ...]
"""An event before it has a position and a time: ``(kind, name, record_id, operation,
version, fields (JSON text), payload (JSON text), actor)``."""

_ALL_FIELDS: dict[type[Any], str] = {}
_ACTOR_FIELD: dict[type[Any], str | None] = {}


def _all_fields(record_type: type[Any]) -> str:
    """The JSON list of a record type's field names (what an insert sets), made once."""
    known = _ALL_FIELDS.get(record_type)
    if known is None:
        import json

        names = [a.name for a in attrs.fields(record_type) if a.name not in ("id", "version")]
        known = _ALL_FIELDS[record_type] = json.dumps(names)
    return known


def _actor_field(record_type: type[Any]) -> str | None:
    """The history field that names who made a change (``changed_by``, ``merged_by``)."""
    if record_type not in _ACTOR_FIELD:
        names = attrs.fields_dict(record_type)
        found = next((n for n in ("changed_by", "merged_by") if n in names), None)
        _ACTOR_FIELD[record_type] = found
    return _ACTOR_FIELD[record_type]


def change_row(
    name: str, record_id: str, operation: str, version: int, fields: str, actor: str | None
) -> Row:
    """A change event's row (``fields``: a JSON list of field names)."""
    return ("change", name, record_id, operation, version, fields, None, actor)


def domain_row(name: str, subject: str | None, payload: str, actor: str | None) -> Row:
    """A domain event's row (``payload``: a JSON object)."""
    return ("domain", name, subject, None, None, None, payload, actor)


_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _changed(old: Any, new: Any) -> str:
    """The JSON list of the fields whose values differ between two versions of a record."""
    names = _NAMES.get(type(new))
    if names is None:
        names = _NAMES[type(new)] = tuple(
            a.name for a in attrs.fields(type(new)) if a.name not in ("id", "version")
        )
    changed = [n for n in names if getattr(old, n) != getattr(new, n)]
    return _dumps(changed)


EVENTS_STATE = "crmkit.events"
"""The state document that says whether a durable store keeps events (``{"enabled": ...}``)."""


def events_setting(store: Any, events: bool | None) -> bool:
    """Whether a durable store keeps events: ``events`` when given (then kept in the
    database, for the processes that open it later), else what the database says (off
    for a new one)."""
    stored = store.load_state(EVENTS_STATE)
    current = bool(stored and stored.get("enabled"))
    if events is None:
        return current
    if stored is None or current != events:
        with store.transaction():
            store.save_state(EVENTS_STATE, {"enabled": events})
    return events


_NOTHING = nullcontext()


class _Local(threading.local):
    def __init__(self) -> None:
        self.pending: list[Row] = []
        self.depth = 0
        self.delivering = False
        self.committed: tuple[int, list[Row], datetime] | None = None


class Outbox:
    """The events of one store: buffered per thread while its transaction runs.

    ``write(rows, at)`` stores rows inside the outermost transaction and returns the
    first position. ``enabled`` says whether repository writes make change events.
    """

    def __init__(self, write: Callable[[list[Row], datetime], int], *, enabled: bool) -> None:
        self.enabled = enabled
        self._write = write
        self._local = _Local()
        self._subscribers: list[Callable[[Event], Any]] = []
        self._lock = threading.Lock()
        self.written = threading.Condition()  # in-process consumers wait on it

    # -- inside a transaction --

    def add(self, row: Row) -> None:
        """Buffer one event of the open transaction."""
        local = self._local
        if not local.depth:
            raise AssertionError("an event outside a transaction would never be written")
        local.pending.append(row)

    def extend(self, rows: Iterable[Row]) -> None:
        """Buffer the events of a batch."""
        local = self._local
        if not local.depth:
            raise AssertionError("an event outside a transaction would never be written")
        local.pending.extend(rows)

    def level(self, outermost: bool) -> AbstractContextManager[None]:
        """One transaction level: an error drops the events buffered inside it; the
        outermost level writes every buffered event just before the store commits.
        (Nothing to do, and nearly free, while events are off.)"""
        return self._level(outermost) if self.enabled else _NOTHING

    def delivering(self) -> AbstractContextManager[None]:
        """Around a whole outermost transaction, commit included: once it has committed,
        hand its events to the subscribers (an error or a rollback hands out nothing)."""
        return self._delivering() if self.enabled else _NOTHING

    @contextmanager
    def _level(self, outermost: bool) -> Iterator[None]:
        local = self._local
        pending = local.pending
        mark = len(pending)
        local.depth += 1
        try:
            yield
        except BaseException:
            del pending[mark:]
            raise
        finally:
            local.depth -= 1
        if outermost and pending:
            rows = list(pending)
            pending.clear()
            at = datetime.now(UTC)
            first = self._write(rows, at)
            if local.delivering:
                local.committed = (first, rows, at)

    @contextmanager
    def _delivering(self) -> Iterator[None]:
        local = self._local
        if local.delivering:
            yield
            return
        local.delivering = True
        local.committed = None
        try:
            yield
        finally:
            local.delivering = False
            committed, local.committed = local.committed, None
            del local.pending[:]  # only left over when the commit itself failed
        if committed is None:
            return
        with self.written:
            self.written.notify_all()
        if self._subscribers:
            self._deliver(*committed)

    # -- subscribers --

    def subscribe(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _deliver(self, first: int, rows: list[Row], at: datetime) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        if not subscribers:
            return
        for offset, row in enumerate(rows):
            event = event_from_row((first + offset, *row, at))
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:
                    # the event is committed and stays in the outbox for durable consumers
                    log.exception(
                        "subscriber %r failed on event %s; it stays in the outbox",
                        callback,
                        event.key,
                    )


class EmitsChanges:
    """Mixin for a store's repository class: with the store's events on, each write and
    its change events share one transaction. With an actor set (``crmkit.acting_as``),
    history records added without ``changed_by``/``merged_by`` get the actor."""

    _store: Any
    _type: type[Any]
    _name: str

    def _fill_actor(self, record: Any) -> Any:
        field = _actor_field(self._type)
        if field is None or not isinstance(record, self._type):
            return record
        actor = current_actor()
        if actor is None or getattr(record, field) is not None:
            return record
        return attrs.evolve(record, **{field: actor})

    def add(self, record: Any) -> Any:
        parent, store = cast(Any, super()), self._store
        record = self._fill_actor(record)
        if not store._outbox.enabled:
            return parent.add(record)
        with store._events_transaction():
            stored = parent.add(record)
            store._outbox.add(
                change_row(
                    self._name, stored.id, "insert", 1, _all_fields(self._type), current_actor()
                )
            )
        return stored

    def put(self, record: Any) -> Any:
        parent, store = cast(Any, super()), self._store
        record = self._fill_actor(record)
        if not store._outbox.enabled:
            return parent.put(record)
        with store._events_transaction():
            old = parent.find(record.id) if isinstance(record, self._type) else None
            stored = parent.put(record)
            store._outbox.add(self._written(old, stored))
        return stored

    def update(self, record: Any, *, expected_version: int | None = None) -> Any:
        parent, store = cast(Any, super()), self._store
        if not store._outbox.enabled:
            return parent.update(record, expected_version=expected_version)
        with store._events_transaction():
            old = parent.find(record.id) if isinstance(record, self._type) else None
            stored = parent.update(record, expected_version=expected_version)
            store._outbox.add(self._written(old, stored))
        return stored

    def patch(
        self,
        record_id: str,
        *,
        expected_version: int | None = None,
        where: Any = None,
        **fields: Any,
    ) -> Any:
        parent, store = cast(Any, super()), self._store
        if not store._outbox.enabled:
            return parent.patch(
                record_id, expected_version=expected_version, where=where, **fields
            )
        with store._events_transaction():  # a patch refused by ``where`` raises: no event
            stored = parent.patch(
                record_id, expected_version=expected_version, where=where, **fields
            )
            store._outbox.add(self._patched(stored, fields))
        return stored

    def delete(self, record_id: str, *, expected_version: int | None = None) -> None:
        parent, store = cast(Any, super()), self._store
        if not store._outbox.enabled:
            parent.delete(record_id, expected_version=expected_version)
            return
        with store._events_transaction():
            old = parent.find(record_id)
            parent.delete(record_id, expected_version=expected_version)
            store._outbox.add(
                change_row(self._name, record_id, "delete", old.version, "[]", current_actor())
            )

    def add_many(self, records: Iterable[Any]) -> Any:
        parent, store = cast(Any, super()), self._store
        batch = self._fill_actors(records)
        if not store._outbox.enabled:
            return parent.add_many(batch)
        with store._events_transaction():
            stored = parent.add_many(batch)
            actor, name, fields = current_actor(), self._name, _all_fields(self._type)
            store._outbox.extend(
                ("change", name, r.id, "insert", 1, fields, None, actor) for r in stored
            )
        return stored

    def put_many(self, records: Iterable[Any]) -> Any:
        parent, store = cast(Any, super()), self._store
        batch = self._fill_actors(records)
        if not store._outbox.enabled:
            return parent.put_many(batch)
        with store._events_transaction():
            old = self._find_many(batch)
            stored = parent.put_many(batch)
            store._outbox.extend(self._written(old.get(r.id), r) for r in stored)
        return stored

    def patch_many(
        self,
        changes: Mapping[str, Mapping[str, Any]],
        *,
        expected_versions: Any = None,
        where: Any = None,
    ) -> Any:
        parent, store = cast(Any, super()), self._store
        if not store._outbox.enabled:
            return parent.patch_many(changes, expected_versions=expected_versions, where=where)
        with store._events_transaction():
            stored = parent.patch_many(changes, expected_versions=expected_versions, where=where)
            store._outbox.extend(self._patched(r, changes[r.id]) for r in stored)
        return stored

    def patch_columns(self, columns: Any, *, expected_versions: Any = None) -> int:
        parent = cast(Any, super())
        if not self._store._outbox.enabled:
            return cast(int, parent.patch_columns(columns, expected_versions=expected_versions))
        patches = patches_from_columns(self._type, columns, expected_versions)
        return patch_through_patch_many(self, patches)

    # -- helpers --

    def _written(self, old: Any, new: Any) -> Row:
        if old is None:
            return change_row(
                self._name, new.id, "insert", new.version, _all_fields(self._type), current_actor()
            )
        return change_row(
            self._name, new.id, "update", new.version, _changed(old, new), current_actor()
        )

    def _patched(self, stored: Any, fields: Mapping[str, Any]) -> Row:
        import json

        return change_row(
            self._name,
            stored.id,
            "update",
            stored.version,
            json.dumps(list(fields)),
            current_actor(),
        )

    def _fill_actors(self, records: Iterable[Any]) -> list[Any]:
        batch = list(records)
        if current_actor() is None or _actor_field(self._type) is None:
            return batch
        return [self._fill_actor(r) for r in batch]

    def _find_many(self, batch: Sequence[Any]) -> dict[str, Any]:
        """The stored records among ``batch``'s ids: in one query where the repository
        can (``_get_many``), else one lookup each (a MemoryStore's dict)."""
        ids = sorted({r.id for r in batch if isinstance(r, self._type) and isinstance(r.id, str)})
        repo = cast(Any, self)
        get_many = getattr(repo, "_get_many", None)
        if get_many is not None:
            found: dict[str, Any] = get_many(ids)
            return found
        return {i: r for i in ids if (r := repo.find(i)) is not None}
