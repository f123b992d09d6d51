"""Stage conversion, time in stage, rotting and snapshots on the move()d deals in conftest."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from crmkit.pipeline import diff, rotting, snapshot, stage_conversion, time_in_stage
from crmkit.store import MemoryStore

NOW = datetime(2026, 2, 15, tzinfo=UTC)


def test_stage_conversion(history: MemoryStore) -> None:
    t = stage_conversion(history)
    assert t["stage"].tolist() == ["prospecting", "qualification", "proposal", "negotiation"]
    # furthest stage: h1 won (all), h2 qualification, h3 prospecting, h4 proposal, h5 prosp.
    assert t["reached"].tolist() == [5, 3, 2, 1]
    assert t["advanced"].tolist() == [3, 2, 1, 1]
    assert t["conversion_rate"].tolist() == pytest.approx([3 / 5, 2 / 3, 1 / 2, 1.0])
    assert t["win_rate"].tolist() == pytest.approx([1 / 5, 1 / 3, 1 / 2, 1.0])


def test_stage_conversion_grouped(history: MemoryStore) -> None:
    t = stage_conversion(history, by="created_month")
    jan = t.select(t["created_month"] == "2026-01")
    feb = t.select(t["created_month"] == "2026-02")
    assert jan["reached"].tolist() == [4, 3, 2, 1]
    assert feb["reached"].tolist() == [1, 0, 0, 0]
    assert t.keys == ("created_month", "stage")


def test_time_in_stage(history: MemoryStore) -> None:
    t = time_in_stage(history, now=NOW)
    prospecting = t.row("prospecting")
    # h1 10 d, h2 5 d, h3 45 d (ongoing), h4 10 d, h5 14 d (ongoing)
    assert (prospecting["stays"], prospecting["ongoing"]) == (5, 2)
    assert prospecting["mean_days"] == pytest.approx((10 + 5 + 45 + 10 + 14) / 5)
    assert prospecting["max_days"] == 45
    qualification = t.row("qualification")  # h1 10, h2 10, h4 5
    assert qualification["stays"] == 3
    assert qualification["mean_days"] == pytest.approx(25 / 3)
    proposal = t.row("proposal")  # h1 20, h4 21 (ongoing)
    assert (proposal["stays"], proposal["ongoing"]) == (2, 1)
    assert proposal["mean_days"] == pytest.approx(20.5)
    negotiation = t.row("negotiation")
    assert negotiation["stays"] == 0
    assert np.isnan(negotiation["mean_days"])


def test_time_in_stage_without_now_counts_only_finished_stays(history: MemoryStore) -> None:
    t = time_in_stage(history)
    assert t.row("prospecting")["stays"] == 3
    assert t.row("prospecting")["ongoing"] == 0


def test_rotting(history: MemoryStore) -> None:
    t = rotting(history, now=NOW)
    # h3: prospecting since Jan 1 = 45 d > 30; h4: proposal 21 d is not > 21; h5 14 d
    assert t["id"].tolist() == ["h3"]
    assert t["days_in_stage"].tolist() == [45.0]
    assert t["rotting_days"].tolist() == [30.0]
    later = rotting(history, now=datetime(2026, 2, 16, 12, tzinfo=UTC))
    assert later["id"].tolist() == ["h3", "h4"]
    grouped = rotting(history, by="stage", now=NOW)
    assert dict(zip(grouped["stage"], grouped["rotting_count"], strict=True)) == {
        "closed_lost": 0, "closed_won": 0, "proposal": 0, "prospecting": 1,
    }  # fmt: skip


def test_snapshot_as_of(history: MemoryStore) -> None:
    jan15 = snapshot(history, datetime(2026, 1, 15, tzinfo=UTC)).deals
    assert jan15["id"].tolist() == ["h1", "h2", "h3", "h4"]  # h5 created Feb 1
    assert jan15["stage"].tolist() == [
        "qualification", "qualification", "prospecting", "prospecting",
    ]  # fmt: skip
    assert set(jan15["status"].tolist()) == {"open"}
    assert jan15["amount"].tolist() == [100.0] * 4
    feb15 = snapshot(history, date(2026, 2, 15)).deals
    assert feb15["stage"].tolist() == [
        "closed_won", "closed_lost", "prospecting", "proposal", "prospecting",
    ]  # fmt: skip
    assert feb15.row("h1")["amount"] == 150.0
    assert feb15.row("h4")["close_date"] == date(2026, 4, 30)


def test_diff(history: MemoryStore) -> None:
    a = snapshot(history, datetime(2026, 1, 15, tzinfo=UTC))
    b = snapshot(history, NOW)
    d = diff(a, b)
    assert d.added["id"].tolist() == ["h5"]
    assert d.moved["id"].tolist() == ["h4"]
    assert (d.moved["stage_before"][0], d.moved["stage_after"][0]) == ("prospecting", "proposal")
    assert d.won["id"].tolist() == ["h1"]
    assert d.lost["id"].tolist() == ["h2"]
    assert d.slipped["id"].tolist() == ["h4"]
    assert d.amount_changed["id"].tolist() == ["h1"]
    assert d.counts() == {
        "added": 1, "removed": 0, "moved": 1, "won": 1, "lost": 1, "reopened": 0,
        "slipped": 1, "pulled_in": 0, "amount_changed": 1,
    }  # fmt: skip
    back = diff(b, a)
    assert back.removed["id"].tolist() == ["h5"]
    assert back.reopened["id"].tolist() == ["h1", "h2"]
    assert back.pulled_in["id"].tolist() == ["h4"]


def test_snapshot_of_closed_deal_without_history() -> None:
    from crmkit import Opportunity

    s = MemoryStore()
    s.opportunities.add(
        Opportunity(
            id="x",
            name="X",
            status="won",
            stage="closed_won",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            closed_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
    )
    snap = snapshot(s, datetime(2026, 2, 1, tzinfo=UTC))
    assert snap.deals.row("x")["status"] == "open"
    assert snap.deals.missing["unknown_stage_as_of"] == 1
