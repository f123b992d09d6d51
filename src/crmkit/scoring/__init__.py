"""Scoring: engagement, fit, priority, predictive lead scoring, segments, explanations.

Pure numpy functions at the core, estimator-style classes on top (``fit`` returns self,
learned attributes end in ``_``). Every score comes back as a :class:`ScoreResult` whose
per-feature contributions add up to it (see each function for exactly what adds up to
what).

>>> import numpy as np
>>> from datetime import datetime, timezone
>>> from crmkit.scoring import engagement_scores, priority_scores
>>> cols = {"account_id": np.array(["a", "b", "b"]),
...         "kind": np.array(["meeting", "call", "email_opened"]),
...         "at": np.array(["2026-03-01", "2026-03-01", "2026-02-01"], dtype="datetime64[us]")}
>>> engaged = engagement_scores(cols, weights={"meeting": 10, "call": 5, "email_opened": 1},
...                             half_lives=30, now=datetime(2026, 3, 1, tzinfo=timezone.utc))
>>> engaged.values.round(2).tolist()
[10.0, 5.52]
>>> priority_scores({"engagement": engaged}, {"engagement": 1}, ids=engaged.ids).values.tolist()
[100.0, 0.0]
"""

from __future__ import annotations

from crmkit.scoring._backtest import BacktestResult, backtest, training_data
from crmkit.scoring._engagement import engagement_scores
from crmkit.scoring._fit import FitModel, PointsRule, RuleGroup, fit_scores
from crmkit.scoring._metrics import brier_score, calibration_bins, lift_table, roc_auc
from crmkit.scoring._models import (
    FeatureEncoder,
    LogisticLeadScorer,
    LogisticRegression,
    NaiveBayesLeadScorer,
)
from crmkit.scoring._persist import (
    ModelState,
    model_from_dict,
    model_from_json,
    model_to_dict,
    model_to_json,
)
from crmkit.scoring._priority import (
    average_ranks,
    fit_engagement_matrix,
    normalise,
    percentiles,
    priority_scores,
    ranks,
    segment_by_criteria,
    segment_by_quantiles,
    tiers,
)
from crmkit.scoring._result import ScoreResult, Segments

__all__ = [
    "BacktestResult",
    "FeatureEncoder",
    "FitModel",
    "LogisticLeadScorer",
    "LogisticRegression",
    "ModelState",
    "NaiveBayesLeadScorer",
    "PointsRule",
    "RuleGroup",
    "ScoreResult",
    "Segments",
    "average_ranks",
    "backtest",
    "brier_score",
    "calibration_bins",
    "engagement_scores",
    "fit_engagement_matrix",
    "fit_scores",
    "lift_table",
    "model_from_dict",
    "model_from_json",
    "model_to_dict",
    "model_to_json",
    "normalise",
    "percentiles",
    "priority_scores",
    "ranks",
    "roc_auc",
    "segment_by_criteria",
    "segment_by_quantiles",
    "tiers",
    "training_data",
]
