"""Reminders: bulk schedule, single schedules, due, completions, snoozes and next_due.

Workload: n reminders with due times spread over a year (5% snoozed an hour), then
m = min(100,000, n / 10) single schedules, m completions (the earliest due first, as
work is done in practice) and m snoozes (random open reminders, by a day).

- MemoryStore: ``crmkit.reminders`` calls beside what a user would otherwise write: a
  ``dict`` of the Reminder records by id plus a ``heapq`` of ``(due_us, id)`` (stale
  entries skipped lazily on read) or a ``sortedcontainers.SortedList`` of the same
  pairs (removed on change). The peers build and evolve the same attrs records crmkit
  does, so record construction is on both sides; they do not check criteria, keep a
  transaction log, or validate batches.
- SQLiteStore: the same calls beside raw ``sqlite3`` on the *same table and indexes*
  (replayed from the store's ``sqlite_master`` into a second file): ``executemany`` of
  ready-made tuples, one ``INSERT`` / ``UPDATE`` per call in its own transaction, and
  for ``due`` and ``next_due`` the very SQL ``WHERE`` clauses the store runs (next due:
  the first unsnoozed and the first snoozed open reminder, ``ORDER BY ... LIMIT 1``).

Targets (issue 6): memory-store operations within 2x of the best of heapq/sortedcontainers;
SQLite batch operations within 2x of raw sqlite3.

    python benchmarks/bench_reminders.py --quick    # n = 1e5; drop --quick for 1e6
    python benchmarks/bench_reminders.py --memory-only   # the MemoryStore part only
"""

from __future__ import annotations

import argparse
import heapq
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from sortedcontainers import SortedList

from _common import Table, bench_args, best_of, timed
from crmkit import MemoryStore, Reminder, SQLiteStore
from crmkit._time import micros
from crmkit.criteria import bind
from crmkit.records import ReminderStatus
from crmkit.reminders import complete, due, next_due, schedule, schedule_many, snooze
from crmkit.reminders._scheduler import _next_due_criteria, _open_due_before

START = datetime(2026, 1, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
K = 100
OPEN, DONE = ReminderStatus.OPEN, ReminderStatus.DONE


def make(n: int, seed: int = 6, prefix: str = "rem") -> list[Reminder]:
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, 365 * 24 * 3600, n)
    snoozed = rng.random(n) < 0.05
    return [
        Reminder(
            id=f"{prefix}-{i:07d}",
            title="Call back",
            owner_id=f"rep-{i % 200:03d}",
            due_at=START + timedelta(seconds=int(offsets[i])),
            snoozed_until=(
                START + timedelta(seconds=int(offsets[i]) + 3600) if snoozed[i] else None
            ),
        )
        for i in range(n)
    ]


def key(r: Reminder) -> int:
    return micros(r.snoozed_until or r.due_at)


class HeapBook:
    """Records by id plus a heap of (effective due, id); stale entries dropped on read."""

    def __init__(self, records: list[Reminder]) -> None:
        self.records = {r.id: r for r in records}
        self.heap = [(key(r), r.id) for r in records]
        heapq.heapify(self.heap)

    def _live(self, item: tuple[int, str]) -> bool:
        r = self.records[item[1]]
        return r.status == OPEN and key(r) == item[0]

    def add(self, r: Reminder) -> None:
        self.records[r.id] = r
        heapq.heappush(self.heap, (key(r), r.id))

    def due(self, now_us: int) -> list[Reminder]:
        heap, kept = self.heap, []
        while heap and heap[0][0] <= now_us:
            item = heapq.heappop(heap)
            if self._live(item):
                kept.append(item)
        for item in kept:
            heapq.heappush(heap, item)
        return [self.records[rid] for _, rid in kept]

    def complete(self, rid: str, now: datetime) -> None:
        r = self.records[rid]
        self.records[rid] = attrs.evolve(r, status=DONE, completed_at=now)

    def snooze(self, rid: str, until: datetime) -> None:
        r = self.records[rid] = attrs.evolve(self.records[rid], snoozed_until=until)
        heapq.heappush(self.heap, (key(r), rid))

    def next(self) -> Reminder | None:
        heap = self.heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return self.records[heap[0][1]] if heap else None


class SortedBook:
    """Records by id plus a SortedList of (effective due, id) kept exact."""

    def __init__(self, records: list[Reminder]) -> None:
        self.records = {r.id: r for r in records}
        self.order = SortedList((key(r), r.id) for r in records)

    def add(self, r: Reminder) -> None:
        self.records[r.id] = r
        self.order.add((key(r), r.id))

    def due(self, now_us: int) -> list[Reminder]:
        return [self.records[rid] for _, rid in self.order.irange(maximum=(now_us, "\uffff"))]

    def complete(self, rid: str, now: datetime) -> None:
        r = self.records[rid]
        self.order.remove((key(r), rid))
        self.records[rid] = attrs.evolve(r, status=DONE, completed_at=now)

    def snooze(self, rid: str, until: datetime) -> None:
        r = self.records[rid]
        self.order.remove((key(r), rid))
        r = self.records[rid] = attrs.evolve(r, snoozed_until=until)
        self.order.add((key(r), rid))

    def next(self) -> Reminder | None:
        return self.records[self.order[0][1]] if self.order else None


def at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def each(items: list[Any], call: Callable[[Any], Any]) -> Callable[[], None]:
    def run() -> None:
        for item in items:
            call(item)

    return run


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-only", action="store_true", help="skip the SQLite part")


def main() -> None:
    args = bench_args(__doc__, default_n=1_000_000, quick_n=100_000, configure=_options)
    n = args.n
    m = min(100_000, n // 10)
    records = make(n)
    singles = make(m, seed=7, prefix="new")
    ordered = sorted((key(r), r.id) for r in records)
    now_us = ordered[K - 1][0]
    now = at(now_us)
    expected = [rid for _, rid in ordered[:K]]
    rng = np.random.default_rng(8)
    finish = [rid for _, rid in ordered[:m]]  # the earliest due are done first
    rest = [rid for _, rid in ordered[m:]]
    push = [rest[int(i)] for i in rng.choice(len(rest), m, replace=False)]
    done_at = at(ordered[m - 1][0])

    def until(rid: str, book: dict[str, Reminder]) -> datetime:
        return book[rid].due_at + timedelta(days=1)

    by_id = {r.id: r for r in records}

    # -- memory ----------------------------------------------------------------------------
    mem = Table(f"reminders in memory, n = {n:,}, m = {m:,}, due query returns {K}")
    t_heap, heap = timed(lambda: HeapBook(records))
    t_sl, sl = timed(lambda: SortedBook(records))
    base = mem.add("bulk: dict + heapify", t_heap, per=n)
    mem.add("bulk: dict + SortedList", t_sl, base=base, per=n)
    t_bulk, store = timed(lambda: _filled(MemoryStore(), records))
    best = min(t_heap, t_sl)
    mem.add("bulk: schedule_many(MemoryStore)", t_bulk, base=best, per=n, target=2)
    t_first, first = timed(lambda: due(store, now))
    mem.add("bulk: + first due() (builds indexes)", t_bulk + t_first, base=best, per=n, target=2)
    assert [r.id for r in first] == expected
    assert [r.id for r in heap.due(now_us)] == expected
    assert [r.id for r in sl.due(now_us)] == expected

    def due_rows(label: str) -> None:
        t_hd = best_of(lambda: heap.due(now_us), repeat=args.repeat)
        t_sd = best_of(lambda: sl.due(now_us), repeat=args.repeat)
        mem.add(f"due{label}: heapq pop/push", t_hd)
        mem.add(f"due{label}: SortedList.irange", t_sd, base=t_hd)
        t_cd = best_of(lambda: due(store, now), repeat=args.repeat)
        mem.add(f"due{label}: crmkit due()", t_cd, base=min(t_hd, t_sd), target=2)
        t_hn = best_of(heap.next, repeat=args.repeat)
        t_sn = best_of(sl.next, repeat=args.repeat)
        mem.add(f"next{label}: heap[0]", t_hn)
        mem.add(f"next{label}: SortedList[0]", t_sn, base=t_hn)
        t_cn = best_of(lambda: next_due(store), repeat=args.repeat)
        mem.add(f"next{label}: crmkit next_due()", t_cn, base=min(t_hn, t_sn), target=2)

    due_rows("")
    assert getattr(next_due(store), "id", None) == ordered[0][1] == heap.next().id

    t_hs, _ = timed(each(singles, lambda r: heap.add(attrs.evolve(r))))
    t_ss, _ = timed(each(singles, lambda r: sl.add(attrs.evolve(r))))
    mem.add("single schedules: dict + heappush", t_hs, per=m)
    mem.add("single schedules: dict + SortedList.add", t_ss, base=t_hs, per=m)

    def one(r: Reminder) -> None:
        schedule(
            store,
            id=r.id,
            title=r.title,
            due_at=r.due_at,
            owner_id=r.owner_id,
            timezone="UTC",
            snoozed_until=r.snoozed_until,
        )

    t_cs, _ = timed(each(singles, one))
    mem.add("single schedules: crmkit schedule()", t_cs, base=min(t_hs, t_ss), per=m, target=2)

    t_hc, _ = timed(each(finish, lambda rid: heap.complete(rid, done_at)))
    t_sc, _ = timed(each(finish, lambda rid: sl.complete(rid, done_at)))
    t_cc, _ = timed(each(finish, lambda rid: complete(store, rid, done_at)))
    mem.add("completions: dict + heap (lazy)", t_hc, per=m)
    mem.add("completions: dict + SortedList.remove", t_sc, base=t_hc, per=m)
    mem.add("completions: crmkit complete()", t_cc, base=min(t_hc, t_sc), per=m, target=2)

    t_hz, _ = timed(each(push, lambda rid: heap.snooze(rid, until(rid, by_id))))
    t_sz, _ = timed(each(push, lambda rid: sl.snooze(rid, until(rid, by_id))))
    t_cz, _ = timed(each(push, lambda rid: snooze(store, rid, until(rid, by_id))))
    mem.add("snoozes: dict + heappush", t_hz, per=m)
    mem.add("snoozes: dict + SortedList remove/add", t_sz, base=t_hz, per=m)
    mem.add("snoozes: crmkit snooze()", t_cz, base=min(t_hz, t_sz), per=m, target=2)

    now_us = sorted((key(r), r.id) for r in sl.records.values() if r.status == OPEN)[K - 1][0]
    now = at(now_us)
    got = [r.id for r in due(store, now)]
    assert got == [r.id for r in sl.due(now_us)] == [r.id for r in heap.due(now_us)], "after"
    due_rows(" after churn")
    mem.print()
    if args.memory_only:
        return

    # -- sqlite ----------------------------------------------------------------------------
    now_us = ordered[K - 1][0]
    now = at(now_us)
    with tempfile.TemporaryDirectory() as tmp:
        sq = Table(f"reminders in SQLite, n = {n:,}, m = {m:,}, due query returns {K}")
        store_path = Path(tmp) / "store.db"
        db = SQLiteStore(store_path)
        t_store, _ = timed(lambda: schedule_many(db, records))
        conn = raw_database(Path(tmp) / "raw.db", store_path)
        marks = ", ".join("?" * len(as_row(records[0])))
        insert = f"INSERT INTO reminders VALUES ({marks})"

        def raw_insert() -> None:
            rows = [as_row(r) for r in records]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, rows)
            conn.execute("COMMIT")

        t_raw, _ = timed(raw_insert)
        base = sq.add("bulk: raw executemany", t_raw, per=n)
        sq.add("bulk: schedule_many(SQLiteStore)", t_store, base=base, per=n, target=2)
        where, params = bind(_open_due_before(now), Reminder).to_sql()
        sql = f"SELECT * FROM reminders WHERE {where}"

        def raw_due() -> list[Any]:
            return conn.execute(sql, params).fetchall()

        assert sorted(r[0] for r in raw_due()) == sorted(expected)
        assert [r.id for r in due(db, now)] == expected
        base = sq.add("due: raw SELECT", best_of(raw_due, repeat=args.repeat))
        sq.add("due: crmkit due()", best_of(lambda: due(db, now)), base=base, target=2)

        plain, snoozed = (c.to_sql() for c in _next_due_criteria())
        first_plain = f"SELECT * FROM reminders WHERE {plain[0]} ORDER BY due_at, id LIMIT 1"
        first_snoozed = (
            f"SELECT * FROM reminders WHERE {snoozed[0]} ORDER BY snoozed_until, id LIMIT 1"
        )

        def raw_next() -> Any:
            a = conn.execute(first_plain, plain[1]).fetchone()
            b = conn.execute(first_snoozed, snoozed[1]).fetchone()
            return min((r for r in (a, b) if r), key=lambda r: (r[8] or r[3], r[0]))

        base = sq.add("next: raw ORDER BY LIMIT 1", best_of(raw_next, repeat=args.repeat))
        sq.add(
            "next: crmkit next_due()",
            best_of(lambda: next_due(db), repeat=args.repeat),
            base=base,
            target=2,
        )

        def raw_one(r: Reminder) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(insert, as_row(r))
            conn.execute("COMMIT")

        def raw_update(sql: str, params: tuple[Any, ...]) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, params)
            conn.execute("COMMIT")

        store = db  # `one` schedules into `store`
        t_raw1, _ = timed(each(singles, raw_one))
        t_one, _ = timed(each(singles, one))
        sq.add("single schedules: raw INSERT + COMMIT", t_raw1, per=m)
        sq.add("single schedules: crmkit schedule()", t_one, base=t_raw1, per=m, target=2)
        done_sql = (
            "UPDATE reminders SET status = 'done', completed_at = ?, version = version + 1 "
            "WHERE id = ? AND status = 'open'"
        )
        done_us = micros(done_at)
        t_rawc, _ = timed(each(finish, lambda rid: raw_update(done_sql, (done_us, rid))))
        t_cc, _ = timed(each(finish, lambda rid: complete(db, rid, done_at)))
        sq.add("completions: raw UPDATE + COMMIT", t_rawc, per=m)
        sq.add("completions: crmkit complete()", t_cc, base=t_rawc, per=m, target=2)
        snooze_sql = (
            "UPDATE reminders SET snoozed_until = ?, version = version + 1 "
            "WHERE id = ? AND status = 'open'"
        )
        t_rawz, _ = timed(
            each(push, lambda rid: raw_update(snooze_sql, (micros(until(rid, by_id)), rid)))
        )
        t_cz, _ = timed(each(push, lambda rid: snooze(db, rid, until(rid, by_id))))
        sq.add("snoozes: raw UPDATE + COMMIT", t_rawz, per=m)
        sq.add("snoozes: crmkit snooze()", t_cz, base=t_rawz, per=m, target=2)
        sq.print()
        conn.close()
        db.close()


def as_row(r: Reminder) -> tuple[Any, ...]:
    snoozed = None if r.snoozed_until is None else micros(r.snoozed_until)
    return (
        r.id, r.owner_id, r.title, micros(r.due_at), r.timezone, r.remind_before_minutes,
        None, "open", snoozed, None, None, None, None, None, None, "{}", 1,
    )  # fmt: skip


def raw_database(path: Path, store_path: Path) -> sqlite3.Connection:
    source = sqlite3.connect(store_path)
    statements = [
        sql
        for (sql,) in source.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'reminders' AND sql IS NOT NULL "
            "ORDER BY type DESC, name"
        )
    ]
    source.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for sql in statements:
        conn.execute(sql)
    return conn


def _filled(store: MemoryStore, records: list[Reminder]) -> MemoryStore:
    schedule_many(store, records)
    return store


if __name__ == "__main__":
    main()
