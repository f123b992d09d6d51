"""The store contract: one pytest class every :class:`~crmkit.store.Store` must pass.

Subclass :class:`StoreContract` in a test module and give it a ``store`` fixture that
returns a fresh, empty store; pytest then runs every contract test against it::

    import pytest
    from crmkit.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(tmp_path / "crm.db")
            yield s
            s.close()

The tests follow the semantics written in ``crmkit.store._base``: versions and
optimistic concurrency, atomic batches that report every bad record, query operators
and missing values, ordering and paging, numpy columns, nested transactions and the small
JSON state documents. Expected results are written out by hand, not computed with
crmkit.

This module imports pytest and hypothesis (``pip install crmkit[testing]``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.criteria import F, bind
from crmkit.errors import (
    AlreadyExists,
    BatchError,
    ConflictError,
    CriteriaError,
    CrmError,
    NotFound,
    ValidationError,
)
from crmkit.records import (
    RECORD_TYPES,
    Account,
    AccountType,
    Activity,
    ActivityKind,
    Campaign,
    CampaignMember,
    Contact,
    Lead,
    MemberStatus,
    Opportunity,
    OpportunityStatus,
    Rep,
    RoutingRule,
    Territory,
)
from crmkit.registry import record_types
from crmkit.store import Store
from crmkit.testing.builders import build
from crmkit.testing.strategies import records

__all__ = ["StoreContract"]

_PARIS = ZoneInfo("Europe/Paris")
_NEW_YORK = ZoneInfo("America/New_York")


# the property tests reuse the test's store across examples (they clean up after each one),
# and every StoreContract subclass runs the same inherited method
_SHARED_FIXTURE = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.differing_executors,
]


class _Boom(Exception):
    """Raised inside transactions to make them roll back."""


def _accounts() -> list[Account]:
    """Five accounts covering every queryable kind; added out of id order."""
    return [
        Account(
            id="a4",
            name="Initech",
            country="CA",
            employees=500,
            annual_revenue=Decimal(0),
            account_type=AccountType.CUSTOMER,
            created_at=datetime(2023, 12, 31, 23, 0, tzinfo=_NEW_YORK),  # 04:00 UTC
            custom={"tier": 3},
        ),
        Account(
            id="a1",
            name="Acme",
            country="US",
            employees=1200,
            annual_revenue=Decimal("5000000"),
            account_type=AccountType.CUSTOMER,
            realignment_locked=True,
            created_at=datetime(2024, 1, 1, tzinfo=UTC),
            custom={"tier": "gold", "score": 7},
        ),
        Account(
            id="a3",
            name="Globex",
            account_type=AccountType.PROSPECT,
            custom={"score": 2.5},
        ),
        Account(
            id="a2",
            name="Acme Europe",
            country="FR",
            employees=300,
            annual_revenue=Decimal("250000.50"),
            account_type=AccountType.PARTNER,
            created_at=datetime(2024, 6, 1, 12, 0, tzinfo=_PARIS),
            custom={"tier": "silver"},
        ),
        Account(
            id="a5",
            name="acme labs",
            country="US",
            employees=2000,
            account_type=AccountType.OTHER,
            created_at=datetime(2024, 1, 1, tzinfo=UTC),
        ),
    ]


def _opportunities() -> list[Opportunity]:
    return [
        Opportunity(
            id="o1",
            name="Renewal",
            amount=Decimal("100.10"),
            probability=0.5,
            close_date=date(2024, 3, 31),
        ),
        Opportunity(
            id="o2",
            name="Upsell",
            amount=Decimal(900),
            probability=1.0,
            status=OpportunityStatus.WON,
            close_date=date(2024, 4, 1),
        ),
        Opportunity(id="o3", name="Pilot", status=OpportunityStatus.LOST),
    ]


def _ids(found: list[Any]) -> list[str]:
    return [r.id for r in found]


# (criteria, expected ids in id order), worked out by hand from _accounts()
_ACCOUNT_QUERIES: list[tuple[str, Any, list[str]]] = [
    ("eq", F.country == "US", ["a1", "a5"]),
    ("ne keeps missing", F.country != "US", ["a2", "a3", "a4"]),
    ("in", F.country.isin(["US", "CA"]), ["a1", "a4", "a5"]),
    ("not in keeps missing", F.country.notin(["US", "CA"]), ["a2", "a3"]),
    ("in empty", F.country.isin([]), []),
    ("ge int", F.employees >= 500, ["a1", "a4", "a5"]),
    ("lt skips missing", F.employees < 500, ["a2"]),
    ("between inclusive", F.employees.between(300, 500), ["a2", "a4"]),
    ("money gt", F.annual_revenue > 1000, ["a1", "a2"]),
    ("money le zero", F.annual_revenue <= 0, ["a4"]),
    ("money eq decimal", F.annual_revenue == Decimal("250000.5"), ["a2"]),
    ("startswith is case-sensitive", F.name.startswith("Acme"), ["a1", "a2"]),
    ("contains", F.name.contains("me"), ["a1", "a2", "a5"]),
    ("text order", F.name > "Globex", ["a4", "a5"]),
    ("is null", F.country.isnull(), ["a3"]),
    ("is not null", F.country.notnull(), ["a1", "a2", "a4", "a5"]),
    ("enum eq", F.account_type == "customer", ["a1", "a4"]),
    ("enum in", F.account_type.isin(["partner", "other"]), ["a2", "a5"]),
    ("enum ne", F.account_type != "customer", ["a2", "a3", "a5"]),
    ("bool eq", F.realignment_locked == True, ["a1"]),  # noqa: E712 - builds criteria
    ("bool ne", F.realignment_locked != True, ["a2", "a3", "a4", "a5"]),  # noqa: E712
    (
        "datetime ge across zones",
        F.created_at >= datetime(2024, 1, 1, tzinfo=UTC),
        ["a1", "a2", "a4", "a5"],
    ),
    ("datetime lt", F.created_at < datetime(2024, 1, 1, 3, 0, tzinfo=_PARIS), ["a1", "a5"]),
    (
        "datetime eq other zone",
        F.created_at == datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
        ["a2"],
    ),
    ("custom eq", F.custom["tier"] == "gold", ["a1"]),
    ("custom exists", F.custom["tier"].exists(), ["a1", "a2", "a4"]),
    ("custom exists false", F.custom["tier"].exists(False), ["a3", "a5"]),
    ("custom number", F.custom["score"] > 2, ["a1", "a3"]),
    ("custom number ignores text", F.custom["tier"] >= 2, ["a4"]),
    ("custom text ignores numbers", F.custom["tier"] > "a", ["a1", "a2"]),
    ("custom is null", F.custom["score"].isnull(), ["a2", "a4", "a5"]),
    ("custom ne keeps missing", F.custom["tier"] != "gold", ["a2", "a3", "a4", "a5"]),
    (
        "all/any",
        (F.country.isin(["US", "CA"]) & (F.employees >= 500)) | (F.custom["tier"] == "silver"),
        ["a1", "a2", "a4", "a5"],
    ),
    ("not", ~(F.country == "US"), ["a2", "a3", "a4"]),
    ("dict form", {"field": "country", "op": "in", "value": ["FR"]}, ["a2"]),
    ("None is everything", None, ["a1", "a2", "a3", "a4", "a5"]),
    ("empty any is nothing", {"any": []}, []),
]

_OPPORTUNITY_QUERIES: list[tuple[str, Any, list[str]]] = [
    ("date lt", F.close_date < date(2024, 4, 1), ["o1"]),
    ("date between", F.close_date.between(date(2024, 1, 1), date(2024, 12, 31)), ["o1", "o2"]),
    ("date iso text", {"field": "close_date", "op": "==", "value": "2024-04-01"}, ["o2"]),
    ("float ge", F.probability >= 0.5, ["o1", "o2"]),
    ("float is null", F.probability.isnull(), ["o3"]),
    ("enum ne", F.status != "open", ["o2", "o3"]),
]

# order_by -> expected ids, by hand from _accounts()
_ACCOUNT_ORDERS: list[tuple[Any, list[str]]] = [
    ((), ["a1", "a2", "a3", "a4", "a5"]),
    ("employees", ["a3", "a2", "a4", "a1", "a5"]),
    ("-employees", ["a5", "a1", "a4", "a2", "a3"]),
    ("country", ["a3", "a4", "a2", "a1", "a5"]),
    ("-country", ["a1", "a5", "a2", "a4", "a3"]),
    (["country", "-employees"], ["a3", "a4", "a2", "a5", "a1"]),
    ("created_at", ["a3", "a1", "a5", "a4", "a2"]),
    ("-created_at", ["a2", "a4", "a1", "a5", "a3"]),
    ("account_type", ["a1", "a4", "a5", "a2", "a3"]),
    ("name", ["a1", "a2", "a3", "a4", "a5"]),
    ("-annual_revenue", ["a1", "a2", "a4", "a3", "a5"]),
    ("custom.score", ["a2", "a4", "a5", "a3", "a1"]),
    ("-realignment_locked", ["a1", "a2", "a3", "a4", "a5"]),
]


class StoreContract:
    """Contract tests for a :class:`~crmkit.store.Store`; subclass and add a ``store`` fixture.

    Every test gets a fresh, empty store from the fixture.
    """

    @pytest.fixture
    def store(self) -> Store:
        """Override this fixture to return a fresh, empty store."""
        raise NotImplementedError("subclasses of StoreContract must define a 'store' fixture")

    @pytest.fixture
    def sample_accounts(self, store: Store) -> list[Account]:
        """The five query-test accounts, added to ``store``."""
        return store.accounts.add_many(_accounts())

    # -- protocol --------------------------------------------------------------------------

    def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)

    @pytest.mark.parametrize("record_type", RECORD_TYPES, ids=lambda t: t.__name__)
    def test_repository_per_record_type(self, store: Store, record_type: type[Any]) -> None:
        repo = store.repository(record_type)
        assert repo.record_type is record_type
        assert len(repo) == 0
        assert list(repo) == []

    def test_registered_record_types(self, store: Store) -> None:
        """Every type registered with ``crmkit.registry.register_record`` (none: nothing
        to check) has a repository that keeps the contract's basic promises."""
        for record_type in record_types()[len(RECORD_TYPES) :]:
            repo = store.repository(record_type)
            assert repo.record_type is record_type
            assert len(repo) == 0
            first = repo.add(build(record_type, id="r-2"))
            assert first.version == 1
            assert repo.get("r-2") == first
            with pytest.raises(AlreadyExists):
                repo.add(build(record_type, id="r-2"))
            batch = [build(record_type, id="r-1"), build(record_type, id="r-3")]
            with pytest.raises(BatchError):
                repo.add_many([*batch, build(record_type, id="r-2")])
            assert len(repo) == 1
            repo.add_many(batch)
            assert _ids(list(repo)) == ["r-1", "r-2", "r-3"]
            assert _ids(repo.query(F.id.isin(["r-3", "r-1"]), order_by="-id")) == ["r-3", "r-1"]
            assert repo.count(F.id != "r-2") == 2
            assert repo.columns(["id"])["id"].tolist() == ["r-1", "r-2", "r-3"]
            second = repo.update(first)
            assert second.version == 2
            with pytest.raises(ConflictError):
                repo.update(first)
            try:
                with store.transaction():
                    repo.delete("r-1")
                    raise _Boom
            except _Boom:
                pass
            assert "r-1" in repo
            repo.delete("r-2", expected_version=2)
            with pytest.raises(NotFound):
                repo.get("r-2")
            with pytest.raises(ValidationError):
                repo.add(build(Account, id="r-9"))
            for record_id in ("r-1", "r-3"):
                repo.delete(record_id)

    # -- get / find / add ------------------------------------------------------------------

    @pytest.mark.parametrize("record_type", RECORD_TYPES, ids=lambda t: t.__name__)
    def test_add_then_get(self, store: Store, record_type: type[Any]) -> None:
        repo = store.repository(record_type)
        record = build(record_type, id="x-1")
        if isinstance(record, CampaignMember):  # a member needs its campaign
            store.campaigns.add(Campaign(id=record.campaign_id, name="Campaign"))
        stored = repo.add(record)
        assert stored.version == 1
        assert stored == attrs.evolve(record, version=1)
        assert repo.get("x-1") == stored
        assert repo.find("x-1") == stored
        assert "x-1" in repo
        assert len(repo) == 1

    def test_an_id_that_is_not_valid_unicode_is_simply_not_found(self, store: Store) -> None:
        bad = "acc-\ud800"
        with pytest.raises(NotFound):
            store.accounts.get(bad)
        assert store.accounts.find(bad) is None
        assert bad not in store.accounts
        with pytest.raises(NotFound):
            store.accounts.delete(bad)

    @pytest.mark.parametrize("record_type", [Account, Lead, Activity], ids=lambda t: t.__name__)
    def test_get_missing_raises_not_found(self, store: Store, record_type: type[Any]) -> None:
        repo = store.repository(record_type)
        with pytest.raises(NotFound) as info:
            repo.get("nope")
        assert info.value.record == record_type.__name__
        assert info.value.record_id == "nope"
        assert isinstance(info.value, LookupError)
        assert repo.find("nope") is None
        assert "nope" not in repo

    def test_add_ignores_the_version_passed_in(self, store: Store) -> None:
        stored = store.accounts.add(Account(id="a", name="A", version=7))
        assert stored.version == 1
        assert store.accounts.get("a").version == 1

    @pytest.mark.parametrize("record_type", [Account, Opportunity, Rep], ids=lambda t: t.__name__)
    def test_add_existing_raises_already_exists(
        self, store: Store, record_type: type[Any]
    ) -> None:
        repo = store.repository(record_type)
        first = repo.add(build(record_type, id="dup"))
        with pytest.raises(AlreadyExists) as info:
            repo.add(build(record_type, id="dup", custom={"changed": True}))
        assert info.value.record_id == "dup"
        assert repo.get("dup") == first
        assert len(repo) == 1

    # -- put -------------------------------------------------------------------------------

    def test_put_inserts_then_replaces_bumping_version(self, store: Store) -> None:
        inserted = store.leads.put(Lead(id="l1", email="ada@example.com", version=9))
        assert inserted.version == 1
        replaced = store.leads.put(Lead(id="l1", email="bob@example.com"))
        assert replaced.version == 2
        assert replaced.email == "bob@example.com"
        assert store.leads.get("l1") == replaced
        assert len(store.leads) == 1

    # -- update ----------------------------------------------------------------------------

    def test_update_checks_the_version_you_read(self, store: Store) -> None:
        v1 = store.accounts.add(Account(id="a", name="Acme"))
        v2 = store.accounts.update(attrs.evolve(v1, employees=10))
        assert v2.version == 2
        assert v2.employees == 10
        assert store.accounts.get("a") == v2
        with pytest.raises(ConflictError) as info:
            store.accounts.update(attrs.evolve(v1, employees=99))  # stale: read at v1
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert info.value.record_id == "a"
        assert store.accounts.get("a") == v2

    def test_update_with_explicit_expected_version(self, store: Store) -> None:
        store.accounts.add(Account(id="a", name="Acme"))
        fresh = Account(id="a", name="Acme Corp")  # version 0, not read from the store
        updated = store.accounts.update(fresh, expected_version=1)
        assert updated.version == 2
        assert updated.name == "Acme Corp"
        with pytest.raises(ConflictError):
            store.accounts.update(fresh, expected_version=1)
        with pytest.raises(ConflictError):
            store.accounts.update(fresh, expected_version=3)
        assert store.accounts.get("a") == updated

    def test_update_missing_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.leads.update(Lead(id="ghost", version=1))
        assert "ghost" not in store.leads

    # -- delete ----------------------------------------------------------------------------

    def test_delete(self, store: Store) -> None:
        store.leads.add_many([Lead(id="l1"), Lead(id="l2")])
        store.leads.delete("l1")
        assert "l1" not in store.leads
        assert store.leads.find("l1") is None
        assert _ids(list(store.leads)) == ["l2"]
        with pytest.raises(NotFound):
            store.leads.delete("l1")
        with pytest.raises(NotFound):
            store.leads.get("l1")

    def test_delete_with_expected_version(self, store: Store) -> None:
        v1 = store.leads.add(Lead(id="l1"))
        store.leads.update(attrs.evolve(v1, email="x@example.com"))
        with pytest.raises(ConflictError) as info:
            store.leads.delete("l1", expected_version=1)
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert "l1" in store.leads
        store.leads.delete("l1", expected_version=2)
        assert "l1" not in store.leads

    def test_deleted_id_can_be_added_again(self, store: Store) -> None:
        store.accounts.add(Account(id="a", name="Old"))
        store.accounts.delete("a")
        again = store.accounts.add(Account(id="a", name="New"))
        assert again.version == 1
        assert store.accounts.get("a").name == "New"

    # -- batches ---------------------------------------------------------------------------

    def test_add_many(self, store: Store) -> None:
        batch = [Account(id=f"a{i}", name=f"Account {i}", version=3) for i in range(5)]
        stored = store.accounts.add_many(batch)
        assert [r.version for r in stored] == [1] * 5
        assert stored == [attrs.evolve(r, version=1) for r in batch]
        assert list(store.accounts) == stored
        assert store.accounts.add_many([]) == []

    def test_add_many_reports_every_bad_record_and_writes_nothing(self, store: Store) -> None:
        existing = store.accounts.add(Account(id="old", name="Old"))
        batch: list[Any] = [
            Account(id="n1", name="New 1"),
            Lead(id="n2"),  # wrong type
            Account(id="n1", name="Again"),  # duplicate in the batch
            Account(id="old", name="Clash"),  # already stored
            Account(id="n3", name="New 3"),
        ]
        with pytest.raises(BatchError) as info:
            store.accounts.add_many(batch)
        assert [index for index, _ in info.value.errors] == [1, 2, 3]
        assert all(isinstance(err, CrmError) for _, err in info.value.errors)
        assert isinstance(info.value, ValidationError)
        assert list(store.accounts) == [existing]

    def test_add_many_accepts_any_iterable(self, store: Store) -> None:
        stored = store.leads.add_many(Lead(id=f"l{i}") for i in range(3))
        assert _ids(stored) == ["l0", "l1", "l2"]
        assert len(store.leads) == 3

    def test_put_many_inserts_and_replaces(self, store: Store) -> None:
        store.leads.add(Lead(id="l1", company="Old"))
        stored = store.leads.put_many([Lead(id="l1", company="New"), Lead(id="l2")])
        assert [(r.id, r.version) for r in stored] == [("l1", 2), ("l2", 1)]
        assert store.leads.get("l1").company == "New"
        assert list(store.leads) == stored

    def test_put_many_is_atomic(self, store: Store) -> None:
        before = store.leads.add(Lead(id="l1", company="Old"))
        batch: list[Any] = [
            Lead(id="l1", company="New"),
            Lead(id="l2"),
            Lead(id="l2"),  # duplicate in the batch
            Account(id="l3", name="Wrong type"),
        ]
        with pytest.raises(BatchError) as info:
            store.leads.put_many(batch)
        assert [index for index, _ in info.value.errors] == [2, 3]
        assert list(store.leads) == [before]

    # -- queries ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("criteria", "expected"),
        [(c, e) for _, c, e in _ACCOUNT_QUERIES],
        ids=[name for name, _, _ in _ACCOUNT_QUERIES],
    )
    def test_query_accounts(
        self, store: Store, sample_accounts: list[Account], criteria: Any, expected: list[str]
    ) -> None:
        assert _ids(store.accounts.query(criteria)) == expected
        assert store.accounts.count(criteria) == len(expected)
        bound = bind(criteria, Account)
        assert _ids(store.accounts.query(bound)) == expected

    @pytest.mark.parametrize(
        ("criteria", "expected"),
        [(c, e) for _, c, e in _OPPORTUNITY_QUERIES],
        ids=[name for name, _, _ in _OPPORTUNITY_QUERIES],
    )
    def test_query_opportunities(self, store: Store, criteria: Any, expected: list[str]) -> None:
        store.opportunities.add_many(_opportunities())
        assert _ids(store.opportunities.query(criteria)) == expected
        assert store.opportunities.count(criteria) == len(expected)

    def test_query_returns_stored_records(
        self, store: Store, sample_accounts: list[Account]
    ) -> None:
        by_id = {a.id: a for a in sample_accounts}
        for found in store.accounts.query(F.employees >= 0):
            assert found == by_id[found.id]
            assert found.version == 1

    def test_query_activities_by_kind_and_time(self, store: Store) -> None:
        at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        store.activities.add_many(
            [
                Activity(id="e1", kind=ActivityKind.EMAIL_SENT, at=at, account_id="a1"),
                Activity(id="e2", kind=ActivityKind.CALL, at=at.replace(hour=10), account_id="a1"),
                Activity(id="e3", kind=ActivityKind.CALL, at=at.replace(day=6), account_id="a2"),
            ]
        )
        calls_on_5th = (F.kind == "call") & (F.at < datetime(2026, 1, 6, tzinfo=UTC))
        assert _ids(store.activities.query(calls_on_5th)) == ["e2"]
        assert _ids(store.activities.query(F.account_id == "a1", order_by="-at")) == ["e2", "e1"]

    @pytest.mark.parametrize(
        ("order_by", "expected"),
        _ACCOUNT_ORDERS,
        ids=[str(o) for o, _ in _ACCOUNT_ORDERS],
    )
    def test_order_by(
        self, store: Store, sample_accounts: list[Account], order_by: Any, expected: list[str]
    ) -> None:
        assert _ids(store.accounts.query(order_by=order_by)) == expected

    def test_order_by_with_criteria(self, store: Store, sample_accounts: list[Account]) -> None:
        found = store.accounts.query(F.country.notnull(), order_by="-employees", limit=2)
        assert _ids(found) == ["a5", "a1"]

    def test_order_by_dates(self, store: Store) -> None:
        store.opportunities.add_many(_opportunities())
        assert _ids(store.opportunities.query(order_by="close_date")) == ["o3", "o1", "o2"]
        assert _ids(store.opportunities.query(order_by="-close_date")) == ["o2", "o1", "o3"]
        assert _ids(store.opportunities.query(order_by="-probability")) == ["o2", "o1", "o3"]

    def test_limit_and_offset_page_through(
        self, store: Store, sample_accounts: list[Account]
    ) -> None:
        order = ["a3", "a2", "a4", "a1", "a5"]  # by employees, missing first
        pages = [
            _ids(store.accounts.query(order_by="employees", limit=2, offset=offset))
            for offset in (0, 2, 4)
        ]
        assert pages == [order[0:2], order[2:4], order[4:]]
        assert store.accounts.query(limit=0) == []
        assert store.accounts.query(offset=10) == []
        assert _ids(store.accounts.query(offset=3)) == ["a4", "a5"]
        assert _ids(store.accounts.query(limit=10)) == ["a1", "a2", "a3", "a4", "a5"]

    @pytest.mark.parametrize(
        "order_by",
        [
            "nope",
            "-",
            "",
            "custom.not-an-identifier",
            "custom",
            ["name", None],
            5,
        ],
        ids=repr,
    )
    def test_bad_order_by_raises_criteria_error(
        self, store: Store, sample_accounts: list[Account], order_by: Any
    ) -> None:
        with pytest.raises(CriteriaError):
            store.accounts.query(order_by=order_by)

    @pytest.mark.parametrize(
        ("limit", "offset"), [(-1, 0), ("2", 0), (True, 0), (1.5, 0), (None, -1), (None, "1")]
    )
    def test_bad_paging_raises_criteria_error(
        self, store: Store, sample_accounts: list[Account], limit: Any, offset: Any
    ) -> None:
        with pytest.raises(CriteriaError):
            store.accounts.query(limit=limit, offset=offset)

    def test_bad_criteria_raise_criteria_error(self, store: Store) -> None:
        with pytest.raises(CriteriaError):
            store.accounts.query(F.employes >= 5)
        with pytest.raises(CriteriaError):
            store.accounts.count({"field": "account_type", "op": "==", "value": "friend"})
        with pytest.raises(CriteriaError):
            store.accounts.query({"field": "name", "op": "~=", "value": "x"})
        with pytest.raises(CriteriaError):
            store.accounts.columns(["id"], F.employees == "many")

    def test_criteria_bound_to_another_type(self, store: Store) -> None:
        lead_criteria = bind(F.email == "x@example.com", Lead)
        with pytest.raises(CriteriaError):
            store.accounts.query(lead_criteria)
        with pytest.raises(CriteriaError):
            store.accounts.count(lead_criteria)
        with pytest.raises(CriteriaError):
            store.accounts.columns(["id"], lead_criteria)

    def test_count(self, store: Store, sample_accounts: list[Account]) -> None:
        assert store.accounts.count() == 5
        assert store.accounts.count(F.country == "US") == 2
        assert store.leads.count() == 0

    # -- columns ---------------------------------------------------------------------------

    def test_columns_dtypes_and_values(self, store: Store, sample_accounts: list[Account]) -> None:
        fields = [
            "id",
            "name",
            "country",
            "account_type",
            "employees",
            "annual_revenue",
            "realignment_locked",
            "created_at",
            "custom.tier",
            "custom.score",
        ]
        cols = store.accounts.columns(fields)
        assert list(cols) == fields
        kinds = {name: cols[name].dtype.kind for name in fields}
        assert kinds == {
            "id": "U",
            "name": "U",
            "country": "U",
            "account_type": "U",
            "employees": "f",
            "annual_revenue": "f",
            "realignment_locked": "b",
            "created_at": "M",
            "custom.tier": "O",  # text and a number
            "custom.score": "f",
        }
        assert cols["created_at"].dtype == np.dtype("datetime64[us]")
        assert cols["employees"].dtype == np.float64
        assert cols["id"].tolist() == ["a1", "a2", "a3", "a4", "a5"]
        assert cols["country"].tolist() == ["US", "FR", "", "CA", "US"]
        assert cols["account_type"].tolist() == [
            "customer",
            "partner",
            "prospect",
            "customer",
            "other",
        ]
        np.testing.assert_array_equal(cols["employees"], [1200, 300, np.nan, 500, 2000])
        np.testing.assert_array_equal(
            cols["annual_revenue"], [5_000_000.0, 250_000.5, np.nan, 0.0, np.nan]
        )
        assert cols["realignment_locked"].tolist() == [True, False, False, False, False]
        expected_times = np.array(
            [
                "2024-01-01T00:00",
                "2024-06-01T10:00",
                "NaT",
                "2024-01-01T04:00",
                "2024-01-01T00:00",
            ],
            dtype="datetime64[us]",
        )
        np.testing.assert_array_equal(cols["created_at"], expected_times)
        assert cols["custom.tier"].tolist() == ["gold", "silver", None, 3, None]
        np.testing.assert_array_equal(cols["custom.score"], [7.0, np.nan, 2.5, np.nan, np.nan])

    def test_columns_of_dates_and_filtered(self, store: Store) -> None:
        store.opportunities.add_many(_opportunities())
        cols = store.opportunities.columns(
            ["id", "close_date", "probability", "status", "amount"], F.status != "lost"
        )
        assert cols["id"].tolist() == ["o1", "o2"]
        assert cols["close_date"].dtype == np.dtype("datetime64[D]")
        np.testing.assert_array_equal(
            cols["close_date"], np.array(["2024-03-31", "2024-04-01"], dtype="datetime64[D]")
        )
        np.testing.assert_array_equal(cols["probability"], [0.5, 1.0])
        assert cols["status"].tolist() == ["open", "won"]
        np.testing.assert_array_equal(cols["amount"], [100.10, 900.0])

    def test_columns_empty_and_unknown_field(self, store: Store) -> None:
        cols = store.leads.columns(["id", "employees"])
        assert len(cols["id"]) == 0
        assert cols["employees"].dtype == np.float64
        with pytest.raises(CriteriaError):
            store.leads.columns(["no_such_field"])

    # -- iteration -------------------------------------------------------------------------

    def test_iteration_is_in_id_order(self, store: Store, sample_accounts: list[Account]) -> None:
        assert _ids(list(store.accounts)) == ["a1", "a2", "a3", "a4", "a5"]
        assert len(store.accounts) == 5
        assert "a3" in store.accounts
        assert "a9" not in store.accounts
        assert 3 not in store.accounts

    # -- wrong types -----------------------------------------------------------------------

    def test_wrong_record_type_raises_validation_error(self, store: Store) -> None:
        lead: Any = Lead(id="l1")
        with pytest.raises(ValidationError):
            store.accounts.add(lead)
        with pytest.raises(ValidationError):
            store.accounts.put(lead)
        store.leads.add(lead)
        with pytest.raises(ValidationError):
            store.accounts.update(lead)
        with pytest.raises(BatchError):
            store.accounts.add_many([lead])
        assert len(store.accounts) == 0

    # -- transactions ----------------------------------------------------------------------

    def test_transaction_commits(self, store: Store) -> None:
        with store.transaction():
            store.accounts.add(Account(id="a", name="A"))
            store.leads.add(Lead(id="l"))
            store.save_state("pool", {"next": 1})
        assert "a" in store.accounts
        assert "l" in store.leads
        assert store.load_state("pool") == {"next": 1}

    def test_transaction_rolls_back_on_exception(self, store: Store) -> None:
        kept = store.accounts.add(Account(id="keep", name="Keep"))
        gone = store.accounts.add(Account(id="gone", name="Gone"))
        store.save_state("pool", {"next": 1})

        def work() -> None:
            with store.transaction():
                store.accounts.update(attrs.evolve(kept, name="Changed"))
                store.accounts.delete("gone")
                store.accounts.add(Account(id="new", name="New"))
                store.leads.add_many([Lead(id="l1"), Lead(id="l2")])
                store.save_state("pool", {"next": 2})
                store.save_state("other", {"x": 1})
                raise _Boom

        with pytest.raises(_Boom):
            work()
        assert list(store.accounts) == [gone, kept]
        assert len(store.leads) == 0
        assert store.load_state("pool") == {"next": 1}
        assert store.load_state("other") is None

    def test_failed_batch_inside_a_transaction_leaves_earlier_work(self, store: Store) -> None:
        with store.transaction():
            store.leads.add(Lead(id="l1"))
            with pytest.raises(BatchError):
                store.leads.add_many([Lead(id="l2"), Lead(id="l1")])
            with pytest.raises(AlreadyExists):
                store.leads.add(Lead(id="l1"))
        assert _ids(list(store.leads)) == ["l1"]

    def test_nested_transaction_inner_failure_is_undone_alone(self, store: Store) -> None:
        with store.transaction():
            store.accounts.add(Account(id="outer", name="Outer"))
            store.save_state("pool", {"n": 1})

            def inner() -> None:
                with store.transaction():
                    store.accounts.add(Account(id="inner", name="Inner"))
                    store.accounts.update(attrs.evolve(store.accounts.get("outer"), name="X"))
                    store.save_state("pool", {"n": 2})
                    raise _Boom

            with pytest.raises(_Boom):
                inner()
            assert "inner" not in store.accounts
            assert store.accounts.get("outer").name == "Outer"
            assert store.load_state("pool") == {"n": 1}
            store.leads.add(Lead(id="after"))
        assert _ids(list(store.accounts)) == ["outer"]
        assert store.accounts.get("outer").version == 1
        assert "after" in store.leads
        assert store.load_state("pool") == {"n": 1}

    def test_nested_transaction_outer_failure_undoes_inner_success(self, store: Store) -> None:

        def work() -> None:
            with store.transaction():
                with store.transaction():
                    store.accounts.add(Account(id="inner", name="Inner"))
                    store.save_state("pool", {"n": 2})
                raise _Boom

        with pytest.raises(_Boom):
            work()
        assert len(store.accounts) == 0
        assert store.load_state("pool") is None

    # -- partial updates -------------------------------------------------------------------

    def test_patch_changes_only_the_named_fields(
        self, store: Store, sample_accounts: list[Account]
    ) -> None:
        before = store.accounts.get("a2")
        patched = store.accounts.patch("a2", employees=321, annual_revenue="12.50")
        assert patched == attrs.evolve(
            before, employees=321, annual_revenue=Decimal("12.50"), version=before.version + 1
        )
        assert store.accounts.get("a2") == patched
        assert store.accounts.query(F.employees == 321) == [patched]

    def test_patch_checks_the_version_and_the_values(
        self, store: Store, sample_accounts: list[Account]
    ) -> None:
        store.accounts.patch("a1", expected_version=1, name="Acme Corp")
        with pytest.raises(ConflictError):
            store.accounts.patch("a1", expected_version=1, name="Stale")
        with pytest.raises(ValidationError, match="employees"):
            store.accounts.patch("a1", employees=-1)
        with pytest.raises(ValidationError, match="nope"):
            store.accounts.patch("a1", nope=1)
        with pytest.raises(ValidationError, match="version"):
            store.accounts.patch("a1", version=7)
        with pytest.raises(ValidationError, match="id"):
            store.accounts.patch("a1", id="a9")
        with pytest.raises(NotFound):
            store.accounts.patch("missing", name="x")
        assert store.accounts.get("a1").name == "Acme Corp"
        assert store.accounts.get("a1").version == 2

    def test_patch_where_applies_only_when_the_record_matches(
        self, store: Store, sample_accounts: list[Account]
    ) -> None:
        before = store.accounts.get("a2")
        patched = store.accounts.patch(
            "a2", where=(F.country == "FR") & (F.employees < 1000), employees=301
        )
        assert patched == attrs.evolve(before, employees=301, version=before.version + 1)
        assert store.accounts.get("a2") == patched
        again = store.accounts.patch(  # the dict form, with a version check as well
            "a2",
            expected_version=2,
            where={"field": "custom.tier", "op": "==", "value": "silver"},
            name="Acme EU",
        )
        assert (again.name, again.version) == ("Acme EU", 3)

    def test_patch_where_refuses_a_record_that_does_not_match(
        self, store: Store, sample_accounts: list[Account]
    ) -> None:
        before = list(store.accounts)
        with pytest.raises(ConflictError, match=r"Account 'a1'.*condition.*country") as info:
            store.accounts.patch("a1", where=F.country == "FR", name="Never")
        assert (info.value.record, info.value.record_id) == ("Account", "a1")
        with pytest.raises(ConflictError, match=r"Account 'a3'.*condition"):
            store.accounts.patch("a3", where=F.employees >= 0, name="Never")  # missing: no match
        with pytest.raises(ConflictError, match="version 1, not 7"):  # the version is told first
            store.accounts.patch("a1", expected_version=7, where=F.country == "FR", name="N")
        with pytest.raises(NotFound):
            store.accounts.patch("missing", where=F.country == "FR", name="Never")
        with pytest.raises(CriteriaError):
            store.accounts.patch("a1", where=F.nope == 1, name="Never")
        assert list(store.accounts) == before  # nothing written
        with store.transaction():  # inside a transaction, after a read, the same answer
            store.accounts.get("a1")
            with pytest.raises(ConflictError, match="condition"):
                store.accounts.patch("a1", expected_version=1, where=F.country == "FR", name="N")
        assert list(store.accounts) == before

    def test_patch_many_where_is_all_or_nothing(
        self, store: Store, sample_accounts: list[Account]
    ) -> None:
        before = list(store.accounts)
        with pytest.raises(BatchError) as info:
            store.accounts.patch_many(
                {"a1": {"name": "A"}, "a2": {"name": "B"}, "missing": {"name": "C"}},
                where=F.country == "US",
            )
        assert [index for index, _ in info.value.errors] == [1, 2]
        assert isinstance(info.value.errors[0][1], ConflictError)
        assert isinstance(info.value.errors[1][1], NotFound)
        assert list(store.accounts) == before
        done = store.accounts.patch_many(
            {"a1": {"name": "A"}, "a5": {"name": "E"}}, where=F.country == "US"
        )
        assert [(a.id, a.name, a.version) for a in done] == [("a1", "A", 2), ("a5", "E", 2)]

    def test_patch_rechecks_criteria_when_the_record_type_they_read_changes(
        self, store: Store
    ) -> None:
        rule = store.routing_rules.add(
            build(RoutingRule, id="r1", criteria=(F.country == "US").to_dict())
        )
        with pytest.raises(ValidationError, match="criteria"):
            store.routing_rules.patch("r1", applies_to="Activity")
        assert store.routing_rules.get("r1") == rule

    def test_patch_many_is_atomic_and_reports_every_bad_entry(
        self, store: Store, sample_accounts: list[Account]
    ) -> None:
        before = list(store.accounts)
        with pytest.raises(BatchError) as info:
            store.accounts.patch_many(
                {
                    "a1": {"employees": 5},
                    "missing": {"employees": 6},
                    "a3": {"employees": -7},
                    "a4": {"nope": 1},
                    "a5": {"name": "Late"},
                },
                expected_versions={"a5": 9},
            )
        assert [index for index, _ in info.value.errors] == [1, 2, 3, 4]
        assert list(store.accounts) == before
        done = store.accounts.patch_many(
            {"a1": {"employees": 5}, "a3": {"country": "DE", "employees": 8}},
            expected_versions={"a1": 1},
        )
        assert [(a.id, a.employees, a.version) for a in done] == [("a1", 5, 2), ("a3", 8, 2)]
        assert store.accounts.get("a3").country == "DE"
        assert [a for a in store.accounts if a.id not in ("a1", "a3")] == [
            a for a in before if a.id not in ("a1", "a3")
        ]

    # -- rules that span records -----------------------------------------------------------

    def test_campaign_members_need_a_campaign_and_join_once(self, store: Store) -> None:
        store.campaigns.add(Campaign(id="c1", name="Launch"))
        first = store.campaign_members.add(
            CampaignMember(id="m1", campaign_id="c1", contact_id="p1")
        )
        with pytest.raises(ValidationError, match=r"'c9'.*no such campaign"):
            store.campaign_members.add(CampaignMember(id="m2", campaign_id="c9", contact_id="p2"))
        with pytest.raises(ValidationError, match="already in campaign 'c1' as member 'm1'"):
            store.campaign_members.add(CampaignMember(id="m3", campaign_id="c1", contact_id="p1"))
        with pytest.raises(BatchError) as info:
            store.campaign_members.add_many(
                [
                    CampaignMember(id="m4", campaign_id="c1", lead_id="l1"),
                    CampaignMember(id="m5", campaign_id="c1", lead_id="l1"),
                    CampaignMember(id="m6", campaign_id="nope", contact_id="p3"),
                ]
            )
        assert [index for index, _ in info.value.errors] == [1, 2]
        store.campaign_members.patch("m1", contact_id="p1")  # the same member: allowed
        store.campaign_members.add(CampaignMember(id="m7", campaign_id="c1", contact_id="p7"))
        with pytest.raises(ValidationError, match="already in campaign"):
            store.campaign_members.patch("m7", contact_id="p1")
        assert [m.id for m in store.campaign_members] == ["m1", "m7"]
        assert store.campaign_members.get("m7").contact_id == "p7"  # the refused patch undone
        assert store.campaign_members.get("m1").version == first.version + 1
        replaced = store.campaign_members.put(
            CampaignMember(id="m1", campaign_id="c1", contact_id="p1", status=MemberStatus.SENT)
        )
        assert replaced.status == "sent"

    # -- declared indexes ------------------------------------------------------------------

    def test_declared_indexes_are_listed_and_idempotent(self, store: Store) -> None:
        assert store.indexes(Account) == []
        assert store.ensure_index(Account, "industry") == ("industry",)
        assert store.ensure_index(Account, "industry") == ("industry",)
        assert store.ensure_index(Account, "country", "custom.tier") == ("country", "custom.tier")
        assert sorted(store.indexes(Account)) == [("country", "custom.tier"), ("industry",)]
        assert store.indexes(Contact) == []

    @pytest.mark.parametrize(
        "fields",
        [(), ("nope",), ("custom.not a name",), ("country", "country"), ("custom",), (3,)],
        ids=["none", "unknown", "bad custom", "twice", "custom mapping", "not text"],
    )
    def test_bad_index_fields_raise_validation_error(self, store: Store, fields: Any) -> None:
        with pytest.raises(ValidationError, match="Account"):
            store.ensure_index(Account, *fields)
        assert store.indexes(Account) == []

    @pytest.mark.parametrize(
        ("criteria", "expected"),
        [(c, e) for _, c, e in _ACCOUNT_QUERIES],
        ids=[name for name, _, _ in _ACCOUNT_QUERIES],
    )
    def test_declared_indexes_change_no_answer(
        self, store: Store, sample_accounts: list[Account], criteria: Any, expected: list[str]
    ) -> None:
        for fields in [
            ("country",),
            ("employees",),
            ("annual_revenue",),
            ("created_at",),
            ("custom.tier",),
            ("custom.score",),
            ("account_type", "employees"),
        ]:
            store.ensure_index(Account, *fields)
        assert _ids(store.accounts.query(criteria)) == expected
        assert store.accounts.count(criteria) == len(expected)

    # -- state documents -------------------------------------------------------------------

    def test_state_round_trip(self, store: Store) -> None:
        assert store.load_state("pool") is None
        data = {"order": ["r1", "r2"], "last": {"r1": 3}, "ok": True, "ratio": 0.5, "n": None}
        store.save_state("pool", data)
        loaded = store.load_state("pool")
        assert loaded == data
        assert loaded is not data
        assert loaded is not None
        loaded["order"].append("r3")  # the caller's copy, not the stored one
        assert store.load_state("pool") == data
        store.save_state("pool", {"order": []})
        assert store.load_state("pool") == {"order": []}
        assert store.load_state("other") is None

    def test_state_must_be_json(self, store: Store) -> None:
        with pytest.raises(ValidationError):
            store.save_state("pool", {"when": datetime(2026, 1, 1, tzinfo=UTC)})
        with pytest.raises(ValidationError):
            store.save_state("pool", {"bad": object()})
        assert store.load_state("pool") is None

    # -- properties ------------------------------------------------------------------------

    @settings(
        max_examples=6,
        deadline=None,
        suppress_health_check=_SHARED_FIXTURE,
    )
    @given(data=st.data())
    def test_round_trip_every_record_type(self, store: Store, data: st.DataObject) -> None:
        for record_type in record_types():
            repo = store.repository(record_type)
            record = data.draw(records(record_type), label=record_type.__name__)
            if isinstance(record, CampaignMember):  # a member needs its campaign
                store.campaigns.put(Campaign(id=record.campaign_id, name="Campaign"))
            stored = repo.add(record)
            try:
                assert stored == attrs.evolve(record, version=1)
                assert repo.get(record.id) == stored
                assert repo.query(F.id == record.id) == [stored]
                assert list(repo) == [stored]
            finally:
                repo.delete(record.id)
                if isinstance(record, CampaignMember):
                    store.campaigns.delete(record.campaign_id)

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=_SHARED_FIXTURE,
    )
    @given(data=st.data())
    def test_territory_criteria_survive_the_store(self, store: Store, data: st.DataObject) -> None:
        territory = data.draw(records(Territory, narrow=True))
        stored = store.territories.put(territory)
        try:
            again = store.territories.get(territory.id)
            assert again.criteria == territory.criteria
            assert again == stored
        finally:
            store.territories.delete(territory.id)
