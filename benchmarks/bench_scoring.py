"""Scoring: engagement over many events and a logistic fit, beside the peers.

    python benchmarks/bench_scoring.py [--quick] [-n EVENTS]

Engagement: ``n`` activity events (default 10,000,000) into ``n / 10`` accounts, 13 kinds
with per-kind weights and half-lives, scored by

- a minimal numpy kernel: ``bincount(account, w[kind] * 0.5 ** (age / hl[kind]))`` on
  integer kind codes (the floor: nothing to check, nothing to explain);
- ``crmkit.scoring.engagement_scores`` on integer kind codes, and on kind text exactly as
  ``store.activities.columns`` returns it;
- pandas: ``map`` the weights and half-lives, decay, ``groupby(account).sum()`` (the
  DataFrame is built beforehand and not timed);
- a pure-Python loop over a 100,000-event subsample, extrapolated to ``n`` (labelled).

Logistic regression: ``rows`` x 20 (default 1,000,000) with crmkit's Newton solver
beside scikit-learn's lbfgs (if installed), the same ``C``; both report the ROC AUC.
BLAS is limited to one thread for both when threadpoolctl is available (the sandbox has 2
cores shared with other jobs, and threaded BLAS timings swing wildly there).
"""

from __future__ import annotations

import contextlib
import math
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from _common import Table, bench_args, best_of, timed
from crmkit.scoring import LogisticRegression, engagement_scores, roc_auc

KINDS = [
    "email_sent",
    "email_opened",
    "email_clicked",
    "email_replied",
    "call",
    "meeting",
    "web_visit",
    "download",
    "form_submit",
    "event",
    "task",
    "note",
    "other",
]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NOW64 = np.datetime64("2026-01-01T00:00:00", "us")


def events(n: int, accounts: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, len(KINDS), n)
    return {
        "account": rng.integers(0, accounts, n),
        "codes": codes,
        "kind": np.array(KINDS)[codes],
        "at": NOW64 - rng.integers(0, 400 * 86_400 * 10**6, n).astype("timedelta64[us]"),
    }


def kernel(ev: dict[str, Any], w: Any, hl: Any, accounts: int) -> Any:
    age = (NOW64 - ev["at"]).astype(np.float64) / 86_400e6
    return np.bincount(ev["account"], w[ev["codes"]] * 0.5 ** (age / hl[ev["codes"]]), accounts)


def python_loop(ev: dict[str, Any], weights: dict[str, float], hls: dict[str, float]) -> Any:
    totals: dict[int, float] = {}
    now = NOW64.astype(np.int64)
    for account, kind, at in zip(
        ev["account"].tolist(),
        ev["kind"].tolist(),
        ev["at"].astype(np.int64).tolist(),
        strict=True,
    ):
        age = (now - at) / 86_400e6
        if age < 0 or kind not in weights:
            continue
        totals[account] = totals.get(account, 0.0) + weights[kind] * 0.5 ** (age / hls[kind])
    return totals


def bench_engagement(n: int, repeat: int) -> None:
    accounts = max(n // 10, 1)
    ev = events(n, accounts)
    weights = {k: float(i % 5 + 1) for i, k in enumerate(KINDS)}
    hls = {k: float(7 + 5 * i) for i, k in enumerate(KINDS)}
    w = np.array([weights[k] for k in KINDS])
    hl = np.array([hls[k] for k in KINDS])

    reference = kernel(ev, w, hl, accounts)
    by_codes = engagement_scores(
        {"account_id": ev["account"], "kind": ev["codes"], "at": ev["at"]},
        weights=weights,
        half_lives=hls,
        now=NOW,
        ids=accounts,
        kind_names=KINDS,
    )
    by_text = engagement_scores(
        {"account_id": ev["account"], "kind": ev["kind"], "at": ev["at"]},
        weights=weights,
        half_lives=hls,
        now=NOW,
        ids=accounts,
    )
    for got in (by_codes.values, by_text.values):
        np.testing.assert_allclose(got, reference, rtol=1e-9, atol=1e-12)

    table = Table(f"engagement: {n:,} events into {accounts:,} accounts (2-core sandbox)")
    base = table.add(
        "numpy kernel (int kind codes)",
        best_of(lambda: kernel(ev, w, hl, accounts), repeat=repeat),
    )
    crm = table.add(
        "crmkit engagement_scores (int codes)",
        best_of(
            lambda: engagement_scores(
                {"account_id": ev["account"], "kind": ev["codes"], "at": ev["at"]},
                weights=weights,
                half_lives=hls,
                now=NOW,
                ids=accounts,
                kind_names=KINDS,
            ),
            repeat=repeat,
        ),
        base=base,
        target=1.3,
    )
    text_seconds = table.add(
        "crmkit engagement_scores (kind text)",
        best_of(
            lambda: engagement_scores(
                {"account_id": ev["account"], "kind": ev["kind"], "at": ev["at"]},
                weights=weights,
                half_lives=hls,
                now=NOW,
                ids=accounts,
            ),
            repeat=repeat,
        ),
        base=base,
        note="matches the kind text too",
    )
    table.add(
        "crmkit, explain=True (per-kind matrix)",
        best_of(
            lambda: engagement_scores(
                {"account_id": ev["account"], "kind": ev["codes"], "at": ev["at"]},
                weights=weights,
                half_lives=hls,
                now=NOW,
                ids=accounts,
                kind_names=KINDS,
                explain=True,
            ),
            repeat=repeat,
        ),
        base=base,
    )
    sample = min(n, 100_000)
    sub = {k: v[:sample] for k, v in ev.items()}
    seconds, _ = timed(lambda: python_loop(sub, weights, hls))
    table.add(
        "pure-Python loop",
        seconds * n / sample,
        base=base,
        note=f"extrapolated from {sample:,} events",
    )
    table.print()

    pandas_table = Table(f"engagement against pandas: {n:,} events (2-core sandbox)")
    try:
        import pandas as pd
    except ImportError:
        print("pandas not installed: skipped")
        return
    now = pd.Timestamp(NOW)
    at = pd.to_datetime(ev["at"]).tz_localize("UTC")

    def with_pandas(frame: Any) -> Any:
        age = (now - frame["at"]).dt.total_seconds() / 86_400
        kind = frame["kind"]
        value = kind.map(weights).astype(float) * 0.5 ** (age / kind.map(hls).astype(float))
        return value.groupby(frame["account_id"]).sum()

    for label, kind, ours, crm_label in (
        ("kind as text, as the store gives it", ev["kind"].astype(object), text_seconds, "text"),
        ("kind categorical", pd.Categorical(ev["kind"]), crm, "int codes"),
    ):
        frame = pd.DataFrame({"account_id": ev["account"], "kind": kind, "at": at})
        got = with_pandas(frame)
        np.testing.assert_allclose(got.to_numpy(), reference[got.index.to_numpy()], rtol=1e-9)
        base = pandas_table.add(
            f"pandas map + groupby, {label}",
            best_of(lambda f=frame: with_pandas(f), repeat=repeat),
        )
        pandas_table.add(
            f"crmkit ({crm_label})", ours, base=base, target=0.167, note="target: >= 6x faster"
        )
        del frame
    pandas_table.print()


def bench_logistic(rows: int, repeat: int) -> None:
    d = 20
    rng = np.random.default_rng(1)
    X = rng.normal(size=(rows, d))
    beta = rng.normal(size=d) * 0.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-(X @ beta - 0.5)))).astype(np.int64)
    table = Table(f"logistic regression (L2, C=1): {rows:,} x {d} (2-core sandbox)")
    ours = LogisticRegression(C=1.0).fit(X, y)
    auc_ours = roc_auc(y, ours.decision_function(X))
    try:
        from sklearn.linear_model import LogisticRegression as SkLogistic
    except ImportError:
        table.add(
            "crmkit Newton", best_of(lambda: LogisticRegression(C=1.0).fit(X, y), repeat=repeat)
        )
        table.print()
        print(f"AUC crmkit {auc_ours:.3f}; scikit-learn not installed: no comparison")
        return
    theirs = SkLogistic(C=1.0).fit(X, y)
    auc_theirs = roc_auc(y, theirs.decision_function(X))
    base = table.add(
        "scikit-learn lbfgs", best_of(lambda: SkLogistic(C=1.0).fit(X, y), repeat=repeat)
    )
    table.add(
        "crmkit Newton (numpy)",
        best_of(lambda: LogisticRegression(C=1.0).fit(X, y), repeat=repeat),
        base=base,
        target=2.0,
        note=f"{ours.n_iter_} Newton steps",
    )
    table.print()
    same = f"{auc_ours:.3f}" == f"{auc_theirs:.3f}"
    gap = float(np.abs(ours.coef_ - theirs.coef_[0]).max())
    print(
        f"AUC crmkit {auc_ours:.3f}, scikit-learn {auc_theirs:.3f}: "
        f"{'same' if same else 'DIFFERENT'} to 3 decimals; largest coefficient gap {gap:.1e}"
    )


def main() -> None:
    args = bench_args(__doc__, default_n=10_000_000, quick_n=1_000_000)
    limit: Any = contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=1, user_api="blas")
        print("BLAS limited to 1 thread (threadpoolctl)")
    except ImportError:
        print("threadpoolctl not installed: BLAS threads as configured")
    start = time.perf_counter()
    with limit:
        bench_engagement(args.n, args.repeat)
        bench_logistic(args.n // 10, args.repeat)
    print(f"\ntotal {math.ceil(time.perf_counter() - start)} s")


if __name__ == "__main__":
    main()
