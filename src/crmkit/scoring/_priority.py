"""Priority: normalised, weighted features into 0-100; ranks, percentiles, tiers, segments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crmkit.criteria import bind
from crmkit.errors import ValidationError
from crmkit.records import Account
from crmkit.scoring._inputs import Array, FloatArray, as_columns, locate, numbers, text
from crmkit.scoring._result import ScoreResult, Segments

NORMALISATIONS = ("minmax", "rank", "zscore")


def _values(feature: Any, what: str, field: str) -> FloatArray:
    if isinstance(feature, ScoreResult):
        return np.asarray(feature.values, dtype=np.float64)
    return numbers(feature, what, field)


def _aligned(feature: Any, ids: Array, what: str, field: str) -> FloatArray:
    """A feature's values in the order of ``ids``: a ScoreResult by its own ids."""
    if not isinstance(feature, ScoreResult):
        x = numbers(feature, what, field)
        if len(x) != len(ids):
            raise ValidationError(what, field, len(x), f"has {len(x)} values for {len(ids)} ids")
        return x
    at, found = locate(ids, feature.ids)
    if not found.all():
        missing = ids[np.argmax(~found)]
        raise ValidationError(
            what,
            field,
            str(missing),
            f"has no score for id {str(missing)!r} (the ScoreResult {feature.name!r} "
            f"holds {len(feature)} ids); score every id you prioritise",
            record_id=str(missing),
        )
    ordered = np.sort(feature.ids)
    twice = ordered[1:] == ordered[:-1]
    if twice.any():
        raise ValidationError(
            what, field, str(ordered[1:][twice][0]), "the ScoreResult has this id twice"
        )
    return np.asarray(feature.values, dtype=np.float64)[at]


def normalise(values: Any, method: str = "minmax") -> FloatArray:
    """Values mapped to [0, 1]; missing (NaN) values become 0.

    ``minmax``: ``(x - min) / (max - min)`` (all equal: 0.5); ``rank``: the average rank
    scaled to [0, 1] (ties share a rank); ``zscore``: ``z`` clipped to [-3, 3] mapped
    linearly onto [0, 1].

    >>> normalise([10.0, 20.0, 30.0]).tolist()
    [0.0, 0.5, 1.0]
    >>> normalise([5.0, 1.0, 5.0], "rank").tolist()
    [0.75, 0.0, 0.75]
    """
    x = _values(values, "normalise", "values")
    if method not in NORMALISATIONS:
        raise ValidationError("normalise", "method", method, f"use one of {NORMALISATIONS}")
    out = np.zeros(len(x))
    ok = np.isfinite(x)
    if not ok.any():
        return out
    v = x[ok]
    if method == "minmax":
        low, high = v.min(), v.max()
        out[ok] = 0.5 if high == low else (v - low) / (high - low)
    elif method == "rank":
        out[ok] = 0.5 if len(v) == 1 else (average_ranks(v) - 1) / (len(v) - 1)
    else:
        sd = v.std()
        z = np.zeros(len(v)) if sd == 0 else (v - v.mean()) / sd
        out[ok] = (np.clip(z, -3, 3) + 3) / 6
    return out


def average_ranks(values: Any) -> FloatArray:
    """1-based ranks, ascending; ties get the average of their ranks.

    Examples
    --------
    >>> average_ranks([30.0, 10.0, 20.0, 10.0]).tolist()  # the two 10s share ranks 1 and 2
    [4.0, 1.5, 3.0, 1.5]
    """
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    ends = np.concatenate([starts[1:], [len(x)]])
    group_rank = (starts + ends + 1) / 2.0  # average of 1-based ranks start+1..end
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def priority_scores(
    features: Mapping[str, Any],
    weights: Mapping[str, float],
    *,
    ids: Any,
    normalisation: str | Mapping[str, str] = "minmax",
    lower_is_better: Sequence[str] = (),
) -> ScoreResult:
    """Weighted features (each normalised to [0, 1]) as a 0-100 priority score.

    ``features`` maps a name to an array aligned with ``ids`` (position ``i`` is
    ``ids[i]``) or to a :class:`ScoreResult` (engagement, fit, a lead score), which is
    lined up by its own ids: its rows may come in any order and it may hold more ids
    than asked for (normalisation then runs over the ``ids`` given only), but an id of
    ``ids`` it has no score for, or an id it holds twice, is a ``ValidationError``.
    ``ids`` must be unique.
    ``weights`` are >= 0 and are used relative to their sum. Features in
    ``lower_is_better`` are flipped (``1 - normalised``), e.g. days since last touch.
    The contribution of a feature is ``100 * weight * normalised / sum(weights)``; they
    add up to the score.

    >>> r = priority_scores({"fit": [10.0, 50.0, 30.0], "days_idle": [3.0, 90.0, 10.0]},
    ...                     {"fit": 3, "days_idle": 1}, ids=["a", "b", "c"],
    ...                     lower_is_better=["days_idle"])
    >>> r.values.round(1).tolist()
    [25.0, 75.0, 60.5]
    >>> r.top(1).ids.tolist(), r.factors("b")
    (['b'], ['fit +75'])
    """
    record_ids = np.asarray(ids)
    if record_ids.ndim != 1:
        raise ValidationError("priority_scores", "ids", record_ids.shape, "must be one id per row")
    ordered = np.sort(record_ids)
    twice = ordered[1:] == ordered[:-1]
    if twice.any():
        raise ValidationError(
            "priority_scores", "ids", str(ordered[1:][twice][0]), "appears twice in ids"
        )
    if not weights:
        raise ValidationError("priority_scores", "weights", weights, "give at least one weight")
    total = 0.0
    for name, weight in weights.items():
        if name not in features:
            raise ValidationError(
                "priority_scores",
                "weights",
                name,
                f"is not a feature; features: {sorted(features)}",
            )
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not (np.isfinite(weight) and weight >= 0)
        ):
            raise ValidationError(
                "priority_scores", f"weights[{name!r}]", weight, "must be a number >= 0"
            )
        total += float(weight)
    if total == 0:
        raise ValidationError("priority_scores", "weights", weights, "must not all be 0")
    for name in lower_is_better:
        if name not in weights:
            raise ValidationError("priority_scores", "lower_is_better", name, "has no weight")
    names = list(weights)
    contributions = np.zeros((len(record_ids), len(names)))
    for j, name in enumerate(names):
        x = _aligned(features[name], record_ids, "priority_scores", name)
        method = (
            normalisation.get(name, "minmax")
            if isinstance(normalisation, Mapping)
            else normalisation
        )
        scaled = normalise(x, method)
        if name in lower_is_better:
            scaled = np.where(np.isfinite(x), 1.0 - scaled, 0.0)
        contributions[:, j] = 100.0 * float(weights[name]) / total * scaled
    return ScoreResult(
        ids=record_ids,
        values=contributions.sum(axis=1),
        contributions=contributions,
        feature_names=tuple(names),
        name="priority",
    )


def ranks(values: Any) -> Array:
    """Rank 1 = highest score; ties share the best rank (1, 2, 2, 4). NaN ranks last.

    >>> ranks([5.0, 9.0, 5.0, 1.0]).tolist()
    [2, 1, 2, 4]
    """
    x = np.nan_to_num(_values(values, "ranks", "values"), nan=-np.inf)
    ordered = np.sort(-x)
    return (np.searchsorted(ordered, -x, side="left") + 1).astype(np.int64)


def percentiles(values: Any) -> FloatArray:
    """Share of records (0-100) scoring at or below each record.

    >>> percentiles([5.0, 9.0, 5.0, 1.0]).tolist()
    [75.0, 100.0, 75.0, 25.0]
    """
    x = np.nan_to_num(_values(values, "percentiles", "values"), nan=-np.inf)
    if len(x) == 0:
        return np.zeros(0)
    return 100.0 * np.searchsorted(np.sort(x), x, side="right") / len(x)


def tiers(
    values: Any,
    *,
    thresholds: Sequence[float] | None = None,
    quantiles: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
) -> Array:
    """A tier label per record, best tier first in ``labels``.

    Give ascending ``thresholds`` (a score >= threshold k is above cut k) or ascending
    ``quantiles`` in (0, 1) that are turned into thresholds over the scores. With ``c``
    cuts there are ``c + 1`` tiers, labelled ``A, B, C ...`` by default (``A`` = best).

    >>> tiers([10.0, 55.0, 80.0], thresholds=[50, 75]).tolist()
    ['C', 'B', 'A']
    >>> tiers([1.0, 2.0, 3.0, 4.0], quantiles=[0.5], labels=["hot", "cold"]).tolist()
    ['cold', 'cold', 'hot', 'hot']
    """
    x = _values(values, "tiers", "values")
    if (thresholds is None) == (quantiles is None):
        raise ValidationError("tiers", None, None, "give exactly one of thresholds= or quantiles=")
    if quantiles is not None:
        q = np.asarray(quantiles, dtype=np.float64)
        if ((q <= 0) | (q >= 1)).any() or (np.diff(q) <= 0).any():
            raise ValidationError("tiers", "quantiles", list(quantiles), "must rise within (0, 1)")
        finite = x[np.isfinite(x)]
        cuts = np.quantile(finite, q) if len(finite) else np.full(len(q), np.inf)
    else:
        cuts = np.asarray(thresholds, dtype=np.float64)
        if (np.diff(cuts) < 0).any() or not np.isfinite(cuts).all():
            raise ValidationError(
                "tiers", "thresholds", list(cuts), "must be finite and ascending"
            )
    names = (
        list(labels) if labels is not None else [chr(ord("A") + i) for i in range(len(cuts) + 1)]
    )
    if len(names) != len(cuts) + 1:
        raise ValidationError(
            "tiers", "labels", names, f"need {len(cuts) + 1} labels for {len(cuts)} cuts"
        )
    level = np.searchsorted(cuts, np.nan_to_num(x, nan=-np.inf), side="right")
    return np.asarray(names[::-1], dtype=str)[level]


def fit_engagement_matrix(
    fit: Any,
    engagement: Any,
    *,
    ids: Any = None,
    fit_cuts: Sequence[float] | None = None,
    engagement_cuts: Sequence[float] | None = None,
) -> Segments:
    """The 3 x 3 fit x engagement matrix: ``A1`` (best fit, most engaged) .. ``C3``.

    The letter is the fit tier (A high), the digit the engagement tier (1 high). Cuts are
    two ascending thresholds each; by default the terciles of each score. Scores given as
    :class:`ScoreResult` are lined up by id (``ids``: by default the fit's ids), as in
    :func:`priority_scores`.

    >>> m = fit_engagement_matrix([90.0, 10.0, 50.0], [1.0, 30.0, 12.0], ids=["a", "b", "c"])
    >>> m.labels.tolist()
    ['A3', 'C1', 'B2']
    """
    if ids is None:
        n = len(_values(fit, "fit_engagement_matrix", "fit"))
        ids = fit.ids if isinstance(fit, ScoreResult) else np.arange(n)
    ids = np.asarray(ids)
    f = _aligned(fit, ids, "fit_engagement_matrix", "fit")
    e = _aligned(engagement, ids, "fit_engagement_matrix", "engagement")
    letter = _tier(f, fit_cuts, ["A", "B", "C"])
    digit = _tier(e, engagement_cuts, ["1", "2", "3"])
    names = tuple(a + b for a in "ABC" for b in "123")
    return Segments(ids=np.asarray(ids), labels=np.char.add(letter, digit), names=names)


def _tier(x: FloatArray, cuts: Sequence[float] | None, labels: list[str]) -> Array:
    if cuts is None:
        return tiers(x, quantiles=[1 / 3, 2 / 3], labels=labels)
    if len(cuts) != 2:
        raise ValidationError("fit_engagement_matrix", "cuts", list(cuts), "give two thresholds")
    return tiers(x, thresholds=cuts, labels=labels)


def segment_by_criteria(
    source: Any,
    segments: Mapping[str, Any],
    *,
    record_type: type[Any] = Account,
    ids: Any = None,
    default: str = "other",
) -> Segments:
    """Segments from criteria, tried in order (first match wins; else ``default``).

    ``source`` is a store (columns are read from the record type's repository), a dict of
    columns or a DataFrame.

    >>> from crmkit import F
    >>> import numpy as np
    >>> cols = {"id": np.array(["a", "b", "c"]), "employees": np.array([5000.0, 40.0, 300.0])}
    >>> s = segment_by_criteria(cols, {"enterprise": F.employees >= 1000,
    ...                                "mid-market": F.employees >= 200})
    >>> s.labels.tolist(), s.sizes()
    (['enterprise', 'other', 'mid-market'], {'enterprise': 1, 'mid-market': 1, 'other': 1})
    """
    bound = {name: bind(c, record_type) for name, c in segments.items()}
    if default in bound:
        raise ValidationError("segment_by_criteria", "default", default, "is also a segment name")
    if hasattr(source, "repository") and hasattr(source, "transaction"):
        fields = sorted({f for b in bound.values() for f in b.fields} | {"id"})
        cols = source.repository(record_type).columns(fields)
    else:
        cols = as_columns(source, "segment_by_criteria")
    n = len(next(iter(cols.values()))) if cols else 0
    record_ids = (
        np.asarray(ids)
        if ids is not None
        else (text(cols["id"]) if "id" in cols else np.arange(n))
    )
    names = [*bound, default]
    code = np.full(n, len(bound), dtype=np.int64)
    for i, b in reversed(list(enumerate(bound.values()))):
        code[b.mask(cols)] = i
    return Segments(ids=record_ids, labels=np.asarray(names, dtype=str)[code], names=tuple(names))


def segment_by_quantiles(
    scores: Any,
    quantiles: Sequence[float] = (0.5, 0.8),
    *,
    labels: Sequence[str] | None = None,
    ids: Any = None,
) -> Segments:
    """Segments from quantiles of any score; the first label is the top segment.

    >>> s = segment_by_quantiles([1.0, 2.0, 3.0, 4.0, 5.0], [0.5], labels=["top", "rest"])
    >>> s.sizes()
    {'top': 3, 'rest': 2}
    """
    x = _values(scores, "segment_by_quantiles", "scores")
    if ids is None:
        ids = scores.ids if isinstance(scores, ScoreResult) else np.arange(len(x))
    names = (
        list(labels) if labels is not None else [f"Q{i + 1}" for i in range(len(quantiles) + 1)]
    )
    label = tiers(x, quantiles=quantiles, labels=names)
    return Segments(ids=np.asarray(ids), labels=label, names=tuple(names))
