"""What the sales export import reports: unmatched products, deals left without an amount,
errors against the export's own files, columns and rows, and rows of sales_teams.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from crmkit import ValidationError
from crmkit.io import ImportFailed
from crmkit.pipeline import DEFAULT_STAGE_MAP, import_sales_export, summary
from crmkit.store import MemoryStore

DATA = Path(__file__).parent / "data"
FILES = ("accounts", "sales_teams", "products", "sales_pipeline")


def export(folder: Path, **edits: list[tuple[str, str]]) -> Path:
    """A copy of the sample export with text replacements in some files."""
    for name in FILES:
        text = (DATA / f"{name}.csv").read_text()
        for old, new in edits.get(name, []):
            assert old in text
            text = text.replace(old, new, 1)
        (folder / f"{name}.csv").write_text(text)
    return folder


def file_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def empty(store: MemoryStore) -> bool:
    return (
        len(store.reps) == len(store.teams) == len(store.accounts) == 0 == len(store.opportunities)
    )


# -- item 10: unmatched products, open deals without an amount ---------------------------


def test_unmatched_products_are_listed_with_row_count_and_closest_names(tmp_path: Path) -> None:
    folder = export(
        tmp_path,
        sales_pipeline=[
            ("PE84CX4O,Boris Faz,GTX Pro", "PE84CX4O,Boris Faz,GTXPro"),
            ("LSEA3IK8,Darcel Schlecht,GTX Pro", "LSEA3IK8,Darcel Schlecht,GTXPro"),
            ("ZZY4516W,Boris Faz,MG Special", "ZZY4516W,Boris Faz,Widget"),
        ],
    )
    store = MemoryStore()
    report = import_sales_export(store, folder)
    unmatched = {p.name: p for p in report.unmatched_products}
    assert set(unmatched) == {"GTXPro", "Widget"}
    assert unmatched["GTXPro"].rows == 2
    assert unmatched["GTXPro"].closest[0] == "GTX Pro"
    assert unmatched["Widget"].rows == 1
    assert unmatched["Widget"].closest == ()  # nothing in the catalogue looks like it
    # the three open deals lost their list price: they are reported, not silent
    assert set(report.open_without_amount) == {"PE84CX4O", "LSEA3IK8", "ZZY4516W"}
    text = str(report)
    assert "'GTXPro' (2 rows), closest: 'GTX Pro'" in text
    assert "PE84CX4O" in text
    deal = store.opportunities.get("PE84CX4O")
    assert deal.amount is None
    assert "list_price" not in deal.custom


def test_the_sample_export_matches_every_product(tmp_path: Path) -> None:
    report = import_sales_export(MemoryStore(), DATA)
    assert report.unmatched_products == ()
    assert report.open_without_amount == ()
    without_estimates = import_sales_export(MemoryStore(), DATA, estimate_open_amounts=False)
    open_ids = {
        r["opportunity_id"]
        for r in file_rows(DATA / "sales_pipeline.csv")
        if r["deal_stage"] in ("Engaging", "Prospecting") and not r["close_value"]
    }
    assert set(without_estimates.open_without_amount) == open_ids
    assert len(open_ids) == 3


def test_product_map_matches_a_spelling_variant(tmp_path: Path) -> None:
    folder = export(
        tmp_path,
        sales_pipeline=[("PE84CX4O,Boris Faz,GTX Pro", "PE84CX4O,Boris Faz,GTXPro")],
    )
    store = MemoryStore()
    report = import_sales_export(store, folder, product_map={"GTXPro": "GTX Pro"})
    assert report.unmatched_products == ()
    assert report.open_without_amount == ()
    deal = store.opportunities.get("PE84CX4O")
    assert (deal.product, deal.amount, deal.custom["series"]) == ("GTX Pro", 4821, "GTX")
    with pytest.raises(ValidationError, match="GTX Plus"):
        import_sales_export(MemoryStore(), folder, product_map={"GTXPro": "GTX Plus"})


def test_bad_catalogue_rows_name_products_csv(tmp_path: Path) -> None:
    folder = export(tmp_path, products=[("MG Special,MG,55", "GTX Pro,MG,5x5")])
    store = MemoryStore()
    with pytest.raises(ImportFailed) as info:
        import_sales_export(store, folder)
    assert info.value.record == "products.csv"
    assert [(e.row, e.column) for e in info.value.report.errors] == [(4, "product")]
    assert empty(store)


# -- item 11: errors name the file, its column and its row -------------------------------


def test_deal_errors_name_the_file_its_columns_and_rows(tmp_path: Path) -> None:
    folder = export(
        tmp_path,
        sales_pipeline=[
            ("MV1LWRNH,Darcel Schlecht,GTX Basic,Acme Labs,Won,2016-10-25,2017-03-09,573",
             "MV1LWRNH,Darcel Schlect,GTX Basic,Acme Labs,Won,2016-10-25,2017-03-09,5x73"),
            ("KWVA7VR1,Cecily Lampkin,GTX Basic,Initech,Lost,2017-01-10",
             "KWVA7VR1,Cecily Lampkin,GTX Basic,Initech,Lost,2017-13-10"),
        ],
    )  # fmt: skip
    store = MemoryStore()
    with pytest.raises(ImportFailed) as info:
        import_sales_export(store, folder)
    err = info.value
    ids = [r["opportunity_id"] for r in file_rows(folder / "sales_pipeline.csv")]
    row_of = {deal: ids.index(deal) + 2 for deal in ids}  # the header is row 1
    found = {(e.row, e.column, e.value) for e in err.report.errors}
    assert found == {
        (row_of["MV1LWRNH"], "sales_agent", "Darcel Schlect"),
        (row_of["MV1LWRNH"], "close_value", "5x73"),
        (row_of["KWVA7VR1"], "engage_date", "2017-13-10"),
    }
    assert err.record == "sales_pipeline.csv"
    message = str(err)
    assert message.startswith("sales_pipeline.csv: 3 error(s) in 2 row(s)")
    assert f"row {row_of['MV1LWRNH']}, column 'sales_agent' = 'Darcel Schlect'" in message
    assert "names come from sales_teams.csv; closest: 'Darcel Schlecht'" in message
    assert "skip_bad_rows" not in message
    assert "'owner'" not in message
    assert "'amount'" not in message
    assert empty(store)


def test_rows_are_counted_as_in_a_spreadsheet_with_blank_lines(tmp_path: Path) -> None:
    folder = export(
        tmp_path,
        sales_pipeline=[
            ("\nZ063OYW0,", "\n\n,,,,,,,\nZ063OYW0,"),  # two blank rows before row 3
            ("Z063OYW0,Anna Snelling", "Z063OYW0,Anna Snellin"),
        ],
    )
    with pytest.raises(ImportFailed) as info:
        import_sales_export(MemoryStore(), folder)
    lines = (folder / "sales_pipeline.csv").read_text().splitlines()
    row = next(i for i, line in enumerate(lines, start=1) if line.startswith("Z063OYW0"))
    assert row == 5
    assert [(e.row, e.column) for e in info.value.report.errors] == [(row, "sales_agent")]


def test_unknown_stage_names_every_row_with_the_other_errors(tmp_path: Path) -> None:
    folder = export(
        tmp_path,
        sales_pipeline=[
            ("Initech,Engaging", "Initech,Demo"),
            ("Globex,Engaging", "Globex,demo"),
            ("GTX Basic,Acme Corporation", "GTX Basic,Acme Corp"),
        ],
    )
    store = MemoryStore()
    with pytest.raises(ImportFailed) as info:
        import_sales_export(store, folder)
    ids = [r["opportunity_id"] for r in file_rows(folder / "sales_pipeline.csv")]
    row_of = {deal: ids.index(deal) + 2 for deal in ids}
    found = {(e.row, e.column, e.value) for e in info.value.report.errors}
    assert found == {
        (row_of["PE84CX4O"], "deal_stage", "Demo"),
        (row_of["LSEA3IK8"], "deal_stage", "demo"),
        (row_of["1C1I7A6R"], "account", "Acme Corp"),
    }
    assert "stage_map={**DEFAULT_STAGE_MAP, 'demo': 'prospecting'}" in str(info.value)
    assert "names come from accounts.csv; closest: 'Acme Corporation'" in str(info.value)
    assert empty(store)


def test_sales_teams_errors_name_its_rows_and_columns(tmp_path: Path) -> None:
    folder = export(
        tmp_path,
        sales_teams=[("Boris Faz,Rocco Neubert,East", "Boris Faz,Rocco Neubert,East\n"
                      "Anna Snelling,Rocco Neubert,East")],
    )  # fmt: skip
    store = MemoryStore()
    with pytest.raises(ImportFailed) as info:
        import_sales_export(store, folder)
    assert info.value.record == "sales_teams.csv"
    assert [(e.row, e.column, e.value) for e in info.value.report.errors] == [
        (6, "sales_agent", "Anna Snelling")
    ]
    assert "also in row 2" in str(info.value)
    assert empty(store)


def test_a_second_import_reports_rows_of_sales_teams_csv(tmp_path: Path) -> None:
    store = MemoryStore()
    import_sales_export(store, DATA)
    with pytest.raises(ImportFailed) as info:
        import_sales_export(store, DATA)
    team_rows = file_rows(DATA / "sales_teams.csv")
    assert info.value.record == "sales_teams.csv"
    errors = info.value.report.errors
    agents = {(i + 2, "sales_agent", r["sales_agent"]) for i, r in enumerate(team_rows)}
    assert agents <= {(e.row, e.column, e.value) for e in errors}
    managers = {r["manager"] for r in team_rows}
    assert {e.value for e in errors if e.column == "manager"} == managers
    assert all("already in the store" in e.reason for e in errors)
    assert "skip_bad_rows" not in str(info.value)


def test_accounts_errors_name_accounts_csv(tmp_path: Path) -> None:
    folder = export(
        tmp_path, accounts=[("Acme Labs,technology,2010,20.25,80,Germany,Acme Europe",
                             "Acme Labs,technology,2010,20.25,80,Germany,Acme Eu")]
    )  # fmt: skip
    with pytest.raises(ImportFailed) as info:
        import_sales_export(MemoryStore(), folder)
    assert info.value.record == "accounts.csv"
    assert [(e.row, e.column, e.value) for e in info.value.report.errors] == [
        (4, "subsidiary_of", "Acme Eu")
    ]
    assert "skip_bad_rows" not in str(info.value)


def test_reps_report_counts_rows_of_sales_teams_csv() -> None:
    store = MemoryStore()
    report = import_sales_export(store, DATA)
    team_rows = file_rows(DATA / "sales_teams.csv")
    people = {r["sales_agent"] for r in team_rows} | {r["manager"] for r in team_rows}
    reps = report["reps"]
    assert (reps.rows_read, reps.written, reps.skipped) == (len(team_rows), len(team_rows), 0)
    assert len(reps.ids) == len(people) == len(store.reps)
    offices = {r["regional_office"] for r in team_rows}
    assert len(report["teams"].ids) == len(offices) + len({r["manager"] for r in team_rows})
    assert str(reps).startswith(f"Rep import: {len(team_rows)} row(s) read")


def test_ignored_columns_of_the_deals_file_are_reported(tmp_path: Path) -> None:
    folder = export(tmp_path)
    path = folder / "sales_pipeline.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",notes"] + [line + ",x" for line in lines[1:]]))
    report = import_sales_export(MemoryStore(), folder)
    assert report["opportunities"].ignored_columns == ("notes",)


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    folder = export(tmp_path)
    path = folder / "products.csv"
    path.write_bytes(path.read_bytes().replace(b"GTX Pro", "GTX Pr\u00f6".encode("cp1252")))
    store = MemoryStore()
    with pytest.raises(ValidationError) as info:
        import_sales_export(store, folder)
    assert info.value.record == "products.csv"
    assert "UTF-8" in str(info.value)
    assert empty(store)


def test_on_a_durable_store(tmp_path: Path, store_factory: Any) -> None:
    """SQLite (and PostgreSQL once it lands): a bad deal row rolls every file back; the
    good export is then reported and labelled by name like on the MemoryStore."""
    folder = export(tmp_path, sales_pipeline=[("GTX Pro,Globex,Engaging", "GTX Pro,Globex,Demo")])
    with store_factory() as store:
        with pytest.raises(ImportFailed) as info:
            import_sales_export(store, folder)
        assert [(e.column, e.value) for e in info.value.report.errors] == [("deal_stage", "Demo")]
        assert len(store.reps) == len(store.teams) == len(store.accounts) == 0
        assert len(store.opportunities) == 0
        report = import_sales_export(
            store, folder, stage_map={**DEFAULT_STAGE_MAP, "demo": "proposal"}
        )
        assert report["reps"].rows_read == len(file_rows(folder / "sales_teams.csv"))
        assert report.unmatched_products == ()
        owners = summary(store, by="owner", labels="name")
        assert owners.row("Darcel Schlecht")["open_pipeline"] == 4821  # GTX Pro list price
