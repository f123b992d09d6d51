"""Cadence exits: which live enrolments end on a reply or a booked meeting, beside the peers.

The input: n enrolments (80% of a contact, 20% of a lead, enrolled over 60 days) and 10 n
activities (six kinds, a third of them ``email_replied`` or ``meeting``; each on one of
1.5 n contacts or 0.3 n leads, over 90 days); ``now`` is day 90. An enrolment exits at the
first exit activity of its contact (else its lead) at or after it enrolled (ties by id).

Contenders, all returning the same (enrolment id, exit time, kind) triples:

- pure Python, dict of lists: the rows are already Python tuples in memory (no store);
  group the exit activities by contact/lead, sort each group, ``bisect`` per enrolment.
  The best a user would write by hand; it reads nothing from a store.
- pure Python, nested scan: for each enrolment, scan the time-ordered exit activities until
  one matches (what ``cadence_tick`` did before it was vectorised). Run once on the first
  1,000 enrolments and scaled to n (its cost is linear in the enrolments).
- crmkit ``_find_exits`` on ``MemoryStore`` and ``SQLiteStore``: reads the enrolment and
  activity columns from the store with criteria, then one ``np.searchsorted`` over
  (key, time rank) integers. Also shown: the two column reads alone (the rest of
  ``_find_exits`` is numpy), and the whole exit pass with its writes (``_exits``: one
  batch read of the exiting enrolments, one update each, in a transaction; one run).

    python benchmarks/bench_cadence.py --quick    # 1e3 enrolments x 1e4 activities
    python benchmarks/bench_cadence.py            # 1e4 x 1e5
"""

from __future__ import annotations

import bisect
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from _common import Table, bench_args, best_of, timed
from crmkit import Activity, Cadence, Enrollment, EnrollmentStatus, F, MemoryStore, SQLiteStore
from crmkit._time import micros
from crmkit.reminders._cadence import _exits, _find_exits
from crmkit.store import Store

T0 = datetime(2026, 1, 5, tzinfo=UTC)
DAY_US = 86_400 * 1_000_000
KINDS = ["email_sent", "email_opened", "email_replied", "call", "meeting", "web_visit"]
EXIT = {"email_replied", "meeting"}
LIVE = F.status.isin(["active", "paused"])
SAMPLE = 1_000  # enrolments the nested scan runs on; its time is scaled to n

EnrolRow = tuple[str, str | None, str | None, int]  # id, contact, lead, enrolled_at (us)
ActRow = tuple[str, str | None, str | None, str, int]  # id, contact, lead, kind, at (us)
Exits = tuple[list[str], list[int], list[str]]


def make(n: int, seed: int = 6) -> tuple[list[EnrolRow], list[ActRow]]:
    rng = np.random.default_rng(seed)
    t0 = micros(T0)
    is_lead = rng.random(n) < 0.2
    enrolled = t0 + rng.integers(0, 60 * DAY_US, n)
    enrolments: list[EnrolRow] = [
        (
            f"enr-{i:07d}",
            None if is_lead[i] else f"ct-{i:07d}",
            f"ld-{i:07d}" if is_lead[i] else None,
            int(enrolled[i]),
        )
        for i in range(n)
    ]
    m = 10 * n
    on_lead = rng.random(m) < 0.2
    contact = rng.integers(0, int(1.5 * n), m)
    lead = rng.integers(0, int(0.3 * n) + 1, m)
    kinds = rng.integers(0, len(KINDS), m)
    at = t0 + rng.integers(0, 90 * DAY_US, m)
    order = rng.permutation(m)  # ids not in time order
    activities: list[ActRow] = [
        (
            f"act-{order[j]:08d}",
            None if on_lead[j] else f"ct-{contact[j]:07d}",
            f"ld-{lead[j]:07d}" if on_lead[j] else None,
            KINDS[kinds[j]],
            int(at[j]),
        )
        for j in range(m)
    ]
    return enrolments, activities


def to_datetime(us: int) -> datetime:
    return T0 + timedelta(microseconds=us - micros(T0))


def fill(store: Store, enrolments: list[EnrolRow], activities: list[ActRow]) -> None:
    store.cadences.add(Cadence(id="c", name="Intro", steps=({"kind": "email"},)))
    store.enrollments.add_many(
        Enrollment(id=i, cadence_id="c", contact_id=c, lead_id=ld, enrolled_at=to_datetime(t))
        for i, c, ld, t in enrolments
    )
    store.activities.add_many(
        Activity(id=i, kind=k, contact_id=c, lead_id=ld, at=to_datetime(t))
        for i, c, ld, k, t in activities
    )


def read_columns(store: Store, enrolments: list[EnrolRow], now: datetime) -> None:
    """The two ``columns`` calls ``_find_exits`` makes, with the same criteria."""
    store.enrollments.columns(["id", "contact_id", "lead_id", "enrolled_at"], LIVE)
    contacts = sorted({c for _, c, _, _ in enrolments if c})
    leads = sorted({ld for _, c, ld, _ in enrolments if ld and not c})
    since = to_datetime(min(t for *_, t in enrolments))
    store.activities.columns(
        ["id", "contact_id", "lead_id", "kind", "at"],
        (F.contact_id.isin(contacts) | F.lead_id.isin(leads))
        & F.kind.isin(sorted(EXIT))
        & (F.at >= since)
        & (F.at <= now),
    )


def dict_of_lists(enrolments: list[EnrolRow], activities: list[ActRow], now_us: int) -> Exits:
    groups: defaultdict[tuple[str, str], list[tuple[int, str, str]]] = defaultdict(list)
    for aid, contact, lead, kind, at in activities:
        if kind in EXIT and at <= now_us:
            if contact:
                groups["c", contact].append((at, aid, kind))
            if lead:
                groups["l", lead].append((at, aid, kind))
    for group in groups.values():
        group.sort()
    ids, times, kinds = [], [], []
    for eid, contact, lead, enrolled in sorted(enrolments):
        key = ("c", contact) if contact else ("l", lead or "")
        group = groups.get(key)
        if not group:
            continue
        k = bisect.bisect_left(group, (enrolled,))
        if k < len(group):
            ids.append(eid)
            times.append(group[k][0])
            kinds.append(group[k][2])
    return ids, times, kinds


def nested_scan(enrolments: list[EnrolRow], activities: list[ActRow], now_us: int) -> Exits:
    exits = sorted((at, aid, c, ld, k) for aid, c, ld, k, at in activities if k in EXIT)
    ids, times, kinds = [], [], []
    for eid, contact, lead, enrolled in sorted(enrolments):
        for at, _, c, ld, kind in exits:
            if at > now_us:
                break
            if at >= enrolled and ((c == contact) if contact else (ld == lead)):
                ids.append(eid)
                times.append(at)
                kinds.append(kind)
                break
    return ids, times, kinds


def main() -> None:
    args = bench_args(__doc__, default_n=10_000, quick_n=1_000)
    n = args.n
    enrolments, activities = make(n)
    now = T0 + timedelta(days=90)
    now_us = micros(now)
    expected = dict_of_lists(enrolments, activities, now_us)
    print(f"{len(expected[0]):,} of {n:,} enrolments exit")

    table = Table(f"cadence exits: {n:,} enrolments x {10 * n:,} activities")
    base = table.add(
        "pure Python: dict of lists + bisect",
        best_of(lambda: dict_of_lists(enrolments, activities, now_us), repeat=args.repeat),
        per=n,
    )
    sample = sorted(enrolments)[:SAMPLE]  # the scan is O(enrolments x activities)
    t_nested, got = timed(lambda: nested_scan(sample, activities, now_us))
    assert got == dict_of_lists(sample, activities, now_us)
    table.add(
        "pure Python: nested scan",
        t_nested * n / len(sample),
        base=base,
        per=n,
        note=f"one run on {len(sample):,}, scaled" if len(sample) < n else "one run",
    )

    with tempfile.TemporaryDirectory() as tmp:
        for name, store in [
            ("MemoryStore", MemoryStore()),
            ("SQLiteStore", SQLiteStore(Path(tmp) / "cadence.db")),
        ]:
            fill(store, enrolments, activities)
            assert _find_exits(store, now, LIVE) == expected
            table.add(
                f"crmkit _find_exits({name})",
                best_of(lambda s=store: _find_exits(s, now, LIVE), repeat=args.repeat),
                base=base,
                per=n,
            )
            table.add(
                f"  of which: the two column reads ({name})",
                best_of(lambda s=store: read_columns(s, enrolments, now), repeat=args.repeat),
                base=base,
            )

            def write_all(s: Store = store) -> int:
                with s.transaction():
                    return len(_exits(s, now, LIVE))

            t_write, count = timed(write_all)
            assert count == len(expected[0])
            assert store.enrollments.count(F.status == EnrollmentStatus.EXITED.value) == count
            table.add(f"crmkit _exits({name}) with writes (one run)", t_write, base=base, per=n)
            store.close()
    table.print()


if __name__ == "__main__":
    main()
