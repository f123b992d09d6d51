"""Pipeline metrics over many opportunities: crmkit.pipeline beside pandas groupby.

    python benchmarks/bench_pipeline.py [--quick]

Both sides start from the same numpy columns (what ``store.opportunities.columns`` returns)
and compute open pipeline, weighted pipeline, won revenue, win rate, average deal size and
sales cycle grouped by owner and close month. pandas is timed with and without building
its DataFrame (a user holding the columns must build it once).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from crmkit.pipeline import DEFAULT_PIPELINE, PipelineData, forecast, summary, win_loss


def generate(n: int, seed: int = 1) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    status = rng.choice(np.array(["open", "won", "lost"]), n, p=[0.5, 0.3, 0.2])
    open_stages = np.array([s.name for s in DEFAULT_PIPELINE.open_stages])
    stage = np.where(
        status == "won",
        "closed_won",
        np.where(status == "lost", "closed_lost", rng.choice(open_stages, n)),
    )
    amount = rng.integers(1, 500, n) * 100.0
    amount[rng.random(n) < 0.05] = np.nan
    probability = rng.random(n)
    probability[rng.random(n) < 0.3] = np.nan
    created = np.datetime64("2024-01-01T00:00", "us") + rng.integers(0, 730 * 24, n).astype(
        "m8[h]"
    )
    closed = created + rng.integers(1, 200 * 24, n).astype("m8[h]")
    close_date = closed.astype("M8[D]")
    owners = np.array([f"rep-{i:04d}" for i in range(500)])
    return {
        "id": np.char.add("o", np.arange(n).astype(str)),
        "status": status,
        "stage": stage,
        "amount": amount,
        "probability": probability,
        "created_at": created,
        "closed_at": np.where(status == "open", np.datetime64("NaT"), closed).astype("M8[us]"),
        "close_date": close_date,
        "owner_id": rng.choice(owners, n),
    }


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def pandas_frame(cols: dict[str, np.ndarray[Any, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame({k: v for k, v in cols.items() if k != "id"})


def pandas_summary(df: Any) -> Any:
    """What a pandas user writes for the same table."""
    defaults = {s.name: s.probability for s in DEFAULT_PIPELINE.stages}
    p = df["probability"].fillna(df["stage"].map(defaults)).fillna(0.0)
    value = df["amount"].fillna(0.0)
    is_open = df["status"] == "open"
    is_won = df["status"] == "won"
    end = df["closed_at"].fillna(df["close_date"].astype("datetime64[us]"))
    cycle = (end - df["created_at"]).dt.total_seconds() / 86400
    work = df[["owner_id"]].assign(
        month=df["close_date"].dt.to_period("M"),
        is_open=is_open,
        is_won=is_won,
        is_lost=df["status"] == "lost",
        open_value=value.where(is_open, 0.0),
        weighted=(p * value).where(is_open, 0.0),
        won_value=value.where(is_won, 0.0),
        won_amount=df["amount"].where(is_won),
        won_cycle=cycle.where(is_won),
    )
    out = work.groupby(["owner_id", "month"], sort=True).agg(
        open_count=("is_open", "sum"),
        open_pipeline=("open_value", "sum"),
        weighted_pipeline=("weighted", "sum"),
        won_count=("is_won", "sum"),
        lost_count=("is_lost", "sum"),
        won_revenue=("won_value", "sum"),
        avg_deal_size=("won_amount", "mean"),
        cycle_days=("won_cycle", "mean"),
    )
    out["win_rate"] = out["won_count"] / (out["won_count"] + out["lost_count"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k deals, fewer repeats")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    repeat = 2 if args.quick else 3
    cols = generate(n)
    print(f"pipeline metrics over {n:,} opportunities, grouped by owner (500) and month")

    data = PipelineData.from_columns(cols)
    ours = summary(data, by=["owner", "month"])
    rows: list[tuple[str, float, float | None]] = []
    try:
        df = pandas_frame(cols)
        theirs = pandas_summary(df)
        assert len(theirs) == len(ours), (len(theirs), len(ours))
        np.testing.assert_allclose(ours["weighted_pipeline"], theirs["weighted_pipeline"])
        np.testing.assert_allclose(ours["won_revenue"], theirs["won_revenue"])
        pandas_time = best_of(lambda: pandas_summary(df), repeat)
        build_time = best_of(lambda: pandas_frame(cols), repeat)
    except ImportError:
        pandas_time = build_time = float("nan")

    t_data = best_of(lambda: PipelineData.from_columns(cols), repeat)
    t_summary = best_of(lambda: summary(data, by=["owner", "month"]), repeat)
    rows.append(("summary by owner x month", t_summary, pandas_time))
    rows.append(("  + building inputs", t_summary + t_data, pandas_time + build_time))
    rows.append(
        (
            "forecast by owner x quarter",
            best_of(lambda: forecast(data, by="owner", period="quarter"), repeat),
            None,
        )
    )
    rows.append(("win/loss by owner", best_of(lambda: win_loss(data, "owner"), repeat), None))

    print(f"{'task':<30} {'crmkit s':>10} {'pandas s':>10} {'crmkit/pandas':>14}")
    for name, ours_t, theirs_t in rows:
        if theirs_t is None or np.isnan(theirs_t):
            print(f"{name:<30} {ours_t:>10.3f} {'-':>10} {'-':>14}")
        else:
            print(f"{name:<30} {ours_t:>10.3f} {theirs_t:>10.3f} {ours_t / theirs_t:>13.2f}x")
    print("(ratio < 1: crmkit faster; results checked equal before timing)")


if __name__ == "__main__":
    main()
