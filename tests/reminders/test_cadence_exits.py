"""The vectorised cadence-exit check against a plain-Python reference, in every store.

The reference reads the rule straight from the docs: a live (active or paused) enrolment
ends at the first ``email_replied`` or ``meeting`` activity of its contact (or, when it has
no contact, its lead) with ``enrolled_at <= at <= now``; ties on ``at`` go to the smaller
activity id, whose kind gives the reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit import (
    Activity,
    ActivityKind,
    Cadence,
    Enrollment,
    EnrollmentStatus,
    F,
    MemoryStore,
    SQLiteStore,
)
from crmkit.reminders._cadence import _exits, cadence_tick

AnyStore = MemoryStore | SQLiteStore
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIVE = {"active", "paused"}
REASONS = {"email_replied": "replied", "meeting": "meeting_booked"}
CONTACTS = ["c0", "c1"]
LEADS = ["l0", "l1"]
_files = itertools.count()


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def reference(
    enrollments: list[Enrollment], activities: list[Activity], now: datetime
) -> list[tuple[str, datetime, str]]:
    """(enrollment id, exit time, reason) in enrolment id order, by brute force."""
    result = []
    for e in sorted(enrollments, key=lambda e: e.id):
        if e.status.value not in LIVE:
            continue
        if e.contact_id is not None:
            field, key = "contact_id", e.contact_id
        elif e.lead_id is not None:
            field, key = "lead_id", e.lead_id
        else:
            continue
        candidates = [
            a
            for a in activities
            if a.kind.value in REASONS
            and getattr(a, field) == key
            and e.enrolled_at <= a.at <= now
        ]
        if candidates:
            first = min(candidates, key=lambda a: (a.at, a.id))
            result.append((e.id, first.at, REASONS[first.kind.value]))
    return result


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Enrollment], list[Activity], datetime]:
    minutes = st.integers(0, 5)  # a small range, so times often tie
    maybe_contact = st.none() | st.sampled_from(CONTACTS)
    maybe_lead = st.none() | st.sampled_from(LEADS)
    n_enrol = draw(st.integers(0, 8))
    enrol_ids = draw(st.lists(st.text("abcxyz", min_size=1, max_size=3), unique=True,
                              min_size=n_enrol, max_size=n_enrol))  # fmt: skip
    enrollments = [
        Enrollment(
            id=f"e-{eid}",
            cadence_id="c",
            contact_id=draw(maybe_contact),
            lead_id=draw(maybe_lead),
            status=draw(st.sampled_from(list(EnrollmentStatus))),
            enrolled_at=at(draw(minutes)),
        )
        for eid in enrol_ids
    ]
    n_act = draw(st.integers(0, 20))
    act_ids = draw(st.lists(st.text("abcxyz", min_size=1, max_size=3), unique=True,
                            min_size=n_act, max_size=n_act))  # fmt: skip
    exit_kinds = [ActivityKind.EMAIL_REPLIED, ActivityKind.MEETING]
    kinds = st.sampled_from([*exit_kinds, *exit_kinds, ActivityKind.CALL, ActivityKind.NOTE])
    activities = [
        Activity(
            id=f"a-{aid}",
            kind=draw(kinds),
            at=at(draw(minutes)),
            contact_id=draw(maybe_contact),
            lead_id=draw(maybe_lead),
        )
        for aid in act_ids
    ]
    return enrollments, activities, at(draw(st.integers(-1, 6)))


STORES: dict[str, Callable[[Path], AnyStore]] = {
    "memory": lambda _: MemoryStore(),
    "memory-indexed": lambda _: MemoryStore(index_from=0),
    "sqlite": lambda tmp: SQLiteStore(tmp / f"exits-{next(_files)}.db"),
}


@pytest.fixture(params=sorted(STORES))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], AnyStore]]:
    opened: list[AnyStore] = []

    def make() -> AnyStore:
        store = STORES[request.param](tmp_path)
        store.cadences.add(Cadence(id="c", name="C", steps=({"kind": "email"},)))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# make_store is a factory: every example gets a fresh store, so sharing it is safe
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_exits_match_the_reference(
    make_store: Callable[[], AnyStore],
    scenario: tuple[list[Enrollment], list[Activity], datetime],
) -> None:
    enrollments, activities, now = scenario
    store = make_store()
    store.enrollments.add_many(enrollments)
    store.activities.add_many(activities)
    expected = reference(enrollments, activities, now)
    live = F.status.isin(sorted(LIVE))

    with store.transaction():
        events = _exits(store, now, live)

    assert [(ev.enrollment_id, ev.at, ev.title) for ev in events] == expected
    assert all(ev.kind == "exited" for ev in events)
    assert all(ev.at.tzinfo is not None and ev.at.utcoffset() == timedelta(0) for ev in events)
    exited = {eid: (when, why) for eid, when, why in expected}
    for before in enrollments:
        after = store.enrollments.get(before.id)
        if before.id in exited:
            assert after.status == EnrollmentStatus.EXITED
            assert (after.ended_at, after.exit_reason) == exited[before.id]
            assert after.next_due_at is None
            assert after.version == 2
        else:
            assert after == attrs.evolve(before, version=1)
    # a second run at the same time finds nothing new
    with store.transaction():
        assert _exits(store, now, live) == []


def test_worked_example_tie_and_boundaries(make_store: Callable[[], AnyStore]) -> None:
    store = make_store()
    store.enrollments.add_many(
        [
            Enrollment(id="e1", cadence_id="c", contact_id="ada", enrolled_at=at(10)),
            Enrollment(id="e2", cadence_id="c", lead_id="bo", enrolled_at=at(10)),
            Enrollment(id="e3", cadence_id="c", contact_id="cy", lead_id="bo", enrolled_at=at(0)),
            Enrollment(id="e4", cadence_id="c", contact_id="di", enrolled_at=at(0)),
        ]
    )
    store.activities.add_many(
        [
            Activity(id="z", kind="email_replied", at=at(10), contact_id="ada"),  # tie at 10:
            Activity(id="m", kind="meeting", at=at(10), contact_id="ada"),  # "m" < "z" wins
            Activity(id="early", kind="meeting", at=at(9), lead_id="bo"),  # before enrolling
            Activity(id="b2", kind="email_replied", at=at(30), lead_id="bo"),
            Activity(id="late", kind="meeting", at=at(61), contact_id="di"),  # after now
            Activity(id="call", kind="call", at=at(20), contact_id="di"),  # not an exit kind
        ]
    )
    events = cadence_tick(store, at(60))
    exits = [(e.enrollment_id, e.at, e.title) for e in events if e.kind == "exited"]
    # e3 is keyed by its contact "cy" (no activity), not by its lead "bo"
    assert exits == [("e1", at(10), "meeting_booked"), ("e2", at(30), "replied")]
    assert store.enrollments.get("e3").status == EnrollmentStatus.ACTIVE
    assert store.enrollments.get("e4").status == EnrollmentStatus.ACTIVE
