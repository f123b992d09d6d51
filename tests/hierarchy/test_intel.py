from __future__ import annotations

import numpy as np
import pytest

from crmkit import Account, MemoryStore, Opportunity
from crmkit.hierarchy import AccountHierarchy, family_summary, whitespace


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.accounts.add_many(
        [
            Account(id="hq", name="HQ", annual_revenue=500, owner_id="ann"),
            Account(id="eu", name="EU", parent_id="hq", annual_revenue=200, owner_id="bob"),
            Account(id="fr", name="FR", parent_id="eu", owner_id="bob"),
            Account(id="other", name="Other", annual_revenue=99, owner_id="cy"),
        ]
    )
    won = "won"
    store.opportunities.add_many(
        [
            Opportunity(id="o1", name="1", account_id="hq", product="crm", status=won, amount=10),
            Opportunity(id="o2", name="2", account_id="fr", product="crm", status=won, amount=20),
            Opportunity(id="o3", name="3", account_id="eu", product="bi", status=won, amount=5),
            Opportunity(id="o4", name="4", account_id="eu", product="ai", amount=40),  # open
            Opportunity(id="o5", name="5", account_id="hq", product="ai", status="lost"),
            Opportunity(id="o6", name="6", account_id="other", product="ai", status=won),
            Opportunity(id="o7", name="7", account_id="fr", status=won, custom={"sku": "SKU-9"}),
        ]
    )
    return store


def test_whitespace(store: MemoryStore) -> None:
    ws = whitespace(store, AccountHierarchy.from_store(store), "fr")
    assert ws.root == "hq"
    assert ws.products == ("bi", "crm")  # open, lost and other families' deals do not count
    assert ws.bought == {"bi": ("eu",), "crm": ("fr", "hq")}
    assert ws.missing == {"bi": ("hq", "fr"), "crm": ("eu",)}
    assert ws.opportunities() == [("eu", "crm"), ("fr", "bi"), ("hq", "bi")]
    matrix = ws.matrix()
    assert matrix.shape == (3, 2)
    assert matrix.sum() == 3
    assert matrix[ws.accounts.index("eu"), ws.products.index("bi")]
    frame = ws.to_pandas()
    assert bool(frame.loc["fr", "crm"]) is True


def test_whitespace_custom_product_field(store: MemoryStore) -> None:
    ws = whitespace(store, AccountHierarchy.from_store(store), "hq", product_field="custom.sku")
    assert ws.products == ("SKU-9",)
    assert ws.bought["SKU-9"] == ("fr",)


def test_family_summary(store: MemoryStore) -> None:
    summary = family_summary(store, AccountHierarchy.from_store(store), "eu")
    assert summary.root == "hq"
    assert summary.size == 3
    assert summary.depth == 2
    assert summary.total_revenue == 700.0
    assert summary.accounts_without_revenue == 1
    assert summary.open_pipeline == 40.0
    assert summary.won_revenue == 35.0
    assert dict(summary.owners) == {"ann": 1, "bob": 2}
    assert "hq: 3 accounts" in str(summary)
    assert np.isclose(summary.total_revenue, 500 + 200)
