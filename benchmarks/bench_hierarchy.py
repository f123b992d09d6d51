"""Roll-up over a large account forest: crmkit beside the code a user would otherwise write.

    python benchmarks/bench_hierarchy.py [--quick] [--size N]

Every contender gets the same input, string arrays ``(child_ids, parent_ids)`` in a random
order (ids like ``acc-0001234``; ``""`` for roots), and computes the subtree sum of one
float per account. The peers:

- numpy level-by-level: a minimal hand-written version (sort + searchsorted to map parent
  ids, depth by repeated parent lookups, one ``np.bincount`` per level);
- networkx: build a ``DiGraph`` and sum in ``dfs_postorder_nodes`` order;
- pure Python: dict of children, iterative post-order;
- SQLite: a recursive CTE over an indexed table (every (account, ancestor) pair, grouped).

All results are checked against each other before the table is printed.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from crmkit.hierarchy import AccountHierarchy, rollup

Array = np.ndarray[Any, Any]


def forest(n: int, max_depth: int = 10, seed: int = 7) -> tuple[Array, Array, Array]:
    """(child ids, parent ids, values) of a random forest with depth <= max_depth."""
    rng = np.random.default_rng(seed)
    depth = np.minimum(rng.geometric(0.35, n) - 1, max_depth)
    depth[: max(1, n // 1000)] = 0
    depth.sort()
    parent = np.full(n, -1)
    starts = np.searchsorted(depth, np.arange(max_depth + 2))
    for d in range(1, max_depth + 1):
        lo, hi, plo, phi = starts[d], starts[d + 1], starts[d - 1], starts[d]
        if hi > lo:
            parent[lo:hi] = rng.integers(plo, phi, hi - lo)
    names = np.char.add("acc-", np.char.zfill(np.arange(n).astype(str), 7))
    parent_names = np.where(parent >= 0, names[np.maximum(parent, 0)], "")
    shuffle = rng.permutation(n)
    return names[shuffle], parent_names[shuffle], rng.random(n)


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


# -- the peers ------------------------------------------------------------------------------


def numpy_levels(ids: Array, parents: Array, values: Array) -> Array:
    """A minimal level-by-level numpy roll-up, as a numpy user would write it."""
    n = ids.size
    order = np.argsort(ids)
    sorted_ids = ids[order]
    has = parents != ""
    want = np.flatnonzero(has)
    q = np.argsort(parents[want])
    pos = np.searchsorted(sorted_ids, parents[want][q])
    parent = np.full(n, -1)
    parent[want[q]] = order[pos]
    depth = np.zeros(n, dtype=np.int64)
    while True:  # one pass per level until depths settle
        new = np.where(parent >= 0, depth[parent] + 1, 0)
        if np.array_equal(new, depth):
            break
        depth = new
    total = values.astype(np.float64).copy()
    for level in range(int(depth.max()), 0, -1):
        idx = np.flatnonzero(depth == level)
        total += np.bincount(parent[idx], weights=total[idx], minlength=n)
    return total


def _chased_depth(parent: Array) -> Array:
    depth = np.zeros(parent.size, dtype=np.uint8)
    active = np.flatnonzero(parent >= 0)
    above = parent[active]
    while active.size:
        depth[active] += 1
        nxt = parent[above]
        keep = nxt >= 0
        active, above = active[keep], nxt[keep]
    return depth


def floor_levels(parent: Array, values: Array) -> Array:
    """The numpy floor from integer positions: depth by walking only the accounts still
    climbing, a counting sort by depth, then each level added into its parents."""
    depth = _chased_depth(parent)
    order = np.argsort(depth, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(depth))])
    total = values.astype(np.float64).copy()
    for level in range(bounds.size - 2, 0, -1):
        idx = order[bounds[level] : bounds[level + 1]]
        np.add.at(total, parent[idx], total[idx])
    return total


def floor_push(parent: Array, values: Array) -> Array:
    """The other numpy floor: push every value to its parent, grandparent, ... at once."""
    total = values.astype(np.float64).copy()
    linked = parent >= 0
    above, carried = parent[linked], values[linked]
    while above.size:
        np.add.at(total, above, carried)
        nxt = parent[above]
        keep = nxt >= 0
        above, carried = nxt[keep], carried[keep]
    return total


def networkx_build(ids: Array, parents: Array) -> Any:
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(ids.tolist())
    has = parents != ""
    graph.add_edges_from(zip(parents[has].tolist(), ids[has].tolist(), strict=True))
    return graph


def networkx_sum(graph: Any, ids: Array, values: Array) -> Array:
    import networkx as nx

    total = dict(zip(ids.tolist(), values.tolist(), strict=True))
    for node in nx.dfs_postorder_nodes(graph):
        for child in graph.successors(node):
            total[node] += total[child]
    return np.array([total[i] for i in ids.tolist()])


def python_postorder(ids: Array, parents: Array, values: Array) -> Array:
    id_list, parent_list = ids.tolist(), parents.tolist()
    total = dict(zip(id_list, values.tolist(), strict=True))
    kids: dict[str, list[str]] = {}
    for child, parent in zip(id_list, parent_list, strict=True):
        if parent:
            kids.setdefault(parent, []).append(child)
    for root in (c for c, p in zip(id_list, parent_list, strict=True) if not p):
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                total[node] += sum(total[c] for c in kids.get(node, ()))
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in kids.get(node, ()))
    return np.array([total[i] for i in id_list])


def sqlite_load(ids: Array, parents: Array, values: Array) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE acc (id TEXT PRIMARY KEY, parent TEXT, value REAL)")
    db.executemany(
        "INSERT INTO acc VALUES (?, ?, ?)",
        zip(ids.tolist(), [p or None for p in parents.tolist()], values.tolist(), strict=True),
    )
    db.commit()
    return db


def sqlite_cte(db: sqlite3.Connection, ids: Array) -> Array:
    rows = db.execute(
        """
        WITH RECURSIVE up(node, anc) AS (
            SELECT id, id FROM acc
            UNION ALL
            SELECT up.node, a.parent FROM up JOIN acc a ON a.id = up.anc
            WHERE a.parent IS NOT NULL
        )
        SELECT up.anc, SUM(v.value) FROM up JOIN acc v ON v.id = up.node GROUP BY up.anc
        """
    ).fetchall()
    total = dict(rows)
    return np.array([total[i] for i in ids.tolist()])


# -- run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 accounts, one repeat")
    parser.add_argument("--size", type=int, default=None, help="number of accounts")
    args = parser.parse_args(argv)
    n = args.size or (100_000 if args.quick else 1_000_000)
    repeat = 1 if args.quick else 3
    ids, parents, values = forest(n)
    print(f"roll-up (sum) over {n:,} accounts, depth <= 10; best of {repeat}")

    rows: list[tuple[str, float]] = []
    t, built = best_of(repeat, lambda: AccountHierarchy.from_arrays(ids, parents))
    t_full, result = best_of(
        repeat, lambda: rollup(AccountHierarchy.from_arrays(ids, parents), values)
    )
    reference = result.values
    rows.append(("crmkit: build + roll-up", t_full))
    rows.append(("crmkit: build only", t))
    rollup(built, values)  # lay out the levels once (cached on the hierarchy)
    t_roll, _ = best_of(max(repeat, 5), lambda: rollup(built, values))
    rows.append(("crmkit: roll-up alone (built)", t_roll))

    t_np, got = best_of(repeat, lambda: numpy_levels(ids, parents, values))
    assert np.allclose(got, reference), "numpy reference disagrees"
    rows.append(("numpy level-by-level", t_np))

    # integer positions: what a user holding a parent array (or a DataFrame) has
    where = {account: i for i, account in enumerate(ids.tolist())}
    positions = np.array([where.get(p, -1) for p in parents.tolist()], dtype=np.int64)
    t_pos, got = best_of(
        max(repeat, 5), lambda: rollup(AccountHierarchy.from_parents(positions), values)
    )
    assert np.allclose(got.values, reference), "crmkit from positions disagrees"
    rows.append(("crmkit: from_parents + roll-up", t_pos))
    t_levels, got = best_of(max(repeat, 5), lambda: floor_levels(positions, values))
    assert np.allclose(got, reference), "numpy floor (levels) disagrees"
    rows.append(("numpy floor from positions: levels", t_levels))
    t_push, got = best_of(max(repeat, 5), lambda: floor_push(positions, values))
    assert np.allclose(got, reference), "numpy floor (push) disagrees"
    rows.append(("numpy floor from positions: push", t_push))
    t_floor = min(t_levels, t_push)

    t_nx_build, graph = best_of(1, lambda: networkx_build(ids, parents))
    t_nx_sum, got = best_of(1, lambda: networkx_sum(graph, ids, values))
    assert np.allclose(got, reference), "networkx disagrees"
    rows.append(("networkx: build + dfs_postorder", t_nx_build + t_nx_sum))
    rows.append(("networkx: dfs_postorder alone", t_nx_sum))
    graph = None  # free the memory before the next peer

    t_py, got = best_of(1, lambda: python_postorder(ids, parents, values))
    assert np.allclose(got, reference), "pure Python disagrees"
    rows.append(("pure Python post-order", t_py))

    t_load, db = best_of(1, lambda: sqlite_load(ids, parents, values))
    t_cte, got = best_of(1, lambda: sqlite_cte(db, ids))
    assert np.allclose(got, reference), "SQLite disagrees"
    rows.append(("SQLite: load + recursive CTE", t_load + t_cte))
    rows.append(("SQLite: recursive CTE alone", t_cte))
    db.close()

    print(f"{'implementation':<38}{'seconds':>10}{'vs crmkit build+roll-up':>26}")
    for name, seconds in rows:
        print(f"{name:<38}{seconds:>10.3f}{seconds / t_full:>25.1f}x")
    print()
    print(f"target 1: crmkit build+roll-up / numpy level-by-level = {t_full / t_np:.2f} (<= 1.5)")
    print(
        f"target 2: crmkit from_parents + roll-up / numpy floor = {t_pos / t_floor:.2f} (<= 1.5)"
    )
    print(f"target 3: crmkit from text ids / numpy floor = {t_full / t_floor:.2f} (<= 3)")
    print(
        "target 4: networkx build+traversal / crmkit build+roll-up = "
        f"{(t_nx_build + t_nx_sum) / t_full:.1f}x; networkx traversal alone / crmkit roll-up "
        f"alone = {t_nx_sum / t_roll:.0f}x (>= 20)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
