"""Hypothesis properties over random deals in a real MemoryStore."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import Opportunity
from crmkit.pipeline import DEFAULT_PIPELINE, summary, win_loss
from crmkit.store import MemoryStore

deal = st.fixed_dictionaries(
    {
        "amount": st.none() | st.integers(0, 10_000),
        "probability": st.none() | st.floats(0, 1),
        "stage": st.sampled_from((*DEFAULT_PIPELINE.names[:4], "odd")),
        "status": st.sampled_from(["open", "open", "won", "lost"]),
        "owner_id": st.none() | st.sampled_from(["ann", "bob", "cat"]),
        "product": st.none() | st.sampled_from(["crm", "support"]),
        "close_date": st.none() | st.dates(date(2025, 1, 1), date(2026, 12, 31)),
        "created_at": st.none()
        | st.datetimes(datetime(2024, 1, 1), datetime(2024, 12, 31), timezones=st.just(UTC)),
    }
)


def _store(deals: list[dict[str, object]]) -> MemoryStore:
    store = MemoryStore()
    store.opportunities.add_many(
        Opportunity(id=f"o{i:03d}", name="d", **d)  # type: ignore[arg-type]
        for i, d in enumerate(deals)
    )
    return store


@settings(max_examples=40, deadline=None)
@given(st.lists(deal, max_size=30), st.sampled_from(["owner", "product", "month", "stage"]))
def test_groups_add_up_to_the_total(deals: list[dict[str, object]], by: str) -> None:
    store = _store(deals)
    total = summary(store).rows()[0]
    grouped = summary(store, by=by)
    for name in ["open_count", "won_count", "lost_count"]:
        assert grouped[name].sum() == total[name]
    for name in ["open_pipeline", "weighted_pipeline", "won_revenue"]:
        assert np.isclose(grouped[name].sum(), total[name])
    assert grouped[by].tolist() == sorted(set(grouped[by].tolist()))
    missing_key = 0 if len(grouped) == 0 else int(grouped[by][0] == "")
    assert grouped.missing[f"no_{by}"] == (
        0
        if not missing_key
        else int(sum(grouped.select(grouped[by] == "")["open_count"]))
        + int(sum(grouped.select(grouped[by] == "")["closed_count"]))
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(deal, min_size=1, max_size=30))
def test_lift_averages_to_one_weighted_by_closed(deals: list[dict[str, object]]) -> None:
    t = win_loss(_store(deals), "owner")
    closed = t["closed_count"].sum()
    if closed and t["won_count"].sum():
        # sum of lift x closed share = 1 (the overall rate is the weighted mean)
        assert np.isclose((t["lift"] * t["closed_count"]).sum() / closed, 1.0)
    assert t["won_count"].sum() == sum(1 for d in deals if d["status"] == "won")
