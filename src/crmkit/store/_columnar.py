"""``repo.add_columns(columns)``: add records held as columns (a dict of arrays or a frame).

Every store's repository has it (see :class:`AddsColumns`). The columns are turned into
Python values once per column (``ndarray.tolist()``, not one numpy scalar per cell), each
row goes through the record type's own compiled ``__init__`` (so every conversion, check
and error message is exactly the record path's), and the batch is written by the store's
own ``add_many``: one transaction, SQLite ``executemany``, PostgreSQL ``COPY``, change
events and integrity rules included.

What a column may hold:

- numpy ``datetime64`` values are instants in UTC (numpy has no time zone), so they become
  aware UTC datetimes; ``NaT`` is missing. Python datetimes must be timezone-aware, as
  for a record.
- a NaN in a float column is missing (``None``), as pandas writes a missing number.
- anything else is passed to the record as it is: ``"12.50"`` or ``12.5`` for money
  (floats are converted by their shortest repr, as a record converts them), enum values
  as text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any, cast

import numpy as np

from crmkit._schema import schema_of
from crmkit.errors import BatchError, CrmError, ValidationError

__all__ = ["AddsColumns", "rows_from_columns"]


def _as_mapping(record: str, columns: Any) -> Mapping[str, Any]:
    if isinstance(columns, Mapping):
        return columns
    names = getattr(columns, "columns", None)
    if names is not None and hasattr(columns, "to_numpy"):  # a pandas DataFrame
        return {str(name): columns[name].to_numpy() for name in names}
    raise ValidationError(
        record,
        None,
        columns,
        "add_columns takes a mapping of field names to arrays or lists, or a DataFrame",
    )


def _values(column: Any) -> list[Any]:
    """One column as Python values: UTC datetimes for ``datetime64``, None for NaN/NaT."""
    if not isinstance(column, np.ndarray):
        return list(column)
    if column.ndim != 1:
        raise ValueError("must be one-dimensional")
    kind = column.dtype.kind
    if kind == "M":
        missing = np.isnat(column)
        values = column.astype("datetime64[us]").tolist()
        return [
            None if gone else value.replace(tzinfo=UTC)
            for gone, value in zip(missing.tolist(), values, strict=True)
        ]
    values = column.tolist()
    if kind == "f":
        missing = np.isnan(column)
        if missing.any():
            for index in np.flatnonzero(missing).tolist():
                values[index] = None
    return cast(list[Any], values)


def rows_from_columns(record_type: type[Any], columns: Any) -> list[Any]:
    """The records the ``columns`` hold, built and checked row by row, or a
    :class:`~crmkit.errors.BatchError` naming every bad row (its position, the record's
    id, the field and the value) with the record path's own errors.

    >>> from crmkit.records import Account
    >>> [a.name for a in rows_from_columns(Account, {"id": ["a1", "a2"], "name": ["A", "B"]})]
    ['A', 'B']
    >>> rows_from_columns(Account, {"id": ["a1", "a2"], "name": ["A", ""]})
    Traceback (most recent call last):
    ...
    crmkit.errors.BatchError: Account: 1 bad record(s) in batch, nothing written:
      #1: Account 'a2' field 'name' = None: is required and must not be empty
    """
    schema = schema_of(record_type)
    record = schema.name
    mapping = _as_mapping(record, columns)
    known = {info.name for info in schema.fields}
    names = [str(name) for name in mapping]
    for name in names:
        if name not in known or name == "version":
            reason = "is set by the store" if name == "version" else f"is not a field of {record}"
            raise ValidationError(record, name, None, reason)
    lists: list[list[Any]] = []
    for name in names:
        try:
            lists.append(_values(mapping[name]))
        except (TypeError, ValueError) as err:
            raise ValidationError(record, name, mapping[name], f"is not a column: {err}") from err
    sizes = {len(values) for values in lists}
    if len(sizes) > 1:
        lengths = ", ".join(f"{n}={len(v)}" for n, v in zip(names, lists, strict=True))
        raise ValidationError(record, None, None, f"columns differ in length: {lengths}")
    if not lists:
        return []
    make = _maker(record_type, tuple(names))
    try:
        return list(map(make, *lists))
    except CrmError:
        pass
    errors: list[tuple[int, CrmError]] = []
    for index, row in enumerate(zip(*lists, strict=True)):
        try:
            make(*row)
        except CrmError as err:
            errors.append((index, err))
    raise BatchError(record, errors)


_MAKERS: dict[tuple[type[Any], tuple[str, ...]], Callable[..., Any]] = {}


def _maker(record_type: type[Any], names: tuple[str, ...]) -> Callable[..., Any]:
    """``make(*values)``: ``record_type(name=value, ..., version=1)`` without building a
    dict per row. Generated from field names checked against the schema (never data)."""
    known = _MAKERS.get((record_type, names))
    if known is None:
        params = [f"v{i}" for i in range(len(names))]
        call = ", ".join(f"{n}={p}" for n, p in zip(names, params, strict=True))
        source = f"def make({', '.join(params)}):\n    return _cls({call}, version=1)\n"
        ns: dict[str, Any] = {"_cls": record_type}
        exec(compile(source, f"<crmkit column maker {record_type.__name__}>", "exec"), ns)
        known = _MAKERS[(record_type, names)] = ns["make"]
        if len(_MAKERS) > 256:
            _MAKERS.clear()
    return known


class AddsColumns:
    """``add_columns`` for a repository that has ``record_type`` and ``add_many``."""

    def add_columns(self, columns: Any) -> int:
        """Add the records held in ``columns`` (field name -> array or list, or a pandas
        DataFrame), all or none, and return how many were added.

        Same checks and errors as building each record and calling ``add_many``: a bad
        row, or an id already stored or repeated, raises
        :class:`~crmkit.errors.BatchError` naming it, and nothing is written. numpy
        ``datetime64`` values are taken as UTC; NaN in a float column is missing.

        >>> import numpy as np
        >>> from crmkit.store import MemoryStore
        >>> store = MemoryStore()
        >>> store.accounts.add_columns({"id": np.array(["a1", "a2"]),
        ...                             "name": ["Acme", "Globex"],
        ...                             "employees": np.array([10, 250])})
        2
        >>> store.accounts.get("a2").employees
        250
        """
        repo = cast(Any, self)
        records = rows_from_columns(repo.record_type, columns)
        if records:
            repo.add_many(records)
        return len(records)
