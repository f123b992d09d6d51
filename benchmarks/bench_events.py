"""Events: what the outbox costs a write, with events off and on, in every store.

    python benchmarks/bench_events.py [--quick] [-n ACCOUNTS] [--repeat R] [--dsn DSN]
        [--singles K] [--no-postgres]

``n`` Account records (default 100,000; ``--quick`` 10,000) are built once. For each store
(``MemoryStore``, ``SQLiteStore`` in a file, ``PostgresStore`` in a schema of its own) and
each setting (``events=False``, ``events=True``), in alternating rounds on fresh stores
(the best round is kept):

- **add_many**: the n accounts in one call (with events: n change events, written with
  one ``executemany`` / ``COPY`` at the commit);
- **put_many**: the same n accounts replaced (with events the store also reads the old
  records, 500 ids per query, to name the changed fields);
- **single updates**: ``--singles`` (default 1,000) ``update`` calls, each its own
  transaction (with events: one more insert per commit; on PostgreSQL the outbox lock
  and a ``NOTIFY``).

The ratio column is the time with events over the time without.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import psycopg

from _common import Table, bench_args, best_of
from bench_store import make_accounts
from crmkit.events import read
from crmkit.records import Account
from crmkit.store import MemoryStore
from crmkit.store.postgres import PostgresStore
from crmkit.store.sqlite import SQLiteStore


def one_round(
    store: Any, records: list[Account], renamed: list[Account], singles: list[Account]
) -> list[tuple[str, float]]:
    """Time add_many, put_many and single updates on one fresh store."""
    added = best_of(lambda: store.accounts.add_many(records), repeat=1)
    replaced = best_of(lambda: store.accounts.put_many(renamed), repeat=1)
    stored = [store.accounts.get(a.id) for a in singles]

    def updates() -> None:
        for a in stored:
            store.accounts.update(attrs.evolve(a, employees=(a.employees or 0) + 1))

    return [("add_many", added), ("put_many", replaced), ("updates", best_of(updates, repeat=1))]


def measure(title: str, opener: Callable[[bool], Any], records: list[Account], args: Any) -> None:
    n = len(records)
    singles = records[: args.singles]
    renamed = [attrs.evolve(a, name=a.name + " Ltd") for a in records]
    best: dict[tuple[str, bool], float] = {}

    def keep(key: tuple[str, bool], seconds: float) -> None:
        best[key] = min(best.get(key, float("inf")), seconds)

    for _ in range(max(1, args.repeat)):
        for events in (False, True):
            store = opener(events)
            try:
                for name, seconds in one_round(store, records, renamed, singles):
                    keep((name, events), seconds)
                expected = 2 * n + len(singles) if events else 0
                assert len(read(store)) == expected, (len(read(store)), expected)
            finally:
                store.close()
    table = Table(f"{title}: events off vs on")
    for name, label, count in (
        ("add_many", f"add_many of {n:,}", n),
        ("put_many", f"put_many of {n:,} (all replaced)", n),
        ("updates", f"{len(singles):,} single updates", len(singles)),
    ):
        base = table.add(f"{label}, events off", best[(name, False)], per=count)
        table.add(f"{label}, events on", best[(name, True)], base=base, per=count)
    table.print()


def main() -> None:
    def configure(parser: Any) -> None:
        parser.add_argument("--dsn", default="dbname=test", help="libpq connection string")
        parser.add_argument("--singles", type=int, default=1_000, help="single updates")
        parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")

    args = bench_args(__doc__, default_n=100_000, quick_n=10_000, configure=configure)
    records = make_accounts(args.n)
    measure("MemoryStore", lambda events: MemoryStore(events=events), records, args)
    with tempfile.TemporaryDirectory() as folder:
        files = iter(range(1_000_000))
        measure(
            "SQLiteStore (file, WAL)",
            lambda events: SQLiteStore(Path(folder) / f"bench{next(files)}.db", events=events),
            records,
            args,
        )
    if args.no_postgres:
        return
    schemas: list[str] = []

    def postgres(events: bool) -> PostgresStore:
        schemas.append(f"crmkit_bench_{uuid.uuid4().hex[:8]}")
        return PostgresStore(args.dsn, schema=schemas[-1], events=events)

    try:
        measure("PostgresStore", postgres, records, args)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
