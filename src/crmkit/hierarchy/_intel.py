"""Account-based intelligence over a family: cross-sell whitespace and a summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from crmkit._columns import field_kind
from crmkit._optional import require
from crmkit.errors import ValidationError
from crmkit.hierarchy._graph import AccountHierarchy
from crmkit.hierarchy._rollup import per_account

if TYPE_CHECKING:
    import pandas as pd

    from crmkit.store import Store

__all__ = ["FamilySummary", "Whitespace", "family_summary", "whitespace"]


@attrs.frozen
class Whitespace:
    """Which members of a family bought which products, and which did not.

    ``accounts`` lists the family (ultimate parent first); ``products`` every product
    some member has won; ``bought[p]`` and ``missing[p]`` split the family for product
    ``p``. :meth:`matrix` is the same as a boolean array (accounts x products).
    """

    root: str
    accounts: tuple[str, ...]
    products: tuple[str, ...]
    bought: Mapping[str, tuple[str, ...]]
    missing: Mapping[str, tuple[str, ...]]

    def matrix(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """``matrix()[i, j]``: account ``accounts[i]`` has bought ``products[j]``."""
        where = {a: i for i, a in enumerate(self.accounts)}
        out = np.zeros((len(self.accounts), len(self.products)), dtype=bool)
        for j, product in enumerate(self.products):
            out[[where[a] for a in self.bought[product]], j] = True
        return out

    def opportunities(self) -> list[tuple[str, str]]:
        """Every ``(account, product)`` pair still to sell, by account then product."""
        pairs = [(a, p) for p in self.products for a in self.missing[p]]
        return sorted(pairs)

    def to_pandas(self) -> pd.DataFrame:
        """The matrix as a DataFrame (accounts as rows, products as columns)."""
        pd = require("pandas", extra="pandas", feature="to_pandas()")

        return pd.DataFrame(
            self.matrix(),
            index=pd.Index(self.accounts, name="account_id"),
            columns=list(self.products),
        )


def whitespace(
    store: Store, h: AccountHierarchy, account_id: str, *, product_field: str = "product"
) -> Whitespace:
    """Cross-sell whitespace for the family of ``account_id``.

    Products come from the family's won opportunities, read from ``product_field``
    (``"product"`` or a custom field such as ``"custom.sku"``); deals without a product
    are ignored.

    Examples
    --------
    >>> from crmkit import Account, MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ"),
    ...     Account(id="eu", name="EU", parent_id="hq")])
    >>> _ = store.opportunities.add_many([
    ...     Opportunity(id="o1", name="x", account_id="hq", product="crm", status="won"),
    ...     Opportunity(id="o2", name="y", account_id="eu", product="bi", status="won")])
    >>> ws = whitespace(store, AccountHierarchy.from_store(store), "eu")
    >>> ws.products, ws.missing["crm"], ws.opportunities()
    (('bi', 'crm'), ('eu',), [('eu', 'crm'), ('hq', 'bi')])
    """
    from crmkit.hierarchy._nav import family

    if product_field != "product" and field_kind(
        store.opportunities.record_type, product_field
    ) not in ("text", "custom"):
        raise ValidationError(
            "Opportunity", product_field, product_field, "the product field must be text"
        )
    members = family(h, account_id)
    cols = store.opportunities.columns(
        ["account_id", product_field],
        {
            "all": [
                {"field": "status", "op": "==", "value": "won"},
                {"field": "account_id", "op": "in", "value": members},
            ]
        },
    )
    accounts = cols["account_id"]
    products = np.array(["" if v is None else str(v) for v in cols[product_field].tolist()])
    keep = products != ""
    pairs = sorted(set(zip(accounts[keep].tolist(), products[keep].tolist(), strict=True)))
    names = tuple(sorted({p for _, p in pairs}))
    bought = {p: tuple(sorted(a for a, q in pairs if q == p)) for p in names}
    have = {p: set(bought[p]) for p in names}
    missing = {p: tuple(a for a in members if a not in have[p]) for p in names}
    return Whitespace(
        root=members[0], accounts=tuple(members), products=names, bought=bought, missing=missing
    )


@attrs.frozen
class FamilySummary:
    """One family at a glance: its size, depth, money and owners."""

    root: str
    size: int
    depth: int
    total_revenue: float
    accounts_without_revenue: int
    open_pipeline: float
    won_revenue: float
    owners: Mapping[str, int]

    def __str__(self) -> str:
        owners = ", ".join(f"{o} ({n})" for o, n in self.owners.items()) or "none"
        return (
            f"{self.root}: {self.size} accounts, depth {self.depth}, revenue "
            f"{self.total_revenue:,.0f}, open pipeline {self.open_pipeline:,.0f}, won "
            f"{self.won_revenue:,.0f}, owners {owners}"
        )


def family_summary(store: Store, h: AccountHierarchy, account_id: str) -> FamilySummary:
    """Size, depth, total annual revenue, open pipeline, won revenue and owners of the
    family of ``account_id`` (owners map owner id to accounts owned; ``""`` is unowned).

    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ", annual_revenue=90, owner_id="r1"),
    ...     Account(id="eu", name="EU", parent_id="hq", owner_id="r2")])
    >>> s = family_summary(store, AccountHierarchy.from_store(store), "eu")
    >>> s.size, s.depth, s.total_revenue, s.accounts_without_revenue, dict(s.owners)
    (2, 1, 90.0, 1, {'r1': 1, 'r2': 1})
    """
    from crmkit.hierarchy._nav import family

    members = family(h, account_id)
    index = h.indices(np.array(members, dtype=str))
    cols = store.accounts.columns(
        ["id", "annual_revenue", "owner_id"], {"field": "id", "op": "in", "value": members}
    )
    revenue = cols["annual_revenue"]
    owners: dict[str, int] = {}
    values, counts = np.unique(cols["owner_id"], return_counts=True)
    for owner, count in zip(values.tolist(), counts.tolist(), strict=True):
        owners[str(owner)] = int(count)
    money: dict[str, float] = {}
    for status in ("open", "won"):
        opps = store.opportunities.columns(
            ["account_id", "amount"],
            {
                "all": [
                    {"field": "status", "op": "==", "value": status},
                    {"field": "account_id", "op": "in", "value": members},
                ]
            },
        )
        money[status] = float(per_account(h, opps["account_id"], opps["amount"])[index].sum())
    return FamilySummary(
        root=members[0],
        size=len(members),
        depth=int(h.depths[index].max() - h.depths[index[0]]),
        total_revenue=float(np.nansum(revenue)),
        accounts_without_revenue=int(np.count_nonzero(np.isnan(revenue)))
        + (len(members) - int(revenue.size)),
        open_pipeline=money["open"],
        won_revenue=money["won"],
        owners=owners,
    )
