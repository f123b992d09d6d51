"""The metrics against an independent pandas computation on generated deals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from crmkit.pipeline import DEFAULT_PIPELINE, PipelineData, forecast, summary, win_loss

pd = pytest.importorskip("pandas")

STAGES = np.array((*DEFAULT_PIPELINE.names, "mystery"))


def generate(n: int, seed: int) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    status = rng.choice(np.array(["open", "won", "lost"]), n, p=[0.5, 0.3, 0.2])
    stage = np.where(
        status == "won", "closed_won",
        np.where(status == "lost", "closed_lost", rng.choice(STAGES[[0, 1, 2, 3, 6]], n)),
    )  # fmt: skip
    amount = rng.integers(1, 500, n) * 100.0
    amount[rng.random(n) < 0.1] = np.nan
    probability = rng.random(n).round(2)
    probability[rng.random(n) < 0.3] = np.nan
    created = np.datetime64("2025-01-01T00:00", "us") + rng.integers(0, 365 * 24, n).astype(
        "m8[h]"
    )
    closed = created + rng.integers(1, 200 * 24, n).astype("m8[h]")
    close_date = closed.astype("M8[D]")
    close_date[rng.random(n) < 0.05] = np.datetime64("NaT")
    closed_at = np.where(status == "open", np.datetime64("NaT"), closed)
    owner = rng.choice(np.array(["", "ann", "bob", "cat", "dan", "eve"]), n)
    return {
        "id": np.array([f"o{i:06d}" for i in range(n)]),
        "status": status,
        "stage": stage,
        "amount": amount,
        "probability": probability,
        "created_at": created,
        "closed_at": closed_at.astype("M8[us]"),
        "close_date": close_date,
        "owner_id": owner,
        "product": rng.choice(np.array(["", "crm", "support", "training"]), n),
    }


@pytest.fixture(scope="module")
def deals() -> dict[str, np.ndarray[Any, Any]]:
    return generate(5000, seed=7)


def _pandas_summary(cols: dict[str, np.ndarray[Any, Any]]) -> Any:
    df = pd.DataFrame(cols)
    defaults = {s.name: s.probability for s in DEFAULT_PIPELINE.stages}
    df["p"] = df["probability"].fillna(df["stage"].map(defaults))
    df["value"] = df["amount"].fillna(0.0)
    df["month"] = df["close_date"].dt.strftime("%Y-%m").fillna("")
    is_open, is_won = df["status"] == "open", df["status"] == "won"
    end = df["closed_at"].fillna(df["close_date"].astype("datetime64[us]"))
    df["cycle"] = (end - df["created_at"]).dt.total_seconds() / 86400
    df["open_value"] = df["value"].where(is_open, 0.0)
    df["weighted"] = (df["p"].fillna(0.0) * df["value"]).where(is_open, 0.0)
    df["won_value"] = df["value"].where(is_won, 0.0)
    df["won_amount"] = df["amount"].where(is_won)
    df["won_cycle"] = df["cycle"].where(is_won)
    df["is_open"], df["is_won"] = is_open, is_won
    df["is_lost"] = df["status"] == "lost"
    g = df.groupby(["owner_id", "month"], sort=True)
    out = g.agg(
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


def test_summary_by_owner_and_month_matches_pandas(deals: dict[str, Any]) -> None:
    data = PipelineData.from_columns(deals)
    ours = summary(data, by=["owner", "month"])
    theirs = _pandas_summary(deals)
    assert len(ours) == len(theirs)
    assert ours["owner"].tolist() == [k[0] for k in theirs.index]
    assert ours["month"].tolist() == [k[1] for k in theirs.index]
    for name in ["open_count", "won_count", "lost_count"]:
        np.testing.assert_array_equal(ours[name], theirs[name].to_numpy())
    for name in [
        "open_pipeline", "weighted_pipeline", "won_revenue", "avg_deal_size", "cycle_days",
        "win_rate",
    ]:  # fmt: skip
        np.testing.assert_allclose(ours[name], theirs[name].to_numpy(dtype=float), rtol=1e-9)
    assert ours.missing["no_amount"] == int(np.isnan(deals["amount"]).sum())
    assert ours.missing["no_close_date"] == int(np.isnat(deals["close_date"]).sum())
    assert ours.missing["no_owner"] == int((deals["owner_id"] == "").sum())
    assert ours.missing["unknown_stage"] == int((deals["stage"] == "mystery").sum())


def test_forecast_matches_pandas(deals: dict[str, Any]) -> None:
    ours = forecast(PipelineData.from_columns(deals), period="quarter")
    df = pd.DataFrame(deals)
    df = df[df["status"].isin(["open", "won"])].copy()
    quarter = df["close_date"].dt.to_period("Q")
    df["quarter"] = quarter.astype(str).where(quarter.notna(), "")
    category = {s.name: s.category.value for s in DEFAULT_PIPELINE.stages}
    df["cat"] = df["stage"].map(category).fillna("pipeline")
    df["value"] = df["amount"].fillna(0.0)
    df.loc[df["status"] == "won", "cat"] = "closed"
    table = df.groupby(["quarter", "cat"])["value"].sum().unstack(fill_value=0.0)
    assert ours["quarter"].tolist() == list(table.index)
    for name in ["closed", "commit", "best_case", "pipeline"]:
        np.testing.assert_allclose(ours[name], table[name].to_numpy(), rtol=1e-9)


def test_win_loss_matches_pandas(deals: dict[str, Any]) -> None:
    ours = win_loss(PipelineData.from_columns(deals), "product")
    df = pd.DataFrame(deals)
    closed = df[df["status"].isin(["won", "lost"])]
    rate = (closed["status"] == "won").groupby(closed["product"]).mean()
    overall = (closed["status"] == "won").mean()
    assert ours["product"].tolist() == list(rate.index)
    np.testing.assert_allclose(ours["win_rate"], rate.to_numpy())
    np.testing.assert_allclose(ours["lift"], (rate / overall).to_numpy())
    np.testing.assert_array_equal(
        ours["closed_count"], closed.groupby("product").size().to_numpy()
    )


def test_large_text_factorisation_matches_numpy_unique() -> None:
    from crmkit.pipeline._data import factorize

    rng = np.random.default_rng(3)
    values = rng.choice(np.array(["", "a", "ab", "ba", "abc", "b\u00e9", "zz" * 5]), 20_000)
    codes, uniques = factorize(values)
    expected_uniques, expected_codes = np.unique(values, return_inverse=True)
    assert uniques.tolist() == expected_uniques.tolist()
    np.testing.assert_array_equal(codes, expected_codes.ravel())
