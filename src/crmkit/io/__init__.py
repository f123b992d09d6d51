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

from crmkit.io._csv import (
    DuplicateRow,
    ImportFailed,
    ImportReport,
    RowError,
    export_csv,
    import_csv,
)

__all__ = ["DuplicateRow", "ImportFailed", "ImportReport", "RowError", "export_csv", "import_csv"]
