"""Change events, domain events, the outbox, durable consumers and subscribers.

With events on (``MemoryStore(events=True)``, ``SQLiteStore(path, events=True)``,
``PostgresStore(dsn, events=True)``), every committed write of a record yields a
:class:`ChangeEvent`, and the engines yield :class:`DomainEvent` s (``lead.routed``,
``owner.changed``, ``reminder.due`` ...). Both are written to the store's outbox in the
same transaction as the change, so an event exists exactly when its change committed.

Read them three ways:

- :class:`Consumer`: a named, durable cursor kept in the store. ``poll()`` returns the
  events after the last ``ack()``; at least once, in commit order (so in order per
  record), each with an idempotency :attr:`~ChangeEvent.key`.
- :func:`subscribe`: an in-process callback, called after the outermost commit (never
  inside it, never after a rollback). A failing callback is logged on the
  ``crmkit.events`` logger; the event stays in the outbox.
- :func:`read`: the outbox itself, from any position (replay).

Who made a change is the *actor*: ``with acting_as("alice"):`` around the calls. It is
stored in every event and filled into history records (``changed_by``, ``merged_by``)
added without one.

>>> from crmkit import Account, MemoryStore
>>> store = MemoryStore(events=True)
>>> with acting_as("alice"):
...     _ = store.accounts.add(Account(id="a1", name="Acme"))
>>> [(e.record_type, e.record_id, e.operation, e.version, e.actor) for e in read(store)]
[('Account', 'a1', 'insert', 1, 'alice')]
"""

from __future__ import annotations

import enum
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmkit.errors import ValidationError

if TYPE_CHECKING:
    from crmkit.store._base import Store

__all__ = [
    "ChangeEvent",
    "Consumer",
    "DomainEvent",
    "Event",
    "acting_as",
    "current_actor",
    "emit",
    "emit_many",
    "enabled",
    "read",
    "subscribe",
    "trim",
]

_ACTOR: ContextVar[str | None] = ContextVar("crmkit_actor", default=None)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@contextmanager
def acting_as(actor: str | None) -> Iterator[None]:
    """Make ``actor`` the one who makes the changes inside the block (this thread or
    task only; blocks nest and restore the outer actor).

    >>> with acting_as("alice"):
    ...     current_actor()
    'alice'
    >>> current_actor() is None
    True
    """
    if actor is not None and (not isinstance(actor, str) or not actor):
        raise ValidationError("Event", "actor", actor, "an actor is non-empty text or None")
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def current_actor() -> str | None:
    """The actor set by the innermost :func:`acting_as`, or ``None``."""
    return _ACTOR.get()


@attrs.frozen(kw_only=True)
class ChangeEvent:
    """A committed write of one record.

    ``operation`` is ``"insert"``, ``"update"`` or ``"delete"``; ``version`` the record's
    version after the write (for a delete: the version deleted); ``fields`` the names of
    the fields an insert set, an update changed (a patch: the fields it named), or none
    for a delete. ``at`` is when the transaction committed, ``actor`` who made it.
    ``position`` orders all events of a store (gaps are possible, order is commit order).
    """

    position: int
    record_type: str
    record_id: str
    operation: str
    version: int
    fields: tuple[str, ...]
    at: datetime
    actor: str | None = None

    @property
    def key(self) -> str:
        """The idempotency key: the same for every delivery of this event, different for
        every other event. ``record_type:record_id:version:operation`` then the position
        (a record deleted and added again starts at version 1 once more).

        >>> ChangeEvent(position=7, record_type="Account", record_id="a1",
        ...             operation="update", version=2, fields=("name",),
        ...             at=datetime(2026, 1, 5, tzinfo=UTC)).key
        'Account:a1:2:update@7'
        """
        return (
            f"{self.record_type}:{self.record_id}:{self.version}:{self.operation}@{self.position}"
        )


@attrs.frozen(kw_only=True)
class DomainEvent:
    """Something an engine did, named like ``lead.routed`` or ``opportunity.won``.

    ``subject`` is the id of the record it is about, ``payload`` JSON data (times as ISO
    text, money as decimal text).
    """

    position: int
    name: str
    subject: str | None
    payload: Mapping[str, Any]
    at: datetime
    actor: str | None = None

    @property
    def key(self) -> str:
        """The idempotency key: ``name:subject`` then the position.

        >>> DomainEvent(position=9, name="lead.routed", subject="l1", payload={},
        ...             at=datetime(2026, 1, 5, tzinfo=UTC)).key
        'lead.routed:l1@9'
        """
        return f"{self.name}:{self.subject or ''}@{self.position}"


Event = ChangeEvent | DomainEvent
"""What the outbox holds."""


def _json(value: Any) -> Any:
    """JSON text from SQLite, or what psycopg already decoded from ``jsonb``."""
    return json.loads(value) if isinstance(value, str) else value


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return _EPOCH + timedelta(microseconds=int(value))


def event_from_row(row: Sequence[Any]) -> Event:
    """An event from a stored row ``(position, kind, name, record_id, operation,
    version, fields, payload, actor, at)``."""
    position, kind, name, record_id, operation, version, fields, payload, actor, at = row
    if kind == "change":
        return ChangeEvent(
            position=int(position),
            record_type=name,
            record_id=record_id,
            operation=operation,
            version=int(version),
            fields=tuple(_json(fields) or ()),
            at=_moment(at),
            actor=actor,
        )
    return DomainEvent(
        position=int(position),
        name=name,
        subject=record_id,
        payload=_json(payload) or {},
        at=_moment(at),
        actor=actor,
    )


def _outbox(store: Any, doing: str) -> Any:
    outbox = getattr(store, "_outbox", None)
    if outbox is None:
        raise ValidationError(
            "Event", "store", type(store).__name__, f"has no outbox, so it cannot {doing}"
        )
    return outbox


def enabled(store: Store) -> bool:
    """Whether ``store`` writes events (see the store's ``events=`` option).

    >>> from crmkit import MemoryStore
    >>> enabled(MemoryStore()), enabled(MemoryStore(events=True))
    (False, True)
    """
    outbox = getattr(store, "_outbox", None)
    return bool(outbox is not None and outbox.enabled)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [_plain(v) for v in items]
    raise TypeError(f"cannot put a {type(value).__name__} in an event payload")


def _domain_row(name: Any, subject: Any, payload: Any, actor: Any) -> tuple[Any, ...]:
    from crmkit.store._events import domain_row

    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            "Event", "name", name, "an event name is dotted lowercase, like 'lead.routed'"
        )
    if subject is not None and not isinstance(subject, str):
        raise ValidationError("Event", "subject", subject, "the subject is a record id (text)")
    try:
        text = json.dumps(_plain(dict(payload or {})), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValidationError("Event", "payload", payload, f"must be JSON-able: {err}") from err
    if actor is not None and (not isinstance(actor, str) or not actor):
        raise ValidationError("Event", "actor", actor, "an actor is non-empty text or None")
    return domain_row(name, subject, text, actor)


def emit(
    store: Store,
    name: str,
    *,
    subject: str | None = None,
    payload: Mapping[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """Write the domain event ``name`` in the open transaction (or a transaction of its
    own); nothing when the store's events are off. ``actor`` defaults to
    :func:`current_actor`.

    >>> from crmkit import MemoryStore
    >>> store = MemoryStore(events=True)
    >>> emit(store, "invoice.sent", subject="inv-1", payload={"total": 12})
    >>> [(e.name, e.subject, dict(e.payload)) for e in read(store)]
    [('invoice.sent', 'inv-1', {'total': 12})]
    """
    emit_many(store, name, [(subject, payload)], actor=actor)


def emit_many(
    store: Store,
    name: str,
    items: Iterable[tuple[str | None, Mapping[str, Any] | None]],
    *,
    actor: str | None = None,
) -> None:
    """Write one ``name`` event per ``(subject, payload)`` of ``items``, together."""
    outbox = getattr(store, "_outbox", None)
    if outbox is None or not outbox.enabled:
        return
    who = current_actor() if actor is None else actor
    rows = [_domain_row(name, subject, payload, who) for subject, payload in items]
    if not rows:
        return
    with store._events_transaction():  # type: ignore[attr-defined]
        outbox.extend(rows)


def read(store: Store, *, after: int = 0, limit: int | None = None) -> list[Event]:
    """The stored events after position ``after`` (0: from the start), oldest first.

    Events outlive consumers: :func:`read` replays them all (say, to rebuild a search
    index from scratch).
    """
    _outbox(store, "read events")
    _check_position(after, "after")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValidationError("Event", "limit", limit, "must be a whole number >= 0 or None")
    rows = store._events_read(after, limit)  # type: ignore[attr-defined]
    return [event_from_row(row) for row in rows]


def trim(store: Store, *, through: int) -> int:
    """Delete the stored events up to position ``through``; returns how many went.

    The outbox keeps every event until trimmed. Trim only what every consumer has
    acknowledged (the smallest :attr:`Consumer.position` of your consumers); positions
    are never reused, so cursors stay valid.

    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore(events=True)
    >>> _ = store.accounts.add_many([Account(id="a1", name="A"), Account(id="a2", name="B")])
    >>> trim(store, through=1), [e.position for e in read(store)]
    (1, [2])
    """
    _outbox(store, "trim events")
    _check_position(through, "through")
    deleted: int = store._events_trim(through)  # type: ignore[attr-defined]
    return deleted


def subscribe(store: Store, callback: Callable[[Event], Any]) -> Callable[[], None]:
    """Call ``callback(event)`` for each event this process commits to ``store``, after
    the outermost commit; returns a function that unsubscribes.

    Callbacks run in the thread that committed, in commit order; one that raises is
    logged (``crmkit.events``) and the others still run. They see only this process's
    writes: use a :class:`Consumer` to follow every process.

    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore(events=True)
    >>> seen = []
    >>> stop = subscribe(store, lambda e: seen.append(e.record_id))
    >>> with store.transaction():
    ...     _ = store.accounts.add(Account(id="a1", name="Acme"))
    ...     seen
    []
    >>> seen
    ['a1']
    >>> stop()
    """
    if not callable(callback):
        raise ValidationError("Event", "callback", callback, "must be callable")
    unsubscribe: Callable[[], None] = _outbox(store, "have subscribers").subscribe(callback)
    return unsubscribe


def _check_position(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("Event", field, value, "a position is a whole number >= 0")


_CONSUMER = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class Consumer:
    """A named, durable cursor over a store's events: at least once, in commit order.

    ``poll(limit)`` returns the events after the last acknowledged one; ``ack(event)``
    moves the cursor (kept in the store, so a restarted process carries on where the
    last ack left it). Events polled and not acknowledged come again. Acknowledge inside
    the transaction that writes your effects to the same store and effect and ack commit
    together (exactly once); otherwise dedupe on :attr:`ChangeEvent.key`.

    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore(events=True)
    >>> _ = store.accounts.add_many([Account(id="a1", name="A"), Account(id="a2", name="B")])
    >>> index = Consumer(store, "search-index")
    >>> [e.record_id for e in index.poll()]
    ['a1', 'a2']
    >>> index.ack(index.poll()[0])
    >>> [e.record_id for e in index.poll()], index.position
    (['a2'], 1)
    """

    def __init__(self, store: Store, name: str) -> None:
        _outbox(store, "keep a consumer")
        if not isinstance(name, str) or not _CONSUMER.match(name):
            raise ValidationError(
                "Consumer", "name", name, "a consumer name is 1-100 letters, digits or ._:-"
            )
        self.store = store
        self.name = name
        self._state = f"crmkit.events.consumer.{name}"

    def __repr__(self) -> str:
        return f"<Consumer {self.name!r}>"

    @property
    def position(self) -> int:
        """The position of the last acknowledged event (0: none yet)."""
        state = self.store.load_state(self._state)
        return 0 if state is None else int(state["position"])

    def poll(self, limit: int = 100) -> list[Event]:
        """Up to ``limit`` events after the acknowledged position, oldest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError("Consumer", "limit", limit, "must be a whole number >= 1")
        return read(self.store, after=self.position, limit=limit)

    def ack(self, event: Event | int) -> None:
        """Acknowledge ``event`` (or a position) and every event before it. Inside an open
        transaction of the store it commits with that transaction."""
        position: Any = event if isinstance(event, int) else getattr(event, "position", event)
        _check_position(position, "position")
        from crmkit.store._base import run_transaction

        def move() -> None:
            if position > self.position:  # never back: acks may arrive out of order
                self.store.save_state(self._state, {"position": position})

        run_transaction(self.store, move)

    def wait(self, timeout: float) -> bool:
        """Block until there are unacknowledged events or ``timeout`` seconds passed;
        whether there are. PostgreSQL wakes it with ``LISTEN``/``NOTIFY``; other stores
        look again every few milliseconds (SQLite: other processes' writes too)."""
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValidationError("Consumer", "timeout", timeout, "must be seconds >= 0")
        after = self.position
        waiter = getattr(self.store, "_events_wait", None)
        if waiter is not None:
            return bool(waiter(after, float(timeout)))
        return _poll_wait(self.store, after, float(timeout))


def _poll_wait(store: Any, after: int, timeout: float) -> bool:
    """Wait for an event after ``after``: woken at once by this process's commits, and
    looking again with a growing pause (up to 0.2 s) for other processes'."""
    outbox = store._outbox
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        if store._events_read(after, 1):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        with outbox.written:
            outbox.written.wait(min(pause, left))
        pause = min(pause * 2, 0.2)


def _owner_changes(store: Store, changes: Iterable[Any]) -> None:
    """``owner.changed`` for each written :class:`~crmkit.records.OwnershipChange` (the
    router, reassignment and territory realignment all write them)."""
    emit_many(
        store,
        "owner.changed",
        (
            (
                c.record_id,
                {
                    "record_type": c.record_type,
                    "from_owner_id": c.from_owner_id,
                    "to_owner_id": c.to_owner_id,
                    "reason": c.reason,
                    "change_id": c.id,
                    "changed_by": c.changed_by,
                },
            )
            for c in changes
        ),
    )


def _routed(store: Store, record_type: str, decisions: Sequence[Any], changes: Any) -> None:
    """``<type>.routed`` (``lead.routed``, ``inquiry.routed``) for each applied routing
    decision, then ``owner.changed`` for the new owners."""
    emit_many(
        store,
        f"{record_type.lower()}.routed",
        (
            (
                d.record_id,
                {
                    "status": d.status,
                    "reason": d.reason,
                    "owner_id": d.owner_id,
                    "queue": d.queue,
                    "rule_id": d.rule_id,
                },
            )
            for d in decisions
        ),
    )
    _owner_changes(store, changes)
