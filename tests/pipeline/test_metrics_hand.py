"""Every metric against values worked out by hand for the ten deals in conftest.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crmkit import ValidationError
from crmkit.pipeline import (
    average_deal_size,
    forecast,
    load,
    open_pipeline,
    sales_cycle,
    summary,
    velocity,
    weighted_pipeline,
    win_loss,
    win_rate,
    won_revenue,
)
from crmkit.store import MemoryStore


def test_totals(store: MemoryStore) -> None:
    row = summary(store).rows()[0]
    assert row["open_count"] == 5
    assert row["open_pipeline"] == 1000 + 2000 + 800 + 400
    assert row["weighted_pipeline"] == pytest.approx(
        1000 * 0.5 + 2000 * 0.9 + 800 * 0.1 + 400 * 0.8
    )
    assert (row["won_count"], row["lost_count"], row["closed_count"]) == (3, 2, 5)
    assert row["won_revenue"] == 500 + 1500 + 1200
    assert row["win_rate"] == pytest.approx(3 / 5)
    assert row["avg_deal_size"] == pytest.approx(3200 / 3)
    cycle = (19 + 60 + 30) / 3  # o03 Jan 1 -> Jan 20, o05 Jan 4 -> Mar 5, o08 Jan 29 -> Feb 28
    assert row["cycle_days"] == pytest.approx(cycle)
    assert row["velocity"] == pytest.approx(5 * 0.6 * (3200 / 3) / cycle)


def test_missing_counts(store: MemoryStore) -> None:
    missing = summary(store).missing
    assert missing["no_amount"] == 1  # o07
    assert missing["no_close_date"] == 1  # o06
    assert missing["no_created_at"] == 1  # o10
    assert missing["no_owner"] == 1  # o10
    assert missing["unknown_owner"] == 1  # o09 "ghost"
    assert missing["no_account"] == 1  # o06
    assert missing["unknown_account"] == 0
    assert missing["no_probability"] == 0  # every open deal has one or a stage default
    assert missing["default_probability"] == 3  # o01, o06, o10 take their stage default
    assert missing["unknown_stage"] == 0


def test_by_owner(store: MemoryStore) -> None:
    t = summary(store, by="owner")
    assert t["owner"].tolist() == ["", "ann", "bob", "cat", "ghost"]
    assert t["open_count"].tolist() == [1, 2, 1, 1, 0]
    assert t["open_pipeline"].tolist() == [400, 3000, 800, 0, 0]
    assert t["weighted_pipeline"].tolist() == pytest.approx([320, 2300, 80, 0, 0])
    assert t["won_revenue"].tolist() == [0, 500, 1500, 1200, 0]
    np.testing.assert_allclose(t["win_rate"], [np.nan, 1.0, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(t["avg_deal_size"], [np.nan, 500, 1500, 1200, np.nan])
    np.testing.assert_allclose(t["cycle_days"], [np.nan, 19, 60, 30, np.nan])
    assert t.missing["no_owner"] == 1


def test_by_team_and_manager(store: MemoryStore) -> None:
    team = summary(store, by="team")
    assert team["team"].tolist() == ["", "east", "west"]
    assert team["open_count"].tolist() == [1, 3, 1]
    assert team["open_pipeline"].tolist() == [400, 3800, 0]
    assert team["win_rate"].tolist()[1:] == pytest.approx([2 / 3, 1.0])
    assert team.missing["no_team"] == 2  # o09 (unknown owner) and o10 (no owner)
    manager = won_revenue(store, by="manager")
    assert dict(zip(manager["manager"], manager["won_revenue"], strict=True)) == {
        "": 0.0, "max": 1200.0, "mia": 2000.0,
    }  # fmt: skip


def test_by_family_rolls_up_to_ultimate_parent(store: MemoryStore) -> None:
    t = summary(store, by="family")
    assert t["family"].tolist() == ["", "acme", "globex"]
    assert t["open_pipeline"].tolist() == [800, 3400, 0]
    assert t["weighted_pipeline"].tolist() == pytest.approx([80, 2620, 0])
    assert t["won_revenue"].tolist() == [0, 1700, 1500]
    assert t["win_rate"].tolist()[1:] == pytest.approx([1.0, 1 / 3])
    assert t.missing["no_family"] == 1


def test_by_region_and_rep_region(store: MemoryStore) -> None:
    t = open_pipeline(store, by="region")
    assert dict(zip(t["region"], t["open_pipeline"], strict=True)) == {
        "": 800.0, "EU": 2400.0, "NA": 1000.0,
    }  # fmt: skip
    r = open_pipeline(store, by="rep_region")
    assert dict(zip(r["rep_region"], r["open_count"], strict=True)) == {"": 1, "EU": 1, "NA": 3}


def test_by_product_and_month(store: MemoryStore) -> None:
    t = weighted_pipeline(store, by=["product", "month"])
    rows = {(r["product"], r["month"]): r["weighted_pipeline"] for r in t.rows()}
    assert rows[("", "")] == pytest.approx(80)  # o06: no product, no close date
    assert rows[("crm", "2026-02")] == pytest.approx(500)  # o01 (o04, o08 are closed)
    assert rows[("crm", "2026-04")] == pytest.approx(1800 + 320)
    assert rows[("support", "2026-05")] == 0  # o07 has no amount
    # pairs that occur: ('', ''), crm x {02, 03, 04}, support x {01, 03, 05}
    assert len(t) == 7
    assert t.missing["no_month"] == 1


def test_quarter_and_created_month(store: MemoryStore) -> None:
    t = won_revenue(store, by="quarter")
    assert dict(zip(t["quarter"], t["won_revenue"], strict=True)) == {
        "": 0.0, "2026Q1": 3200.0, "2026Q2": 0.0,
    }  # fmt: skip
    c = open_pipeline(store, by="created_month")
    assert dict(zip(c["created_month"], c["open_count"], strict=True)) == {
        "": 1, "2026-01": 2, "2026-02": 2,
    }  # fmt: skip


def test_single_metric_views(store: MemoryStore) -> None:
    assert win_rate(store).row()["win_rate"] == pytest.approx(0.6)
    assert average_deal_size(store, by="owner").row("bob")["avg_deal_size"] == 1500
    assert sales_cycle(store, by="owner").row("ann")["cycle_days"] == 19
    v = velocity(store, by="owner").row("bob")
    assert v["velocity"] == pytest.approx(1 * 0.5 * 1500 / 60)


def test_engaged_cycle_uses_first_stage_change(history: MemoryStore) -> None:
    created = sales_cycle(history)["cycle_days"][0]
    engaged = sales_cycle(history, start="engaged")["cycle_days"][0]
    assert created == 40  # h1: Jan 1 -> Feb 10
    assert engaged == 30  # first change Jan 11 -> Feb 10


def test_forecast_by_quarter(store: MemoryStore) -> None:
    t = forecast(store)
    assert t["quarter"].tolist() == ["", "2026Q1", "2026Q2"]
    assert t["closed"].tolist() == [0, 3200, 0]
    assert t["commit"].tolist() == [0, 0, 2400]
    assert t["best_case"].tolist() == [0, 1000, 0]
    assert t["pipeline"].tolist() == [800, 0, 0]
    assert t["weighted"].tolist() == pytest.approx([80, 500, 2120])
    assert t["commit_forecast"].tolist() == [0, 3200, 2400]
    assert t["best_case_forecast"].tolist() == [0, 4200, 2400]


def test_forecast_window_and_owner(store: MemoryStore) -> None:
    from datetime import date

    t = forecast(store, by="owner", period="month", start=date(2026, 4, 1), end=date(2026, 6, 30))
    assert [(r["owner"], r["month"], r["commit"]) for r in t.rows()] == [
        ("", "2026-04", 400.0), ("ann", "2026-04", 2000.0), ("cat", "2026-05", 0.0),
    ]  # fmt: skip
    assert t.missing["outside_period"] == 5  # o01, o03, o05, o08 and o06 (no date)
    with pytest.raises(ValidationError, match="period"):
        forecast(store, period="week")


def test_win_loss_lift(store: MemoryStore) -> None:
    t = win_loss(store, "product")
    assert t["product"].tolist() == ["crm", "support"]
    assert t["won_count"].tolist() == [2, 1]
    assert t["lost_count"].tolist() == [1, 1]
    assert t["win_rate"].tolist() == pytest.approx([2 / 3, 1 / 2])
    assert t["lift"].tolist() == pytest.approx([(2 / 3) / 0.6, 0.5 / 0.6])
    assert t["share_of_wins"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert t["won_amount"].tolist() == [2700, 500]
    assert t["lost_amount"].tolist() == [3000, 700]
    reasons = win_loss(store, ["owner", "loss_reason"])
    assert ("bob", "price") in {(r["owner"], r["loss_reason"]) for r in reasons.rows()}


def test_unknown_dimension_is_a_clear_error(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match=r"'colour'.*unknown dimension"):
        summary(store, by="colour")
    data = load(store)
    with pytest.raises(ValidationError, match=r"custom\.segment"):
        summary(data, by="custom.segment")


def test_custom_field_dimension(store: MemoryStore) -> None:
    import attrs

    deal = store.opportunities.get("o01")
    store.opportunities.update(attrs.evolve(deal, custom={"segment": "smb"}))
    t = open_pipeline(store, by="custom.segment")
    assert dict(zip(t["custom.segment"], t["open_pipeline"], strict=True)) == {
        "": 3200.0, "smb": 1000.0,
    }  # fmt: skip


def test_empty_store() -> None:
    empty = MemoryStore()
    row = summary(empty).rows()[0]
    assert row["open_count"] == 0
    assert math.isnan(row["win_rate"])
    assert len(summary(empty, by="owner")) == 0
    assert len(forecast(empty)) == 0


def test_table_helpers(store: MemoryStore) -> None:
    t = summary(store, by="owner")
    assert "ann" in repr(t)
    assert "missing:" in repr(t)
    assert "<table>" in t._repr_html_()
    frame = t.to_pandas()
    assert list(frame.index) == ["", "ann", "bob", "cat", "ghost"]
    assert frame.attrs["missing"]["unknown_owner"] == 1
    with pytest.raises(ValidationError, match="no such column"):
        t["nope"]
