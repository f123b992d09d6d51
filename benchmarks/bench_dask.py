"""Engagement scoring out of core: crmkit.dask beside Dask's own group-by and one process.

    python benchmarks/bench_dask.py [--events 1e7] [--accounts N] [--rows-per-file 1e6]
                                    [--workers 2] [--memory-limit BYTES] [--dir PATH]

Writes ``events`` activity events as Parquet files (int64 account positions, int8 kind
codes, microsecond timestamps: 17 bytes an event in memory), then scores them on a
``distributed.LocalCluster`` of ``workers`` single-threaded processes whose memory limit
(in total) is below the data's size in memory (by default a third of it, at least 700 MB a
worker), by

- ``crmkit.dask.engagement_scores``: crmkit's kernel per partition, partial sums per
  account added up in a tree;
- Dask's own pandas group-by on the same files, what a user would write by hand:
  ``w = weight[kind] * 2 ** (-age / half_life[kind])`` per partition, then
  ``groupby("account_id").w.sum()``, once as Dask chooses (many groups: a shuffle) and
  once with ``split_out=1`` (a tree reduction, like crmkit's); ratios are to the faster;
- single-process ``crmkit.scoring.engagement_scores`` on all events at once, in a child
  process, when the events fit (up to 2e7).

Prints wall time, peak memory (the largest worker RSS seen, sampled every 0.2 s, and the
child's max RSS), the ratios, whether the results agree, and whether any worker was
restarted while each ran (worker pids before and after). A Dask peer that has not
finished after ``--give-up`` seconds (workers paused at their memory limit can wait for
ever) is cancelled and shown as ``-``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

KINDS = [
    "email_sent", "email_opened", "email_clicked", "email_replied", "call", "meeting",
    "web_visit", "download", "form_submit", "event", "task", "note", "other",
]  # fmt: skip
WEIGHTS = dict(zip(KINDS, [0.5, 1, 2, 4, 5, 10, 0.5, 3, 4, 6, 0.5, 0.2, 0.1], strict=True))
HALF_LIVES = dict(zip(KINDS, [14, 14, 21, 30, 30, 60, 7, 30, 30, 60, 14, 14, 14], strict=True))
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NOW_US = int(np.datetime64("2026-01-01T00:00:00", "us").astype(np.int64))
YEAR_US = 365 * 86_400 * 1_000_000
BYTES_PER_EVENT = 8 + 1 + 8


def write_events(folder: Path, events: int, accounts: int, rows_per_file: int) -> float:
    """``events`` rows in files of ``rows_per_file``; returns seconds taken."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, first in enumerate(range(0, events, rows_per_file)):
        n = min(rows_per_file, events - first)
        table = pa.table(
            {
                "account_id": rng.integers(0, accounts, n, dtype=np.int64),
                "kind": rng.integers(0, len(KINDS), n, dtype=np.int8),
                "at": pa.array(
                    NOW_US - rng.integers(0, YEAR_US, n, dtype=np.int64), pa.timestamp("us")
                ),
            }
        )
        pq.write_table(table, folder / f"part.{i:05d}.parquet", row_group_size=n)
    return time.perf_counter() - start


def by_hand(folder: str, split_out: int | None = None, timeout: float | None = None) -> Any:
    """Dask's own group-by: the decayed weight per event, summed per account (Dask picks
    the number of output partitions, or ``split_out``)."""
    import dask.dataframe as dd

    weight = np.array([WEIGHTS[k] for k in KINDS])
    inv_hl = np.array([1.0 / (HALF_LIVES[k] * 86_400e6) for k in KINDS])

    def decay(part: Any) -> Any:
        kind = part["kind"].to_numpy()
        age = NOW_US - part["at"].to_numpy().astype("datetime64[us]").astype(np.int64)
        w = weight[kind] * np.exp2(-age * inv_hl[kind])
        w[age < 0] = 0.0
        return part[["account_id"]].assign(w=w)

    df = dd.read_parquet(folder, index=False)
    meta = df._meta[["account_id"]].assign(w=np.zeros(0))
    grouped = df.map_partitions(decay, meta=meta).groupby("account_id")["w"]
    if timeout is None:
        return grouped.sum(split_out=split_out).compute()
    from distributed import get_client

    future = get_client().compute(grouped.sum(split_out=split_out))
    try:
        return future.result(timeout=timeout)
    except TimeoutError:  # paused workers (memory) can wait for ever: give up, say so
        future.cancel()
        return None


def with_crmkit_dask(folder: str) -> Any:
    from crmkit import dask as cd

    return cd.engagement_scores(
        folder, weights=WEIGHTS, half_lives=HALF_LIVES, now=NOW, kind_names=KINDS
    )


def _one_process(folder: str, out: Any) -> None:
    import pyarrow.parquet as pq

    from crmkit.scoring import engagement_scores

    start = time.perf_counter()
    table = pq.read_table(folder)
    columns = {
        "account_id": table["account_id"].to_numpy(),
        "kind": table["kind"].to_numpy(),
        "at": table["at"].to_numpy().astype("datetime64[us]"),
    }
    del table
    result = engagement_scores(
        columns, weights=WEIGHTS, half_lives=HALF_LIVES, now=NOW, kind_names=KINDS
    )
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.put((seconds, rss, result.values))


def one_process(folder: str) -> tuple[float, int, Any]:
    """Single-process crmkit in a child process: (seconds, max RSS, scores)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_one_process, args=(folder, queue))
    child.start()
    seconds, rss, values = queue.get()
    child.join()
    return seconds, rss, values


class PeakRss:
    """The largest worker RSS seen while the block runs (sampled every 0.2 s)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                info = self.client.scheduler_info(n_workers=-1)["workers"].values()
                self.peak = max([self.peak, *(int(w["metrics"]["memory"]) for w in info)])
            except Exception:  # the scheduler is busy or closing: try again
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=float, default=1e7)
    parser.add_argument("--accounts", type=float, default=None)
    parser.add_argument("--rows-per-file", type=float, default=1e6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", type=float, default=None, help="bytes per worker")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--single-limit", type=float, default=2e7)
    parser.add_argument("--give-up", type=float, default=600, help="seconds per Dask peer")
    args = parser.parse_args()
    events = int(args.events)
    accounts = int(args.accounts or min(max(events // 100, 1), 1_000_000))
    rows = int(args.rows_per_file)
    data_bytes = events * BYTES_PER_EVENT
    limit = int(args.memory_limit or max(data_bytes / 3 / args.workers, 700 * 2**20))

    import dask
    import distributed

    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="crmkit-bench-"))
    folder = base / "events"
    try:
        wrote = write_events(folder, events, accounts, rows)
        on_disk = sum(f.stat().st_size for f in folder.iterdir())
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, dask {dask.__version__}")  # fmt: skip
        print(f"{events:,} events into {accounts:,} accounts: {mb(data_bytes)} in memory, "
              f"{mb(on_disk)} of Parquet in {len(list(folder.iterdir()))} files "
              f"(written in {wrote:.1f} s)")  # fmt: skip
        print(f"cluster: {args.workers} workers x 1 thread, memory limit {mb(limit)} each "
              f"({mb(limit * args.workers)} in all, {limit * args.workers / data_bytes:.0%} "
              "of the data)")  # fmt: skip
        with (
            dask.config.set({"distributed.admin.system-monitor.gil.enabled": False}),
            distributed.LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=limit,
                dashboard_address=":0",
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            warm = base / "warm-up"  # imports and first calls in the workers, not timed
            write_events(warm, min(events, 100_000), accounts, rows)
            by_hand(str(warm))
            with_crmkit_dask(str(warm))
            rows_out = []
            results = {}
            restarts = {}
            for name, run in (
                ("crmkit.dask", lambda: with_crmkit_dask(str(folder))),
                ("Dask group-by split_out=1", lambda: by_hand(str(folder), 1, args.give_up)),
                # last: when it gives up, its paused workers hold their memory
                ("Dask group-by", lambda: by_hand(str(folder), None, args.give_up)),
            ):
                print(f"running {name} ...", flush=True)
                client.run(lambda: __import__("gc").collect())
                pids = client.run(os.getpid)
                with PeakRss(client) as peak:
                    start = time.perf_counter()
                    results[name] = run()
                    seconds = time.perf_counter() - start
                restarts[name] = len(set(pids.values()) - set(client.run(os.getpid).values()))
                if results[name] is None:
                    seconds = float("nan")
                rows_out.append((name, seconds, peak.peak))
                print(f"  {seconds:.1f} s, workers restarted: {restarts[name]}", flush=True)
        single = None
        if events <= args.single_limit:
            single = one_process(str(folder))
            rows_out.append(("crmkit, one process", single[0], single[1]))
        hand = next(r for k, r in results.items() if k != "crmkit.dask" and r is not None)
        hand = hand.sort_index()
        scored = results["crmkit.dask"]
        dense = np.zeros(len(scored.values))
        dense[hand.index.to_numpy()] = hand.to_numpy()
        agree = np.allclose(scored.values, dense, rtol=1e-9, atol=1e-9)
        if single is not None:
            agree = agree and np.allclose(scored.values, single[2], rtol=1e-9, atol=1e-9)
        base_s = np.nanmin([rows_out[1][1], rows_out[2][1]])  # Dask at its best
        print(f"\n{'':28}{'time':>9}{'peak memory':>26}{'ratio':>8}{'restarts':>10}")
        for name, seconds, peak_rss in rows_out:
            where = "max worker RSS" if name != "crmkit, one process" else "process RSS"
            print(f"{name:28}{seconds:7.1f} s{mb(peak_rss):>10} {where:>15}"
                  f"{seconds / base_s:>7.2f}x{restarts.get(name, 0):>10}")  # fmt: skip
        ratio = rows_out[0][1] / base_s
        print(f"\ncrmkit.dask / the faster Dask group-by: {ratio:.2f}x (target <= 1.5x: "
              f"{'met' if ratio <= 1.5 else 'MISSED'}); results agree: {agree}; "
              f"crmkit.dask workers restarted: {restarts['crmkit.dask']}")  # fmt: skip
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
