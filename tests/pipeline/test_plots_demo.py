from __future__ import annotations

import io
import sys

import pytest

from crmkit import CrmError
from crmkit.pipeline import plot_forecast, plot_funnel, plot_win_rate, win_loss
from crmkit.pipeline._demo import section
from crmkit.store import MemoryStore

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def test_funnel_bars_are_the_reached_counts(history: MemoryStore) -> None:
    ax = plot_funnel(history)
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths == [1, 2, 3, 5]


def test_forecast_and_win_rate_pictures(store: MemoryStore) -> None:
    ax = plot_forecast(store)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["(no date)", "2026Q1", "2026Q2"]
    ax = plot_win_rate(store, "product")
    heights = [round(p.get_height(), 3) for p in ax.patches]
    assert heights == [round(2 / 3, 3), 0.5]


def test_missing_matplotlib_is_a_crm_error(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(CrmError, match="matplotlib"):
        plot_funnel(store)


def test_demo_section(store: MemoryStore) -> None:
    out = io.StringIO()
    section(store, out)
    text = out.getvalue()
    assert "open deals: 5" in text
    assert "win rate: 60.0%" in text
    # latest moment in the data is 2026-03-10: the next two quarters are Q1 and Q2 2026
    assert "2026-01-01 to 2026-06-30" in text
    assert "East" in text
    assert "West" in text
    east = next(line for line in text.splitlines() if line.startswith("East"))
    assert "66.7%" in east
    assert "(2 won / 3 closed)" in east


def test_win_rate_picture_by_rep_name(store: MemoryStore) -> None:
    ax = plot_win_rate(store, "owner", labels="name")
    names = {r.id: r.name for r in store.reps}
    owners = win_loss(store, "owner")["owner"].tolist()
    expected = sorted(names.get(o, o) or "(none)" for o in owners)
    assert sorted(t.get_text() for t in ax.get_xticklabels()) == expected
