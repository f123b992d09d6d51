"""Turning what users pass (store columns, plain arrays, a DataFrame) into numpy arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from crmkit.errors import ValidationError

Array = np.ndarray[Any, Any]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_US_PER_DAY = 86_400 * 1_000_000


def as_columns(source: Any, what: str) -> dict[str, Array]:
    """A mapping of name -> 1-d array from a dict of arrays/lists or a pandas DataFrame."""
    if hasattr(source, "columns") and hasattr(source, "to_numpy") and hasattr(source, "dtypes"):
        result: dict[str, Array] = {}
        for name in source.columns:
            series = source[name]
            dtype = str(series.dtype)
            if dtype == "category":
                codes = series.cat.codes.to_numpy()
                cats = np.asarray(series.cat.categories.astype(str))
                result[str(name)] = np.where(codes >= 0, cats[np.maximum(codes, 0)], "")
            elif dtype.startswith("datetime64"):
                values = series
                if getattr(series.dt, "tz", None) is not None:
                    values = series.dt.tz_convert("UTC").dt.tz_localize(None)
                result[str(name)] = values.to_numpy().astype("datetime64[us]")
            elif dtype in ("object", "string", "str"):
                result[str(name)] = np.asarray(series.fillna("").astype(str).to_numpy(), str)
            else:
                result[str(name)] = series.to_numpy()
        return result
    if not isinstance(source, Mapping):
        raise ValidationError(
            what,
            None,
            type(source).__name__,
            "expected a dict of columns (name -> array), e.g. store.activities.columns([...]), "
            "or a pandas DataFrame",
        )
    out = {}
    for name, column in source.items():
        array = np.asarray(column)
        if array.ndim != 1:
            raise ValidationError(what, str(name), array.shape, "columns must be 1-d arrays")
        out[str(name)] = array
    return out


def require(columns: Mapping[str, Array], name: str, what: str) -> Array:
    if name not in columns:
        raise ValidationError(
            what, name, None, f"column {name!r} is missing; the columns are {sorted(columns)}"
        )
    return columns[name]


def same_length(columns: Mapping[str, Array], names: Sequence[str], what: str) -> int:
    lengths = {name: len(columns[name]) for name in names if name in columns}
    if len(set(lengths.values())) > 1:
        raise ValidationError(what, None, lengths, "columns differ in length")
    return next(iter(lengths.values())) if lengths else 0


def text(values: Any) -> Array:
    """A unicode array with ``""`` for missing values (None, NaN)."""
    array = np.asarray(values)
    if array.dtype.kind == "U":
        return array
    if array.dtype.kind == "O":
        cleaned = [
            ""
            if v is None or (isinstance(v, float) and v != v)
            else (v.value if hasattr(v, "value") and isinstance(v.value, str) else str(v))
            for v in array
        ]
        return np.array(cleaned, dtype=str) if cleaned else np.array([], dtype=str)
    if array.dtype.kind == "f":
        out = array.astype(str)
        out[np.isnan(array)] = ""
        return out
    return array.astype(str)


def datetimes(values: Any, what: str, field: str) -> npt.NDArray[np.datetime64]:
    """``datetime64[us]`` (UTC) from datetime64 arrays or aware datetimes."""
    array = np.asarray(values)
    if array.dtype.kind == "M":
        return array.astype("datetime64[us]")
    if array.dtype.kind == "O":
        out = np.empty(len(array), dtype="datetime64[us]")
        for i, v in enumerate(array):  # only for object input; store columns are datetime64
            out[i] = instant(v, what, field) if v is not None else np.datetime64("NaT")
        return out
    raise ValidationError(
        what, field, str(array.dtype), "timestamps must be datetime64 or aware datetimes"
    )


def instant(value: Any, what: str, field: str) -> Any:
    """One aware datetime (or datetime64, taken as UTC) as ``datetime64[us]``."""
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[us]")
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(
                what, field, value, "must be timezone-aware, e.g. datetime(..., tzinfo=UTC)"
            )
        return np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "us")
    if hasattr(value, "to_datetime64") and getattr(value, "tzinfo", None) is not None:
        return instant(value.to_pydatetime(), what, field)
    raise ValidationError(what, field, value, "expected an aware datetime or numpy datetime64")


def days(value: Any, what: str, field: str) -> float:
    """A duration as days: a timedelta, a numpy timedelta64 or a number of days."""
    if isinstance(value, timedelta):
        result = value.total_seconds() / 86_400
    elif isinstance(value, np.timedelta64):
        result = float(value.astype("timedelta64[us]").astype(np.int64)) / _US_PER_DAY
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        result = float(value)
    else:
        raise ValidationError(what, field, value, "expected a timedelta or a number of days")
    if not np.isfinite(result) or result <= 0:
        raise ValidationError(what, field, value, "must be a positive, finite duration")
    return result


def numbers(values: Any, what: str, field: str) -> FloatArray:
    """float64 with NaN for missing; text or other non-numbers raise."""
    array = np.asarray(values)
    if array.dtype.kind in "iufb":
        return array.astype(np.float64)
    if array.dtype.kind == "O":
        out = np.full(len(array), np.nan)
        for i, v in enumerate(array):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                try:
                    out[i] = float(v)  # Decimal
                    continue
                except (TypeError, ValueError):
                    raise ValidationError(what, field, v, "must be a number") from None
            out[i] = float(v)
        return out
    raise ValidationError(what, field, str(array.dtype), "must be numbers")


def factorize_text(values: Array, known: Sequence[str] = ()) -> tuple[IntArray, Array]:
    """Codes and categories of a text column; ``known`` come first, in order.

    Fast for few distinct values: one pass per category instead of sorting the strings.
    """
    cats: list[str] = list(dict.fromkeys(known))
    codes = np.full(len(values), -1, dtype=np.int64)
    if len(values) == 0:
        return codes, np.array(cats, dtype=str)
    for i, cat in enumerate(cats):
        codes[values == cat] = i
    rest = codes < 0
    if rest.any():
        extra, inverse = np.unique(values[rest], return_inverse=True)
        codes[rest] = inverse.reshape(-1) + len(cats)
        cats.extend(str(x) for x in extra)
    return codes, np.array(cats, dtype=str)


def index_of(keys: Array, universe: Array, what: str, field: str) -> IntArray:
    """Position of each key in ``universe`` (-1 for ``""``); unknown keys raise."""
    keys = np.asarray(keys)
    universe = np.asarray(universe)
    if universe.dtype.kind in "iu" and keys.dtype.kind in "iu":
        return keys.astype(np.int64)
    if len(universe) == 0:
        if (keys != "").any() if keys.dtype.kind == "U" else len(keys):
            raise ValidationError(what, field, keys[0], "no ids were given to map it to")
        return np.full(len(keys), -1, dtype=np.int64)
    order = np.argsort(universe, kind="stable")
    ordered = universe[order]
    pos = np.searchsorted(ordered, keys)
    pos = np.minimum(pos, len(ordered) - 1)
    found = ordered[pos] == keys
    blank = keys == ""
    bad = ~found & ~blank
    if bad.any():
        raise ValidationError(
            what, field, str(keys[np.argmax(bad)]), f"is not among the {len(universe)} ids given"
        )
    out = order[pos].astype(np.int64)
    out[blank] = -1
    return out


def locate(keys: Array, universe: Array) -> tuple[IntArray, Array]:
    """Position of each key in ``universe`` and whether it is there at all (vectorised).

    >>> pos, found = locate(np.array(["b", "x", "a"]), np.array(["a", "c", "b"]))
    >>> pos[found].tolist(), found.tolist()
    ([2, 0], [True, False, True])
    """
    keys = np.asarray(keys)
    universe = np.asarray(universe)
    if "O" in (keys.dtype.kind, universe.dtype.kind):
        keys, universe = text(keys), text(universe)
    if len(universe) == 0 or len(keys) == 0:
        return np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=bool)
    if (keys.dtype.kind in "iuf") != (universe.dtype.kind in "iuf"):
        return np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=bool)
    order = np.argsort(universe, kind="stable")
    ordered = universe[order]
    at = np.minimum(np.searchsorted(ordered, keys), len(ordered) - 1)
    found = np.asarray(ordered[at] == keys, dtype=bool)
    return order[at].astype(np.int64), found
