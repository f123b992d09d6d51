"""The ``import`` and ``export`` subcommands of ``python -m crmkit``.

:func:`add_commands` registers them on an :mod:`argparse` subparsers object; each sets
``func`` to a handler that takes the parsed arguments and returns the exit code (0 on
success, 1 when rows failed or the input was bad).

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="crmkit")
>>> add_commands(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["import", "--db", "crm.db", "--type", "accounts", "a.csv",
...                           "--map", "Company=name", "--ref", "parent_id=name"])
>>> args.mapping, args.refs, args.func.__name__
(['Company=name'], ['parent_id=name'], 'run_import')
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from crmkit.errors import CrmError

__all__ = ["add_commands", "run_export", "run_import"]


def add_commands(subparsers: Any) -> None:
    """Register ``import`` and ``export`` on ``subparsers`` (from ``add_subparsers()``)."""
    imp = subparsers.add_parser(
        "import",
        help="import records from a CSV file",
        description="Import records from a CSV file into a SQLite database. Nothing is "
        "written if any row is bad, unless --skip-bad-rows is given.",
    )
    imp.add_argument("--db", required=True, help="SQLite database file")
    imp.add_argument("--type", required=True, help="record type, e.g. accounts")
    imp.add_argument("file", help="CSV file to read")
    imp.add_argument(
        "--map",
        dest="mapping",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help="feed a column to a field (custom.<key> for a custom field; FIELD empty to "
        "ignore the column); repeatable",
    )
    imp.add_argument(
        "--ref",
        dest="refs",
        action="append",
        default=[],
        metavar="FIELD=BY_FIELD",
        help="resolve a reference field by another field, e.g. parent_id=name; repeatable",
    )
    imp.add_argument("--id-column", help="the column holding record ids")
    imp.add_argument("--skip-bad-rows", action="store_true", help="write the good rows")
    imp.add_argument("--tz", default="UTC", help="zone of datetimes without an offset")
    imp.add_argument("--upsert", action="store_true", help="replace records with the same id")
    imp.add_argument("--dry-run", action="store_true", help="check only, write nothing")
    imp.add_argument("--delimiter", default=",", help="cell separator (default ',')")
    imp.add_argument("--encoding", default="utf-8", help="file encoding (default utf-8)")
    imp.set_defaults(func=run_import)

    exp = subparsers.add_parser(
        "export",
        help="export records to a CSV file",
        description="Export records from a SQLite database to a CSV file that import reads "
        "back unchanged.",
    )
    exp.add_argument("--db", required=True, help="SQLite database file")
    exp.add_argument("--type", required=True, help="record type, e.g. accounts")
    exp.add_argument("file", help="CSV file to write ('-' for standard output)")
    exp.add_argument("--fields", help="comma-separated fields to write (default: all)")
    exp.add_argument("--delimiter", default=",", help="cell separator (default ',')")
    exp.set_defaults(func=run_export)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} takes KEY=VALUE, not {item!r}")
        result[key.strip()] = value.strip()
    return result


def run_import(args: argparse.Namespace) -> int:
    """Handle ``crmkit import``: print the report; 0 if every row was good, else 1."""
    from crmkit.io import ImportFailed, import_csv

    try:
        mapping: dict[str, str | None] = {
            column: field or None for column, field in _pairs(args.mapping, "--map").items()
        }
        refs = _pairs(args.refs, "--ref")
    except ValueError as err:
        print(f"crmkit import: {err}", file=sys.stderr)
        return 1
    from crmkit.store.sqlite import SQLiteStore

    try:
        store = SQLiteStore(args.db)
    except CrmError as err:
        print(f"crmkit import: {err}", file=sys.stderr)
        return 1
    try:
        report = import_csv(
            store,
            args.type,
            args.file,
            mapping=mapping,
            refs=refs,
            id_column=args.id_column,
            skip_bad_rows=args.skip_bad_rows,
            tz=args.tz,
            upsert=args.upsert,
            dry_run=args.dry_run,
            delimiter=args.delimiter,
            encoding=args.encoding,
        )
    except ImportFailed as err:
        print(err.report, file=sys.stderr)
        print("nothing written", file=sys.stderr)
        return 1
    except CrmError as err:
        print(f"crmkit import: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(report)
    return 0 if report.ok else 1


def run_export(args: argparse.Namespace) -> int:
    """Handle ``crmkit export``: write the CSV and print how many rows; 0 on success."""
    from crmkit.io import export_csv
    from crmkit.store.sqlite import SQLiteStore

    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    try:
        store = SQLiteStore(args.db)
    except CrmError as err:
        print(f"crmkit export: {err}", file=sys.stderr)
        return 1
    try:
        dest: Any = sys.stdout if args.file == "-" else args.file
        count = export_csv(store, args.type, dest, fields=fields, delimiter=args.delimiter)
    except CrmError as err:
        print(f"crmkit export: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.file != "-":
        print(f"{count} row(s) written to {args.file}")
    return 0
