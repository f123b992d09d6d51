"""Records to numpy columns: the one place that decides what a column looks like.

=================  ==============================================
field kind         column
=================  ==============================================
text, enum         unicode array; ``""`` where missing
int, float, money  float64; NaN where missing
bool               bool
datetime           ``datetime64[us]`` (UTC); NaT where missing
date               ``datetime64[D]``; NaT where missing
custom.key         unicode if every value is text, float64 if every
                   value is a number, else an object array (None
                   where missing)
tags, json, time   object array
=================  ==============================================

>>> from crmkit.records import Account
>>> cols = columns_of(Account, [Account(id="a", name="A", employees=5),
...                             Account(id="b", name="B")], ["id", "employees"])
>>> cols["id"], cols["employees"]
(array(['a', 'b'], dtype='<U1'), array([ 5., nan]))
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from crmkit._schema import schema_of
from crmkit._time import micros
from crmkit.errors import CriteriaError

__all__ = ["column_from_values", "columns_of", "field_kind"]


def field_kind(record_type: type[Any], name: str) -> str:
    """The kind of a field (``"custom"`` for ``custom.key``); unknown fields raise."""
    if name.startswith("custom."):
        if not name.removeprefix("custom.").isidentifier():
            raise CriteriaError(f"custom field name {name!r} must be 'custom.<identifier>'")
        return "custom"
    return schema_of(record_type).field(name).kind


def columns_of(
    record_type: type[Any], records: Sequence[Any], fields: Sequence[str]
) -> dict[str, np.ndarray[Any, Any]]:
    """The named fields of ``records`` as numpy arrays (see the module table)."""
    result: dict[str, np.ndarray[Any, Any]] = {}
    for name in fields:
        kind = field_kind(record_type, name)
        if kind == "custom":
            key = name.removeprefix("custom.")
            values = [r.custom.get(key) for r in records]
        else:
            values = [getattr(r, name) for r in records]
        result[name] = column_from_values(kind, values)
    return result


def column_from_values(kind: str, values: Sequence[Any]) -> np.ndarray[Any, Any]:
    """One column from Python values of one field kind."""
    if kind in ("text", "enum"):
        return np.array(
            ["" if v is None else (v.value if hasattr(v, "value") else v) for v in values],
            dtype=str,
        )
    if kind in ("int", "float", "money"):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    if kind == "bool":
        return np.array(values, dtype=bool)
    if kind == "datetime":
        return np.array(
            [
                np.datetime64("NaT") if v is None else np.datetime64(micros(v), "us")
                for v in values
            ],
            dtype="datetime64[us]",
        )
    if kind == "date":
        return np.array(
            [np.datetime64("NaT") if v is None else np.datetime64(v, "D") for v in values],
            dtype="datetime64[D]",
        )
    if kind == "custom":
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, str) for v in present):
            return np.array(["" if v is None else v for v in values], dtype=str)
        if present and all(
            isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in present
        ):
            return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    column = np.empty(len(values), dtype=object)
    column[:] = list(values)
    return column
