"""``repo.add_columns``: records held as columns store exactly what ``add_many`` stores,
with the record path's errors, all or none, on every store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.errors import BatchError, ValidationError
from crmkit.events import ChangeEvent, read
from crmkit.records import Account, Activity, Contact, Lead, Reminder
from crmkit.store import MemoryStore
from crmkit.testing.strategies import records

from .._stores import StoreFactory, postgres_factory  # noqa: F401 - fixture

TYPES = [Account, Contact, Lead, Activity, Reminder]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        opened = StoreFactory("sqlite", str(tmp_path / "columns.db"))()
    else:
        opened = request.getfixturevalue("postgres_factory")()
    try:
        yield opened
    finally:
        opened.close()


def _object_columns(record_type: type[Any], batch: list[Any]) -> dict[str, Any]:
    """Each field of ``batch`` as an object array (lists for the first field)."""
    result: dict[str, Any] = {}
    for index, field in enumerate(attrs.fields(record_type)):
        if field.name == "version":
            continue
        values = [getattr(r, field.name) for r in batch]
        if index == 0:
            result[field.name] = values
            continue
        column = np.empty(len(values), dtype=object)
        for row, value in enumerate(values):
            column[row] = value
        result[field.name] = column
    return result


@st.composite
def batches(draw: st.DrawFn) -> tuple[type[Any], list[Any]]:
    record_type = draw(st.sampled_from(TYPES))
    batch = draw(st.lists(records(record_type), max_size=8, unique_by=lambda r: r.id))
    return record_type, batch


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=batches())
def test_add_columns_stores_what_add_many_stores(store: Any, drawn: Any) -> None:
    record_type, batch = drawn
    repo = store.repository(record_type)
    wanted = repo.add_many(batch)
    stored_by_records = [repo.get(r.id) for r in batch]
    for record in batch:
        repo.delete(record.id)
    assert repo.add_columns(_object_columns(record_type, batch)) == len(batch)
    try:
        assert [repo.get(r.id) for r in batch] == stored_by_records == wanted
        assert len(repo) == len(batch)
    finally:
        for record in batch:
            repo.delete(record.id)


def test_numpy_columns_and_dataframes(store: Any) -> None:
    columns = {
        "id": np.array(["a1", "a2", "a3"]),
        "name": np.array(["Acme", "Globex", "Initech"]),
        "employees": np.array([10.0, np.nan, 3.0]),  # NaN: missing
        "annual_revenue": np.array([1.5, 2.25, np.nan]),
        "created_at": np.array(["2024-01-02T03:04:05", "NaT", "2024-06-01"], "datetime64[us]"),
        "realignment_locked": np.array([True, False, False]),
        "account_type": np.array(["customer", "prospect", "partner"]),
    }
    assert store.accounts.add_columns(columns) == 3
    a1, a2, a3 = (store.accounts.get(i) for i in ("a1", "a2", "a3"))
    assert a1 == Account(
        id="a1",
        name="Acme",
        employees=10,
        annual_revenue=Decimal("1.5"),
        created_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        realignment_locked=True,
        account_type="customer",
        version=1,
    )
    assert a2.employees is None
    assert a2.created_at is None
    assert a2.annual_revenue == Decimal("2.25")
    assert a3.annual_revenue is None
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"id": ["b1", "b2"], "name": ["B1", "B2"], "employees": [1, 2]})
    assert store.accounts.add_columns(frame) == 2
    assert store.accounts.get("b2").employees == 2
    assert store.accounts.add_columns({"id": [], "name": []}) == 0


BAD = [
    ("name", None, "name", "is required"),
    ("account_type", "giant", "account_type", "giant"),
    ("employees", -5, "employees", "-5"),
    ("annual_revenue", "lots", "annual_revenue", "lots"),
    ("created_at", datetime(2024, 1, 1), "created_at", "timezone-aware"),
]


@pytest.mark.parametrize(("field", "value", "named", "said"), BAD)
def test_a_bad_row_is_named_and_nothing_is_written(
    store: Any, field: str, value: Any, named: str, said: str
) -> None:
    store.accounts.add(Account(id="kept", name="Kept"))
    columns: dict[str, list[Any]] = {
        "id": ["a0", "a1", "a2"],
        "name": ["A0", "A1", "A2"],
        "account_type": ["customer"] * 3,
        "employees": [1, 2, 3],
        "annual_revenue": ["1.50", "2", "3"],
        "created_at": [datetime(2024, 1, 1, tzinfo=UTC)] * 3,
    }
    columns[field][1] = value
    with pytest.raises(BatchError) as caught:
        store.accounts.add_columns(columns)
    [(row, error)] = caught.value.errors
    assert row == 1
    assert isinstance(error, ValidationError)
    assert error.record_id == "a1"
    assert error.field == named
    assert said in str(caught.value)
    assert "#1" in str(caught.value)
    # the same error as building that record
    with pytest.raises(ValidationError) as built:
        Account(**{name: values[1] for name, values in columns.items()})
    assert str(error) == str(built.value)
    assert [a.id for a in store.accounts] == ["kept"]


def test_ids_stored_or_repeated_are_refused(store: Any) -> None:
    store.accounts.add(Account(id="a1", name="Stored"))
    with pytest.raises(BatchError) as caught:
        store.accounts.add_columns({"id": ["a0", "a1"], "name": ["New", "Clash"]})
    [(row, error)] = caught.value.errors
    assert (row, error.field, error.record_id) == (1, "id", "a1")
    assert "already exists" in str(error)
    with pytest.raises(BatchError, match="appears twice"):
        store.accounts.add_columns({"id": ["b0", "b0"], "name": ["X", "Y"]})
    assert [(a.id, a.name) for a in store.accounts] == [("a1", "Stored")]


def test_bad_columns_are_refused(store: Any) -> None:
    with pytest.raises(ValidationError, match="is not a field of Account"):
        store.accounts.add_columns({"id": ["a1"], "name": ["A"], "colour": ["red"]})
    with pytest.raises(ValidationError, match="set by the store"):
        store.accounts.add_columns({"id": ["a1"], "name": ["A"], "version": [3]})
    with pytest.raises(ValidationError, match="differ in length"):
        store.accounts.add_columns({"id": ["a1", "a2"], "name": ["A"]})
    with pytest.raises(ValidationError, match="mapping of field names"):
        store.accounts.add_columns([("a1", "A")])
    assert len(store.accounts) == 0


def test_change_events_are_emitted(tmp_path: Any) -> None:
    for opened in (
        MemoryStore(events=True),
        StoreFactory("sqlite", str(tmp_path / "e.db"))(events=True),
    ):
        try:
            opened.accounts.add_columns({"id": ["a1", "a2"], "name": ["A", "B"]})
            events = read(opened)
            assert [
                (e.record_id, e.operation, e.version) for e in events if isinstance(e, ChangeEvent)
            ] == [
                ("a1", "insert", 1),
                ("a2", "insert", 1),
            ]
        finally:
            opened.close()


_GOOD_TEXTS = st.sampled_from(["Acme", " Globex ", "café", "a\x00"[:1]])
_TEXTS = st.one_of(
    _GOOD_TEXTS,
    _GOOD_TEXTS,
    _GOOD_TEXTS,
    st.text(alphabet=st.sampled_from(["a", "b", " ", "\x00", "é", "\ud800"]), max_size=4),
)


@st.composite
def numpy_account_columns(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 6))
    clean = draw(st.booleans())  # half the batches hold only valid values

    def column(values: Any, dtype: Any, good: Any = None) -> Any:
        drawn = good if clean and good is not None else values
        if dtype is str and draw(st.booleans()):
            dtype = object  # text as a frame holds it
        return np.array(draw(st.lists(drawn, min_size=n, max_size=n)), dtype=dtype)

    return {
        "id": np.array([f"id{i}" for i in range(n)]),
        "name": column(_TEXTS, str, _GOOD_TEXTS),
        "industry": column(_TEXTS, str, _GOOD_TEXTS | st.just("")),
        "account_type": column(
            st.sampled_from(["customer", " Partner", "customer", "prospect", "giant", ""]),
            str,
            st.sampled_from(["customer", " Partner"]),
        ),
        "employees": column(st.integers(-3, 2**63 - 1), np.int64, st.integers(0, 2**63 - 1)),
        "annual_revenue": column(
            st.floats(allow_nan=True, allow_infinity=True, width=64),
            np.float64,
            st.floats(0, 1e300) | st.just(-0.0) | st.just(float("nan")),
        ),
        "realignment_locked": column(st.booleans(), bool),
        "created_at": column(
            st.integers(0, 2**50) | st.just(np.iinfo(np.int64).min), np.int64
        ).view("datetime64[us]"),
    }


def _record_path(columns: dict[str, Any]) -> Any:
    """What building each record from the same values and calling add_many gives."""
    store = MemoryStore()
    names = list(columns)
    lists = [_values_of(columns[name]) for name in names]
    built, errors = [], []
    for index, row in enumerate(zip(*lists, strict=True)):
        try:
            built.append(Account(**dict(zip(names, row, strict=True))))
        except ValidationError as err:
            errors.append((index, err))
    if errors:
        return str(BatchError("Account", errors))
    store.accounts.add_many(built)
    return list(store.accounts)


def _values_of(column: Any) -> list[Any]:
    if column.dtype.kind == "M":
        return [
            None if np.isnat(v) else v.astype("datetime64[us]").item().replace(tzinfo=UTC)
            for v in column
        ]
    if column.dtype.kind == "f":
        return [None if np.isnan(v) else float(v) for v in column.tolist()]
    return column.tolist()


@settings(max_examples=200, deadline=None)
@given(columns=numpy_account_columns())
def test_numpy_columns_give_what_the_record_path_gives(columns: dict[str, Any]) -> None:
    store = MemoryStore()
    try:
        store.accounts.add_columns(columns)
        got: Any = list(store.accounts)
    except BatchError as err:
        got = str(err)
        assert len(store.accounts) == 0
    assert got == _record_path(columns)
