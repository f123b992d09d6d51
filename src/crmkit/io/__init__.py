"""CSV import and export with column mapping, references by name, and a report.

:func:`import_csv` reads a CSV into a store: every cell is parsed by the kind of the field
it feeds, references may be given by name instead of id (``refs``), every bad cell is
reported with its row, column and value, and a file with a bad row writes nothing
(unless ``skip_bad_rows=True``). :func:`export_csv` writes records in a form
:func:`import_csv` reads back to equal records. See ``docs/import-export.md``.

Examples
--------
>>> import io
>>> from crmkit.store import MemoryStore
>>> store = MemoryStore()
>>> text = "id,name,parent,employees\\na-2,Acme EU,Acme,\\"1,200\\"\\na-1,Acme,,\\n"
>>> report = import_csv(store, "accounts", io.StringIO(text),
...                     mapping={"parent": "parent_id"}, refs={"parent_id": "name"})
>>> print(report)
Account import: 2 row(s) read, 2 written, 0 skipped
>>> store.accounts.get("a-2").parent_id, store.accounts.get("a-2").employees
('a-1', 1200)
>>> out = io.StringIO()
>>> export_csv(store, "accounts", out, fields=["id", "name", "parent_id"])
2
>>> print(out.getvalue())
id,name,parent_id
a-1,Acme,
a-2,Acme EU,a-1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmkit.io._csv import ImportFailed, ImportReport, RowError, Source, export_rows, import_rows

if TYPE_CHECKING:
    from crmkit.store import Store

__all__ = ["ImportFailed", "ImportReport", "RowError", "export_csv", "import_csv"]


def import_csv(
    store: Store,
    record_type: type[Any] | str,
    source: Source,
    *,
    mapping: Mapping[str, str | None] | None = None,
    refs: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    skip_bad_rows: bool = False,
    delimiter: str = ",",
    encoding: str = "utf-8",
    id_column: str | None = None,
    tz: str = "UTC",
    date_format: str | None = None,
    datetime_format: str | None = None,
    custom_types: Mapping[str, Any] | None = None,
    upsert: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Read records of ``record_type`` from a CSV into ``store``.

    ``record_type`` is a record class or its plural name (``"accounts"``); ``source`` a
    path or a text file object (open it with ``newline=""``).

    - ``mapping`` maps a column header to a field (``"custom.<key>"`` for a custom field,
      ``None`` to ignore the column). Columns named like a field (case-insensitive) or
      ``custom.<key>`` feed it without a mapping; other columns are ignored and listed in
      the report.
    - ``refs`` gives reference fields by another field of the record they point to, e.g.
      ``{"parent_id": "name"}``: looked up in the store and, for references to the type
      being imported, in the file itself. Missing or ambiguous names are row errors.
    - ``defaults`` fills blank cells and missing columns (values are used as given).
    - ``id_column`` is a shortcut for ``mapping={column: "id"}``. Without an id column,
      ids are ``<type>-<16 hex digits>`` from a SHA-1 of the row's mapped cells, so a
      second import of the same file finds the same ids and reports them.
    - ``tz`` is the zone of datetimes written without an offset; ``date_format`` and
      ``datetime_format`` are :meth:`~datetime.datetime.strptime` formats used instead
      of ISO 8601.
    - ``custom_types`` maps a custom key to ``int``, ``float``, ``bool``, ``str`` or
      ``"json"``; custom values are text unless said otherwise.
    - ``upsert=True`` replaces stored records with the same id instead of reporting them.
    - ``dry_run=True`` checks everything and writes nothing.

    With any bad row and ``skip_bad_rows=False`` nothing is written and
    :class:`ImportFailed` (a :class:`~crmkit.errors.ValidationError`) is raised; its
    ``report`` lists every error. With ``skip_bad_rows=True`` the good rows are written
    in one transaction and the report lists the bad ones.

    Examples
    --------
    >>> import io
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> import_csv(store, "reps", io.StringIO("id,name\\nr-1,Ada\\n")).ids
    ('r-1',)
    >>> import_csv(store, "reps", io.StringIO("id,name\\nr-1,Ada\\n"))
    Traceback (most recent call last):
    ...
    crmkit.io._csv.ImportFailed: Rep: 1 error(s) in 1 row(s) of the CSV, nothing written ...
      row 2, column 'id' = 'r-1': Rep 'r-1' is already in the store; ...
    """
    return import_rows(
        store,
        record_type,
        source,
        mapping=mapping,
        refs=refs,
        defaults=defaults,
        skip_bad_rows=skip_bad_rows,
        delimiter=delimiter,
        encoding=encoding,
        id_column=id_column,
        tz=tz,
        date_format=date_format,
        datetime_format=datetime_format,
        custom_types=custom_types,
        upsert=upsert,
        dry_run=dry_run,
    )


def export_csv(
    store_or_records: Store | Iterable[Any],
    record_type: type[Any] | str,
    dest: Source,
    *,
    fields: Sequence[str] | None = None,
    criteria: Any = None,
    mapping: Mapping[str, str] | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> int:
    """Write records to a CSV that :func:`import_csv` reads back to equal records.

    ``store_or_records`` is a store (records in id order) or an iterable of records.
    ``fields`` picks and orders the columns (default: every field in schema order except
    ``version``, then one ``custom.<key>`` column per custom key in sorted order);
    ``criteria`` filters; ``mapping`` renames columns (field -> header). A custom column
    whose values are all numbers or all flags gets a type suffix (``custom.nps:int``) so
    the import gives the same types back. Returns the number of rows written.

    Examples
    --------
    >>> import io
    >>> from crmkit import Account
    >>> out = io.StringIO()
    >>> export_csv([Account(id="a", name="A", custom={"nps": 9})], "accounts", out,
    ...            fields=["id", "custom.nps"])
    1
    >>> out.getvalue()
    'id,custom.nps:int\\r\\na,9\\r\\n'
    """
    return export_rows(
        store_or_records,
        record_type,
        dest,
        fields=fields,
        criteria=criteria,
        mapping=mapping,
        delimiter=delimiter,
        encoding=encoding,
    )
