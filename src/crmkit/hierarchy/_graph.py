"""The account hierarchy: arrays first, a networkx ``DiGraph`` on demand.

A hierarchy of a million accounts is held as numpy arrays (``ids``, the parent index of
each account, its depth and its ultimate parent). The networkx graph (parent -> child) is
built the first time ``.graph`` or ``to_networkx()`` is used: building a million-node
``DiGraph`` takes seconds and most work (navigation, roll-ups) never needs it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from crmkit._codes import ShortKeys
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


def _odd_coefficients(count: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
    drawn = np.random.default_rng(20261128).integers(0, 2**63, size=count, dtype=np.uint64)
    return drawn * np.uint64(2) + np.uint64(1)


_HASH_COEFFICIENTS = _odd_coefficients(64)  # ids up to 64 characters; longer ones draw more


def _hash_ids(ids: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """A 64-bit hash of each text id: its UCS-4 code units dotted with fixed odd
    coefficients (wrapping), then mixed. Trailing padding adds nothing, so the same id
    hashes alike in arrays of any width. Equal hashes are always checked against the ids.
    """
    n, width = ids.size, ids.dtype.itemsize // 4
    if n == 0 or width == 0:
        return np.zeros(n, dtype=np.uint64)
    coefficients = (
        _HASH_COEFFICIENTS[:width]
        if width <= _HASH_COEFFICIENTS.size
        else _odd_coefficients(width)
    )
    units = np.ascontiguousarray(ids).view(np.uint32).reshape(n, width).astype(np.uint64)
    mixed: np.ndarray[Any, np.dtype[np.uint64]] = units @ coefficients
    mixed ^= mixed >> np.uint64(33)
    mixed *= np.uint64(0xFF51AFD7ED558CCD)
    mixed ^= mixed >> np.uint64(33)
    return mixed


_DENSE_SPAN = 1 << 24  # exact keys spanning up to this (and 4 per id) go in a direct table


class _IdTable:
    """Positions of text ids. Short Latin-1 ids get exact integer keys
    (:class:`~crmkit._codes.ShortKeys`) and a direct table from key to position: no sorting
    and no text comparison. Other ids are found by hashing: the ids' 64-bit hashes sorted
    once, each query hashed and searched, and every hit checked against the id itself (so
    a hash collision can never map an id to the wrong account). Building it refuses
    repeated ids.
    """

    def __init__(self, ids: np.ndarray[Any, Any]) -> None:
        self.ids = ids
        self._id_order: IntArray | None = None
        self.hashes: np.ndarray[Any, Any] | None = None
        self.order: IntArray | None = None
        limit = min(_DENSE_SPAN, max(1 << 16, 4 * ids.size))
        fitted = ShortKeys.fit(ids, limit) if ids.size else None
        self.radix = None if fitted is None else fitted[0]
        if fitted is not None:
            keys = fitted[1]
            self.slots = np.full(fitted[0].span + 1, -1, dtype=np.int64)  # + a slot for -1
            self.slots[keys] = np.arange(ids.size, dtype=np.int64)
            if np.count_nonzero(self.slots >= 0) < ids.size:  # some key came twice
                lost = np.flatnonzero(self.slots[keys] != np.arange(ids.size))
                _repeated(ids, self.slots[keys[lost]], lost)
            return
        hashes = _hash_ids(ids)
        self.order = np.argsort(hashes).astype(np.int64, copy=False)
        self.hashes = hashes[self.order]
        same = np.flatnonzero(hashes[self.order[1:]] == hashes[self.order[:-1]])
        if same.size:
            first, second = self.order[same], self.order[same + 1]
            repeated = np.flatnonzero(ids[first] == ids[second])
            if repeated.size:
                _repeated(ids, first[repeated], second[repeated])
            self.order = self.id_order()  # a true collision: fall back to sorted ids
            self.hashes = None

    def id_order(self) -> IntArray:
        """Positions of the ids in id order (sorted text), computed once."""
        if self._id_order is None:
            if self.radix is not None:  # key order is text order
                self._id_order = self.slots[self.slots >= 0]
            else:
                order = np.argsort(self.ids, kind="stable")
                self._id_order = order.astype(np.int64, copy=False)
        return self._id_order

    def find(self, queries: np.ndarray[Any, Any]) -> IntArray:
        """The position of each query among the ids, ``-1`` where it is not one."""
        n = self.ids.size
        if not n or not queries.size:
            return np.full(queries.size, -1, dtype=np.int64)
        if self.radix is not None:
            found = self.radix.keys(queries)
            out: IntArray = np.take(self.slots, found)  # key -1 reads the last slot: -1
            return out
        out = np.full(queries.size, -1, dtype=np.int64)
        assert self.order is not None
        if self.hashes is None:
            ordered = self.ids[self.order]
            pos = np.minimum(np.searchsorted(ordered, queries), n - 1)
        else:
            keys = _hash_ids(queries)
            by_key = np.argsort(keys)
            pos = np.empty(queries.size, dtype=np.int64)
            pos[by_key] = np.searchsorted(self.hashes, keys[by_key])
            np.minimum(pos, n - 1, out=pos)
        candidate = self.order[pos]
        hit = self.ids[candidate] == queries
        out[hit] = candidate[hit]
        return out


def _repeated(ids: np.ndarray[Any, Any], first: IntArray, second: IntArray) -> None:
    """Raise the error for repeated ids (``ids[first[k]] == ids[second[k]]``)."""
    dup = str(ids[first[0]])
    raise ValidationError(
        "Account",
        "id",
        dup,
        f"appears more than once ({second.size} duplicate id(s)); ids must be unique",
        record_id=dup,
    )


def _positions(parents: Any) -> IntArray:
    """Parent positions as a fresh int64 array; anything else is a ``ValidationError``."""
    array = np.asarray(parents)
    if array.ndim != 1:
        raise ValidationError(
            "Account", "parent_id", None, "parent positions must be a one-dimensional array"
        )
    if array.size and array.dtype.kind not in ("i", "u"):
        raise ValidationError(
            "Account",
            "parent_id",
            array.dtype.name,
            "parent positions must be whole numbers (-1 for a root); "
            "use from_arrays() for text ids",
        )
    return array.astype(np.int64, copy=True)


def _names(names: Any, n: int) -> np.ndarray[Any, Any] | None:
    name_array = None if names is None else _as_ids(names, "name")
    if name_array is not None and name_array.size != n:
        raise ValidationError("Account", "name", name_array.size, f"expected {n} names")
    return name_array


_CHASE_STEPS = 64


def _chase(parent: IntArray, *, with_top: bool) -> tuple[Any, IntArray | None] | None:
    """(depth as uint8, top or None) by walking every linked account up one level per
    pass, or ``None`` when some chain is still open after ``_CHASE_STEPS`` passes (a
    cycle or a very deep chain: then :func:`_pointer_jump` decides).

    Each pass gathers only the accounts still climbing, so a forest of depth ``d`` costs
    about ``n * mean depth`` gathers, less than pointer doubling's ``n * log2(d)`` full
    passes for the shallow hierarchies CRMs hold.
    """
    n = parent.size
    depth = np.zeros(n, dtype=np.uint8)
    top = np.arange(n, dtype=np.int64) if with_top else None
    active = np.flatnonzero(parent >= 0)
    above = np.take(parent, active)
    for step in range(1, _CHASE_STEPS + 1):
        if not active.size:
            return depth, top
        nxt = np.take(parent, above)  # np.take: a faster gather than parent[above]
        climbing = nxt >= 0
        done = ~climbing
        reached = active[done]  # their chain ends at a root in ``step`` links
        depth[reached] = step
        if top is not None:
            top[reached] = above[done]
        active = active[climbing]
        above = nxt[climbing]
    return None if active.size else (depth, top)


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
        "_depth64",
        "_graph",
        "_ids",
        "_layout",
        "_names",
        "_parent",
        "_rank",
        "_report",
        "_table",
        "_top",
    )

    def __init__(
        self,
        ids: np.ndarray[Any, Any] | None,
        parent: IntArray,
        *,
        names: np.ndarray[Any, Any] | None,
        table: _IdTable | None,
        report: IntegrityReport,
        jumped: tuple[Any, IntArray | None] | None = None,
    ) -> None:
        # private: use the from_* builders; ids None means "the positions, as text", made
        # when first asked for; table None means "build the id table at the first lookup"
        self._ids = ids
        self._parent = parent
        self._names = names
        self._table = table
        self._report = report
        # depth may be uint8 (from a chase); tops are worked out when first asked for
        depth_top = _pointer_jump(parent) if jumped is None else jumped
        self._depth: np.ndarray[Any, Any] = depth_top[0]
        self._top: IntArray | None = depth_top[1]
        self._depth64: IntArray | None = None
        self._rank: IntArray | None = None
        self._children: tuple[IntArray, IntArray] | None = None
        self._layout: Any = None
        self._graph: nx.DiGraph | None = None
        for array in (ids, parent, self._depth, self._top):
            if array is not None:
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
        table = _IdTable(ids)
        parent = table.find(parents)  # "" (a root) is never an id: -1
        problems: list[Problem] = []
        missing = np.flatnonzero(parent < 0)
        missing = missing[parents[missing] != ""]
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
        found, jumped = _cut_cycles(lambda i: str(ids[i]), parent, strict=strict)
        problems += found
        return cls(
            ids,
            parent,
            names=_names(names, n),
            table=table,
            report=IntegrityReport(tuple(problems)),
            jumped=jumped,
        )

    @classmethod
    def from_parents(
        cls,
        parents: Sequence[int] | np.ndarray[Any, Any],
        *,
        ids: Sequence[str] | np.ndarray[Any, Any] | None = None,
        names: Sequence[str] | np.ndarray[Any, Any] | None = None,
        strict: bool = False,
    ) -> AccountHierarchy:
        """Build from integer positions: ``parents[i]`` is the position of account ``i``'s
        parent, ``-1`` for a root. The fastest builder: nothing is sorted or searched.

        Without ``ids`` the accounts are named by their positions (``"0"``, ``"1"`` ...,
        made only when asked for); with ``ids`` they must be unique and non-empty. A
        position outside the array is a missing parent (treated as a root and reported;
        ``strict=True`` raises), as are cycles and self-parents in :meth:`from_arrays`.

        >>> h = AccountHierarchy.from_parents([-1, 0, 1, -1], ids=["hq", "eu", "fr", "us"])
        >>> h.parent_ids.tolist(), h.depths.tolist()
        (['', 'hq', 'eu', ''], [0, 1, 2, 0])
        >>> AccountHierarchy.from_parents([-1, 0, 0]).ids.tolist()
        ['0', '1', '2']
        """
        parent = _positions(parents)
        n = parent.size
        id_array = None
        table = None
        if ids is not None:
            id_array = _as_ids(ids, "id")
            if id_array.size != n:
                raise ValidationError(
                    "Account", "id", id_array.size, f"needs one id per parent: expected {n}"
                )
            if n and not np.all(id_array != ""):
                position = int(np.flatnonzero(id_array == "")[0])
                raise ValidationError("Account", "id", "", f"empty id at position {position}")
            table = _IdTable(id_array)

        def label(i: int) -> str:
            return str(i) if id_array is None else str(id_array[i])

        problems: list[Problem] = []
        outside = np.flatnonzero((parent < -1) | (parent >= n))
        for i in outside[:1000].tolist():
            if strict:
                raise ValidationError(
                    "Account",
                    "parent_id",
                    int(parent[i]),
                    "no such position",
                    record_id=label(i),
                )
            problems.append(
                Problem(
                    "missing_parent",
                    (label(i), str(int(parent[i]))),
                    f"{label(i)!r} has parent position {int(parent[i])} outside the "
                    f"{n} accounts; treated as a root",
                )
            )
        if outside.size > 1000:
            problems.append(Problem("missing_parent", (), f"... and {outside.size - 1000} more"))
        parent[outside] = -1
        found, jumped = _cut_cycles(label, parent, strict=strict)
        problems += found
        return cls(
            id_array,
            parent,
            names=_names(names, n),
            table=table,
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
        if self._ids is None:
            ids = np.arange(self._parent.size).astype(str)
            ids.setflags(write=False)
            self._ids = ids
        return self._ids

    def _lookup(self) -> _IdTable:
        if self._table is None:
            self._table = _IdTable(self.ids)
        return self._table

    @property
    def parents(self) -> IntArray:
        """Index of each account's parent in :attr:`ids` (``-1`` for roots)."""
        return self._parent

    @property
    def parent_ids(self) -> np.ndarray[Any, Any]:
        """Each account's parent id after repairs (``""`` for roots)."""
        safe = np.maximum(self._parent, 0)
        return np.where(self._parent >= 0, self.ids[safe], "")

    @property
    def depths(self) -> IntArray:
        """Depth of each account (a root is 0)."""
        if self._depth64 is None:
            depth = self._depth.astype(np.int64, copy=False)
            depth.setflags(write=False)
            self._depth64 = depth
        return self._depth64

    @property
    def tops(self) -> IntArray:
        """Index of each account's ultimate parent (itself for a root)."""
        if self._top is None:
            chased = _chase(self._parent, with_top=True)
            top = _pointer_jump(self._parent)[1] if chased is None else chased[1]
            assert top is not None
            top.setflags(write=False)
            self._top = top
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
            ids = self.ids
            if self._names is None:
                graph.add_nodes_from(ids.tolist())
            else:
                graph.add_nodes_from(
                    (i, {"name": name})
                    for i, name in zip(ids.tolist(), self._names.tolist(), strict=True)
                )
            linked = np.flatnonzero(self._parent >= 0)
            graph.add_edges_from(
                zip(
                    ids[self._parent[linked]].tolist(),
                    ids[linked].tolist(),
                    strict=True,
                )
            )
            self._graph = graph
        return self._graph

    def to_networkx(self) -> nx.DiGraph:
        """A copy of :attr:`graph` that you may change."""
        return self.graph.copy()

    def __len__(self) -> int:
        return int(self._parent.size)

    def __contains__(self, account_id: object) -> bool:
        return isinstance(account_id, str) and self._find(account_id) is not None

    def __repr__(self) -> str:
        roots = int(np.count_nonzero(self._parent < 0))
        depth = int(self._depth.max()) if self._parent.size else 0
        extra = "" if self._report.ok else f", {len(self._report)} problem(s) repaired"
        return f"<AccountHierarchy {len(self)} accounts, {roots} roots, max depth {depth}{extra}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from crmkit.hierarchy._draw import hierarchy_bundle

        return hierarchy_bundle(self)

    def _repr_html_(self) -> str:
        return self._repr_mimebundle_()["text/html"]

    # -- lookups used by the functions --

    def _find(self, account_id: str) -> int | None:
        found = int(self._lookup().find(np.array([account_id], dtype=str))[0])
        return None if found < 0 else found

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
        out = self._lookup().find(queries)
        out[queries == ""] = -1
        return out

    def _rank_of(self) -> IntArray:
        """Rank of each account in id order (for deterministic listings)."""
        if self._rank is None:
            n = self._parent.size
            rank = np.empty(n, dtype=np.int64)
            rank[self._lookup().id_order()] = np.arange(n, dtype=np.int64)
            self._rank = rank
        return self._rank

    def _csr(self) -> tuple[IntArray, IntArray]:
        """(offsets, child indices) with each account's children sorted by id."""
        if self._children is None:
            n = self._parent.size
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
    label: Callable[[int], str], parent: IntArray, *, strict: bool
) -> tuple[list[Problem], tuple[Any, IntArray | None] | None]:
    """Find every self-parent and cycle, cut it (a cycle at its smallest id; in place)
    and report it.

    Also returns (depth, top) when there was no cycle to cut (else ``None``).
    """
    chased = _chase(parent, with_top=False)
    if chased is not None:
        return [], chased  # every chain reached a root: no cycle, no self-parent
    problems: list[Problem] = []
    selfish = np.flatnonzero(parent == np.arange(parent.size))
    for i in selfish.tolist():
        if strict:
            raise HierarchyCycleError([label(i), label(i)])
        problems.append(
            Problem(
                "self_parent", (label(i),), f"{label(i)!r} is its own parent; treated as a root"
            )
        )
    parent[selfish] = -1
    jumped = _pointer_jump(parent)
    trapped = np.flatnonzero(parent[jumped[1]] >= 0)
    if not trapped.size:
        return problems, jumped
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
        first = min(range(len(cycle)), key=lambda k: label(cycle[k]))
        cycle = cycle[first:] + cycle[:first]
        path = [label(i) for i in cycle] + [label(cycle[0])]
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
