"""Metrics for lead scores: ROC AUC, Brier score, lift/gain table, calibration bins."""

from __future__ import annotations

from typing import Any

import numpy as np

from crmkit.errors import ValidationError
from crmkit.scoring._inputs import FloatArray
from crmkit.scoring._priority import average_ranks


def _pair(y: Any, score: Any, what: str) -> tuple[FloatArray, FloatArray]:
    yy = np.asarray(y, dtype=np.float64)
    ss = np.asarray(getattr(score, "values", score), dtype=np.float64)
    if yy.shape != ss.shape or yy.ndim != 1:
        raise ValidationError(what, "y", yy.shape, f"needs one outcome per score {ss.shape}")
    if not np.isin(yy, (0.0, 1.0)).all():
        raise ValidationError(what, "y", sorted(set(yy.tolist()))[:5], "outcomes must be 0 or 1")
    if not np.isfinite(ss).all():
        raise ValidationError(what, "score", None, "scores must be finite")
    return yy, ss


def roc_auc(y: Any, score: Any) -> float:
    """Area under the ROC curve from ranks (ties count one half).

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    yy, ss = _pair(y, score, "roc_auc")
    positives = int(yy.sum())
    negatives = len(yy) - positives
    if positives == 0 or negatives == 0:
        raise ValidationError("roc_auc", "y", positives, "needs both outcomes (0 and 1)")
    rank_sum = float(average_ranks(ss)[yy == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def brier_score(y: Any, probability: Any) -> float:
    """Mean squared difference between probability and outcome (lower is better).

    >>> brier_score([0, 1], [0.2, 0.6])
    0.1
    """
    yy, pp = _pair(y, probability, "brier_score")
    return float(np.round(np.mean((pp - yy) ** 2), 15))


def lift_table(y: Any, score: Any, bins: int = 10) -> dict[str, Any]:
    """Records sorted by score (best first) in ``bins`` equal groups.

    Columns (arrays, one entry per bin): ``count``, ``positives``, ``rate``, ``lift``
    (rate / overall rate), ``cumulative_share`` of records, ``gain`` (cumulative share of
    all positives).

    >>> t = lift_table([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], bins=2)
    >>> t["positives"].tolist(), t["lift"].tolist(), t["gain"].tolist()
    ([1, 1], [1.0, 1.0], [0.5, 1.0])
    """
    yy, ss = _pair(y, score, "lift_table")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValidationError("lift_table", "bins", bins, "must be a whole number >= 1")
    order = np.argsort(-ss, kind="stable")
    group = np.arange(len(yy)) * bins // max(len(yy), 1)
    count = np.bincount(group, minlength=bins)
    positives = np.bincount(group, yy[order], minlength=bins).astype(np.int64)
    overall = yy.mean() if len(yy) else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(count > 0, positives / np.maximum(count, 1), 0.0)
        lift = rate / overall if overall > 0 else np.zeros(bins)
    total_pos = max(float(yy.sum()), 1.0)
    return {
        "bin": np.arange(1, bins + 1),
        "count": count,
        "positives": positives,
        "rate": rate,
        "lift": lift,
        "cumulative_share": np.cumsum(count) / max(len(yy), 1),
        "gain": np.cumsum(positives) / total_pos,
    }


def calibration_bins(y: Any, probability: Any, bins: int = 10) -> dict[str, Any]:
    """Predicted vs observed rates in ``bins`` equal-width probability bins.

    Columns: ``low``, ``high``, ``count``, ``predicted`` (mean probability), ``observed``
    (share of positives); empty bins have NaN means.

    >>> c = calibration_bins([0, 1, 1, 1], [0.1, 0.2, 0.9, 0.8], bins=2)
    >>> c["count"].tolist(), c["observed"].tolist()
    ([2, 2], [0.5, 1.0])
    """
    yy, pp = _pair(y, probability, "calibration_bins")
    if ((pp < 0) | (pp > 1)).any():
        raise ValidationError("calibration_bins", "probability", None, "must lie in [0, 1]")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValidationError("calibration_bins", "bins", bins, "must be a whole number >= 1")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.minimum((pp * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = np.bincount(which, pp, minlength=bins) / count
        observed = np.bincount(which, yy, minlength=bins) / count
    return {
        "low": edges[:-1],
        "high": edges[1:],
        "count": count,
        "predicted": predicted,
        "observed": observed,
    }
