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
all-or-nothing behaviour apply.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from crmkit.errors import ValidationError
from crmkit.pipeline._stages import DEFAULT_PIPELINE, Pipeline
from crmkit.store._base import Store

__all__ = ["DEFAULT_STAGE_MAP", "import_sales_export"]

DEFAULT_STAGE_MAP: Mapping[str, str] = {
    "prospecting": "prospecting",
    "engaging": "qualification",
    "won": "closed_won",
    "lost": "closed_lost",
}
"""Export stage (matched case-insensitively) -> stage of :data:`DEFAULT_PIPELINE`."""

FILES = ("accounts", "sales_teams", "products", "sales_pipeline")
PathLike = str | os.PathLike[str]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [
            {k.strip(): (v or "").strip() for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


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


def import_sales_export(
    store: Store,
    directory_or_files: PathLike | Mapping[str, PathLike],
    *,
    stage_map: Mapping[str, str] = DEFAULT_STAGE_MAP,
    pipeline: Pipeline = DEFAULT_PIPELINE,
    tz: str = "UTC",
    estimate_open_amounts: bool = True,
) -> dict[str, Any]:
    """Import a CRM sales export into ``store``; returns one import report per record type.

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
      price as its amount (and ``custom.amount_estimated = true``);
    - deals -> Opportunities: ``opportunity_id`` -> ``id`` and ``name``, agent ->
      ``owner_id`` and account -> ``account_id`` by name, ``deal_stage`` through
      ``stage_map`` (case-insensitive) to a stage of ``pipeline`` whose outcome sets
      ``status``, ``engage_date`` -> ``created_at``, ``close_date`` -> ``close_date``
      (and ``closed_at`` for closed deals), ``close_value`` -> ``amount``.

    Any bad row (an unknown stage, an agent or account name not found ...) raises
    :class:`crmkit.io.ImportFailed` listing every error, and nothing is written (all
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
    ...     reports = import_sales_export(store, folder)
    >>> {name: report.written for name, report in sorted(reports.items())}
    {'opportunities': 2, 'reps': 2, 'teams': 2}
    >>> won, engaged = store.opportunities.get("D1"), store.opportunities.get("D2")
    >>> won.stage, str(won.status), str(won.amount), won.owner_id
    ('closed_won', 'won', '1200', 'rep-anna-lee')
    >>> engaged.stage, str(engaged.status)
    ('qualification', 'open')
    """
    from crmkit.io import import_csv

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
    reports: dict[str, Any] = {}
    with store.transaction():
        if "sales_teams" in paths:
            reports.update(_import_teams(store, _read(paths["sales_teams"]), import_csv))
        if "accounts" in paths:
            reports["accounts"] = import_csv(
                store,
                "accounts",
                paths["accounts"],
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
        products = {}
        if "products" in paths:
            products = {row["product"]: row for row in _read(paths["products"])}
        deals = _read(paths["sales_pipeline"])
        rows = []
        for row in deals:  # reshaping text rows before the importer parses them
            raw_stage = row.get("deal_stage", "")
            stage = stages.get(raw_stage.lower(), raw_stage)
            outcome = pipeline.stage(stage).outcome.value if stage in pipeline.names else "open"
            product = products.get(row.get("product", ""), {})
            amount = row.get("close_value", "")
            estimated = ""
            if estimate_open_amounts and outcome == "open" and not amount:
                amount = product.get("sales_price", "")
                estimated = "true" if amount else ""
            rows.append(
                {
                    "id": row.get("opportunity_id", ""),
                    "name": row.get("opportunity_id", ""),
                    "owner": row.get("sales_agent", ""),
                    "account": row.get("account", ""),
                    "product": row.get("product", ""),
                    "stage": stage,
                    "status": outcome,
                    "created_at": row.get("engage_date", ""),
                    "close_date": row.get("close_date", ""),
                    "closed_at": row.get("close_date", "") if outcome != "open" else "",
                    "amount": amount,
                    "series": product.get("series", ""),
                    "list_price": product.get("sales_price", ""),
                    "estimated": estimated,
                }
            )
        unknown = sorted({r["stage"] for r in rows} - set(pipeline.names))
        if unknown:
            raise ValidationError(
                "Opportunity",
                "stage",
                unknown,
                "export stages not in stage_map; add them, e.g. "
                f"stage_map={{**DEFAULT_STAGE_MAP, {unknown[0].lower()!r}: 'prospecting'}}",
            )
        header = list(rows[0]) if rows else ["id", "name"]
        reports["opportunities"] = import_csv(
            store,
            "opportunities",
            _csv(rows, header),
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
    return reports


def _import_teams(store: Store, rows: list[dict[str, str]], import_csv: Any) -> dict[str, Any]:
    offices: dict[str, dict[str, str]] = {}
    manager_teams: dict[str, dict[str, str]] = {}
    people: dict[str, dict[str, str]] = {}
    for row in rows:  # one step per rep row of the file
        agent, manager = row.get("sales_agent", ""), row.get("manager", "")
        office = row.get("regional_office", "")
        office_id = f"team-{_slug(office)}" if office else ""
        if office:
            offices.setdefault(office_id, {"id": office_id, "name": office, "region": office})
        team_ids = [office_id] if office else []
        if manager:
            manager_team = f"team-{_slug(manager)}"
            manager_teams.setdefault(
                manager_team,
                {
                    "id": manager_team,
                    "name": f"{manager}'s team",
                    "parent_id": office_id,
                    "region": office,
                    "manager": f"rep-{_slug(manager)}",
                },
            )
            team_ids = [manager_team]
            people.setdefault(
                manager,
                {"id": f"rep-{_slug(manager)}", "name": manager, "manager": "", "region": office,
                 "team_ids": office_id},
            )  # fmt: skip
        if agent:
            people[agent] = {
                "id": f"rep-{_slug(agent)}",
                "name": agent,
                "manager": manager,
                "region": office,
                "team_ids": ";".join(team_ids),
            }
    reports: dict[str, Any] = {}
    reports["reps"] = import_csv(
        store,
        "reps",
        _csv(people.values(), ["id", "name", "manager", "region", "team_ids"]),
        mapping={"manager": "manager_id"},
        refs={"manager_id": "name"},
    )
    teams = list(offices.values()) + [
        {"id": t["id"], "name": t["name"], "parent_id": t["parent_id"], "region": t["region"],
         "manager_id": t["manager"]}
        for t in manager_teams.values()
    ]  # fmt: skip
    reports["teams"] = import_csv(
        store, "teams", _csv(teams, ["id", "name", "parent_id", "region", "manager_id"])
    )
    return reports
