"""Reminders that are exact instants, correct across time zones and DST.

- :class:`BusinessCalendar`: working hours per weekday in a zone, minus holidays;
  ``is_open``, ``next_open``, ``add_business_time``, ``business_time_between``;
  :func:`country_holidays` reads a country's public holidays from the optional
  ``holidays`` package.
- Reminders in the store: :func:`schedule` (aware or wall-clock due times, RRULE
  recurrence), :func:`snooze`, :func:`complete` (spawns the next occurrence),
  :func:`cancel`, :func:`follow_up`, :func:`plan`; queries :func:`due`, :func:`overdue`,
  :func:`next_due`, :func:`upcoming`, :func:`state_of`; and :func:`tick`, the idempotent
  "what should I act on now" call, which also rolls missed recurring reminders forward and
  is safe to call from several processes at once.
- Cadences: :func:`enroll`, :func:`pause`, :func:`resume`, :func:`unenroll` and
  :func:`cadence_tick`, which hands out due steps and ends enrolments on a reply.
- :func:`stale_work`: reminders for deals stuck in a stage and leads past their SLA.

Wall-clock policy: a naive wall time is read with ``fold=0``: inside a DST gap it moves
forward by the gap, inside a fold it is the first occurrence (see :func:`localize`).

>>> from datetime import datetime, timezone
>>> from crmkit.store import MemoryStore
>>> store = MemoryStore()
>>> r = schedule(store, id="r1", title="Call Ada", due_at=datetime(2026, 1, 5, 9, 0),
...              timezone="Europe/Paris")
>>> [e.kind for e in tick(store, datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc))]
['due']
"""

from __future__ import annotations

from crmkit.reminders._cadence import (
    CadenceEvent,
    cadence_tick,
    check_steps,
    enroll,
    pause,
    resume,
    unenroll,
)
from crmkit.reminders._calendar import BusinessCalendar, country_holidays, localize
from crmkit.reminders._recurrence import occurrences
from crmkit.reminders._scheduler import (
    STATE_DOC,
    Completion,
    ReminderEvent,
    ReminderState,
    alert_at,
    cancel,
    complete,
    due,
    effective_due,
    follow_up,
    next_due,
    overdue,
    plan,
    schedule,
    schedule_many,
    snooze,
    state_of,
    tick,
    upcoming,
)
from crmkit.reminders._stale import stale_work

__all__ = [
    "STATE_DOC",
    "BusinessCalendar",
    "CadenceEvent",
    "Completion",
    "ReminderEvent",
    "ReminderState",
    "alert_at",
    "cadence_tick",
    "cancel",
    "check_steps",
    "complete",
    "country_holidays",
    "due",
    "effective_due",
    "enroll",
    "follow_up",
    "localize",
    "next_due",
    "occurrences",
    "overdue",
    "pause",
    "plan",
    "resume",
    "schedule",
    "schedule_many",
    "snooze",
    "stale_work",
    "state_of",
    "tick",
    "unenroll",
    "upcoming",
]
