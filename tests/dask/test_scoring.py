"""Scoring over Dask equals crmkit's single-process scoring on the same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import F
from crmkit import dask as cd
from crmkit.errors import ValidationError
from crmkit.scoring import (
    FitModel,
    PointsRule,
    RuleGroup,
    engagement_scores,
    fit_scores,
    priority_scores,
    segment_by_quantiles,
)

from .conftest import cuts, partitioned

# Dask's Parquet reader still passes inplace= to pandas 3.1 (a deprecation of pandas)
pytestmark = pytest.mark.filterwarnings(
    r"ignore:The inplace keyword in DataFrame\.(set|reset)_index is deprecated"
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
WEIGHTS = {"meeting": 10.0, "call": 5.0, "email_opened": 1.0, "web_visit": 0.0}
HALF_LIVES = {"meeting": 14, "call": 7, "email_opened": 30}
KINDS = ["meeting", "call", "email_opened", "note", "web_visit"]


@st.composite
def events(draw: st.DrawFn) -> pd.DataFrame:
    # at least one event: with none, the single-process kernel cannot apply caps (its
    # bincount of no events is an integer array); events without a time are left out
    # because the kernel warns of an overflow on them
    n = draw(st.integers(1, 40))
    account = draw(st.lists(st.sampled_from(["a", "b", "c", "d", ""]), min_size=n, max_size=n))
    kind = draw(st.lists(st.sampled_from(KINDS), min_size=n, max_size=n))
    day = draw(st.lists(st.integers(-5, 90), min_size=n, max_size=n))
    at = [pd.NaT if d is None else pd.Timestamp("2026-03-01") - pd.Timedelta(days=d) for d in day]
    return pd.DataFrame({"account_id": account, "kind": kind, "at": pd.to_datetime(at)})


def _single(frame: pd.DataFrame, **kwargs: Any) -> Any:
    return engagement_scores(frame, now=NOW, weights=WEIGHTS, half_lives=HALF_LIVES, **kwargs)


def _same(got: Any, want: Any) -> None:
    assert got.ids.tolist() == want.ids.tolist()
    np.testing.assert_allclose(got.values, want.values, rtol=1e-12, atol=1e-12)
    if want.contributions is not None:
        assert got.feature_names == want.feature_names
        np.testing.assert_allclose(got.contributions, want.contributions, rtol=1e-12, atol=1e-12)


@settings(max_examples=20)
@given(data=st.data())
def test_engagement_equals_one_process(data: st.DataObject, synchronous: None) -> None:
    frame = data.draw(events())
    bounds = data.draw(cuts(len(frame)))
    extra = data.draw(
        st.sampled_from(
            [{}, {"explain": True}, {"caps": {"meeting": 12.0}}, {"total_cap": 8.0, "window": 60}]
        )
    )
    got = cd.engagement_scores(
        partitioned(frame, bounds), now=NOW, weights=WEIGHTS, half_lives=HALF_LIVES, **extra
    )
    _same(got, _single(frame, **extra))


def test_engagement_on_the_process_cluster(on_cluster: Any) -> None:
    frame = pd.DataFrame(
        {
            "account_id": ["a", "b", "a", "", "a", "c"],
            "kind": ["meeting", "call", "call", "meeting", "meeting", "note"],
            "at": pd.to_datetime(
                [
                    "2026-02-20",
                    "2026-02-27",
                    "2026-01-01",
                    "2026-02-01",
                    "2026-02-28",
                    "2026-02-28",
                ]
            ),
        }
    )
    # account "a" is split over three partitions, one partition is empty
    got = cd.engagement_scores(
        partitioned(frame, [0, 1, 3, 3, 6]),
        now=NOW,
        weights=WEIGHTS,
        half_lives=HALF_LIVES,
        caps={"call": 4.0},
        explain=True,
    )
    _same(got, _single(frame, caps={"call": 4.0}, explain=True))
    assert got.ids.tolist() == ["a", "b", "c"]


def test_engagement_reads_parquet_and_checks_custom_kinds(
    tmp_path: Any, synchronous: None
) -> None:
    frame = pd.DataFrame(
        {
            "account_id": ["a", "b", "a"],
            "kind": ["demo_booked", "call", "meeting"],
            "at": pd.to_datetime(["2026-02-20", "2026-02-27", "2026-01-01"]),
        }
    )
    (tmp_path / "events").mkdir()
    for i, (a, b) in enumerate([(0, 1), (1, 1), (1, 3)]):  # the second file holds no rows
        frame.iloc[a:b].to_parquet(tmp_path / "events" / f"part.{i}.parquet", index=False)
    weights = {**WEIGHTS, "demo_booked": 20.0}
    got = cd.engagement_scores(str(tmp_path / "events"), now=NOW, weights=weights)
    want = engagement_scores(frame, now=NOW, weights=weights)
    _same(got, want)
    # a kind crmkit does not know and no event has: the kernel's own error
    with pytest.raises(ValidationError, match="demo_bookd"):
        cd.engagement_scores(str(tmp_path / "events"), now=NOW, weights={"demo_bookd": 1.0})


MODEL = FitModel(
    rules=(
        PointsRule(name="enterprise", criteria=F.employees >= 1000, points=30, group="size"),
        PointsRule(name="mid", criteria=F.employees >= 200, points=20, group="size"),
        PointsRule(name="us", criteria=F.country == "US", points=25),
    ),
    groups=(RuleGroup(name="size", cap=40),),
)


@st.composite
def accounts(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 30))
    employees = draw(st.lists(st.integers(0, 3000), min_size=n, max_size=n))
    country = draw(st.lists(st.sampled_from(["US", "FR", ""]), min_size=n, max_size=n))
    idle = draw(
        st.lists(st.floats(0, 400, allow_nan=False) | st.just(np.nan), min_size=n, max_size=n)
    )
    return pd.DataFrame(
        {
            "id": [f"a{i}" for i in range(n)],
            "employees": employees,
            "country": country,
            "days_idle": idle,
        }
    )


@settings(max_examples=15)
@given(data=st.data())
def test_fit_priority_segments_equal_one_process(data: st.DataObject, synchronous: None) -> None:
    frame = data.draw(accounts())
    bounds = data.draw(cuts(len(frame)))
    ddf = partitioned(frame, bounds)
    fit = cd.fit_scores(ddf, MODEL).compute()
    want_fit = fit_scores(frame, MODEL)
    assert fit["id"].tolist() == want_fit.ids.tolist()
    assert fit["fit"].tolist() == want_fit.values.tolist()

    features = partitioned(frame.assign(fit=want_fit.values), bounds)
    weights = {"fit": 3.0, "days_idle": 1.0}
    got = cd.priority_scores(features, weights, lower_is_better=["days_idle"]).compute()
    want = priority_scores(
        {"fit": want_fit.values, "days_idle": frame["days_idle"].to_numpy()},
        weights,
        ids=frame["id"].to_numpy(),
        lower_is_better=["days_idle"],
    )
    assert got["priority"].tolist() == want.values.tolist()

    seg = cd.segment_by_quantiles(features, "days_idle", [0.3, 0.7]).compute()
    want_seg = segment_by_quantiles(frame["days_idle"].to_numpy(), [0.3, 0.7])
    assert seg["segment"].tolist() == want_seg.labels.tolist()


def test_fit_priority_segments_on_the_process_cluster(on_cluster: Any) -> None:
    frame = pd.DataFrame(
        {
            "id": list("abcdef"),
            "employees": [5000, 50, 300, 1200, 0, 800],
            "country": ["US", "FR", "US", "", "FR", "US"],
            "days_idle": [3.0, 90.0, np.nan, 10.0, 400.0, 45.0],
        }
    )
    ddf = partitioned(frame, [0, 2, 2, 5, 6])
    want_fit = fit_scores(frame, MODEL)
    assert cd.fit_scores(ddf, MODEL).compute()["fit"].tolist() == want_fit.values.tolist()
    got = cd.priority_scores(ddf, {"days_idle": 1.0}, lower_is_better=["days_idle"]).compute()
    want = priority_scores(
        {"days_idle": frame["days_idle"].to_numpy()},
        {"days_idle": 1.0},
        ids=frame["id"].to_numpy(),
        lower_is_better=["days_idle"],
    )
    assert got["priority"].tolist() == want.values.tolist()
    seg = cd.segment_by_quantiles(ddf, "employees", labels=["top", "mid", "low"]).compute()
    want_seg = segment_by_quantiles(
        frame["employees"].to_numpy(dtype=float), labels=["top", "mid", "low"]
    )
    assert seg["segment"].tolist() == want_seg.labels.tolist()


@settings(max_examples=10)
@given(data=st.data(), explain=st.booleans())
def test_engagement_on_codes_equals_one_process(
    data: st.DataObject, explain: bool, synchronous: None
) -> None:
    # the compact form: account positions and kind codes (as the benchmark writes them)
    frame = data.draw(events())
    codes = {k: i for i, k in enumerate(KINDS)}
    accounts = {"a": 0, "b": 1, "c": 2, "d": 5, "": -1}
    frame = frame.assign(
        account_id=frame["account_id"].map(accounts).astype("int64"),
        kind=frame["kind"].map(codes).astype("int8"),
    )
    bounds = data.draw(cuts(len(frame)))
    got = cd.engagement_scores(
        partitioned(frame, bounds), now=NOW, weights=WEIGHTS, half_lives=HALF_LIVES,
        kind_names=KINDS, explain=explain,
    )  # fmt: skip
    _same(got, _single(frame, kind_names=KINDS, explain=explain))
