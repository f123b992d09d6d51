"""Navigation over an :class:`AccountHierarchy`, networkx style (hierarchy first).

Every function takes account ids and returns ids; an unknown id raises
:class:`~crmkit.errors.NotFound`. Listings are deterministic: children by id,
descendants breadth-first with children by id, ancestors nearest first.
"""

from __future__ import annotations

import numpy as np

from crmkit.hierarchy._graph import AccountHierarchy, IntArray

__all__ = [
    "ancestors",
    "children",
    "depth",
    "descendants",
    "family",
    "largest_families",
    "parent",
    "path_to_root",
    "roots",
    "siblings",
    "ultimate_parent",
]


def _ids(h: AccountHierarchy, index: IntArray) -> list[str]:
    return [str(x) for x in h.ids[index].tolist()]


def roots(h: AccountHierarchy) -> list[str]:
    """Accounts without a parent, by id.

    Examples
    --------
    >>> h = AccountHierarchy.from_arrays(["b", "a", "c"], ["", "", "a"])
    >>> roots(h)
    ['a', 'b']
    """
    found = np.flatnonzero(h.parents < 0)
    return _ids(h, found[np.argsort(h._rank_of()[found], kind="stable")])


def parent(h: AccountHierarchy, account_id: str) -> str | None:
    """The parent of ``account_id`` (``None`` for a root).

    >>> parent(AccountHierarchy.from_arrays(["p", "c"], ["", "p"]), "c")
    'p'
    """
    up = int(h.parents[h.index(account_id)])
    return None if up < 0 else str(h.ids[up])


def children(h: AccountHierarchy, account_id: str) -> list[str]:
    """Direct children of ``account_id``, by id.

    >>> h = AccountHierarchy.from_arrays(["p", "z", "y"], ["", "p", "p"])
    >>> children(h, "p")
    ['y', 'z']
    """
    i = h.index(account_id)
    offsets, kids = h._csr()
    return _ids(h, kids[offsets[i] : offsets[i + 1]])


def siblings(h: AccountHierarchy, account_id: str) -> list[str]:
    """Other children of the same parent, by id (a root has no siblings).

    >>> h = AccountHierarchy.from_arrays(["p", "a", "b", "c"], ["", "p", "p", "p"])
    >>> siblings(h, "b")
    ['a', 'c']
    """
    up = parent(h, account_id)
    if up is None:
        return []
    return [c for c in children(h, up) if c != account_id]


def path_to_root(h: AccountHierarchy, account_id: str) -> list[str]:
    """``account_id``, its parent, ... up to its ultimate parent.

    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr"], ["", "hq", "eu"])
    >>> path_to_root(h, "fr")
    ['fr', 'eu', 'hq']
    """
    i = h.index(account_id)
    steps = int(h.depths[i])
    path = np.empty(steps + 1, dtype=np.int64)
    path[0] = i
    for k in range(steps):  # one step per level, never per account of the hierarchy
        path[k + 1] = h.parents[path[k]]
    return _ids(h, path)


def ancestors(h: AccountHierarchy, account_id: str) -> list[str]:
    """Every account above ``account_id``, nearest first.

    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr"], ["", "hq", "eu"])
    >>> ancestors(h, "fr")
    ['eu', 'hq']
    """
    return path_to_root(h, account_id)[1:]


def ultimate_parent(h: AccountHierarchy, account_id: str) -> str:
    """The top of ``account_id``'s hierarchy (itself for a root).

    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr"], ["", "hq", "eu"])
    >>> ultimate_parent(h, "fr"), ultimate_parent(h, "hq")
    ('hq', 'hq')
    """
    return str(h.ids[h.tops[h.index(account_id)]])


def depth(h: AccountHierarchy, account_id: str) -> int:
    """How many levels below its ultimate parent ``account_id`` is (a root is 0).

    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr"], ["", "hq", "eu"])
    >>> depth(h, "fr")
    2
    """
    return int(h.depths[h.index(account_id)])


def descendants(h: AccountHierarchy, account_id: str) -> list[str]:
    """Every account below ``account_id``, breadth-first, children by id.

    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr", "us"], ["", "hq", "eu", "hq"])
    >>> descendants(h, "hq")
    ['eu', 'us', 'fr']
    """
    return _ids(h, h._subtree(h.index(account_id))[1:])


def family(h: AccountHierarchy, account_id: str) -> list[str]:
    """All accounts under the same ultimate parent, that parent first.

    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr", "x"], ["", "hq", "eu", ""])
    >>> family(h, "fr")
    ['hq', 'eu', 'fr']
    """
    return _ids(h, h._subtree(int(h.tops[h.index(account_id)])))


def largest_families(h: AccountHierarchy, n: int = 10) -> list[tuple[str, int]]:
    """The ``n`` biggest families as ``(ultimate parent, size)``, largest first, ties by id.

    >>> h = AccountHierarchy.from_arrays(["a", "a1", "a2", "b", "b1"], ["", "a", "a", "", "b"])
    >>> largest_families(h, 2)
    [('a', 3), ('b', 2)]
    """
    sizes = np.bincount(h.tops, minlength=len(h))
    tops = np.flatnonzero(h.parents < 0)
    order = np.lexsort((h._rank_of()[tops], -sizes[tops]))[: max(n, 0)]
    return [(str(h.ids[t]), int(sizes[t])) for t in tops[order].tolist()]
