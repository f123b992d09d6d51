"""Territories and bulk routing over Dask partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs
import numpy as np

from crmkit.clock import FixedClock
from crmkit.dask._frames import broadcast, columns_of, dask_module, frame, need, text_frame
from crmkit.errors import ValidationError
from crmkit.records import Lead, Territory
from crmkit.routing import Router, assign_columns
from crmkit.routing._bulk import _POOL, RoutingBatch
from crmkit.routing._pools import BIG, rr_picks
from crmkit.routing._territories import territory_fields

Array = np.ndarray[Any, Any]


def _territory_part(part: Any, territories: Sequence[Territory], id_column: str) -> Any:
    if not len(part):
        return text_frame(
            {id_column: part[id_column].to_numpy(), "territory_id": [], "reason": []},
            part.index,
        )
    cols = columns_of(part, "crmkit.dask.assign_territories")
    if id_column != "id":
        cols["id"] = cols.pop(id_column)
    result = assign_columns(territories, cols)
    return text_frame(
        {
            id_column: part[id_column].to_numpy(),
            "territory_id": result.primary,
            "reason": result.reason,
        },
        part.index,
    )


def assign_territories(
    territories: Iterable[Territory], accounts: Any, *, id_column: str = "id"
) -> Any:
    """:func:`crmkit.routing.assign_columns` per partition: a Dask DataFrame of
    ``id_column``, ``territory_id`` (the primary territory, ``""`` for none) and
    ``reason`` (``primary``, ``tie``, ``no_match`` or ``locked``).

    The territory list is one task of the graph, sent once to each worker; each account
    is assigned on its own, so partitions need nothing from each other.

    Examples
    --------
    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> from crmkit import F, Territory
    >>> territories = [
    ...     Territory(id="de", name="DE", priority=10, criteria=(F.country == "DE").to_dict()),
    ...     Territory(id="eu", name="EU", priority=50,
    ...               criteria=F.country.isin(["DE", "FR"]).to_dict())]
    >>> accounts = dd.from_pandas(pd.DataFrame({"id": ["a1", "a2", "a3"],
    ...                                         "country": ["DE", "FR", "US"]}), npartitions=2)
    >>> out = assign_territories(territories, accounts).compute(scheduler="synchronous")
    >>> out["territory_id"].tolist(), out["reason"].tolist()
    (['de', 'eu', ''], ['primary', 'primary', 'no_match'])
    """
    what = "crmkit.dask.assign_territories"
    terr = list(territories)
    fields = territory_fields(terr)
    df = frame(accounts, None, what)
    need(df, [id_column, *fields], what)
    optional = [c for c in ("territory_id", "realignment_locked") if c in df.columns]
    df = df[list(dict.fromkeys([id_column, *fields, *optional]))]
    pd = dask_module("pandas")
    meta = pd.DataFrame(
        {
            id_column: pd.Series([], dtype=df._meta[id_column].dtype),
            "territory_id": pd.Series([], dtype=str),
            "reason": pd.Series([], dtype=str),
        }
    )
    return df.map_partitions(_territory_part, broadcast(terr), id_column, meta=meta)


@attrs.frozen(kw_only=True)
class RouterRecipe:
    """How to build the same :class:`~crmkit.routing.Router` in every worker: the
    records of a routing set-up (reps, teams, routing rules, accounts, routing state)
    put into a fresh :class:`~crmkit.MemoryStore`. Picklable, unlike a router over an
    open store. Any zero-argument callable returning a Router will do instead (for
    example a function that opens your SQLite or PostgreSQL store).

    >>> from crmkit import Rep, RoutingRule
    >>> recipe = RouterRecipe(records=(Rep(id="a", name="A", team_ids=["sales"]),
    ...     RoutingRule(id="all", target_kind="team", target_id="sales")))
    >>> recipe().rules.rules[0].id
    'all'
    """

    records: tuple[Any, ...] = attrs.field(converter=tuple)
    rule_set: str = "default"
    record_type: type[Any] = Lead
    match_accounts: bool = False
    respect_hours: bool = True

    def __call__(self) -> Router:
        from crmkit.store import MemoryStore

        store = MemoryStore()
        by_type: dict[type[Any], list[Any]] = {}
        for record in self.records:
            by_type.setdefault(type(record), []).append(record)
        for record_type, records in by_type.items():
            store.repository(record_type).add_many(records)
        return Router(
            store,
            self.rule_set,
            record_type=self.record_type,
            match_accounts=self.match_accounts,
            respect_hours=self.respect_hours,
        )


_UnitKey = tuple[str, tuple[str | None, ...]]


def _decide(part: Any, recipe: Callable[[], Router], now: datetime) -> RoutingBatch:
    router = recipe()
    router.clock = FixedClock(now)
    return router.route_columns(columns_of(part, "crmkit.dask.route"))


def _pool_units(batch: RoutingBatch) -> list[tuple[_UnitKey, Any, tuple[str, ...], int]]:
    """Each pool the partition drew from: key, spec, rotation order and row count.

    Refuses pools whose choice depends on what earlier rows took (capacity, quotas,
    load balancing, weights, account owners): those need the whole batch in order.
    """
    if batch.sequential:
        row = next(iter(batch.sequential))
        raise ValidationError(
            "crmkit.dask.route",
            "pools",
            str(batch.ids[row]),
            "is routed by a pool whose choice depends on earlier rows (capacity, quota, "
            "weighted or load-balanced strategy, account owner); route such pools in one "
            "process with Router.route_columns",
            record_id=str(batch.ids[row]),
        )
    out = []
    for unit in batch.units:
        rows = sum(int(r.size) for r in unit.rows)
        if not rows:
            continue
        finite = [rep for rep, left in unit.allow.items() if left < BIG]
        if unit.rule == -3 or unit.spec.strategy != "round_robin" or finite:
            why = (
                f"rep {finite[0]!r} has a capacity or quota"
                if finite
                else f"strategy {unit.spec.strategy!r}"
                if unit.rule != -3
                else "account owner matching"
            )
            raise ValidationError(
                "crmkit.dask.route",
                "pools",
                unit.spec.key,
                f"draws by {why}: its choices depend on earlier rows; route it in one "
                "process with Router.route_columns",
            )
        out.append(((unit.spec.key, tuple(unit.values)), unit.spec, tuple(unit.order), rows))
    return out


def _count_part(
    part: Any, recipe: Callable[[], Router], now: datetime
) -> list[tuple[_UnitKey, Any, tuple[str, ...], int]]:
    return _pool_units(_decide(part, recipe, now))


def _route_part(
    part: Any,
    recipe: Callable[[], Router],
    now: datetime,
    offsets: Sequence[dict[_UnitKey, int]],
    partition_info: dict[str, Any] | None = None,
) -> Any:
    batch = _decide(part, recipe, now)
    skip = offsets[partition_info["number"]] if partition_info is not None else {}
    owner = batch.owner.copy()
    for unit in batch.units:
        m = len(unit.order)
        key = (unit.spec.key, tuple(unit.values))
        rows = np.flatnonzero((batch.unit == unit.uid) & (batch.kind == _POOL))
        if not m or not rows.size or not skip.get(key):
            continue
        # unlimited round robin repeats every m records: start m * k + skip % m picks in
        start = skip[key] % m
        picks = rr_picks(start + rows.size, np.full(m, BIG, dtype=np.int64))[start:]
        owner[rows] = np.asarray(unit.order, dtype=object)[picks[batch.unit_pos[rows]]]
    queue = batch.queue
    status = np.where(owner != None, "assigned", np.where(queue != None, "queued", "unassigned"))  # noqa: E711
    return text_frame(
        {
            "id": part["id"].to_numpy(),
            "status": status.astype(str),
            "owner_id": np.array(["" if o is None else str(o) for o in owner.tolist()], str),
            "queue": np.array(["" if q is None else str(q) for q in queue.tolist()], str),
            "rule": batch.rule,
        },
        part.index,
    )


def route(recipe: Callable[[], Router], leads: Any, *, now: datetime) -> Any:
    """Route leads (or inquiries) in a Dask DataFrame by the router's rules, as
    :meth:`Router.route_columns` would route all rows in order on one machine: a Dask
    DataFrame of ``id``, ``status``, ``owner_id``, ``queue`` (``""`` for none) and
    ``rule`` (the matched rule's index, -1 the default target, -2 none). Nothing is
    written.

    ``recipe`` builds the router in each worker (a :class:`RouterRecipe`, or any
    picklable zero-argument callable); every partition is decided as of ``now``.

    Rotation across partitions: a round-robin pool over reps without capacity or quota
    assigns its ``k``-th record of the whole batch to rep ``order[k % m]``. A first pass
    counts, per partition, the records each pool (and set of match values) receives;
    the prefix sum of those counts over earlier partitions is the partition's offset,
    and the second pass routes the partition starting ``offset`` records into each
    rotation. The result equals routing the rows in order in one process. Pools whose
    choice depends on what earlier rows took (capacity, quotas, load balancing, weights,
    account owners) raise a :class:`~crmkit.errors.ValidationError`: route those in one
    process. ``duplicate_of`` is not computed (it compares rows across partitions).

    Examples
    --------
    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> from datetime import datetime, timezone
    >>> from crmkit import Rep, RoutingRule
    >>> recipe = RouterRecipe(records=(
    ...     *[Rep(id=r, name=r, team_ids=["sales"]) for r in ("ann", "bob", "cy")],
    ...     RoutingRule(id="all", target_kind="team", target_id="sales")))
    >>> leads = dd.from_pandas(pd.DataFrame({"id": [f"l{i}" for i in range(5)]}),
    ...                        npartitions=2)
    >>> now = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     out = route(recipe, leads, now=now).compute()
    >>> out["owner_id"].tolist()
    ['ann', 'bob', 'cy', 'ann', 'bob']
    """
    what = "crmkit.dask.route"
    dask = dask_module("dask")
    df = frame(leads, None, what)
    need(df, ["id"], what)
    sample = recipe()
    fields = [f for f in sample.batch_fields() if f in df.columns]
    df = df[list(dict.fromkeys(["id", *fields]))]
    built = broadcast(recipe)
    counted = dask.compute(*[dask.delayed(_count_part)(p, built, now) for p in df.to_delayed()])
    offsets: list[dict[_UnitKey, int]] = []
    running: dict[_UnitKey, int] = {}
    pools: dict[str, dict[tuple[str | None, ...], tuple[Any, tuple[str, ...]]]] = {}
    for units in counted:
        offsets.append(dict(running))
        for key, spec, order, rows in units:
            running[key] = running.get(key, 0) + rows
            seen = pools.setdefault(key[0], {})
            if key[1] not in seen:
                seen[key[1]] = (spec, order)
    for pool_key, variants in pools.items():
        specs = {spec for spec, _ in variants.values()}
        reps = [rep for _, order in variants.values() for rep in order]
        if len(specs) > 1 or len(set(reps)) < len(reps):
            raise ValidationError(
                what,
                "pools",
                pool_key,
                "is drawn from by rules or match values that share reps: one machine "
                "decides those records in turn; route them with Router.route_columns",
            )
    pd = dask_module("pandas")
    meta = pd.DataFrame(
        {
            "id": pd.Series([], dtype=df._meta["id"].dtype),
            "status": pd.Series([], dtype=str),
            "owner_id": pd.Series([], dtype=str),
            "queue": pd.Series([], dtype=str),
            "rule": pd.Series([], dtype=np.int64),
        }
    )
    return df.map_partitions(_route_part, built, now, broadcast(offsets), meta=meta)
