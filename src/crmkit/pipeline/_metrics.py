"""Pipeline metrics as result tables, grouped with numpy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np

from crmkit.errors import ValidationError
from crmkit.pipeline._data import (
    Array,
    Context,
    PipelineData,
    data_of,
    divide,
    group,
    stage_index,
    stage_values,
    to_micros,
)
from crmkit.pipeline._stages import DEFAULT_PIPELINE, ForecastCategory, Pipeline
from crmkit.pipeline._table import Table
from crmkit.store._base import Store

__all__ = [
    "average_deal_size",
    "forecast",
    "open_pipeline",
    "rotting",
    "sales_cycle",
    "stage_conversion",
    "summary",
    "time_in_stage",
    "velocity",
    "weighted_pipeline",
    "win_loss",
    "win_rate",
    "won_revenue",
]

By = str | Sequence[str]
Source = Store | PipelineData
_DAY_US = 86_400_000_000


def _names(by: By) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _custom_fields(by: By) -> list[str]:
    return [n for n in _names(by) if n.startswith("custom.")]


def _sum(ids: Array, count: int, weights: Array | None = None) -> Array:
    return np.bincount(ids, weights=weights, minlength=count)[:count].astype(np.float64)


def _status(ctx: Context) -> tuple[Array, Array, Array]:
    status = ctx.data.opportunities["status"]
    return status == "open", status == "won", status == "lost"


def _summary_columns(
    ctx: Context, pipeline: Pipeline, by: By, cycle_start: str
) -> tuple[dict[str, Array], dict[str, int], list[str]]:
    keys, sums, missing = summary_sums(ctx, pipeline, by, cycle_start)
    return {**keys, **summary_ratios(sums)}, missing, list(keys)


SUMS = (
    "open_count",
    "open_pipeline",
    "weighted_pipeline",
    "won_count",
    "won_revenue",
    "lost_count",
    "won_with_amount",
    "cycle_total",
    "cycle_n",
)
"""The additive parts of :func:`summary`, per group (``crmkit.dask`` adds them up)."""


def summary_sums(
    ctx: Context, pipeline: Pipeline, by: By, cycle_start: str
) -> tuple[dict[str, Array], dict[str, Array], dict[str, int]]:
    """The group keys, the :data:`SUMS` per group and the missing counts of
    :func:`summary`; every one of them adds up across disjoint sets of deals."""
    opp = ctx.data.opportunities
    groups = group(ctx, by)
    is_open, is_won, is_lost = _status(ctx)
    amount = opp["amount"]
    has_amount = ~np.isnan(amount)
    value = np.where(has_amount, amount, 0.0)
    probability, probability_missing = _probabilities(ctx, pipeline, is_open)
    weighted = np.where(np.isnan(probability), 0.0, probability) * value
    ids, count = groups.ids, groups.count
    days = _cycle_days(ctx, cycle_start)
    has_cycle = is_won & ~np.isnan(days)
    sums = {
        "open_count": _sum(ids, count, is_open.astype(np.float64)),
        "open_pipeline": _sum(ids, count, np.where(is_open, value, 0.0)),
        "weighted_pipeline": _sum(ids, count, np.where(is_open, weighted, 0.0)),
        "won_count": _sum(ids, count, is_won.astype(np.float64)),
        "won_revenue": _sum(ids, count, np.where(is_won, value, 0.0)),
        "lost_count": _sum(ids, count, is_lost.astype(np.float64)),
        "won_with_amount": _sum(ids, count, (is_won & has_amount).astype(np.float64)),
        "cycle_total": _sum(ids, count, np.where(has_cycle, days, 0.0)),
        "cycle_n": _sum(ids, count, has_cycle.astype(np.float64)),
    }
    missing = ctx.missing_counts()
    missing.update(probability_missing)
    missing["won_without_cycle"] = int((is_won & np.isnan(days)).sum())
    missing["unknown_status"] = int((~(is_open | is_won | is_lost)).sum())
    missing.update(groups.missing)
    return dict(groups.keys), sums, missing


def summary_ratios(sums: dict[str, Array]) -> dict[str, Array]:
    """The columns of :func:`summary` (counts, totals and rates) from its :data:`SUMS`."""
    open_count, won_count, lost_count = sums["open_count"], sums["won_count"], sums["lost_count"]
    won_revenue = sums["won_revenue"]
    columns: dict[str, Array] = {}
    columns["open_count"] = open_count.astype(np.int64)
    columns["open_pipeline"] = sums["open_pipeline"]
    columns["weighted_pipeline"] = sums["weighted_pipeline"]
    columns["won_count"] = won_count.astype(np.int64)
    columns["won_revenue"] = won_revenue
    columns["lost_count"] = lost_count.astype(np.int64)
    columns["closed_count"] = (won_count + lost_count).astype(np.int64)
    columns["win_rate"] = divide(won_count, won_count + lost_count)
    columns["avg_deal_size"] = divide(won_revenue, sums["won_with_amount"])
    columns["cycle_days"] = divide(sums["cycle_total"], sums["cycle_n"])
    columns["velocity"] = divide(
        open_count * columns["win_rate"] * columns["avg_deal_size"], columns["cycle_days"]
    )
    return columns


def _probabilities(
    ctx: Context, pipeline: Pipeline, is_open: Array
) -> tuple[Array, dict[str, int]]:
    """Each deal's probability, else its stage's default (NaN if neither), and counts:
    ``no_probability`` (open deals with neither: weighted as 0), ``default_probability``
    (open deals that took their stage's default) and ``unknown_stage`` (all deals)."""
    given = ctx.data.opportunities["probability"]
    index, default = stage_values(ctx, pipeline)
    has_given = ~np.isnan(given)
    probability = np.where(has_given, given, default)
    return probability, {
        "no_probability": int((is_open & np.isnan(probability)).sum()),
        "default_probability": int((is_open & ~has_given & ~np.isnan(default)).sum()),
        "unknown_stage": int((index < 0).sum()),
    }


def _cycle_days(ctx: Context, cycle_start: str) -> Array:
    """Days from creation (or first stage change: ``engaged``) to close, per deal."""
    opp = ctx.data.opportunities
    start = opp["created_at"].astype("M8[us]")
    if cycle_start == "engaged":
        first = _first_change(ctx)
        start = np.where(np.isnat(first), start, first)
    elif cycle_start != "created":
        raise ValidationError(
            "Opportunity", "cycle_start", cycle_start, "must be 'created' or 'engaged'"
        )
    end = opp["closed_at"].astype("M8[us]")
    end = np.where(np.isnat(end), opp["close_date"].astype("M8[us]"), end)
    bad = np.isnat(start) | np.isnat(end)
    span = (end.astype(np.int64) - start.astype(np.int64)) / _DAY_US
    return np.where(bad, np.nan, span)


def _change_opportunity_index(ctx: Context) -> Array:
    from crmkit.pipeline._data import lookup

    changes = ctx.data.stage_changes
    return lookup(changes["opportunity_id"], ctx.data.opportunities["id"])


def _first_change(ctx: Context) -> Array:
    changes = ctx.data.stage_changes
    n = len(ctx.data)
    index = _change_opportunity_index(ctx)
    at = changes["at"].astype(np.int64)
    keep = (index >= 0) & ~np.isnat(changes["at"])
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, index[keep], at[keep])
    out = first.astype("M8[us]")
    out[first == np.iinfo(np.int64).max] = np.datetime64("NaT")
    return out


def _last_change(ctx: Context) -> Array:
    changes = ctx.data.stage_changes
    n = len(ctx.data)
    index = _change_opportunity_index(ctx)
    at = changes["at"].astype(np.int64)
    keep = (index >= 0) & ~np.isnat(changes["at"])
    low = np.iinfo(np.int64).min
    last = np.full(n, low, dtype=np.int64)
    np.maximum.at(last, index[keep], at[keep])
    out = last.astype("M8[us]")
    out[last == low] = np.datetime64("NaT")
    return out


def summary(
    source: Source,
    by: By = (),
    *,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    cycle_start: str = "created",
    labels: str = "id",
) -> Table:
    """Every deal metric at once, per group.

    Columns: ``open_count``, ``open_pipeline`` (sum of open amounts),
    ``weighted_pipeline`` (open amount x probability; a deal without a probability takes
    its stage's default), ``won_count``, ``won_revenue``, ``lost_count``,
    ``closed_count``, ``win_rate`` (won / closed), ``avg_deal_size`` (mean won amount),
    ``cycle_days`` (mean days from ``created_at`` -- or the first stage change with
    ``cycle_start="engaged"`` -- to ``closed_at``, else ``close_date``, over won deals)
    and ``velocity`` (open_count x win_rate x avg_deal_size / cycle_days: revenue per
    day). Rates are NaN where undefined.

    ``by`` is one dimension or several: ``owner``, ``team`` (the owner's first team),
    ``manager``, ``rep_region``, ``region`` and ``territory`` (of the account),
    ``family`` (the account's ultimate parent), ``account``, ``product``, ``stage``,
    ``status``, ``source``, ``loss_reason``, ``custom.<field>``, or a period of the close
    date (``month``, ``quarter``, ``year``) or of creation (``created_month`` ...).

    ``labels="name"`` (every metric takes it) shows the groups of ``owner``,
    ``manager``, ``account``, ``family``, ``team`` and ``territory`` by the record's
    name instead of its id; ids without a record keep the id, and records sharing a
    name are told apart as ``"name (id)"``.

    Examples
    --------
    >>> from crmkit import MemoryStore, Opportunity, Rep
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id="a", name="A", amount=100, probability=0.5, owner_id="ann"),
    ...     Opportunity(id="b", name="B", amount=300, status="won", owner_id="ann"),
    ...     Opportunity(id="c", name="C", status="lost", owner_id="bob"),
    ... ])
    >>> t = summary(store, by="owner")
    >>> t["weighted_pipeline"].tolist(), t["win_rate"].tolist()
    ([50.0, 0.0], [1.0, 0.0])
    >>> t.missing["no_amount"], t.missing["unknown_owner"]
    (1, 3)
    >>> _ = store.reps.add(Rep(id="ann", name="Ann Lee"))
    >>> summary(store, by="owner", labels="name")["owner"].tolist()
    ['Ann Lee', 'bob']
    """
    ctx = Context(data_of(source, _custom_fields(by)), labels)
    columns, missing, keys = _summary_columns(ctx, pipeline, by, cycle_start)
    return Table(columns=columns, keys=keys, missing=missing, title="pipeline summary")


def _pick(table: Table, names: Sequence[str], title: str) -> Table:
    columns = {k: table[k] for k in table.keys}
    columns.update({n: table[n] for n in names})
    return Table(columns=columns, keys=table.keys, missing=table.missing, title=title)


def open_pipeline(
    source: Source, by: By = (), *, pipeline: Pipeline = DEFAULT_PIPELINE, labels: str = "id"
) -> Table:
    """Count and total amount of open deals per group (see :func:`summary`).

    Examples
    --------
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add(Opportunity(id="a", name="A", amount=100))
    >>> open_pipeline(store).rows()
    [{'open_count': 1, 'open_pipeline': 100.0}]
    """
    table = summary(source, by, pipeline=pipeline, labels=labels)
    return _pick(table, ["open_count", "open_pipeline"], "open pipeline")


def weighted_pipeline(
    source: Source, by: By = (), *, pipeline: Pipeline = DEFAULT_PIPELINE, labels: str = "id"
) -> Table:
    """Open amount x probability per group (see :func:`summary`).

    Examples
    --------
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add(Opportunity(id="a", name="A", amount=100,
    ...                                         stage="proposal"))
    >>> weighted_pipeline(store)["weighted_pipeline"]
    array([50.])
    """
    table = summary(source, by, pipeline=pipeline, labels=labels)
    return _pick(table, ["open_count", "open_pipeline", "weighted_pipeline"], "weighted pipeline")


def won_revenue(
    source: Source, by: By = (), *, pipeline: Pipeline = DEFAULT_PIPELINE, labels: str = "id"
) -> Table:
    """Count and amount of won deals per group (see :func:`summary`).

    Examples
    --------
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add(Opportunity(id="a", name="A", amount=70, status="won"))
    >>> won_revenue(store)["won_revenue"]
    array([70.])
    """
    table = summary(source, by, pipeline=pipeline, labels=labels)
    return _pick(table, ["won_count", "won_revenue"], "won revenue")


def win_rate(
    source: Source, by: By = (), *, pipeline: Pipeline = DEFAULT_PIPELINE, labels: str = "id"
) -> Table:
    """Won / (won + lost) per group, with the counts (see :func:`win_loss` for lift).

    Examples
    --------
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add_many([Opportunity(id=i, name=i, status=s)
    ...     for i, s in [("a", "won"), ("b", "lost"), ("c", "lost"), ("d", "open")]])
    >>> win_rate(store).row()
    {'won_count': 1, 'lost_count': 2, 'closed_count': 3, 'win_rate': 0.333...}
    """
    table = summary(source, by, pipeline=pipeline, labels=labels)
    return _pick(table, ["won_count", "lost_count", "closed_count", "win_rate"], "win rate")


def average_deal_size(
    source: Source, by: By = (), *, pipeline: Pipeline = DEFAULT_PIPELINE, labels: str = "id"
) -> Table:
    """Mean amount of won deals (those with an amount) per group.

    Examples
    --------
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add_many([Opportunity(id=i, name=i, amount=a, status="won")
    ...     for i, a in [("a", 100), ("b", 300), ("c", None)]])
    >>> average_deal_size(store)["avg_deal_size"]
    array([200.])
    """
    table = summary(source, by, pipeline=pipeline, labels=labels)
    return _pick(table, ["won_count", "won_revenue", "avg_deal_size"], "average deal size")


def sales_cycle(
    source: Source,
    by: By = (),
    *,
    start: str = "created",
    pipeline: Pipeline = DEFAULT_PIPELINE,
    labels: str = "id",
) -> Table:
    """Mean days from creation (``start="engaged"``: the first stage change) to close,
    over won deals.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> _ = store.opportunities.add(Opportunity(id="a", name="A", status="won",
    ...     created_at=t0, closed_at=t0.replace(month=2)))
    >>> sales_cycle(store)["cycle_days"]
    array([31.])
    """
    table = summary(source, by, pipeline=pipeline, cycle_start=start, labels=labels)
    return _pick(table, ["won_count", "cycle_days"], "sales cycle")


def velocity(
    source: Source,
    by: By = (),
    *,
    start: str = "created",
    pipeline: Pipeline = DEFAULT_PIPELINE,
    labels: str = "id",
) -> Table:
    """Pipeline velocity per group: (open deals x win rate x average deal) / cycle days.

    Examples
    --------
    >>> from crmkit import MemoryStore
    >>> velocity(MemoryStore()).column_names
    ('open_count', 'win_rate', 'avg_deal_size', 'cycle_days', 'velocity')
    """
    table = summary(source, by, pipeline=pipeline, cycle_start=start, labels=labels)
    return _pick(
        table,
        ["open_count", "win_rate", "avg_deal_size", "cycle_days", "velocity"],
        "pipeline velocity",
    )


def forecast(
    source: Source,
    by: By = (),
    *,
    period: str = "quarter",
    start: date | None = None,
    end: date | None = None,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    labels: str = "id",
) -> Table:
    """Amounts by forecast category and close-date period (``month``, ``quarter``,
    ``year``), optionally only for close dates in ``[start, end]``.

    Columns: ``closed`` (won revenue), ``commit``, ``best_case``, ``pipeline`` and
    ``omitted`` (open amounts by the category of their stage; an open deal in a stage the
    pipeline does not know counts as ``pipeline`` and in ``missing["unknown_stage"]``),
    ``weighted`` (open amount x probability), ``commit_forecast`` (closed + commit) and
    ``best_case_forecast`` (closed + commit + best case). Deals without a close date fall
    in the period ``""`` (or, with ``start``/``end``, only in ``missing``).

    Examples
    --------
    >>> from datetime import date
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id="a", name="A", amount=100, stage="negotiation",
    ...                 close_date=date(2026, 2, 1)),
    ...     Opportunity(id="b", name="B", amount=50, status="won", stage="closed_won",
    ...                 close_date=date(2026, 3, 1)),
    ...     Opportunity(id="c", name="C", amount=10, close_date=date(2026, 4, 1)),
    ... ])
    >>> f = forecast(store)
    >>> f["quarter"].tolist(), f["commit_forecast"].tolist()
    (['2026Q1', '2026Q2'], [150.0, 0.0])
    """
    if period not in ("month", "quarter", "year"):
        raise ValidationError("forecast", "period", period, "must be month, quarter or year")
    names = [*_names(by), period]
    ctx = Context(data_of(source, _custom_fields(by)), labels)
    opp = ctx.data.opportunities
    is_open, is_won, _ = _status(ctx)
    close = opp["close_date"]
    scope = is_open | is_won
    outside = np.zeros(len(close), dtype=bool)
    if start is not None:
        outside |= ~(close >= np.datetime64(start, "D"))
    if end is not None:
        outside |= ~(close <= np.datetime64(end, "D"))
    rows = np.flatnonzero(scope & ~outside)
    groups = group(ctx, names, rows)
    ids, count = groups.ids, groups.count
    amount = opp["amount"][rows]
    value = np.where(np.isnan(amount), 0.0, amount)
    index = stage_values(ctx, pipeline)[0][rows]
    all_probabilities, probability_missing = _probabilities(ctx, pipeline, is_open & ~outside)
    probability = all_probabilities[rows]
    open_rows = is_open[rows]
    categories = np.array(
        [s.category.value for s in pipeline.stages] + [ForecastCategory.PIPELINE.value]
    )[index]
    columns = dict(groups.keys)
    columns["open_count"] = _sum(ids, count, open_rows.astype(np.float64)).astype(np.int64)
    columns["closed"] = _sum(ids, count, np.where(is_won[rows], value, 0.0))
    for category in ("commit", "best_case", "pipeline", "omitted"):
        take = open_rows & (categories == category)
        if category == "pipeline":
            take |= open_rows & (categories == ForecastCategory.CLOSED.value)
        columns[category] = _sum(ids, count, np.where(take, value, 0.0))
    columns["weighted"] = _sum(
        ids, count, np.where(open_rows, np.nan_to_num(probability) * value, 0.0)
    )
    columns["commit_forecast"] = columns["closed"] + columns["commit"]
    columns["best_case_forecast"] = columns["commit_forecast"] + columns["best_case"]
    missing = ctx.missing_counts()
    missing.update(probability_missing)
    missing["unknown_stage"] = int((open_rows & (index < 0)).sum())
    missing["outside_period"] = int((scope & outside).sum())
    missing["no_close_date_in_scope"] = int((scope & np.isnat(close)).sum())
    missing.update(groups.missing)
    return Table(columns=columns, keys=names, missing=missing, title="forecast")


def win_loss(
    source: Source, by: By, *, pipeline: Pipeline = DEFAULT_PIPELINE, labels: str = "id"
) -> Table:
    """Win rate and lift by any dimension, with counts and amounts.

    ``lift`` is the group's win rate over the overall win rate (1.0: average; 1.5: wins
    50 % more often). ``share_of_wins`` / ``share_of_losses`` say where the wins and
    losses come from.

    Examples
    --------
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id=str(i), name="d", status=s, source=src)
    ...     for i, (s, src) in enumerate([("won", "web"), ("won", "web"), ("lost", "web"),
    ...                                   ("lost", "event"), ("won", "event"),
    ...                                   ("lost", "event"), ("lost", "event")])])
    >>> t = win_loss(store, "source")
    >>> t["source"].tolist(), t["win_rate"].round(3).tolist(), t["lift"].round(3).tolist()
    (['event', 'web'], [0.25, 0.667], [0.583, 1.556])
    """
    names = _names(by)
    if not names:
        raise ValidationError("win_loss", "by", by, "name at least one dimension")
    ctx = Context(data_of(source, _custom_fields(by)), labels)
    opp = ctx.data.opportunities
    _, is_won, is_lost = _status(ctx)
    rows = np.flatnonzero(is_won | is_lost)
    groups = group(ctx, names, rows)
    ids, count = groups.ids, groups.count
    won = is_won[rows]
    amount = np.nan_to_num(opp["amount"][rows])
    won_n = _sum(ids, count, won.astype(np.float64))
    lost_n = _sum(ids, count, (~won).astype(np.float64))
    overall = divide(np.array(won.sum()), np.array(len(rows)))
    columns = dict(groups.keys)
    columns["won_count"] = won_n.astype(np.int64)
    columns["lost_count"] = lost_n.astype(np.int64)
    columns["closed_count"] = (won_n + lost_n).astype(np.int64)
    columns["win_rate"] = divide(won_n, won_n + lost_n)
    columns["lift"] = divide(columns["win_rate"], np.full(count, overall))
    columns["share_of_wins"] = divide(won_n, np.full(count, won_n.sum()))
    columns["share_of_losses"] = divide(lost_n, np.full(count, lost_n.sum()))
    columns["won_amount"] = _sum(ids, count, np.where(won, amount, 0.0))
    columns["lost_amount"] = _sum(ids, count, np.where(won, 0.0, amount))
    missing = ctx.missing_counts()
    missing.update(groups.missing)
    return Table(columns=columns, keys=names, missing=missing, title="win/loss")


def _reached(ctx: Context, pipeline: Pipeline) -> tuple[Array, Array]:
    """Per deal: the furthest open stage reached (position among open stages), and won."""
    opp = ctx.data.opportunities
    open_names = [s.name for s in pipeline.open_stages]
    open_position = np.array(
        [open_names.index(s.name) if s.is_open else -1 for s in pipeline.stages] + [-1]
    )
    current = open_position[stage_index(opp["stage"], pipeline)]
    changes = ctx.data.stage_changes
    index = _change_opportunity_index(ctx)
    known = index >= 0
    furthest = np.maximum(current, 0)
    for column in ("from_stage", "to_stage"):
        position = open_position[stage_index(changes[column], pipeline)]
        np.maximum.at(furthest, index[known], position[known])
    is_won = opp["status"] == "won"
    furthest = np.where(is_won, len(open_names) - 1, furthest)
    return furthest, is_won


def stage_conversion(
    source: Source, by: By = (), *, pipeline: Pipeline = DEFAULT_PIPELINE, labels: str = "id"
) -> Table:
    """How many deals reached each open stage, and how many of those went further.

    A deal reached a stage if it is, or ever was (by its stage history), in that stage
    or a later one; a won deal reached every open stage; every deal reached the first.
    Columns per (group, stage): ``reached``, ``advanced`` (reached the next stage, or won
    from the last open stage), ``conversion_rate`` (advanced / reached), ``won`` and
    ``win_rate`` (won / reached: the chance a deal at this stage is eventually won).

    Examples
    --------
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id="a", name="A", stage="proposal"),
    ...     Opportunity(id="b", name="B", stage="closed_won", status="won"),
    ...     Opportunity(id="c", name="C")])
    >>> t = stage_conversion(store)
    >>> t["stage"].tolist(), t["reached"].tolist(), t["advanced"].tolist()
    (['prospecting', 'qualification', 'proposal', 'negotiation'], [3, 2, 2, 1], [2, 2, 1, 1])
    """
    ctx = Context(data_of(source, _custom_fields(by)), labels)
    furthest, is_won = _reached(ctx, pipeline)
    groups = group(ctx, by)
    ids, count = groups.ids, groups.count
    stage_names = [s.name for s in pipeline.open_stages]
    parts: dict[str, list[Array]] = {name: [] for name in groups.keys}
    parts.update(stage=[], reached=[], advanced=[], won=[])
    for position, name in enumerate(stage_names):  # one pass per stage, not per deal
        reached = furthest >= position
        if position + 1 < len(stage_names):
            advanced = furthest >= position + 1
        else:
            advanced = reached & is_won
        for key, values in groups.keys.items():
            parts[key].append(values)
        parts["stage"].append(np.full(count, name))
        parts["reached"].append(_sum(ids, count, reached.astype(np.float64)))
        parts["advanced"].append(_sum(ids, count, advanced.astype(np.float64)))
        parts["won"].append(_sum(ids, count, (reached & is_won).astype(np.float64)))
    columns = {k: np.concatenate(v) for k, v in parts.items()}
    order = np.arange(len(columns["stage"])).reshape(len(stage_names), count).T.ravel()
    columns = {k: v[order] for k, v in columns.items()}
    for k in ("reached", "advanced", "won"):
        columns[k] = columns[k].astype(np.int64)
    columns["conversion_rate"] = divide(columns["advanced"], columns["reached"])
    columns["win_rate"] = divide(columns["won"], columns["reached"])
    missing = ctx.missing_counts()
    missing.update(groups.missing)
    missing["unknown_stage"] = int(
        (stage_index(ctx.data.opportunities["stage"], pipeline) < 0).sum()
    )
    return Table(
        columns=columns,
        keys=[*list(groups.keys), "stage"],
        missing=missing,
        title="stage conversion",
    )


def _visits(
    ctx: Context, pipeline: Pipeline, now: np.datetime64 | None
) -> tuple[Array, Array, Array, Array, dict[str, int]]:
    """Every stay in an open stage: (deal index, stage index, days, ongoing)."""
    opp = ctx.data.opportunities
    changes = ctx.data.stage_changes
    deal = _change_opportunity_index(ctx)
    at = changes["at"].astype("M8[us]")
    keep = (deal >= 0) & ~np.isnat(at)
    deal, at = deal[keep], at[keep]
    to_index = stage_index(changes["to_stage"][keep], pipeline)
    from_index = stage_index(changes["from_stage"][keep], pipeline)
    order = np.lexsort((changes["id"][keep], at, deal))
    deal, at, to_index, from_index = deal[order], at[order], to_index[order], from_index[order]
    m = len(deal)
    is_first = np.ones(m, dtype=bool)
    is_first[1:] = deal[1:] != deal[:-1]
    is_last = np.ones(m, dtype=bool)
    is_last[:-1] = deal[1:] != deal[:-1]
    # stays that end at a later change of the same deal
    next_at = np.empty(m, dtype="M8[us]")
    next_at[:-1] = at[1:]
    next_at[-1:] = np.datetime64("NaT")
    stay_deal = [deal[~is_last]]
    stay_stage = [to_index[~is_last]]
    stay_start = [at[~is_last]]
    stay_end = [next_at[~is_last]]
    # the first stay: from creation to the first change
    stay_deal.append(deal[is_first])
    stay_stage.append(from_index[is_first])
    stay_start.append(opp["created_at"][deal[is_first]])
    stay_end.append(at[is_first])
    # stays still going on: the last stage of open deals (with or without history)
    is_open = opp["status"] == "open"
    has_history = np.zeros(len(opp["id"]), dtype=bool)
    has_history[deal] = True
    last_at = np.full(len(opp["id"]), np.datetime64("NaT"), dtype="M8[us]")
    last_at[deal[is_last]] = at[is_last]
    ongoing_deals = np.flatnonzero(is_open)
    start = np.where(has_history, last_at, opp["created_at"])[ongoing_deals]
    current = stage_index(opp["stage"], pipeline)[ongoing_deals]
    end_now = np.full(len(ongoing_deals), np.datetime64("NaT") if now is None else now)
    stay_deal.append(ongoing_deals)
    stay_stage.append(current)
    stay_start.append(start)
    stay_end.append(end_now.astype("M8[us]"))
    deals = np.concatenate(stay_deal)
    stages = np.concatenate(stay_stage)
    starts = np.concatenate(stay_start).astype("M8[us]")
    ends = np.concatenate(stay_end).astype("M8[us]")
    ongoing = np.zeros(len(deals), dtype=bool)
    ongoing[len(deals) - len(ongoing_deals) :] = True
    open_stage = np.array([s.is_open for s in pipeline.stages] + [False])[stages]
    unknown = stages < 0
    no_start = np.isnat(starts) & open_stage
    measurable = open_stage & ~np.isnat(starts) & ~np.isnat(ends)
    days = (ends.astype(np.int64) - starts.astype(np.int64)) / _DAY_US
    missing = {
        "unknown_stage_stays": int(unknown.sum()),
        "stays_without_start": int(no_start.sum()),
    }
    sel = measurable
    return deals[sel], stages[sel], days[sel], ongoing[sel], missing


def time_in_stage(
    source: Source,
    by: By = (),
    *,
    now: datetime | None = None,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    labels: str = "id",
) -> Table:
    """How long deals stay in each open stage, from the stage history.

    A stay runs from the change into a stage (or the deal's ``created_at`` for its first
    stage) to the next change. With ``now``, the current stay of open deals counts too
    (``ongoing``). Columns per (group, stage): ``stays``, ``ongoing``, ``mean_days``,
    ``max_days``.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import MemoryStore, Opportunity
    >>> from crmkit.pipeline import move
    >>> store = MemoryStore()
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> _ = store.opportunities.add(Opportunity(id="a", name="A", created_at=t0))
    >>> _ = move(store, "a", "qualification", at=t0.replace(day=11))
    >>> t = time_in_stage(store, now=t0.replace(day=15))
    >>> t.row("prospecting")["mean_days"], t.row("qualification")["mean_days"]
    (10.0, 4.0)
    """
    ctx = Context(data_of(source, _custom_fields(by)), labels)
    moment = None if now is None else to_micros(now)
    deals, stages, days, ongoing, missing_stays = _visits(ctx, pipeline, moment)
    groups = group(ctx, by, deals)
    open_positions = [i for i, s in enumerate(pipeline.stages) if s.is_open]
    columns_parts: dict[str, list[Array]] = {name: [] for name in groups.keys}
    columns_parts.update(stage=[], stays=[], ongoing=[], mean_days=[], max_days=[])
    count = groups.count
    for position in open_positions:  # one pass per stage
        here = stages == position
        ids = groups.ids[here]
        n = _sum(ids, count)
        total = _sum(ids, count, days[here])
        biggest = np.full(count, -np.inf)
        np.maximum.at(biggest, ids, days[here])
        for key, values in groups.keys.items():
            columns_parts[key].append(values)
        columns_parts["stage"].append(np.full(count, pipeline.stages[position].name))
        columns_parts["stays"].append(n)
        columns_parts["ongoing"].append(_sum(ids, count, ongoing[here].astype(np.float64)))
        columns_parts["mean_days"].append(divide(total, n))
        columns_parts["max_days"].append(np.where(n > 0, biggest, np.nan))
    columns = {k: np.concatenate(v) for k, v in columns_parts.items()}
    order = np.arange(len(columns["stage"])).reshape(len(open_positions), count).T.ravel()
    columns = {k: v[order] for k, v in columns.items()}
    columns["stays"] = columns["stays"].astype(np.int64)
    columns["ongoing"] = columns["ongoing"].astype(np.int64)
    missing = ctx.missing_counts()
    missing.update(missing_stays)
    missing.update(groups.missing)
    return Table(
        columns=columns, keys=[*list(groups.keys), "stage"], missing=missing, title="time in stage"
    )


def rotting(
    source: Source,
    by: By = (),
    *,
    now: datetime,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    labels: str = "id",
) -> Table:
    """Open deals with no stage change for longer than their stage's ``rotting_days``.

    The clock starts at the deal's last stage change, else its ``created_at`` (deals with
    neither are counted in ``missing["no_stage_start"]``). Without ``by``: one row per
    rotting deal (``id``, ``owner_id``, ``stage``, ``amount``, ``days_in_stage``,
    ``rotting_days``), longest first. With ``by``: ``open_count``, ``rotting_count`` and
    ``rotting_amount`` per group.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id="old", name="A", stage="negotiation", created_at=t0),
    ...     Opportunity(id="new", name="B", stage="negotiation",
    ...                 created_at=t0.replace(day=20))])
    >>> t = rotting(store, now=t0.replace(day=25))
    >>> t["id"].tolist(), t["days_in_stage"].tolist()
    (['old'], [24.0])
    """
    ctx = Context(data_of(source, _custom_fields(by)), labels)
    opp = ctx.data.opportunities
    moment = to_micros(now)
    last = _last_change(ctx)
    since = np.where(np.isnat(last), opp["created_at"].astype("M8[us]"), last)
    days = (moment.astype(np.int64) - since.astype(np.int64)) / _DAY_US
    days = np.where(np.isnat(since), np.nan, days)
    thresholds = np.array(
        [np.nan if s.rotting_days is None else float(s.rotting_days) for s in pipeline.stages]
        + [np.nan]
    )[stage_index(opp["stage"], pipeline)]
    is_open = opp["status"] == "open"
    is_rotting = is_open & (days > np.nan_to_num(thresholds, nan=np.inf))
    missing = ctx.missing_counts()
    missing["no_stage_start"] = int((is_open & np.isnat(since)).sum())
    missing["no_threshold"] = int((is_open & np.isnan(thresholds)).sum())
    if not _names(by):
        rows = np.flatnonzero(is_rotting)
        rows = rows[np.argsort(-days[rows], kind="stable")]
        return Table(
            columns={
                "id": opp["id"][rows],
                "owner_id": opp["owner_id"][rows],
                "stage": opp["stage"][rows],
                "amount": opp["amount"][rows],
                "days_in_stage": days[rows],
                "rotting_days": thresholds[rows],
            },
            keys=("id",),
            missing=missing,
            title="rotting deals",
        )
    groups = group(ctx, by)
    ids, count = groups.ids, groups.count
    columns: dict[str, Any] = dict(groups.keys)
    columns["open_count"] = _sum(ids, count, is_open.astype(np.float64)).astype(np.int64)
    columns["rotting_count"] = _sum(ids, count, is_rotting.astype(np.float64)).astype(np.int64)
    columns["rotting_amount"] = _sum(
        ids, count, np.where(is_rotting, np.nan_to_num(opp["amount"]), 0.0)
    )
    missing.update(groups.missing)
    return Table(columns=columns, keys=list(groups.keys), missing=missing, title="rotting deals")
