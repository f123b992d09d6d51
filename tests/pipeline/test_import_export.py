"""A worked import of the hand-made CRM export in tests/pipeline/data/."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from crmkit import OpportunityStatus, ValidationError
from crmkit.pipeline import import_sales_export, summary, win_loss
from crmkit.store import MemoryStore

DATA = Path(__file__).parent / "data"


@pytest.fixture
def imported() -> MemoryStore:
    store = MemoryStore()
    reports = import_sales_export(store, DATA)
    assert {k: r.written for k, r in reports.items()} == {
        "reps": 4, "teams": 4, "accounts": 5, "opportunities": 8,
    }  # fmt: skip
    assert (len(reports["reps"].ids), len(reports["teams"].ids)) == (7, 5)
    return store


def test_people_and_teams(imported: MemoryStore) -> None:
    anna = imported.reps.get("rep-anna-snelling")
    assert anna.manager_id == "rep-dustin-brinkmann"
    assert anna.team_ids == ("team-dustin-brinkmann",)
    assert anna.region == "Central"
    team = imported.teams.get("team-dustin-brinkmann")
    assert (team.parent_id, team.manager_id) == ("team-central", "rep-dustin-brinkmann")
    assert imported.teams.get("team-east").region == "East"


def test_accounts_parent_by_name(imported: MemoryStore) -> None:
    (labs,) = imported.accounts.query({"field": "name", "op": "==", "value": "Acme Labs"})
    parent = imported.accounts.get(labs.parent_id)
    assert parent.name == "Acme Europe"
    assert imported.accounts.get(parent.parent_id).name == "Acme Corporation"
    assert labs.custom["year_established"] == 2010
    assert labs.industry == "technology"


def test_deals(imported: MemoryStore) -> None:
    won = imported.opportunities.get("1C1I7A6R")
    assert (won.stage, won.status, str(won.amount)) == (
        "closed_won",
        OpportunityStatus.WON,
        "1054",
    )
    assert won.close_date == date(2017, 3, 1)
    assert won.closed_at == datetime(2017, 3, 1, tzinfo=UTC)
    assert won.created_at == datetime(2016, 10, 20, tzinfo=UTC)
    assert won.owner_id == "rep-anna-snelling"
    assert imported.accounts.get(won.account_id).name == "Acme Corporation"
    engaging = imported.opportunities.get("PE84CX4O")
    assert (engaging.stage, engaging.status, engaging.close_date) == (
        "qualification", OpportunityStatus.OPEN, None,
    )  # fmt: skip
    assert engaging.amount == 4821  # list price of GTX Pro, marked as an estimate
    assert engaging.custom["amount_estimated"] is True
    empty = imported.opportunities.get("ZZY4516W")
    assert (empty.account_id, empty.created_at, empty.stage) == (None, None, "prospecting")


def test_metrics_on_the_import(imported: MemoryStore) -> None:
    total = summary(imported).rows()[0]
    assert (total["won_count"], total["lost_count"], total["open_count"]) == (3, 2, 3)
    assert total["won_revenue"] == 1054 + 4514 + 573
    assert summary(imported).missing["no_account"] == 1
    family = summary(imported, by="family")
    acme = imported.accounts.query({"field": "name", "op": "==", "value": "Acme Corporation"})
    assert family.row(acme[0].id)["won_revenue"] == 1054 + 4514 + 573
    offices = win_loss(imported, "rep_region")
    assert dict(zip(offices["rep_region"], offices["win_rate"], strict=True)) == {
        "Central": 3 / 5,
    }  # fmt: skip


def test_unknown_stage_writes_nothing(tmp_path: Path) -> None:
    for name in ("accounts", "sales_teams", "products"):
        shutil.copy(DATA / f"{name}.csv", tmp_path / f"{name}.csv")
    text = (DATA / "sales_pipeline.csv").read_text().replace("Engaging", "Demo", 1)
    (tmp_path / "sales_pipeline.csv").write_text(text)
    store = MemoryStore()
    with pytest.raises(ValidationError, match="Demo"):
        import_sales_export(store, tmp_path)
    assert len(store.reps) == len(store.accounts) == len(store.opportunities) == 0
    reports = import_sales_export(
        store, tmp_path, stage_map={"prospecting": "prospecting", "engaging": "qualification",
                                    "demo": "proposal", "won": "closed_won",
                                    "lost": "closed_lost"}
    )  # fmt: skip
    assert reports["opportunities"].written == 8
    assert store.opportunities.get("PE84CX4O").stage == "proposal"


def test_bad_stage_map_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a stage"):
        import_sales_export(MemoryStore(), DATA, stage_map={"won": "champagne"})
    with pytest.raises(ValidationError, match="sales_pipeline"):
        import_sales_export(MemoryStore(), tmp_path)
