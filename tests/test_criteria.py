"""The criteria language: worked examples, null semantics, errors, and three-way agreement.

Expected results are worked out by hand from the small data sets below. The agreement
property checks that ``matches`` (one record), ``mask`` (numpy columns) and the SQLite
store's SQL select exactly the same records for random criteria and records.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crmkit._columns import columns_of
from crmkit._schema import QUERYABLE_KINDS, schema_of
from crmkit._time import micros
from crmkit.criteria import OPERATORS, AllOf, AnyOf, Condition, F, Not, bind, parse
from crmkit.errors import CriteriaError, CrmError
from crmkit.records import Account, Activity, Lead, Opportunity
from crmkit.testing.strategies import criteria_for, records

UTC_NOON = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)

ACCOUNTS = [
    Account(
        id="a1",
        name="Acme",
        country="US",
        employees=1200,
        annual_revenue=Decimal("10.5"),
        realignment_locked=True,
        account_type="customer",
        created_at=UTC_NOON,
        custom={"tier": "gold", "seats": 10},
    ),
    Account(
        id="a2",
        name="Beta",
        country="CA",
        employees=50,
        annual_revenue=Decimal(0),
        created_at=datetime(2024, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=2))),  # 11:00Z
        custom={"tier": 2, "seats": "many"},
    ),
    Account(id="a3", name="gamma", custom={"tier": True}),
]


def matching(criteria: Any, records: list[Any] = ACCOUNTS) -> list[str]:
    """Ids selected by the predicate, checked against the numpy mask on the way."""
    record_type = type(records[0])
    bound = bind(criteria, record_type)
    by_predicate = [r.id for r in records if bound.matches(r)]
    columns = columns_of(record_type, records, sorted(bound.fields | {"id"}))
    by_mask = [r.id for r, hit in zip(records, bound.mask(columns), strict=True) if hit]
    assert by_mask == by_predicate, (criteria, by_predicate, by_mask)
    return by_predicate


# -- worked examples, one per operator ---------------------------------------------------

EXAMPLES: list[tuple[Any, list[str]]] = [
    (F.country == "US", ["a1"]),
    (F.country != "US", ["a2", "a3"]),  # missing country: "not US"
    (F.employees < 100, ["a2"]),
    (F.employees <= 1200, ["a1", "a2"]),
    (F.employees > 50, ["a1"]),
    (F.employees >= 50, ["a1", "a2"]),
    (F.country.isin(["US", "MX"]), ["a1"]),
    (F.country.notin(["US", "MX"]), ["a2", "a3"]),
    (F.employees.between(50, 1200), ["a1", "a2"]),
    (F.employees.between(51, 1199), []),
    (F.employees.between(1200, 50), []),  # low > high matches nothing
    (F.name.startswith("A"), ["a1"]),
    (F.name.startswith("a"), []),  # case-sensitive
    (F.name.contains("mm"), ["a3"]),
    (F.country.isnull(), ["a3"]),
    (F.country.notnull(), ["a1", "a2"]),
    (F.custom["tier"].exists(), ["a1", "a2", "a3"]),
    (F.custom["seats"].exists(False), ["a3"]),
    (F.annual_revenue > 1, ["a1"]),
    (F.annual_revenue == 0, ["a2"]),
    (F.annual_revenue == Decimal("10.50"), ["a1"]),
    (F.realignment_locked == True, ["a1"]),  # noqa: E712 - builds criteria
    (F.realignment_locked.isin([False]), ["a2", "a3"]),
    (F.account_type == "customer", ["a1"]),
    (F.account_type.notin(["customer"]), ["a2", "a3"]),
    (F.created_at > datetime(2024, 1, 1, 11, 30, tzinfo=UTC), ["a1"]),
    (F.created_at == datetime(2024, 1, 1, 6, 0, tzinfo=timezone(timedelta(hours=-5))), ["a2"]),
    (F.created_at.between(UTC_NOON - timedelta(hours=1), UTC_NOON), ["a1", "a2"]),
    # custom fields compare in the domain of the criterion's value
    (F.custom["tier"] == "gold", ["a1"]),
    (F.custom["tier"] == 2, ["a2"]),
    (F.custom["tier"] == True, ["a3"]),  # noqa: E712
    (F.custom["tier"] >= 1, ["a2"]),  # True is a bool, never a number
    (F.custom["seats"] > 5, ["a1"]),
    (F.custom["seats"] > "a", ["a2"]),
    (F.custom["seats"] != 10, ["a2", "a3"]),
    (F.custom["nothing"].isnull(), ["a1", "a2", "a3"]),
    # combinators
    ((F.country == "US") | (F.employees < 100), ["a1", "a2"]),
    ((F.country == "US") & (F.employees < 100), []),
    (~(F.employees >= 100), ["a2", "a3"]),  # complement: missing employees included
    (AllOf(items=()), ["a1", "a2", "a3"]),
    (AnyOf(items=()), []),
    (Not(item=AnyOf(items=())), ["a1", "a2", "a3"]),
]


@pytest.mark.parametrize(("criteria", "expected"), EXAMPLES, ids=[repr(c) for c, _ in EXAMPLES])
def test_worked_example(criteria: Any, expected: list[str]) -> None:
    assert matching(criteria) == expected


def test_every_operator_has_a_worked_example() -> None:
    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Condition):
            used.add(node.op)
        elif isinstance(node, (AllOf, AnyOf)):
            for item in node.items:
                walk(item)
        elif isinstance(node, Not):
            walk(node.item)

    for criteria, _ in EXAMPLES:
        walk(criteria)
    assert used == set(OPERATORS)


def test_dates_and_floats() -> None:
    deals = [
        Opportunity(id="o1", name="A", close_date=date(2024, 2, 29), probability=0.25),
        Opportunity(id="o2", name="B", close_date=date(2024, 3, 1), probability=1.0),
        Opportunity(id="o3", name="C", status="won"),
    ]
    assert matching(F.close_date < date(2024, 3, 1), deals) == ["o1"]
    assert matching(F.close_date == "2024-03-01", deals) == ["o2"]  # ISO text is read
    assert matching(F.close_date.isnull(), deals) == ["o3"]
    assert matching(F.probability.between(0.2, 0.3), deals) == ["o1"]
    assert matching(F.status.isin(["won", "lost"]), deals) == ["o3"]


def test_null_semantics_two_valued() -> None:
    """Every condition and its negation split the records exactly in two."""
    for criteria, expected in EXAMPLES:
        negated = matching(~criteria)
        assert sorted(negated + expected) == ["a1", "a2", "a3"]
        assert not set(negated) & set(expected)


def test_missing_values_never_compare() -> None:
    nobody = Account(id="n", name="Nobody")
    for criteria in [
        F.country == "US",
        F.country < "ZZZ",
        F.country > " ",
        F.employees >= 0,
        F.employees <= 10**9,
        F.employees.isin([0]),
        F.created_at < datetime(2200, 1, 1, tzinfo=UTC),
        F.custom["tier"] == "gold",
    ]:
        assert matching(criteria, [nobody]) == []
        assert matching(~criteria, [nobody]) == ["n"]


# -- the two forms -----------------------------------------------------------------------


def test_builder_and_dict_form_are_the_same() -> None:
    built = (F.country.isin(["US", "CA"]) & (F.employees >= 500)) | ~(F.custom["tier"] == "x")
    data = {
        "any": [
            {
                "all": [
                    {"field": "country", "op": "in", "value": ["US", "CA"]},
                    {"field": "employees", "op": ">=", "value": 500},
                ]
            },
            {"not": {"field": "custom.tier", "op": "==", "value": "x"}},
        ]
    }
    assert parse(data) == built
    assert built.to_dict() == data
    assert parse(json.loads(json.dumps(built.to_dict()))) == built


def test_dict_form_of_null_tests_and_between() -> None:
    assert F.x.isnull().to_dict() == {"field": "x", "op": "is null"}
    assert F.x.between(1, 2).to_dict() == {"field": "x", "op": "between", "value": [1, 2]}
    assert F.x.exists().to_dict() == {"field": "x", "op": "exists", "value": True}
    assert parse({"field": "x", "op": "exists"}) == F.x.exists()
    assert parse(None) == AllOf(items=())


def test_datetime_values_round_trip_through_json_with_the_same_meaning() -> None:
    when = datetime(2024, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=2)))
    built = F.created_at >= when
    data = json.loads(json.dumps(built.to_dict()))
    assert data["value"] == "2024-01-01T13:00:00+02:00"
    assert matching(parse(data)) == matching(built) == ["a1", "a2"]


@settings(max_examples=60, deadline=None)
@given(criteria_for(Account, as_dict=False))
def test_json_round_trip_property(criteria: Any) -> None:
    data = criteria.to_dict()
    assert json.loads(json.dumps(data)) == data
    again = parse(json.loads(json.dumps(data)))
    assert again.to_dict() == data


@settings(max_examples=60, deadline=None)
@given(criteria_for(Account, as_dict=False))
def test_any_mapping_and_sequence_parse_like_plain_dicts_and_lists(criteria: Any) -> None:
    """``parse`` reads plain dicts and lists the quick way; other mappings and sequences
    (read-only views, tuples) must give the same criteria."""

    def frozen(data: Any) -> Any:
        if isinstance(data, dict):
            return MappingProxyType({key: frozen(value) for key, value in data.items()})
        if isinstance(data, list):
            return tuple(frozen(item) for item in data)
        return data

    data = criteria.to_dict()
    assert parse(frozen(data)) == parse(data)


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Condition("name", "~=", "x"),
        lambda: parse({"field": "name", "op": "like", "value": "x"}),
        lambda: F.employees.startswith(5),
        lambda: F.name.contains(3),
        lambda: parse({"field": "x", "op": "between", "value": [1]}),
        lambda: parse({"field": "x", "op": "between", "value": [1, 2, 3]}),
        lambda: F.x.between(1, None),
        lambda: F.x == None,  # noqa: E711 - builds criteria
        lambda: F.x.isin(["a", None]),
        lambda: F.x == "",
        lambda: F.x == float("nan"),
        lambda: F.x >= Decimal("NaN"),
        lambda: F.x <= Decimal("-Infinity"),
        lambda: F.x == {"a": 1},
        lambda: parse({"field": "x", "op": "in", "value": "US"}),
        lambda: parse({"field": "x", "op": "is null", "value": 1}),
        lambda: F.x.exists("yes"),
        lambda: (F.x == 1) & 3,
        lambda: parse([1]),
        lambda: parse({"field": "x", "op": "==", "value": 1, "extra": 2}),
        lambda: parse({"all": "x"}),
        lambda: parse({"field": "", "op": "==", "value": 1}),
        lambda: F.name["x"],
        lambda: F.created_at >= datetime(2024, 1, 1),  # naive
        lambda: F.custom["when"].isin([datetime(2024, 1, 1)]),
    ],
)
def test_bad_criteria_fail_when_built(make: Callable[[], Any]) -> None:
    with pytest.raises(CriteriaError):
        make()


def test_naive_datetime_fails_when_built() -> None:
    with pytest.raises(CriteriaError):
        F.created_at >= datetime(2024, 1, 1)  # noqa: B015 - the comparison builds criteria


@pytest.mark.parametrize(
    "criteria",
    [
        F.employes >= 5,  # typo
        F.custom >= 5,  # the custom mapping itself
        F["custom.not-ident"] == 1,
        F.account_type == "friend",  # unknown enum value
        F.account_type < "customer",  # enums do not order
        F.employees == "many",
        F.employees.startswith("5"),
        F.name == 5,
        F.name.isin(["a", 1]),
        F.realignment_locked > False,  # bools do not order
        F.realignment_locked == 1,
        F.created_at >= "2024-01-01T00:00:00",  # naive ISO text
        F.created_at >= "yesterday",
        F.created_at == date(2024, 1, 1),
        F.custom["tier"].isin(["gold", 2]),  # mixed types
    ],
    ids=repr,
)
def test_bad_criteria_fail_when_bound(criteria: Any) -> None:
    with pytest.raises(CriteriaError) as info:
        bind(criteria, Account)
    assert isinstance(info.value, CrmError)
    assert isinstance(info.value, ValueError)


def test_unknown_field_message_names_the_field_and_lists_known_ones() -> None:
    with pytest.raises(CriteriaError, match=r"Account has no field 'employes'.*employees"):
        bind(F.employes >= 5, Account)


def test_bound_fields_and_mask_length_checks() -> None:
    bound = bind((F.country == "US") | (F.custom["tier"] == "gold"), Account)
    assert bound.fields == frozenset({"country", "custom.tier"})
    with pytest.raises(CriteriaError):
        bound.mask({"country": np.array(["US"])})  # custom.tier missing
    with pytest.raises(CriteriaError):
        bound.mask({"country": np.array(["US"]), "custom.tier": np.array(["a", "b"])})


# -- three-way agreement -----------------------------------------------------------------


def _object_columns(record_type: type[Any], rows: list[Any], fields: list[str]) -> dict[str, Any]:
    """Raw Python values in object arrays (None where missing): the other accepted form."""
    result = {}
    for name in fields:
        if name.startswith("custom."):
            values = [r.custom.get(name.removeprefix("custom.")) for r in rows]
        else:
            values = [getattr(r, name) for r in rows]
        column = np.empty(len(values), dtype=object)
        column[:] = values
        result[name] = column
    return result


def _sqlite_store_module() -> Any:
    try:
        import crmkit.store.sqlite as module
    except ImportError:
        return None
    return module


class _RawTable:
    """Fallback while SQLiteStore does not exist: the store's column encodings, by hand."""

    def __init__(self, record_type: type[Any]) -> None:
        self.record_type = record_type
        self.fields = [f for f in schema_of(record_type).fields if f.kind in QUERYABLE_KINDS]
        self.db = sqlite3.connect(":memory:")
        names = ", ".join(f'"{f.name}"' for f in self.fields)
        self.db.execute(f"CREATE TABLE t ({names}, custom TEXT)")

    def ids(self, rows: list[Any], criteria: Any) -> list[str]:
        self.db.execute("DELETE FROM t")
        marks = ", ".join("?" for _ in range(len(self.fields) + 1))
        self.db.executemany(
            f"INSERT INTO t VALUES ({marks})",
            [
                [
                    *(self._encode(f.kind, getattr(r, f.name)) for f in self.fields),
                    json.dumps(r.custom),
                ]
                for r in rows
            ],
        )
        where, params = bind(criteria, self.record_type).to_sql()
        found = self.db.execute(f"SELECT id FROM t WHERE {where} ORDER BY id", params)
        return [row[0] for row in found]

    @staticmethod
    def _encode(kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "enum":
            return value.value
        if kind in ("int", "float", "money"):
            return float(value)
        if kind == "bool":
            return int(value)
        if kind == "datetime":
            return micros(value)
        if kind == "date":
            return value.isoformat()
        return value


@pytest.fixture(scope="module")
def sql_ids() -> Iterator[Callable[[type[Any], list[Any], Any], list[str]]]:
    module = _sqlite_store_module()
    if module is not None:
        store = module.SQLiteStore(":memory:")

        def through_store(record_type: type[Any], rows: list[Any], criteria: Any) -> list[str]:
            repo = store.repository(record_type)
            with store.transaction():
                for old in list(repo):
                    repo.delete(old.id)
                repo.add_many(rows)
            return [r.id for r in repo.query(criteria)]

        yield through_store
        store.close()
        return
    tables: dict[type[Any], _RawTable] = {}

    def through_sql(record_type: type[Any], rows: list[Any], criteria: Any) -> list[str]:
        table = tables.setdefault(record_type, _RawTable(record_type))
        return table.ids(rows, criteria)

    yield through_sql


@pytest.mark.parametrize("op", ["in", "not in"])
def test_sql_custom_field_in_empty_list(op: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id TEXT, custom TEXT)")
    db.execute("""INSERT INTO t VALUES ('a', '{"tier": "gold"}'), ('b', '{}')""")
    where, params = bind(Condition("custom.tier", op, []), Account).to_sql()
    found = [row[0] for row in db.execute(f"SELECT id FROM t WHERE {where} ORDER BY id", params)]
    assert found == ([] if op == "in" else ["a", "b"])


@pytest.mark.parametrize("record_type", [Account, Opportunity, Activity, Lead])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_three_way_agreement(
    record_type: type[Any],
    data: st.DataObject,
    sql_ids: Callable[[type[Any], list[Any], Any], list[str]],
) -> None:
    criteria = data.draw(criteria_for(record_type, narrow=True), label="criteria")
    rows = data.draw(
        st.lists(records(record_type, narrow=True), max_size=8, unique_by=lambda r: r.id),
        label="records",
    )
    rows = sorted((attrs.evolve(r, version=1) for r in rows), key=lambda r: r.id)  # as stored
    bound = bind(criteria, record_type)
    fields = sorted(bound.fields | {"id"})

    by_predicate = [r.id for r in rows if bound.matches(r)]
    mask = bound.mask(columns_of(record_type, rows, fields))
    by_mask = [r.id for r, hit in zip(rows, mask, strict=True) if hit]
    object_mask = bound.mask(_object_columns(record_type, rows, fields))
    by_object_mask = [r.id for r, hit in zip(rows, object_mask, strict=True) if hit]
    by_sql = sql_ids(record_type, rows, criteria)

    assert by_mask == by_predicate
    assert by_object_mask == by_predicate
    assert by_sql == by_predicate


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "ab", "b", "Zü"])), max_size=6),
    criteria=criteria_for(Account, narrow=True, as_dict=False, max_leaves=2),
)
def test_mask_object_text_with_none_agrees_with_unicode(
    values: list[str | None], criteria: Any
) -> None:
    """A text column as objects (None missing) and as unicode ("" missing) agree."""
    bound = bind(criteria, Account)
    text_kinds = {"text", "enum"}
    assume(
        all(
            name.startswith("custom.") or schema_of(Account).field(name).kind in text_kinds
            for name in bound.fields
        )
    )
    unicode_cols: dict[str, Any] = {}
    object_cols: dict[str, Any] = {}
    for name in bound.fields | {"id"}:
        as_text = ["" if v is None else v for v in values]
        unicode_cols[name] = np.array(as_text, dtype=str)
        column = np.empty(len(values), dtype=object)
        column[:] = [None if v == "" else v for v in values]
        object_cols[name] = column
    np.testing.assert_array_equal(bound.mask(unicode_cols), bound.mask(object_cols))


def test_not_is_pushed_to_the_leaves_so_sql_does_not_nest() -> None:
    # not(a or not b) == (not a) and b; a double not is the criteria itself
    criteria = ~((F.country == "US") | ~(F.employees >= 500))
    sql, params = bind(criteria, Account).to_sql()
    assert "NOT (NOT" not in sql
    assert sql.count("(NOT ") == 1
    assert params == ["US", 500.0]
    deep = F.country == "US"
    for _ in range(20):
        deep = ~deep
    assert bind(deep, Account).to_sql() == bind(F.country == "US", Account).to_sql()
    us_big = Account(id="a", name="A", country="US", employees=900)
    fr_big = Account(id="b", name="B", country="FR", employees=900)
    fr_small = Account(id="c", name="C", country="FR", employees=5)
    nobody = Account(id="d", name="D")
    assert bind(criteria, Account).filter([us_big, fr_big, fr_small, nobody]) == [fr_big]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (10**400, "float64"),
        (-(10**5000), "float64"),
        (Decimal("1e400"), "float64"),
        (Decimal("sNaN"), "finite"),
        ("\ud800", "surrogate"),
        ("a\x00", "NUL"),
    ],
    ids=["10**400", "-10**5000", "Decimal 1e400", "sNaN", "surrogate", "NUL"],
)
def test_values_no_store_can_compare_are_refused_when_built(value: Any, words: str) -> None:
    with pytest.raises(CriteriaError, match=words) as info:
        F.custom["n"] == value  # noqa: B015 - building it is the test
    assert len(str(info.value)) < 1000


def test_depth_limit_counts_all_any_and_not() -> None:
    node: dict[str, Any] = {"field": "name", "op": "==", "value": "x"}
    for level in range(20):
        node = [{"all": [node]}, {"any": [node]}, {"not": node}][level % 3]
    assert parse(node).to_dict() == node
    with pytest.raises(CriteriaError, match="deeper than 20 levels"):
        parse({"not": node})
    with pytest.raises(CriteriaError, match="deeper than 20 levels"):
        ~parse(node)
