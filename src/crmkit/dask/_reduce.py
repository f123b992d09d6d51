"""Roll-ups and pipeline metrics: a kernel per partition, partials reduced in a tree."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from crmkit.dask._frames import broadcast, columns_of, dask_module, frame, need, tree
from crmkit.errors import NotFound, ValidationError
from crmkit.hierarchy import AccountHierarchy, RollupResult
from crmkit.hierarchy import rollup as rollup_kernel
from crmkit.hierarchy._rollup import HOWS
from crmkit.pipeline import PipelineData
from crmkit.pipeline._data import Context
from crmkit.pipeline._metrics import SUMS, summary_ratios, summary_sums
from crmkit.pipeline._stages import DEFAULT_PIPELINE, Pipeline
from crmkit.pipeline._table import Table
from crmkit.scoring._inputs import text

Array = np.ndarray[Any, Any]


# -- roll-ups ---------------------------------------------------------------------------


def _rollup_part(
    part: Any, h: AccountHierarchy, how: str, column: str, id_column: str
) -> tuple[Array, Array, Array]:
    """(rolled-up values, subtree counts, own has-value) of one partition's values."""
    ids = text(part[id_column].to_numpy(dtype=object, na_value=""))
    at = h.indices(ids)
    if (at < 0).any():
        raise NotFound("Account", str(ids[np.argmax(at < 0)]))
    values = np.full(len(h), np.nan)
    raw = part[column].to_numpy(dtype=np.float64, na_value=np.nan)
    if len(np.unique(at)) < len(at):
        twice = np.sort(at)[1:][np.diff(np.sort(at)) == 0][0]
        raise ValidationError(
            "Rollup", id_column, str(h.ids[twice]), "has two values; give one per account"
        )
    values[at] = raw
    inner = "sum" if how == "mean" else how
    result = rollup_kernel(h, values, how=inner)
    return np.asarray(result.values), np.asarray(result.counts), ~np.isnan(values)


def _rollup_combine(how: str) -> Callable[[Any, Any], Any]:
    def combine(a: tuple[Array, Array, Array], b: tuple[Array, Array, Array]) -> Any:
        if (a[2] & b[2]).any():
            raise ValidationError(
                "Rollup", "values", int(np.argmax(a[2] & b[2])), "an account has two values"
            )
        if how == "min":
            values = np.fmin(a[0], b[0])
        elif how == "max":
            values = np.fmax(a[0], b[0])
        else:
            values = a[0] + b[0]
        return values, a[1] + b[1], a[2] | b[2]

    return combine


def rollup(
    hierarchy: AccountHierarchy,
    values: Any,
    how: str = "sum",
    *,
    column: str = "value",
    id_column: str = "account_id",
    split_every: int = 8,
) -> RollupResult:
    """:func:`crmkit.hierarchy.rollup` of values held in a Dask DataFrame (one row per
    account: ``id_column`` and ``column``; accounts without a row have no value).

    The hierarchy is one task of the graph (sent once to each worker); each partition
    rolls its own values up over the whole hierarchy with crmkit's kernel, and the
    partial roll-ups are reduced in a tree (``split_every`` at a time): sums and counts
    add, minima and maxima take the least and greatest, a mean is the summed sum over
    the summed count. The result is the single-process :class:`RollupResult` (up to the
    order of float additions for ``sum`` and ``mean``).

    Examples
    --------
    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr", "us"], ["", "hq", "eu", "hq"])
    >>> revenue = dd.from_pandas(pd.DataFrame({"account_id": ["hq", "eu", "fr"],
    ...                                        "value": [10.0, 5.0, 2.0]}), npartitions=2)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     total = rollup(h, revenue)
    >>> total.get("hq"), total.get("eu"), total.count("hq"), total.members("hq")
    (17.0, 7.0, 3, ['hq', 'eu', 'fr'])
    """
    if how not in HOWS:
        raise ValidationError("Rollup", "how", how, f"must be one of {', '.join(HOWS)}")
    what = "crmkit.dask.rollup"
    df = frame(values, [id_column, column], what)
    need(df, [id_column, column], what)
    dask = dask_module("dask")
    shared = broadcast(hierarchy)
    parts = [
        dask.delayed(_rollup_part, pure=True)(p, shared, how, column, id_column)
        for p in df[[id_column, column]].to_delayed()
    ]
    n = len(hierarchy)
    if not parts:
        return rollup_kernel(hierarchy, np.full(n, np.nan), how=how)
    total, counts, has = dask.compute(tree(parts, _rollup_combine(how), split_every))[0]
    if how == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
    total.setflags(write=False)
    has.setflags(write=False)
    counts.setflags(write=False)
    return RollupResult(hierarchy, how, total, has, counts=counts)


# -- pipeline metrics -------------------------------------------------------------------


def _summary_part(
    part: Any,
    by: Sequence[str],
    context: Mapping[str, Any],
    pipeline: Pipeline,
    cycle_start: str,
    labels: str,
) -> tuple[dict[str, Array], dict[str, Array], dict[str, int]]:
    data = PipelineData.from_columns(columns_of(part, "crmkit.dask.pipeline_summary"), **context)
    return summary_sums(Context(data, labels), pipeline, list(by), cycle_start)


def _summary_combine(names: Sequence[str]) -> Callable[[Any, Any], Any]:
    def combine(a: Any, b: Any) -> Any:
        missing = {k: a[2].get(k, 0) + b[2].get(k, 0) for k in {**a[2], **b[2]}}
        if not names:
            return {}, {k: a[1][k] + b[1][k] for k in SUMS}, missing
        keys = [np.concatenate([a[0][k], b[0][k]]).astype(str) for k in names]
        sums = {k: np.concatenate([a[1][k], b[1][k]]) for k in SUMS}
        # np.unique over the key tuples: sorted as the single-process groups are
        fields = np.dtype([(k, a.dtype) for k, a in zip(names, keys, strict=True)])
        stacked = np.rec.fromarrays(keys, dtype=fields)
        uniq, inverse = np.unique(stacked, return_inverse=True)
        inverse = inverse.ravel()
        added = {k: np.bincount(inverse, v, minlength=len(uniq)) for k, v in sums.items()}
        return {k: np.asarray(uniq[k]) for k in names}, added, missing

    return combine


def pipeline_summary(
    opportunities: Any,
    by: str | Sequence[str] = (),
    *,
    reps: Mapping[str, Any] | None = None,
    accounts: Mapping[str, Any] | None = None,
    stage_changes: Mapping[str, Any] | None = None,
    teams: Mapping[str, Any] | None = None,
    territories: Mapping[str, Any] | None = None,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    cycle_start: str = "created",
    labels: str = "id",
    split_every: int = 8,
) -> Table:
    """:func:`crmkit.pipeline.summary` of opportunities in a Dask DataFrame (columns
    named like the fields, as :meth:`PipelineData.from_columns` takes them).

    ``reps``, ``accounts``, ``stage_changes``, ``teams`` and ``territories`` are the
    small tables the dimensions read (``team``, ``region``, ``family`` ...); they are
    sent once to each worker. Each partition computes the additive parts of the summary
    (counts, totals, the sums behind the means) per group with crmkit's own group-by;
    the partials are merged group by group in a tree (``split_every`` at a time) and
    the rates are worked out once at the end, so every column equals the
    single-process summary (up to the order of float additions).

    Examples
    --------
    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> opps = dd.from_pandas(pd.DataFrame({
    ...     "id": ["a", "b", "c"], "amount": [100.0, 300.0, None],
    ...     "probability": [0.5, None, None], "status": ["open", "won", "lost"],
    ...     "owner_id": ["ann", "ann", "bob"]}), npartitions=2)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     t = pipeline_summary(opps, by="owner")
    >>> t["owner"].tolist(), t["weighted_pipeline"].tolist(), t["win_rate"].tolist()
    (['ann', 'bob'], [50.0, 0.0], [1.0, 0.0])
    """
    what = "crmkit.dask.pipeline_summary"
    names = [by] if isinstance(by, str) else list(by)
    df = frame(opportunities, None, what)
    need(df, ["id"], what)
    context = {
        "reps": reps,
        "accounts": accounts,
        "stage_changes": stage_changes,
        "teams": teams,
        "territories": territories,
    }
    dask = dask_module("dask")
    shared = broadcast({k: v for k, v in context.items() if v is not None})
    parts = [
        dask.delayed(_summary_part, pure=True)(p, names, shared, pipeline, cycle_start, labels)
        for p in df.to_delayed()
    ]
    if not parts:
        parts = [
            dask.delayed(_summary_part)(df._meta, names, shared, pipeline, cycle_start, labels)
        ]
    keys, sums, missing = dask.compute(tree(parts, _summary_combine(names), split_every))[0]
    if len(parts) == 1:  # one partition: sorted already, but key arrays keep their dtype
        keys = {k: np.asarray(v) for k, v in keys.items()}
    return Table(
        columns={**keys, **summary_ratios(sums)},
        keys=names,
        missing=missing,
        title="pipeline summary",
    )
