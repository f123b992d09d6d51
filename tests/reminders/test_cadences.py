"""Cadences: worked examples with times computed by hand (Paris is UTC+1 in winter, UTC+2
from 29 March 2026)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmkit import Cadence, MemoryStore, SQLiteStore, ValidationError
from crmkit.activities import log
from crmkit.reminders import cadence_tick, complete, enroll, pause, resume, unenroll

AnyStore = MemoryStore | SQLiteStore


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    s: AnyStore = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "c.db")
    s.cadences.add_many(
        [
            Cadence(
                id="intro",
                name="Intro",
                timezone="Europe/Paris",
                steps=(
                    {"kind": "email"},
                    {"kind": "call", "wait_days": 2, "business_days": True},
                    {"kind": "wait", "wait_days": 3},
                    {"kind": "email"},
                    {"kind": "task", "wait_days": 1, "title": "Send case study"},
                    {"kind": "email", "wait_days": 2},
                ),
            ),
            Cadence(
                id="short",
                name="Short",
                timezone="Europe/Paris",
                steps=({"kind": "email"}, {"kind": "call", "wait_days": 2}),
            ),
            Cadence(
                id="anyday",
                name="Any day",
                timezone="Europe/Paris",
                weekdays_only=False,
                steps=({"kind": "email"}, {"kind": "call", "wait_days": 2}),
            ),
        ]
    )
    yield s
    s.close()


def kinds(events: list[object]) -> list[str]:
    return [e.kind for e in events]  # type: ignore[attr-defined]


def test_worked_example(store: AnyStore) -> None:
    enroll(store, "intro", id="e1", contact_id="ada", now=utc(2026, 1, 8, 9))  # Thu 10:00
    assert kinds(cadence_tick(store, utc(2026, 1, 8, 9))) == ["email"]
    assert cadence_tick(store, utc(2026, 1, 8, 9)) == []  # idempotent
    e = store.enrollments.get("e1")
    assert (e.step_index, e.next_due_at) == (1, utc(2026, 1, 12, 9))  # 2 business days: Mon
    assert cadence_tick(store, utc(2026, 1, 9, 9)) == []
    assert kinds(cadence_tick(store, utc(2026, 1, 12, 9))) == ["call"]
    # the wait step passes silently, then the email with no wait goes in the same tick
    assert kinds(cadence_tick(store, utc(2026, 1, 15, 9))) == ["email"]
    task = cadence_tick(store, utc(2026, 1, 16, 9))
    assert kinds(task) == ["task"]
    rid = task[0].reminder_id  # type: ignore[attr-defined]
    assert store.reminders.get(rid).title == "Send case study"
    assert store.enrollments.get("e1").next_due_at is None
    assert cadence_tick(store, utc(2026, 1, 19, 9)) == []  # waiting on the task
    complete(store, rid, utc(2026, 1, 19, 13))  # Mon 14:00 Paris
    assert cadence_tick(store, utc(2026, 1, 19, 13)) == []
    e = store.enrollments.get("e1")
    assert (e.step_index, e.next_due_at) == (5, utc(2026, 1, 21, 13))  # Wed 14:00
    assert kinds(cadence_tick(store, utc(2026, 1, 21, 13))) == ["email", "completed"]
    assert store.enrollments.get("e1").status.value == "completed"
    assert cadence_tick(store, utc(2026, 1, 22, 13)) == []


def test_weekend_step_moves_to_monday_same_local_time(store: AnyStore) -> None:
    enroll(store, "short", id="w", lead_id="l1", now=utc(2026, 1, 16, 15))  # Fri 16:00
    enroll(store, "anyday", id="a", lead_id="l2", now=utc(2026, 1, 16, 15))
    cadence_tick(store, utc(2026, 1, 16, 15))
    assert store.enrollments.get("w").next_due_at == utc(2026, 1, 19, 15)  # Mon 16:00
    assert store.enrollments.get("a").next_due_at == utc(2026, 1, 18, 15)  # Sun 16:00
    # across the DST change (Sun 29 March): Fri 10:00 CET -> Mon 10:00 CEST
    enroll(store, "short", id="d", lead_id="l3", now=utc(2026, 3, 27, 9))
    cadence_tick(store, utc(2026, 3, 27, 9))
    assert store.enrollments.get("d").next_due_at == utc(2026, 3, 30, 8)
    # enrolled on a Saturday: even the first step waits for Monday
    e = enroll(store, "short", id="s", lead_id="l4", now=utc(2026, 1, 17, 10))
    assert e.next_due_at == utc(2026, 1, 19, 10)


def test_reply_or_meeting_ends_enrolment(store: AnyStore) -> None:
    log(store, "email_replied", utc(2026, 1, 7), id="old", contact_id="ada")  # before enrolling
    enroll(store, "intro", id="e1", contact_id="ada", now=utc(2026, 1, 8, 9))
    enroll(store, "intro", id="e2", lead_id="bob", now=utc(2026, 1, 8, 9))
    assert kinds(cadence_tick(store, utc(2026, 1, 8, 9))) == ["email", "email"]
    log(store, "email_replied", utc(2026, 1, 9, 8), id="r", contact_id="ada")
    log(store, "meeting", utc(2026, 1, 9, 10), id="m", lead_id="bob")
    got = cadence_tick(store, utc(2026, 1, 12, 9))
    assert sorted((e.enrollment_id, e.kind, e.title) for e in got) == [  # type: ignore[attr-defined]
        ("e1", "exited", "replied"),
        ("e2", "exited", "meeting_booked"),
    ]
    e1 = store.enrollments.get("e1")
    assert (e1.status.value, e1.ended_at, e1.exit_reason) == (
        "exited",
        utc(2026, 1, 9, 8),
        "replied",
    )


def test_pause_resume_unenroll(store: AnyStore) -> None:
    enroll(store, "short", id="p", contact_id="c", now=utc(2026, 1, 5, 9))  # Mon
    cadence_tick(store, utc(2026, 1, 5, 9))
    pause(store, "p", utc(2026, 1, 6, 9))
    assert cadence_tick(store, utc(2026, 1, 7, 9)) == []  # the call was due, but paused
    resumed = resume(store, "p", utc(2026, 1, 8, 12))
    assert resumed.next_due_at == utc(2026, 1, 8, 12)
    assert kinds(cadence_tick(store, utc(2026, 1, 8, 12))) == ["call", "completed"]
    enroll(store, "short", id="u", contact_id="d", now=utc(2026, 1, 5, 9))
    gone = unenroll(store, "u", utc(2026, 1, 5, 10))
    assert (gone.status.value, gone.next_due_at) == ("exited", None)
    with pytest.raises(ValidationError, match="already ended"):
        unenroll(store, "u", utc(2026, 1, 5, 11))
    with pytest.raises(ValidationError, match="paused"):
        resume(store, "p", utc(2026, 1, 9))


def test_bad_steps_and_enrolment(store: AnyStore) -> None:
    store.cadences.add(Cadence(id="bad", name="Bad", steps=({"kind": "fax"},)))
    with pytest.raises(ValidationError, match=r"steps\[0\].kind"):
        enroll(store, "bad", id="x", contact_id="c", now=utc(2026, 1, 5))
    with pytest.raises(ValidationError, match="exactly one"):
        enroll(store, "short", id="y", now=utc(2026, 1, 5))
    store.cadences.add(Cadence(id="off", name="Off", active=False, steps=({"kind": "call"},)))
    with pytest.raises(ValidationError, match="not active"):
        enroll(store, "off", id="z", contact_id="c", now=utc(2026, 1, 5))
    assert len(store.enrollments) == 0
