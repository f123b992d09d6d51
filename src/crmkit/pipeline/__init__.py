"""Pipeline management and sales analytics: stages, moves, metrics, forecasts, snapshots.

Configure the stages with :class:`Pipeline` (or use :data:`DEFAULT_PIPELINE`), move deals
with :func:`move` / :func:`close_won` / :func:`close_lost` (each move records a
``StageChange``), and measure with the metric functions, which return a :class:`Table`
grouped by any dimension (``owner``, ``team``, ``manager``, ``region``, ``family``,
``product``, ``month``, ``quarter`` ...). Metrics read a store or a :class:`PipelineData`.

Examples
--------
>>> from datetime import datetime, timezone
>>> from crmkit import MemoryStore, Opportunity
>>> from crmkit import pipeline
>>> store = MemoryStore()
>>> _ = store.opportunities.add(Opportunity(id="o1", name="Deal", amount=1000,
...                                         owner_id="ann"))
>>> _ = pipeline.move(store, "o1", "negotiation",
...                   at=datetime(2026, 1, 5, tzinfo=timezone.utc))
>>> pipeline.summary(store, by="owner").row("ann")["weighted_pipeline"]
800.0
"""

from __future__ import annotations

from crmkit.pipeline._data import PipelineData, load
from crmkit.pipeline._import import (
    DEFAULT_STAGE_MAP,
    SalesExportReport,
    UnmatchedProduct,
    import_sales_export,
)
from crmkit.pipeline._metrics import (
    average_deal_size,
    forecast,
    open_pipeline,
    rotting,
    sales_cycle,
    stage_conversion,
    summary,
    time_in_stage,
    velocity,
    weighted_pipeline,
    win_loss,
    win_rate,
    won_revenue,
)
from crmkit.pipeline._moves import close_lost, close_won, move
from crmkit.pipeline._plots import plot_forecast, plot_funnel, plot_win_rate
from crmkit.pipeline._snapshots import Snapshot, SnapshotDiff, diff, snapshot
from crmkit.pipeline._stages import DEFAULT_PIPELINE, ForecastCategory, Pipeline, Stage
from crmkit.pipeline._table import Table

__all__ = [
    "DEFAULT_PIPELINE",
    "DEFAULT_STAGE_MAP",
    "ForecastCategory",
    "Pipeline",
    "PipelineData",
    "SalesExportReport",
    "Snapshot",
    "SnapshotDiff",
    "Stage",
    "Table",
    "UnmatchedProduct",
    "average_deal_size",
    "close_lost",
    "close_won",
    "diff",
    "forecast",
    "import_sales_export",
    "load",
    "move",
    "open_pipeline",
    "plot_forecast",
    "plot_funnel",
    "plot_win_rate",
    "rotting",
    "sales_cycle",
    "snapshot",
    "stage_conversion",
    "summary",
    "time_in_stage",
    "velocity",
    "weighted_pipeline",
    "win_loss",
    "win_rate",
    "won_revenue",
]
