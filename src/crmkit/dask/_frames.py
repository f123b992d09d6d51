"""Dask plumbing shared by the engines: lazy imports, inputs, broadcasting, columns."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from crmkit._optional import require
from crmkit.errors import ValidationError
from crmkit.scoring._inputs import as_columns

Array = np.ndarray[Any, Any]

EXTRA = "dask"


def dask_module(name: str = "dask", feature: str = "crmkit.dask") -> Any:
    """``dask``, ``dask.dataframe`` or ``distributed``, imported on first use."""
    return require(name, extra=EXTRA, feature=feature)


def frame(source: Any, columns: Sequence[str] | None, what: str) -> Any:
    """A Dask DataFrame from a Dask DataFrame, a pandas DataFrame (one partition) or
    Parquet path(s) (read with only ``columns``)."""
    dd = dask_module("dask.dataframe", what)
    if isinstance(source, dd.DataFrame):
        return source
    if isinstance(source, (str, bytes)) or (
        isinstance(source, Sequence) and source and all(isinstance(s, str) for s in source)
    ):
        return dd.read_parquet(
            source, columns=None if columns is None else list(columns), index=False
        )
    if hasattr(source, "to_numpy") and hasattr(source, "dtypes"):
        return dd.from_pandas(source, npartitions=1, sort=False)
    if hasattr(source, "__fspath__"):
        return dd.read_parquet(
            str(source), columns=None if columns is None else list(columns), index=False
        )
    raise ValidationError(
        what,
        None,
        type(source).__name__,
        "expected a Dask DataFrame, a pandas DataFrame or Parquet path(s)",
    )


def need(df: Any, names: Sequence[str], what: str) -> None:
    """Raise naming the missing columns before any task runs."""
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ValidationError(
            what,
            missing[0],
            None,
            f"column {missing[0]!r} is missing; the columns are {sorted(map(str, df.columns))}",
        )


def columns_of(part: Any, what: str) -> dict[str, Array]:
    """A pandas partition as crmkit's numpy columns (text as unicode, times as us)."""
    return as_columns(part, what)


def broadcast(value: Any) -> Any:
    """``value`` as one task in the graph: sent once to each worker that needs it, not
    once per partition."""
    dask = dask_module("dask")
    return dask.delayed(value, pure=True, traverse=False)


def text_frame(data: Mapping[str, Any], index: Any = None) -> Any:
    """A pandas DataFrame (text columns as ``str``), for partition results and metas."""
    pd = dask_module("pandas")
    return pd.DataFrame(dict(data), index=index)


def tree(parts: list[Any], combine: Callable[[Any, Any], Any], split_every: int) -> Any:
    """Combine delayed partials ``split_every`` at a time until one is left."""
    dask = dask_module("dask")
    fold = dask.delayed(_fold, pure=True)
    while len(parts) > 1:
        parts = [
            fold(combine, *parts[i : i + split_every]) for i in range(0, len(parts), split_every)
        ]
    return parts[0]


def _fold(combine: Callable[[Any, Any], Any], *parts: Any) -> Any:
    out = parts[0]
    for part in parts[1:]:
        out = combine(out, part)
    return out
