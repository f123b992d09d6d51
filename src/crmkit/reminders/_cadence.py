"""Cadences: sequences of selling steps that contacts and leads are enrolled in.

A :class:`~crmkit.records.Cadence` step is a small dict:

=================  ==========================================================================
key                meaning
=================  ==========================================================================
``kind``           ``"email"``, ``"call"``, ``"task"`` or ``"wait"`` (required)
``wait_days``      days to wait before this step, from when the previous step was handed out
                   (or the enrolment, or the task's completion); default 0
``business_days``  count ``wait_days`` as Monday-Friday days (same wall-clock time); default
                   ``False`` (calendar days)
``title``          text for the task reminder or the event; optional
=================  ==========================================================================

Times are wall-clock in the cadence's ``timezone`` (DST policy of
:func:`~crmkit.reminders.localize`). With ``weekdays_only`` a step landing on a Saturday or
Sunday moves to Monday at the same local time. :func:`cadence_tick` hands out due steps,
creates a reminder for a task step and pauses the sequence until that reminder is done, and
ends an enrolment when the contact or lead replies (``email_replied``) or books a meeting
(``meeting``) after enrolling. The schedule lives in the enrolment (``step_index``,
``next_due_at``), so a tick at the same time twice hands out nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import numpy as np

from crmkit.criteria import F
from crmkit.errors import ValidationError
from crmkit.events import emit
from crmkit.records import (
    ActivityKind,
    Cadence,
    Enrollment,
    EnrollmentStatus,
    Reminder,
    ReminderStatus,
)
from crmkit.reminders._calendar import localize
from crmkit.reminders._transact import transact
from crmkit.store._base import Store

__all__ = [
    "CadenceEvent",
    "cadence_tick",
    "check_steps",
    "enroll",
    "pause",
    "resume",
    "unenroll",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STEP_KINDS = ("email", "call", "task", "wait")
_TASK = "cadence_task"
EXIT_KINDS = {
    ActivityKind.EMAIL_REPLIED.value: "replied",
    ActivityKind.MEETING.value: "meeting_booked",
}


@attrs.frozen
class CadenceEvent:
    """What :func:`cadence_tick` says to do: ``kind`` is a step kind (``email``, ``call``,
    ``task``) or ``exited``/``completed``; ``reminder_id`` is set for a task."""

    kind: str
    enrollment_id: str
    step_index: int
    at: datetime
    contact_id: str | None
    lead_id: str | None
    owner_id: str | None
    title: str | None = None
    reminder_id: str | None = None


def check_steps(cadence: Cadence) -> None:
    """Raise a ``ValidationError`` naming the cadence, step and key if a step is malformed.

    Examples
    --------
    >>> check_steps(Cadence(id="c", name="Intro", steps=({"kind": "email"},)))  # fine: None
    >>> check_steps(Cadence(id="c", name="Intro", steps=({"kind": "call", "wait_days": -1},)))
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Cadence 'c' field 'steps[0].wait_days' = -1: must be ...
    """
    for index, step in enumerate(cadence.steps):
        kind = step.get("kind")
        if kind not in STEP_KINDS:
            raise ValidationError(
                "Cadence",
                f"steps[{index}].kind",
                kind,
                f"must be one of {', '.join(STEP_KINDS)}",
                record_id=cadence.id,
            )
        wait = step.get("wait_days", 0)
        if isinstance(wait, bool) or not isinstance(wait, int) or wait < 0:
            raise ValidationError(
                "Cadence",
                f"steps[{index}].wait_days",
                wait,
                "must be a whole number >= 0",
                record_id=cadence.id,
            )
        if not isinstance(step.get("business_days", False), bool):
            raise ValidationError(
                "Cadence",
                f"steps[{index}].business_days",
                step.get("business_days"),
                "must be true or false",
                record_id=cadence.id,
            )


def step_due(cadence: Cadence, step: Mapping[str, Any], after: datetime) -> datetime:
    """When ``step`` is due if its wait starts at ``after`` (UTC result)."""
    zone = ZoneInfo(cadence.timezone)
    local = after.astimezone(zone)
    day, wall = local.date(), local.time().replace(tzinfo=None)
    wait = int(step.get("wait_days", 0))
    if step.get("business_days", False):
        left = wait
        while left:
            day += timedelta(days=1)
            if day.weekday() < 5:
                left -= 1
    else:
        day += timedelta(days=wait)
    if cadence.weekdays_only and day.weekday() >= 5:
        day += timedelta(days=7 - day.weekday())
    if not wait and not (cadence.weekdays_only and local.weekday() >= 5):
        return after.astimezone(UTC)
    return localize(datetime.combine(day, wall), cadence.timezone)


def _aware(value: Any, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("Enrollment", field, value, "must be a timezone-aware datetime")
    return value.astimezone(UTC)


def enroll(
    store: Store,
    cadence_id: str,
    *,
    id: str,
    now: datetime,
    contact_id: str | None = None,
    lead_id: str | None = None,
    owner_id: str | None = None,
) -> Enrollment:
    """Enrol one contact or lead in an active cadence; its first step is scheduled from ``now``.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.cadences.add(Cadence(id="c", name="Intro", timezone="Europe/Paris",
    ...     steps=({"kind": "email"}, {"kind": "call", "wait_days": 2, "business_days": True})))
    >>> e = enroll(store, "c", id="e1", contact_id="ada", now=datetime(2026, 1, 8, 9, tzinfo=UTC))
    >>> e.step_index, e.next_due_at.isoformat()
    (0, '2026-01-08T09:00:00+00:00')
    """
    now = _aware(now, "enrolled_at")
    cadence = store.cadences.get(cadence_id)
    check_steps(cadence)
    if not cadence.active:
        raise ValidationError(
            "Cadence", "active", False, "is not active; activate it to enrol", record_id=cadence_id
        )
    if (contact_id is None) == (lead_id is None):
        raise ValidationError(
            "Enrollment",
            "contact_id",
            contact_id,
            "give exactly one of contact_id and lead_id",
            record_id=id,
        )
    if not cadence.steps:
        raise ValidationError("Cadence", "steps", (), "has no steps", record_id=cadence_id)
    return store.enrollments.add(
        Enrollment(
            id=id,
            cadence_id=cadence_id,
            contact_id=contact_id,
            lead_id=lead_id,
            owner_id=owner_id or cadence.owner_id,
            enrolled_at=now,
            step_index=0,
            next_due_at=step_due(cadence, cadence.steps[0], now),
        )
    )


def pause(store: Store, enrollment_id: str, now: datetime) -> Enrollment:
    """Pause an active enrolment; nothing is handed out until :func:`resume`.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.cadences.add(Cadence(id="c", name="Intro", steps=({"kind": "email"},)))
    >>> now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> _ = enroll(store, "c", id="e1", contact_id="ada", now=now)
    >>> pause(store, "e1", now).status.value
    'paused'
    >>> cadence_tick(store, now)  # the due email step waits
    []
    """
    paused_at = _aware(now, "paused_at")

    def operation() -> Enrollment:
        e = _in(store, enrollment_id, EnrollmentStatus.ACTIVE)
        return store.enrollments.update(
            attrs.evolve(e, status=EnrollmentStatus.PAUSED, paused_at=paused_at)
        )

    return transact(store, operation)


def resume(store: Store, enrollment_id: str, now: datetime) -> Enrollment:
    """Resume a paused enrolment: the pending step keeps its time, or becomes due ``now``
    if that time passed while paused (moved to Monday under ``weekdays_only``).

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.cadences.add(Cadence(id="c", name="Intro", steps=({"kind": "email"},)))
    >>> thursday = datetime(2026, 1, 8, 9, 0, tzinfo=UTC)
    >>> _ = enroll(store, "c", id="e1", contact_id="ada", now=thursday)
    >>> _ = pause(store, "e1", thursday)
    >>> e = resume(store, "e1", datetime(2026, 1, 10, 11, 0, tzinfo=UTC))  # a Saturday
    >>> e.status.value, e.next_due_at.isoformat()  # missed step: Monday at 11:00
    ('active', '2026-01-12T11:00:00+00:00')
    """
    now = _aware(now, "now")

    def operation() -> Enrollment:
        e = _in(store, enrollment_id, EnrollmentStatus.PAUSED)
        nxt = e.next_due_at
        if nxt is not None and nxt < now:
            cadence = store.cadences.get(e.cadence_id)
            nxt = step_due(cadence, {"wait_days": 0}, now)
        return store.enrollments.update(
            attrs.evolve(e, status=EnrollmentStatus.ACTIVE, paused_at=None, next_due_at=nxt)
        )

    return transact(store, operation)


def unenroll(
    store: Store, enrollment_id: str, now: datetime, reason: str = "unenrolled"
) -> Enrollment:
    """End an active or paused enrolment (status ``exited``).

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.cadences.add(Cadence(id="c", name="Intro", steps=({"kind": "email"},)))
    >>> now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> _ = enroll(store, "c", id="e1", contact_id="ada", now=now)
    >>> e = unenroll(store, "e1", now, reason="asked to stop")
    >>> e.status.value, e.exit_reason, e.next_due_at
    ('exited', 'asked to stop', None)
    """
    ended_at = _aware(now, "now")

    def operation() -> Enrollment:
        e = store.enrollments.get(enrollment_id)
        if e.status not in (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED):
            raise ValidationError(
                "Enrollment",
                "status",
                e.status.value,
                "has already ended",
                record_id=enrollment_id,
            )
        return store.enrollments.update(_ended(e, EnrollmentStatus.EXITED, ended_at, reason))

    return transact(store, operation)


def _in(store: Store, enrollment_id: str, status: EnrollmentStatus) -> Enrollment:
    e = store.enrollments.get(enrollment_id)
    if e.status != status:
        raise ValidationError(
            "Enrollment",
            "status",
            e.status.value,
            f"must be {status.value} for this",
            record_id=enrollment_id,
        )
    return e


def _ended(
    e: Enrollment, status: EnrollmentStatus, at: datetime, reason: str | None
) -> Enrollment:
    return attrs.evolve(e, status=status, ended_at=at, exit_reason=reason, next_due_at=None)


def cadence_tick(store: Store, now: datetime) -> list[CadenceEvent]:
    """Exit replied/booked enrolments, resume those whose task is done, hand out due steps.

    Everything is read and written in one transaction
    (:func:`~crmkit.store.run_transaction`), so several processes may tick one store at
    once: each step is handed out by exactly one call. The call is idempotent, so a
    transaction that lost a race is run again.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.cadences.add(Cadence(id="c", name="Intro", steps=(
    ...     {"kind": "email"}, {"kind": "task", "wait_days": 1, "title": "Call Ada"})))
    >>> monday = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> _ = enroll(store, "c", id="e1", contact_id="ada", now=monday)
    >>> [(ev.kind, ev.step_index) for ev in cadence_tick(store, monday)]
    [('email', 0)]
    >>> cadence_tick(store, monday)  # already handed out
    []
    >>> [(ev.kind, ev.reminder_id) for ev in cadence_tick(store, monday + timedelta(days=1))]
    [('task', 'e1.step1')]
    """
    now = _aware(now, "now")
    live = F.status.isin([EnrollmentStatus.ACTIVE.value, EnrollmentStatus.PAUSED.value])

    def operation() -> list[CadenceEvent]:
        events = _exits(store, now, live) + _advance(store, now)
        for ev in events:  # cadence.step_due, or cadence.exited / cadence.completed
            name = ev.kind if ev.kind in ("exited", "completed") else "step_due"
            emit(store, f"cadence.{name}", subject=ev.enrollment_id, payload=attrs.asdict(ev))
        return events

    return transact(store, operation)


def _exits(store: Store, now: datetime, live: Any) -> list[CadenceEvent]:
    """End every live enrolment whose contact (or, without a contact, lead) has an exit
    activity at or after ``enrolled_at`` (and at or before ``now``); the first such activity
    (by ``at``, ties by id) gives the exit time and reason."""
    ids, times, kinds = _find_exits(store, now, live)
    if not ids:
        return []
    records = {e.id: e for e in store.enrollments.query(F.id.isin(ids))}
    events = []
    for eid, at_us, kind in zip(ids, times, kinds, strict=True):
        e, at, reason = records[eid], _from_micros(at_us), EXIT_KINDS[kind]
        store.enrollments.update(_ended(e, EnrollmentStatus.EXITED, at, reason))
        events.append(_event("exited", e, at, title=reason))
    return events


def _find_exits(store: Store, now: datetime, live: Any) -> tuple[list[str], list[int], list[str]]:
    """The exits :func:`_exits` writes: enrolment ids (in id order), exit times in UTC
    microseconds and the exit activities' kinds. Store columns and one sorted search, so
    the work is O((enrolments + activities) log) rather than enrolments x activities."""
    ecols = store.enrollments.columns(["id", "contact_id", "lead_id", "enrolled_at"], live)
    if not len(ecols["id"]):
        return [], [], []
    e_contact, e_lead = ecols["contact_id"], ecols["lead_id"]
    e_at = ecols["enrolled_at"].astype(np.int64)
    by_contact = e_contact != ""
    by_lead = ~by_contact & (e_lead != "")
    contacts = np.unique(e_contact[by_contact]).tolist()
    leads = np.unique(e_lead[by_lead]).tolist()
    if not contacts and not leads:
        return [], [], []
    since = _from_micros(int(e_at.min()))
    who = F.contact_id.isin(contacts) | F.lead_id.isin(leads)
    acols = store.activities.columns(
        ["id", "contact_id", "lead_id", "kind", "at"],
        who & F.kind.isin(list(EXIT_KINDS)) & (F.at >= since) & (F.at <= now),
    )
    if not len(acols["id"]):
        return [], [], []
    a_contact, a_lead = acols["contact_id"], acols["lead_id"]
    # One key space for both passes: contact keys first, then lead keys after an offset.
    c_uniq, c_codes = np.unique(
        np.concatenate([e_contact[by_contact], a_contact[a_contact != ""]]), return_inverse=True
    )
    l_codes = np.unique(
        np.concatenate([e_lead[by_lead], a_lead[a_lead != ""]]), return_inverse=True
    )[1]
    n_ec, n_el = int(by_contact.sum()), int(by_lead.sum())
    e_rows = np.concatenate([np.flatnonzero(by_contact), np.flatnonzero(by_lead)])
    e_keys = np.concatenate([c_codes[:n_ec], l_codes[:n_el] + len(c_uniq)])
    a_rows = np.concatenate([np.flatnonzero(a_contact != ""), np.flatnonzero(a_lead != "")])
    a_keys = np.concatenate([c_codes[n_ec:], l_codes[n_el:] + len(c_uniq)])
    hits = _first_at_or_after(
        e_keys, e_at[e_rows], a_keys, acols["at"].astype(np.int64)[a_rows], acols["id"][a_rows]
    )
    found = hits >= 0
    exiting = e_rows[found]
    order = np.argsort(exiting, kind="stable")  # back to id order, as the columns came
    exiting, chosen = exiting[order], a_rows[hits[found][order]]
    return (
        ecols["id"][exiting].tolist(),
        acols["at"][chosen].astype(np.int64).tolist(),
        acols["kind"][chosen].tolist(),
    )


def _first_at_or_after(
    e_keys: np.ndarray[Any, Any],
    e_at: np.ndarray[Any, Any],
    a_keys: np.ndarray[Any, Any],
    a_at: np.ndarray[Any, Any],
    a_ids: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """For each (key, time) query, the index of the first item with the same key and a time
    at or after it (ties by id), or -1.

    Times are replaced by their dense rank among all times, so ``key * ranks + rank`` is one
    int64 that sorts by key then time; a single ``searchsorted`` answers every query.

    >>> _first_at_or_after(np.array([0, 0, 1, 2]), np.array([5, 9, 0, 0]),
    ...                    np.array([0, 0, 1, 0]), np.array([7, 7, 3, 1]),
    ...                    np.array(["b", "a", "c", "d"]))
    array([ 1, -1,  2, -1])
    """
    if not len(a_keys):
        return np.full(len(e_keys), -1, dtype=np.int64)
    ranks = np.unique(np.concatenate([a_at, e_at]), return_inverse=True)[1].astype(np.int64)
    width = int(ranks.max()) + 1
    a_comb = a_keys.astype(np.int64) * width + ranks[: len(a_at)]
    e_comb = e_keys.astype(np.int64) * width + ranks[len(a_at) :]
    order = np.lexsort((a_ids, a_comb))
    sorted_comb = a_comb[order]
    pos = np.searchsorted(sorted_comb, e_comb, side="left")
    inside = pos < len(order)
    pos = np.minimum(pos, len(order) - 1)
    same_key = inside & (a_keys[order][pos] == e_keys)
    return np.where(same_key, order[pos], -1)


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _event(kind: str, e: Enrollment, at: datetime, **more: Any) -> CadenceEvent:
    return CadenceEvent(
        kind=kind,
        enrollment_id=e.id,
        step_index=e.step_index,
        at=at,
        contact_id=e.contact_id,
        lead_id=e.lead_id,
        owner_id=e.owner_id,
        **more,
    )


def _advance(store: Store, now: datetime) -> list[CadenceEvent]:
    events: list[CadenceEvent] = []
    active = F.status == EnrollmentStatus.ACTIVE.value
    waiting = store.enrollments.query(active & F.next_due_at.isnull())
    ready = store.enrollments.query(active & (F.next_due_at <= now), order_by="next_due_at")
    cadences: dict[str, Cadence] = {}

    def cadence_of(e: Enrollment) -> Cadence:
        if e.cadence_id not in cadences:
            cadences[e.cadence_id] = store.cadences.get(e.cadence_id)
        return cadences[e.cadence_id]

    for e in waiting:  # paused on a task step: resume once its reminder is done
        task = e.custom.get(_TASK)
        reminder = store.reminders.find(str(task)) if task else None
        if reminder is None or reminder.status == ReminderStatus.OPEN:
            continue
        resumed_at = reminder.completed_at or now
        custom = {k: v for k, v in e.custom.items() if k != _TASK}
        e = attrs.evolve(e, custom=custom)
        e, more = _next_step(store, cadence_of(e), e, resumed_at, now)
        events += more
    for e in ready:
        _, more = _advance_one(store, cadence_of(e), e, now)
        events += more
    return events


def _next_step(
    store: Store, cadence: Cadence, e: Enrollment, after: datetime, now: datetime
) -> tuple[Enrollment, list[CadenceEvent]]:
    index = e.step_index + 1
    if index >= len(cadence.steps):
        done = store.enrollments.update(_ended(e, EnrollmentStatus.COMPLETED, after, None))
        return done, [_event("completed", done, after)]
    nxt = step_due(cadence, cadence.steps[index], after)
    updated = store.enrollments.update(attrs.evolve(e, step_index=index, next_due_at=nxt))
    if nxt <= now:  # a zero wait, or a catch-up: hand it out in this tick
        return _advance_one(store, cadence, updated, now)
    return updated, []


def _advance_one(
    store: Store, cadence: Cadence, e: Enrollment, now: datetime
) -> tuple[Enrollment, list[CadenceEvent]]:
    step = cadence.steps[e.step_index]
    due_at = e.next_due_at or now
    if step["kind"] == "task":
        rid = f"{e.id}.step{e.step_index}"
        title = str(step.get("title") or f"{cadence.name}: step {e.step_index + 1}")
        store.reminders.put(
            Reminder(
                id=rid,
                title=title,
                owner_id=e.owner_id,
                due_at=due_at,
                timezone=cadence.timezone,
                contact_id=e.contact_id,
                lead_id=e.lead_id,
            )
        )
        updated = store.enrollments.update(
            attrs.evolve(e, next_due_at=None, custom={**e.custom, _TASK: rid})
        )
        return updated, [_event("task", e, due_at, title=title, reminder_id=rid)]
    events = []
    if step["kind"] != "wait":
        events.append(_event(str(step["kind"]), e, due_at, title=step.get("title")))
    e, more = _next_step(store, cadence, e, due_at, now)
    return e, events + more
