"""Importing a typical CRM sales export (accounts, sales teams, products, pipeline).

The export is four CSV files, as many CRMs and public sample datasets write them:

- ``accounts.csv``: ``account, sector, year_established, revenue, employees,
  office_location, subsidiary_of`` (the parent is given by name);
- ``sales_teams.csv``: ``sales_agent, manager, regional_office``;
- ``products.csv``: ``product, series, sales_price``;
- ``sales_pipeline.csv``: ``opportunity_id, sales_agent, product, account, deal_stage,
  engage_date, close_date, close_value`` (account and agent by name, empty accounts and
  dates allowed).

The rows are reshaped here (stage names mapped, people and teams derived) and every
record is written by :func:`crmkit.io.import_csv`, so its checks, name references and
all-or-nothing behaviour apply. Errors are reported against the export itself: the file,
its own column (``sales_agent``, ``close_value`` ...) and its row, counted the way a
spreadsheet does (the header is row 1).
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from crmkit.errors import ValidationError
from crmkit.io import ImportFailed, ImportReport, RowError, import_csv
from crmkit.pipeline._stages import DEFAULT_PIPELINE, Pipeline
from crmkit.store._base import Store

__all__ = ["DEFAULT_STAGE_MAP", "SalesExportReport", "UnmatchedProduct", "import_sales_export"]

DEFAULT_STAGE_MAP: Mapping[str, str] = {
    "prospecting": "prospecting",
    "engaging": "qualification",
    "won": "closed_won",
    "lost": "closed_lost",
}
"""Export stage (matched case-insensitively) -> stage of :data:`DEFAULT_PIPELINE`."""

FILES = ("accounts", "sales_teams", "products", "sales_pipeline")
PathLike = str | os.PathLike[str]
_MAX_LISTED = 20

#: column of the reshaped deals CSV -> column of sales_pipeline.csv it comes from
_DEAL_COLUMNS: Mapping[str, str] = {
    "id": "opportunity_id",
    "name": "opportunity_id",
    "owner": "sales_agent",
    "account": "account",
    "product": "product",
    "stage": "deal_stage",
    "status": "deal_stage",
    "created_at": "engage_date",
    "close_date": "close_date",
    "closed_at": "close_date",
    "amount": "close_value",
    "series": "product",
    "list_price": "product",
    "estimated": "close_value",
}
_AGENT_COLUMNS: Mapping[str, str] = {
    "id": "sales_agent",
    "name": "sales_agent",
    "manager": "manager",
    "region": "regional_office",
    "team_ids": "manager",
}
_MANAGER_COLUMNS: Mapping[str, str] = {
    "id": "manager",
    "name": "manager",
    "region": "regional_office",
    "team_ids": "regional_office",
}
_OFFICE_COLUMNS: Mapping[str, str] = {
    "id": "regional_office",
    "name": "regional_office",
    "region": "regional_office",
}
_MANAGER_TEAM_COLUMNS: Mapping[str, str] = {
    "id": "manager",
    "name": "manager",
    "parent_id": "regional_office",
    "region": "regional_office",
    "manager_id": "manager",
}
_EXPECTED = {
    "sales_teams": ("sales_agent", "manager", "regional_office"),
    "products": ("product", "series", "sales_price"),
    "sales_pipeline": tuple(dict.fromkeys(_DEAL_COLUMNS.values())),
}


@attrs.frozen
class UnmatchedProduct:
    """A product named by deals in ``sales_pipeline.csv`` but missing from ``products.csv``.

    ``rows`` counts the deal rows naming it; ``closest`` holds up to three catalogue names
    most like it (:func:`difflib.get_close_matches`, case-insensitive, similarity of at
    least 0.6), best first.

    >>> print(UnmatchedProduct("GTXPro", 2, ("GTX Pro",)))
    'GTXPro' (2 rows), closest: 'GTX Pro'
    """

    name: str
    rows: int
    closest: tuple[str, ...] = ()

    def __str__(self) -> str:
        closest = ", ".join(repr(c) for c in self.closest) or "none"
        return (
            f"{self.name!r} ({self.rows} row{'s' if self.rows != 1 else ''}), closest: {closest}"
        )


@attrs.frozen
class SalesExportReport(Mapping[str, ImportReport]):
    """What :func:`import_sales_export` did.

    It maps ``"reps"``, ``"teams"``, ``"accounts"`` and ``"opportunities"`` (those the
    export had) to the :class:`~crmkit.io.ImportReport` of each record type, and adds what
    the import could not match: ``unmatched_products`` (deals naming a product that is not
    in ``products.csv``) and ``open_without_amount`` (ids of open deals left without an
    amount: no ``close_value`` and no list price to estimate one from).

    The reps and teams reports count the rows of ``sales_teams.csv`` (``rows_read``,
    ``written``); their ``ids`` are the records created from them (each agent and
    manager once, each office and manager's team once).
    """

    records: Mapping[str, ImportReport]
    unmatched_products: tuple[UnmatchedProduct, ...] = ()
    open_without_amount: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> ImportReport:
        return self.records[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __str__(self) -> str:
        lines = [str(report) for report in self.records.values()]
        if self.unmatched_products:
            lines.append(
                f"{len(self.unmatched_products)} product name(s) of the deals are not in "
                "products.csv (no list price or series; match them with product_map=):"
            )
            lines.extend(f"  {product}" for product in self.unmatched_products)
        if self.open_without_amount:
            ids = ", ".join(self.open_without_amount[:_MAX_LISTED])
            more = len(self.open_without_amount) - _MAX_LISTED
            lines.append(
                f"{len(self.open_without_amount)} open deal(s) have no amount (no close_value "
                f"and no list price): {ids}" + (f" ... and {more} more" if more > 0 else "")
            )
        return "\n".join(lines)


class _ExportFailed(ImportFailed):
    """:class:`ImportFailed` for one file of the export: ``record`` is the file's name and
    every error's row and column are the file's own."""

    def __init__(self, file: str, report: ImportReport) -> None:
        self.report = report
        lines = [f"  {e}" for e in report.errors[:_MAX_LISTED]]
        if len(report.errors) > _MAX_LISTED:
            lines.append(f"  ... and {len(report.errors) - _MAX_LISTED} more")
        reason = (
            f"{len(report.errors)} error(s) in {len(report.bad_rows)} row(s), nothing written "
            "(the whole export is imported in one transaction; fix these rows and import "
            "again):\n" + "\n".join(lines)
        )
        ValidationError.__init__(self, file, None, None, reason)


@attrs.frozen
class _File:
    """A CSV file of the export: its name, header and non-blank rows with their numbers."""

    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]

    def ignored(self, expected: Sequence[str]) -> tuple[str, ...]:
        return tuple(h for h in self.header if h and h not in expected)


@attrs.frozen
class _Origin:
    """Where a row of a reshaped CSV comes from: a row of a file and its columns."""

    row: int
    cells: Mapping[str, str]
    columns: Mapping[str, str]  # reshaped column -> column of the file


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")


def _read(path: Path) -> _File:
    """The file's rows numbered as a spreadsheet does (header = 1; blank rows skipped)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = tuple(h.strip() for h in next(reader, []))
            rows = []
            for number, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    continue
                rows.append(
                    (number, {h: (cells[i].strip() if i < len(cells) else "")
                              for i, h in enumerate(header)})
                )  # fmt: skip
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValidationError(
            path.name, None, None, f"cannot be read as UTF-8 CSV: {err}"
        ) from err
    return _File(path.name, header, tuple(rows))


def _csv(rows: Iterable[Mapping[str, Any]], header: list[str]) -> io.StringIO:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    buffer.seek(0)
    return buffer


def _paths(source: PathLike | Mapping[str, PathLike]) -> dict[str, Path]:
    if isinstance(source, Mapping):
        paths = {name: Path(p) for name, p in source.items()}
        unknown = sorted(set(paths) - set(FILES))
        if unknown:
            raise ValidationError(
                "sales export", "files", unknown, f"known files: {', '.join(FILES)}"
            )
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise ValidationError("sales export", "directory", str(source), "is not a directory")
        paths = {n: folder / f"{n}.csv" for n in FILES if (folder / f"{n}.csv").exists()}
        if (folder / "opportunities.csv").exists():
            paths.setdefault("sales_pipeline", folder / "opportunities.csv")
    if "sales_pipeline" not in paths:
        raise ValidationError(
            "sales export", "files", sorted(paths), "needs sales_pipeline.csv (the deals)"
        )
    return paths


def _translate(error: RowError, origins: Sequence[_Origin]) -> RowError:
    """An error of a reshaped CSV (rows 2, 3 ... in order) as an error of the file."""
    index = error.row - 2
    if not 0 <= index < len(origins):
        return error
    origin = origins[index]
    if error.column is None:
        return RowError(origin.row, None, error.value, error.reason)
    column = origin.columns.get(error.column, error.column)
    return RowError(origin.row, column, origin.cells.get(column, error.value), error.reason)


def _load(
    store: Store,
    record_type: str,
    file: _File,
    rows: list[dict[str, str]],
    origins: Sequence[_Origin] | None,
    *,
    found: Sequence[RowError] = (),
    hints: Mapping[str, tuple[str, Sequence[str]]] | None = None,
    **options: Any,
) -> ImportReport:
    """Write reshaped ``rows`` (or, with ``origins=None``, the file itself) with
    ``import_csv``; raise every error, with ``found`` ones, against ``file``.

    ``hints`` maps a column of the file to the file its names come from and those names:
    an error there says so and names the closest ones."""
    source: Any = options.pop("path") if origins is None else None
    if source is None:
        source = _csv(rows, list(rows[0]) if rows else ["id", "name"])
    errors = list(found)
    report = None
    try:  # with errors found already, only check (dry run) to report the others too
        report = import_csv(store, record_type, source, dry_run=bool(found), **options)
    except ImportFailed as err:
        if origins is None:
            errors.extend(err.report.errors)
        else:
            errors.extend(_translate(e, origins) for e in err.report.errors)
        record_type = err.report.record_type
    if errors or report is None:
        errors = [_hinted(e, hints or {}) for e in errors]
        errors.sort(key=lambda e: e.row)
        n = len(file.rows)
        failed = ImportReport(
            record_type=record_type, rows_read=n, written=0, skipped=n, errors=tuple(errors)
        )
        raise _ExportFailed(file.name, failed)
    return report


def _hinted(error: RowError, hints: Mapping[str, tuple[str, Sequence[str]]]) -> RowError:
    if error.column is None or error.column not in hints or not error.value:
        return error
    source, names = hints[error.column]
    closest = ", ".join(repr(n) for n in _closest(str(error.value), names)) or "none"
    return attrs.evolve(
        error, reason=f"{error.reason} (names come from {source}; closest: {closest})"
    )


def _catalogue(file: _File) -> dict[str, dict[str, str]]:
    """``products.csv`` by product name; a row without a name, a name listed twice or a
    price that is not a non-negative amount is an error."""
    errors: list[RowError] = []
    products: dict[str, dict[str, str]] = {}
    first: dict[str, int] = {}
    for number, row in file.rows:
        name, price = row.get("product", ""), row.get("sales_price", "")
        if not name:
            errors.append(RowError(number, "product", name, "must name the product"))
            continue
        if name in first:
            errors.append(
                RowError(number, "product", name, f"is also in row {first[name]}; list it once")
            )
            continue
        first[name] = number
        if price:
            try:
                value = Decimal(price.replace(",", ""))
            except InvalidOperation:
                value = Decimal("NaN")
            if not value.is_finite() or value < 0:
                errors.append(
                    RowError(number, "sales_price", price, "is not an amount such as 1200.50")
                )
                continue
        products[name] = row
    if errors:
        n = len(file.rows)
        raise _ExportFailed(
            file.name,
            ImportReport(
                record_type="Product", rows_read=n, written=0, skipped=n, errors=tuple(errors)
            ),
        )
    return products


def _closest(name: str, catalogue: Iterable[str]) -> tuple[str, ...]:
    by_key: dict[str, str] = {}
    for product in catalogue:
        by_key.setdefault(product.lower(), product)
    found = difflib.get_close_matches(name.lower(), list(by_key), n=3, cutoff=0.6)
    return tuple(by_key[key] for key in found)


def import_sales_export(
    store: Store,
    directory_or_files: PathLike | Mapping[str, PathLike],
    *,
    stage_map: Mapping[str, str] = DEFAULT_STAGE_MAP,
    product_map: Mapping[str, str] | None = None,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    tz: str = "UTC",
    estimate_open_amounts: bool = True,
) -> SalesExportReport:
    """Import a CRM sales export into ``store``; returns a :class:`SalesExportReport`.

    ``directory_or_files`` is a folder holding ``accounts.csv``, ``sales_teams.csv``,
    ``products.csv`` and ``sales_pipeline.csv`` (only the last is required), or a mapping
    of those names to paths. What becomes what:

    - each regional office -> a :class:`~crmkit.Team` (``team-<office>``, ``region`` =
      office); each manager -> a :class:`~crmkit.Rep` and a team ``team-<manager>``
      under the office; each agent -> a Rep (``rep-<name>``) with ``manager_id``,
      ``team_ids`` = (manager's team,) and ``region`` = office (so ``by="team"`` groups
      by manager's team and ``by="rep_region"`` by office);
    - accounts -> Accounts (``subsidiary_of`` -> ``parent_id`` by name, ``sector`` ->
      ``industry``, ``office_location`` -> ``country``, ``revenue`` ->
      ``annual_revenue``, ``year_established`` -> ``custom.year_established``);
    - products enrich the deals: ``custom.series`` and ``custom.list_price``; with
      ``estimate_open_amounts`` an open deal without ``close_value`` takes the list
      price as its amount (and ``custom.amount_estimated = true``). A deal's product is
      looked up by its exact name, after ``product_map`` (export name -> catalogue name,
      e.g. ``{"GTXPro": "GTX Pro"}``, which also becomes the deal's ``product``); names
      not found are listed in the report's ``unmatched_products`` with their row count
      and the closest catalogue names, and open deals left without an amount in
      ``open_without_amount``;
    - deals -> Opportunities: ``opportunity_id`` -> ``id`` and ``name``, agent ->
      ``owner_id`` and account -> ``account_id`` by name, ``deal_stage`` through
      ``stage_map`` (case-insensitive) to a stage of ``pipeline`` whose outcome sets
      ``status``, ``engage_date`` -> ``created_at``, ``close_date`` -> ``close_date``
      (and ``closed_at`` for closed deals), ``close_value`` -> ``amount``.

    Any bad row (an unknown stage, an agent or account name not found, an agent listed
    twice with another manager or office ...) raises :class:`crmkit.io.ImportFailed`
    whose ``record`` is the file's name and whose ``report.errors`` list every bad row
    of that file with its row number and the file's own column; nothing is written (all
    files are imported in one transaction).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from crmkit import MemoryStore
    >>> store = MemoryStore()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = Path(folder, "sales_teams.csv").write_text(
    ...         "sales_agent,manager,regional_office\\nAnna Lee,Bo Chen,West\\n")
    ...     _ = Path(folder, "sales_pipeline.csv").write_text(
    ...         "opportunity_id,sales_agent,product,account,deal_stage,engage_date,"
    ...         "close_date,close_value\\n"
    ...         "D1,Anna Lee,GTX,,Won,2026-01-05,2026-02-01,1200\\n"
    ...         "D2,Anna Lee,GTX,,Engaging,2026-01-10,,\\n")
    ...     report = import_sales_export(store, folder)
    >>> {name: r.written for name, r in sorted(report.items())}
    {'opportunities': 2, 'reps': 1, 'teams': 1}
    >>> report["reps"].ids  # one row of sales_teams.csv: the agent and the manager
    ('rep-bo-chen', 'rep-anna-lee')
    >>> report.open_without_amount  # no products.csv: no list price to estimate from
    ('D2',)
    >>> won, engaged = store.opportunities.get("D1"), store.opportunities.get("D2")
    >>> won.stage, str(won.status), str(won.amount), won.owner_id
    ('closed_won', 'won', '1200', 'rep-anna-lee')
    >>> engaged.stage, str(engaged.status)
    ('qualification', 'open')
    """
    stages = {k.strip().lower(): v for k, v in stage_map.items()}
    for export_stage, ours in stages.items():
        if ours not in pipeline.names:
            raise ValidationError(
                "stage_map",
                export_stage,
                ours,
                f"is not a stage of pipeline {pipeline.name!r}: {', '.join(pipeline.names)}",
            )
    paths = _paths(directory_or_files)
    records: dict[str, ImportReport] = {}
    with store.transaction():
        hints: dict[str, tuple[str, Sequence[str]]] = {}
        if "sales_teams" in paths:
            teams_file = _read(paths["sales_teams"])
            records.update(_import_teams(store, teams_file))
            agents = [row.get("sales_agent", "") for _, row in teams_file.rows]
            hints["sales_agent"] = (teams_file.name, agents)
        if "accounts" in paths:
            accounts = _read(paths["accounts"])
            hints["account"] = (
                accounts.name,
                [row.get("account", "") for _, row in accounts.rows],
            )
            records["accounts"] = _load(
                store,
                "accounts",
                accounts,
                [],
                None,
                path=paths["accounts"],
                mapping={
                    "account": "name",
                    "sector": "industry",
                    "year_established": "custom.year_established:int",
                    "revenue": "annual_revenue",
                    "employees": "employees",
                    "office_location": "country",
                    "subsidiary_of": "parent_id",
                },
                refs={"parent_id": "name"},
                tz=tz,
            )
        products = _catalogue(_read(paths["products"])) if "products" in paths else None
        renames = dict(product_map or {})
        for export_name, ours in renames.items():
            if products is not None and ours not in products:
                raise ValidationError(
                    "product_map",
                    export_name,
                    ours,
                    f"is not a product of {paths['products'].name}: {', '.join(products)}",
                )
        deals = _read(paths["sales_pipeline"])
        rows: list[dict[str, str]] = []
        origins: list[_Origin] = []
        stage_errors: list[RowError] = []
        unmatched: Counter[str] = Counter()
        open_without_amount: list[str] = []
        for number, row in deals.rows:  # reshaping text rows before the importer parses them
            raw_stage = row.get("deal_stage", "")
            stage = stages.get(raw_stage.lower(), raw_stage)
            if stage not in pipeline.names:
                stage_errors.append(_stage_error(number, raw_stage, stages))
            outcome = pipeline.stage(stage).outcome.value if stage in pipeline.names else "open"
            name = row.get("product", "")
            name = renames.get(name, name)
            product = (products or {}).get(name, {})
            if products is not None and name and not product:
                unmatched[name] += 1
            amount = row.get("close_value", "")
            estimated = ""
            if estimate_open_amounts and outcome == "open" and not amount:
                amount = product.get("sales_price", "")
                estimated = "true" if amount else ""
            if outcome == "open" and not amount:
                open_without_amount.append(row.get("opportunity_id", "") or f"row {number}")
            rows.append(
                {
                    "id": row.get("opportunity_id", ""),
                    "name": row.get("opportunity_id", ""),
                    "owner": row.get("sales_agent", ""),
                    "account": row.get("account", ""),
                    "product": name,
                    "stage": stage,
                    "status": outcome,
                    "created_at": row.get("engage_date", ""),
                    "close_date": row.get("close_date", ""),
                    "closed_at": row.get("close_date", "") if outcome != "open" else "",
                    "amount": amount,
                    "series": product.get("series", ""),
                    "list_price": product.get("sales_price", "").replace(",", ""),
                    "estimated": estimated,
                }
            )
            origins.append(_Origin(number, row, _DEAL_COLUMNS))
        report = _load(
            store,
            "opportunities",
            deals,
            rows,
            origins,
            found=stage_errors,
            hints=hints,
            mapping={
                "owner": "owner_id",
                "account": "account_id",
                "series": "custom.series",
                "list_price": "custom.list_price:float",
                "estimated": "custom.amount_estimated:bool",
            },
            refs={"owner_id": "name", "account_id": "name"},
            tz=tz,
        )
        records["opportunities"] = attrs.evolve(
            report, ignored_columns=deals.ignored(_EXPECTED["sales_pipeline"])
        )
    return SalesExportReport(
        records=records,
        unmatched_products=tuple(
            UnmatchedProduct(name, count, _closest(name, products or {}))
            for name, count in sorted(unmatched.items(), key=lambda item: (-item[1], item[0]))
        ),
        open_without_amount=tuple(open_without_amount),
    )


def _stage_error(number: int, raw_stage: str, stages: Mapping[str, str]) -> RowError:
    if not raw_stage:
        return RowError(number, "deal_stage", raw_stage, "is empty; every deal needs a stage")
    return RowError(
        number,
        "deal_stage",
        raw_stage,
        f"is not in stage_map (which maps {', '.join(sorted(stages))}); add it, e.g. "
        f"stage_map={{**DEFAULT_STAGE_MAP, {raw_stage.lower()!r}: 'prospecting'}}",
    )


def _import_teams(store: Store, file: _File) -> dict[str, ImportReport]:
    offices: dict[str, tuple[dict[str, str], _Origin]] = {}
    manager_teams: dict[str, tuple[dict[str, str], _Origin]] = {}
    people: dict[str, tuple[dict[str, str], _Origin]] = {}
    agents: dict[str, tuple[int, str, str]] = {}
    errors: list[RowError] = []
    for number, row in file.rows:  # one step per rep row of the file
        agent, manager = row.get("sales_agent", ""), row.get("manager", "")
        office = row.get("regional_office", "")
        if agent in agents and agents[agent][1:] != (manager, office):
            errors.append(
                RowError(
                    number,
                    "sales_agent",
                    agent,
                    f"is also in row {agents[agent][0]} with another manager or office; "
                    "list each agent once",
                )
            )
            continue
        agents.setdefault(agent, (number, manager, office))
        office_id = f"team-{_slug(office)}" if office else ""
        if office:
            offices.setdefault(
                office_id,
                ({"id": office_id, "name": office, "region": office},
                 _Origin(number, row, _OFFICE_COLUMNS)),
            )  # fmt: skip
        team_ids = [office_id] if office else []
        if manager:
            manager_team = f"team-{_slug(manager)}"
            manager_teams.setdefault(
                manager_team,
                (
                    {
                        "id": manager_team,
                        "name": f"{manager}'s team",
                        "parent_id": office_id,
                        "region": office,
                        "manager_id": f"rep-{_slug(manager)}",
                    },
                    _Origin(number, row, _MANAGER_TEAM_COLUMNS),
                ),
            )
            team_ids = [manager_team]
            people.setdefault(
                manager,
                ({"id": f"rep-{_slug(manager)}", "name": manager, "manager": "",
                  "region": office, "team_ids": office_id},
                 _Origin(number, row, _MANAGER_COLUMNS)),
            )  # fmt: skip
        if agent:
            people[agent] = (
                {"id": f"rep-{_slug(agent)}", "name": agent, "manager": manager,
                 "region": office, "team_ids": ";".join(team_ids)},
                _Origin(number, row, _AGENT_COLUMNS),
            )  # fmt: skip
    reps = _load(
        store,
        "reps",
        file,
        [p for p, _ in people.values()],
        [o for _, o in people.values()],
        found=errors,
        mapping={"manager": "manager_id"},
        refs={"manager_id": "name"},
    )
    all_teams = [*offices.values(), *manager_teams.values()]
    teams = _load(
        store,
        "teams",
        file,
        [dict(t, parent_id=t.get("parent_id", ""), manager_id=t.get("manager_id", ""))
         for t, _ in all_teams],
        [o for _, o in all_teams],
    )  # fmt: skip
    rows = len(file.rows)
    ignored = file.ignored(_EXPECTED["sales_teams"])
    return {
        "reps": ImportReport(
            record_type=reps.record_type, rows_read=rows, written=rows, skipped=0,
            ignored_columns=ignored, ids=reps.ids,
        ),
        "teams": ImportReport(
            record_type=teams.record_type, rows_read=rows, written=rows, skipped=0,
            ignored_columns=ignored, ids=teams.ids,
        ),
    }  # fmt: skip
