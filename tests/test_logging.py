"""crmkit logs through ``logging.getLogger("crmkit.<engine>")`` and prints nothing: store
migrations and transaction retries, reminder escalations, routing fallbacks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

import crmkit
from crmkit import Account, FixedClock, Lead, MemoryStore, Rep, RoutingRule
from crmkit.reminders import schedule, tick
from crmkit.reminders._transact import transact
from crmkit.routing import Escalation, Router, Target
from crmkit.store import run_transaction
from crmkit.store.sqlite import SQLiteStore

from ._stores import StoreFactory

MONDAY_10 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _records(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


def test_the_crmkit_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("crmkit").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
    assert crmkit.__name__ == "crmkit"


def test_a_new_sqlite_file_logs_its_migrations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from crmkit.store.sqlite import SCHEMA_VERSION

    caplog.set_level(logging.INFO, logger="crmkit.store")
    SQLiteStore(tmp_path / "crm.db").close()
    (record,) = _records(caplog, "crmkit.store")
    assert record.levelno == logging.INFO
    assert (record.from_version, record.to_version) == (0, SCHEMA_VERSION)  # type: ignore[attr-defined]
    assert f"from version 0 to {SCHEMA_VERSION}" in record.getMessage()
    assert "crm.db" in record.getMessage()

    caplog.clear()
    SQLiteStore(tmp_path / "crm.db").close()  # up to date: nothing to say
    assert _records(caplog, "crmkit.store") == []


def test_a_new_postgres_schema_logs_its_migrations(
    postgres_factory: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from crmkit.store.postgres import SCHEMA_VERSION

    caplog.set_level(logging.INFO, logger="crmkit.store")
    postgres_factory().close()
    (record,) = _records(caplog, "crmkit.store")
    assert record.levelno == logging.INFO
    assert (record.from_version, record.to_version) == (0, SCHEMA_VERSION)  # type: ignore[attr-defined]
    assert str(postgres_factory.schema) in record.getMessage()

    caplog.clear()
    postgres_factory().close()
    assert _records(caplog, "crmkit.store") == []


def test_a_retried_transaction_logs_a_warning(
    postgres_factory: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    one, two = postgres_factory(), postgres_factory()
    try:
        one.accounts.add(Account(id="x", name="X"))
        attempts: list[int] = []

        def rename() -> None:  # the first attempt loses a race against ``two``
            x = one.accounts.get("x")
            if not attempts:
                two.accounts.update(attrs.evolve(two.accounts.get("x"), name="by two"))
            attempts.append(1)
            one.accounts.update(attrs.evolve(x, name="by one"))

        caplog.set_level(logging.INFO, logger="crmkit.store")
        run_transaction(one, rename, attempts=3)
        assert len(attempts) == 2
        assert one.accounts.get("x").name == "by one"
    finally:
        one.close()
        two.close()
    (record,) = _records(caplog, "crmkit.store")
    assert record.levelno == logging.WARNING
    assert record.attempt == 1  # type: ignore[attr-defined]
    assert "TransactionConflict" in record.getMessage()
    assert "attempt 1 of 3" in record.getMessage()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_reminder_change_run_again_after_a_version_conflict_logs_a_warning(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "crm.db")
    try:
        schedule(store, id="r1", title="Call", due_at=MONDAY_10)
        attempts: list[int] = []

        def retitle() -> None:  # the first attempt's read goes stale before it writes
            r1 = store.reminders.get("r1")
            if not attempts:
                store.reminders.update(attrs.evolve(r1, title="changed meanwhile"))
            attempts.append(1)
            store.reminders.update(attrs.evolve(r1, title="retitled"))

        caplog.set_level(logging.INFO, logger="crmkit.reminders")
        transact(store, retitle)
        assert len(attempts) == 2
        assert store.reminders.get("r1").title == "retitled"
    finally:
        store.close()
    (record,) = _records(caplog, "crmkit.reminders")
    assert record.levelno == logging.WARNING
    assert record.attempt == 1  # type: ignore[attr-defined]
    assert "attempt 1 of 5" in record.getMessage()


def test_a_transaction_that_succeeds_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="crmkit")
    store = MemoryStore()
    run_transaction(store, lambda: store.accounts.add(Account(id="a", name="A")))
    assert caplog.records == []


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_an_escalated_reminder_is_logged(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store: Any = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "r.db")
    try:
        schedule(store, id="r1", title="Call Acme", due_at=MONDAY_10, owner_id="ana")
        schedule(store, id="r2", title="Send quote", due_at=MONDAY_10 + timedelta(days=2))
        caplog.set_level(logging.INFO, logger="crmkit.reminders")
        events = tick(store, MONDAY_10 + timedelta(hours=5), escalate_after_hours=4)
        assert [(e.kind, e.reminder_id) for e in events] == [("due", "r1"), ("escalated", "r1")]
        (record,) = _records(caplog, "crmkit.reminders")
        assert record.levelno == logging.INFO
        assert record.reminder_id == "r1"  # type: ignore[attr-defined]
        assert record.getMessage().startswith("reminder r1 ('Call Acme', owner ana) escalated")

        caplog.clear()
        assert tick(store, MONDAY_10 + timedelta(hours=6), escalate_after_hours=4) == []
        assert _records(caplog, "crmkit.reminders") == []  # escalated once, logged once
    finally:
        if kind == "sqlite":
            store.close()


def _routing_store(tmp_path: Path, kind: str) -> Any:
    store: Any = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "route.db")
    store.reps.add_many(
        [
            Rep(id="ana", name="Ana", team_ids=["emea"]),
            Rep(id="cem", name="Cem", team_ids=["apac"], active=False),
        ]
    )
    store.routing_rules.add_many(
        [
            RoutingRule(id="de", name="DACH", position=1, criteria={"field": "country",
                        "op": "==", "value": "DE"}, target_kind="team", target_id="emea"),
            RoutingRule(id="jp", name="Japan", position=2, criteria={"field": "country",
                        "op": "==", "value": "JP"}, target_kind="team", target_id="apac"),
            RoutingRule(id="xx", name="Nowhere", position=3, criteria={"field": "country",
                        "op": "==", "value": "XX"}, target_kind="team", target_id="ghosts"),
        ]
    )  # fmt: skip
    return store


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_routing_logs_unassigned_records_and_fallbacks(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _routing_store(tmp_path, kind)
    try:
        router = Router(store, clock=FixedClock(MONDAY_10), default=None)
        caplog.set_level(logging.INFO, logger="crmkit.routing")

        assert router.route(Lead(id="l-de", country="DE")).owner_id == "ana"
        assert _records(caplog, "crmkit.routing") == []  # a plain assignment is not news

        assert router.route(Lead(id="l-us", country="US")).status == "unassigned"
        (unassigned,) = _records(caplog, "crmkit.routing")
        assert unassigned.levelno == logging.WARNING
        assert unassigned.record_ids == ["l-us"]  # type: ignore[attr-defined]
        assert unassigned.getMessage() == (
            "Lead l-us: matched no routing rule; now unassigned (no_rule_matched)"
        )

        caplog.clear()
        decisions = router.route_many(
            [Lead(id="l-jp", country="JP"), Lead(id="l-xx", country="XX"), Lead(id="l-fr")]
        )
        assert [d.reason for d in decisions] == [
            "no_eligible_rep", "unknown_team", "no_rule_matched"
        ]  # fmt: skip
        by_reason = {r.reason: r for r in _records(caplog, "crmkit.routing")}  # type: ignore[attr-defined]
        assert sorted(by_reason) == ["no_eligible_rep", "no_rule_matched", "unknown_team"]
        assert by_reason["no_eligible_rep"].levelno == logging.INFO
        assert by_reason["no_eligible_rep"].record_ids == ["l-jp"]  # type: ignore[attr-defined]
        assert by_reason["unknown_team"].levelno == logging.WARNING
        assert by_reason["no_rule_matched"].levelno == logging.WARNING

        caplog.clear()
        router.route(Lead(id="l-preview", country="US"), apply=False)
        assert _records(caplog, "crmkit.routing") == []  # a preview writes and logs nothing
    finally:
        if kind == "sqlite":
            store.close()


def test_a_sweep_logs_escalations(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _routing_store(tmp_path, "memory")
    router = Router(
        store,
        clock=FixedClock(MONDAY_10),
        default=None,
        escalation=Escalation(after_hours=2, target=Target("queue", "managers")),
    )
    router.route(Lead(id="l-us", country="US", created_at=MONDAY_10))
    caplog.clear()
    caplog.set_level(logging.INFO, logger="crmkit.routing")
    (decision,) = router.sweep(MONDAY_10 + timedelta(hours=3))
    assert decision.queue == "managers"
    (record,) = _records(caplog, "crmkit.routing")
    assert record.levelno == logging.INFO
    assert record.reason == "escalated"  # type: ignore[attr-defined]
    assert "managers" in record.getMessage()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_merges_and_unmerges_are_logged(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from crmkit.dedupe import merge, unmerge

    store: Any = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "d.db")
    try:
        store.accounts.add_many([Account(id="a1", name="Acme"), Account(id="a2", name="ACME")])
        caplog.set_level(logging.INFO, logger="crmkit.dedupe")
        done = merge(store, Account, ["a1", "a2"], survivor="a1", clock=FixedClock(MONDAY_10))
        unmerge(store, done.id, clock=FixedClock(MONDAY_10 + timedelta(hours=1)))
        merged, undone = _records(caplog, "crmkit.dedupe")
        assert merged.getMessage() == f"merge {done.id}: Account a2 merged into a1"
        assert undone.getMessage() == f"merge {done.id} undone: Account a2 restored beside a1"
        assert merged.merge_id == undone.merge_id == done.id  # type: ignore[attr-defined]
    finally:
        if kind == "sqlite":
            store.close()
