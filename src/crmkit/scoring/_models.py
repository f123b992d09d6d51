"""Predictive lead scoring: feature encoding, frequency naive Bayes, L2 logistic regression."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crmkit.errors import NotFittedError, ValidationError
from crmkit.scoring._inputs import Array, FloatArray, as_columns, numbers, text
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


class NaiveBayesLeadScorer(_Params):
    """Frequency naive Bayes with the semantics of Odoo's predictive lead scoring.

    For each ``team`` (a column; ``None``: one table for everybody) and each feature value
    it counts won and lost leads, every count starting at 0.1. A lead's probability is
    ``Pw / (Pw + Pl)`` with ``Pw = team_won / team_total * prod(won[v] / won_total)`` over
    its feature values (and ``Pl`` likewise), where ``team_won`` is the team's won count
    (+0.1), ``won_total`` sums the won counts of all values of that feature in the team's
    table, and values missing from the table (or from the lead) are skipped. Leads of a
    team with no table (a team unseen in training, or no team) use the table of all teams.
    A team with no wins (or no losses) keeps its own 0.1-smoothed prior: it never borrows
    another team's. Probabilities are clamped to ``[0.0001, 0.9999]``.

    :meth:`score` explains in log-odds, with ``baseline = 0``: the first column,
    ``"team prior"``, is ``log(team_won / team_lost)`` of the lead's table and each
    feature's column is ``log((won[v] / won_total) / (lost[v] / lost_total))`` (0 when
    skipped), so ``raw = contributions.sum(axis=1)`` is the log-odds and ``values`` the
    clamped ``1 / (1 + exp(-raw))``. Scores are meant for open leads; pass them only.

    >>> import numpy as np
    >>> X = {"source": np.array(["web", "web", "ads", "ads"])}
    >>> nb = NaiveBayesLeadScorer(["source"]).fit(X, [1, 0, 0, 0])
    >>> nb.predict_proba({"source": np.array(["web"])})[:, 1].round(4).tolist()
    [0.4862]
    """

    _param_names = ("features", "team")
    _learned_names = ("teams_", "categories_", "won_", "lost_", "team_won_", "team_lost_")

    def __init__(self, features: Sequence[str] = (), *, team: str | None = None) -> None:
        self.features = tuple(features)
        self.team = team

    def fit(self, X: Any, y: Any) -> NaiveBayesLeadScorer:
        if not self.features:
            raise ValidationError("NaiveBayesLeadScorer", "features", (), "name features")
        cols = as_columns(X, "NaiveBayesLeadScorer")
        n = _rows(cols)
        yy = _labels(y, "NaiveBayesLeadScorer", n)
        team_text = self._team_text(cols, n)
        teams = np.unique(team_text[team_text != ""])
        slot = np.searchsorted(teams, team_text) + 1
        slot[team_text == ""] = 0  # 0: the all-teams table; leads with no team only count there
        n_slots = len(teams) + 1
        won = yy == 1
        categories: dict[str, list[str]] = {}
        won_counts: dict[str, list[list[float]]] = {}
        lost_counts: dict[str, list[list[float]]] = {}
        for name in self.features:
            values = text(_column(cols, name, "NaiveBayesLeadScorer"))
            present = values != ""
            cats, code = np.unique(values[present], return_inverse=True)
            k = len(cats)
            code = code.reshape(-1)
            table_won = np.zeros((n_slots, k))
            table_lost = np.zeros((n_slots, k))
            s = slot[present]
            w = won[present]
            team_key = s * k + code
            table_won += np.bincount(team_key[w & (s > 0)], minlength=n_slots * k).reshape(
                n_slots, k
            )
            table_lost += np.bincount(team_key[~w & (s > 0)], minlength=n_slots * k).reshape(
                n_slots, k
            )
            table_won[0] = np.bincount(code[w], minlength=k)
            table_lost[0] = np.bincount(code[~w], minlength=k)
            categories[name] = [str(c) for c in cats]
            won_counts[name] = table_won.tolist()
            lost_counts[name] = table_lost.tolist()
        team_won = np.bincount(slot[won], minlength=n_slots).astype(np.float64)
        team_lost = np.bincount(slot[~won], minlength=n_slots).astype(np.float64)
        team_won[0], team_lost[0] = float(won.sum()), float((~won).sum())
        self.teams_ = [str(t) for t in teams]
        self.categories_ = categories
        self.won_ = won_counts
        self.lost_ = lost_counts
        self.team_won_ = team_won.tolist()
        self.team_lost_ = team_lost.tolist()
        return self

    def _team_text(self, cols: Mapping[str, Array], n: int) -> Array:
        if self.team is None:
            return np.full(n, "", dtype=str)
        return text(_column(cols, self.team, "NaiveBayesLeadScorer"))

    def _log_odds(self, X: Any) -> tuple[Mapping[str, Array], FloatArray]:
        _check_fitted(self, "won_")
        cols = as_columns(X, "NaiveBayesLeadScorer")
        n = _rows(cols)
        team_text = self._team_text(cols, n)
        teams = np.asarray(self.teams_, dtype=str)
        slot = np.zeros(n, dtype=np.int64)
        if len(teams):
            pos = np.minimum(np.searchsorted(teams, team_text), len(teams) - 1)
            known = teams[pos] == team_text
            slot[known] = pos[known] + 1
        parts = np.zeros((n, len(self.features) + 1))
        team_won = np.asarray(self.team_won_) + SMOOTHING
        team_lost = np.asarray(self.team_lost_) + SMOOTHING
        parts[:, 0] = np.log(team_won / team_lost)[slot]
        for j, name in enumerate(self.features, start=1):
            values = text(_column(cols, name, "NaiveBayesLeadScorer"))
            cats = np.asarray(self.categories_[name], dtype=str)
            if len(cats) == 0:
                continue
            raw_won = np.asarray(self.won_[name], dtype=np.float64).reshape(-1, len(cats))
            raw_lost = np.asarray(self.lost_[name], dtype=np.float64).reshape(-1, len(cats))
            in_table = (raw_won + raw_lost) > 0
            won = np.where(in_table, raw_won + SMOOTHING, 0.0)
            lost = np.where(in_table, raw_lost + SMOOTHING, 0.0)
            won_total = won.sum(axis=1, keepdims=True)
            lost_total = lost.sum(axis=1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(
                    in_table & (won_total > 0) & (lost_total > 0),
                    np.log((won / won_total) / (lost / lost_total)),
                    0.0,
                )
            pos = np.minimum(np.searchsorted(cats, values), len(cats) - 1)
            seen = cats[pos] == values
            parts[seen, j] = ratio[slot[seen], pos[seen]]
        return cols, parts

    def predict_proba(self, X: Any) -> FloatArray:
        """``[P(lost), P(won)]`` per row, clamped to [0.0001, 0.9999]."""
        _, parts = self._log_odds(X)
        p = np.clip(0.5 * (1.0 + np.tanh(0.5 * parts.sum(axis=1))), *CLAMP)
        return np.column_stack([1.0 - p, p])

    def score(self, X: Any, ids: Any = None) -> ScoreResult:
        """Win probabilities with log-odds contributions (the prior is ``team prior``)."""
        cols, parts = self._log_odds(X)
        raw = parts.sum(axis=1)
        return ScoreResult(
            ids=_ids(cols, ids, len(parts)),
            values=np.clip(0.5 * (1.0 + np.tanh(0.5 * raw)), *CLAMP),
            contributions=parts,
            feature_names=("team prior", *self.features),
            baseline=0.0,
            raw=raw,
            name="lead_probability",
            units="log-odds",
        )
