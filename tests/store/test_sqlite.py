"""SQLiteStore behaviour that only a database file has: durability, WAL, migrations,
BEGIN IMMEDIATE, savepoints, error translation, and agreement with MemoryStore.

The generic store contract runs against SQLiteStore elsewhere (``StoreContract``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit._columns import columns_of
from crmkit._schema import plural
from crmkit.criteria import F, bind
from crmkit.errors import (
    AlreadyExists,
    BatchError,
    ConflictError,
    NotFound,
    StorageError,
    ValidationError,
)
from crmkit.records import (
    RECORD_TYPES,
    Account,
    AccountType,
    Activity,
    ActivityKind,
    Cadence,
    Campaign,
    CampaignMember,
    CampaignStatus,
    Contact,
    DealRegistration,
    Direction,
    Enrollment,
    EnrollmentStatus,
    HierarchyChange,
    Inquiry,
    InquiryStatus,
    Lead,
    LeadStatus,
    LifecycleChange,
    MemberStatus,
    Merge,
    Opportunity,
    OpportunityStatus,
    OwnershipChange,
    Partner,
    RegistrationStatus,
    Reminder,
    ReminderStatus,
    Rep,
    RoutingRule,
    StageChange,
    TargetKind,
    Team,
    Territory,
    TerritoryModel,
    TerritoryModelState,
)
from crmkit.store import MemoryStore, Store
from crmkit.store.sqlite import SCHEMA_VERSION, SQLiteStore

from .._processes import run_processes

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2025, 3, 30, 1, 59, 59, 999_999, tzinfo=PARIS)  # just before a DST jump
T1 = datetime(1999, 12, 31, 23, 59, 58, 123_456, tzinfo=timezone(timedelta(hours=-5)))
T2 = datetime(2031, 7, 4, 12, 0, 0, 1, tzinfo=UTC)
BIG = Decimal("123456789012345678901234.567890123456789")
CUSTOM = {"tier": "gold", "seats": 250, "ratio": 0.1 + 0.2, "vip": True, "neg": -7}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(path)
    yield s
    s.close()


def full_records() -> list[Any]:
    """One record of every type with every field set to something unusual."""
    return [
        Account(
            id="acc-1",
            name="Ácme 株式会社",
            account_type=AccountType.PARTNER,
            domain="acme.example",
            industry="Manufacturing",
            country="JP",
            region="APAC",
            postal_code="100-0001",
            employees=9_223_372_036_854_775_807,
            annual_revenue=BIG,
            parent_id="acc-0",
            owner_id="rep-1",
            territory_id="ter-1",
            realignment_locked=True,
            lifecycle_stage="customer",
            created_at=T1,
            custom=CUSTOM,
        ),
        Contact(
            id="con-1",
            account_id="acc-1",
            first_name="Ada",
            last_name='O\'Brien "the" great',
            email="ada@acme.example",
            phone="+81 3 0000",
            title="CTO",
            country="JP",
            owner_id="rep-1",
            opted_out=True,
            created_at=T0,
            custom={"score": 1.5e-300, "note": "🙂"},
        ),
        Lead(
            id="lead-1",
            first_name="Grace",
            last_name="Hopper",
            company="Navy",
            email="grace@navy.example",
            phone="555",
            title="RADM",
            source="web",
            status=LeadStatus.QUALIFIED,
            industry="Gov",
            country="US",
            region="NA",
            postal_code="20001",
            employees=0,
            annual_revenue=Decimal("0.000000000000000000001"),
            owner_id="rep-2",
            queue="inbound",
            assigned_at=T2,
            converted_account_id="acc-1",
            converted_contact_id="con-1",
            converted_opportunity_id="opp-1",
            created_at=T1,
            custom={"big": 2**63 - 1},  # the largest whole number a record may hold
        ),
        Opportunity(
            id="opp-1",
            name="Renewal",
            account_id="acc-1",
            contact_id="con-1",
            lead_id="lead-1",
            amount=Decimal("1200.50"),
            currency="JPY",
            stage="negotiation",
            probability=0.1 + 0.7,
            status=OpportunityStatus.WON,
            close_date=date(1, 1, 1),
            product="Widgets",
            owner_id="rep-1",
            source="partner",
            loss_reason="none",
            created_at=T0,
            closed_at=T2,
            custom={"flag": False},
        ),
        Activity(
            id="act-1",
            kind=ActivityKind.EMAIL_REPLIED,
            at=T0,
            account_id="acc-1",
            contact_id="con-1",
            lead_id="lead-1",
            opportunity_id="opp-1",
            actor_id="rep-1",
            direction=Direction.INBOUND,
            outcome="positive",
            subject="Re: renewal",
            duration_minutes=17,
            custom={"opens": 3},
        ),
        Rep(
            id="rep-1",
            name="Rita",
            email="rita@us.example",
            active=False,
            capacity=12,
            weight=2.5,
            skills=("enterprise", "german"),
            languages=("de", "en"),
            country="DE",
            region="EMEA",
            timezone="Europe/Berlin",
            work_days=(0, 2, 4, 6),
            work_start=time(8, 30, 15, 250),
            work_end=time(23, 59, 59, 999_999),
            away_from=T1,
            away_until=T2,
            manager_id="rep-0",
            team_ids=("t-1", "t-2"),
            created_at=T0,
            custom={"quota": 1_000_000},
        ),
        Team(
            id="t-1",
            name="EMEA",
            manager_id="rep-0",
            parent_id="t-0",
            region="EMEA",
            created_at=T2,
            custom={"x": "y"},
        ),
        Territory(
            id="ter-1",
            name="DACH",
            model_id="tm-1",
            parent_id="ter-0",
            territory_type="geo",
            priority=3,
            criteria={
                "all": [
                    {"field": "country", "op": "in", "value": ["DE", "AT", "CH"]},
                    {"field": "employees", "op": ">=", "value": 500},
                ]
            },
            owner_id="rep-1",
            created_at=T1,
            custom={"weight": 0.5},
        ),
        Reminder(
            id="rem-1",
            owner_id="rep-1",
            title="Call back",
            due_at=T2,
            timezone="America/New_York",
            remind_before_minutes=15,
            rrule="FREQ=WEEKLY;BYDAY=MO",
            status=ReminderStatus.DONE,
            snoozed_until=T0,
            completed_at=T2,
            account_id="acc-1",
            contact_id="con-1",
            lead_id="lead-1",
            opportunity_id="opp-1",
            created_at=T1,
            custom={"n": 1},
        ),
        OwnershipChange(
            id="own-1",
            record_type="Account",
            record_id="acc-1",
            from_owner_id="rep-0",
            to_owner_id="rep-1",
            at=T1,
            reason="realignment",
            changed_by="admin",
            custom={"batch": "b-7"},
        ),
        StageChange(
            id="sc-1",
            opportunity_id="opp-1",
            from_stage="proposal",
            to_stage="negotiation",
            at=T2,
            amount=Decimal("99999999999999999999.99"),
            probability=0.35,
            changed_by="rep-1",
            custom={"auto": True},
        ),
        LifecycleChange(
            id="lc-1",
            account_id="acc-1",
            from_stage="prospect",
            to_stage="customer",
            at=T0,
            reason="won",
            changed_by="rep-1",
            custom={"why": "deal"},
        ),
        TerritoryModel(
            id="tm-1",
            name="FY26",
            state=TerritoryModelState.ACTIVE,
            activated_at=T1,
            archived_at=T2,
            created_at=T0,
            custom={"fy": 26},
        ),
        RoutingRule(
            id="rr-1",
            rule_set="inbound",
            position=2,
            name="Big DE leads",
            applies_to="Account",
            criteria={"field": "country", "op": "in", "value": ("DE", "AT")},
            target_kind=TargetKind.TEAM,
            target_id="t-1",
            strategy="round_robin",
            template_id="tpl-1",
            active=False,
            starts_at=T1,
            ends_at=T2,
            custom={"owner": "ops"},
        ),
        Inquiry(
            id="inq-1",
            subject="Pricing?",
            body="Line one\nLine two\ttab",
            sender_email="bob@corp.example",
            sender_domain="corp.example",
            channel="email",
            language="en",
            status=InquiryStatus.ANSWERED,
            account_id="acc-1",
            contact_id="con-1",
            owner_id="rep-1",
            team_id="t-1",
            queue="support",
            template_id="tpl-2",
            received_at=T2,
            custom={"spam_score": 0.01},
        ),
        HierarchyChange(
            id="hc-1",
            account_id="acc-2",
            from_parent_id="acc-9",
            to_parent_id="acc-1",
            at=T1,
            reason="acquisition",
            changed_by="rep-1",
            custom={"deal": "merger"},
        ),
        Cadence(
            id="cad-1",
            name="Outbound 5 touch",
            steps=[{"kind": "email", "wait_days": 0}, {"kind": "call", "wait_days": 2.5}],
            weekdays_only=False,
            timezone="Europe/Paris",
            active=False,
            owner_id="rep-1",
            created_at=T0,
            custom={"persona": "cfo"},
        ),
        Enrollment(
            id="enr-1",
            cadence_id="cad-1",
            contact_id="con-1",
            lead_id="lead-1",
            owner_id="rep-1",
            status=EnrollmentStatus.PAUSED,
            step_index=3,
            next_due_at=T2,
            enrolled_at=T0,
            paused_at=T1,
            ended_at=T2,
            exit_reason="replied",
            custom={"ab": "b"},
        ),
        Campaign(
            id="cmp-1",
            name="Spring launch",
            channel="email",
            status=CampaignStatus.ACTIVE,
            parent_id="prog-1",
            starts_on=date(2026, 3, 1),
            ends_on=date(2026, 4, 30),
            budget=Decimal("12500.125"),
            actual_cost=Decimal("9999.99"),
            owner_id="rep-1",
            created_at=T0,
            custom={"region": "EMEA"},
        ),
        CampaignMember(
            id="cm-1",
            campaign_id="cmp-1",
            contact_id="con-1",
            lead_id="lead-1",
            account_id="acc-1",
            status=MemberStatus.RESPONDED,
            added_at=T0,
            sent_at=T0,
            opened_at=T1,
            responded_at=T1,
            converted_at=T2,
            unsubscribed_at=T2,
            custom={"variant": 2},
        ),
        Partner(
            id="par-1",
            account_id="acc-1",
            tier="gold",
            grade=4.5,
            regions=["EMEA", "APAC"],
            capacity=40,
            active=False,
            manager_id="rep-1",
            custom={"since": 2019},
        ),
        DealRegistration(
            id="reg-1",
            partner_id="par-1",
            account_id="acc-1",
            opportunity_id="opp-1",
            company="Acme",
            product="widgets",
            amount=Decimal("1234.5"),
            status=RegistrationStatus.APPROVED,
            submitted_at=T0,
            decided_at=T1,
            decided_by="rep-1",
            decision_reason="first to register",
            expires_on=date(2026, 9, 30),
            custom={"portal": True},
        ),
        Merge(
            id="merge-1",
            record_type="Contact",
            survivor_id="con-1",
            merged_ids=["con-2", "con-3"],
            at=T0,
            survivor_rule="oldest",
            merged_by="rep-1",
            reason="duplicate job",
            snapshot='{"records": []}',
            unmerged_at=T1,
            custom={"job": 7},
        ),
    ]


def test_full_records_cover_every_record_type_and_field() -> None:
    records = full_records()
    assert {type(r) for r in records} == set(RECORD_TYPES)
    for record in records:  # every field differs from its default, so each is exercised
        for field in attrs.fields(type(record)):
            if field.name in ("version", "id") or field.default is attrs.NOTHING:
                continue
            default = (
                field.default.factory()
                if isinstance(field.default, attrs.Factory)  # type: ignore[arg-type]
                else field.default
            )
            assert getattr(record, field.name) != default, (type(record).__name__, field.name)


def test_every_record_type_survives_close_and_reopen(path: Path) -> None:
    records = full_records()
    with SQLiteStore(path) as store:
        stored = [store.repository(type(r)).add(r) for r in records]
        assert stored == [attrs.evolve(r, version=1) for r in records]
    with SQLiteStore(path) as again:
        for record, first in zip(records, stored, strict=True):
            repo = again.repository(type(record))
            loaded = repo.get(record.id)
            assert loaded == first
            assert list(repo) == [first]
            assert repo.query(F.id == record.id) == [first]
            for field in attrs.fields(type(record)):  # same types, not just equal values
                old, new = getattr(first, field.name), getattr(loaded, field.name)
                assert type(old) is type(new), (type(record).__name__, field.name)
                if isinstance(old, datetime):
                    assert new.tzinfo is UTC
                    assert new.utcoffset() == timedelta(0)
                if isinstance(old, Decimal):
                    assert str(old) == str(new)
            assert again.repository(type(record)).get(record.id).custom == record.custom


def test_each_record_type_has_a_property_named_by_its_plural(store: SQLiteStore) -> None:
    for record_type in RECORD_TYPES:
        repo = getattr(store, plural(record_type))
        assert repo is store.repository(record_type)
        assert repo.record_type is record_type
    assert isinstance(store, Store)
    with pytest.raises(ValidationError):
        store.repository(dict)


def test_money_keeps_exact_decimals_and_orders_as_numbers(store: SQLiteStore) -> None:
    amounts = ["0.1", "0.10", "1E+3", "999.999999999999999999", "12", "3.00"]
    for i, amount in enumerate(amounts):
        store.opportunities.add(Opportunity(id=f"o{i}", name="x", amount=Decimal(amount)))
    got = {o.id: str(o.amount) for o in store.opportunities}
    assert got == {f"o{i}": a for i, a in enumerate(amounts)}
    # by value as float64, ties by id: 0.1 == 0.10, and 999.999999999999999999 rounds to
    # the float 1000.0, so it ties with 1E+3 (MemoryStore orders the same way)
    assert [o.id for o in store.opportunities.query(order_by="amount")] == [
        "o0",
        "o1",
        "o5",
        "o4",
        "o2",
        "o3",
    ]


# -- the file: WAL, migrations, layout --------------------------------------------------


def test_files_use_wal_and_record_their_layout_version(path: Path) -> None:
    with SQLiteStore(path) as store:
        store.accounts.add(Account(id="a", name="A"))
        assert store.user_version == SCHEMA_VERSION
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {plural(t) for t in RECORD_TYPES} <= tables
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "ix_accounts_owner_id" in indexes
        assert "ix_activities_account_id_at" in indexes
        columns = [r[1] for r in raw.execute("PRAGMA table_info(opportunities)")]
        assert "amount" in columns
        assert "amount__decimal" in columns
    finally:
        raw.close()


def test_reopening_migrates_nothing_and_keeps_data(path: Path) -> None:
    with SQLiteStore(path) as store:
        store.accounts.add(Account(id="a", name="A"))

    def schema() -> list[tuple[Any, ...]]:
        raw = sqlite3.connect(path)
        try:
            return raw.execute(
                "SELECT type, name, sql FROM sqlite_master ORDER BY name"
            ).fetchall()
        finally:
            raw.close()

    before = schema()
    for _ in range(2):
        with SQLiteStore(path) as store:
            assert store.user_version == SCHEMA_VERSION
            assert [a.id for a in store.accounts] == ["a"]
    assert schema() == before


def test_a_version_1_file_gains_the_reminder_index(path: Path) -> None:
    """Migration 2 upgrades a file written before it, keeping its records."""
    with SQLiteStore(path) as store:
        store.reminders.add(
            Reminder(id="r", title="Call", due_at=datetime(2026, 1, 5, tzinfo=UTC))
        )
    raw = sqlite3.connect(path)
    raw.execute("DROP INDEX ix_reminders_status_snoozed_until_due_at")
    raw.execute("PRAGMA user_version = 1")
    raw.close()
    with SQLiteStore(path) as store:
        assert store.user_version == SCHEMA_VERSION
        assert [r.id for r in store.reminders] == ["r"]
    raw = sqlite3.connect(path)
    try:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "ix_reminders_status_snoozed_until_due_at" in names
    finally:
        raw.close()


def test_in_memory_store_is_migrated_too() -> None:
    with SQLiteStore(":memory:") as store:
        assert store.user_version == SCHEMA_VERSION
        store.leads.add(Lead(id="l"))
        assert len(store.leads) == 1


def test_a_file_from_a_newer_crmkit_is_refused(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StorageError, match="newer"):
        SQLiteStore(path)


def test_a_table_missing_a_column_is_reported(path: Path) -> None:
    SQLiteStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("ALTER TABLE leads DROP COLUMN queue")
    raw.close()
    with pytest.raises(StorageError, match="leads lacks column"):
        SQLiteStore(path)


# -- errors ------------------------------------------------------------------------------


def test_a_directory_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="unable to open") as info:
        SQLiteStore(tmp_path)
    assert isinstance(info.value.__cause__, sqlite3.Error)
    assert str(tmp_path) in str(info.value)


def test_a_corrupted_file_is_a_storage_error(path: Path) -> None:
    path.write_bytes(b"this is not a database, just some text" * 200)
    with pytest.raises(StorageError, match="not a database") as info:
        SQLiteStore(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_a_row_changed_outside_crmkit_is_a_storage_error(store: SQLiteStore, path: Path) -> None:
    store.leads.add(Lead(id="l1"))
    raw = sqlite3.connect(path)
    raw.execute("UPDATE leads SET status = 'bogus'")
    raw.commit()
    raw.close()
    with pytest.raises(StorageError, match="cannot be read back"):
        store.leads.get("l1")


def test_a_closed_store_raises_storage_error(path: Path) -> None:
    store = SQLiteStore(path)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StorageError, match="closed"):
        store.accounts.add(Account(id="a", name="A"))
    with pytest.raises(StorageError):
        len(store.accounts)


def test_integrity_errors_never_leak(store: SQLiteStore) -> None:
    store.accounts.add(Account(id="a", name="A"))
    with pytest.raises(AlreadyExists):
        store.accounts.add(Account(id="a", name="B"))
    with pytest.raises(BatchError) as info:
        store.accounts.add_many([Account(id="b", name="B"), Account(id="a", name="A")])
    assert [index for index, _ in info.value.errors] == [1]
    assert [a.id for a in store.accounts] == ["a"]


def unchecked(record: Any, **changes: Any) -> Any:
    """``record`` with ``changes`` set past its validators (records refuse them since
    issue 13): the store must still refuse what it cannot hold."""
    for name, value in changes.items():
        object.__setattr__(record, name, value)
    return record


def test_numbers_sqlite_cannot_hold_are_validation_errors(store: SQLiteStore) -> None:
    with pytest.raises(ValidationError, match="64-bit"):
        Account(id="h", name="Huge", employees=2**64)
    huge = unchecked(Account(id="h", name="Huge"), employees=2**64)
    with pytest.raises(ValidationError, match="64-bit") as info:
        store.accounts.add(huge)
    assert info.value.field == "employees"
    assert info.value.record_id == "h"
    with pytest.raises(ValidationError, match="64-bit"):
        store.accounts.put(huge)
    ok = store.accounts.add(Account(id="ok", name="Ok"))
    with pytest.raises(ValidationError, match="64-bit"):
        store.accounts.update(unchecked(attrs.evolve(ok), employees=2**63))
    assert store.accounts.get("ok") == ok
    assert [a.id for a in store.accounts] == ["ok"]


def test_wait_for_the_write_lock_then_report_it(path: Path) -> None:
    first = SQLiteStore(path)
    second = SQLiteStore(path, timeout=0.05)
    try:
        with first.transaction():
            first.accounts.add(Account(id="a", name="A"))
            assert len(second.accounts) == 0  # WAL: readers see the last commit
            with pytest.raises(StorageError, match="locked"):
                second.accounts.add(Account(id="b", name="B"))
            with pytest.raises(StorageError, match="locked"), second.transaction():
                pass  # BEGIN IMMEDIATE itself waits for the lock and fails
        second.accounts.add(Account(id="b", name="B"))
        assert [a.id for a in first.accounts] == ["a", "b"]
    finally:
        second.close()
        first.close()


def test_transactions_take_the_write_lock_at_once(path: Path) -> None:
    store = SQLiteStore(path)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        # nothing written yet, but BEGIN IMMEDIATE already holds the write lock
        with store.transaction(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
        store.close()


# -- transactions and state --------------------------------------------------------------


class Boom(Exception):
    pass


def test_rollback_on_exception_survives_reopen(path: Path) -> None:
    with SQLiteStore(path) as store:
        kept = store.accounts.add(Account(id="keep", name="Keep"))
        store.save_state("pool", {"next": 1})

        def fail() -> None:
            with store.transaction():
                store.accounts.update(attrs.evolve(kept, name="Changed"))
                store.accounts.add_many([Account(id=f"n{i}", name="N") for i in range(50)])
                store.save_state("pool", {"next": 2})
                raise Boom

        with pytest.raises(Boom):
            fail()
    with SQLiteStore(path) as store:
        assert list(store.accounts) == [kept]
        assert store.load_state("pool") == {"next": 1}


def fail_inner(store: SQLiteStore) -> None:
    with store.transaction():
        store.accounts.add(Account(id="inner", name="Inner"))
        with store.transaction():  # two levels deep, committed into its parent
            store.leads.add(Lead(id="deep"))
        store.save_state("s", {"v": "inner"})
        raise Boom


def test_nested_savepoint_rollback_keeps_outer_work(path: Path) -> None:
    with SQLiteStore(path) as store:
        with store.transaction():
            store.accounts.add(Account(id="outer", name="Outer"))
            store.save_state("s", {"v": "outer"})
            with pytest.raises(Boom):
                fail_inner(store)
            with store.transaction():
                store.leads.add(Lead(id="kept"))
            assert store.load_state("s") == {"v": "outer"}
        assert not store._conn.in_transaction
    with SQLiteStore(path) as store:
        assert [a.id for a in store.accounts] == ["outer"]
        assert [lead.id for lead in store.leads] == ["kept"]
        assert store.load_state("s") == {"v": "outer"}


def test_state_documents_persist(path: Path) -> None:
    data = {"order": ["r2", "r1"], "last": {"r1": "2026-01-01"}, "n": 3, "ok": None}
    with SQLiteStore(path) as store:
        store.save_state("pool", data)
        store.save_state("pool", {**data, "n": 4})
        store.save_state("other", {})
    with SQLiteStore(path) as store:
        assert store.load_state("pool") == {**data, "n": 4}
        assert store.load_state("other") == {}
        assert store.load_state("missing") is None
        with pytest.raises(ValidationError):
            store.save_state("bad", {"x": {1, 2}})


def test_versions_and_conflicts_persist(path: Path) -> None:
    with SQLiteStore(path) as store:
        v1 = store.accounts.add(Account(id="a", name="A"))
        v2 = store.accounts.update(attrs.evolve(v1, name="B"))
        v3 = store.accounts.put(attrs.evolve(v2, name="C"))
        assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    with SQLiteStore(path) as store:
        assert store.accounts.get("a") == v3
        with pytest.raises(ConflictError) as info:
            store.accounts.update(attrs.evolve(v2, name="stale"))
        assert (info.value.expected, info.value.actual) == (2, 3)
        with pytest.raises(ConflictError):
            store.accounts.delete("a", expected_version=1)
        store.accounts.delete("a", expected_version=3)
        with pytest.raises(NotFound):
            store.accounts.delete("a")
        [again] = store.accounts.put_many([attrs.evolve(v3, version=0)])
        assert again.version == 1


def test_threads_share_one_store(store: SQLiteStore) -> None:
    def work(n: int) -> None:
        for i in range(40):
            with store.transaction():
                store.accounts.add(Account(id=f"t{n}-{i:02d}", name="T"))
                store.save_state(f"thread{n}", {"i": i})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.accounts) == 160
    assert [store.load_state(f"thread{n}") for n in range(4)] == [{"i": 39}] * 4


# -- batches -----------------------------------------------------------------------------


def test_add_many_reports_every_bad_record_and_writes_nothing(store: SQLiteStore) -> None:
    store.accounts.add(Account(id="old", name="Old"))
    lead: Any = Lead(id="l")
    batch = [
        Account(id="n1", name="N1"),
        Account(id="old", name="Again"),  # stored already
        lead,  # wrong type
        Account(id="n1", name="Twice"),  # duplicate in batch
        unchecked(Account(id="n2", name="N2"), employees=2**70),  # too big for SQLite
    ]
    with pytest.raises(BatchError) as info:
        store.accounts.add_many(batch)
    assert [index for index, _ in info.value.errors] == [1, 2, 3]
    assert [a.id for a in store.accounts] == ["old"]
    with pytest.raises(BatchError) as info:
        store.accounts.add_many(batch[:1] + batch[4:] + [Account(id="n3", name="N3")])
    assert [(index, err.field) for index, err in info.value.errors] == [(1, "employees")]
    assert [a.id for a in store.accounts] == ["old"]


def test_put_many_counts_versions_per_record(store: SQLiteStore) -> None:
    store.accounts.add_many([Account(id="a", name="A"), Account(id="b", name="B")])
    store.accounts.put(Account(id="b", name="B2"))
    result = store.accounts.put_many(
        [Account(id="c", name="C"), Account(id="b", name="B3"), Account(id="a", name="A2")]
    )
    assert [(r.id, r.version) for r in result] == [("c", 1), ("b", 3), ("a", 2)]
    assert [(a.id, a.name, a.version) for a in store.accounts] == [
        ("a", "A2", 2),
        ("b", "B3", 3),
        ("c", "C", 1),
    ]


def test_batch_existence_check_is_one_query(store: SQLiteStore) -> None:
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        store.accounts.add_many([Account(id=f"a{i:04d}", name="A") for i in range(500)])
        store.accounts.add_many([])  # an empty table or batch needs no lookup at all
        store.accounts.put_many([Account(id=f"a{i:04d}", name="B") for i in range(0, 500, 2)])
    finally:
        store._conn.set_trace_callback(None)
    lookups = [s for s in statements if "json_each" in s]
    assert len(lookups) == 1  # one id lookup per batch, not one per record
    statements.clear()
    store._conn.set_trace_callback(statements.append)
    try:
        with pytest.raises(BatchError) as info:
            store.accounts.add_many([Account(id=f"a{i:04d}", name="C") for i in range(495, 505)])
    finally:
        store._conn.set_trace_callback(None)
    assert [index for index, _ in info.value.errors] == [0, 1, 2, 3, 4]
    assert len([s for s in statements if "json_each" in s]) == 1
    assert len(store.accounts) == 500
    assert store.accounts.get("a0002").version == 2


# -- agreement with MemoryStore ----------------------------------------------------------

WORDS = ["", "US", "DE", "us", "Zed", "Ålesund", "b"]
INSTANTS = [
    datetime(2024, 1, 1, tzinfo=UTC),
    datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # == the first one
]
custom_values = st.one_of(
    st.sampled_from(["gold", "silver", "10", "", "Gold"]),
    st.sampled_from([0, 1, 10, -3, 2**53 - 1]),
    st.sampled_from([0.5, 1.0, -2.25, 10.0]),
    st.booleans(),
)
small_ids = st.text(alphabet="abcdefAB0", min_size=1, max_size=3)


@st.composite
def accounts(draw: st.DrawFn, record_id: str) -> Account:
    opt = st.none
    return Account(
        id=record_id,
        name=draw(st.sampled_from(["Acme", "acme", "Zeta", "Ömega"])),
        account_type=draw(st.sampled_from(list(AccountType))),
        country=draw(st.sampled_from(WORDS) | opt()),
        employees=draw(st.sampled_from([0, 5, 500, 10_000, 2**53 + 1]) | opt()),
        annual_revenue=draw(
            st.sampled_from([Decimal("0"), Decimal("0.10"), Decimal("1e6"), Decimal("5.5")])
            | opt()
        ),
        realignment_locked=draw(st.booleans()),
        created_at=draw(st.sampled_from(INSTANTS) | opt()),
        custom=draw(
            st.dictionaries(st.sampled_from(["tier", "seats", "vip"]), custom_values, max_size=3)
        ),
    )


@st.composite
def activities(draw: st.DrawFn, record_id: str) -> Activity:
    return Activity(
        id=record_id,
        kind=draw(st.sampled_from(list(ActivityKind))),
        at=draw(st.sampled_from(INSTANTS)),
        account_id=draw(st.sampled_from(["a", "b", "c"]) | st.none()),
        direction=draw(st.sampled_from(list(Direction)) | st.none()),
        duration_minutes=draw(st.integers(0, 10**6) | st.none()),
        custom=draw(st.dictionaries(st.sampled_from(["score", "src"]), custom_values, max_size=2)),
    )


@st.composite
def batch_of(draw: st.DrawFn, make: Any) -> list[Any]:
    record_ids = draw(st.lists(small_ids, unique=True, max_size=12))
    return [draw(make(record_id)) for record_id in record_ids]


def _criteria() -> st.SearchStrategy[Any]:
    word = st.sampled_from([w for w in WORDS if w])
    number = st.sampled_from([0, 5, 499.5, 500, 2**53])
    leaf = st.one_of(
        st.builds(lambda v: F.country == v, word),
        st.builds(lambda v: F.country != v, word),
        st.builds(lambda v: F.country < v, word),
        st.builds(lambda v: F.country.startswith(v[:1]), word),
        st.builds(lambda vs: F.country.isin(vs), st.lists(word, max_size=3)),
        st.builds(lambda v: F.employees >= v, number),
        st.builds(lambda v: F.annual_revenue < v, number),
        st.builds(lambda a, b: F.employees.between(a, b), number, number),
        st.builds(lambda v: F.account_type == v, st.sampled_from(list(AccountType))),
        st.builds(lambda v: F.realignment_locked == v, st.booleans()),
        st.builds(lambda v: F.created_at > v, st.sampled_from(INSTANTS)),
        st.builds(lambda v: F.custom["tier"] == v, st.sampled_from(["gold", "10"])),
        st.builds(lambda v: F.custom["seats"] > v, number),
        st.builds(lambda v: F.custom["vip"] == v, st.booleans()),
        st.sampled_from([F.country.isnull(), F.created_at.notnull(), F.custom["tier"].exists()]),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(lambda a, b: a & b, inner, inner),
            st.builds(lambda a, b: a | b, inner, inner),
            st.builds(lambda a: ~a, inner),
        ),
        max_leaves=4,
    )


ORDERABLE = [
    "name",
    "account_type",
    "country",
    "employees",
    "annual_revenue",
    "realignment_locked",
    "created_at",
    "custom.tier",
    "custom.seats",
    "custom.vip",
]
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _both(records: list[Any]) -> tuple[MemoryStore, SQLiteStore]:
    memory, sqlite = MemoryStore(), SQLiteStore(":memory:")
    record_type = type(records[0]) if records else Account
    memory.repository(record_type).add_many(records)
    sqlite.repository(record_type).add_many(records)
    return memory, sqlite


@SETTINGS
@given(batch=batch_of(accounts), criteria=_criteria())
def test_query_matches_memory_store(batch: list[Account], criteria: Any) -> None:
    memory, sqlite = _both(batch)
    with sqlite:
        expected = memory.accounts.query(criteria)
        # an independent check of the matches: the bound predicate on every record
        assert [a.id for a in expected] == sorted(
            a.id for a in batch if criteria.bind(Account).matches(a)
        )
        assert sqlite.accounts.query(criteria) == expected
        assert sqlite.accounts.count(criteria) == len(expected)


@SETTINGS
@given(
    batch=batch_of(accounts),
    order_by=st.lists(
        st.sampled_from(ORDERABLE).flatmap(lambda f: st.sampled_from([f, "-" + f])),
        min_size=1,
        max_size=3,
    ),
    limit=st.none() | st.integers(0, 5),
    offset=st.integers(0, 3),
)
def test_order_by_matches_memory_store(
    batch: list[Account], order_by: list[str], limit: int | None, offset: int
) -> None:
    memory, sqlite = _both(batch)
    with sqlite:
        expected = memory.accounts.query(order_by=order_by, limit=limit, offset=offset)
        got = sqlite.accounts.query(order_by=order_by, limit=limit, offset=offset)
        assert [a.id for a in got] == [a.id for a in expected]


def test_order_by_custom_values_of_mixed_types() -> None:
    # missing first, then numbers (true = 1, false = 0), then text; ties by id
    values: dict[str, Any] = {
        "a": "b",
        "b": 2,
        "c": True,
        "d": None,
        "e": 0.5,
        "f": "B",
        "g": False,
        "h": 1.0,
    }
    records = [
        Account(id=k, name="x", custom={} if v is None else {"v": v}) for k, v in values.items()
    ]
    expected = ["d", "g", "e", "c", "h", "b", "f", "a"]  # worked out by hand
    memory, sqlite = _both(records)
    with sqlite:
        assert [a.id for a in memory.accounts.query(order_by="custom.v")] == expected
        assert [a.id for a in sqlite.accounts.query(order_by="custom.v")] == expected
        assert [a.id for a in sqlite.accounts.query(order_by="-custom.v")] == [
            "a",
            "f",
            "b",
            "c",
            "h",
            "e",
            "g",
            "d",
        ]


def _assert_same_columns(got: dict[str, np.ndarray[Any, Any]], want: dict[str, Any]) -> None:
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        if want[name].dtype == object:
            assert got[name].tolist() == want[name].tolist(), name
            assert [type(v) for v in got[name]] == [type(v) for v in want[name]], name
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


ACCOUNT_FIELDS = [
    "id",
    "name",
    "account_type",
    "country",
    "employees",
    "annual_revenue",
    "realignment_locked",
    "created_at",
    "custom.tier",
    "custom.seats",
    "custom.vip",
    "custom.none",
]
ACTIVITY_FIELDS = [
    "id",
    "kind",
    "at",
    "account_id",
    "direction",
    "duration_minutes",
    "custom.score",
    "custom.src",
]


@SETTINGS
@given(batch=batch_of(accounts), criteria=st.none() | _criteria())
def test_account_columns_equal_columns_of_records(batch: list[Account], criteria: Any) -> None:
    with SQLiteStore(":memory:") as store:
        store.accounts.add_many(batch)
        records = sorted(
            (a for a in store.accounts if criteria is None or criteria.bind(Account).matches(a)),
            key=lambda a: a.id,
        )
        want = columns_of(Account, records, ACCOUNT_FIELDS)
        _assert_same_columns(store.accounts.columns(ACCOUNT_FIELDS, criteria), want)


@SETTINGS
@given(batch=batch_of(activities))
def test_activity_columns_equal_columns_of_records(batch: list[Activity]) -> None:
    with SQLiteStore(":memory:") as store:
        stored = store.activities.add_many(batch)
        want = columns_of(Activity, sorted(stored, key=lambda a: a.id), ACTIVITY_FIELDS)
        _assert_same_columns(store.activities.columns(ACTIVITY_FIELDS), want)


def test_columns_of_every_kind_including_objects(store: SQLiteStore) -> None:
    records = [r for r in full_records() if isinstance(r, (Rep, Opportunity))]
    for record in records:
        store.repository(type(record)).add(record)
    rep_fields = ["skills", "work_days", "work_start", "away_from", "active", "weight"]
    _assert_same_columns(
        store.reps.columns(rep_fields), columns_of(Rep, list(store.reps), rep_fields)
    )
    opp_fields = ["close_date", "amount", "probability", "status", "custom.flag"]
    cols = store.opportunities.columns(opp_fields)
    _assert_same_columns(cols, columns_of(Opportunity, list(store.opportunities), opp_fields))
    assert cols["close_date"][0] == np.datetime64("0001-01-01")
    assert cols["custom.flag"].tolist() == [False]


# -- files that are not crmkit's, and many processes opening one file ----------------------


def _fingerprint(path: Path) -> tuple[bytes, str]:
    raw = sqlite3.connect(path)
    try:
        mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        raw.close()
    return path.read_bytes(), mode


def test_an_apps_own_database_is_refused_and_left_untouched(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, login TEXT)")
    raw.execute("INSERT INTO accounts (login) VALUES ('ana')")
    raw.commit()
    raw.close()
    before = _fingerprint(path)
    with pytest.raises(StorageError, match="not a crmkit database") as info:
        SQLiteStore(path)
    assert "accounts" in str(info.value)
    assert _fingerprint(path) == before
    assert not path.with_name(path.name + "-wal").exists()


def _open_and_write(index: int, path: str) -> int:
    with SQLiteStore(path, timeout=30) as store:
        store.leads.add(Lead(id=f"lead-{index}"))
        return store.user_version


@pytest.mark.parametrize("round_", range(6))
def test_many_processes_open_one_new_file_at_once(tmp_path: Path, round_: int) -> None:
    path = str(tmp_path / f"new-{round_}.db")
    versions = run_processes(_open_and_write, 8, path)
    assert set(versions) == {SCHEMA_VERSION}
    with SQLiteStore(path) as store:
        assert sorted(lead.id for lead in store.leads) == sorted(f"lead-{i}" for i in range(8))


# -- declared indexes are used -------------------------------------------------------------


def _plan(store: SQLiteStore, criteria: Any) -> str:
    repo = store.accounts
    where, params = repo._where(criteria)
    rows = store._conn.execute(f"EXPLAIN QUERY PLAN SELECT id FROM accounts{where}", params)
    return " | ".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("fields", "criteria", "index"),
    [
        (("industry",), F.industry == "Retail", "cx_accounts(industry)"),
        (("employees",), F.employees >= 5000, "cx_accounts(employees)"),
        (("custom.tier",), F.custom["tier"] == "gold", "cx_accounts(custom.tier)"),
        (("custom.arr",), F.custom["arr"] > 1000, "cx_accounts(custom.arr) number"),
        (("country", "industry"), (F.country == "US") & (F.industry == "x"), "(country,industry)"),
    ],
)
def test_a_declared_index_turns_the_query_into_an_index_lookup(
    store: SQLiteStore, fields: tuple[str, ...], criteria: Any, index: str
) -> None:
    store.accounts.add_many(
        Account(
            id=f"a{i}",
            name=f"Account {i}",
            industry=f"industry {i % 50}",
            country=["US", "FR", "DE"][i % 3],
            employees=i,
            custom={"tier": ["gold", "silver", "bronze"][i % 3], "arr": i * 10},
        )
        for i in range(2_000)
    )
    store._conn.execute("ANALYZE")
    assert index not in _plan(store, criteria)
    store.ensure_index(Account, *fields)
    store._conn.execute("ANALYZE")
    plan = _plan(store, criteria)
    assert "USING INDEX" in plan, plan
    assert index in plan, plan
    expected = [a.id for a in store.accounts if bind(criteria, Account).matches(a)]
    assert [a.id for a in store.accounts.query(criteria)] == expected


def test_declared_indexes_survive_reopening_and_are_seen_by_other_connections(path: Path) -> None:
    with SQLiteStore(path) as first:
        first.ensure_index(Account, "custom.tier")
        with SQLiteStore(path) as second:
            assert second.indexes(Account) == [("custom.tier",)]
    with SQLiteStore(path) as again:
        assert again.indexes(Account) == [("custom.tier",)]


# -- a patch of a record read in the same transaction (computed, not read back) -------------


def test_a_patch_after_a_read_in_a_transaction_returns_the_stored_row(
    store: SQLiteStore,
) -> None:
    store.accounts.add(Account(id="a1", name="Acme", employees=10))
    with store.transaction():
        old = store.accounts.get("a1")
        new = store.accounts.patch("a1", expected_version=old.version, employees=12)
        again = store.accounts.patch("a1", expected_version=new.version, name="Acme Corp")
        with pytest.raises(ConflictError):
            store.accounts.patch("a1", expected_version=old.version, employees=1)
    assert store.accounts.get("a1") == again
    assert (again.name, again.employees, again.version) == ("Acme Corp", 12, 3)


def test_a_record_deleted_and_added_again_is_patched_as_stored(store: SQLiteStore) -> None:
    store.accounts.add(Account(id="a1", name="Acme"))
    with store.transaction():
        store.accounts.get("a1")
        store.accounts.delete("a1")
        store.accounts.add(Account(id="a1", name="Other"))  # version 1 again
        patched = store.accounts.patch("a1", expected_version=1, industry="Retail")
    assert patched == store.accounts.get("a1")
    assert (patched.name, patched.industry) == ("Other", "Retail")


def test_a_read_undone_by_a_savepoint_is_not_used_by_a_patch(store: SQLiteStore) -> None:
    store.accounts.add(Account(id="a1", name="Acme"))

    def readd_and_fail() -> None:
        with store.transaction():
            store.accounts.delete("a1")
            store.accounts.add(Account(id="a1", name="Other"))
            store.accounts.get("a1")  # read inside the savepoint, then undone
            raise RuntimeError

    with store.transaction():
        with pytest.raises(RuntimeError):
            readd_and_fail()
        patched = store.accounts.patch("a1", expected_version=1, industry="Retail")
    assert patched == store.accounts.get("a1")
    assert (patched.name, patched.industry) == ("Acme", "Retail")
