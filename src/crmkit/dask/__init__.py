"""crmkit's batch engines on a Dask cluster (extra ``dask``).

Each function takes a Dask DataFrame (or Parquet path(s)), runs crmkit's own kernel on
every partition and combines the partitions so the result equals the single-process
function on the same rows: partial sums per account for engagement, global bounds and
quantile cuts for priority and segments, broadcast territories, rotation offsets from a
prefix count for routing, partial roll-ups and group-by sums reduced in a tree.
Importing ``crmkit`` does not import Dask; these functions import it when called.
See docs/scaling-out.md.
"""

from __future__ import annotations

from crmkit.dask._reduce import pipeline_summary, rollup
from crmkit.dask._routing import RouterRecipe, assign_territories, route
from crmkit.dask._scoring import (
    engagement_scores,
    fit_scores,
    priority_scores,
    segment_by_quantiles,
)

__all__ = [
    "RouterRecipe",
    "assign_territories",
    "engagement_scores",
    "fit_scores",
    "pipeline_summary",
    "priority_scores",
    "rollup",
    "route",
    "segment_by_quantiles",
]
