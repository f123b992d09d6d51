"""The account hierarchy: arrays first, a networkx ``DiGraph`` on demand.

A hierarchy of a million accounts is held as numpy arrays (``ids``, the parent index of
each account, its depth and its ultimate parent). The networkx graph (parent -> child) is
built the first time ``.graph`` or ``to_networkx()`` is used: building a million-node
``DiGraph`` takes seconds and most work (navigation, roll-ups) never needs it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from crmkit.errors import HierarchyCycleError, NotFound, ValidationError

if TYPE_CHECKING:
    import networkx as nx

    from crmkit.records import Account
    from crmkit.store import Store

__all__ = ["AccountHierarchy", "IntegrityReport", "Problem"]

IntArray = np.ndarray[Any, np.dtype[np.int64]]


@attrs.frozen
class Problem:
    """One integrity problem found while building a hierarchy.

    ``kind`` is ``"self_parent"``, ``"missing_parent"`` or ``"cycle"``; ``accounts``
    are the accounts involved (for a cycle, its path following parent links, ending
    where it started); ``message`` says what was done about it.
    """

    kind: str
    accounts: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@attrs.frozen
class IntegrityReport:
    """The integrity problems of a hierarchy (empty when all is well).

    Every problem has been repaired in the built hierarchy by cutting one parent link:
    a self-parent or missing parent makes the account a root; a cycle loses the parent
    link of its member with the smallest id, which becomes the root of the former cycle.
    """

    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when there were no problems."""
        return not self.problems

    def of_kind(self, kind: str) -> list[Problem]:
        """The problems of one kind."""
        return [p for p in self.problems if p.kind == kind]

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)

    def __str__(self) -> str:
        if not self.problems:
            return "hierarchy OK"
        lines = [f"{len(self.problems)} hierarchy problem(s):"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def _as_ids(values: Any, what: str) -> np.ndarray[Any, Any]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValidationError("Account", what, None, "must be a one-dimensional sequence of ids")
    if array.dtype.kind in ("U", "S"):
        return array.astype(str) if array.dtype.kind == "S" else array
    if array.dtype.kind == "O" or array.size == 0:
        return np.array(["" if v is None else str(v) for v in array.tolist()], dtype=str)
    raise ValidationError("Account", what, array.dtype.name, "ids must be text (str), not numbers")


def _pointer_jump(parent: IntArray) -> tuple[IntArray, IntArray]:
    """(depth, top) of every node by pointer doubling: log2(depth) vectorised passes.

    ``top`` is the ultimate parent when the chain ends at a root; nodes in or under a
    cycle end somewhere with a parent (the caller checks ``parent[top] == -1``).
    """
    n = parent.size
    index = np.arange(n, dtype=np.int64)
    top = np.where(parent >= 0, parent, index)
    depth = (parent >= 0).astype(np.int64)
    for _ in range(max(1, math.ceil(math.log2(n + 1))) + 2):
        nxt = top[top]
        if np.array_equal(nxt, top):
            break
        depth = depth + depth[top]
        top = nxt
    return depth, top


class AccountHierarchy:
    """A forest of accounts (parent -> child) with fast navigation and roll-ups.

    Build one with :meth:`from_store`, :meth:`from_records` or :meth:`from_arrays`.
    Problems in the data (self-parents, missing parents, cycles) are repaired by cutting
    one link each and listed in :attr:`report`; ``strict=True`` raises instead.

    Examples
    --------
    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "fr", "solo"], ["", "hq", "eu", None])
    >>> len(h), h.report.ok
    (4, True)
    >>> sorted(h.graph.successors("hq"))
    ['eu']
    >>> bad = AccountHierarchy.from_arrays(["a", "b", "c"], ["b", "a", "zz"])
    >>> print(bad.report)
    2 hierarchy problem(s):
      missing_parent: 'c' has parent 'zz' which is not in the hierarchy; treated as a root
      cycle: a -> b -> a; the link 'a' -> 'b' was cut, 'a' is treated as a root
    """

    __slots__ = (
        "_children",
        "_depth",
        "_graph",
        "_ids",
        "_layout",
        "_names",
        "_parent",
        "_rank",
        "_report",
        "_sorted",
        "_sorter",
        "_top",
    )

    def __init__(
        self,
        ids: np.ndarray[Any, Any],
        parent: IntArray,
        *,
        names: np.ndarray[Any, Any] | None,
        sorted_ids: np.ndarray[Any, Any],
        sorter: IntArray,
        report: IntegrityReport,
        jumped: tuple[IntArray, IntArray] | None = None,
    ) -> None:
        # private: use the from_* builders
        self._ids = ids
        self._parent = parent
        self._names = names
        self._sorted = sorted_ids
        self._sorter = sorter
        self._report = report
        self._depth, self._top = _pointer_jump(parent) if jumped is None else jumped
        self._rank: IntArray | None = None
        self._children: tuple[IntArray, IntArray] | None = None
        self._layout: Any = None
        self._graph: nx.DiGraph | None = None
        for array in (ids, parent, sorted_ids, sorter, self._depth, self._top):
            array.setflags(write=False)

    # -- builders --

    @classmethod
    def from_arrays(
        cls,
        child_ids: Sequence[str] | np.ndarray[Any, Any],
        parent_ids: Sequence[str | None] | np.ndarray[Any, Any],
        *,
        names: Sequence[str] | np.ndarray[Any, Any] | None = None,
        strict: bool = False,
    ) -> AccountHierarchy:
        """Build from aligned arrays of account ids and parent ids (``None``/``""``: root).

        Duplicate or empty ids raise :class:`~crmkit.errors.ValidationError`. With
        ``strict=True`` a cycle or self-parent raises
        :class:`~crmkit.errors.HierarchyCycleError` and a missing parent raises
        :class:`~crmkit.errors.ValidationError`.
        """
        ids = _as_ids(child_ids, "id")
        parents = _as_ids(parent_ids, "parent_id")
        if parents.size != ids.size:
            raise ValidationError(
                "Account",
                "parent_id",
                parents.size,
                f"needs one parent per account: got {parents.size} parents for {ids.size} ids",
            )
        n = ids.size
        if n and not np.all(ids != ""):
            position = int(np.flatnonzero(ids == "")[0])
            raise ValidationError("Account", "id", "", f"empty id at position {position}")
        # sort once; bytes compare faster than UCS-4 when every id is ASCII
        has_parent = parents != ""
        want = np.flatnonzero(has_parent)
        try:
            keys = ids.astype("S")
            pkeys = parents[want].astype("S")
        except UnicodeEncodeError:
            keys, pkeys = ids, parents[want]
        sorter = np.argsort(keys, kind="stable").astype(np.int64, copy=False)
        sorted_keys = keys[sorter]
        if n > 1:
            same = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
            if same.size:
                dup = str(ids[sorter[same[0]]])
                raise ValidationError(
                    "Account",
                    "id",
                    dup,
                    f"appears more than once ({same.size} duplicate id(s)); ids must be unique",
                    record_id=dup,
                )
        parent = np.full(n, -1, dtype=np.int64)
        if want.size and n:
            order = np.argsort(pkeys, kind="stable")
            queries = pkeys[order]
            pos = np.minimum(np.searchsorted(sorted_keys, queries), n - 1)
            found = sorted_keys[pos] == queries
            target = np.where(found, sorter[pos], -1)
            parent[want[order]] = target
        problems: list[Problem] = []
        missing = np.flatnonzero(has_parent & (parent < 0))
        for i in missing[:1000].tolist():
            if strict:
                raise ValidationError(
                    "Account",
                    "parent_id",
                    str(parents[i]),
                    "no such account in the hierarchy",
                    record_id=str(ids[i]),
                )
            problems.append(
                Problem(
                    "missing_parent",
                    (str(ids[i]), str(parents[i])),
                    f"{str(ids[i])!r} has parent {str(parents[i])!r} which is not in the "
                    "hierarchy; treated as a root",
                )
            )
        if missing.size > 1000:
            problems.append(
                Problem(
                    "missing_parent", (), f"... and {missing.size - 1000} more missing parents"
                )
            )
        selfish = np.flatnonzero(parent == np.arange(n))
        for i in selfish.tolist():
            if strict:
                raise HierarchyCycleError([str(ids[i]), str(ids[i])])
            problems.append(
                Problem(
                    "self_parent",
                    (str(ids[i]),),
                    f"{str(ids[i])!r} is its own parent; treated as a root",
                )
            )
        parent[selfish] = -1
        found, jumped = _cut_cycles(ids, parent, strict=strict)
        problems += found
        name_array = None if names is None else _as_ids(names, "name")
        if name_array is not None and name_array.size != n:
            raise ValidationError("Account", "name", name_array.size, f"expected {n} names")
        return cls(
            ids,
            parent,
            names=name_array,
            sorted_ids=sorted_keys,
            sorter=sorter,
            report=IntegrityReport(tuple(problems)),
            jumped=jumped,
        )

    @classmethod
    def from_records(
        cls, accounts: Iterable[Account], *, strict: bool = False
    ) -> AccountHierarchy:
        """Build from :class:`~crmkit.records.Account` records (their ``parent_id``)."""
        rows = [(a.id, a.parent_id or "", a.name) for a in accounts]
        ids = np.array([r[0] for r in rows], dtype=str)
        parents = np.array([r[1] for r in rows], dtype=str)
        names = np.array([r[2] for r in rows], dtype=str)
        return cls.from_arrays(ids, parents, names=names, strict=strict)

    @classmethod
    def from_store(cls, store: Store, *, strict: bool = False) -> AccountHierarchy:
        """Build from every account in ``store`` (read as columns, in id order)."""
        cols = store.accounts.columns(["id", "parent_id", "name"])
        return cls.from_arrays(cols["id"], cols["parent_id"], names=cols["name"], strict=strict)

    # -- the arrays --

    @property
    def ids(self) -> np.ndarray[Any, Any]:
        """Account ids, in the order given when built (values arrays align with this)."""
        return self._ids

    @property
    def parents(self) -> IntArray:
        """Index of each account's parent in :attr:`ids` (``-1`` for roots)."""
        return self._parent

    @property
    def parent_ids(self) -> np.ndarray[Any, Any]:
        """Each account's parent id after repairs (``""`` for roots)."""
        safe = np.maximum(self._parent, 0)
        return np.where(self._parent >= 0, self._ids[safe], "")

    @property
    def depths(self) -> IntArray:
        """Depth of each account (a root is 0)."""
        return self._depth

    @property
    def tops(self) -> IntArray:
        """Index of each account's ultimate parent (itself for a root)."""
        return self._top

    @property
    def names(self) -> np.ndarray[Any, Any] | None:
        """Account names when known (built from records or a store)."""
        return self._names

    @property
    def report(self) -> IntegrityReport:
        """What was wrong with the data and how it was repaired."""
        return self._report

    @property
    def graph(self) -> nx.DiGraph:
        """The networkx ``DiGraph`` (parent -> child), built on first use and cached.

        Treat it as read-only; use :meth:`to_networkx` for a copy you may change.
        """
        if self._graph is None:
            import networkx as nx

            graph = nx.DiGraph()
            if self._names is None:
                graph.add_nodes_from(self._ids.tolist())
            else:
                graph.add_nodes_from(
                    (i, {"name": name})
                    for i, name in zip(self._ids.tolist(), self._names.tolist(), strict=True)
                )
            linked = np.flatnonzero(self._parent >= 0)
            graph.add_edges_from(
                zip(
                    self._ids[self._parent[linked]].tolist(),
                    self._ids[linked].tolist(),
                    strict=True,
                )
            )
            self._graph = graph
        return self._graph

    def to_networkx(self) -> nx.DiGraph:
        """A copy of :attr:`graph` that you may change."""
        return self.graph.copy()

    def __len__(self) -> int:
        return int(self._ids.size)

    def __contains__(self, account_id: object) -> bool:
        return isinstance(account_id, str) and self._find(account_id) is not None

    def __repr__(self) -> str:
        roots = int(np.count_nonzero(self._parent < 0))
        depth = int(self._depth.max()) if self._ids.size else 0
        extra = "" if self._report.ok else f", {len(self._report)} problem(s) repaired"
        return f"<AccountHierarchy {len(self)} accounts, {roots} roots, max depth {depth}{extra}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from crmkit.hierarchy._draw import hierarchy_bundle

        return hierarchy_bundle(self)

    def _repr_html_(self) -> str:
        return self._repr_mimebundle_()["text/html"]

    # -- lookups used by the functions --

    def _find(self, account_id: str) -> int | None:
        if self._sorted.size == 0:
            return None
        key: Any = account_id
        if self._sorted.dtype.kind == "S":
            try:
                key = account_id.encode("ascii")
            except UnicodeEncodeError:
                return None
        pos = int(np.searchsorted(self._sorted, key))
        if pos < self._sorted.size and self._sorted[pos] == key:
            return int(self._sorter[pos])
        return None

    def index(self, account_id: str) -> int:
        """Position of ``account_id`` in :attr:`ids`; unknown ids raise ``NotFound``."""
        if not isinstance(account_id, str):
            raise NotFound("Account", repr(account_id))
        found = self._find(account_id)
        if found is None:
            raise NotFound("Account", account_id)
        return found

    def indices(self, account_ids: Sequence[str] | np.ndarray[Any, Any]) -> IntArray:
        """Positions of many ids (``-1`` where unknown), vectorised."""
        queries = _as_ids(account_ids, "id")
        out = np.full(queries.size, -1, dtype=np.int64)
        if not self._sorted.size or not queries.size:
            return out
        keys: np.ndarray[Any, Any] = queries
        if self._sorted.dtype.kind == "S":
            try:
                keys = queries.astype("S")
            except UnicodeEncodeError:  # a non-ASCII query cannot match an ASCII id
                keys = np.array([q.encode("utf-8") for q in queries.tolist()], dtype=object)
                ascii_only = np.array([k.isascii() for k in keys.tolist()], dtype=bool)
                keys = np.where(ascii_only, keys, b"").astype("S")
        pos = np.minimum(np.searchsorted(self._sorted, keys), self._sorted.size - 1)
        hit = (self._sorted[pos] == keys) & (queries != "")
        out[hit] = self._sorter[pos[hit]]
        return out

    def _rank_of(self) -> IntArray:
        """Rank of each account in id order (for deterministic listings)."""
        if self._rank is None:
            rank = np.empty(self._ids.size, dtype=np.int64)
            rank[self._sorter] = np.arange(self._ids.size, dtype=np.int64)
            self._rank = rank
        return self._rank

    def _csr(self) -> tuple[IntArray, IntArray]:
        """(offsets, child indices) with each account's children sorted by id."""
        if self._children is None:
            n = self._ids.size
            linked = np.flatnonzero(self._parent >= 0)
            order = np.lexsort((self._rank_of()[linked], self._parent[linked]))
            kids = linked[order].astype(np.int64)
            counts = np.bincount(self._parent[linked], minlength=n)
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            self._children = (offsets, kids)
        return self._children

    def _expand(self, frontier: IntArray) -> IntArray:
        """All children of the accounts in ``frontier``, vectorised."""
        offsets, kids = self._csr()
        starts = offsets[frontier]
        counts = offsets[frontier + 1] - starts
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        shift = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return kids[shift + np.arange(total, dtype=np.int64)]

    def _subtree(self, root: int) -> IntArray:
        """``root`` and every account below it, breadth-first, children by id."""
        levels = [np.array([root], dtype=np.int64)]
        while True:
            nxt = self._expand(levels[-1])
            if not nxt.size:
                break
            levels.append(nxt)
        return np.concatenate(levels)


def _cut_cycles(
    ids: np.ndarray[Any, Any], parent: IntArray, *, strict: bool
) -> tuple[list[Problem], tuple[IntArray, IntArray] | None]:
    """Find every cycle, cut it at its smallest id (in place) and report it.

    Also returns (depth, top) when there was no cycle to cut (else ``None``).
    """
    jumped = _pointer_jump(parent)
    trapped = np.flatnonzero(parent[jumped[1]] >= 0)
    if not trapped.size:
        return [], jumped
    problems: list[Problem] = []
    done: set[int] = set()
    for start in trapped.tolist():
        if start in done:
            continue
        seen: dict[int, int] = {}
        walk: list[int] = []
        node = start
        while node >= 0 and node not in done and node not in seen:
            seen[node] = len(walk)
            walk.append(node)
            node = int(parent[node])
        done.update(walk)
        if node < 0 or node not in seen:
            continue  # reached a root or an already handled chain
        cycle = walk[seen[node] :]
        first = min(range(len(cycle)), key=lambda k: str(ids[cycle[k]]))
        cycle = cycle[first:] + cycle[:first]
        path = [str(ids[i]) for i in cycle] + [str(ids[cycle[0]])]
        if strict:
            raise HierarchyCycleError(path)
        cut = cycle[0]
        problems.append(
            Problem(
                "cycle",
                tuple(path),
                f"{' -> '.join(path)}; the link {path[0]!r} -> {path[1]!r} was cut, "
                f"{path[0]!r} is treated as a root",
            )
        )
        parent[cut] = -1
    return problems, None
