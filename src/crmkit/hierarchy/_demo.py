"""The hierarchy section of ``python -m crmkit demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from crmkit.hierarchy._draw import to_mermaid
from crmkit.hierarchy._graph import AccountHierarchy
from crmkit.hierarchy._nav import largest_families
from crmkit.hierarchy._rollup import open_pipeline, rollup_field

if TYPE_CHECKING:
    from crmkit.store import Store

__all__ = ["section"]


def section(store: Store, out: TextIO) -> None:
    """Print the largest account families with rolled-up revenue, and one as Mermaid.

    >>> import io
    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ", annual_revenue=100),
    ...     Account(id="eu", name="EU", parent_id="hq", annual_revenue=50)])
    >>> buf = io.StringIO(); section(store, buf)
    >>> print(buf.getvalue().rstrip())
    == Account hierarchy ==
    2 accounts in 1 families, deepest 1 level(s); integrity: OK
    family          accounts  depth   revenue (rolled up)   open pipeline
    HQ                     2      1                   150               0
    <BLANKLINE>
    The hq family (Mermaid, revenue rolled up):
    graph TD
      n0["HQ<br/>150"]
      n1["EU<br/>50"]
      n0 --> n1
    """
    h = AccountHierarchy.from_store(store)
    print("== Account hierarchy ==", file=out)
    if not len(h):
        print("no accounts", file=out)
        return
    families = largest_families(h, 5)
    roots_count = int((h.parents < 0).sum())
    print(
        f"{len(h)} accounts in {roots_count} families, deepest {int(h.depths.max())} "
        f"level(s); integrity: {'OK' if h.report.ok else f'{len(h.report)} problem(s)'}",
        file=out,
    )
    revenue = rollup_field(store, h, "annual_revenue")
    pipeline = open_pipeline(store, h)
    names = h.names
    print(
        f"{'family':<15}{'accounts':>9}{'depth':>7}{'revenue (rolled up)':>22}"
        f"{'open pipeline':>16}",
        file=out,
    )
    for root, size in families:
        i = h.index(root)
        members = h.tops == i
        name = str(names[i]) if names is not None and names[i] else root
        print(
            f"{name[:14]:<15}{size:>9}{int(h.depths[members].max()):>7}"
            f"{revenue.values[i]:>22,.0f}{pipeline.values[i]:>16,.0f}",
            file=out,
        )
    root = families[0][0]
    print(f"\nThe {root} family (Mermaid, revenue rolled up):", file=out)
    print(to_mermaid(h, root, revenue, max_nodes=25), file=out)
