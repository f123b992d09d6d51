"""Training data from a store, and a backtest that fits before a date and tests after it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import numpy as np

from crmkit.errors import ValidationError
from crmkit.records import Lead, Opportunity
from crmkit.scoring._inputs import Array, FloatArray, as_columns, datetimes, instant, locate, text
from crmkit.scoring._metrics import brier_score, calibration_bins, lift_table, roc_auc
from crmkit.scoring._result import ScoreResult

_OUTCOMES = {
    Lead: ("status", {"converted": 1.0, "disqualified": 0.0}),
    Opportunity: ("status", {"won": 1.0, "lost": 0.0}),
}


def training_data(
    store: Any, fields: Sequence[str], *, record_type: type[Any] = Lead
) -> tuple[dict[str, Array], FloatArray, Array]:
    """``(columns, y, at)`` of the closed records of a store, for fitting lead scorers.

    Leads: converted = 1, disqualified = 0; opportunities: won = 1, lost = 0. Open
    records are left out. ``at`` is ``created_at`` (when the record could first be
    scored); ``columns`` hold ``id`` and ``fields``. An opportunity's ``stage`` is the
    stage it was in when it closed, read from its stage history (``""`` without one):
    the won or lost end stage would give the outcome away, and naive Bayes counts a
    lost deal up to the stage it reached.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Lead, MemoryStore
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> store = MemoryStore()
    >>> _ = store.leads.add_many([
    ...     Lead(id="l1", source="web", status="converted", created_at=t0),
    ...     Lead(id="l2", source="ads", status="disqualified", created_at=t0),
    ...     Lead(id="l3", source="web", created_at=t0)])  # still open: left out
    >>> cols, y, at = training_data(store, ["source"])
    >>> cols["id"].tolist(), cols["source"].tolist(), y.tolist()
    (['l1', 'l2'], ['web', 'ads'], [1.0, 0.0])
    """
    if record_type not in _OUTCOMES:
        raise ValidationError(
            "training_data", "record_type", record_type.__name__, "use Lead or Opportunity"
        )
    status, labels = _OUTCOMES[record_type]
    wanted = list(dict.fromkeys(["id", *fields, status, "created_at"]))
    cols = store.repository(record_type).columns(wanted)
    keep = np.isin(cols[status], list(labels))
    y = np.zeros(int(keep.sum()))
    for value, label in labels.items():
        y[cols[status][keep] == value] = label
    out = {name: cols[name][keep] for name in ["id", *fields]}
    if record_type is Opportunity and "stage" in out:
        out["stage"] = _stage_when_closed(store, text(out["id"]), text(out["stage"]))
    return out, y, cols["created_at"][keep]


def _stage_when_closed(store: Any, ids: Array, end_stage: Array) -> Array:
    """The ``from_stage`` of each deal's latest move, when that move closed it."""
    changes = store.stage_changes.columns(["opportunity_id", "from_stage", "to_stage", "at"])
    deal = text(changes["opportunity_id"])
    if len(deal) == 0:
        return np.full(len(ids), "", dtype=str)
    order = np.lexsort((changes["at"], deal))
    last = order[np.append(deal[order][1:] != deal[order][:-1], True)]
    at, found = locate(ids, deal[last])
    into_end = found & (text(changes["to_stage"])[last][at] == end_stage)
    return np.where(into_end, text(changes["from_stage"])[last][at], "")


@attrs.frozen(eq=False)
class BacktestResult:
    """What a model fitted on records before ``cutoff`` did on records after it."""

    cutoff: Any
    n_train: int
    n_test: int
    auc: float
    brier: float
    base_rate: float
    lift: dict[str, Any]
    calibration: dict[str, Any]
    scores: ScoreResult
    y: Array
    n_unscoreable: int = 0

    def __repr__(self) -> str:
        return (
            f"<BacktestResult cutoff={self.cutoff} train={self.n_train} test={self.n_test} "
            f"auc={self.auc:.3f} brier={self.brier:.4f}>"
        )


def backtest(
    model: Any,
    X: Any,
    y: Any,
    at: Any,
    cutoff: datetime | np.datetime64,
    *,
    ids: Any = None,
    bins: int = 10,
) -> BacktestResult:
    """Fit a fresh copy of ``model`` on rows with ``at < cutoff``, evaluate on the rest.

    ``model`` is any lead scorer of this package (its parameters are copied, it is not
    changed). Returns the ROC AUC, Brier score, lift table and calibration bins, computed
    over the test rows the model could score: rows it marks unscoreable (a naive Bayes
    team with no won history) are counted in ``n_unscoreable`` and left out of the metrics.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> import numpy as np
    >>> from crmkit.scoring import NaiveBayesLeadScorer
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> at = [t0 + timedelta(days=d) for d in range(8)]
    >>> X = {"source": np.array(["web", "ads"] * 4)}  # web leads win, ads leads lose
    >>> r = backtest(NaiveBayesLeadScorer(["source"]), X, [1, 0] * 4, at, t0 + timedelta(days=4))
    >>> r.n_train, r.n_test, r.auc, r.base_rate
    (4, 4, 1.0, 0.5)
    """
    cols = as_columns(X, "backtest")
    yy = np.asarray(y, dtype=np.float64)
    when = datetimes(at, "backtest", "at")
    edge = instant(cutoff, "backtest", "cutoff")
    if len(when) != len(yy):
        raise ValidationError("backtest", "at", len(when), f"need {len(yy)} timestamps")
    before = when < edge
    after = when >= edge
    for name, part in (("before", before), ("after", after)):
        if len(np.unique(yy[part])) < 2:
            raise ValidationError(
                "backtest",
                "cutoff",
                str(edge),
                f"leaves no wins or no losses {name} the cutoff; pick another date",
            )
    fresh = type(model)(**model.get_params())
    fresh.fit({k: v[before] for k, v in cols.items()}, yy[before])
    test_cols = {k: v[after] for k, v in cols.items()}
    test_ids = None if ids is None else np.asarray(ids)[after]
    scores = fresh.score(test_cols, ids=test_ids)
    truth = yy[after]
    ok = scores.scoreable
    if len(np.unique(truth[ok])) < 2:
        raise ValidationError(
            "backtest",
            "cutoff",
            str(edge),
            f"leaves no wins or no losses among the {int(ok.sum())} test rows the model "
            "could score; pick another date",
        )
    scored, seen = scores.values[ok], truth[ok]
    return BacktestResult(
        cutoff=edge,
        n_train=int(before.sum()),
        n_test=int(after.sum()),
        auc=roc_auc(seen, scored),
        brier=brier_score(seen, scored),
        base_rate=float(truth.mean()),
        lift=lift_table(seen, scored, bins=bins),
        calibration=calibration_bins(seen, scored, bins=bins),
        scores=scores,
        y=truth,
        n_unscoreable=int((~ok).sum()),
    )
