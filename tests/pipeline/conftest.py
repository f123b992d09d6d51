"""A small hand-made pipeline (ten deals) whose metrics are worked out by hand in tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from crmkit import Account, Opportunity, Rep, Team
from crmkit.pipeline import close_lost, close_won, move
from crmkit.store import MemoryStore


def day(month: int, d: int) -> datetime:
    return datetime(2026, month, d, tzinfo=UTC)


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.teams.add_many([Team(id="east", name="East"), Team(id="west", name="West")])
    s.reps.add_many(
        [
            Rep(id="ann", name="Ann", team_ids=("east",), manager_id="mia", region="NA"),
            Rep(id="bob", name="Bob", team_ids=("east",), manager_id="mia", region="NA"),
            Rep(id="cat", name="Cat", team_ids=("west",), manager_id="max", region="EU"),
        ]
    )
    s.accounts.add_many(
        [
            Account(id="acme", name="Acme", region="NA"),
            Account(id="acme-uk", name="Acme UK", parent_id="acme", region="EU"),
            Account(id="acme-uk-lab", name="Acme Lab", parent_id="acme-uk", region="EU"),
            Account(id="globex", name="Globex", region="EU"),
        ]
    )

    def opp(id: str, **kw: object) -> Opportunity:
        return Opportunity(id=id, name=id.upper(), **kw)  # type: ignore[arg-type]

    s.opportunities.add_many(
        [
            opp("o01", account_id="acme", amount=1000, stage="proposal",
                close_date=date(2026, 2, 10), owner_id="ann", product="crm",
                created_at=day(1, 1)),
            opp("o02", account_id="acme-uk", amount=2000, stage="negotiation", probability=0.9,
                close_date=date(2026, 4, 15), owner_id="ann", product="crm",
                created_at=day(1, 5)),
            opp("o03", account_id="acme-uk-lab", amount=500, stage="closed_won", status="won",
                probability=1.0, close_date=date(2026, 1, 20), closed_at=day(1, 20),
                owner_id="ann", product="support", created_at=day(1, 1)),
            opp("o04", account_id="globex", amount=3000, stage="closed_lost", status="lost",
                probability=0.0, close_date=date(2026, 2, 1), closed_at=day(2, 1),
                owner_id="bob", product="crm", created_at=day(1, 10), loss_reason="price"),
            opp("o05", account_id="globex", amount=1500, stage="closed_won", status="won",
                probability=1.0, close_date=date(2026, 3, 5), closed_at=day(3, 5),
                owner_id="bob", product="crm", created_at=day(1, 4)),
            opp("o06", amount=800, stage="prospecting", owner_id="bob", created_at=day(2, 1)),
            opp("o07", account_id="acme", stage="qualification", probability=0.3,
                close_date=date(2026, 5, 1), owner_id="cat", product="support",
                created_at=day(2, 10)),
            opp("o08", account_id="acme", amount=1200, stage="closed_won", status="won",
                probability=1.0, close_date=date(2026, 2, 28), owner_id="cat", product="crm",
                created_at=day(1, 29)),
            opp("o09", account_id="globex", amount=700, stage="closed_lost", status="lost",
                probability=0.0, close_date=date(2026, 3, 10), closed_at=day(3, 10),
                owner_id="ghost", product="support", created_at=day(2, 1)),
            opp("o10", account_id="acme-uk", amount=400, stage="negotiation",
                close_date=date(2026, 4, 30), product="crm"),
        ]
    )  # fmt: skip
    return s


@pytest.fixture
def history() -> MemoryStore:
    """Four deals moved through the default pipeline with move()/close_*()."""
    s = MemoryStore()
    for id_, created in [("h1", day(1, 1)), ("h2", day(1, 1)), ("h3", day(1, 1)),
                         ("h4", day(1, 10)), ("h5", day(2, 1))]:  # fmt: skip
        s.opportunities.add(
            Opportunity(
                id=id_, name=id_, amount=100, created_at=created, close_date=date(2026, 3, 31)
            )
        )
    move(s, "h1", "qualification", at=day(1, 11))
    move(s, "h1", "proposal", at=day(1, 21))
    close_won(s, "h1", at=day(2, 10), amount=150)
    move(s, "h2", "qualification", at=day(1, 6))
    close_lost(s, "h2", at=day(1, 16), reason="timing")
    move(s, "h4", "qualification", at=day(1, 20))
    move(s, "h4", "proposal", at=day(1, 25), close_date=date(2026, 4, 30))
    return s
