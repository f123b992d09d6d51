"""Predictive lead scoring: feature encoding, frequency naive Bayes, L2 logistic regression."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crmkit.errors import NotFittedError, ValidationError
from crmkit.scoring._inputs import Array, FloatArray, as_columns, locate, numbers, text
from crmkit.scoring._result import ScoreResult

CLAMP = (0.0001, 0.9999)
"""Naive Bayes probabilities are clamped to 0.01% .. 99.99% (Odoo's bounds)."""
SMOOTHING = 0.1
"""Every frequency count starts at 0.1 (Odoo's zero-frequency guard)."""


def _labels(y: Any, what: str, n: int) -> FloatArray:
    array = np.asarray(y)
    if array.dtype.kind == "b":
        array = array.astype(np.float64)
    elif array.dtype.kind in ("U", "O"):
        mapped = np.full(len(array), np.nan)
        for value, label in (("won", 1.0), ("lost", 0.0)):
            mapped[array == value] = label
        array = mapped
    array = np.asarray(array, dtype=np.float64)
    if array.shape != (n,):
        raise ValidationError(what, "y", array.shape, f"needs one outcome per row ({n})")
    bad = ~np.isin(array, (0.0, 1.0))
    if bad.any():
        raise ValidationError(
            what,
            "y",
            np.asarray(y)[np.argmax(bad)],
            "outcomes must be 1/0, True/False or won/lost",
        )
    if n and (array.min() == array.max()):
        raise ValidationError(what, "y", array[0], "needs both outcomes (won and lost) to learn")
    return array


def _rows(cols: Mapping[str, Array]) -> int:
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise ValidationError("lead scoring", None, sorted(lengths), "columns differ in length")
    return lengths.pop() if lengths else 0


def _column(cols: Mapping[str, Array], name: str, what: str) -> Array:
    if name not in cols:
        raise ValidationError(what, name, None, f"column {name!r} is missing; have {sorted(cols)}")
    return cols[name]


def _check_fitted(model: Any, attribute: str) -> None:
    if not hasattr(model, attribute):
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted yet; call fit(X, y) before using it"
        )


def _ids(cols: Mapping[str, Array], ids: Any, n: int) -> Array:
    if ids is not None:
        out = np.asarray(ids)
    elif "id" in cols:
        out = text(cols["id"])
    else:
        out = np.arange(n)
    if len(out) != n:
        raise ValidationError("lead scoring", "ids", len(out), f"need {n} ids")
    return out


class _Params:
    _param_names: tuple[str, ...] = ()
    _learned_names: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (scikit-learn style)."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class FeatureEncoder(_Params):
    """Columns of records as a numeric matrix.

    ``categorical`` fields become one column per value (``encoding="onehot"``, the
    ``max_categories`` most frequent values; others and missing values are all zeros) or
    one column holding the value's training frequency (``"frequency"``). ``numeric``
    fields are standardised (missing values become the mean, i.e. 0). Custom fields are
    named ``custom.<key>`` as in the store's columns.

    >>> import numpy as np
    >>> enc = FeatureEncoder(categorical=["country"], numeric=["employees"])
    >>> X = enc.fit({"country": np.array(["US", "FR", "US"]),
    ...              "employees": np.array([10.0, 30.0, np.nan])}).transform(
    ...     {"country": np.array(["US", "DE"]), "employees": np.array([20.0, 30.0])})
    >>> enc.feature_names_
    ['country=US', 'country=FR', 'employees']
    >>> X.tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """

    _param_names = ("categorical", "numeric", "encoding", "max_categories")
    _learned_names = ("categories_", "frequencies_", "means_", "scales_")

    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        *,
        encoding: str = "onehot",
        max_categories: int = 30,
    ) -> None:
        self.categorical = tuple(categorical)
        self.numeric = tuple(numeric)
        self.encoding = encoding
        self.max_categories = max_categories

    def fit(self, X: Any, y: Any = None) -> FeatureEncoder:
        if self.encoding not in ("onehot", "frequency"):
            raise ValidationError(
                "FeatureEncoder", "encoding", self.encoding, "use 'onehot' or 'frequency'"
            )
        if not self.categorical and not self.numeric:
            raise ValidationError("FeatureEncoder", None, None, "name at least one feature")
        cols = as_columns(X, "FeatureEncoder")
        n = _rows(cols)
        self.categories_: dict[str, list[str]] = {}
        self.frequencies_: dict[str, list[float]] = {}
        for name in self.categorical:
            values = text(_column(cols, name, "FeatureEncoder"))
            cats, counts = np.unique(values[values != ""], return_counts=True)
            order = np.lexsort((cats, -counts))[: self.max_categories]
            self.categories_[name] = [str(c) for c in cats[order]]
            self.frequencies_[name] = [float(c) / max(n, 1) for c in counts[order]]
        self.means_: dict[str, float] = {}
        self.scales_: dict[str, float] = {}
        for name in self.numeric:
            x = numbers(_column(cols, name, "FeatureEncoder"), "FeatureEncoder", name)
            finite = x[np.isfinite(x)]
            mean = float(finite.mean()) if len(finite) else 0.0
            sd = float(finite.std()) if len(finite) else 0.0
            self.means_[name] = mean
            self.scales_[name] = sd if sd > 0 else 1.0
        return self

    @property
    def feature_names_(self) -> list[str]:
        _check_fitted(self, "means_")
        names: list[str] = []
        for name in self.categorical:
            if self.encoding == "onehot":
                names.extend(f"{name}={c}" for c in self.categories_[name])
            else:
                names.append(name)
        names.extend(self.numeric)
        return names

    @property
    def sources_(self) -> list[str]:
        """The field each output column comes from."""
        _check_fitted(self, "means_")
        out: list[str] = []
        for name in self.categorical:
            width = len(self.categories_[name]) if self.encoding == "onehot" else 1
            out.extend([name] * width)
        out.extend(self.numeric)
        return out

    def transform(self, X: Any) -> FloatArray:
        _check_fitted(self, "means_")
        cols = as_columns(X, "FeatureEncoder")
        n = _rows(cols)
        parts: list[FloatArray] = []
        for name in self.categorical:
            values = text(_column(cols, name, "FeatureEncoder"))
            cats = np.asarray(self.categories_[name], dtype=str)
            if self.encoding == "onehot":
                parts.append((values[:, None] == cats[None, :]).astype(np.float64).reshape(n, -1))
            else:
                freq = np.asarray(self.frequencies_[name])
                hit = values[:, None] == cats[None, :]
                parts.append((hit.astype(np.float64) @ freq).reshape(n, 1))
        for name in self.numeric:
            x = numbers(_column(cols, name, "FeatureEncoder"), "FeatureEncoder", name)
            z = (x - self.means_[name]) / self.scales_[name]
            parts.append(np.where(np.isfinite(z), z, 0.0).reshape(n, 1))
        return np.hstack(parts) if parts else np.zeros((n, 0))

    def fit_transform(self, X: Any, y: Any = None) -> FloatArray:
        return self.fit(X, y).transform(X)


class LogisticRegression(_Params):
    """L2-penalised logistic regression fitted by Newton's method, in numpy.

    Minimises ``C * sum(log-loss) + ||coef||^2 / 2`` (the intercept is not penalised), the
    objective of scikit-learn's ``LogisticRegression(C=C)``. Stops when a Newton step
    would move no coefficient by more than ``tol``.

    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    >>> model = LogisticRegression(C=10.0).fit(X, y)
    >>> model.predict(np.array([[0.2], [2.8]])).tolist()
    [0, 1]
    >>> bool(model.coef_[0] > 0)
    True
    """

    _param_names = ("C", "max_iter", "tol")
    _learned_names = ("coef_", "intercept_", "x_mean_", "n_iter_")

    def __init__(self, C: float = 1.0, *, max_iter: int = 100, tol: float = 1e-8) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: Any, y: Any) -> LogisticRegression:
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or not np.isfinite(x).all():
            raise ValidationError("LogisticRegression", "X", x.shape, "must be a finite 2-d array")
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValidationError("LogisticRegression", "C", self.C, "must be a number > 0")
        yy = _labels(y, "LogisticRegression", len(x))
        d = x.shape[1]
        c = float(self.C)
        w = np.zeros(d)
        rate = float(np.clip(yy.mean(), 1e-12, 1 - 1e-12))
        b = float(np.log(rate / (1 - rate)))
        obj, grad, hess = _newton_pass(x, yy, w, b, c)
        self.n_iter_ = 0
        for it in range(1, self.max_iter + 1):
            step = np.linalg.solve(hess, grad)
            if float(np.abs(step).max()) <= self.tol:
                break
            t = 1.0
            while True:
                w_new, b_new = w - t * step[:d], b - t * float(step[d])
                obj_new, grad_new, hess_new = _newton_pass(x, yy, w_new, b_new, c)
                if obj_new <= obj + 1e-12 * abs(obj) or t < 1e-8:
                    break
                t *= 0.5
            w, b, obj, grad, hess = w_new, b_new, obj_new, grad_new, hess_new
            self.n_iter_ = it
        self.coef_ = w
        self.intercept_ = float(b)
        self.x_mean_ = x.mean(axis=0)
        return self

    def decision_function(self, X: Any) -> FloatArray:
        """The log-odds of a win."""
        _check_fitted(self, "coef_")
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.coef_):
            raise ValidationError(
                "LogisticRegression", "X", x.shape, f"needs {len(self.coef_)} columns"
            )
        out: FloatArray = x @ self.coef_ + self.intercept_
        return out

    def predict_proba(self, X: Any) -> FloatArray:
        """``[P(lost), P(won)]`` per row."""
        p = 0.5 * (1.0 + np.tanh(0.5 * self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> Array:
        return (self.decision_function(X) > 0).astype(np.int64)

    def contributions(self, X: Any) -> tuple[FloatArray, float]:
        """Per-feature log-odds contributions and the baseline they add to.

        ``coef_[j] * (X[:, j] - x_mean_[j])``; with ``baseline = intercept_ + coef_ @ x_mean_``
        each row's contributions plus the baseline equal its ``decision_function``.
        """
        _check_fitted(self, "coef_")
        x = np.asarray(X, dtype=np.float64)
        return (x - self.x_mean_) * self.coef_, float(self.intercept_ + self.coef_ @ self.x_mean_)


_CHUNK = 1 << 13


def _newton_pass(
    x: FloatArray, y: FloatArray, w: FloatArray, b: float, c: float
) -> tuple[float, FloatArray, FloatArray]:
    """Objective, gradient and Hessian at ``(w, b)`` in one cache-sized pass over ``x``."""
    n, d = x.shape
    obj = 0.5 * float(w @ w)
    grad = np.zeros(d + 1)
    hess = np.zeros((d + 1, d + 1))
    for start in range(0, n, _CHUNK):
        xc = x[start : start + _CHUNK]
        yc = y[start : start + _CHUNK]
        z = xc @ w + b
        obj += c * float(np.sum(np.logaddexp(0.0, z) - yc * z))
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, overflow-free
        r = p - yc
        grad[:d] += xc.T @ r
        grad[d] += r.sum()
        s = p * (1.0 - p)
        xs = xc * np.sqrt(s)[:, None]
        hess[:d, :d] += xs.T @ xs
        col = xc.T @ s
        hess[:d, d] += col
        hess[d, :d] += col
        hess[d, d] += s.sum()
    grad *= c
    grad[:d] += w
    hess *= c
    hess[np.arange(d), np.arange(d)] += 1.0
    hess[d, d] += 1e-12
    return obj, grad, hess


class LogisticLeadScorer(_Params):
    """A :class:`FeatureEncoder` and a :class:`LogisticRegression` on record columns.

    ``fit(X, y)`` takes columns (a dict of arrays or a DataFrame) and outcomes (1/0,
    True/False or "won"/"lost"). :meth:`score` explains each probability in log-odds:
    ``raw = baseline + contributions.sum(axis=1)`` where ``raw`` is the log-odds and
    ``values = 1 / (1 + exp(-raw))``; a field's contribution is the sum over its encoded
    columns of ``coef * (x - training mean)``, so the baseline is the log-odds of the
    average training row.
    """

    _param_names = ("categorical", "numeric", "C", "encoding", "max_categories")
    _learned_names = ("encoder_", "model_")

    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        *,
        C: float = 1.0,
        encoding: str = "onehot",
        max_categories: int = 30,
    ) -> None:
        self.categorical = tuple(categorical)
        self.numeric = tuple(numeric)
        self.C = C
        self.encoding = encoding
        self.max_categories = max_categories

    def fit(self, X: Any, y: Any) -> LogisticLeadScorer:
        encoder = FeatureEncoder(
            self.categorical,
            self.numeric,
            encoding=self.encoding,
            max_categories=self.max_categories,
        )
        matrix = encoder.fit_transform(X)
        self.model_ = LogisticRegression(C=self.C).fit(matrix, y)
        self.encoder_ = encoder
        return self

    def decision_function(self, X: Any) -> FloatArray:
        _check_fitted(self, "model_")
        return self.model_.decision_function(self.encoder_.transform(X))

    def predict_proba(self, X: Any) -> FloatArray:
        _check_fitted(self, "model_")
        return self.model_.predict_proba(self.encoder_.transform(X))

    def score(self, X: Any, ids: Any = None) -> ScoreResult:
        """Win probabilities with per-field log-odds contributions."""
        _check_fitted(self, "model_")
        cols = as_columns(X, "LogisticLeadScorer")
        matrix = self.encoder_.transform(cols)
        parts, baseline = self.model_.contributions(matrix)
        fields = [*self.categorical, *self.numeric]
        sources = np.asarray(self.encoder_.sources_)
        grouped = np.column_stack([parts[:, sources == f].sum(axis=1) for f in fields]).reshape(
            len(matrix), len(fields)
        )
        raw = baseline + grouped.sum(axis=1)
        return ScoreResult(
            ids=_ids(cols, ids, len(matrix)),
            values=0.5 * (1.0 + np.tanh(0.5 * raw)),
            contributions=grouped,
            feature_names=tuple(fields),
            baseline=baseline,
            raw=raw,
            name="lead_probability",
            units="log-odds",
        )


def _default_stages() -> tuple[str, ...]:
    from crmkit.pipeline import DEFAULT_PIPELINE  # lazy: scoring alone stays light

    return tuple(stage.name for stage in DEFAULT_PIPELINE.open_stages)


def _row_name(cols: Mapping[str, Array], row: int) -> str | None:
    return str(text(cols["id"])[row]) if "id" in cols else None


class NaiveBayesLeadScorer(_Params):
    """Frequency naive Bayes with the semantics of Odoo's predictive lead scoring.

    **Counting.** For each team (the ``team`` column; leads with no team form a group of
    their own, as in Odoo) and each value of each feature, the model counts won and lost
    leads; every count in a team's table starts at 0.1. The ``stage`` feature (the column
    named by ``stage``, when it is one of ``features``) follows the pipeline: a won lead
    counts in *every* stage of ``stages`` and a lost lead in every stage up to and including
    the one it reached, so a stage never reached in history still has counts. ``stages`` is
    the pipeline order; when not given it is the open stages of crmkit's default pipeline
    (prospecting, qualification, proposal, negotiation). A lost lead whose stage is not in
    the order, or missing, is refused; a won lead's stage is not read.

    **Probability.** ``P = Pw / (Pw + Pl)`` with ``Pw = team_won / team_total *
    prod(won[v] / won_total)`` over the lead's values (``Pl`` likewise). ``team_won`` is
    the team's won count + 0.1. For an ordinary feature ``won_total`` sums the won counts
    of that feature's values in the team's table; for the stage it is ``team_won`` (Odoo
    divides the stage factor by the team's totals). Values missing from the lead or from
    the team's table are skipped. Probabilities are clamped to ``[0.0001, 0.9999]``.

    **Tables.** A lead uses its team's table; a lead of a team not seen in training uses
    the all-teams table, built as Odoo builds it: the sum of every team's smoothed rows
    (so each team adds its own 0.1 to each value it has). A team with no won (or no lost)
    lead in training cannot be scored: its leads get ``scoreable=False`` and a reason
    (NaN in :meth:`predict_proba`) instead of a number from the 0.1 prior; they never
    borrow another team's table.

    :meth:`score` explains in log-odds: ``baseline`` (one per row) is the team prior
    ``log(team_won / team_lost)`` of the lead's table, and each feature's column is
    ``log((won[v] / won_total) / (lost[v] / lost_total))`` (0 when skipped), so the
    factors of a lead are its own values only and ``raw = baseline +
    contributions.sum(axis=1)``. Scores are meant for open leads; pass them only.

    >>> import numpy as np
    >>> X = {"source": np.array(["web", "web", "ads", "ads"])}
    >>> nb = NaiveBayesLeadScorer(["source"]).fit(X, [1, 0, 0, 0])
    >>> nb.predict_proba({"source": np.array(["web"])})[:, 1].round(4).tolist()
    [0.4862]
    >>> stage = {"stage": np.array(["S0", "S0", "S0", "S0", "S2"])}
    >>> nb = NaiveBayesLeadScorer(["stage"], stages=["S0", "S1", "S2"])
    >>> nb.fit(stage, ["won", "won", "lost", "lost", "lost"]).predict_proba(
    ...     {"stage": np.array(["S1"])})[:, 1].tolist()  # 2.1 / (2.1 + 1.1)
    [0.65625]
    """

    _param_names = ("features", "team", "stage", "stages")
    _learned_names = ("teams_", "categories_", "won_", "lost_", "team_won_", "team_lost_")

    def __init__(
        self,
        features: Sequence[str] = (),
        *,
        team: str | None = None,
        stage: str | None = "stage",
        stages: Sequence[str] | None = None,
    ) -> None:
        self.features = tuple(features)
        self.team = team
        self.stage = stage
        self.stages = None if stages is None else tuple(stages)

    @property
    def _stage_feature(self) -> str | None:
        return self.stage if self.stage is not None and self.stage in self.features else None

    def _stage_order(self) -> Array:
        order = _default_stages() if self.stages is None else self.stages
        names = np.asarray([str(s) for s in order], dtype=str)
        if len(names) == 0 or (names == "").any() or len(np.unique(names)) != len(names):
            raise ValidationError(
                "NaiveBayesLeadScorer",
                "stages",
                list(order),
                "must name each pipeline stage once, in order",
            )
        return names

    def fit(self, X: Any, y: Any) -> NaiveBayesLeadScorer:
        """Count won and lost leads per team, feature value and stage; returns self."""
        if not self.features:
            raise ValidationError("NaiveBayesLeadScorer", "features", (), "name features")
        cols = as_columns(X, "NaiveBayesLeadScorer")
        n = _rows(cols)
        won = _labels(y, "NaiveBayesLeadScorer", n) == 1
        teams, slot = np.unique(self._team_text(cols, n), return_inverse=True)
        slot = slot.reshape(-1)
        n_teams = len(teams)
        team_won = np.bincount(slot[won], minlength=n_teams).astype(np.float64)
        team_lost = np.bincount(slot[~won], minlength=n_teams).astype(np.float64)
        categories: dict[str, list[str]] = {}
        won_counts: dict[str, list[list[float]]] = {}
        lost_counts: dict[str, list[list[float]]] = {}
        for name in self.features:
            values = text(_column(cols, name, "NaiveBayesLeadScorer"))
            if name == self._stage_feature:
                cats, table_won, table_lost = self._stage_counts(cols, values, won, slot, team_won)
            else:
                present = values != ""
                cats, code = np.unique(values[present], return_inverse=True)
                key = slot[present] * len(cats) + code.reshape(-1)
                size = n_teams * len(cats)
                w = won[present]
                shape = (n_teams, len(cats))
                table_won = np.bincount(key[w], minlength=size).reshape(shape).astype(np.float64)
                table_lost = np.bincount(key[~w], minlength=size).reshape(shape).astype(np.float64)
            categories[name] = [str(c) for c in cats]
            won_counts[name] = table_won.tolist()
            lost_counts[name] = table_lost.tolist()
        self.teams_ = [str(t) for t in teams]
        self.categories_ = categories
        self.won_ = won_counts
        self.lost_ = lost_counts
        self.team_won_ = team_won.tolist()
        self.team_lost_ = team_lost.tolist()
        return self

    def _stage_counts(
        self,
        cols: Mapping[str, Array],
        values: Array,
        won: Array,
        slot: Array,
        team_won: FloatArray,
    ) -> tuple[Array, FloatArray, FloatArray]:
        """Won leads in every stage; lost leads in every stage up to the one reached."""
        order = self._stage_order()
        k = len(order)
        reached, known = locate(values, order)
        bad = ~won & ~known
        if bad.any():
            row = int(np.argmax(bad))
            raise ValidationError(
                "NaiveBayesLeadScorer",
                self._stage_feature,
                str(values[row]),
                f"a lost lead needs the stage it reached, one of {order.tolist()} "
                "(pass the pipeline order as stages=[...])",
                record_id=_row_name(cols, row),
            )
        n_teams = len(team_won)
        lost = ~won
        counts = np.bincount(slot[lost] * k + reached[lost], minlength=n_teams * k)
        at_stage: FloatArray = counts.reshape(n_teams, k).astype(np.float64)
        table_lost: FloatArray = np.cumsum(at_stage[:, ::-1], axis=1)[:, ::-1]
        table_won = np.repeat(team_won[:, None], k, axis=1)
        return order, table_won, table_lost

    def _team_text(self, cols: Mapping[str, Array], n: int) -> Array:
        if self.team is None:
            return np.full(n, "", dtype=str)
        return text(_column(cols, self.team, "NaiveBayesLeadScorer"))

    def _tables(self) -> tuple[FloatArray, FloatArray, Array]:
        """Smoothed team totals, all-teams first (row 0), and which tables can score."""
        raw_won = np.asarray(self.team_won_, dtype=np.float64)
        raw_lost = np.asarray(self.team_lost_, dtype=np.float64)
        won = raw_won + SMOOTHING  # every team in training has rows: each adds its 0.1
        lost = raw_lost + SMOOTHING
        team_won = np.concatenate([[won.sum()], won])
        team_lost = np.concatenate([[lost.sum()], lost])
        scoreable = np.concatenate([[True], (raw_won > 0) & (raw_lost > 0)])
        return team_won, team_lost, scoreable

    def _explained(self, X: Any) -> tuple[Mapping[str, Array], FloatArray, FloatArray, Array]:
        """Columns, per-row team prior, per-feature log-odds, and why rows are unscoreable."""
        _check_fitted(self, "won_")
        cols = as_columns(X, "NaiveBayesLeadScorer")
        n = _rows(cols)
        team_text = self._team_text(cols, n)
        teams = np.asarray(self.teams_, dtype=str)
        pos, known = locate(team_text, teams)
        slot = np.where(known, pos + 1, 0)  # 0: the all-teams table
        team_won, team_lost, table_ok = self._tables()
        prior = np.log(team_won / team_lost)[slot]
        parts = np.zeros((n, len(self.features)))
        for j, name in enumerate(self.features):
            values = text(_column(cols, name, "NaiveBayesLeadScorer"))
            cats = np.asarray(self.categories_[name], dtype=str)
            if len(cats) == 0:
                continue
            raw_won = np.asarray(self.won_[name], dtype=np.float64).reshape(-1, len(cats))
            raw_lost = np.asarray(self.lost_[name], dtype=np.float64).reshape(-1, len(cats))
            if raw_won.shape != raw_lost.shape or len(raw_won) != len(teams):
                raise ValidationError(
                    "NaiveBayesLeadScorer",
                    "won_",
                    raw_won.shape,
                    f"does not have one row per team ({len(teams)}); fit the model again",
                )
            in_team = (raw_won + raw_lost) > 0
            team_rows_won = np.where(in_team, raw_won + SMOOTHING, 0.0)
            team_rows_lost = np.where(in_team, raw_lost + SMOOTHING, 0.0)
            won = np.vstack([team_rows_won.sum(axis=0), team_rows_won])
            lost = np.vstack([team_rows_lost.sum(axis=0), team_rows_lost])
            in_table = np.vstack([in_team.any(axis=0), in_team])
            if name == self._stage_feature:
                won_total, lost_total = team_won[:, None], team_lost[:, None]
            else:
                won_total = won.sum(axis=1, keepdims=True)
                lost_total = lost.sum(axis=1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(in_table, np.log((won / won_total) / (lost / lost_total)), 0.0)
            at, seen = locate(values, cats)
            parts[seen, j] = ratio[slot[seen], at[seen]]
        return cols, prior, parts, self._reasons(table_ok)[slot]

    def _reasons(self, table_ok: Array) -> Array:
        """Why each table (all-teams first) cannot score: ``""`` when it can."""
        texts = [""]
        for team, won, ok in zip(self.teams_, self.team_won_, table_ok[1:], strict=True):
            missing = "won" if won == 0 else "lost"
            who = f"team {team!r} has" if team else "leads with no team have"
            texts.append("" if ok else f"{who} no {missing} leads in the training data")
        return np.asarray(texts, dtype=str)

    def predict_proba(self, X: Any) -> FloatArray:
        """``[P(lost), P(won)]`` per row, clamped to [0.0001, 0.9999]; NaN if unscoreable."""
        _, prior, parts, reasons = self._explained(X)
        p = np.clip(0.5 * (1.0 + np.tanh(0.5 * (prior + parts.sum(axis=1)))), *CLAMP)
        p[reasons != ""] = np.nan
        return np.column_stack([1.0 - p, p])

    def score(self, X: Any, ids: Any = None) -> ScoreResult:
        """Win probabilities explained in log-odds from the team prior (``baseline``)."""
        cols, prior, parts, reasons = self._explained(X)
        blocked = reasons != ""
        prior[blocked] = np.nan
        parts[blocked] = np.nan
        raw = prior + parts.sum(axis=1)
        return ScoreResult(
            ids=_ids(cols, ids, len(parts)),
            values=np.clip(0.5 * (1.0 + np.tanh(0.5 * raw)), *CLAMP),
            contributions=parts,
            feature_names=self.features,
            baseline=prior,
            raw=raw,
            name="lead_probability",
            units="log-odds",
            scoreable=~blocked,
            reasons=reasons,
        )
