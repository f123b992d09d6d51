"""Criteria as a numpy boolean mask over column arrays (see ``BoundCriteria.mask``).

Kept apart from ``crmkit.criteria`` so that importing crmkit does not import numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from crmkit.criteria import _Leaf, _Node
from crmkit.errors import CriteriaError

Mask = npt.NDArray[np.bool_]


def mask_of(
    root: _Leaf | _Node, columns: Mapping[str, np.ndarray[Any, Any]], fields: Iterable[str]
) -> Mask:
    """The mask of a bound criteria tree over ``columns``."""
    return _mask(root, columns, _length(columns, fields))


def _length(columns: Mapping[str, np.ndarray[Any, Any]], fields: Iterable[str]) -> int:
    lengths = set()
    for name in fields:
        if name not in columns:
            raise CriteriaError(
                f"the criteria read field {name!r} but the columns hold only {sorted(columns)}"
            )
        lengths.add(len(columns[name]))
    if len(lengths) > 1:
        raise CriteriaError(f"columns differ in length: {sorted(lengths)}")
    if lengths:
        return lengths.pop()
    return len(next(iter(columns.values()))) if columns else 0


def _mask(node: _Leaf | _Node, columns: Mapping[str, Any], length: int) -> Mask:
    if isinstance(node, _Node):
        if node.kind == "not":
            return ~_mask(node.items[0], columns, length)
        if not node.items:
            return np.full(length, node.kind == "all")
        result = _mask(node.items[0], columns, length)
        for item in node.items[1:]:
            other = _mask(item, columns, length)
            result = (result & other) if node.kind == "all" else (result | other)
        return result
    mask = _leaf_mask(node, np.asarray(columns[node.field]))
    return ~mask if node.negate else mask


def _typed_column(domain: str, col: np.ndarray[Any, Any]) -> tuple[Any, Mask | None]:
    """The column in ``domain`` and a mask of missing values (None when nothing is missing
    beyond what the comparisons already treat as false)."""
    kind = col.dtype.kind
    if domain == "text":
        if kind == "U":
            return col, None  # "" is missing and compares false against non-empty values
        if kind == "O":
            typed = np.array(
                [v.value if hasattr(v, "value") else v if isinstance(v, str) else "" for v in col],
                dtype=str,
            )
            return typed, None
        return np.full(len(col), "", dtype=str), None
    if domain == "number":
        if kind in "iuf":
            return col.astype(np.float64, copy=False), None
        if kind == "O":
            typed = np.array(
                [
                    float(v)
                    if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)
                    else np.nan
                    for v in col
                ],
                dtype=np.float64,
            )
            return typed, None
        return np.full(len(col), np.nan), None
    if domain == "bool":
        if kind == "b":
            return col, np.zeros(len(col), dtype=bool)
        if kind == "O":
            missing = np.array([not isinstance(v, bool) for v in col], dtype=bool)
            typed = np.array([v is True for v in col], dtype=bool)
            return typed, missing
        return np.zeros(len(col), dtype=bool), np.ones(len(col), dtype=bool)
    if domain in ("datetime", "date"):
        unit = "us" if domain == "datetime" else "D"
        if kind == "M":
            return col.astype(f"datetime64[{unit}]", copy=False), None
        if kind == "O":
            typed = np.array([_to_datetime64(domain, v) for v in col], dtype=f"datetime64[{unit}]")
            return typed, None
        return np.full(len(col), np.datetime64("NaT"), dtype=f"datetime64[{unit}]"), None
    raise CriteriaError(f"unknown domain {domain!r}")  # pragma: no cover


def _to_datetime64(domain: str, value: Any) -> np.datetime64:
    if domain == "datetime" and isinstance(value, datetime) and value.tzinfo is not None:
        return np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "us")
    if domain == "date" and isinstance(value, date) and not isinstance(value, datetime):
        return np.datetime64(value, "D")
    return np.datetime64("NaT")


def _scalar64(domain: str, value: Any) -> Any:
    if domain == "datetime":
        return np.datetime64(value.replace(tzinfo=None), "us")
    if domain == "date":
        return np.datetime64(value, "D")
    return value


def _null_mask(col: np.ndarray[Any, Any]) -> Mask:
    kind = col.dtype.kind
    if kind == "U":
        return np.asarray(col == "", dtype=bool)
    if kind == "f":
        return np.asarray(np.isnan(col), dtype=bool)
    if kind == "M":
        return np.asarray(np.isnat(col), dtype=bool)
    if kind in "iub":
        return np.zeros(len(col), dtype=bool)
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) or v == "" for v in col]
    return np.array(missing, dtype=bool)


def _leaf_mask(leaf: _Leaf, col: np.ndarray[Any, Any]) -> Mask:
    if leaf.op == "is null":
        if leaf.domain == "any" or col.dtype.kind != "O":
            return _null_mask(col)
        typed, missing = _typed_column(leaf.domain, col)
        return _null_mask(typed) if missing is None else missing
    typed, missing = _typed_column(leaf.domain, col)
    op, target = leaf.op, leaf.value
    if op == "in":
        values = [_scalar64(leaf.domain, v) for v in target]
        if not values:
            return np.zeros(len(typed), dtype=bool)
        result: Mask = np.isin(typed, np.array(values))
    elif op == "startswith":
        result = np.char.startswith(typed, target)
    elif op == "contains":
        result = np.char.find(typed, target) >= 0
    elif op == "between":
        low, high = (_scalar64(leaf.domain, v) for v in target)
        result = (typed >= low) & (typed <= high)
    else:
        value = _scalar64(leaf.domain, target)
        if op == "==":
            result = typed == value
        elif op == "<":
            result = typed < value
        elif op == "<=":
            result = typed <= value
        elif op == ">":
            result = typed > value
        else:
            result = typed >= value
        if leaf.domain == "text" and op in ("<", "<="):
            result &= typed != ""  # "" (missing) sorts first
    if missing is not None:
        result &= ~missing
    return np.asarray(result, dtype=bool)
