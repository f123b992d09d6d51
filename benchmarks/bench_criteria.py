"""Criteria as a numpy mask: crmkit's compiled criteria beside the same numpy by hand.

    python benchmarks/bench_criteria.py [--quick] [-n ROWS] [--repeat R]

Columns for ``n`` accounts (default 1,000,000; ``--quick`` 100,000) are built once, the
way ``store.accounts.columns(...)`` returns them (text as unicode arrays with ``""`` for
missing, numbers as float64 with NaN, datetimes as ``datetime64[us]``). Each criteria
shape is bound once (outside the timing, as routing and scoring do) and then
``bound.mask(columns)`` is timed beside a hand-written numpy expression that computes the
same mask; the two masks are checked equal before anything is printed. The target from
the design: crmkit within 1.5x of the hand-written numpy. A last row times binding plus
masking, for one-off use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from _common import Table, bench_args, best_of
from crmkit.criteria import BoundCriteria, Criteria, F, bind
from crmkit.records import Account

Array = np.ndarray[Any, Any]

COUNTRIES = np.array(["US", "CA", "GB", "DE", "FR", "JP", "BR", "AU", "IN", "ES", ""])
INDUSTRIES = np.array(["Technology", "Retail", "Healthcare", "Energy", "Media", ""])
TIERS = np.array(["gold", "silver", "bronze", ""])
PREFIXES = np.array(["North", "Blue", "Silver", "Iron", "Summit", "Oak", "Star", "Nova"])


def columns(n: int, seed: int = 11) -> dict[str, Array]:
    rng = np.random.default_rng(seed)
    employees = np.round(np.exp(rng.normal(5.0, 1.6, n)))
    employees[rng.random(n) < 0.05] = np.nan
    revenue = employees * np.exp(rng.normal(12.0, 0.5, n))
    start = np.datetime64("2022-01-01T00:00:00", "us")
    created = start + (rng.random(n) * 4 * 365 * 86_400e6).astype("timedelta64[us]")
    created[rng.random(n) < 0.02] = np.datetime64("NaT")
    name = np.char.add(PREFIXES[rng.integers(0, len(PREFIXES), n)], "wind Systems")
    return {
        "country": COUNTRIES[rng.integers(0, len(COUNTRIES), n)],
        "industry": INDUSTRIES[rng.integers(0, len(INDUSTRIES), n)],
        "employees": employees,
        "annual_revenue": revenue,
        "created_at": created,
        "name": name,
        "custom.tier": TIERS[rng.integers(0, len(TIERS), n)],
    }


LOW = datetime(2024, 1, 1, tzinfo=UTC)
HIGH = datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
LOW64 = np.datetime64("2024-01-01T00:00:00", "us")
HIGH64 = np.datetime64("2024-12-31T23:59:00", "us")

# (label, crmkit criteria, hand-written numpy over the same columns)
SHAPES: list[tuple[str, Criteria, Callable[[dict[str, Array]], Array]]] = [
    (
        "country in [US, CA] & employees >= 500",
        F.country.isin(["US", "CA"]) & (F.employees >= 500),
        lambda c: np.isin(c["country"], ["US", "CA"]) & (c["employees"] >= 500),
    ),
    (
        "industry == Technology | revenue > 1e8",
        (F.industry == "Technology") | (F.annual_revenue > 1e8),
        lambda c: (c["industry"] == "Technology") | (c["annual_revenue"] > 1e8),
    ),
    (
        "country not in [US, CA, GB] (missing matches)",
        F.country.notin(["US", "CA", "GB"]),
        lambda c: ~np.isin(c["country"], ["US", "CA", "GB"]),
    ),
    (
        "created_at between 2024-01-01 and 2024-12-31",
        F.created_at.between(LOW, HIGH),
        lambda c: (c["created_at"] >= LOW64) & (c["created_at"] <= HIGH64),
    ),
    (
        "employees between 50 and 5000 & ~(tier == gold)",
        F.employees.between(50, 5000) & ~(F.custom["tier"] == "gold"),
        lambda c: (
            (c["employees"] >= 50) & (c["employees"] <= 5000) & ~(c["custom.tier"] == "gold")
        ),
    ),
    (
        "name startswith North",
        F.name.startswith("North"),
        lambda c: np.char.startswith(c["name"], "North"),
    ),
    (
        "3 ors of 2 ands (a territory rule)",
        (F.country.isin(["US"]) & (F.employees >= 1000))
        | (F.country.isin(["DE", "FR"]) & (F.industry == "Energy"))
        | ((F.country == "JP") & (F.annual_revenue >= 5e7)),
        lambda c: (
            (np.isin(c["country"], ["US"]) & (c["employees"] >= 1000))
            | (np.isin(c["country"], ["DE", "FR"]) & (c["industry"] == "Energy"))
            | ((c["country"] == "JP") & (c["annual_revenue"] >= 5e7))
        ),
    ),
]


def main() -> None:
    args = bench_args(__doc__, default_n=1_000_000, quick_n=100_000)
    cols = columns(args.n)
    table = Table(f"criteria -> numpy mask over {args.n:,} rows (bound once)")
    worst = 0.0
    for label, criteria, by_hand in SHAPES:
        bound: BoundCriteria = bind(criteria, Account)
        ours, theirs = bound.mask(cols), by_hand(cols)
        if not np.array_equal(ours, theirs):
            raise SystemExit(f"masks differ for {label!r}: {ours.sum()} vs {theirs.sum()}")
        base = table.add(
            f"numpy by hand: {label}",
            best_of(lambda f=by_hand: f(cols), repeat=args.repeat, warmup=1),
        )
        ours_s = best_of(lambda b=bound: b.mask(cols), repeat=args.repeat, warmup=1)
        table.add(
            f"crmkit mask:   {label}",
            ours_s,
            base=base,
            target=1.5,
            note=f"{int(ours.sum()):,} rows match",
        )
        worst = max(worst, ours_s / base)
    label, criteria, by_hand = SHAPES[0]
    base = table.add(f"numpy by hand: {label}", best_of(lambda: by_hand(cols), repeat=args.repeat))
    table.add(
        "crmkit bind + mask (one-off)",
        best_of(lambda: bind(criteria, Account).mask(cols), repeat=args.repeat),
        base=base,
        note="binding checks fields and types every call",
    )
    table.print()
    missed = table.missed()
    print(
        f"\nworst bound-mask ratio: {worst:.2f}x (target <= 1.5x): "
        + ("all met" if not missed else f"{len(missed)} MISSED")
    )


if __name__ == "__main__":
    main()
