"""Territories and routing over Dask equal crmkit's single-process batch on the same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import F, Rep, RoutingRule, Territory
from crmkit import dask as cd
from crmkit.clock import FixedClock
from crmkit.errors import ValidationError
from crmkit.routing import assign_columns
from crmkit.scoring._inputs import as_columns

from .conftest import cuts, partitioned

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday, in working hours

REPS = (
    *[Rep(id=r, name=r, team_ids=["sales"]) for r in ("ann", "bob", "cy")],
    Rep(id="dee", name="dee", team_ids=["emea"], country="FR"),
    Rep(id="eve", name="eve", team_ids=["emea"], country="DE"),
    Rep(id="fay", name="fay", team_ids=["emea"], country="DE"),
)
RULES = (
    RoutingRule(id="spam", position=0, criteria=F.company == "spam", target_id="junk"),
    RoutingRule(
        id="emea",
        position=1,
        criteria=F.country.isin(["FR", "DE"]),
        target_kind="team",
        target_id="emea",
        custom={"match": "country"},
    ),
    RoutingRule(id="all", position=2, target_kind="team", target_id="sales"),
)
RECIPE = cd.RouterRecipe(records=(*REPS, *RULES))


@st.composite
def leads(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 30))
    country = draw(st.lists(st.sampled_from(["US", "FR", "DE", "IT", ""]), min_size=n, max_size=n))
    company = draw(st.lists(st.sampled_from(["acme", "spam", ""]), min_size=n, max_size=n))
    owner = draw(st.lists(st.sampled_from(["", "", "", "bob"]), min_size=n, max_size=n))
    return pd.DataFrame(
        {"id": [f"l{i}" for i in range(n)], "country": country, "company": company,
         "owner_id": owner, "email": [""] * n}
    )  # fmt: skip


def _one_process(frame: pd.DataFrame, recipe: Any = RECIPE) -> dict[str, list[Any]]:
    router = recipe()
    router.clock = FixedClock(NOW)
    batch = router.route_columns(as_columns(frame, "test"))
    return {
        "owner_id": ["" if o is None else o for o in batch.owner.tolist()],
        "queue": ["" if q is None else q for q in batch.queue.tolist()],
        "status": batch.status.tolist(),
        "rule": batch.rule.tolist(),
    }


def _routed(frame: pd.DataFrame, bounds: list[int]) -> dict[str, list[Any]]:
    out = cd.route(RECIPE, partitioned(frame, bounds), now=NOW).compute()
    assert out["id"].tolist() == frame["id"].tolist()
    return {k: out[k].tolist() for k in ("owner_id", "queue", "status", "rule")}


@settings(max_examples=15)
@given(data=st.data())
def test_routing_equals_one_process(data: st.DataObject, synchronous: None) -> None:
    frame = data.draw(leads())
    bounds = data.draw(cuts(len(frame)))
    assert _routed(frame, bounds) == _one_process(frame)


def test_routing_on_the_process_cluster(on_cluster: Any) -> None:
    frame = pd.DataFrame(
        {
            "id": [f"l{i}" for i in range(12)],
            "country": ["US", "DE", "US", "FR", "DE", "US", "US", "DE", "", "US", "DE", "US"],
            "company": ["", "", "spam", "", "", "", "acme", "", "", "", "", ""],
            "owner_id": ["", "", "", "", "", "bob", "", "", "", "", "", ""],
            "email": [""] * 12,
        }
    )
    got = _routed(frame, [0, 3, 3, 7, 12])
    assert got == _one_process(frame)
    # the sales rotation runs on across partitions: ann, bob, cy, ann ...
    sales = [o for o, r in zip(got["owner_id"], got["rule"], strict=True) if r == 2 and o]
    assert sales[:4] == ["ann", "bob", "cy", "ann"]


def test_load_dependent_pools_are_refused(synchronous: None) -> None:
    capped = cd.RouterRecipe(
        records=(Rep(id="ann", name="ann", team_ids=["sales"], capacity=5), RULES[2])
    )
    frame = pd.DataFrame({"id": ["l1", "l2"], "email": ["", ""]})
    with pytest.raises(ValidationError, match="capacity"):
        cd.route(capped, partitioned(frame, [0, 1, 2]), now=NOW).compute()


TERRITORIES = [
    Territory(id="de", name="DE", priority=10, criteria=(F.country == "DE").to_dict()),
    Territory(id="eu", name="EU", priority=50, criteria=F.country.isin(["DE", "FR"]).to_dict()),
    Territory(id="big", name="Big", priority=50, criteria=(F.employees >= 1000).to_dict()),
]


@st.composite
def accounts(draw: st.DrawFn) -> pd.DataFrame:
    # at least one account: the single-process kernel cannot type columns of no rows
    n = draw(st.integers(1, 30))
    return pd.DataFrame(
        {
            "id": [f"a{i}" for i in range(n)],
            "country": draw(
                st.lists(st.sampled_from(["DE", "FR", "US", ""]), min_size=n, max_size=n)
            ),
            "employees": draw(st.lists(st.integers(0, 2000), min_size=n, max_size=n)),
            "territory_id": draw(st.lists(st.sampled_from(["", "old"]), min_size=n, max_size=n)),
            "realignment_locked": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        }
    )  # fmt: skip


def _territories(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    result = assign_columns(TERRITORIES, as_columns(frame, "test"))
    return result.primary.tolist(), result.reason.tolist()


@settings(max_examples=15)
@given(data=st.data())
def test_territories_equal_one_process(data: st.DataObject, synchronous: None) -> None:
    frame = data.draw(accounts())
    bounds = data.draw(cuts(len(frame)))
    out = cd.assign_territories(TERRITORIES, partitioned(frame, bounds)).compute()
    assert (out["territory_id"].tolist(), out["reason"].tolist()) == _territories(frame)


def test_territories_on_the_process_cluster(on_cluster: Any) -> None:
    frame = pd.DataFrame(
        {
            "id": ["a1", "a2", "a3", "a4", "a5"],
            "country": ["DE", "FR", "US", "DE", "FR"],
            "employees": [10, 5000, 5000, 0, 1],
            "territory_id": ["", "", "", "old", ""],
            "realignment_locked": [False, False, False, True, False],
        }
    )
    out = cd.assign_territories(TERRITORIES, partitioned(frame, [0, 2, 2, 5])).compute()
    assert (out["territory_id"].tolist(), out["reason"].tolist()) == _territories(frame)
    assert np.array_equal(out["reason"].to_numpy(dtype=str)[[1, 3]], ["tie", "locked"])
