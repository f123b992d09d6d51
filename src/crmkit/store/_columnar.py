"""``repo.add_columns(columns)``: add records held as columns (a dict of arrays or a frame).

Every store's repository has it (see :class:`AddsColumns`); the batch is written by the
store's own ``add_many`` (one transaction, SQLite ``executemany``, PostgreSQL ``COPY``,
change events and integrity rules included), so what is stored and every error are the
record path's. The records are built one of two ways:

- **column-wise**, when every column is a numpy array of its field's plain type (text
  may be an object array of ``str`` and ``None``, as a frame holds it) and numpy
  proves every value valid (text without NUL or lone surrogates, required text present,
  enum values in their domain, numbers finite and within the field's bounds, required
  datetimes present): the values are converted once per column and the records built
  without running converters and validators per row;
- otherwise **row by row** through the record type's own compiled ``__init__``, which
  names every bad row with its own error (a :class:`~crmkit.errors.BatchError`).

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

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from decimal import Decimal
from typing import Any, cast

import attrs
import numpy as np

from crmkit._fields import (
    _FAST,
    INT64_MAX,
    INT64_MIN,
    NUMBER_SPECS,
    _blank_to_none,
    _to_float,
    _to_int,
    _to_money,
    _to_utc,
    text_problem,
)
from crmkit._schema import schema_of
from crmkit.errors import BatchError, CrmError, ValidationError
from crmkit.store._base import _fields_of, needs_record

__all__ = ["AddsColumns", "ColumnPatches", "patches_from_columns", "rows_from_columns"]


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


def _check_field_names(record_type: type[Any], names: Sequence[str]) -> None:
    """Refuse a column that is not a field of ``record_type``, or is ``version``."""
    schema = schema_of(record_type)
    known = {info.name for info in schema.fields}
    for name in names:
        if name not in known or name == "version":
            reason = (
                "is set by the store" if name == "version" else f"is not a field of {schema.name}"
            )
            raise ValidationError(schema.name, name, None, reason)


def _column_lists(
    record: str, mapping: Mapping[str, Any], names: Sequence[str]
) -> list[list[Any]]:
    """The named columns as Python values (see :func:`_values`), all of one length."""
    lists: list[list[Any]] = []
    for name in names:
        try:
            lists.append(_values(mapping[name]))
        except (TypeError, ValueError) as err:
            raise ValidationError(record, name, mapping[name], f"is not a column: {err}") from err
    if len({len(values) for values in lists}) > 1:
        lengths = ", ".join(f"{n}={len(v)}" for n, v in zip(names, lists, strict=True))
        raise ValidationError(record, None, None, f"columns differ in length: {lengths}")
    return lists


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
    record = schema_of(record_type).name
    mapping = _as_mapping(record, columns)
    names = [str(name) for name in mapping]
    _check_field_names(record_type, names)
    fast = _checked_columns(record_type, names, [mapping[name] for name in names])
    if fast is not None:
        return fast
    lists = _column_lists(record, mapping, names)
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


# -- the column-wise path --------------------------------------------------------------
#
# When every column is a numpy array of the plain type its field takes and numpy proves
# every value valid, the records are built without running their converters and
# validators again (the values are already what they would produce). Anything numpy
# cannot prove (a bad value, a list, an object array, a kind not handled here) sends the
# whole batch down the record path, which names the bad rows with its own errors.


def _object_text_values(column: np.ndarray[Any, Any], required: bool) -> list[Any] | None:
    """Text from an object column (a frame's text): each value text or None, checked in
    Python (no conversion to a unicode array, which would drop a trailing NUL)."""
    values = column.tolist()
    for value in values:
        if value is None:
            if required:
                return None
        elif type(value) is not str or text_problem(value) is not None:
            return None
    values = [None if value is None else value.strip() or None for value in values]
    if required and None in values:
        return None
    return values


def _text_values(column: np.ndarray[Any, Any], required: bool) -> list[Any] | None:
    if column.dtype.kind == "O":
        return _object_text_values(column, required)
    if column.dtype.kind != "U":
        return None
    if column.dtype.itemsize:
        points = column.view(np.uint32).reshape(len(column), -1)
        if bool(((points >= 0xD800) & (points <= 0xDFFF)).any()):
            return None  # lone surrogates: the record path names them
        if points.shape[1] > 1 and bool(((points[:, :-1] == 0) & (points[:, 1:] != 0)).any()):
            return None  # a NUL inside the text
    values = [value.strip() or None for value in column.tolist()]
    if required and None in values:
        return None
    return values


def _enum_values(column: np.ndarray[Any, Any], spec: tuple[Any, ...]) -> list[Any] | None:
    enum_type = spec[1]
    if column.dtype.kind == "O":
        values = column.tolist()
        if any(type(value) is not str for value in values):
            return None
        table: dict[str, Any] = {}
        for value in set(values):
            try:
                table[value] = enum_type(value.strip().lower())
            except ValueError:
                return None
        return [table[value] for value in values]
    if column.dtype.kind != "U":
        return None
    uniques, inverse = np.unique(column, return_inverse=True)
    members = []
    for value in uniques.tolist():
        try:
            members.append(enum_type(value.strip().lower()))
        except ValueError:
            return None
    found = np.empty(len(members), dtype=object)
    found[:] = members
    return cast(list[Any], found[inverse.reshape(-1)].tolist())


def _bounded(column: np.ndarray[Any, Any], low: Any, high: Any) -> bool:
    if not len(column):
        return True
    return (low is None or bool(column.min() >= low)) and (
        high is None or bool(column.max() <= high)
    )


def _number_values(
    column: np.ndarray[Any, Any], spec: tuple[str, Any, Any, bool]
) -> list[Any] | None:
    kind, low, high, optional = spec
    dtype = column.dtype.kind
    if kind == "int" and dtype in "iu":
        low = INT64_MIN if low is None else low
        high = INT64_MAX if high is None else high
        return column.tolist() if _bounded(column, low, high) else None
    if kind not in ("float", "money") or dtype not in ("f" if kind == "float" else "iuf"):
        return None
    present, missing = column, None
    if dtype == "f":
        column = column.astype(np.float64)
        missing = np.isnan(column)
        if bool(missing.any()):
            if not optional:
                return None
            present = column[~missing]  # NaN is missing, as it is on the record path
        else:
            present, missing = column, None
        if not bool(np.isfinite(present).all()):
            return None
    if not _bounded(present, low, high):
        return None
    if kind == "float":
        values = column.tolist()
    elif dtype == "f":
        # a float becomes Decimal(repr(value)), as the money converter does; a value on a
        # bound goes to the record path, so the decimal and the float cannot disagree
        if len(present) and (
            (low not in (None, 0) and bool(present.min() == low))
            or (high is not None and bool(present.max() == high))
        ):
            return None
        values = [Decimal(repr(value)) for value in column.tolist()]
    else:
        values = [Decimal(value) for value in column.tolist()]
    if missing is not None:
        for index in np.flatnonzero(missing).tolist():
            values[index] = None
    return cast(list[Any], values)


def _moment_values(column: np.ndarray[Any, Any], required: bool) -> list[Any] | None:
    if column.dtype.kind != "M":
        return None
    missing = np.isnat(column)
    if required and bool(missing.any()):
        return None
    return _values(column)


def _column_values(field: Any, column: Any) -> list[Any] | None:
    """The converted values of one column if numpy proves them all valid, else None."""
    if not isinstance(column, np.ndarray) or column.ndim != 1:
        return None
    validator = field.validator
    spec = _FAST.get(validator) if validator is not None else None
    if spec is not None:
        kind = spec[0]
        if kind == "text" and field.converter is _blank_to_none:
            return _text_values(column, spec[1])
        if kind == "enum":
            return _enum_values(column, spec)
        if kind == "bool":
            return cast(list[Any], column.tolist()) if column.dtype.kind == "b" else None
        if kind == "moment" and field.converter is _to_utc:
            return _moment_values(column, spec[1])
    numbers = NUMBER_SPECS.get(validator) if validator is not None else None
    if numbers is not None and field.converter in _NUMBER_CONVERTERS.get(numbers[0], ()):
        return _number_values(column, numbers)
    return None


def _checked_columns(
    record_type: type[Any], names: list[str], columns: list[Any]
) -> list[Any] | None:
    """The records, if numpy proves every column valid (see above); else None."""
    if hasattr(record_type, "__attrs_post_init__"):
        return None
    fields = _fields_of(record_type)
    given = set(names)
    absent = [f for n, f in fields.items() if n not in given]
    if "version" in given or any(
        f.default is attrs.NOTHING
        # a validator that may read other fields must run on the record path
        or (
            f.validator is not None
            and f.validator not in _FAST
            and f.validator not in NUMBER_SPECS
        )
        for f in absent
    ):
        return None
    if len({len(column) if hasattr(column, "__len__") else -1 for column in columns}) > 1:
        return None
    values: list[list[Any]] = []
    for name, column in zip(names, columns, strict=True):
        converted = _column_values(fields[name], column)
        if converted is None:
            return None
        values.append(converted)
    if not values or not values[0]:
        return None
    make = _trusted_maker(record_type, tuple(names))
    if make is None:
        return None
    return list(map(make, *values))


_NUMBER_CONVERTERS: dict[str, tuple[Any, ...]] = {
    "int": (_to_int,),
    "float": (_to_float,),
    "money": (_to_money,),
}

_TRUSTED: dict[tuple[type[Any], tuple[str, ...]], Callable[..., Any] | None] = {}


def _trusted_maker(record_type: type[Any], names: tuple[str, ...]) -> Callable[..., Any] | None:
    """``make(*values)``: a record at version 1 from values already converted and checked,
    the other fields at their (converted) defaults; None if a default cannot be trusted."""
    key = (record_type, names)
    if key in _TRUSTED:
        return _TRUSTED[key]
    ns: dict[str, Any] = {"_cls": record_type, "_new": object.__new__}
    params = [f"v{i}" for i in range(len(names))]
    given = dict(zip(names, params, strict=True))
    lines = ["    o = _new(_cls)"]
    maker: Callable[..., Any] | None = None
    for field in attrs.fields(record_type):
        name = field.name
        slot = record_type.__dict__.get(name)
        if not hasattr(slot, "__set__") or not name.isidentifier():
            break  # not a slotted record class: the record path builds it
        ns[f"_s_{name}"] = cast(Any, slot).__set__
        if name == "version":
            value = "1"
        elif name in given:
            value = given[name]
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            factory = cast(Any, field.default)
            if factory.takes_self or factory.factory not in (dict, list, tuple):
                break
            ns[f"_d_{name}"] = factory.factory
            value = f"_d_{name}()"
        else:
            default = field.default
            if field.converter is not None:
                default = cast(Callable[[Any], Any], field.converter)(default)
            ns[f"_d_{name}"] = default
            value = f"_d_{name}"
        lines.append(f"    _s_{name}(o, {value})")
    else:
        source = f"def make({', '.join(params)}):\n" + "\n".join(lines) + "\n    return o\n"
        exec(compile(source, f"<crmkit trusted maker {record_type.__name__}>", "exec"), ns)
        maker = ns["make"]
    if len(_TRUSTED) > 256:
        _TRUSTED.clear()
    _TRUSTED[key] = maker
    return maker


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


@attrs.frozen
class ColumnPatches:
    """The patches one ``patch_columns`` call holds, checked for shape (not for values)."""

    ids: list[str]
    names: list[str]  # the changed fields
    values: list[list[Any]]  # per changed field, its values as given
    columns: dict[str, Any]  # per changed field, its column as given (arrays stay arrays)
    versions: dict[str, int] | None  # expected versions by id

    def changes(self) -> dict[str, dict[str, Any]]:
        """The same patches as ``patch_many`` takes them: ``{id: {field: value}}``."""
        return {
            record_id: dict(zip(self.names, row, strict=True))
            for record_id, *row in zip(self.ids, *self.values, strict=True)
        }


def patches_from_columns(
    record_type: type[Any], columns: Any, expected_versions: Any = None
) -> ColumnPatches:
    """The patches ``columns`` hold: an ``"id"`` column and one column per changed field.

    Refused with a :class:`~crmkit.errors.ValidationError`: no ``id`` column, no changed
    field, a name that is not a patchable field, columns of different lengths. An id
    that is not text or is repeated is named in a :class:`~crmkit.errors.BatchError`.
    The values are not converted here (see :func:`proven_columns`).

    >>> from crmkit.records import Account
    >>> patches_from_columns(Account, {"id": ["a1", "a2"], "employees": [5, 7]}).changes()
    {'a1': {'employees': 5}, 'a2': {'employees': 7}}
    >>> patches_from_columns(Account, {"id": ["a1", "a1"], "employees": [5, 7]})
    Traceback (most recent call last):
    ...
    crmkit.errors.BatchError: Account: 1 bad record(s) in batch, nothing written:
      #1: Account 'a1' field 'id' = 'a1': appears twice in the batch (first at #0)
    """
    record = schema_of(record_type).name
    mapping = _as_mapping(record, columns)
    names = [str(name) for name in mapping]
    if "id" not in names:
        raise ValidationError(record, "id", None, "patch_columns needs an 'id' column")
    changed = [name for name in names if name != "id"]
    if not changed:
        raise ValidationError(record, None, names, "patch_columns needs a column to change")
    _check_field_names(record_type, changed)
    ids, *values = _column_lists(record, mapping, ["id", *changed])
    _check_ids(record, ids)
    return ColumnPatches(
        ids=ids,
        names=changed,
        values=values,
        columns={name: mapping[name] for name in changed},
        versions=_expected_versions(record, ids, expected_versions),
    )


def _check_ids(record: str, ids: list[Any]) -> None:
    """Name, in a ``BatchError``, every id that is not text or appears twice."""
    if all(type(i) is str for i in ids) and len(set(ids)) == len(ids):
        return
    errors: list[tuple[int, CrmError]] = []
    seen: dict[str, int] = {}
    for index, record_id in enumerate(ids):
        if type(record_id) is not str:
            errors.append((index, ValidationError(record, "id", record_id, "must be text")))
        elif record_id in seen:
            twice = f"appears twice in the batch (first at #{seen[record_id]})"
            errors.append(
                (index, ValidationError(record, "id", record_id, twice, record_id=record_id))
            )
        else:
            seen[record_id] = index
    raise BatchError(record, errors)


def _expected_versions(record: str, ids: list[str], given: Any) -> dict[str, int] | None:
    """``expected_versions`` (a mapping of ids to versions, or a column aligned with the
    ids) as a mapping."""
    if given is None:
        return None
    if isinstance(given, Mapping):
        return dict(given)
    try:
        listed = _values(given)
    except (TypeError, ValueError) as err:
        raise ValidationError(record, "version", given, f"is not a column: {err}") from err
    if len(listed) != len(ids):
        raise ValidationError(
            record,
            "version",
            len(listed),
            f"expected_versions must hold one version per id ({len(ids)})",
        )
    return dict(zip(ids, listed, strict=True))


def proven_columns(record_type: type[Any], patches: ColumnPatches) -> list[list[Any]] | None:
    """The converted values of the changed columns when numpy proves every value valid
    and no changed field's check reads another field; else None (then each patch is
    checked on the record path, which names the bad rows).

    >>> import numpy as np
    >>> from crmkit.records import Account
    >>> proven_columns(Account, patches_from_columns(
    ...     Account, {"id": ["a1", "a2"], "employees": np.array([5, 7])}))
    [[5, 7]]
    >>> proven_columns(Account, patches_from_columns(                # a bad value: the
    ...     Account, {"id": ["a1", "a2"], "employees": np.array([5, -7])}))  # record path
    """
    fields = _fields_of(record_type)
    if hasattr(record_type, "__attrs_post_init__") or any(map(needs_record, patches.names)):
        return None
    values: list[list[Any]] = []
    for name in patches.names:
        converted = _column_values(fields[name], patches.columns[name])
        if converted is None:
            return None
        values.append(converted)
    return values


def patch_through_patch_many(repo: Any, patches: ColumnPatches) -> int:
    """``repo.patch_columns`` as one ``repo.patch_many`` (the record path every store has,
    with its change events and integrity rules)."""
    if patches.ids:
        repo.patch_many(patches.changes(), expected_versions=patches.versions)
    return len(patches.ids)


class AddsColumns:
    """``add_columns`` and ``patch_columns`` for a repository that has ``record_type``,
    ``add_many`` and ``patch_many``."""

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

    def patch_columns(self, columns: Any, *, expected_versions: Any = None) -> int:
        """Patch the records named in the ``"id"`` column with the other columns' values
        (field name -> array or list, or a pandas DataFrame), all or none, and return how
        many were patched.

        The same checks and errors as ``patch_many`` of the same changes: a bad value, an
        unknown id or a stale version (``expected_versions``: a mapping of ids to
        versions, or an array aligned with the ids) raises
        :class:`~crmkit.errors.BatchError` naming the row, and nothing is written; an id
        repeated in the columns is refused. It returns a count, not the records, so a
        store may write without reading them: SQLite runs one ``UPDATE`` per row in one
        ``executemany`` when numpy proves the values valid and the store's change events
        are off.

        >>> import numpy as np
        >>> from crmkit.records import Account
        >>> from crmkit.store import MemoryStore
        >>> store = MemoryStore()
        >>> _ = store.accounts.add_many([Account(id="a1", name="Acme"),
        ...                              Account(id="a2", name="Globex")])
        >>> store.accounts.patch_columns({"id": np.array(["a1", "a2"]),
        ...                               "employees": np.array([12, 250])})
        2
        >>> store.accounts.get("a2").employees, store.accounts.get("a2").version
        (250, 2)
        """
        patches = patches_from_columns(cast(Any, self).record_type, columns, expected_versions)
        return patch_through_patch_many(self, patches)
