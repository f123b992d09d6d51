"""Text columns as integer codes: each distinct value once in a sorted table, each row the
position of its value there. A text test (``==``, ``in``, an order, any predicate) is then
decided once per distinct value and gathered per row, instead of comparing text per row.

>>> import numpy as np
>>> codes = text_codes(np.array(["DE", "US", "", "DE"]))
>>> codes.values.tolist(), codes.codes.tolist()
(['', 'DE', 'US'], [1, 2, 0, 1])
>>> codes.code_of("US"), codes.code_of("FR")
(2, -1)

Factorising does not sort the rows: short text (at most 8 characters of Latin-1, or 4 of
the Basic Multilingual Plane) is packed into one order-preserving 64-bit key per row;
longer text is hashed. Keys are then numbered through a dense table when their span is
small, through a verified perfect hash when the distinct values are few, and by sorting
only otherwise. Hashed keys are checked against the text, so a collision can never give
two values one code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from crmkit._mask import Mask, _leaf_mask, _typed_column
from crmkit.criteria import _Leaf, _Node
from crmkit.errors import CriteriaError

Array = np.ndarray[Any, Any]

__all__ = ["CodedColumns", "ShortKeys", "TextCodes", "text_codes"]

_DENSE_SPAN = 1 << 22  # a key span up to this is numbered through a dense table
_SAMPLE = 1 << 14  # rows whose characters ShortKeys reads first
_HASH_BITS = 16  # slots of the perfect-hash attempt (distinct values well under 2**16)
_MIX = np.uint64(0x9E3779B97F4A7C15)


class TextCodes:
    """A text column factorised once: ``values`` (sorted, distinct; ``""`` is missing)
    and ``codes`` (each row's position in ``values``)."""

    __slots__ = ("_index", "codes", "order", "values")

    def __init__(self, values: Array, codes: Array, order: Array | None = None) -> None:
        self.values = values
        self.codes = _compact(codes, values.size)
        self.order = order  # the rows in code order, when factorising sorted them anyway
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return int(self.codes.size)

    def code_of(self, value: str) -> int:
        """The code of ``value``, or -1 when no row holds it."""
        if self._index is None:
            self._index = {v: k for k, v in enumerate(self.values.tolist())}
        return self._index.get(value, -1)

    def take(self, rows: Array) -> TextCodes:
        """The codes of some rows (the value table is shared)."""
        out = TextCodes.__new__(TextCodes)
        out.values, out.codes, out._index = self.values, self.codes[rows], self._index
        out.order = None
        return out

    def gather(self, table: Array, codes: Array | None = None) -> Array:
        """``table[code]`` per row, where ``table`` holds one boolean per value; equality
        with one or a few values is tested directly (cheaper than a gather)."""
        return _gather(_plan_of(table), self.codes if codes is None else codes)


def _plan_of(table: Array) -> tuple[str, Any]:
    """How to gather a boolean table per row: ``none``, ``all``, ``any_of`` a few codes,
    ``none_of`` a few codes, or a ``table`` lookup."""
    hits = np.flatnonzero(table).tolist()
    if not hits:
        return "none", None
    if len(hits) == table.size:
        return "all", None
    if len(hits) <= 4:
        return "any_of", hits
    if table.size - len(hits) <= 2:
        return "none_of", np.flatnonzero(~table).tolist()
    return "table", table


def _gather(plan: tuple[str, Any], codes: Array) -> Mask:
    kind, what = plan
    if kind == "none":
        return np.zeros(codes.size, dtype=bool)
    if kind == "all":
        return np.ones(codes.size, dtype=bool)
    if kind == "any_of":
        out: Mask = codes == what[0]
        for code in what[1:]:
            out |= codes == code
        return out
    if kind == "none_of":
        out = np.asarray(codes != what[0], dtype=bool)
        for code in what[1:]:
            out &= codes != code
        return out
    return np.asarray(what[codes], dtype=bool)


def text_codes(column: Array) -> TextCodes:
    """Factorise a numpy unicode column (see the module docstring)."""
    col = np.asarray(column)
    if col.dtype.kind != "U":
        raise TypeError(f"text_codes needs a unicode array, not {col.dtype}")
    n = col.size
    width = col.dtype.itemsize // 4
    if n == 0 or width == 0:
        values = np.array([""] if n else [], dtype=col.dtype if width else "<U1")
        return TextCodes(values, np.zeros(n, dtype=np.int8))
    col = np.ascontiguousarray(col)
    units = col.view(np.uint32).reshape(n, width)
    found = _latin1_codes(col, units) if int(units.max()) <= 0xFF else None
    if found is None:
        values, codes = np.unique(col, return_inverse=True)
        return TextCodes(values, codes.reshape(-1).astype(np.intp, copy=False))
    values, codes, order = found
    return TextCodes(values, codes, order)


def _compact(codes: Array, count: int) -> Array:
    """Codes in the smallest signed integer type that holds them (a comparison then
    reads less memory)."""
    for kind in (np.int8, np.int16, np.int32):
        if count <= np.iinfo(kind).max:
            return codes.astype(kind, copy=False)
    return codes.astype(np.int64, copy=False)


def _latin1_codes(col: Array, units: Array) -> tuple[Array, Array, Array | None] | None:
    """``(values, codes, rows in code order or None)`` for Latin-1 text, codes in text
    order, or None when there are many distinct values spread wide (the caller sorts)."""
    n, width = units.shape
    if width <= 4:  # one uint32 key per row: the code units, 8 bits each
        key = units[:, 0].copy()
        for j in range(1, width):
            key <<= np.uint32(8)
            key |= units[:, j]
        found = _number(key)
        if found is None:
            return None
        codes, distinct, order = found
        shifts = np.arange(width - 1, -1, -1, dtype=np.uint32) * np.uint32(8)
        chars = (distinct.astype(np.uint32)[:, None] >> shifts) & np.uint32(0xFF)
        values = np.ascontiguousarray(chars).view(f"<U{width}").reshape(-1)
        return values, codes, order
    padded = -(-width // 8) * 8
    low = np.zeros((n, padded), dtype=np.uint8)
    low[:, :width] = units
    words = low.view(">u8").astype(np.uint64)
    codes_so_far: Array | None = None
    order = None
    for j in range(words.shape[1]):
        key = words[:, j]
        used = min(8, width - 8 * j)
        if used < 8:
            key >>= np.uint64(8 * (8 - used))
        found = _number(key)
        if found is None:
            return None
        part, distinct, order = found
        if codes_so_far is None:
            codes_so_far = part
            continue
        combined = codes_so_far * distinct.size + part
        found = _number(combined)
        if found is None:
            return None
        codes_so_far, _, order = found
    assert codes_so_far is not None
    size = int(codes_so_far.max()) + 1
    first_row = np.empty(size, dtype=np.intp)
    first_row[codes_so_far] = np.arange(n, dtype=np.intp)
    return col[first_row], codes_so_far, order


def _number(key: Array) -> tuple[Array, Array, Array | None] | None:
    """Codes numbering integer keys in key order, the distinct keys (sorted) and, when
    they were sorted, the rows in key order; None when the keys are many and spread
    wide."""
    low, high = int(key.min()), int(key.max())
    if high - low < _DENSE_SPAN:
        slot = (key - key.dtype.type(low) if low else key).astype(np.intp)
        present = np.zeros(high - low + 1, dtype=bool)
        present[slot] = True
        rank = np.cumsum(present, dtype=np.intp)
        rank -= 1
        distinct = np.flatnonzero(present).astype(key.dtype)
        if low:
            distinct += key.dtype.type(low)
        return rank[slot], distinct, None
    size = 1 << _HASH_BITS
    key = key.astype(np.uint64, copy=False)
    slot = ((key * _MIX) >> np.uint64(64 - _HASH_BITS)).astype(np.intp)
    held = np.zeros(size, dtype=np.uint64)
    held[slot] = key
    if not np.array_equal(held[slot], key):  # many distinct keys: sort them
        order = np.argsort(key)
        ordered = key[order]
        first = np.empty(ordered.size, dtype=bool)
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        codes = np.empty(ordered.size, dtype=np.intp)
        codes[order] = np.cumsum(first, dtype=np.intp) - 1
        return codes, ordered[first], order
    present = np.zeros(size, dtype=bool)
    present[slot] = True
    occupied = np.flatnonzero(present)
    by_key = np.argsort(held[occupied], kind="stable")
    rank = np.zeros(size, dtype=np.intp)
    rank[occupied[by_key]] = np.arange(occupied.size)
    return rank[slot], held[occupied[by_key]], None


# -- exact keys of short text ----------------------------------------------------------------


class ShortKeys:
    """Exact integer keys for short Latin-1 text, numbered densely.

    Each character position is numbered over the characters used there (the padding
    included), and a key is the mixed-radix number of those ranks: two values share a key
    only when they are equal, and key order is text order. Positions where every value has
    the same character add nothing, so ``acc-0000000`` ... ``acc-0999999`` span a million
    keys, not 10**11. Characters are read two at a time (one ``uint16``), each pair looked
    up in a table of its part of the key: a key per row costs a few table reads.

    >>> short, keys = ShortKeys.fit(np.array(["b7", "a7", "b"]), 100)
    >>> keys.tolist(), short.keys(np.array(["a7", "b", "b7", "c7", "b7x", "é"])).tolist()
    ([3, 1, 2], [1, 2, 3, -1, -1, -1])
    """

    def __init__(self, width: int, pairs: list[Array], span: int) -> None:
        self.width = width  # an even number of characters (the values' width, padded)
        self.pairs = pairs  # per two characters (as one uint16): their part of the key
        self.span = span  # keys are below; a character never seen there adds span

    @classmethod
    def fit(
        cls, column: Array, limit: int, extra: Array | None = None
    ) -> tuple[ShortKeys, Array] | None:
        """The numbering of ``column`` (and of the few values ``extra``) and the column's
        keys, or None when the text is not Latin-1 or spans more than ``limit`` keys."""
        units = _units(column)
        more = _units(extra) if extra is not None else units[:0]
        if (units.size and int(units.max()) > 0xFF) or (more.size and int(more.max()) > 0xFF):
            return None
        wide = max(units.shape[1], more.shape[1])
        width = max(2, wide + wide % 2)  # even: characters go in pairs
        two = _bytes(units, width).view("<u2")  # c[j] + 256 * c[j + 1]
        small = _bytes(more, width)
        # the characters of a sample of rows first: when every row's key then falls
        # below the span, no row has a character the sample lacks
        step = max(1, two.shape[0] // _SAMPLE)
        for rows in (two[::step], two) if step > 1 else (two,):
            used = np.zeros((width, 256), dtype=bool)
            for k in range(width // 2):
                seen = np.bincount(rows[:, k], minlength=1 << 16).reshape(256, 256) > 0
                used[2 * k] = seen.any(axis=0)
                used[2 * k + 1] = seen.any(axis=1)
            for j in range(width):
                used[j, small[:, j]] = True
            used[:, 0] |= ~used.any(axis=1)  # an empty column holds padding only
            short = cls._numbered(used, limit)
            if short is None:
                return None  # a sample spanning too many keys: the whole column does too
            keys = short._sum(two)
            if rows is two or not keys.size or int(keys.max()) < short.span:
                return short, keys
        return None  # not reached: the last pass reads every row

    @classmethod
    def _numbered(cls, used: Array, limit: int) -> ShortKeys | None:
        """The numbering of the characters ``used[j]`` at each position ``j``."""
        width = used.shape[0]
        radices = np.count_nonzero(used, axis=1).tolist()
        span = math.prod(radices)
        if span > limit:
            return None
        small_keys = 2 * span * (width // 2) < 2**31  # no sum of parts can overflow
        steps: list[Array] = []
        place = 1
        for j in reversed(range(width)):
            step = np.full(256, span, dtype=np.int64)
            step[used[j]] = np.arange(radices[j], dtype=np.int64) * place
            steps.append(step)
            place *= radices[j]
        steps.reverse()
        pairs = [
            (steps[j][None, :] + steps[j + 1][:, None])
            .reshape(-1)
            .astype(np.int32 if small_keys else np.int64)
            for j in range(0, width, 2)
        ]
        return cls(width, pairs, span)

    def _sum(self, two: Array) -> Array:
        key: Array = np.take(self.pairs[0], two[:, 0])  # take: faster than [] here
        for k in range(1, len(self.pairs)):
            key += np.take(self.pairs[k], two[:, k])
        return key

    def keys(self, queries: Array) -> Array:
        """The key of each query, ``-1`` where it has a character the numbering never saw
        at that position (then it equals none of the values numbered)."""
        units = _units(queries)
        width = units.shape[1]
        small = _bytes(units, max(width + width % 2, self.width))  # wraps above 0xFF
        key = self._sum(small.view("<u2"))
        bad = key >= self.span
        if small.shape[1] > self.width:
            bad |= small[:, self.width :].any(axis=1)
        if units.size and int(units.max()) > 0xFF:
            bad |= (units > 0xFF).any(axis=1)
        key[bad] = -1
        return key


def _units(text: Array) -> Array:
    """UCS-4 code units as a (count, width) array (a view, no copy)."""
    n, width = text.size, text.dtype.itemsize // 4
    return np.ascontiguousarray(text).view(np.uint32).reshape(n, width)


def _bytes(units: Array, width: int) -> Array:
    """Code units as bytes (wrapping above 0xFF), padded with zeros to ``width``."""
    if units.shape[1] == width:
        return units.astype(np.uint8)
    out = np.zeros((units.shape[0], width), dtype=np.uint8)
    out[:, : units.shape[1]] = units
    return out


# -- criteria over coded columns -----------------------------------------------------------


class CodedColumns:
    """Columns prepared once for many criteria: text as :class:`TextCodes`, numbers as
    float64, the rest as given; optionally reordered (``order``) so that rows sharing a
    value are contiguous. Leaves are evaluated over row ranges ``[lo, hi)``.

    >>> from crmkit.criteria import F, bind
    >>> from crmkit.records import Account
    >>> cols = CodedColumns({"country": np.array(["DE", "US", "DE"]),
    ...                      "employees": np.array([5, 50, 500])}, 3)
    >>> root = bind((F.country == "DE") & (F.employees >= 50), Account)._root
    >>> cols.mask(root, slice(0, 3)).tolist()
    [False, False, True]
    """

    def __init__(self, columns: Mapping[str, Any], n: int, order: Array | None = None) -> None:
        self.columns = columns
        self.n = n
        self.order = order
        self._text: dict[str, TextCodes] = {}
        self._typed: dict[tuple[str, str], Array] = {}
        self._tables: dict[int, tuple[str, Any]] = {}

    def _column(self, name: str) -> Array:
        if name not in self.columns:
            raise CriteriaError(
                f"the criteria read field {name!r} but the columns hold only "
                f"{sorted(self.columns)}"
            )
        col = np.asarray(self.columns[name])
        if len(col) != self.n:
            raise CriteriaError(f"columns differ in length: {sorted({len(col), self.n})}")
        return col

    def text(self, name: str) -> TextCodes:
        """The column as codes (in ``order`` when given)."""
        found = self._text.get(name)
        if found is None:
            col = self._column(name)
            if col.dtype.kind != "U":
                col = _typed_column("text", col)[0]
            found = text_codes(col)
            if self.order is not None:
                found = found.take(self.order)
            self._text[name] = found
        return found

    def reorder(self, order: Array) -> CodedColumns:
        """The same columns with rows in ``order`` (codes already made are reused)."""
        out = CodedColumns(self.columns, self.n, order)
        out._text = {k: v.take(order) for k, v in self._text.items()}
        return out

    def _number_like(self, name: str, domain: str) -> Array:
        key = (name, domain)
        found = self._typed.get(key)
        if found is None:
            col = self._column(name)
            small_int = col.dtype.kind in "iu" and col.dtype.itemsize <= 4
            if domain == "number" and not small_int:
                col = _typed_column("number", col)[0]
            if self.order is not None:
                col = col[self.order]
            self._typed[key] = found = col
        return found

    def table(self, leaf: _Leaf) -> Mask:
        """A text leaf decided once per distinct value of its field (negation included)."""
        table = _leaf_mask(leaf, self.text(leaf.field).values)
        return ~table if leaf.negate else table

    def numbers(self, name: str) -> Array:
        """The column as float64 (NaN where missing), in ``order`` when given."""
        col = self._number_like(name, "number")
        return col.astype(np.float64, copy=False)

    def leaf(self, leaf: _Leaf, rows: slice | Array) -> Mask:
        """One leaf's mask over some rows (a slice or positions), negation included."""
        if leaf.domain == "text":
            codes = self.text(leaf.field)
            plan = self._tables.get(id(leaf))
            if plan is None:
                table = _leaf_mask(leaf, codes.values)
                plan = self._tables[id(leaf)] = _plan_of(~table if leaf.negate else table)
            return _gather(plan, codes.codes[rows])
        col = self._number_like(leaf.field, leaf.domain)[rows]
        found = _int_compare(leaf, col) if col.dtype.kind in "iu" else None
        mask = _leaf_mask(leaf, col) if found is None else found
        return ~mask if leaf.negate else mask

    def mask(self, node: _Leaf | _Node, rows: slice | Array) -> Mask:
        """A bound criteria tree's mask over some rows (a slice or positions)."""
        if isinstance(node, _Leaf):
            return self.leaf(node, rows)
        if node.kind == "not":
            return ~self.mask(node.items[0], rows)
        if not node.items:
            size = len(range(self.n)[rows]) if isinstance(rows, slice) else len(rows)
            return np.full(size, node.kind == "all")
        result = self.mask(node.items[0], rows)
        for item in node.items[1:]:
            if node.kind == "all":
                result &= self.mask(item, rows)
            else:
                result |= self.mask(item, rows)
        return result

    def narrow(self, node: _Leaf | _Node, rows: slice | Array, keep: Mask) -> None:
        """``keep &= mask(node)`` over some rows, one conjunct at a time."""
        items = node.items if isinstance(node, _Node) and node.kind == "all" else (node,)
        for item in items:
            keep &= self.mask(item, rows)


def _int_compare(leaf: _Leaf, col: Array) -> Mask | None:
    """A number comparison on a small integer column without converting it to float64:
    the bound is rounded to the integers it admits (exact: such integers are exact in a
    float64). None for the other operators."""
    op, value = leaf.op, leaf.value
    info = np.iinfo(col.dtype)
    if op == "between":
        low, high = math.ceil(value[0]), math.floor(value[1])
        return _in_int_range(col, info, low, high)
    if op == ">=":
        return _in_int_range(col, info, math.ceil(value), info.max)
    if op == ">":
        return _in_int_range(col, info, math.floor(value) + 1, info.max)
    if op == "<=":
        return _in_int_range(col, info, info.min, math.floor(value))
    if op == "<":
        return _in_int_range(col, info, info.min, math.ceil(value) - 1)
    if op == "==":
        if value != math.floor(value):
            return np.zeros(col.size, dtype=bool)
        return _in_int_range(col, info, int(value), int(value))
    return None


def _in_int_range(col: Array, info: Any, low: int, high: int) -> Mask:
    """``low <= col <= high`` with bounds clipped to the column's type."""
    if low > high or low > info.max or high < info.min:
        return np.zeros(col.size, dtype=bool)
    if low <= info.min and high >= info.max:
        return np.ones(col.size, dtype=bool)
    if low <= info.min:
        return np.asarray(col <= high, dtype=bool)
    if high >= info.max:
        return np.asarray(col >= low, dtype=bool)
    if low == high:
        return np.asarray(col == low, dtype=bool)
    out = col >= low
    out &= col <= high
    return np.asarray(out, dtype=bool)
