"""Account hierarchies: parents, subsidiaries and divisions, with roll-ups that add up.

Build an :class:`AccountHierarchy` from a store, from account records or from
``(child, parent)`` arrays; navigate it with networkx-style functions that take the
hierarchy first; roll any per-account value up the tree with :func:`rollup` (vectorised,
one numpy step per level); and draw a family as Mermaid, DOT or with matplotlib.

>>> from crmkit.hierarchy import AccountHierarchy, rollup, ultimate_parent
>>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr"], ["", "hq", "eu"])
>>> ultimate_parent(h, "fr"), rollup(h, {"hq": 1.0, "fr": 2.0}).get("hq")
('hq', 3.0)
"""

from __future__ import annotations

from crmkit.hierarchy._changes import (
    Merged,
    Reparented,
    hierarchy_history,
    merge_under,
    reparent,
)
from crmkit.hierarchy._draw import FamilyView, draw, to_dot, to_mermaid, view
from crmkit.hierarchy._graph import AccountHierarchy, IntegrityReport, Problem
from crmkit.hierarchy._intel import FamilySummary, Whitespace, family_summary, whitespace
from crmkit.hierarchy._nav import (
    ancestors,
    children,
    depth,
    descendants,
    family,
    largest_families,
    parent,
    path_to_root,
    roots,
    siblings,
    ultimate_parent,
)
from crmkit.hierarchy._rollup import (
    HOWS,
    RollupResult,
    activity_counts,
    members,
    open_pipeline,
    rollup,
    rollup_field,
    rollup_related,
    won_revenue,
)

__all__ = [
    "HOWS",
    "AccountHierarchy",
    "FamilySummary",
    "FamilyView",
    "IntegrityReport",
    "Merged",
    "Problem",
    "Reparented",
    "RollupResult",
    "Whitespace",
    "activity_counts",
    "ancestors",
    "children",
    "depth",
    "descendants",
    "draw",
    "family",
    "family_summary",
    "hierarchy_history",
    "largest_families",
    "members",
    "merge_under",
    "open_pipeline",
    "parent",
    "path_to_root",
    "reparent",
    "rollup",
    "rollup_field",
    "rollup_related",
    "roots",
    "siblings",
    "to_dot",
    "to_mermaid",
    "ultimate_parent",
    "view",
    "whitespace",
    "won_revenue",
]
