"""Reminders: bulk schedule, a due query returning k items and next_due, beside the peers.

Contenders, on the same n reminders (due times spread over a year, 5% snoozed):

- MemoryStore: ``crmkit.reminders.schedule_many`` / ``due`` / ``next_due`` beside a
  ``heapq`` of ``(due_us, id)`` tuples (heapify; due = pop while the top is due, then push
  back; next = ``heap[0]``) and a ``sortedcontainers.SortedList`` (construction; due =
  ``irange``; next = ``sl[0]``). The peers keep only the key and id, not records.
- SQLiteStore: the same crmkit calls beside raw ``sqlite3`` on the *same table and indexes*
  (replayed from the store's ``sqlite_master`` in a second file): ``executemany`` of
  ready-made tuples, the same ``WHERE`` the store runs for ``due``, and
  ``ORDER BY due_at LIMIT 1`` for ``next_due``.

Targets (issue 6): memory-store operations within 2x of the best of heapq/sortedcontainers;
SQLite batch operations within 2x of raw sqlite3.

    python benchmarks/bench_reminders.py --quick    # 1e5 reminders; drop --quick for 1e6
"""

from __future__ import annotations

import heapq
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sortedcontainers import SortedList

from _common import Table, bench_args, best_of, timed
from crmkit import MemoryStore, Reminder, SQLiteStore
from crmkit._time import micros
from crmkit.reminders import due, next_due, schedule_many

START = datetime(2026, 1, 1, tzinfo=UTC)
K = 100


def make(n: int, seed: int = 6) -> list[Reminder]:
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, 365 * 24 * 3600, n)
    snoozed = rng.random(n) < 0.05
    return [
        Reminder(
            id=f"rem-{i:07d}",
            title="Call back",
            owner_id=f"rep-{i % 200:03d}",
            due_at=START + timedelta(seconds=int(offsets[i])),
            snoozed_until=(
                START + timedelta(seconds=int(offsets[i]) + 3600) if snoozed[i] else None
            ),
        )
        for i in range(n)
    ]


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


def main() -> None:
    args = bench_args(__doc__, default_n=1_000_000, quick_n=100_000)
    n = args.n
    records = make(n)
    keys = [
        (micros(r.snoozed_until or r.due_at), r.id) for r in records
    ]  # effective due, as the peers keep it
    ordered = sorted(keys)
    now_us = ordered[K - 1][0]
    now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=now_us)
    expected = [rid for _, rid in ordered[:K]]

    # -- memory ----------------------------------------------------------------------------
    mem = Table(f"reminders in memory, n = {n:,}, due query returns {K}")
    t_heap = best_of(lambda: heapq.heapify(list(keys)), repeat=args.repeat)
    t_sl = best_of(lambda: SortedList(keys), repeat=args.repeat)
    base = mem.add("bulk: heapq.heapify", t_heap, per=n)
    mem.add("bulk: SortedList(...)", t_sl, base=base, per=n)
    t_store, store = timed(lambda: _filled(MemoryStore(), records))
    mem.add("bulk: schedule_many(MemoryStore)", t_store, base=min(t_heap, t_sl), per=n, target=2)

    heap = list(keys)
    heapq.heapify(heap)
    sl = SortedList(keys)

    def heap_due() -> list[str]:
        got = []
        while heap and heap[0][0] <= now_us:
            got.append(heapq.heappop(heap))
        for item in got:
            heapq.heappush(heap, item)
        return [rid for _, rid in got]

    def sl_due() -> list[str]:
        return [rid for _, rid in sl.irange(maximum=(now_us, "\uffff"))]

    assert heap_due() == expected
    assert sl_due() == expected
    assert [r.id for r in due(store, now)] == expected
    t_hd = best_of(heap_due, repeat=args.repeat)
    t_sd = best_of(sl_due, repeat=args.repeat)
    base = mem.add("due: heapq pop/push k", t_hd)
    mem.add("due: SortedList.irange", t_sd, base=base)
    mem.add(
        "due: crmkit due(MemoryStore)",
        best_of(lambda: due(store, now), repeat=args.repeat),
        base=min(t_hd, t_sd),
        target=2,
    )
    first = next_due(store)
    assert first is not None
    assert first.id == ordered[0][1]
    t_hn = best_of(lambda: heap[0], repeat=args.repeat)
    base = mem.add("next: heap[0]", t_hn)
    t_sn = mem.add("next: SortedList[0]", best_of(lambda: sl[0], repeat=args.repeat), base=base)
    mem.add(
        "next: crmkit next_due(MemoryStore)",
        best_of(lambda: next_due(store), repeat=args.repeat),
        base=min(t_hn, t_sn),
        target=2,
    )
    mem.print()

    # -- sqlite ----------------------------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        sq = Table(f"reminders in SQLite, n = {n:,}, due query returns {K}")
        store_path = Path(tmp) / "store.db"
        db = SQLiteStore(store_path)
        t_store, _ = timed(lambda: schedule_many(db, records))
        rows = [as_row(r) for r in records]
        conn = raw_database(Path(tmp) / "raw.db", store_path)
        marks = ", ".join("?" * len(rows[0]))

        def raw_insert() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO reminders VALUES ({marks})", rows)
            conn.execute("COMMIT")

        t_raw, _ = timed(raw_insert)
        base = sq.add("bulk: raw executemany", t_raw, per=n)
        sq.add("bulk: schedule_many(SQLiteStore)", t_store, base=base, per=n, target=2)
        sql = (
            "SELECT * FROM reminders WHERE status = 'open' AND ((snoozed_until IS NULL AND "
            "due_at <= ?) OR snoozed_until <= ?)"
        )

        def raw_due() -> list[Any]:
            return conn.execute(sql, (now_us, now_us)).fetchall()

        assert sorted(r[0] for r in raw_due()) == sorted(expected)
        assert sorted(r.id for r in due(db, now)) == sorted(expected)
        base = sq.add("due: raw SELECT", best_of(raw_due, repeat=args.repeat))
        sq.add("due: crmkit due(SQLiteStore)", best_of(lambda: due(db, now)), base=base, target=2)

        def raw_next() -> Any:
            return conn.execute(
                "SELECT * FROM reminders WHERE status = 'open' AND snoozed_until IS NULL "
                "ORDER BY due_at, id LIMIT 1"
            ).fetchone()

        base = sq.add("next: raw ORDER BY LIMIT 1", best_of(raw_next, repeat=args.repeat))
        sq.add(
            "next: crmkit next_due(SQLiteStore)",
            best_of(lambda: next_due(db), repeat=args.repeat),
            base=base,
            target=2,
        )
        sq.print()
        conn.close()
        db.close()


def _filled(store: MemoryStore, records: list[Reminder]) -> MemoryStore:
    schedule_many(store, records)
    return store


if __name__ == "__main__":
    main()
