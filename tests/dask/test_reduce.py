"""Roll-ups and pipeline metrics over Dask equal crmkit's single-process ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import dask as cd
from crmkit.hierarchy import AccountHierarchy, rollup
from crmkit.pipeline import PipelineData, summary

from .conftest import cuts, partitioned

IDS = [f"a{i}" for i in range(8)]
# a0 <- a1 <- a2, a0 <- a3, a4 <- a5 <- a6, a7 alone
HIERARCHY = AccountHierarchy.from_parents([-1, 0, 1, 0, -1, 4, 5, -1], ids=IDS)


@st.composite
def account_values(draw: st.DrawFn) -> pd.DataFrame:
    chosen = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=len(IDS)))
    # whole numbers: sums are exact whatever the order of additions
    values = draw(
        st.lists(
            st.integers(-50, 50).map(float) | st.just(np.nan),
            min_size=len(chosen),
            max_size=len(chosen),
        )
    )
    return pd.DataFrame({"account_id": chosen, "value": values})


def _same_rollup(got: Any, want: Any) -> None:
    assert got.how == want.how
    np.testing.assert_array_equal(got.values, want.values)
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(got.has_value, want.has_value)
    assert [got.members(i) for i in IDS] == [want.members(i) for i in IDS]


@settings(max_examples=20)
@given(data=st.data(), how=st.sampled_from(["sum", "count", "min", "max", "mean"]))
def test_rollup_equals_one_process(data: st.DataObject, how: str, synchronous: None) -> None:
    frame = data.draw(account_values())
    bounds = data.draw(cuts(len(frame)))
    got = cd.rollup(HIERARCHY, partitioned(frame, bounds), how)
    want = rollup(HIERARCHY, dict(zip(frame["account_id"], frame["value"], strict=True)), how)
    _same_rollup(got, want)


def test_rollup_on_the_process_cluster(on_cluster: Any) -> None:
    frame = pd.DataFrame(
        {"account_id": ["a2", "a0", "a6", "a3", "a7"], "value": [5.0, 1.0, 2.5, np.nan, 4.0]}
    )
    for how in ("sum", "mean", "max"):
        got = cd.rollup(HIERARCHY, partitioned(frame, [0, 2, 2, 5]), how)
        want = rollup(HIERARCHY, dict(zip(frame["account_id"], frame["value"], strict=True)), how)
        _same_rollup(got, want)


REPS = {"id": np.array(["ann", "bob"]), "team": np.array(["east", "west"])}


@st.composite
def opportunities(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 25))

    def column(values: Any) -> list[Any]:
        return draw(st.lists(values, min_size=n, max_size=n))

    created = pd.Timestamp("2025-06-01")
    return pd.DataFrame(
        {
            "id": [f"o{i}" for i in range(n)],
            "owner_id": column(st.sampled_from(["ann", "bob", "zed", ""])),
            "status": column(st.sampled_from(["open", "won", "lost", "odd"])),
            "stage": column(st.sampled_from(["qualification", "proposal", "negotiation", "x"])),
            "amount": column(st.integers(0, 1000).map(float) | st.just(np.nan)),
            "probability": column(st.sampled_from([0.25, 0.5, np.nan])),
            "created_at": [created] * n,
            "closed_at": [created + pd.Timedelta(days=d) for d in column(st.integers(1, 90))],
        }
    )


def _table_rows(table: Any) -> list[dict[str, Any]]:
    return [{k: (None if v != v else v) for k, v in row.items()} for row in table.rows()]


def _one_process(frame: pd.DataFrame, by: Any) -> Any:
    from crmkit.scoring._inputs import as_columns

    data = PipelineData.from_columns(as_columns(frame, "test"), reps=REPS)
    return summary(data, by)


@settings(max_examples=15)
@given(data=st.data(), by=st.sampled_from([(), "owner", ("team", "status")]))
def test_pipeline_summary_equals_one_process(
    data: st.DataObject, by: Any, synchronous: None
) -> None:
    frame = data.draw(opportunities())
    bounds = data.draw(cuts(len(frame)))
    got = cd.pipeline_summary(partitioned(frame, bounds), by, reps=REPS)
    want = _one_process(frame, by)
    assert got.keys == want.keys
    assert dict(got.missing) == dict(want.missing)
    assert _table_rows(got) == _table_rows(want)


def test_pipeline_summary_on_the_process_cluster(on_cluster: Any) -> None:
    frame = pd.DataFrame(
        {
            "id": ["o1", "o2", "o3", "o4", "o5"],
            "owner_id": ["ann", "bob", "ann", "", "ann"],
            "status": ["open", "won", "won", "lost", "open"],
            "stage": ["proposal", "closed_won", "closed_won", "closed_lost", "negotiation"],
            "amount": [100.0, 300.0, 50.0, np.nan, 20.0],
            "probability": [np.nan, np.nan, np.nan, np.nan, 0.9],
            "created_at": pd.to_datetime(["2025-01-01"] * 5),
            "closed_at": pd.to_datetime(["NaT", "2025-02-01", "2025-01-11", "NaT", "NaT"]),
        }
    )
    for by in ("owner", ("team", "status")):
        got = cd.pipeline_summary(partitioned(frame, [0, 2, 2, 5]), by, reps=REPS)
        want = _one_process(frame, by)
        assert _table_rows(got) == _table_rows(want)
        assert dict(got.missing) == dict(want.missing)
