"""Shared helpers for the benchmark scripts: a timer, a results table, argument parsing.

Every script in ``benchmarks/`` runs from the repository root as
``python benchmarks/bench_<name>.py [--quick]``; Python puts the script's own folder on
``sys.path``, so ``from _common import ...`` works without installing anything.

Use it like this::

    from _common import Table, bench_args, best_of

    args = bench_args(__doc__, default_n=1_000_000, quick_n=100_000)
    table = Table(f"criteria mask over {args.n:,} rows")
    base = table.add("numpy by hand", best_of(lambda: by_hand(cols), repeat=args.repeat))
    table.add("crmkit", best_of(lambda: crmkit_mask(cols), repeat=args.repeat), base=base,
              target=1.5)
    table.print()

``best_of`` returns the best wall-clock time of ``repeat`` runs (after ``warmup`` runs that
are not timed); ``Table.add`` records a row and returns its seconds so the next rows can
give it as ``base``; the ratio column is ``seconds / base`` and, with a ``target``, a
``met``/``MISSED`` verdict (``ratio <= target``). ``per=`` divides by a count to show the
time per call or per row instead.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Row", "Table", "bench_args", "best_of", "fmt_seconds", "timed"]


def best_of(fn: Callable[[], Any], *, repeat: int = 3, warmup: int = 0) -> float:
    """The fastest of ``repeat`` timed runs of ``fn()`` in seconds (gc off while timing)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(max(repeat, 1)):
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            if enabled:
                gc.enable()
    return best


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn()`` once: ``(seconds, result)``; for steps too slow to repeat."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def fmt_seconds(seconds: float) -> str:
    """``0.00000123`` -> ``'1.23 us'``, ``0.5`` -> ``'500 ms'``, ``12.3`` -> ``'12.3 s'``."""
    if seconds != seconds:  # NaN: not measured
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


@attrs.frozen
class Row:
    """One measured contender."""

    name: str
    seconds: float
    base: float | None = None
    target: float | None = None
    per: int | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.base is None or self.base <= 0 else self.seconds / self.base


@attrs.define
class Table:
    """Rows of timings printed as an aligned text table with ratios and target verdicts."""

    title: str
    rows: list[Row] = attrs.Factory(list)

    def add(
        self,
        name: str,
        seconds: float,
        *,
        base: float | None = None,
        target: float | None = None,
        per: int | None = None,
        note: str = "",
    ) -> float:
        """Record a row; returns ``seconds`` so it can be the ``base`` of later rows."""
        self.rows.append(Row(name, seconds, base, target, per, note))
        return seconds

    def missed(self) -> list[Row]:
        """Rows whose ratio is above their target."""
        return [r for r in self.rows if r.target is not None and (r.ratio or 0) > r.target]

    def print(self, file: Any = None) -> None:
        out = sys.stdout if file is None else file
        header = ("contender", "time", "per item", "ratio", "target", "note")
        lines = []
        for r in self.rows:
            ratio = r.ratio
            verdict = ""
            if r.target is not None and ratio is not None:
                verdict = f"<= {r.target:g}x {'met' if ratio <= r.target else 'MISSED'}"
            lines.append(
                (
                    r.name,
                    fmt_seconds(r.seconds),
                    fmt_seconds(r.seconds / r.per) if r.per else "",
                    "" if ratio is None else f"{ratio:.2f}x",
                    verdict,
                    r.note,
                )
            )
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        print(f"\n{self.title}", file=out)
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), file=out)
        print("  ".join("-" * w for w in widths), file=out)
        for line in lines:
            cells = [
                c.rjust(w) if 0 < i < 4 else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
            print("  ".join(cells).rstrip(), file=out)


def bench_args(
    doc: str | None,
    *,
    default_n: int,
    quick_n: int,
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """Parse ``--quick``, ``-n/--n N`` and ``--repeat R`` (plus what ``configure`` adds).

    ``args.n`` is ``N`` if given, else ``quick_n`` with ``--quick``, else ``default_n``;
    ``args.repeat`` defaults to 3. Prints the Python and platform the numbers come from.
    """
    parser = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0] if doc else None
    )
    parser.add_argument("--quick", action="store_true", help=f"n = {quick_n:,}")
    parser.add_argument("-n", "--n", type=int, default=None, help=f"rows (default {default_n:,})")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    if configure is not None:
        configure(parser)
    args = parser.parse_args()
    if args.n is None:
        args.n = quick_n if args.quick else default_n
    print(
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}; "
        f"n = {args.n:,}; best of {args.repeat}"
    )
    return args
