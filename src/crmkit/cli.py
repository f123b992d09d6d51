"""The ``crmkit`` command line (``python -m crmkit ...``).

Commands:

- ``demo``: build a realistic synthetic CRM into a SQLite file (``crmkit-demo.db`` by
  default) and print a summary of it; running it again reuses the data.
- ``import`` / ``export``: CSV in and out of a SQLite file (see :mod:`crmkit.io.cli`).
- ``dedupe``: duplicate pairs and clusters of a CSV file of contacts, leads or accounts
  (run by ``crmkit.dedupe._cli``).

:func:`main` returns the exit code instead of exiting, so it can be called from tests and
scripts: 0 on success, 1 when the command failed, 2 for a usage error.

Examples
--------
>>> import contextlib, io
>>> buffer = io.StringIO()
>>> with contextlib.redirect_stdout(buffer):
...     code = main(["--version"])
>>> code, buffer.getvalue().startswith("crmkit ")
(0, True)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmkit import __version__
from crmkit.errors import CrmError

if TYPE_CHECKING:
    from crmkit.store import Store

__all__ = ["main"]

DEFAULT_DB = "crmkit-demo.db"
"""Where ``demo`` keeps its data unless ``--db`` says otherwise (in the current folder)."""


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be >= 0, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from crmkit.datasets import SIZES
    from crmkit.io.cli import add_commands

    parser = argparse.ArgumentParser(
        prog="crmkit",
        description="crmkit: the domain core of a CRM as an embeddable Python library.",
    )
    parser.add_argument("--version", action="version", version=f"crmkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="build a synthetic CRM into a SQLite file and summarise it",
        description="Build a deterministic synthetic CRM (teams, reps, accounts with "
        "hierarchies, contacts, leads, deals with stage history, months of activity, "
        "territories) into a SQLite file and print a summary. Running it again with the same "
        "seed and size reuses the data; a different seed or size needs --fresh.",
    )
    demo.add_argument(
        "--db", default=DEFAULT_DB, help=f"SQLite file to use (default: ./{DEFAULT_DB})"
    )
    demo.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    demo.add_argument(
        "--size",
        choices=tuple(SIZES),
        default="small",
        help="small (~200 accounts, ~10k activities; default), medium (~5k, ~200k), "
        "large (~50k, ~2M); tiny is for tests",
    )
    demo.add_argument(
        "--fresh", action="store_true", help="delete the database file first and rebuild"
    )
    demo.add_argument(
        "--memory",
        action="store_true",
        help="use an in-memory store instead of --db (nothing is saved; implies --fresh)",
    )
    demo.add_argument("--no-progress", action="store_true", help="do not show progress on stderr")
    demo.set_defaults(func=_demo)

    add_commands(commands)
    _add_dedupe(commands)
    return parser


def _add_dedupe(subparsers: Any) -> None:
    """Register ``dedupe`` (run by :func:`crmkit.dedupe._cli.run_dedupe`)."""
    cmd = subparsers.add_parser(
        "dedupe",
        help="find duplicate records in a CSV file",
        description="Find the duplicate pairs and clusters among the records of a CSV file "
        "(contacts, leads or accounts) under matching rules. Pairs and clusters are written "
        "as CSV (--pairs, --clusters) or JSON (--json); with none of these the pairs go to "
        "standard output as CSV. The summary goes to standard error.",
    )
    cmd.add_argument("file", help="CSV file to read ('-' for standard input)")
    cmd.add_argument(
        "--type",
        choices=("contacts", "leads", "accounts"),
        default="contacts",
        help="record type (default contacts)",
    )
    cmd.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="ID",
        help="use only this rule (an id among the type's default rules, such as "
        "contact-email, or of --rules); repeatable (default: all of them)",
    )
    cmd.add_argument(
        "--rules", metavar="FILE", help="matching rules from a JSON or TOML file instead"
    )
    cmd.add_argument("--pairs", metavar="FILE", help="write the pairs as CSV ('-': stdout)")
    cmd.add_argument("--clusters", metavar="FILE", help="write the clusters as CSV ('-': stdout)")
    cmd.add_argument(
        "--json", metavar="FILE", help="write summary, pairs and clusters as JSON ('-': stdout)"
    )
    cmd.add_argument(
        "--map",
        dest="mapping",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help="feed a column to a field (FIELD empty to ignore the column); repeatable",
    )
    cmd.add_argument("--id-column", help="the column holding record ids")
    cmd.add_argument("--delimiter", default=",", help="cell separator (default ',')")
    cmd.add_argument("--encoding", default="utf-8", help="file encoding (default utf-8)")
    cmd.set_defaults(func=_dedupe)


def _dedupe(args: argparse.Namespace) -> int:
    from crmkit.dedupe._cli import run_dedupe

    return run_dedupe(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = args.func(args)
    return code


def _remove_database(path: Path) -> bool:
    """Delete a SQLite file and its journal files; whether anything was removed."""
    removed = False
    for candidate in (
        path,
        *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal")),
    ):
        if candidate.is_file():
            candidate.unlink()
            removed = True
    return removed


def _demo(args: argparse.Namespace) -> int:
    from crmkit._demo import run_demo
    from crmkit._progress import ProgressReporter

    progress = None if args.no_progress else ProgressReporter(sys.stderr, min_total=5_000)
    store: Store
    if args.memory:
        from crmkit.store.memory import MemoryStore

        store = MemoryStore()
        print("Using an in-memory store (nothing is saved).")
    else:
        from crmkit.store.sqlite import SQLiteStore

        path = Path(args.db)
        if path.is_dir():
            print(f"crmkit demo: --db {path} is a folder; give a file name", file=sys.stderr)
            return 1
        if args.fresh and _remove_database(path):
            print(f"Removed {path} (--fresh).")
        print(f"Database: {path}")
        try:
            store = SQLiteStore(path)
        except CrmError as err:
            print(f"crmkit demo: cannot open {path}: {err}", file=sys.stderr)
            return 1
    try:
        run_demo(store, seed=args.seed, size=args.size, out=sys.stdout, progress=progress)
    except CrmError as err:
        print(f"crmkit demo: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0
