"""Pictures of the pipeline (matplotlib, imported only when you draw)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crmkit._optional import require
from crmkit.pipeline._data import PipelineData
from crmkit.pipeline._metrics import forecast, stage_conversion, win_loss
from crmkit.pipeline._stages import DEFAULT_PIPELINE, Pipeline
from crmkit.store._base import Store

__all__ = ["plot_forecast", "plot_funnel", "plot_win_rate"]


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    plt = require("matplotlib.pyplot", extra="plot", feature="drawing (or pass ax=...)")
    _, axes = plt.subplots()
    return axes


def plot_funnel(
    source: Store | PipelineData, *, pipeline: Pipeline = DEFAULT_PIPELINE, ax: Any = None
) -> Any:
    """A horizontal funnel: deals that reached each open stage; returns the Axes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add(Opportunity(id="a", name="A", stage="proposal"))
    >>> plot_funnel(store).get_title()
    'Pipeline funnel'
    """
    table = stage_conversion(source, pipeline=pipeline)
    axes = _axes(ax)
    reached = table["reached"]
    positions = np.arange(len(reached))[::-1]
    widest = max(int(reached.max(initial=0)), 1)
    axes.barh(positions, reached, left=(widest - reached) / 2, color="tab:blue")
    axes.set_yticks(positions, labels=list(table["stage"]))
    for y, value in zip(positions, reached, strict=True):
        axes.text(widest / 2, y, str(int(value)), ha="center", va="center", color="white")
    axes.set_xticks([])
    axes.set_title("Pipeline funnel")
    return axes


def plot_forecast(
    source: Store | PipelineData,
    *,
    period: str = "quarter",
    pipeline: Pipeline = DEFAULT_PIPELINE,
    ax: Any = None,
) -> Any:
    """Stacked bars per close period: closed, commit, best case, pipeline.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from crmkit import MemoryStore
    >>> plot_forecast(MemoryStore()).get_ylabel()
    'amount'
    """
    table = forecast(source, period=period, pipeline=pipeline)
    axes = _axes(ax)
    labels = [p or "(no date)" for p in table[period]]
    x = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    for name in ("closed", "commit", "best_case", "pipeline"):
        axes.bar(x, table[name], bottom=bottom, label=name.replace("_", " "))
        bottom = bottom + table[name]
    axes.set_xticks(x, labels=labels)
    axes.set_ylabel("amount")
    axes.set_title(f"Forecast by {period}")
    axes.legend()
    return axes


def plot_win_rate(
    source: Store | PipelineData,
    by: str | Sequence[str],
    *,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    labels: str = "id",
    ax: Any = None,
) -> Any:
    """Win rate per group with the overall rate as a line; bars labelled with counts
    (``labels="name"`` names reps, accounts, teams and territories, as in the metrics).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add(Opportunity(id="a", name="A", status="won", source="web"))
    >>> plot_win_rate(store, "source").get_title()
    'Win rate by source'
    """
    table = win_loss(source, by, pipeline=pipeline, labels=labels)
    names = [by] if isinstance(by, str) else list(by)
    axes = _axes(ax)
    ticks = [" / ".join(str(table[n][i]) or "(none)" for n in names) for i in range(len(table))]
    x = np.arange(len(ticks))
    rates = np.nan_to_num(table["win_rate"])
    axes.bar(x, rates)
    won, closed = table["won_count"].sum(), table["closed_count"].sum()
    if closed:
        axes.axhline(won / closed, color="black", linestyle="--", label="overall")
    for xi, rate, n in zip(x, rates, table["closed_count"], strict=True):
        axes.text(xi, rate, f"n={int(n)}", ha="center", va="bottom")
    axes.set_xticks(x, labels=ticks)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("win rate")
    axes.set_title(f"Win rate by {', '.join(names)}")
    return axes
