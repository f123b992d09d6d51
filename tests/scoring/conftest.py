"""A small CRM in a real MemoryStore, with a known signal for the lead scorers to find."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from crmkit.records import Account, Activity, ActivityKind, Contact, Lead, Opportunity
from crmkit.store import MemoryStore

START = datetime(2025, 1, 1, tzinfo=UTC)


def fill_store(seed: int = 7, n_accounts: int = 60) -> MemoryStore:
    rng = np.random.default_rng(seed)
    store = MemoryStore()
    industries = ["Retail", "Software", "Energy", None]
    accounts = []
    for i in range(n_accounts):
        parent = f"acc-{i // 10 * 10:03d}" if i % 10 and i % 3 == 0 else None
        accounts.append(
            Account(
                id=f"acc-{i:03d}",
                name=f"Account {i}",
                industry=industries[i % 4],
                country=["US", "CA", "FR"][i % 3],
                employees=int(rng.integers(5, 5000)),
                annual_revenue=Decimal(int(rng.integers(100_000, 50_000_000))),
                parent_id=parent,
                account_type="customer" if i % 7 == 0 else "prospect",
            )
        )
    store.accounts.add_many(accounts)
    contacts = [
        Contact(id=f"con-{i:03d}", account_id=f"acc-{i % n_accounts:03d}", last_name=f"P{i}")
        for i in range(2 * n_accounts)
    ]
    store.contacts.add_many(contacts)
    kinds = list(ActivityKind)
    activities = []
    for i in range(10 * n_accounts):
        on_contact = i % 3 == 0
        activities.append(
            Activity(
                id=f"act-{i:04d}",
                kind=kinds[int(rng.integers(0, len(kinds)))],
                at=START + timedelta(hours=int(rng.integers(0, 24 * 365))),
                account_id=None if on_contact else f"acc-{int(rng.integers(0, n_accounts)):03d}",
                contact_id=f"con-{int(rng.integers(0, 2 * n_accounts)):03d}"
                if on_contact
                else None,
            )
        )
    store.activities.add_many(activities)
    leads = []
    for i in range(300):
        source = ["web", "referral", "ads", "event"][i % 4]
        chance = {"web": 0.3, "referral": 0.75, "ads": 0.1, "event": 0.45}[source]
        won = rng.random() < chance
        leads.append(
            Lead(
                id=f"lead-{i:03d}",
                source=source,
                industry=industries[int(rng.integers(0, 4))],
                country=["US", "CA", "FR"][int(rng.integers(0, 3))],
                employees=int(rng.integers(5, 5000)),
                status="converted" if won else ("disqualified" if i % 10 else "working"),
                created_at=START + timedelta(days=i),
            )
        )
    store.leads.add_many(leads)
    deals = [
        Opportunity(
            id=f"opp-{i:03d}",
            name=f"Deal {i}",
            account_id=f"acc-{i % n_accounts:03d}",
            amount=Decimal(1000 * (i + 1)),
            status=["open", "won", "lost"][i % 3],
            created_at=START + timedelta(days=3 * i),
        )
        for i in range(80)
    ]
    store.opportunities.add_many(deals)
    return store


@pytest.fixture(scope="module")
def crm() -> MemoryStore:
    return fill_store()
