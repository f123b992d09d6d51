"""The pipeline as it was on a past date, and what changed between two such pictures."""

from __future__ import annotations

from datetime import date, datetime

import attrs
import numpy as np

from crmkit.pipeline._data import Array, PipelineData, data_of, lookup, stage_index, to_micros
from crmkit.pipeline._stages import DEFAULT_PIPELINE, Pipeline
from crmkit.pipeline._table import Table
from crmkit.store._base import Store

__all__ = ["Snapshot", "SnapshotDiff", "diff", "snapshot"]


@attrs.frozen(kw_only=True, eq=False)
class Snapshot:
    """Every deal as it stood at ``as_of``: ``deals`` has ``id``, ``stage``, ``status``,
    ``amount``, ``probability``, ``close_date`` and ``owner_id`` columns."""

    as_of: datetime | date
    deals: Table

    def __len__(self) -> int:
        return len(self.deals)


@attrs.frozen(kw_only=True, eq=False)
class SnapshotDiff:
    """What changed from snapshot ``before`` to ``after``; each part is a :class:`Table`.

    ``added`` (new deals), ``removed`` (deals gone), ``moved`` (open in both, stage
    changed), ``won`` / ``lost`` (open or new before, closed after), ``reopened``,
    ``slipped`` (close date later) and ``pulled_in`` (close date earlier) for deals open
    after, and ``amount_changed``.
    """

    before: datetime | date
    after: datetime | date
    added: Table
    removed: Table
    moved: Table
    won: Table
    lost: Table
    reopened: Table
    slipped: Table
    pulled_in: Table
    amount_changed: Table

    def counts(self) -> dict[str, int]:
        """How many deals in each part."""
        names = [
            "added", "removed", "moved", "won", "lost", "reopened",
            "slipped", "pulled_in", "amount_changed",
        ]  # fmt: skip
        return {name: len(getattr(self, name)) for name in names}


def _known(values: Array) -> Array:
    return ~np.isnan(values) if values.dtype.kind == "f" else ~np.isnat(values)


def _last_per_deal(deal: Array, keep: Array) -> tuple[Array, Array]:
    """For rows sorted by deal: (deal, row) of the last kept row of each deal."""
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        return rows, rows
    d = deal[rows]
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = d[1:] != d[:-1]
    return d[last], rows[last]


def _first_per_deal(deal: Array, keep: Array) -> tuple[Array, Array]:
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        return rows, rows
    d = deal[rows]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = d[1:] != d[:-1]
    return d[first], rows[first]


def snapshot(
    source: Store | PipelineData,
    as_of: datetime | date,
    *,
    pipeline: Pipeline = DEFAULT_PIPELINE,
) -> Snapshot:
    """The pipeline as it stood at ``as_of``, rebuilt from the stage history.

    A deal is in the snapshot if it was created by then (deals without ``created_at`` are
    kept and counted in ``missing``). Its stage, amount, probability and close date are
    those recorded by its last stage change up to ``as_of``; before its first change it
    was in that change's ``from_stage``, with the close date and amount that change
    replaced (recorded by :func:`move` when it changed them). Values the history does
    not record (amounts of deals never moved, owners) are today's. A deal closed after
    ``as_of`` with no history was open then in an unknown stage (``""``, counted in
    ``missing``).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import MemoryStore, Opportunity
    >>> from crmkit.pipeline import move
    >>> store = MemoryStore()
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> _ = store.opportunities.add(Opportunity(id="a", name="A", created_at=t0))
    >>> _ = move(store, "a", "proposal", at=t0.replace(month=2))
    >>> snapshot(store, t0.replace(day=15)).deals.row("a")["stage"]
    'prospecting'
    >>> snapshot(store, t0.replace(month=3)).deals.row("a")["stage"]
    'proposal'
    """
    data = data_of(source)
    opp = data.opportunities
    moment = to_micros(as_of)
    if not isinstance(as_of, datetime):
        moment = moment + np.timedelta64(1, "D") - np.timedelta64(1, "us")  # end of that day
    created = opp["created_at"].astype("M8[us]")
    exists = np.isnat(created) | (created <= moment)
    changes = data.stage_changes
    deal = lookup(changes["opportunity_id"], opp["id"])
    at = changes["at"].astype("M8[us]")
    valid = (deal >= 0) & ~np.isnat(at)
    order = np.lexsort((changes["id"], at, deal))
    order = order[valid[order]]
    deal_s, at_s = deal[order], at[order]

    stage = opp["stage"].copy()
    status = opp["status"].astype("<U6")
    amount = opp["amount"].copy()
    probability = opp["probability"].copy()
    close_date = opp["close_date"].copy()
    closed_at = opp["closed_at"].astype("M8[us]")
    width = max(stage.dtype.itemsize // 4, max((len(s) for s in pipeline.names), default=1))
    stage = stage.astype(f"<U{width}")

    outcomes = np.array([s.outcome.value for s in pipeline.stages] + ["open"])
    defaults = np.array([s.probability for s in pipeline.stages] + [np.nan])

    # deals whose first change came later: they were in its from_stage
    later_deals, later_rows = _first_per_deal(deal_s, at_s > moment)
    src = order[later_rows]
    stage[later_deals] = changes["from_stage"][src]
    index = stage_index(stage[later_deals], pipeline)
    status[later_deals] = outcomes[index]
    probability[later_deals] = defaults[index]
    for name, values in (("close_date", close_date), ("amount", amount)):
        # the value before that first change: recorded if the change replaced it, else
        # the value the change kept
        if name not in changes:
            continue
        before = changes[name][src]
        if f"previous_{name}" in changes:
            previous = changes[f"previous_{name}"][src]
            before = np.where(_known(previous), previous, before)
        known = _known(before)
        values[later_deals[known]] = before[known]
    # deals with a change by then: the last one says it all
    done_deals, done_rows = _last_per_deal(deal_s, at_s <= moment)
    src = order[done_rows]
    stage[done_deals] = changes["to_stage"][src]
    status[done_deals] = outcomes[stage_index(changes["to_stage"][src], pipeline)]
    recorded_amount = changes["amount"][src]
    amount[done_deals] = np.where(np.isnan(recorded_amount), amount[done_deals], recorded_amount)
    probability[done_deals] = changes["probability"][src]
    if "close_date" in changes:
        recorded = changes["close_date"][src]
        close_date[done_deals] = np.where(np.isnat(recorded), close_date[done_deals], recorded)
    # closed later, no history: open then, stage unknown
    has_history = np.zeros(len(stage), dtype=bool)
    has_history[deal_s] = True
    closed_later = (~has_history) & (status != "open") & (closed_at > moment)
    stage[closed_later] = ""
    status[closed_later] = "open"
    probability[closed_later] = np.nan

    rows = np.flatnonzero(exists)
    missing = {
        "no_created_at": int(np.isnat(created).sum()),
        "unknown_stage_as_of": int(closed_later[rows].sum()),
        "no_amount": int(np.isnan(amount[rows]).sum()),
        "no_close_date": int(np.isnat(close_date[rows]).sum()),
    }
    table = Table(
        columns={
            "id": opp["id"][rows],
            "stage": stage[rows],
            "status": status[rows],
            "amount": amount[rows],
            "probability": probability[rows],
            "close_date": close_date[rows],
            "owner_id": opp["owner_id"][rows],
        },
        keys=("id",),
        missing=missing,
        title=f"pipeline as of {as_of.isoformat()}",
    )
    return Snapshot(as_of=as_of, deals=table)


def _pair_table(
    title: str, ids: Array, before: dict[str, Array], after: dict[str, Array]
) -> Table:
    columns: dict[str, Array] = {"id": ids}
    for name, values in before.items():
        columns[f"{name}_before"] = values
    for name, values in after.items():
        columns[f"{name}_after"] = values
    return Table(columns=columns, keys=("id",), title=title)


def diff(before: Snapshot, after: Snapshot) -> SnapshotDiff:
    """What changed between two snapshots (see :class:`SnapshotDiff`).

    Examples
    --------
    >>> from datetime import date, datetime, timezone
    >>> from crmkit import MemoryStore, Opportunity
    >>> from crmkit.pipeline import close_won, move
    >>> store = MemoryStore()
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id="a", name="A", created_at=t0, close_date=date(2026, 3, 1)),
    ...     Opportunity(id="b", name="B", created_at=t0)])
    >>> a = snapshot(store, t0)
    >>> _ = move(store, "a", "proposal", at=t0.replace(day=5), close_date=date(2026, 4, 1))
    >>> _ = close_won(store, "b", at=t0.replace(day=6), amount=10)
    >>> changes = diff(a, snapshot(store, t0.replace(day=7)))
    >>> changes.moved["id"].tolist(), changes.won["id"].tolist(), changes.slipped["id"].tolist()
    (['a'], ['b'], ['a'])
    """
    a, b = before.deals, after.deals
    a_ids, b_ids = a["id"], b["id"]
    common, ia, ib = np.intersect1d(a_ids, b_ids, assume_unique=True, return_indices=True)
    added = ~np.isin(b_ids, a_ids)
    removed = ~np.isin(a_ids, b_ids)

    def part(title: str, mask: Array, fields: list[str]) -> Table:
        return _pair_table(
            title,
            common[mask],
            {f: a[f][ia][mask] for f in fields},
            {f: b[f][ib][mask] for f in fields},
        )

    status_a, status_b = a["status"][ia], b["status"][ib]
    open_a, open_b = status_a == "open", status_b == "open"
    close_a, close_b = a["close_date"][ia], b["close_date"][ib]
    amount_a, amount_b = a["amount"][ia], b["amount"][ib]
    both_known = ~np.isnat(close_a) & ~np.isnat(close_b)
    amount_changed = (amount_a != amount_b) & ~(np.isnan(amount_a) & np.isnan(amount_b))

    def side(table: Table, mask: Array, title: str) -> Table:
        return Table(
            columns={n: c[mask] for n, c in table.columns.items()}, keys=("id",), title=title
        )

    new_won = added & (b["status"] == "won")
    new_lost = added & (b["status"] == "lost")
    won_common = open_a & (status_b == "won")
    lost_common = open_a & (status_b == "lost")
    won = _pair_table(
        "won",
        np.concatenate([common[won_common], b_ids[new_won]]),
        {"stage": np.concatenate([a["stage"][ia][won_common], np.full(new_won.sum(), "")])},
        {
            "amount": np.concatenate([amount_b[won_common], b["amount"][new_won]]),
            "close_date": np.concatenate([close_b[won_common], b["close_date"][new_won]]),
        },
    )
    lost = _pair_table(
        "lost",
        np.concatenate([common[lost_common], b_ids[new_lost]]),
        {"stage": np.concatenate([a["stage"][ia][lost_common], np.full(new_lost.sum(), "")])},
        {
            "amount": np.concatenate([amount_b[lost_common], b["amount"][new_lost]]),
            "close_date": np.concatenate([close_b[lost_common], b["close_date"][new_lost]]),
        },
    )
    return SnapshotDiff(
        before=before.as_of,
        after=after.as_of,
        added=side(b, added, "added"),
        removed=side(a, removed, "removed"),
        moved=part("moved", open_a & open_b & (a["stage"][ia] != b["stage"][ib]), ["stage"]),
        won=won,
        lost=lost,
        reopened=part("reopened", ~open_a & open_b, ["stage", "status"]),
        slipped=part("slipped", open_b & both_known & (close_b > close_a), ["close_date"]),
        pulled_in=part("pulled_in", open_b & both_known & (close_b < close_a), ["close_date"]),
        amount_changed=part("amount_changed", amount_changed, ["amount"]),
    )
