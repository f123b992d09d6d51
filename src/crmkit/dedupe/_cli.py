"""The ``dedupe`` subcommand of ``python -m crmkit``: a duplicate job over a CSV file.

The file is read with :func:`~crmkit.io.import_csv` (same parsing, ``--map`` and
``--id-column``) into a store in memory; without an id column, records are named by their
row number (``row-2`` is the first data row). Pairs and clusters go to CSV files or one
JSON document, the summary to standard error.

The subcommand's arguments are declared in :mod:`crmkit.cli` (so that building the
parser does not import :mod:`crmkit.dedupe`).

Examples
--------
>>> from crmkit.cli import _parser
>>> args = _parser().parse_args(["dedupe", "people.csv", "--rule", "contact-email",
...                              "--clusters", "clusters.csv"])
>>> args.type, args.rule, args.clusters, args.func.__name__
('contacts', ['contact-email'], 'clusters.csv', '_dedupe')
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import IO, Any

from crmkit.errors import CrmError

__all__ = ["run_dedupe"]

_TYPES = {"contacts": "Contact", "leads": "Lead", "accounts": "Account"}
"""The ``--type`` choices (as in :mod:`crmkit.cli`) and the record type of each."""
_ROW_ID = "crmkit-row-id"


def run_dedupe(args: argparse.Namespace) -> int:
    """Handle ``crmkit dedupe``: 0 on success, 1 when the input or the rules were bad."""
    try:
        report = _run(args)
    except (CrmError, OSError, ValueError) as err:
        print(f"crmkit dedupe: {err}", file=sys.stderr)
        return 1
    print(report.summary(), file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> Any:
    from crmkit.dedupe._jobs import DEFAULT_RULES, find_duplicate_pairs
    from crmkit.dedupe._rules import rules_from_data
    from crmkit.io import ImportFailed, import_csv
    from crmkit.io.cli import _pairs
    from crmkit.store.memory import MemoryStore

    kind = _TYPES[args.type]
    given = rules_from_data(_load(Path(args.rules))) if args.rules else None
    rules = given if given is not None else list(DEFAULT_RULES[kind])
    if args.rule:
        by_id = {r.id: r for r in rules}
        unknown = [r for r in args.rule if r not in by_id]
        if unknown:
            raise ValueError(
                f"no rule {unknown[0]!r} for {args.type}; choose from {', '.join(by_id)}"
            )
        rules = [by_id[r] for r in args.rule]
    mapping: dict[str, str | None] = {
        column: field or None for column, field in _pairs(args.mapping, "--map").items()
    }
    text = _read(args.file, args.encoding)
    id_column = args.id_column
    if id_column is None and "id" not in {v for v in mapping.values() if v}:
        header = next(csv.reader(io.StringIO(text), delimiter=args.delimiter), [])
        if "id" not in {h.strip().lower() for h in header}:
            text, id_column = _number_rows(text, args.delimiter), _ROW_ID
    store = MemoryStore()
    try:
        import_csv(
            store,
            args.type,
            io.StringIO(text),
            mapping=mapping,
            id_column=id_column,
            delimiter=args.delimiter,
        )
    except ImportFailed as err:
        raise ValueError(str(err.report)) from None
    report = find_duplicate_pairs(store, rules, record_type=kind)
    wrote_any = False
    if args.pairs:
        _write(args.pairs, lambda out: _pairs_csv(report, out))
        wrote_any = True
    if args.clusters:
        _write(args.clusters, lambda out: _clusters_csv(report, out))
        wrote_any = True
    if args.json:
        _write(args.json, lambda out: json.dump(_as_json(report), out, indent=2))
        wrote_any = True
    if not wrote_any:
        _pairs_csv(report, sys.stdout)
    return report


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        import tomllib

        return tomllib.loads(text)
    return json.loads(text)


def _read(name: str, encoding: str) -> str:
    if name == "-":
        return sys.stdin.read()
    with open(name, encoding=encoding, newline="") as handle:
        return handle.read()


def _number_rows(text: str, delimiter: str) -> str:
    """The CSV with a first column naming each record by its row (``row-2`` onwards)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1):
        if number > 1 and not any(cell.strip() for cell in row):
            continue
        writer.writerow([_ROW_ID if number == 1 else f"row-{number}", *row])
    return out.getvalue()


def _write(dest: str, emit: Any) -> None:
    if dest == "-":
        emit(sys.stdout)
        return
    with open(dest, "w", encoding="utf-8", newline="") as handle:
        emit(handle)


def _agreed(pair: Any) -> str:
    return " ".join(f.field for f in pair.fields if f.passed)


def _pairs_csv(report: Any, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["left_id", "right_id", "rule", "score", "fields"])
    for p in report.pairs:
        writer.writerow([p.left_id, p.right_id, p.rule_id, f"{p.score:.4f}", _agreed(p)])


def _clusters_csv(report: Any, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cluster", "id"])
    for number, cluster in enumerate(report.clusters, 1):
        for record_id in cluster:
            writer.writerow([number, record_id])


def _as_json(report: Any) -> dict[str, Any]:
    return {
        "record_type": report.record_type,
        "records": report.records,
        "summary": report.summary(),
        "pairs": [
            {
                "left_id": p.left_id,
                "right_id": p.right_id,
                "rule": p.rule_id,
                "score": round(p.score, 4),
                "fields": [
                    {
                        "field": f.field,
                        "method": str(f.method),
                        "left": f.left,
                        "right": f.right,
                        "score": None if f.score is None else round(f.score, 4),
                        "passed": f.passed,
                    }
                    for f in p.fields
                ],
            }
            for p in report.pairs
        ],
        "clusters": [list(c) for c in report.clusters],
    }
