"""Scoring over Dask: engagement (partial sums per account), fit, priority, segments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from crmkit.dask._frames import broadcast, columns_of, dask_module, frame, need, text_frame, tree
from crmkit.errors import ValidationError
from crmkit.records import ActivityKind
from crmkit.scoring import FitModel, ScoreResult, tiers
from crmkit.scoring import engagement_scores as engagement_kernel
from crmkit.scoring import fit_scores as fit_kernel
from crmkit.scoring import priority_scores as priority_kernel
from crmkit.scoring._inputs import instant, text

Array = np.ndarray[Any, Any]

_ACTIVITY_KINDS = frozenset(k.value for k in ActivityKind)


def _kind(key: Any) -> str:
    return str(key.value) if hasattr(key, "value") and isinstance(key.value, str) else str(key)


def _keep(mapping: Mapping[Any, Any] | None, drop: set[str]) -> dict[Any, Any] | None:
    if mapping is None:
        return None
    return {k: v for k, v in mapping.items() if _kind(k) not in drop}


def _partial_engagement(
    part: Any,
    *,
    entity: str,
    weights: Mapping[Any, float],
    half_lives: Any,
    window: Any,
    now: datetime | np.datetime64,
    contacts: Any,
    ids: int | None,
    kind_names: Sequence[str] | None,
    custom: frozenset[str],
    names: Sequence[str],
    id_dtype: Any,
) -> Any:
    """One partition's sums per account: per kind (``names``), or the total alone
    (``names == [TOTAL]``); caps apply to the combined sums, not here."""
    pd = dask_module("pandas")
    cols = columns_of(part, "crmkit.dask.engagement_scores")
    absent: set[str] = set()
    if custom:  # kinds crmkit does not know must be in the data; only this part is seen here
        absent = set(custom) - _kinds_in(np.unique(cols["kind"]), kind_names)
    per_kind = list(names) != [TOTAL]
    result = engagement_kernel(
        cols,
        weights=_keep(weights, absent) or {},
        now=now,
        half_lives=_keep(half_lives, absent) if isinstance(half_lives, Mapping) else half_lives,
        window=window,
        entity=entity,
        contacts=contacts,
        ids=ids,
        kind_names=kind_names,
        explain=per_kind,
    )
    if per_kind:
        assert result.contributions is not None
        table = pd.DataFrame(result.contributions, columns=list(result.feature_names))
        table = table.reindex(columns=list(names), fill_value=0.0)
    else:
        table = pd.DataFrame({TOTAL: result.values})
    table.insert(0, entity, pd.Series(result.ids, dtype=id_dtype))
    return table


TOTAL = "__total__"


def _dense(table: Any, names: Sequence[str]) -> Array:
    """A partial of account positions ``0..n-1`` as an ``(n, kinds)`` array."""
    return np.asarray(table[list(names)].to_numpy(dtype=np.float64))


def _add(a: Array, b: Array) -> Array:
    """Two dense partials added (the shorter one reaches fewer positions)."""
    out = np.zeros((max(len(a), len(b)), a.shape[1]))
    out[: len(a)] += a
    out[: len(b)] += b
    return out


def _kinds_in(values: Array, kind_names: Sequence[str] | None) -> set[str]:
    """The kind names among ``values`` (text, or integer codes into ``kind_names``)."""
    if kind_names is None or values.dtype.kind not in "iu":
        return {str(v) for v in values.tolist()}
    return {_kind(kind_names[int(c)]) for c in values.tolist() if 0 <= int(c) < len(kind_names)}


def engagement_scores(
    events: Any,
    *,
    weights: Mapping[str, float],
    now: datetime | np.datetime64,
    half_lives: Mapping[str, Any] | float | timedelta | None = None,
    window: float | timedelta | None = None,
    caps: Mapping[str, float] | None = None,
    total_cap: float | None = None,
    entity: str = "account_id",
    ids: Any = None,
    contacts: Any = None,
    kind_names: Sequence[str] | None = None,
    explain: bool = False,
    split_every: int | None = None,
) -> ScoreResult:
    """:func:`crmkit.scoring.engagement_scores` over events in a Dask DataFrame or Parquet.

    Each partition runs crmkit's kernel (decay as of the one ``now`` given) and yields
    its sum per account and kind; Dask adds those partial sums up in a tree
    (``split_every`` partials at a time) and ``caps``/``total_cap`` apply to the
    totals, as in one process. The accounts' scores come back to the caller as a
    :class:`~crmkit.scoring.ScoreResult` (one row per account: 1e7 accounts fit on one
    machine even when 1e9 events do not). Values equal the single-process scores up to
    the order of float additions.

    ``ids``: an int ``n`` when ``entity`` holds positions ``0..n-1``, or the account ids
    in result order (an event of another account is an error, as in one process).
    ``kind_names``: the kinds when the ``kind`` column holds integer codes (the compact
    form for billions of events). Without ``caps`` or ``explain`` each partition sends
    one total per account, else one sum per account and kind.
    ``parent_ids``/``rollup`` are not taken here: roll the scores up with
    :func:`crmkit.dask.rollup` or :func:`crmkit.hierarchy.rollup`.

    Examples
    --------
    >>> import dask, numpy as np, pandas as pd, dask.dataframe as dd
    >>> from datetime import datetime, timezone
    >>> events = dd.from_pandas(pd.DataFrame({
    ...     "account_id": ["a", "b", "a", "b"],
    ...     "kind": ["meeting", "call", "email_opened", "meeting"],
    ...     "at": pd.to_datetime(["2026-03-01", "2026-03-01", "2026-02-01", "2026-01-01"])}),
    ...     npartitions=2)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     r = engagement_scores(events, weights={"meeting": 10, "call": 5, "email_opened": 1},
    ...                           half_lives=30, now=datetime(2026, 3, 1, tzinfo=timezone.utc))
    >>> r.ids.tolist(), r.values.round(2).tolist()
    (['a', 'b'], [10.52, 7.56])
    """
    what = "crmkit.dask.engagement_scores"
    wanted = [entity, "kind", "at", *(["contact_id"] if contacts is not None else [])]
    df = frame(events, wanted, what)
    need(df, wanted, what)
    df = df[wanted]
    instant(now, what, "now")
    if not isinstance(weights, Mapping):
        raise ValidationError(what, "weights", weights, "must be a dict of kind -> number")
    keyed = [*weights, *(half_lives if isinstance(half_lives, Mapping) else ()), *(caps or ())]
    custom = frozenset(_kind(k) for k in keyed) - _ACTIVITY_KINDS
    missing: set[str] = set()
    if custom:
        seen = _kinds_in(np.asarray(df["kind"].dropna().unique().compute()), kind_names)
        missing = set(custom) - seen
    # the kernel checks every argument once, on no events (and names a custom kind that no
    # event has, exactly as it would on all of them)
    present = set(custom) - missing
    # one event of no account and no kind (with no events at all the kernel's caps step
    # would meet an integer array)
    empty = {
        entity: np.array([-1]) if isinstance(ids, int) else np.array([""]),
        "kind": np.array([-1]) if kind_names is not None else np.array([""]),
        "at": np.array(["NaT"], dtype="datetime64[us]"),
        "contact_id": np.array([""]),
    }
    engagement_kernel(
        empty,
        weights=_keep(weights, present) or {},
        now=now,
        half_lives=_keep(half_lives, present) if isinstance(half_lives, Mapping) else half_lives,
        window=window,
        caps=_keep(caps, present),
        total_cap=total_cap,
        entity=entity,
        ids=ids if isinstance(ids, int) else None,
        contacts=contacts,
        kind_names=kind_names,
    )
    kinds = [_kind(k) for k, w in weights.items() if float(w) != 0]
    if kind_names is not None:  # the kernel's order: the kinds as kind_names lists them
        kinds = [_kind(k) for k in kind_names if _kind(k) in kinds]
    kinds = list(dict.fromkeys(kinds))
    names = kinds if caps or explain else [TOTAL]
    id_dtype = df._meta[entity].dtype
    pd = dask_module("pandas")
    meta = pd.DataFrame({entity: pd.Series([], dtype=id_dtype), **{n: [] for n in names}})
    meta = meta.astype(dict.fromkeys(names, np.float64))
    partials = df.map_partitions(
        _partial_engagement,
        entity=entity,
        weights=dict(weights),
        half_lives=half_lives,
        window=window,
        now=now,
        contacts=broadcast(contacts) if contacts is not None else None,
        ids=ids if isinstance(ids, int) else None,
        kind_names=None if kind_names is None else list(kind_names),
        custom=custom,
        names=names,
        id_dtype=id_dtype,
        meta=meta,
        align_dataframes=False,
    )
    if getattr(id_dtype, "kind", "O") in "iu":
        # account positions: each partial is a dense array, added up in a tree
        dask = dask_module("dask")
        dense_parts = [dask.delayed(_dense, pure=True)(p, names) for p in partials.to_delayed()]
        if dense_parts:
            matrix = dask.compute(tree(dense_parts, _add, split_every or 8))[0]
        else:
            matrix = np.zeros((0, len(names)))
        found = np.arange(len(matrix))
    else:
        summed = (
            partials.groupby(entity, sort=False)
            .sum(split_every=split_every, split_out=1)
            .compute()
        )
        found = text(np.asarray(summed.index).astype(object))
        order = np.argsort(found, kind="stable")
        found = found[order]
        matrix = summed[names].to_numpy(dtype=np.float64)[order]
    if isinstance(ids, int):
        result_ids: Array = np.arange(ids)
        dense = np.zeros((ids, len(names)))
        dense[found.astype(np.int64)] = matrix
        matrix = dense
    elif ids is not None:
        result_ids = text(np.asarray(ids))
        where = np.searchsorted(np.sort(result_ids), found)
        ordered = np.sort(result_ids)
        where = np.minimum(where, max(len(ordered) - 1, 0))
        bad = (ordered[where] != found) if len(ordered) else np.ones(len(found), dtype=bool)
        if bad.any():
            raise ValidationError(
                what,
                entity,
                str(found[np.argmax(bad)]),
                f"is not among the {len(result_ids)} ids given",
            )
        at = np.argsort(result_ids, kind="stable")[where]
        dense = np.zeros((len(result_ids), len(names)))
        dense[at] = matrix
        matrix = dense
    elif found.dtype.kind in "iu":
        result_ids = np.arange(int(found.max()) + 1 if len(found) else 0)
        dense = np.zeros((len(result_ids), len(names)))
        dense[found] = matrix
        matrix = dense
    else:
        result_ids = found
    if names == [TOTAL]:
        totals = matrix[:, 0] if len(matrix) else np.zeros(0)
        if total_cap is not None:
            totals = np.minimum(totals, float(total_cap))
        return ScoreResult(ids=result_ids, values=totals, name="engagement")
    for kind, cap in (caps or {}).items():
        if _kind(kind) in names:
            j = names.index(_kind(kind))
            np.minimum(matrix[:, j], float(cap), out=matrix[:, j])
    totals = matrix.sum(axis=1)
    if total_cap is not None:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scale = np.where(totals > total_cap, total_cap / totals, 1.0)
        matrix = matrix * scale[:, None]
        totals = matrix.sum(axis=1)
    return ScoreResult(
        ids=result_ids,
        values=totals,
        contributions=matrix if explain else None,
        feature_names=tuple(names) if explain else (),
        name="engagement",
    )


def _fit_part(part: Any, model: FitModel, id_column: str) -> Any:
    cols = columns_of(part, "crmkit.dask.fit_scores")
    result = fit_kernel(cols, model, ids=cols.get(id_column, None))
    return text_frame({id_column: part[id_column].to_numpy(), "fit": result.values}, part.index)


def fit_scores(accounts: Any, model: FitModel, *, id_column: str = "id") -> Any:
    """:func:`crmkit.scoring.fit_scores` per partition: a Dask DataFrame of
    ``id_column`` and ``fit`` (the model is sent once; each row's score is its own).

    Examples
    --------
    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> from crmkit import F
    >>> from crmkit.scoring import FitModel, PointsRule
    >>> model = FitModel(rules=(PointsRule(name="big", criteria=F.employees >= 1000,
    ...                                    points=30),))
    >>> accounts = dd.from_pandas(pd.DataFrame({"id": ["a", "b", "c"],
    ...                                         "employees": [5000, 50, 2000]}), npartitions=2)
    >>> fit_scores(accounts, model).compute(scheduler="synchronous")["fit"].tolist()
    [30.0, 0.0, 30.0]
    """
    what = "crmkit.dask.fit_scores"
    wanted = [id_column, *model.fields]
    df = frame(accounts, wanted, what)
    need(df, wanted, what)
    df = df[wanted]
    pd = dask_module("pandas")
    meta = pd.DataFrame(
        {
            id_column: pd.Series([], dtype=df._meta[id_column].dtype),
            "fit": pd.Series([], dtype=float),
        }
    )
    return df.map_partitions(_fit_part, broadcast(model), id_column, meta=meta)


def _bounds(part: Any, names: Sequence[str]) -> Any:
    pd = dask_module("pandas")
    low, high = {}, {}
    for name in names:
        x = part[name].to_numpy(dtype=np.float64, na_value=np.nan)
        x = x[np.isfinite(x)]
        low[name] = [x.min() if len(x) else np.nan]
        high[name] = [x.max() if len(x) else np.nan]
    return pd.concat([pd.DataFrame(low), pd.DataFrame(high)], keys=["low", "high"])


def _priority_part(
    part: Any,
    weights: Mapping[str, float],
    low: Mapping[str, float],
    high: Mapping[str, float],
    lower_is_better: Sequence[str],
    id_column: str,
) -> Any:
    # the global min and max ride along as two extra rows: the kernel then normalises
    # each partition exactly as it would all rows, and the two rows are dropped
    n = len(part)
    features = {
        name: np.concatenate(
            [part[name].to_numpy(dtype=np.float64, na_value=np.nan), [low[name], high[name]]]
        )
        for name in weights
    }
    result = priority_kernel(
        features, weights, ids=np.arange(n + 2), lower_is_better=lower_is_better
    )
    return text_frame(
        {id_column: part[id_column].to_numpy(), "priority": result.values[:n]}, part.index
    )


def priority_scores(
    features: Any,
    weights: Mapping[str, float],
    *,
    id_column: str = "id",
    lower_is_better: Sequence[str] = (),
) -> Any:
    """:func:`crmkit.scoring.priority_scores` (min-max normalisation) over a Dask
    DataFrame with one column per feature: a Dask DataFrame of ``id_column`` and
    ``priority``.

    The global minimum and maximum of each feature are computed first (one pass), then
    every partition is scored by crmkit's kernel against those bounds, so each score
    equals the single-process one exactly. Rank and z-score normalisation need every
    value at once and are not offered here.

    Examples
    --------
    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> feats = dd.from_pandas(pd.DataFrame({"id": ["a", "b", "c"], "fit": [10.0, 50.0, 30.0],
    ...     "days_idle": [3.0, 90.0, 10.0]}), npartitions=2)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     r = priority_scores(feats, {"fit": 3, "days_idle": 1},
    ...                         lower_is_better=["days_idle"]).compute()
    >>> r["priority"].round(1).tolist()
    [25.0, 75.0, 60.5]
    """
    what = "crmkit.dask.priority_scores"
    names = list(weights)
    df = frame(features, [id_column, *names], what)
    need(df, [id_column, *names], what)
    df = df[[id_column, *names]]
    priority_kernel(
        {name: np.zeros(0) for name in names},
        weights,
        ids=np.zeros(0),
        lower_is_better=lower_is_better,
    )
    pd = dask_module("pandas")
    bounds = df.map_partitions(
        _bounds,
        names,
        meta=pd.concat([pd.DataFrame({n: [0.0] for n in names})] * 2, keys=["low", "high"]).iloc[
            :0
        ],
    ).compute()
    low = {n: float(np.nanmin(bounds.loc["low"][n].to_numpy(), initial=np.inf)) for n in names}
    high = {n: float(np.nanmax(bounds.loc["high"][n].to_numpy(), initial=-np.inf)) for n in names}
    low = {n: (np.nan if np.isinf(v) else v) for n, v in low.items()}
    high = {n: (np.nan if np.isinf(v) else v) for n, v in high.items()}
    meta = pd.DataFrame(
        {
            id_column: pd.Series([], dtype=df._meta[id_column].dtype),
            "priority": pd.Series([], dtype=float),
        }
    )
    return df.map_partitions(
        _priority_part, dict(weights), low, high, list(lower_is_better), id_column, meta=meta
    )


def _segment_part(
    part: Any, column: str, cuts: Array | None, names: Sequence[str], id_column: str
) -> Any:
    x = part[column].to_numpy(dtype=np.float64, na_value=np.nan)
    if cuts is None:  # no finite score anywhere: every row is in the last segment
        label = np.asarray(names, dtype=str)[np.full(len(x), len(names) - 1)]
    else:
        label = tiers(x, thresholds=cuts.tolist(), labels=names)
    return text_frame({id_column: part[id_column].to_numpy(), "segment": label}, part.index)


def segment_by_quantiles(
    scores: Any,
    column: str,
    quantiles: Sequence[float] = (0.5, 0.8),
    *,
    labels: Sequence[str] | None = None,
    id_column: str = "id",
) -> Any:
    """:func:`crmkit.scoring.segment_by_quantiles` with the quantile cuts computed over
    all partitions: a Dask DataFrame of ``id_column`` and ``segment``.

    The cuts are exact (``numpy.quantile`` of every finite score, as in one process,
    not Dask's approximate quantiles): the score column (8 bytes per account) is
    gathered once, the cuts are computed and sent to every partition, which labels its
    rows with :func:`crmkit.scoring.tiers`.

    Examples
    --------
    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> s = dd.from_pandas(pd.DataFrame({"id": list("abcde"),
    ...                                  "fit": [1.0, 2.0, 3.0, 4.0, 5.0]}), npartitions=3)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     seg = segment_by_quantiles(s, "fit", [0.5], labels=["top", "rest"]).compute()
    >>> seg["segment"].tolist()
    ['rest', 'rest', 'top', 'top', 'top']
    """
    what = "crmkit.dask.segment_by_quantiles"
    df = frame(scores, [id_column, column], what)
    need(df, [id_column, column], what)
    df = df[[id_column, column]]
    names = (
        list(labels) if labels is not None else [f"Q{i + 1}" for i in range(len(quantiles) + 1)]
    )
    tiers(np.zeros(0), quantiles=quantiles, labels=names)  # the kernel checks the arguments
    values = df[column].astype(np.float64)
    finite = values[values.abs() < np.inf].compute().to_numpy(dtype=np.float64)
    cuts = np.quantile(finite, np.asarray(quantiles, dtype=np.float64)) if len(finite) else None
    pd = dask_module("pandas")
    meta = pd.DataFrame(
        {
            id_column: pd.Series([], dtype=df._meta[id_column].dtype),
            "segment": pd.Series([], dtype=str),
        }
    )
    return df.map_partitions(_segment_part, column, cuts, names, id_column, meta=meta)
