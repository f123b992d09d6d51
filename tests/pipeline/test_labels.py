"""Metric groups labelled by record names (``labels="name"``), and the probability counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmkit import Account, Opportunity, Rep, Team, Territory, ValidationError
from crmkit import pipeline as pl
from crmkit.pipeline._data import named
from crmkit.store import MemoryStore

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 6, 1, tzinfo=UTC)

METRICS: dict[str, Callable[..., pl.Table]] = {
    "summary": pl.summary,
    "open_pipeline": pl.open_pipeline,
    "weighted_pipeline": pl.weighted_pipeline,
    "won_revenue": pl.won_revenue,
    "win_rate": pl.win_rate,
    "average_deal_size": pl.average_deal_size,
    "sales_cycle": pl.sales_cycle,
    "velocity": pl.velocity,
    "forecast": pl.forecast,
    "win_loss": pl.win_loss,
    "stage_conversion": pl.stage_conversion,
    "time_in_stage": lambda source, by, **kw: pl.time_in_stage(source, by, now=NOW, **kw),
    "rotting": lambda source, by, **kw: pl.rotting(source, by, now=NOW, **kw),
}


@pytest.fixture
def imported() -> MemoryStore:
    store = MemoryStore()
    pl.import_sales_export(store, DATA)
    return store


def test_imported_accounts_by_name(imported: MemoryStore) -> None:
    by_id = pl.summary(imported, by="account")
    by_name = pl.summary(imported, by="account", labels="name")
    names = {a.id: a.name for a in imported.accounts}
    # the manual join the option saves: id rows relabelled by the store's names
    expected = {names.get(row["account"], row["account"]): row for row in by_id.rows()}
    assert set(by_name["account"].tolist()) == set(expected)
    for row in by_name.rows():
        want = expected[row["account"]]
        assert {k: v for k, v in row.items() if k != "account"} == pytest.approx(
            {k: v for k, v in want.items() if k != "account"}, nan_ok=True
        )
    assert by_name["account"].tolist() == sorted(expected)  # ordered by name
    assert by_name.row("Globex")["lost_count"] == 1
    assert by_name.missing == by_id.missing


def test_owner_manager_team_and_family_by_name(imported: MemoryStore) -> None:
    owners = pl.summary(imported, by="owner", labels="name")
    assert owners.row("Anna Snelling")["won_revenue"] == 1054 + 4514
    managers = pl.win_loss(imported, "manager", labels="name")
    assert set(managers["manager"].tolist()) == {"Dustin Brinkmann", "Melvin Marxen"}
    teams = pl.summary(imported, by="team", labels="name")
    assert set(teams["team"].tolist()) == {
        "Dustin Brinkmann's team", "Melvin Marxen's team", "Rocco Neubert's team",
    }  # fmt: skip
    family = pl.summary(imported, by="family", labels="name")
    assert family.row("Acme Corporation")["won_revenue"] == 1054 + 4514 + 573
    assert family.row("")["open_count"] == 1  # the deal without an account


@pytest.fixture
def named_store() -> MemoryStore:
    store = MemoryStore()
    store.territories.add(Territory(id="t1", name="North"))
    store.teams.add(Team(id="east", name="East coast"))
    store.reps.add_many(
        [
            Rep(id="s1", name="Sam", team_ids=("east",)),
            Rep(id="s2", name="Sam", team_ids=("east",)),
            Rep(id="kim", name="Kim"),
        ]
    )
    store.accounts.add(Account(id="a1", name="Acme", territory_id="t1"))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    store.opportunities.add_many(
        [
            Opportunity(id="o1", name="A", amount=100, owner_id="s1", account_id="a1",
                        created_at=t0, close_date=date(2026, 3, 1)),
            Opportunity(id="o2", name="B", amount=200, owner_id="s2", status="won",
                        stage="closed_won", created_at=t0, closed_at=t0.replace(month=2),
                        close_date=date(2026, 2, 1)),
            Opportunity(id="o3", name="C", amount=50, owner_id="ghost", status="lost",
                        stage="closed_lost", close_date=date(2026, 2, 1)),
            Opportunity(id="o4", name="D", amount=70, owner_id="kim", created_at=t0),
            Opportunity(id="o5", name="E", amount=10, created_at=t0),
        ]
    )  # fmt: skip
    return store


def test_shared_names_stay_apart_and_unknown_ids_stay(named_store: MemoryStore) -> None:
    t = pl.summary(named_store, by="owner", labels="name")
    assert t["owner"].tolist() == ["", "Kim", "Sam (s1)", "Sam (s2)", "ghost"]
    assert t.row("Sam (s2)")["won_revenue"] == 200
    assert t.missing["unknown_owner"] == 1
    assert pl.summary(named_store, by="territory", labels="name")["territory"].tolist() == [
        "",
        "North",
    ]
    teams = pl.summary(named_store, by=["team", "owner"], labels="name")
    assert ("East coast", "Sam (s1)") in set(zip(teams["team"], teams["owner"], strict=True))


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_every_metric_takes_labels(named_store: MemoryStore, metric: str) -> None:
    compute = METRICS[metric]
    by_id = compute(named_store, "owner")
    by_name = compute(named_store, "owner", labels="name")
    rename = {"s1": "Sam (s1)", "s2": "Sam (s2)", "kim": "Kim"}
    assert len(by_name) == len(by_id) > 0
    expected = {}
    for row in by_id.rows():
        row["owner"] = rename.get(row["owner"], row["owner"])
        expected[tuple(row[k] for k in by_id.keys)] = row
    for row in by_name.rows():
        assert row == pytest.approx(expected[tuple(row[k] for k in by_name.keys)], nan_ok=True)
    with pytest.raises(ValidationError, match="labels"):
        compute(named_store, "owner", labels="email")


def test_labels_from_columns() -> None:
    data = pl.PipelineData.from_columns(
        {"id": np.array(["o1", "o2"]), "owner_id": np.array(["r1", "r2"]),
         "status": np.array(["won", "lost"])},
        reps={"id": np.array(["r1", "r2"]), "name": np.array(["Ann", "Bo"])},
    )  # fmt: skip
    assert pl.win_rate(data, "owner", labels="name")["owner"].tolist() == ["Ann", "Bo"]
    assert pl.win_rate(data, "owner")["owner"].tolist() == ["r1", "r2"]


# -- missing["no_probability"] ----------------------------------------------------------------


def test_no_probability_counts_only_deals_weighted_as_zero() -> None:
    store = MemoryStore()
    store.opportunities.add_many(
        [
            Opportunity(id="given", name="A", amount=100, stage="demo", probability=0.4),
            Opportunity(id="default", name="B", amount=100, stage="proposal"),
            Opportunity(id="neither", name="C", amount=100, stage="demo"),
            Opportunity(id="closed", name="D", amount=100, stage="mystery", status="lost"),
        ]
    )
    t = pl.summary(store)
    assert t.missing["no_probability"] == 1  # "neither": no probability, no stage default
    assert t.missing["default_probability"] == 1  # "default" took proposal's 50 %
    assert t.missing["unknown_stage"] == 3
    assert t["weighted_pipeline"].tolist() == [100 * 0.4 + 100 * 0.5]
    f = pl.forecast(store)
    assert (f.missing["no_probability"], f.missing["default_probability"]) == (1, 1)


names_text = st.text(alphabet="ab (x)", max_size=5)


@given(
    labels=st.lists(names_text, unique=True, max_size=8).map(sorted),
    records=st.dictionaries(names_text, names_text, max_size=8),
    data=st.data(),
)
def test_named_keeps_every_group_apart(
    labels: list[str], records: dict[str, str], data: st.DataObject
) -> None:
    label_array = np.array(labels, dtype=str)
    codes = np.array(
        data.draw(st.lists(st.integers(0, max(len(labels) - 1, 0)), max_size=20))
        if labels
        else [],
        dtype=np.int64,
    )
    new_codes, new_labels = named(
        codes, label_array, np.array(list(records), dtype=str),
        np.array(list(records.values()), dtype=str),
    )  # fmt: skip
    assert len(set(new_labels.tolist())) == len(labels)  # no two groups merged
    assert new_labels.tolist() == sorted(new_labels.tolist())
    shown = dict(zip(label_array[codes].tolist(), new_labels[new_codes].tolist(), strict=True))
    for old, new in shown.items():
        if old == "":
            assert new == ""
        elif records.get(old, "") != "":
            assert new.startswith(records[old]) or new == old  # name, else the id itself
        else:
            assert new.startswith(old)
