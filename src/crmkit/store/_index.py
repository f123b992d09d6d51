"""Ordered indexes and a small query planner for :class:`~crmkit.store.MemoryStore`.

A :class:`FieldIndex` keeps the ids of one record type sorted by one field's value, split
into partitions by an optional second field (an index on ``(status, due_at)`` is the
``due_at`` index partitioned by ``status``). Records whose field is missing sit in a
separate *nulls* set per partition, because criteria never order or compare them.

:func:`plan` reads bound criteria and picks, from the indexes a repository has or can
build, a set of :class:`Access` paths whose union holds every matching record. The
caller still applies the full predicate to that superset, so a plan can only make a
query faster, never change its result. :func:`ordered_scan` walks one index in the
order ``order_by`` asks for, for ``order_by=field`` + ``limit`` queries.

>>> run = SortedRun([(3, "c"), (1, "a"), (2, "b"), (2, "a")])
>>> list(run.ids(Interval(2, True, None, False)))
['a', 'b', 'c']
>>> run.add(2, "aa"); run.remove(3, "c"); list(run.ids(Interval.everything()))
['a', 'a', 'aa', 'b']
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import attrgetter
from typing import Any

import attrs

from crmkit._schema import schema_of
from crmkit.criteria import _DOMAIN_OF_KIND, BoundCriteria, _in_domain, _Leaf, _Node

__all__ = [
    "Access",
    "FieldIndex",
    "Interval",
    "SortedRun",
    "exact_lookup",
    "ordered_scan",
    "plan",
    "point_ids",
]

_ALL = object()  # the one partition of an index without a partition field
_INDEXABLE = frozenset({"datetime", "number", "date", "text", "bool"})
_PARTITIONING = frozenset({"text", "bool"})
_RANGE_OPS = frozenset({"==", "<", "<=", ">", ">=", "between"})


def index_key(domain: str, value: Any) -> Any:
    """``value`` as the index orders it (None when criteria treat it as missing).

    Numbers become floats, as criteria compare them; datetimes, dates, booleans and text
    order as themselves.

    >>> index_key("text", ""), index_key("number", 3), index_key("bool", "yes")
    (None, 3.0, None)
    """
    typed = _in_domain(domain, value)
    return float(typed) if domain == "number" and typed is not None else typed


def _attribute_key(domain: str) -> Callable[[Any], Any]:
    """:func:`index_key` for a record attribute, whose validators already guarantee the
    field's type or ``None`` (empty text is stored as ``None``)."""
    if domain == "number":
        return lambda v: None if v is None or v != v else float(v)
    return lambda v: v


@attrs.frozen
class Interval:
    """Keys between ``low`` and ``high`` (``None``: unbounded on that side)."""

    low: Any
    low_inclusive: bool
    high: Any
    high_inclusive: bool

    @classmethod
    def everything(cls) -> Interval:
        return cls(None, False, None, False)

    @classmethod
    def point(cls, key: Any) -> Interval:
        return cls(key, True, key, True)

    def __and__(self, other: Interval) -> Interval:
        low, low_inc = self.low, self.low_inclusive
        if other.low is not None and (
            low is None or other.low > low or (other.low == low and not other.low_inclusive)
        ):
            low, low_inc = other.low, other.low_inclusive
        high, high_inc = self.high, self.high_inclusive
        if other.high is not None and (
            high is None or other.high < high or (other.high == high and not other.high_inclusive)
        ):
            high, high_inc = other.high, other.high_inclusive
        return Interval(low, low_inc, high, high_inc)


class SortedRun:
    """``(key, id)`` pairs kept sorted in chunks, so one insert or delete moves at most
    a chunk of references rather than the whole list."""

    LOAD = 512

    def __init__(self, pairs: Iterable[tuple[Any, str]] = ()) -> None:
        ordered = sorted(pairs)
        self._load([k for k, _ in ordered], [r for _, r in ordered])

    @classmethod
    def grouped(cls, groups: Mapping[Any, list[str]]) -> SortedRun:
        """The run of ``{key: [id, ...]}``: keys sorted, then each key's ids (fewer and
        cheaper comparisons than sorting ``(key, id)`` pairs when keys repeat).

        >>> list(SortedRun.grouped({"b": ["y", "x"], "a": ["z"]}).pairs(Interval.everything()))
        [('a', 'z'), ('b', 'x'), ('b', 'y')]
        """
        keys: list[Any] = []
        ids: list[str] = []
        for key in sorted(groups):
            members = sorted(groups[key])
            ids += members
            keys += [key] * len(members)
        run = cls.__new__(cls)
        run._load(keys, ids)
        return run

    def _load(self, keys: list[Any], ids: list[str]) -> None:
        load = self.LOAD
        self._keys = [keys[i : i + load] for i in range(0, len(keys), load)]
        self._ids = [ids[i : i + load] for i in range(0, len(ids), load)]
        self._max_keys = [chunk[-1] for chunk in self._keys]  # for key-only bounds
        self._maxes = [(k[-1], r[-1]) for k, r in zip(self._keys, self._ids, strict=True)]
        self._len = len(keys)

    def __len__(self) -> int:
        return self._len

    def first(self) -> tuple[Any, str] | None:
        """The smallest ``(key, id)`` pair, or ``None`` when empty."""
        return (self._keys[0][0], self._ids[0][0]) if self._keys else None

    def ids_at(self, key: Any) -> list[str]:
        """The ids whose key equals ``key``, ascending."""
        found: list[str] = []
        chunks, i = self._keys, bisect_left(self._max_keys, key)
        while i < len(chunks):
            keys = chunks[i]
            lo = bisect_left(keys, key)
            hi = bisect_right(keys, key, lo)
            found += self._ids[i][lo:hi]
            if hi < len(keys):
                break
            i += 1
        return found

    def _chunk_for(self, key: Any, record_id: str) -> int:
        """The first chunk whose last pair is >= ``(key, record_id)``."""
        return bisect_left(self._maxes, (key, record_id))

    def add(self, key: Any, record_id: str) -> None:
        if not self._keys:
            self._keys.append([key])
            self._ids.append([record_id])
            self._max_keys.append(key)
            self._maxes.append((key, record_id))
            self._len = 1
            return
        i = min(self._chunk_for(key, record_id), len(self._keys) - 1)
        keys, ids = self._keys[i], self._ids[i]
        lo = bisect_left(keys, key)
        hi = bisect_right(keys, key, lo)
        j = bisect_left(ids, record_id, lo, hi)
        keys.insert(j, key)
        ids.insert(j, record_id)
        self._max_keys[i], self._maxes[i] = keys[-1], (keys[-1], ids[-1])
        self._len += 1
        if len(keys) > 2 * self.LOAD:
            half = len(keys) // 2
            self._keys[i : i + 1] = [keys[:half], keys[half:]]
            self._ids[i : i + 1] = [ids[:half], ids[half:]]
            self._max_keys[i : i + 1] = [keys[half - 1], keys[-1]]
            self._maxes[i : i + 1] = [(keys[half - 1], ids[half - 1]), (keys[-1], ids[-1])]

    def remove(self, key: Any, record_id: str) -> None:
        i = self._chunk_for(key, record_id)
        if i == len(self._keys):
            return
        keys, ids = self._keys[i], self._ids[i]
        lo = bisect_left(keys, key)
        hi = bisect_right(keys, key, lo)
        j = bisect_left(ids, record_id, lo, hi)
        if j == hi or ids[j] != record_id:
            return
        del keys[j], ids[j]
        self._len -= 1
        if keys:
            self._max_keys[i], self._maxes[i] = keys[-1], (keys[-1], ids[-1])
        else:
            del self._keys[i], self._ids[i], self._max_keys[i], self._maxes[i]

    def _start(self, interval: Interval) -> tuple[int, int]:
        if interval.low is None:
            return 0, 0
        find = bisect_left if interval.low_inclusive else bisect_right
        i = find(self._max_keys, interval.low)
        if i == len(self._keys):
            return i, 0
        return i, find(self._keys[i], interval.low)

    def _stop(self, interval: Interval) -> tuple[int, int]:
        """Chunk and position just past the last key in ``interval``."""
        if interval.high is None:
            return len(self._keys) - 1, len(self._keys[-1]) if self._keys else 0
        find = bisect_right if interval.high_inclusive else bisect_left
        i = find(self._max_keys, interval.high)
        if i == len(self._keys):
            i -= 1
            return i, len(self._keys[i]) if i >= 0 else 0
        return i, find(self._keys[i], interval.high)

    def count(self, interval: Interval) -> int:
        """How many pairs have a key in ``interval``."""
        (ci, cj), (di, dj) = self._start(interval), self._stop(interval)
        if ci > di or (ci == di and cj >= dj):
            return 0
        if ci == di:
            return dj - cj
        middle = sum(map(len, self._keys[ci + 1 : di]))
        return len(self._keys[ci]) - cj + middle + dj

    def pairs(self, interval: Interval) -> Iterator[tuple[Any, str]]:
        """The ``(key, id)`` pairs in ``interval``, ascending."""
        (ci, cj), (di, dj) = self._start(interval), self._stop(interval)
        for i in range(ci, di + 1):
            start = cj if i == ci else 0
            stop = dj if i == di else len(self._keys[i])
            yield from zip(self._keys[i][start:stop], self._ids[i][start:stop], strict=True)

    def ids(self, interval: Interval) -> Iterator[str]:
        return (record_id for _, record_id in self.pairs(interval))

    def pairs_descending(self, interval: Interval) -> Iterator[tuple[Any, str]]:
        """Pairs in ``interval`` by key descending, equal keys by id ascending."""
        (ci, cj), (di, dj) = self._start(interval), self._stop(interval)
        for i in range(di, ci - 1, -1):
            start = cj if i == ci else 0
            stop = dj if i == di else len(self._keys[i])
            yield from zip(
                reversed(self._keys[i][start:stop]),
                reversed(self._ids[i][start:stop]),
                strict=True,
            )


class FieldIndex:
    """Ids of one repository ordered by ``field``, per value of ``partition`` (if any)."""

    def __init__(
        self, record_type: type[Any], field: str, partition: str | None, rows: Mapping[str, Any]
    ) -> None:
        schema = schema_of(record_type)
        self.field, self.partition = field, partition
        self.domain = _domain(schema.field(field).kind)
        self._part_domain = _domain(schema.field(partition).kind) if partition else None
        self._key = _attribute_key(self.domain)
        self._part_key = _attribute_key(self._part_domain or "text")
        self.nulls: dict[Any, set[str]] = {}
        self.runs: dict[Any, SortedRun]
        if partition is None:
            self.runs = self._one_run(rows)
            return
        grouped: dict[Any, list[tuple[Any, str]]] = {}
        keys_of = self.keys_of
        for record_id, record in rows.items():
            part, key = keys_of(record)
            if key is None:
                self.nulls.setdefault(part, set()).add(record_id)
            else:
                grouped.setdefault(part, []).append((key, record_id))
        self.runs = {part: SortedRun(p) for part, p in grouped.items()}

    def _one_run(self, rows: Mapping[str, Any]) -> dict[Any, SortedRun]:
        """The runs of an index without partitions, grouping the ids by key first."""
        values: Iterable[Any] = map(attrgetter(self.field), rows.values())
        if self.domain == "number":
            values = map(self._key, values)
        groups: dict[Any, list[str]] = {}
        nulls: set[str] = set()
        for record_id, key in zip(rows, values, strict=True):
            if key is None:
                nulls.add(record_id)
            else:
                members = groups.get(key)
                if members is None:
                    groups[key] = [record_id]
                else:
                    members.append(record_id)
        if nulls:
            self.nulls[_ALL] = nulls
        return {_ALL: SortedRun.grouped(groups)} if groups else {}

    def keys_of(self, record: Any) -> tuple[Any, Any]:
        """``(partition key, index key)`` of one record."""
        key = self._key(getattr(record, self.field))
        if self.partition is None:
            return _ALL, key
        return self._part_key(getattr(record, self.partition)), key

    def add(self, record_id: str, keys: tuple[Any, Any]) -> None:
        part, key = keys
        if key is None:
            self.nulls.setdefault(part, set()).add(record_id)
        else:
            run = self.runs.get(part)
            if run is None:
                run = self.runs[part] = SortedRun()
            run.add(key, record_id)

    def remove(self, record_id: str, keys: tuple[Any, Any]) -> None:
        part, key = keys
        if key is None:
            self.nulls.get(part, set()).discard(record_id)
        elif part in self.runs:
            self.runs[part].remove(key, record_id)

    def parts(self, values: tuple[Any, ...] | None) -> list[Any]:
        if values is None:
            return list(self.runs.keys() | self.nulls.keys())
        return [index_key(self._part_domain or "text", v) for v in values]


@attrs.frozen
class Access:
    """Read ``intervals`` (and the nulls, if ``nulls``) of the ``(field, partition)``
    index, in the partitions holding ``values`` (``None``: all partitions)."""

    field: str
    partition: str | None
    values: tuple[Any, ...] | None
    intervals: tuple[Interval, ...]
    nulls: bool


IndexFor = Callable[[str, "str | None"], FieldIndex]
"""The repository's index on ``(field, partition)``, built if it has none yet."""


def estimate(access: Access, index_for: IndexFor) -> int:
    index = index_for(access.field, access.partition)
    total = 0
    for part in index.parts(access.values):
        run = index.runs.get(part)
        if run is not None:
            total += sum(run.count(i) for i in access.intervals)
        if access.nulls:
            total += len(index.nulls.get(part, ()))
    return total


def ids_of(accesses: Iterable[Access], index_for: IndexFor) -> set[str]:
    """Every id the accesses read."""
    found: set[str] = set()
    for access in accesses:
        index = index_for(access.field, access.partition)
        for part in index.parts(access.values):
            run = index.runs.get(part)
            if run is not None:
                for interval in access.intervals:
                    found.update(run.ids(interval))
            if access.nulls:
                found.update(index.nulls.get(part, ()))
    return found


def point_ids(accesses: list[Access], index_for: IndexFor) -> list[str] | None:
    """The ids a plan of one lookup of exact keys reads (``F.industry == x``, ``in``),
    without counting first; ``None`` for any other plan."""
    if len(accesses) != 1:
        return None
    access = accesses[0]
    if access.partition is not None or access.nulls:
        return None
    for interval in access.intervals:
        if not (interval.low_inclusive and interval.high_inclusive) or interval.low is None:
            return None
        if interval.low != interval.high:
            return None
    run = index_for(access.field, None).runs.get(_ALL)
    if run is None:
        return []
    if len(access.intervals) == 1:
        return run.ids_at(access.intervals[0].low)
    found = dict.fromkeys(i for interval in access.intervals for i in run.ids_at(interval.low))
    return list(found)


def exact_lookup(test: BoundCriteria, accesses: list[Access]) -> bool:
    """Whether ``accesses`` read exactly the records ``test`` matches, in id order: the
    criteria are one equality on an indexed record field and the plan looks up that one
    key (an index orders equal keys by id, and its keys compare as the criteria do).

    >>> from crmkit.criteria import F, bind
    >>> from crmkit.records import Account
    >>> test = bind(F.industry == "Retail", Account)
    >>> exact_lookup(test, [Access("industry", None, None, (Interval.point("Retail"),), False)])
    True
    >>> exact_lookup(bind(F.industry.isin(["a", "b"]), Account), [])
    False
    """
    root = test._root
    if not isinstance(root, _Leaf) or root.negate or root.op != "==" or root.attr is None:
        return False
    if root.domain not in _INDEXABLE or len(accesses) != 1:
        return False
    access, key = accesses[0], index_key(root.domain, root.value)
    return (
        key is not None
        and access.field == root.attr
        and access.partition is None
        and not access.nulls
        and len(access.intervals) == 1
        and access.intervals[0] == Interval.point(key)
    )


def plan(test: BoundCriteria, index_for: IndexFor) -> tuple[list[Access], int] | None:
    """Index accesses whose union holds every record ``test`` matches, with their size;
    ``None`` when the criteria give no index a handle (a ``not``, an ``or`` with an
    unindexable side, ``!=``, text search ...)."""
    return _plan(test._root, {}, test.record_type, index_for)


def _plan(
    node: _Leaf | _Node,
    eqs: Mapping[str, tuple[Any, ...]],
    record_type: type[Any],
    index_for: IndexFor,
) -> tuple[list[Access], int] | None:
    if isinstance(node, _Leaf):
        return _best(_leaf_options([node], eqs, record_type), index_for)
    if node.kind == "any":
        accesses: list[Access] = []
        total = 0
        for item in node.items:
            sub = _plan(item, eqs, record_type, index_for)
            if sub is None:
                return None
            accesses += sub[0]
            total += sub[1]
        return accesses, total
    if node.kind == "not":
        return None
    leaves = [i for i in node.items if isinstance(i, _Leaf)]
    inner = {**eqs, **_equalities(leaves)}
    ranges = [leaf for leaf in leaves if not _is_equality(leaf)]
    options = [[a] for a in _leaf_options(ranges, inner, record_type)]
    best = _best_of([(o, estimate(o[0], index_for)) for o in options])
    for item in node.items:
        if isinstance(item, _Node):
            sub = _plan(item, inner, record_type, index_for)
            if sub is not None and (best is None or sub[1] < best[1]):
                best = sub
    if best is None:  # only equalities: look one of them up
        best = _best(_leaf_options(leaves, {}, record_type), index_for)
    return best


def _best(options: list[Access], index_for: IndexFor) -> tuple[list[Access], int] | None:
    return _best_of([([a], estimate(a, index_for)) for a in options])


def _best_of(
    scored: list[tuple[list[Access], int]],
) -> tuple[list[Access], int] | None:
    return min(scored, key=lambda s: s[1]) if scored else None


def _is_equality(leaf: _Leaf) -> bool:
    return (
        leaf.attr is not None
        and not leaf.negate
        and leaf.op in ("==", "in")
        and leaf.domain in _PARTITIONING
    )


def _equalities(leaves: Iterable[_Leaf]) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    for leaf in leaves:
        if _is_equality(leaf):
            assert leaf.attr is not None
            values = leaf.value if leaf.op == "in" else (leaf.value,)
            if leaf.attr in found:  # both must hold: keep the common values
                values = tuple(v for v in values if v in found[leaf.attr])
            found[leaf.attr] = tuple(values)
    return found


def _leaf_options(
    leaves: Iterable[_Leaf], eqs: Mapping[str, tuple[Any, ...]], record_type: type[Any]
) -> list[Access]:
    """One access per field the leaves bound (ranges on one field intersect)."""
    bounds: dict[str, Interval] = {}
    options: list[Access] = []
    for leaf in leaves:
        if leaf.attr is None or leaf.domain not in _INDEXABLE:
            continue
        partition = _partition_for(leaf.attr, eqs, record_type)
        values = eqs[partition] if partition else None
        if leaf.negate:  # only "is not null" reads an index: every key, no nulls
            if leaf.op == "is null":
                options.append(
                    Access(leaf.attr, partition, values, (Interval.everything(),), False)
                )
            continue
        if leaf.op == "is null":
            options.append(Access(leaf.attr, partition, values, (), True))
        elif leaf.op == "in":
            points = tuple(Interval.point(index_key(leaf.domain, v)) for v in leaf.value)
            options.append(Access(leaf.attr, partition, values, points, False))
        elif leaf.op in _RANGE_OPS:
            interval = _interval(leaf)
            bounds[leaf.attr] = bounds[leaf.attr] & interval if leaf.attr in bounds else interval
    for field, interval in bounds.items():
        partition = _partition_for(field, eqs, record_type)
        values = eqs[partition] if partition else None
        options.append(Access(field, partition, values, (interval,), False))
    return options


def _partition_for(
    field: str, eqs: Mapping[str, tuple[Any, ...]], record_type: type[Any]
) -> str | None:
    """The equality field to partition ``field``'s index by: enums first (few values,
    the natural ``(status, due_at)`` kind of index), then by name."""
    schema = schema_of(record_type)
    names = sorted(eqs.keys() - {field}, key=lambda n: (schema.field(n).kind != "enum", n))
    return names[0] if names else None


def _interval(leaf: _Leaf) -> Interval:
    if leaf.op == "between":
        low, high = leaf.value
        return Interval(index_key(leaf.domain, low), True, index_key(leaf.domain, high), True)
    key = index_key(leaf.domain, leaf.value)
    return {
        "==": Interval(key, True, key, True),
        "<": Interval(None, False, key, False),
        "<=": Interval(None, False, key, True),
        ">": Interval(key, False, None, False),
        ">=": Interval(key, True, None, False),
    }[leaf.op]


def ordered_scan(
    test: BoundCriteria, field: str, descending: bool, index_for: IndexFor
) -> Iterator[str] | None:
    """Ids in ``order_by=field`` order (ties by id) that may match ``test``, from the
    index on ``field``; ``None`` when ``field`` cannot be indexed."""
    schema = schema_of(test.record_type)
    if field.startswith("custom.") or _domain(schema.field(field).kind) not in _INDEXABLE:
        return None
    root = test._root
    top = [root] if isinstance(root, _Leaf) else list(root.items) if root.kind == "all" else []
    leaves = [leaf for leaf in top if isinstance(leaf, _Leaf)]
    eqs = _equalities(leaves)
    partition = _partition_for(field, eqs, test.record_type)
    index = index_for(field, partition)
    interval = Interval.everything()
    nulls, only_nulls = True, False
    for leaf in leaves:
        if leaf.attr != field:
            continue
        if leaf.op == "is null":
            nulls, only_nulls = leaf.negate is False, only_nulls or not leaf.negate
        elif not leaf.negate and leaf.op in _RANGE_OPS:
            interval, nulls = interval & _interval(leaf), False
        elif not leaf.negate:
            nulls = False
    parts = index.parts(eqs[partition] if partition else None)
    runs = [] if only_nulls else [index.runs[p] for p in parts if p in index.runs]
    null_ids: Iterable[str] = ()
    if nulls:  # sorted only when the walk reaches them
        null_ids = _sorted_lazily(
            itertools.chain.from_iterable(index.nulls.get(p, ()) for p in parts)
        )
    if descending:
        merged = heapq.merge(
            *(run.pairs_descending(interval) for run in runs), key=_descending_key
        )
        return itertools.chain(_ties_by_id(merged), null_ids)
    merged = heapq.merge(*(run.pairs(interval) for run in runs))
    return itertools.chain(null_ids, (record_id for _, record_id in merged))


def _sorted_lazily(ids: Iterable[str]) -> Iterator[str]:
    yield from sorted(ids)


class _Reversed:
    """Orders keys backwards, for a descending merge."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.key < self.key)


def _descending_key(pair: tuple[Any, str]) -> _Reversed:
    return _Reversed(pair[0])


def _ties_by_id(pairs: Iterable[tuple[Any, str]]) -> Iterator[str]:
    for _, group in itertools.groupby(pairs, key=lambda p: p[0]):
        yield from sorted(record_id for _, record_id in group)


def _domain(kind: str) -> str:
    return _DOMAIN_OF_KIND.get(kind, "")
