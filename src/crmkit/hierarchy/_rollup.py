"""Roll-ups: every account gets the aggregate over its subtree, itself included.

The accounts are laid out once in level order (all roots, then depth 1, ...), so each
level is a contiguous slice and its parents sit in the slice before it. A roll-up is then
one vectorised step per level, deepest first (``np.bincount`` for sums and counts,
``np.minimum.at`` / ``np.maximum.at`` for min and max): no Python loop per account.

Missing values (NaN) are skipped: ``count`` is the number of accounts in the subtree that
have a value, and :meth:`RollupResult.members` lists exactly those accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from crmkit._columns import field_kind
from crmkit._optional import require
from crmkit.errors import NotFound, ValidationError
from crmkit.hierarchy._graph import AccountHierarchy, IntArray

if TYPE_CHECKING:
    import pandas as pd

    from crmkit.store import CriteriaLike, Store

__all__ = [
    "HOWS",
    "RollupResult",
    "activity_counts",
    "members",
    "open_pipeline",
    "rollup",
    "rollup_field",
    "won_revenue",
]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
HOWS = ("count", "max", "mean", "min", "sum")
"""The aggregates :func:`rollup` knows."""


@attrs.frozen
class _Layout:
    order: IntArray  # level-order position -> account index
    parent_pos: IntArray  # level-order position of each position's parent (-1 for roots)
    bounds: IntArray  # level k is order[bounds[k]:bounds[k + 1]]


def _layout(h: AccountHierarchy) -> _Layout:
    cached = h._layout
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    n = len(h)
    depth = h._depth
    if depth.dtype == np.uint8:  # from a chase: already small
        small = depth
    else:
        depth = h.depths
        small = depth.astype(np.uint16) if n and int(depth.max()) < 65535 else depth
    order = np.argsort(small, kind="stable").astype(np.int64)  # radix sort for small ints
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n, dtype=np.int64)
    counts = np.bincount(depth, minlength=1) if n else np.zeros(1, dtype=np.int64)
    bounds = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    parent_pos = np.take(position, np.take(h.parents, order))
    parent_pos[: bounds[1]] = -1  # the roots come first; their -1 read the last position
    layout = _Layout(order=order, parent_pos=parent_pos, bounds=bounds)
    h._layout = layout
    return layout


@attrs.frozen(eq=False, repr=False)
class RollupResult:
    """The roll-up of one value over a hierarchy: ``values[i]`` belongs to ``ids[i]``.

    ``counts[i]`` is how many accounts of ``ids[i]``'s subtree had a value; a subtree
    without any value rolls up to NaN (0 for ``sum`` and ``count``).
    """

    hierarchy: AccountHierarchy
    how: str
    values: FloatArray
    has_value: np.ndarray[Any, np.dtype[np.bool_]]
    _counts: IntArray | None = attrs.field(default=None, alias="counts")

    @property
    def counts(self) -> IntArray:
        """How many accounts of each subtree had a value (worked out when first read)."""
        if self._counts is None:
            layout = _layout(self.hierarchy)
            counts = np.empty(len(self.hierarchy), dtype=np.int64)
            summed = _sum_levels(layout, self.has_value[layout.order].astype(np.float64))
            counts[layout.order] = np.rint(summed).astype(np.int64)
            counts.setflags(write=False)
            object.__setattr__(self, "_counts", counts)
        assert self._counts is not None
        return self._counts

    @property
    def ids(self) -> np.ndarray[Any, Any]:
        """The account ids, aligned with :attr:`values` (same as ``hierarchy.ids``)."""
        return self.hierarchy.ids

    def get(self, account_id: str) -> float:
        """The rolled-up value of one account."""
        return float(self.values[self.hierarchy.index(account_id)])

    def count(self, account_id: str) -> int:
        """How many accounts of the subtree had a value."""
        return int(self.counts[self.hierarchy.index(account_id)])

    def members(self, account_id: str) -> list[str]:
        """Exactly the accounts this roll-up counted for ``account_id``."""
        subtree = self.hierarchy._subtree(self.hierarchy.index(account_id))
        kept = subtree[self.has_value[subtree]]
        return [str(x) for x in self.hierarchy.ids[kept].tolist()]

    def to_dict(self) -> dict[str, float]:
        """``{account id: value}`` for every account."""
        return dict(zip(self.ids.tolist(), self.values.tolist(), strict=True))

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame indexed by account id with ``value`` and ``count`` columns."""
        pd = require("pandas", extra="pandas", feature="to_pandas()")

        return pd.DataFrame(
            {"value": self.values, "count": self.counts},
            index=pd.Index(self.ids, name="account_id"),
        )

    def __getitem__(self, account_id: str) -> float:
        return self.get(account_id)

    def __len__(self) -> int:
        return int(self.values.size)

    def __repr__(self) -> str:
        return f"<RollupResult {self.how} over {len(self)} accounts>"


def _values(h: AccountHierarchy, values: Any) -> FloatArray:
    n = len(h)
    if values is None:
        return np.ones(n, dtype=np.float64)
    if isinstance(values, RollupResult):
        raise ValidationError(
            "Rollup", "values", "RollupResult", "roll up raw per-account values, not a roll-up"
        )
    if isinstance(values, Mapping):
        keys = list(values)
        out = np.full(n, np.nan, dtype=np.float64)
        if not keys:
            return out
        where = h.indices(np.array([str(k) for k in keys], dtype=str))
        unknown = [k for k, i in zip(keys, where.tolist(), strict=True) if i < 0]
        if unknown:
            raise NotFound("Account", str(unknown[0]))
        try:
            data = np.array([np.nan if v is None else float(v) for v in values.values()])
        except (TypeError, ValueError) as err:
            raise ValidationError("Rollup", "values", values, f"must be numbers: {err}") from err
        out[where] = data
        return out
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValidationError(
            "Rollup", "values", type(values).__name__, f"must be numbers: {err}"
        ) from err
    if array.shape != (n,):
        raise ValidationError(
            "Rollup",
            "values",
            array.shape,
            f"an array of values must be aligned with hierarchy.ids (shape ({n},))",
        )
    return array


def rollup(h: AccountHierarchy, values: Any = None, how: str = "sum") -> RollupResult:
    """Aggregate ``values`` over every account's subtree (itself included).

    ``values`` is an array aligned with ``h.ids``, a mapping ``{account id: number}``
    (accounts left out have no value), or ``None`` (every account counts 1, so
    ``how="sum"`` or ``"count"`` gives subtree sizes). NaN means "no value" and is
    skipped; ``how`` is ``"sum"``, ``"count"``, ``"min"``, ``"max"`` or ``"mean"``.

    Examples
    --------
    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr", "us"], ["", "hq", "eu", "hq"])
    >>> revenue = {"hq": 10.0, "eu": 5.0, "fr": 2.0, "us": None}
    >>> total = rollup(h, revenue, how="sum")
    >>> total.get("hq"), total.get("eu"), total.count("hq")
    (17.0, 7.0, 3)
    >>> total.members("hq")
    ['hq', 'eu', 'fr']
    >>> rollup(h, revenue, how="max").get("eu")
    5.0
    """
    if how not in HOWS:
        raise ValidationError("Rollup", "how", how, f"must be one of {', '.join(HOWS)}")
    raw = _values(h, values)
    layout = _layout(h)
    n = len(h)
    has = ~np.isnan(raw)
    has.setflags(write=False)
    out = np.empty(n, dtype=np.float64)
    if how == "sum" and bool(has.all()):  # the common case: one pass, counts when asked
        out[layout.order] = _sum_levels(layout, raw[layout.order])
        out.setflags(write=False)
        return RollupResult(hierarchy=h, how=how, values=out, has_value=has)
    x = raw[layout.order]
    present = has[layout.order]
    counts = _sum_levels(layout, present.astype(np.float64))
    if how in ("sum", "mean", "count"):
        acc = _sum_levels(layout, np.where(present, x, 0.0))
    else:
        acc = np.where(present, x, np.inf if how == "min" else -np.inf)
        combine = np.minimum if how == "min" else np.maximum
        bounds = layout.bounds
        for level in range(bounds.size - 2, 0, -1):
            lo, hi, plo = int(bounds[level]), int(bounds[level + 1]), int(bounds[level - 1])
            combine.at(acc[plo:lo], layout.parent_pos[lo:hi] - plo, acc[lo:hi])
    if how == "count":
        acc = counts.copy()
    elif how == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.where(counts > 0, acc / np.maximum(counts, 1), np.nan)
    elif how in ("min", "max"):
        acc = np.where(counts > 0, acc, np.nan)
    out[layout.order] = acc
    out_counts = np.empty(n, dtype=np.int64)
    out_counts[layout.order] = np.rint(counts).astype(np.int64)
    for array in (out, out_counts):
        array.setflags(write=False)
    return RollupResult(hierarchy=h, how=how, values=out, counts=out_counts, has_value=has)


def _sum_levels(layout: _Layout, acc: FloatArray) -> FloatArray:
    """Add each level-order value into its parent's, deepest level first (in place)."""
    bounds = layout.bounds
    for level in range(bounds.size - 2, 0, -1):
        lo, hi, plo = int(bounds[level]), int(bounds[level + 1]), int(bounds[level - 1])
        acc[plo:lo] += np.bincount(
            layout.parent_pos[lo:hi] - plo, weights=acc[lo:hi], minlength=lo - plo
        )
    return acc


def members(h: AccountHierarchy, account_id: str, values: Any = None) -> list[str]:
    """The accounts a roll-up of ``values`` counts for ``account_id``.

    Its subtree (itself first, then breadth-first), keeping only accounts with a value
    when ``values`` is given; ``len(members(...))`` always equals the roll-up's count.

    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr"], ["", "hq", "eu"])
    >>> members(h, "hq"), members(h, "hq", {"fr": 1.0})
    (['hq', 'eu', 'fr'], ['fr'])
    """
    subtree = h._subtree(h.index(account_id))
    if values is not None:
        subtree = subtree[~np.isnan(_values(h, values)[subtree])]
    return [str(x) for x in h.ids[subtree].tolist()]


def per_account(
    h: AccountHierarchy, account_ids: np.ndarray[Any, Any], weights: FloatArray | None = None
) -> FloatArray:
    """Sum ``weights`` (default 1) by account into an array aligned with ``h.ids``.

    Rows whose account is empty or not in the hierarchy are left out.
    """
    where = h.indices(account_ids) if len(account_ids) else np.empty(0, dtype=np.int64)
    keep = where >= 0
    w = None if weights is None else np.nan_to_num(np.asarray(weights, dtype=np.float64))[keep]
    return np.bincount(where[keep], weights=w, minlength=len(h)).astype(np.float64)


def rollup_field(store: Store, h: AccountHierarchy, field: str, how: str = "sum") -> RollupResult:
    """Roll up a numeric account field (``"annual_revenue"``, ``"custom.seats"`` ...).

    Accounts of the hierarchy missing from the store have no value.

    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([
    ...     Account(id="hq", name="HQ", annual_revenue=100),
    ...     Account(id="eu", name="EU", parent_id="hq", annual_revenue=40)])
    >>> rollup_field(store, AccountHierarchy.from_store(store), "annual_revenue").get("hq")
    140.0
    """
    kind = field_kind(store.accounts.record_type, field)
    if kind not in ("int", "float", "money", "custom"):
        raise ValidationError("Account", field, kind, "roll-ups need a numeric field")
    cols = store.accounts.columns(["id", field])
    column = cols[field]
    if column.dtype.kind != "f":
        if kind == "custom" and column.dtype.kind == "O" and all(v is None for v in column):
            column = np.full(column.size, np.nan)
        else:
            raise ValidationError(
                "Account", field, str(column.dtype), "roll-ups need numbers in every account"
            )
    values = np.full(len(h), np.nan, dtype=np.float64)
    where = h.indices(cols["id"]) if column.size else np.empty(0, dtype=np.int64)
    keep = where >= 0
    values[where[keep]] = column[keep]
    return rollup(h, values, how)


def _opportunity_totals(store: Store, h: AccountHierarchy, status: str) -> FloatArray:
    cols = store.opportunities.columns(
        ["account_id", "amount"], {"field": "status", "op": "==", "value": status}
    )
    return per_account(h, cols["account_id"], cols["amount"])


def open_pipeline(store: Store, h: AccountHierarchy) -> RollupResult:
    """Sum of open opportunity amounts, rolled up (accounts without deals count 0).

    >>> from crmkit import Account, MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ"),
    ...                              Account(id="eu", name="EU", parent_id="hq")])
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id="o1", name="A", account_id="eu", amount=30),
    ...     Opportunity(id="o2", name="B", account_id="hq", amount=5, status="won")])
    >>> h = AccountHierarchy.from_store(store)
    >>> open_pipeline(store, h).get("hq"), won_revenue(store, h).get("hq")
    (30.0, 5.0)
    """
    return rollup(h, _opportunity_totals(store, h, "open"), "sum")


def won_revenue(store: Store, h: AccountHierarchy) -> RollupResult:
    """Sum of won opportunity amounts, rolled up.

    >>> from crmkit import Account, MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ"),
    ...                              Account(id="eu", name="EU", parent_id="hq")])
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id="o1", name="A", account_id="eu", amount=20, status="won"),
    ...     Opportunity(id="o2", name="B", account_id="hq", amount=5, status="won"),
    ...     Opportunity(id="o3", name="C", account_id="eu", amount=99, status="lost")])
    >>> won = won_revenue(store, AccountHierarchy.from_store(store))
    >>> won.get("hq"), won.get("eu")
    (25.0, 20.0)
    """
    return rollup(h, _opportunity_totals(store, h, "won"), "sum")


def activity_counts(
    store: Store, h: AccountHierarchy, criteria: CriteriaLike = None
) -> RollupResult:
    """Number of activities (optionally matching ``criteria``), rolled up.

    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, Activity, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ"),
    ...                              Account(id="eu", name="EU", parent_id="hq")])
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> _ = store.activities.add_many([Activity(id=f"a{i}", kind="call", at=at, account_id="eu")
    ...                                for i in range(3)])
    >>> activity_counts(store, AccountHierarchy.from_store(store)).get("hq")
    3.0
    """
    cols = store.activities.columns(["account_id"], criteria)
    return rollup(h, per_account(h, cols["account_id"]), "sum")


def rollup_related(
    store: Store,
    h: AccountHierarchy,
    record_type: type[Any],
    field: str | None = None,
    *,
    by: str = "account_id",
    how: str = "sum",
    criteria: CriteriaLike = None,
) -> RollupResult:
    """Total a numeric ``field`` of the ``record_type`` records that refer to an account
    (through ``by``) per account, then roll the totals up with ``how``; without
    ``field``, count the records. Works for any record type with a reference to
    accounts, a registered one (``fields.reference(Account)``) included.

    >>> from crmkit import Account, MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ"),
    ...                              Account(id="eu", name="EU", parent_id="hq")])
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id="o1", name="A", account_id="eu", amount=30),
    ...     Opportunity(id="o2", name="B", account_id="hq", amount=5)])
    >>> h = AccountHierarchy.from_store(store)
    >>> rollup_related(store, h, Opportunity, "amount").get("hq")
    35.0
    >>> rollup_related(store, h, Opportunity).get("eu")
    1.0
    """
    name = getattr(record_type, "__name__", str(record_type))
    if field_kind(record_type, by) != "text":
        raise ValidationError(name, by, by, "roll-ups group by a reference to accounts (text)")
    fields = [by]
    if field is not None:
        kind = field_kind(record_type, field)
        if kind not in ("int", "float", "money", "custom"):
            raise ValidationError(name, field, kind, "roll-ups need a numeric field")
        fields.append(field)
    cols = store.repository(record_type).columns(fields, criteria)
    weights = None
    if field is not None:
        weights = cols[field]
        if weights.dtype.kind != "f":
            if weights.dtype.kind == "O" and all(v is None for v in weights):
                weights = np.full(weights.size, np.nan)
            else:
                raise ValidationError(
                    name, field, str(weights.dtype), "roll-ups need numbers in every record"
                )
    return rollup(h, per_account(h, cols[by], weights), how)
