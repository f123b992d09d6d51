"""Several worker processes routing leads and ticking reminders on one durable store.

    python benchmarks/bench_many_processes.py [--quick] [--workers W] [--leads N]
        [--reminders R] [--store sqlite|postgres|both] [--dsn DSN]

Each of ``W`` OS processes (default 4) opens its own store on one SQLite file or one
PostgreSQL schema and, released together, routes its share of ``N`` leads (default 2,000;
``--quick`` 400) one by one through a round-robin pool of five reps, then ticks the
reminders ``R`` (default 2,000; ``--quick`` 400), all due, as a scheduler would.

Nothing is timed against a peer here: the point is that the counts add up. The script
checks, and prints, that every lead is stored exactly once and assigned, that the reps'
counts differ by at most one, that each reminder fired exactly once across the workers
and that every reminder was alerted. It also prints the throughput: lead routing is one
transaction per lead, all of them reading and writing the pool's rotation state, so it
measures the worst case of contention.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from crmkit import FixedClock, Lead, Reminder, Rep, RoutingRule
from crmkit.reminders import schedule_many, tick
from crmkit.routing import Router

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
REPS = ("ana", "ben", "cy", "dee", "eli")


def open_store(kind: str, target: str, schema: str | None) -> Any:
    if kind == "sqlite":
        from crmkit.store.sqlite import SQLiteStore

        return SQLiteStore(target, timeout=60)
    from crmkit.store.postgres import PostgresStore

    return PostgresStore(target, schema=schema)


def seed(store: Any, reminders: int) -> None:
    store.reps.add_many([Rep(id=r, name=r.title(), team_ids=["inbound"]) for r in REPS])
    store.routing_rules.add(
        RoutingRule(id="all", target_kind="team", target_id="inbound", strategy="round_robin")
    )
    schedule_many(
        store,
        [
            Reminder(id=f"r{i:06d}", title="Call back", due_at=T0 - timedelta(minutes=i % 60))
            for i in range(reminders)
        ],
    )


def work(
    index: int,
    spec: tuple[str, str, str | None],
    leads: list[str],
    barrier: Any,
    out: Any,
) -> None:
    store = open_store(*spec)
    router = Router(store, clock=FixedClock(T0))
    barrier.wait()
    start = time.perf_counter()
    owners = [router.route(Lead(id=lead_id, country="US")).owner_id for lead_id in leads]
    routed = time.perf_counter() - start
    fired: list[str] = []
    start = time.perf_counter()
    for minute in range(0, 61, 5):  # a scheduler ticking every five minutes
        fired += [e.reminder_id for e in tick(store, T0 + timedelta(minutes=minute))]
    ticked = time.perf_counter() - start
    store.close()
    out.put((index, owners, fired, routed, ticked))


def run(kind: str, target: str, schema: str | None, args: argparse.Namespace) -> bool:
    spec = (kind, target, schema)
    store = open_store(*spec)
    seed(store, args.reminders)
    ids = [f"lead-{i:06d}" for i in range(args.leads)]
    shares = [ids[w :: args.workers] for w in range(args.workers)]
    context = multiprocessing.get_context("fork")
    barrier, out = context.Barrier(args.workers), context.Queue()
    workers = [
        context.Process(target=work, args=(w, spec, shares[w], barrier, out))
        for w in range(args.workers)
    ]
    wall = time.perf_counter()
    for process in workers:
        process.start()
    results = [out.get(timeout=1800) for _ in workers]
    for process in workers:
        process.join()
    wall = time.perf_counter() - wall

    stored = list(store.leads)
    counts = Counter(lead.owner_id for lead in stored)
    fired = Counter(rid for _, _, done, _, _ in results for rid in done)
    still_open = store.reminders.count({"field": "status", "op": "==", "value": "open"})
    alerted = sum(1 for r in store.reminders if r.custom.get("reminder_alerted") is not None)
    store.close()
    checks = {
        "every lead stored once": len(stored) == args.leads
        and sorted(lead.id for lead in stored) == ids,
        "every lead assigned": all(lead.owner_id in REPS for lead in stored),
        "reps differ by at most 1": max(counts.values()) - min(counts.values()) <= 1,
        "each reminder fired once": len(fired) == args.reminders and set(fired.values()) == {1},
        "every reminder alerted": alerted == args.reminders,
    }
    routed = max(r[3] for r in results)
    ticked = max(r[4] for r in results)
    print(f"\n{kind}: {args.workers} workers, {args.leads:,} leads, {args.reminders:,} reminders")
    print(f"  routing: {args.leads / routed:,.0f} leads/s across the workers ({routed:.2f} s)")
    print(f"  ticking: {args.reminders / ticked:,.0f} reminders/s ({ticked:.2f} s)")
    print(f"  wall time {wall:.2f} s; per rep {dict(sorted(counts.items()))}")
    print(f"  open reminders left: {still_open} (they stay open until completed)")
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return all(checks.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--leads", type=int, default=None)
    parser.add_argument("--reminders", type=int, default=None)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--dsn", default=os.environ.get("CRMKIT_POSTGRES_DSN", "dbname=test"))
    args = parser.parse_args(argv)
    args.leads = args.leads or (400 if args.quick else 2_000)
    args.reminders = args.reminders or (400 if args.quick else 2_000)
    ok = True
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            ok &= run("sqlite", os.path.join(folder, "shared.db"), None, args)
    if args.store in ("postgres", "both"):
        import psycopg

        schema = f"crmkit_bench_{uuid.uuid4().hex[:8]}"
        try:
            ok &= run("postgres", args.dsn, schema, args)
        finally:
            with psycopg.connect(args.dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
