"""Reminders in the store: schedule, query, snooze, complete, cancel, tick.

Conventions (documented in docs/reminders.md):

- The *effective due* time is ``snoozed_until`` when set, else ``due_at``. The *alert* time
  is ``snoozed_until`` when set, else ``due_at - remind_before_minutes``.
- States are computed per **owner's** local date: the owner is a :class:`~crmkit.records.Rep`
  whose ``timezone`` is used; without one, the reminder's own ``timezone``. ``overdue``:
  the effective due date is before today there; ``due_today``: it is today there;
  ``planned``: later.
- ``tick`` marks what it emitted in the reminder's ``custom`` fields
  (``reminder_alerted``/``reminder_escalated``: the instant, in microseconds, it fired
  for), so a second call at the same time returns nothing new, and a snooze re-arms it.
- ``tick`` marks a recurring occurrence ``missed`` once a later occurrence's alert time
  has come, and creates the current occurrence (see :func:`tick`).
- Every call that reads and then writes (``tick``, ``complete``, ``snooze``, ``cancel``,
  ``schedule``) does both in one transaction, run again when it lost a race: each of them
  decides afresh from what it reads, so running it again is safe. On a MemoryStore, a call
  that reads and writes one record (``snooze``, ``cancel``, a one-off ``complete``, a
  ``schedule`` without a lead time) does both under the store's lock instead: a single
  write lands whole or not at all, and an enclosing transaction still undoes it.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from crmkit._time import micros
from crmkit.criteria import BoundCriteria, Criteria, F, bind
from crmkit.errors import ConflictError, ValidationError
from crmkit.events import emit_many
from crmkit.records import Reminder, ReminderStatus, Rep
from crmkit.reminders._calendar import BusinessCalendar, localize
from crmkit.reminders._recurrence import check_rule, parse_rule, walk
from crmkit.reminders._transact import transact
from crmkit.store._base import Store
from crmkit.store.memory import MemoryReminderRepository

__all__ = [
    "STATE_DOC",
    "Completion",
    "ReminderEvent",
    "ReminderState",
    "cancel",
    "complete",
    "due",
    "follow_up",
    "next_due",
    "overdue",
    "plan",
    "schedule",
    "schedule_many",
    "snooze",
    "state_of",
    "tick",
    "upcoming",
]

STATE_DOC = "crmkit.reminders"

_log = logging.getLogger("crmkit.reminders")
"""The store state document holding the largest ``remind_before_minutes`` scheduled."""

ALERTED = "reminder_alerted"
ESCALATED = "reminder_escalated"
_WALL = "reminder_wall"
_SERIES = "reminder_series"
_START = "reminder_series_start"
_N = "reminder_occurrence"
MISSED_SKIPPED = "reminder_skipped"


class ReminderState(enum.StrEnum):
    """Where a reminder stands for its owner today."""

    OVERDUE = "overdue"
    DUE_TODAY = "due_today"
    PLANNED = "planned"
    DONE = "done"
    CANCELLED = "cancelled"
    MISSED = "missed"


@attrs.frozen
class ReminderEvent:
    """Something :func:`tick` says to act on: ``kind`` is ``"due"``, ``"escalated"`` or
    ``"missed"``; ``at`` is the instant the event is for (the alert time, or the effective
    due time)."""

    kind: str
    reminder_id: str
    owner_id: str | None
    title: str
    at: datetime


@attrs.frozen
class Completion:
    """What :func:`complete` did: the closed reminder and the next occurrence, if any."""

    done: Reminder
    next: Reminder | None


def _aware(value: Any, field: str, record_id: str | None = None) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            "Reminder",
            field,
            value,
            "must be a timezone-aware datetime (add tzinfo=...)",
            record_id=record_id,
        )
    return value.astimezone(UTC)


def _owner_zone(store: Store, owner_id: str | None, fallback: str) -> str:
    if owner_id:
        rep = store.reps.find(owner_id)
        if rep is not None:
            return rep.timezone
    return fallback


def _owner_zones(store: Store) -> dict[str, str]:
    cols = store.reps.columns(["id", "timezone"])
    return dict(zip(cols["id"].tolist(), cols["timezone"].tolist(), strict=True))


def effective_due(reminder: Reminder) -> datetime:
    """``snoozed_until`` if set, else ``due_at``.

    Examples
    --------
    >>> t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> effective_due(Reminder(id="r", title="Call", due_at=t)).isoformat()
    '2026-01-05T09:00:00+00:00'
    >>> snoozed = Reminder(id="r", title="Call", due_at=t, snoozed_until=t + timedelta(hours=2))
    >>> effective_due(snoozed).isoformat()
    '2026-01-05T11:00:00+00:00'
    """
    return reminder.snoozed_until or reminder.due_at


def alert_at(reminder: Reminder) -> datetime:
    """When to alert: ``snoozed_until`` if set, else ``due_at - remind_before``.

    Examples
    --------
    >>> t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> r = Reminder(id="r", title="Call", due_at=t, remind_before_minutes=15)
    >>> alert_at(r).isoformat()
    '2026-01-05T08:45:00+00:00'
    >>> alert_at(attrs.evolve(r, snoozed_until=t + timedelta(hours=2))).isoformat()  # no lead
    '2026-01-05T11:00:00+00:00'
    """
    if reminder.snoozed_until is not None:
        return reminder.snoozed_until
    return reminder.due_at - timedelta(minutes=reminder.remind_before_minutes)


# -- writing -------------------------------------------------------------------------------


def _bump_max_before(store: Store, minutes: int) -> None:
    if minutes <= 0:  # the recorded largest lead time is never below 0
        return
    doc = store.load_state(STATE_DOC) or {}
    if minutes > int(doc.get("max_before_minutes", 0)):
        store.save_state(STATE_DOC, {**doc, "max_before_minutes": minutes})


def _prepare(store: Store, reminder: Reminder) -> Reminder:
    """A recurring reminder with its series fields (non-recurring ones pass through)."""
    if reminder.rrule is None:
        return reminder
    custom = dict(reminder.custom)
    wall = reminder.due_at.astimezone(ZoneInfo(reminder.timezone)).replace(tzinfo=None)
    custom.setdefault(_WALL, wall.isoformat())
    custom.setdefault(_START, custom[_WALL])
    custom.setdefault(_SERIES, reminder.id)
    custom.setdefault(_N, 0)
    try:
        start = datetime.fromisoformat(str(custom[_START]))
    except ValueError:
        raise ValidationError(
            "Reminder", f"custom.{_START}", custom[_START], "must be an ISO wall time"
        ) from None
    check_rule(reminder.rrule, start, reminder.timezone, record_id=reminder.id)
    return attrs.evolve(reminder, custom=custom)


def schedule(
    store: Store,
    *,
    id: str,
    title: str,
    due_at: datetime,
    owner_id: str | None = None,
    timezone: str | None = None,
    rrule: str | None = None,
    remind_before_minutes: int = 0,
    **fields: Any,
) -> Reminder:
    """Store a new open reminder and return it.

    ``due_at`` is aware, or naive meaning a wall-clock time in ``timezone`` (default: the
    owner's zone if the owner is a rep in the store, else UTC) read with the gap/fold policy
    of :func:`~crmkit.reminders.localize`. ``rrule`` (e.g. ``"FREQ=WEEKLY;BYDAY=MO"``) is
    expanded in wall-clock time from the first due time. ``fields`` are other Reminder
    fields (``account_id``, ``lead_id`` ...).

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> r = schedule(MemoryStore(), id="r1", title="Call back", due_at=datetime(2026, 3, 8, 2, 30),
    ...              timezone="America/New_York")
    >>> r.due_at.isoformat()   # 02:30 does not exist that night: shifted to 03:30 EDT
    '2026-03-08T07:30:00+00:00'
    """
    zone = timezone or _owner_zone(store, owner_id, "UTC")
    if isinstance(due_at, datetime) and due_at.tzinfo is None:
        due_at = localize(due_at, zone)
    reminder = Reminder(
        id=id,
        title=title,
        due_at=due_at,
        owner_id=owner_id,
        timezone=zone,
        rrule=rrule,
        remind_before_minutes=remind_before_minutes,
        **fields,
    )
    reminder = _prepare(store, reminder)
    repo = store.reminders
    if remind_before_minutes <= 0 and isinstance(repo, MemoryReminderRepository):
        return repo.add(reminder)  # one write, whole or not at all: no transaction needed

    def operation() -> Reminder:
        stored = store.reminders.add(reminder)
        _bump_max_before(store, reminder.remind_before_minutes)
        return stored

    return transact(store, operation)


def schedule_many(store: Store, reminders: Iterable[Reminder]) -> list[Reminder]:
    """Store many reminders at once (all or none); recurring ones get their series fields.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> rs = schedule_many(store, [Reminder(id="a", title="Call", due_at=t),
    ...                            Reminder(id="b", title="Email", due_at=t,
    ...                                     remind_before_minutes=30)])
    >>> [r.id for r in rs], store.load_state(STATE_DOC)  # largest lead time is recorded
    (['a', 'b'], {'max_before_minutes': 30})
    """
    batch = [_prepare(store, r) for r in reminders]

    def operation() -> list[Reminder]:
        stored = store.reminders.add_many(batch)
        if batch:
            _bump_max_before(store, max(r.remind_before_minutes for r in batch))
        return stored

    return transact(store, operation)


def _get_open(store: Store, reminder_id: str) -> Reminder:
    reminder = store.reminders.get(reminder_id)
    _check_open(reminder)
    return reminder


def _check_open(reminder: Reminder) -> bool:
    if reminder.status != ReminderStatus.OPEN:
        raise ValidationError(
            "Reminder",
            "status",
            reminder.status.value,
            "is not open; only open reminders can be snoozed, completed or cancelled",
            record_id=reminder.id,
        )
    return True


def _one_off(reminder: Reminder) -> bool:
    return _check_open(reminder) and reminder.rrule is None


def _patch_open(store: Store, reminder_id: str, **fields: Any) -> Reminder:
    """Patch ``fields`` of an open reminder: read and write in one transaction (on a
    MemoryStore, under its lock: one write needs no undo log)."""
    repo = store.reminders
    if isinstance(repo, MemoryReminderRepository):
        patched = repo.patch_open(reminder_id, _check_open, **fields)
        assert patched is not None  # _check_open raises rather than say no
        return patched

    def operation() -> Reminder:
        reminder = _get_open(store, reminder_id)
        return repo.patch(reminder_id, expected_version=reminder.version, **fields)

    return transact(store, operation)


def snooze(store: Store, reminder_id: str, until: datetime) -> Reminder:
    """Push an open reminder to ``until`` (its alert and effective due time).

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> _ = schedule(store, id="r", title="Call", due_at=t)
    >>> r = snooze(store, "r", t + timedelta(days=1))
    >>> r.due_at.isoformat(), r.snoozed_until.isoformat()  # due_at is kept
    ('2026-01-05T09:00:00+00:00', '2026-01-06T09:00:00+00:00')
    >>> due(store, t)  # no longer alerting at 09:00
    []
    """
    until = _aware(until, "snoozed_until", reminder_id)
    return _patch_open(store, reminder_id, snoozed_until=until)


def cancel(store: Store, reminder_id: str) -> Reminder:
    """Cancel an open reminder (a recurring one stops: no next occurrence).

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = schedule(store, id="r", title="Call", due_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    >>> cancel(store, "r").status.value, next_due(store)
    ('cancelled', None)
    >>> cancel(store, "r")
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Reminder 'r' field 'status' = 'cancelled': is not open; ...
    """
    return _patch_open(store, reminder_id, status=ReminderStatus.CANCELLED)


@functools.cache
def _still_open() -> BoundCriteria:
    """The condition of :func:`complete`'s patch (bound once, on first use)."""
    return bind(F.status == ReminderStatus.OPEN.value, Reminder)


def complete(store: Store, reminder_id: str, now: datetime) -> Completion:
    """Mark an open reminder done at ``now``; a recurring one spawns its next occurrence
    (id ``<series>.<n>``) in the same transaction.

    The reminder is not read first: one conditional patch (``where`` it is still open;
    a single ``UPDATE`` in a SQL store) marks it done and returns it, and the next
    occurrence is computed from that. A reminder that is not open is refused with the
    same ``ValidationError`` as a snooze or cancel of it.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = schedule(store, id="weekly", title="Pipeline review", rrule="FREQ=WEEKLY",
    ...              due_at=datetime(2026, 3, 2, 9, 0), timezone="Europe/Paris")
    >>> c = complete(store, "weekly", datetime(2026, 3, 2, 9, 5, tzinfo=UTC))
    >>> c.done.status.value, c.next.id, c.next.due_at.isoformat()
    ('done', 'weekly.1', '2026-03-09T08:00:00+00:00')
    """
    now = _aware(now, "completed_at", reminder_id)
    repo = store.reminders
    if isinstance(repo, MemoryReminderRepository):  # a one-off: one write, no transaction
        done = repo.patch_open(reminder_id, _one_off, status=ReminderStatus.DONE, completed_at=now)
        if done is not None:
            return Completion(done=done, next=None)

    def operation() -> Completion:
        try:
            done = store.reminders.patch(  # only the changed columns are written
                reminder_id,
                where=_still_open(),
                status=ReminderStatus.DONE,
                completed_at=now,
            )
        except ConflictError as err:
            if err.condition is None:
                raise
            _get_open(store, reminder_id)  # says which status it has; open again: retry
            raise
        spawned = None
        if done.rrule is not None:  # due_at, rrule, timezone and custom are the open ones'
            for wall, instant in _following(done):
                spawned = store.reminders.add(_occurrence(done, wall, instant, 1))
                break
        return Completion(done=done, next=spawned)

    return transact(store, operation)


def _series_start(reminder: Reminder) -> tuple[datetime, datetime]:
    """The naive wall times of the series' first occurrence and of this one."""
    custom, zone = reminder.custom, reminder.timezone
    here = reminder.due_at.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    try:
        current = datetime.fromisoformat(str(custom[_WALL])) if _WALL in custom else here
        start = datetime.fromisoformat(str(custom[_START])) if _START in custom else current
    except ValueError:
        raise ValidationError(
            "Reminder",
            f"custom.{_WALL}",
            custom.get(_WALL),
            "must be an ISO wall time",
            record_id=reminder.id,
        ) from None
    return start, current


def _following(reminder: Reminder) -> Iterator[tuple[datetime, datetime]]:
    """The occurrences after this one, as ``(wall, instant)``.

    The rule is expanded from this occurrence's own wall time (an occurrence is a valid
    start for the rest of its series), or from the series start when it has a ``COUNT``.
    """
    assert reminder.rrule is not None
    start, current = _series_start(reminder)
    anchor = start if parse_rule(reminder.rrule, start)._count is not None else current
    # a record written around schedule() may carry a rule that never yields: refuse it
    # here, in bounded time, rather than let the walk search until the year 9999
    check_rule(reminder.rrule, anchor, reminder.timezone, record_id=reminder.id)
    return walk(
        reminder.rrule, anchor, reminder.timezone, after=reminder.due_at, record_id=reminder.id
    )


def _occurrence(reminder: Reminder, wall: datetime, instant: datetime, steps: int) -> Reminder:
    """The occurrence ``steps`` after ``reminder`` in its series, open, at ``instant``."""
    custom = dict(reminder.custom)
    start, _ = _series_start(reminder)
    n = int(str(custom.get(_N, 0))) + steps
    series = str(custom.get(_SERIES, reminder.id))
    for key in (ALERTED, ESCALATED, MISSED_SKIPPED):
        custom.pop(key, None)
    custom.update({_WALL: wall.isoformat(), _START: start.isoformat(), _N: n, _SERIES: series})
    return attrs.evolve(
        reminder,
        id=f"{series}.{n}",
        due_at=instant,
        status=ReminderStatus.OPEN,
        snoozed_until=None,
        completed_at=None,
        custom=custom,
        version=1,
    )


def follow_up(
    store: Store,
    reminder_id: str,
    *,
    days: int,
    basis: str = "completed",
    title: str | None = None,
    id: str | None = None,
) -> Reminder:
    """Schedule the next activity ``days`` calendar days (same wall-clock time) after the
    reminder's completion (``basis="completed"``) or after its deadline (``basis="due"``).

    Days are counted on the **owner's** calendar, as states are: the owner's
    ``Rep.timezone`` when the owner is a rep in the store, else the reminder's own zone;
    the follow-up lives in that zone.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = schedule(store, id="demo", title="Demo", due_at=datetime(2026, 3, 5, 10, 0),
    ...              timezone="Europe/Paris")  # 10:00 CET = 09:00 UTC
    >>> _ = complete(store, "demo", datetime(2026, 3, 27, 15, 0, tzinfo=UTC))  # 16:00 CET
    >>> r = follow_up(store, "demo", days=3)  # 16:00 in Paris, CEST after March 29
    >>> r.id, r.title, r.due_at.isoformat()
    ('demo.followup', 'Follow up: Demo', '2026-03-30T14:00:00+00:00')
    >>> follow_up(store, "demo", days=7, basis="due", id="d2").due_at.isoformat()
    '2026-03-12T09:00:00+00:00'
    """
    source = store.reminders.get(reminder_id)
    if basis == "completed":
        if source.completed_at is None:
            raise ValidationError(
                "Reminder", "completed_at", None, "is not completed yet", record_id=reminder_id
            )
        anchor = source.completed_at
    elif basis == "due":
        anchor = source.due_at
    else:
        raise ValidationError("Reminder", "basis", basis, "must be 'completed' or 'due'")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValidationError("Reminder", "days", days, "must be a whole number >= 0")
    zone = _owner_zone(store, source.owner_id, source.timezone)
    wall = anchor.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return schedule(
        store,
        id=id or f"{reminder_id}.followup",
        title=title or f"Follow up: {source.title}",
        due_at=wall + timedelta(days=days),
        owner_id=source.owner_id,
        timezone=zone,
        account_id=source.account_id,
        contact_id=source.contact_id,
        lead_id=source.lead_id,
        opportunity_id=source.opportunity_id,
    )


def plan(
    store: Store,
    anchor: date,
    steps: Sequence[tuple[int, str]],
    *,
    id_prefix: str,
    owner_id: str | None = None,
    timezone: str | None = None,
    at: time = time(9, 0),
    **fields: Any,
) -> list[Reminder]:
    """Reminders at ``anchor`` + ``days`` for each ``(days, title)`` step (negative days:
    before, e.g. ``(-14, "Renewal prep")`` two weeks before a renewal), at wall time ``at``.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> steps = [(-14, "Prepare renewal"), (-1, "Confirm signature")]
    >>> rs = plan(MemoryStore(), date(2026, 6, 30), steps, id_prefix="renew-acme",
    ...           timezone="Europe/Paris")
    >>> [(r.id, r.due_at.isoformat()) for r in rs]
    [('renew-acme.0', '2026-06-16T07:00:00+00:00'), ('renew-acme.1', '2026-06-29T07:00:00+00:00')]
    """
    zone = timezone or _owner_zone(store, owner_id, "UTC")
    batch = [
        Reminder(
            id=f"{id_prefix}.{i}",
            title=title,
            due_at=localize(datetime.combine(anchor + timedelta(days=days), at), zone),
            owner_id=owner_id,
            timezone=zone,
            **fields,
        )
        for i, (days, title) in enumerate(steps)
    ]
    return schedule_many(store, batch)


# -- reading -------------------------------------------------------------------------------


def state_of(store: Store, reminder: Reminder, now: datetime) -> ReminderState:
    """The reminder's state on its owner's local calendar at ``now``.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.reps.add(Rep(id="ana", name="Ana", timezone="America/Sao_Paulo"))
    >>> r = schedule(store, id="r", title="Send quote", owner_id="ana",
    ...              due_at=datetime(2026, 1, 5, 20, 0))   # 20:00 in Sao Paulo = 23:00 UTC
    >>> state_of(store, r, datetime(2026, 1, 6, 1, 0, tzinfo=UTC)).value  # 22:00 local
    'due_today'
    """
    now = _aware(now, "now")
    if reminder.status == ReminderStatus.DONE:
        return ReminderState.DONE
    if reminder.status == ReminderStatus.CANCELLED:
        return ReminderState.CANCELLED
    if reminder.status == ReminderStatus.MISSED:
        return ReminderState.MISSED
    zone = ZoneInfo(_owner_zone(store, reminder.owner_id, reminder.timezone))
    due_day = effective_due(reminder).astimezone(zone).date()
    today = now.astimezone(zone).date()
    if due_day < today:
        return ReminderState.OVERDUE
    if due_day == today:
        return ReminderState.DUE_TODAY
    return ReminderState.PLANNED


def _open_due_before(limit: datetime, snoozed_limit: datetime | None = None) -> Criteria:
    snoozed_limit = limit if snoozed_limit is None else snoozed_limit
    return (F.status == ReminderStatus.OPEN.value) & (
        (F.snoozed_until.isnull() & (F.due_at <= limit)) | (F.snoozed_until <= snoozed_limit)
    )


def due(store: Store, now: datetime) -> list[Reminder]:
    """Open reminders whose alert time has come (``<= now``), by alert time then id.

    The store query is bounded by ``due_at <= now + the largest remind_before`` recorded by
    :func:`schedule` (state document :data:`STATE_DOC`).

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> _ = schedule(store, id="call", title="Call", due_at=t, remind_before_minutes=30)
    >>> _ = schedule(store, id="mail", title="Email", due_at=t + timedelta(minutes=10))
    >>> [r.id for r in due(store, t - timedelta(minutes=30))]  # 08:30: the call's alert
    ['call']
    >>> [r.id for r in due(store, t + timedelta(minutes=10))]  # by alert time
    ['call', 'mail']
    """
    now = _aware(now, "now")
    doc = store.load_state(STATE_DOC) or {}
    ahead = timedelta(minutes=int(doc.get("max_before_minutes", 0)))
    repo = store.reminders
    if isinstance(repo, MemoryReminderRepository):  # open reminders kept by effective due
        found = [
            r
            for r in repo.open_due_by(now + ahead)
            if (r.snoozed_until is None and r.due_at <= now + ahead)
            or (r.snoozed_until is not None and r.snoozed_until <= now)
        ]
    else:
        found = repo.query(_open_due_before(now + ahead, now))
    if not ahead:  # alert time is the effective due time, which the query bounded
        return sorted(found, key=lambda r: (effective_due(r), r.id))
    alerts = [(alert_at(r), r.id, r) for r in found]
    return [r for at, _, r in sorted(alerts, key=lambda a: a[:2]) if at <= now]


def overdue(store: Store, now: datetime) -> list[Reminder]:
    """Open reminders in the ``overdue`` state (due before today in the owner's zone).

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = schedule(store, id="a", title="Call", due_at=datetime(2026, 1, 5, 23, 0, tzinfo=UTC))
    >>> _ = schedule(store, id="b", title="Email", due_at=datetime(2026, 1, 6, 8, 0, tzinfo=UTC))
    >>> [r.id for r in overdue(store, datetime(2026, 1, 6, 9, 0, tzinfo=UTC))]  # b: due today
    ['a']
    """
    now = _aware(now, "now")
    found = store.reminders.query(_open_due_before(now), order_by=["due_at"])
    zones = _owner_zones(store)
    result = []
    for r in found:
        zone = ZoneInfo(zones.get(r.owner_id or "", r.timezone))
        if effective_due(r).astimezone(zone).date() < now.astimezone(zone).date():
            result.append(r)
    return sorted(result, key=lambda r: (effective_due(r), r.id))


@functools.cache
def _next_due_criteria() -> tuple[BoundCriteria, BoundCriteria]:
    """Open and not snoozed, open and snoozed: bound once, they never change.

    "Snoozed" is written as a range from the earliest datetime rather than "is not
    null", so SQLite reads its ``(status, snoozed_until, due_at)`` index in order.
    """
    is_open = F.status == ReminderStatus.OPEN.value
    earliest = datetime.min.replace(tzinfo=UTC)
    return (
        bind(is_open & F.snoozed_until.isnull(), Reminder),
        bind(is_open & (F.snoozed_until >= earliest), Reminder),
    )


def next_due(store: Store) -> Reminder | None:
    """The open reminder with the earliest effective due time (ties by id), or ``None``.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> _ = schedule(store, id="a", title="Call", due_at=t)
    >>> _ = schedule(store, id="b", title="Email", due_at=t + timedelta(hours=1))
    >>> next_due(store).id
    'a'
    >>> _ = snooze(store, "a", t + timedelta(hours=2))  # a now at 11:00, b at 10:00
    >>> next_due(store).id
    'b'
    """
    repo = store.reminders
    if isinstance(repo, MemoryReminderRepository):  # open reminders kept by effective due
        return repo.first_open()
    plain_open, snoozed_open = _next_due_criteria()
    plain = store.reminders.query(plain_open, order_by=["due_at"], limit=1)
    snoozed = store.reminders.query(snoozed_open, order_by=["snoozed_until"], limit=1)
    both = plain + snoozed
    return min(both, key=lambda r: (effective_due(r), r.id)) if both else None


def upcoming(store: Store, owner_id: str, window: timedelta, *, now: datetime) -> list[Reminder]:
    """The owner's open reminders effectively due in ``[now, now + window)``, soonest first.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> for rid, owner, hours in [("a", "ana", 3), ("b", "ana", 1), ("c", "ana", 25),
    ...                           ("d", "bo", 1)]:
    ...     _ = schedule(store, id=rid, title="Call", owner_id=owner,
    ...                  due_at=t + timedelta(hours=hours))
    >>> [r.id for r in upcoming(store, "ana", timedelta(days=1), now=t)]  # c: after the window
    ['b', 'a']
    """
    now = _aware(now, "now")
    end = now + window
    mine = (F.status == ReminderStatus.OPEN.value) & (F.owner_id == owner_id)
    found = store.reminders.query(
        mine
        & (
            (F.snoozed_until.isnull() & (F.due_at >= now) & (F.due_at < end))
            | ((F.snoozed_until >= now) & (F.snoozed_until < end))
        )
    )
    return sorted(found, key=lambda r: (effective_due(r), r.id))


def tick(
    store: Store,
    now: datetime,
    *,
    escalate_after_hours: float | None = None,
    holidays: Iterable[date] = (),
    rep_holidays: Mapping[str, Iterable[date]] | None = None,
) -> list[ReminderEvent]:
    """The events to act on at ``now``: ``missed`` recurring occurrences, ``due`` alerts,
    then ``escalated`` reminders.

    - **missed**: an open occurrence of a recurring reminder is missed once the alert time
      of a later occurrence (one alerting after this one's effective due time) has come.
      It is marked ``missed`` and the latest occurrence whose alert time has come is
      created in its place (occurrences in between are skipped, counted in the missed
      one's ``custom["reminder_skipped"]``), and alerted in the same call. A reminder
      whose rule cannot be expanded (stored around :func:`schedule`) is not rolled.
    - **escalated**: open for ``escalate_after_hours`` business hours of its owner's
      calendar past its effective due time (:meth:`BusinessCalendar.from_rep` with
      ``holidays`` plus the owner's own ``rep_holidays[owner_id]``; an owner who is not a
      rep: round the clock in the reminder's zone).

    What was emitted is written to the reminders, so calling ``tick`` again at the same
    ``now`` returns nothing new. Reads and writes share one transaction
    (:func:`~crmkit.store.run_transaction`), so several processes may tick one store at
    once: each event is returned by exactly one call, and a reminder completed or snoozed
    meanwhile by another process is never put back. The call is idempotent, so a
    transaction that lost a race is run again.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> _ = schedule(store, id="r", title="Call", due_at=t, remind_before_minutes=15)
    >>> [e.kind for e in tick(store, t - timedelta(minutes=15))], tick(store, t)
    (['due'], [])
    """
    now = _aware(now, "now")
    if escalate_after_hours is not None and (
        isinstance(escalate_after_hours, bool)
        or not isinstance(escalate_after_hours, (int, float))
        or not escalate_after_hours >= 0
    ):
        raise ValidationError(
            "Reminder", "escalate_after_hours", escalate_after_hours, "must be a number >= 0"
        )
    shared = frozenset(holidays)
    own = {rep: frozenset(days) | shared for rep, days in (rep_holidays or {}).items()}
    events = transact(store, lambda: _tick(store, now, escalate_after_hours, shared, own))
    for event in events:  # logged after the transaction, so a retried one logs once
        if event.kind == "escalated":
            _log.info(
                "reminder %s (%r, owner %s) escalated: open since %s",
                event.reminder_id,
                event.title,
                event.owner_id or "nobody",
                event.at.isoformat(),
                extra={"reminder_id": event.reminder_id, "owner_id": event.owner_id},
            )
    return events


def _tick(
    store: Store,
    now: datetime,
    escalate_after_hours: float | None,
    holidays: frozenset[date],
    rep_holidays: dict[str, frozenset[date]],
) -> list[ReminderEvent]:
    events = _roll_forward(store, now)
    changed: dict[str, Reminder] = {}
    for r in due(store, now):
        mark = micros(alert_at(r))
        if r.custom.get(ALERTED) != mark:
            events.append(ReminderEvent("due", r.id, r.owner_id, r.title, alert_at(r)))
            changed[r.id] = attrs.evolve(r, custom={**r.custom, ALERTED: mark})
    if escalate_after_hours is not None:
        need = timedelta(hours=escalate_after_hours)
        reps = {rep.id: rep for rep in store.reps.query(F.id.isin(_owners(store, now - need)))}
        for r in store.reminders.query(_open_due_before(now - need)):
            r = changed.get(r.id, r)
            mark = micros(effective_due(r))
            if r.custom.get(ESCALATED) == mark:
                continue
            owner = r.owner_id or ""
            calendar = _calendar_for(
                reps.get(owner), r.timezone, rep_holidays.get(owner, holidays)
            )
            if calendar.business_time_between(effective_due(r), now) >= need:
                events.append(
                    ReminderEvent("escalated", r.id, r.owner_id, r.title, effective_due(r))
                )
                changed[r.id] = attrs.evolve(r, custom={**r.custom, ESCALATED: mark})
    for r in changed.values():  # version-checked: what was read is what is replaced
        store.reminders.update(r)
    for kind in ("due", "escalated", "missed"):  # reminder.due, reminder.escalated ...
        emit_many(store, f"reminder.{kind}", (_payload(e) for e in events if e.kind == kind))
    return events


def _payload(event: ReminderEvent) -> tuple[str, dict[str, Any]]:
    return event.reminder_id, {"owner_id": event.owner_id, "title": event.title, "at": event.at}


def _roll_forward(store: Store, now: datetime) -> list[ReminderEvent]:
    """Mark missed recurring occurrences and create the current one (see :func:`tick`)."""
    events: list[ReminderEvent] = []
    recurring = _open_due_before(now) & F.rrule.notnull()
    for r in store.reminders.query(recurring, order_by=["due_at"]):
        lead = timedelta(minutes=r.remind_before_minutes)
        passed: list[tuple[datetime, datetime]] = []
        missed = False
        try:
            for wall, instant in _following(r):
                if instant - lead > now:
                    break
                passed.append((wall, instant))
                missed = missed or instant - lead > effective_due(r)
        except ValidationError:  # a rule written around schedule(): never rolled
            continue
        if not missed:
            continue
        wall, instant = passed[-1]
        current = _occurrence(r, wall, instant, len(passed))
        store.reminders.update(
            attrs.evolve(
                r,
                status=ReminderStatus.MISSED,
                custom={**r.custom, MISSED_SKIPPED: len(passed) - 1},
            )
        )
        if current.id not in store.reminders:
            store.reminders.add(current)
        events.append(ReminderEvent("missed", r.id, r.owner_id, r.title, effective_due(r)))
    return events


def _owners(store: Store, limit: datetime) -> list[str]:
    cols = store.reminders.columns(["owner_id"], _open_due_before(limit))
    return sorted(set(cols["owner_id"].tolist()) - {""})


def _calendar_for(rep: Rep | None, zone: str, holidays: Iterable[date]) -> BusinessCalendar:
    if rep is not None and rep.work_days and rep.work_start < rep.work_end:
        return BusinessCalendar.from_rep(rep, holidays)
    return BusinessCalendar(zone, {d: (time(0), time.max) for d in range(7)}, holidays)
