"""Registered record types and typed custom fields (crmkit.registry).

Registration is process-wide: every type registered here is unregistered (and every
declaration undeclared) by the fixture that made it, so other test modules never see them.
"""

from __future__ import annotations

import enum
import io
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crmkit
from crmkit import fields
from crmkit.codec import from_dict, from_json, to_dict, to_json
from crmkit.criteria import F, bind
from crmkit.dedupe import merge, unmerge
from crmkit.errors import CriteriaError, StorageError, ValidationError
from crmkit.events import ChangeEvent, read
from crmkit.hierarchy import AccountHierarchy, rollup_related
from crmkit.io import export_csv, import_csv
from crmkit.records import RECORD_TYPES, Account
from crmkit.registry import (
    declare_custom_field,
    record_types,
    register_record,
    undeclare_custom_field,
    unregister_record,
)
from crmkit.store import MemoryStore, SQLiteStore
from crmkit.testing import StoreContract
from crmkit.testing.strategies import records

from ._stores import (
    POSTGRES_DSN,
    StoreFactory,
    drop_schema,
    empty_schema,
    require_postgres,
)


class Plan(enum.StrEnum):
    BASIC = "basic"
    PRO = "pro"


@attrs.frozen(kw_only=True)
class Subscription:
    id: str = fields.record_id()
    account_id: str | None = fields.reference(Account)
    plan: Plan = fields.choice(Plan, default=Plan.BASIC)
    seats: int | None = fields.integer()
    mrr: Decimal | None = fields.money()
    started_at: datetime | None = fields.moment()
    active: bool = fields.flag(default=True)
    custom: dict[str, fields.Scalar] = fields.custom()
    version: int = fields.version()


@pytest.fixture(scope="module", autouse=True)
def _subscription() -> Iterator[None]:
    register_record(Subscription)
    yield
    unregister_record(Subscription)


def _unique_type(name: str, **extra: Any) -> type[Any]:
    """A new record class named ``name`` with ``extra`` fields before ``version``."""
    body: dict[str, Any] = {
        "__annotations__": {"id": "str", "account_id": "str | None", "plan": "str | None"},
        "id": fields.record_id(),
        "account_id": fields.reference(Account),
        "plan": fields.text(),
    }
    for key, value in extra.items():
        body["__annotations__"][key] = "Any"
        body[key] = value
    body["__annotations__"]["version"] = "int"
    body["version"] = fields.version()
    return attrs.frozen(kw_only=True)(type(name, (), body))


@pytest.fixture
def registered() -> Iterator[list[type[Any]]]:
    """Types a test registers: unregistered after it."""
    made: list[type[Any]] = []
    yield made
    for cls in made:
        unregister_record(cls)


# -- the store contract, for a registered type -------------------------------------------


class TestMemoryStoreWithCustomType(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


class TestSQLiteStoreWithCustomType(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "crm.db")
        yield store
        store.close()


@pytest.fixture(scope="class")
def shared_postgres() -> Iterator[StoreFactory]:
    require_postgres()
    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    try:
        yield StoreFactory("postgres", POSTGRES_DSN, schema)
    finally:
        drop_schema(schema)


class TestPostgresStoreWithCustomType(StoreContract):
    @pytest.fixture
    def store(self, shared_postgres: StoreFactory) -> Iterator[Any]:
        store = shared_postgres()
        yield store
        store.close()
        empty_schema(shared_postgres)


def test_record_types_lists_builtins_then_registered() -> None:
    assert record_types() == (*RECORD_TYPES, Subscription)
    assert crmkit.record_types is record_types
    assert crmkit.records.RECORD_TYPES == RECORD_TYPES  # the built-ins, unchanged


# -- registration ------------------------------------------------------------------------


def test_registration_refuses_what_no_store_could_keep(registered: list[type[Any]]) -> None:
    @attrs.define
    class Mutable:
        id: str = fields.record_id()
        version: int = fields.version()

    @attrs.frozen
    class NoVersion:
        id: str = fields.record_id()

    @attrs.frozen
    class Plain:
        id: str = fields.record_id()
        note: str = attrs.field(default="")
        version: int = fields.version()

    cases: list[tuple[Any, str]] = [
        (object, "must be an attrs class"),
        (Mutable, "must be frozen"),
        (NoVersion, "last field must be version"),
        (Plain, "crmkit.fields maker"),
        (_unique_type("Account"), "built-in record type"),
        (_unique_type("Subscription"), "another class named Subscription"),
        (_unique_type("Dangling", other=fields.reference("Nowhere")), "not a record type"),
    ]
    for cls, reason in cases:
        with pytest.raises(ValidationError, match=reason):
            register_record(cls)
    with pytest.raises(ValidationError, match="is taken"):
        register_record(_unique_type("Clash"), table="accounts")
    assert register_record(Subscription) is Subscription  # again: nothing changes
    assert record_types() == (*RECORD_TYPES, Subscription)


def test_store_opened_before_registration_gets_the_type(
    tmp_path: Path, registered: list[type[Any]]
) -> None:
    memory, sqlite = MemoryStore(), SQLiteStore(tmp_path / "early.db")
    try:
        late = register_record(_unique_type("LateThing"))
        registered.append(late)
        for store in (memory, sqlite):
            repo = store.repository(late)
            repo.add(late(id="t1", plan="x"))
            assert [r.id for r in repo.query(F.plan == "x")] == ["t1"]
        unregister_record(late)
        with pytest.raises(ValidationError, match="not a crmkit record type"):
            memory.repository(late)
    finally:
        sqlite.close()
    reopened = SQLiteStore(tmp_path / "early.db")  # the rows stay, the type comes back
    try:
        register_record(late)
        assert [r.id for r in reopened.repository(late)] == ["t1"]
    finally:
        reopened.close()


def test_a_table_made_lazily_in_a_rolled_back_transaction_is_made_again(
    store_factory: StoreFactory, registered: list[type[Any]]
) -> None:
    store = store_factory()
    try:
        thing = register_record(_unique_type("RolledThing"))
        registered.append(thing)
        try:
            with store.transaction():
                store.repository(thing).add(thing(id="t1"))
                raise RuntimeError("undo")
        except RuntimeError:
            pass
        assert "t1" not in store.repository(thing)
        assert store.repository(thing).add(thing(id="t2")).version == 1
    finally:
        store.close()


# -- criteria, columns, codec, CSV -------------------------------------------------------


def test_criteria_and_columns_of_a_registered_type() -> None:
    store = MemoryStore()
    repo = store.repository(Subscription)
    repo.add_many(
        [
            Subscription(id="s1", account_id="a1", plan="pro", seats=10, mrr="99.50"),
            Subscription(id="s2", account_id="a1", seats=2, mrr=10),
        ]
    )
    assert [s.id for s in repo.query(F.plan == "pro")] == ["s1"]
    assert repo.columns(["seats", "mrr"])["mrr"].tolist() == [99.5, 10.0]
    with pytest.raises(CriteriaError, match="not one of basic, pro"):
        bind(F.plan == "gold", Subscription)
    with pytest.raises(CriteriaError, match="Subscription has no field 'seat'"):
        repo.query(F.seat > 1)


@settings(max_examples=50, deadline=None)
@given(record=records(Subscription))
def test_codec_round_trip_is_lossless(record: Subscription) -> None:
    assert from_dict(Subscription, to_dict(record)) == record
    assert from_json(Subscription, to_json(record)) == record


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(records(Subscription), max_size=4, unique_by=lambda r: r.id))
def test_csv_round_trip_is_lossless(batch: list[Subscription]) -> None:
    source, target = MemoryStore(), MemoryStore()
    source.repository(Subscription).put_many(batch)
    buffer = io.StringIO()
    export_csv(source, Subscription, buffer)
    buffer.seek(0)
    assert import_csv(target, "subscriptions", buffer).written == len(batch)
    assert list(target.repository(Subscription)) == list(source.repository(Subscription))


def test_csv_import_gives_the_account_by_name() -> None:
    store = MemoryStore()
    store.accounts.add_many([Account(id="a1", name="Acme"), Account(id="a2", name="Globex")])
    source = io.StringIO("id,account,plan,seats\ns1,Globex,pro,5\ns2,Nobody,basic,1\n")
    report = import_csv(
        store,
        Subscription,
        source,
        mapping={"account": "account_id"},
        refs={"account_id": "name"},
        skip_bad_rows=True,
    )
    assert report.written == 1
    assert store.repository(Subscription).get("s1").account_id == "a2"
    assert [e.row for e in report.errors] == [3]


# -- schema evolution --------------------------------------------------------------------


def _evolve(opener: Any, registered: list[type[Any]]) -> None:
    """Open with a type, write, then reopen with an added optional field and with
    incompatible changes."""
    name = f"Evolving{uuid.uuid4().hex[:6]}"
    first = register_record(_unique_type(name), table="evolving")
    registered.append(first)
    store = opener()
    try:
        store.repository(first).add(first(id="e1", plan="pro"))
    finally:
        store.close()
    unregister_record(first)

    added = register_record(
        _unique_type(name, seats=fields.integer(default=3), note=fields.text()),
        table="evolving",
    )
    registered.append(added)
    store = opener()
    try:
        repo = store.repository(added)
        assert repo.get("e1") == added(id="e1", plan="pro", seats=3, version=1)
        repo.add(added(id="e2", seats=7, note="new"))
        assert [r.id for r in repo.query(F.seats > 5)] == ["e2"]
    finally:
        store.close()
    unregister_record(added)

    note = fields.text
    for changed, field, reason in [
        (
            _unique_type(name, seats=fields.text(), note=note()),
            "seats",
            "changed kind from int to text",
        ),
        (_unique_type(name, note=note()), "seats", "was removed or renamed"),
        (
            _unique_type(name, seats=fields.integer(), note=note(), size=note(required=True)),
            "size",
            "was added as a required field",
        ),
    ]:
        register_record(changed, table="evolving")
        registered.append(changed)
        with pytest.raises(StorageError, match=rf"{name}\.{field} {reason}"):
            opener().close()
        unregister_record(changed)


def test_sqlite_schema_evolution(tmp_path: Path, registered: list[type[Any]]) -> None:
    _evolve(lambda: SQLiteStore(tmp_path / "evolving.db"), registered)


def test_postgres_schema_evolution(
    postgres_factory: StoreFactory, registered: list[type[Any]]
) -> None:
    _evolve(postgres_factory, registered)


# -- roll-ups and merges through a custom reference --------------------------------------


def _accounts_and_subscriptions(store: Any) -> None:
    store.accounts.add_many(
        [
            Account(id="hq", name="HQ"),
            Account(id="eu", name="EU", parent_id="hq"),
            Account(id="eu2", name="EU (duplicate)", parent_id="hq"),
        ]
    )
    store.repository(Subscription).add_many(
        [
            Subscription(id="s1", account_id="eu", mrr=100),
            Subscription(id="s2", account_id="eu2", mrr="20.5"),
            Subscription(id="s3", account_id="hq", mrr=1),
        ]
    )


def test_rollup_of_a_custom_records_field_by_account(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "crm.db")
    try:
        _accounts_and_subscriptions(store)
        h = AccountHierarchy.from_store(store)
        mrr = rollup_related(store, h, Subscription, "mrr")
        assert (mrr.get("hq"), mrr.get("eu"), mrr.get("eu2")) == (121.5, 100.0, 20.5)
        assert mrr.members("hq") == ["hq", "eu", "eu2"]
        assert rollup_related(store, h, Subscription).get("hq") == 3.0
        with pytest.raises(ValidationError, match="numeric"):
            rollup_related(store, h, Subscription, "plan")
    finally:
        store.close()


def test_merge_re_points_custom_references_and_unmerge_restores() -> None:
    store = MemoryStore()
    _accounts_and_subscriptions(store)
    done = merge(store, Account, ["eu", "eu2"], survivor="eu", merge_id="m1")
    subs = store.repository(Subscription)
    assert subs.get("s2").account_id == "eu"
    assert subs.get("s1").account_id == "eu"
    unmerge(store, done.id)
    assert subs.get("s2").account_id == "eu2"


# -- typed custom fields -----------------------------------------------------------------


class Tier(enum.StrEnum):
    GOLD = "gold"
    SILVER = "silver"


@pytest.fixture
def typed() -> Iterator[None]:
    declare_custom_field(Account, "tier", enum=Tier, default="silver")
    declare_custom_field(Account, "arr", "money")
    declare_custom_field(Account, "seats", "int", required=True)
    yield
    for name in ("tier", "arr", "seats"):
        undeclare_custom_field(Account, name)


def test_typed_custom_fields_are_checked_when_built(typed: None) -> None:
    acme = Account(id="a1", name="Acme", custom={"tier": Tier.GOLD, "arr": "1,200.50", "seats": 3})
    assert acme.custom == {"tier": "gold", "arr": 1200.5, "seats": 3}
    assert Account(id="a2", name="B", custom={"seats": 1}).custom["tier"] == "silver"
    with pytest.raises(ValidationError) as bad:
        Account(id="a3", name="C", custom={"tier": "bronze", "seats": 1})
    assert (bad.value.record, bad.value.field, bad.value.value) == (
        "Account",
        "custom.tier",
        "bronze",
    )
    assert "must be one of gold, silver" in str(bad.value)
    with pytest.raises(ValidationError, match=r"custom\.seats.*is required"):
        Account(id="a4", name="D")
    with pytest.raises(ValidationError, match=r"custom\.arr"):
        Account(id="a5", name="E", custom={"arr": "lots", "seats": 1})


def test_typed_custom_fields_are_checked_when_written(tmp_path: Path) -> None:
    early = Account(id="a1", name="Acme", custom={"tier": "bronze"})  # before the declaration
    declare_custom_field(Account, "tier", enum=Tier)
    try:
        for store in (MemoryStore(), SQLiteStore(tmp_path / "crm.db")):
            with pytest.raises(ValidationError, match=r"custom\.tier"):
                store.accounts.add(early)
            stored = store.accounts.add(Account(id="a2", name="B", custom={"tier": "gold"}))
            with pytest.raises(ValidationError, match=r"custom\.tier"):
                store.accounts.patch("a2", custom={"tier": 7})
            assert store.accounts.get("a2") == stored
            store.close()
    finally:
        undeclare_custom_field(Account, "tier")
    assert Account(id="a3", name="C", custom={"tier": 7}).custom == {"tier": 7}  # untyped again


def test_criteria_are_checked_against_the_declaration(typed: None) -> None:
    with pytest.raises(CriteriaError, match="'bronze' is not one of gold, silver"):
        bind(F.custom["tier"] == "bronze", Account)
    with pytest.raises(CriteriaError, match="enum fields support"):
        bind(F.custom["tier"] > "gold", Account)
    with pytest.raises(CriteriaError, match="holds numbers"):
        bind(F.custom["arr"] >= "1000", Account)
    store = MemoryStore()
    store.accounts.add_many(
        [
            Account(id="a1", name="A", custom={"tier": "gold", "arr": 5000, "seats": 1}),
            Account(id="a2", name="B", custom={"arr": "10.5", "seats": 1}),
        ]
    )
    assert [a.id for a in store.accounts.query(F.custom["arr"] > 100)] == ["a1"]
    assert [a.id for a in store.accounts.query(F.custom["tier"] == Tier.SILVER)] == ["a2"]
    bind(F.custom["untyped"] == 3, Account)  # undeclared fields stay untyped


def test_declarations_are_checked() -> None:
    with pytest.raises(ValidationError, match="kind must be one of"):
        declare_custom_field(Account, "x", "decimal")
    with pytest.raises(ValidationError, match="the default must be a whole number"):
        declare_custom_field(Account, "x", "int", default="many")
    with pytest.raises(ValidationError, match="not a crmkit record type"):
        declare_custom_field(object, "x", "int")


def test_an_indexed_custom_field_is_indexed_in_every_store(tmp_path: Path) -> None:
    memory, sqlite = MemoryStore(), SQLiteStore(tmp_path / "crm.db")
    declare_custom_field(Account, "tier", enum=Tier, indexed=True)
    try:
        for store in (memory, sqlite):
            assert store.indexes(Account) == [("custom.tier",)]
    finally:
        undeclare_custom_field(Account, "tier")
        sqlite.close()


def test_strategies_draw_typed_custom_values(typed: None) -> None:
    @settings(max_examples=30, deadline=None)
    @given(record=records(Account))
    def check(record: Account) -> None:
        assert record.custom["tier"] in ("gold", "silver")
        assert isinstance(record.custom["seats"], int)

    check()


# -- change events ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_writes_of_a_registered_type_yield_change_events(backend: str, tmp_path: Path) -> None:
    schema = f"crmkit_test_{uuid.uuid4().hex[:12]}"
    if backend == "memory":
        store: Any = MemoryStore(events=True)
    elif backend == "sqlite":
        store = StoreFactory("sqlite", str(tmp_path / "events.db"))(events=True)
    else:
        require_postgres()
        store = StoreFactory("postgres", POSTGRES_DSN, schema)(events=True)
    try:
        subscriptions = store.repository(Subscription)
        subscriptions.add(Subscription(id="s1", seats=3))
        subscriptions.patch("s1", seats=5)
        subscriptions.delete("s1")
        changes = [e for e in read(store) if isinstance(e, ChangeEvent)]
        assert [(e.record_type, e.record_id, e.operation, e.version) for e in changes] == [
            ("Subscription", "s1", "insert", 1),
            ("Subscription", "s1", "update", 2),
            ("Subscription", "s1", "delete", 2),
        ]
        assert changes[1].fields == ("seats",)
    finally:
        store.close()
        if backend == "postgres":
            drop_schema(schema)
