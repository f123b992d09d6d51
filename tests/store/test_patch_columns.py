"""``repo.patch_columns``: patches held as columns store exactly what ``patch_many`` of the
same changes stores, with its errors, all or none, on every store."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.errors import BatchError, ConflictError, NotFound, ValidationError
from crmkit.events import ChangeEvent, read
from crmkit.records import Account
from crmkit.store import MemoryStore

from .._stores import StoreFactory, postgres_factory  # noqa: F401 - fixture

ACCOUNTS = [
    Account(id=f"a{i}", name=f"Account {i}", industry="Retail", employees=i) for i in range(8)
]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    if request.param == "memory":
        opened: Any = MemoryStore()
    elif request.param == "sqlite":
        opened = StoreFactory("sqlite", str(tmp_path / "patch.db"))()
    else:
        opened = request.getfixturevalue("postgres_factory")()
    try:
        opened.accounts.add_many(ACCOUNTS)
        yield opened
    finally:
        opened.close()


@st.composite
def patches(draw: st.DrawFn) -> dict[str, Any]:
    """Columns patching a few of ``ACCOUNTS``: numpy columns the fast path takes, lists,
    and now and then a bad value."""
    ids = draw(st.lists(st.sampled_from([a.id for a in ACCOUNTS]), unique=True, min_size=1))
    n = len(ids)
    columns: dict[str, Any] = {"id": np.array(ids)}
    fields = draw(
        st.sets(st.sampled_from(["employees", "annual_revenue", "industry", "name"]), min_size=1)
    )
    if "employees" in fields:
        columns["employees"] = np.array(
            draw(st.lists(st.integers(-2, 10**6), min_size=n, max_size=n)), dtype=np.int64
        )
    if "annual_revenue" in fields:
        values = st.one_of(st.floats(0, 1e9, allow_nan=False), st.just(float("nan")))
        columns["annual_revenue"] = np.array(draw(st.lists(values, min_size=n, max_size=n)))
    if "industry" in fields:
        texts = st.sampled_from(["Retail", " Banking ", "", "Café"])
        columns["industry"] = np.array(draw(st.lists(texts, min_size=n, max_size=n)))
    if "name" in fields:
        columns["name"] = draw(st.lists(st.sampled_from(["N", "", " M "]), min_size=n, max_size=n))
    return columns


def _as_changes(columns: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The same patches as ``patch_many`` takes them (NaN: missing, as for a column)."""
    names = [name for name in columns if name != "id"]
    changes: dict[str, dict[str, Any]] = {}
    for row, record_id in enumerate(columns["id"].tolist()):
        fields = {}
        for name in names:
            value = columns[name][row]
            value = value.item() if isinstance(value, np.generic) else value
            fields[name] = None if isinstance(value, float) and value != value else value
        changes[record_id] = fields
    return changes


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(columns=patches())
def test_patch_columns_stores_what_patch_many_stores(store: Any, columns: dict[str, Any]) -> None:
    before = list(store.accounts)
    twin = MemoryStore()  # the store keeps its records across examples: copy them
    twin.accounts.add_many(before)
    refused: BatchError | None = None
    try:
        twin.accounts.patch_many(_as_changes(columns))
    except BatchError as err:
        refused = err
    if refused is not None:
        with pytest.raises(BatchError) as caught:
            store.accounts.patch_columns(columns)
        got = [(i, str(e)) for i, e in caught.value.errors]
        assert got == [(i, str(e)) for i, e in refused.errors]
        assert list(store.accounts) == before
        return
    assert store.accounts.patch_columns(columns) == len(columns["id"])
    patched = set(columns["id"].tolist())
    assert list(store.accounts) == [
        attrs.evolve(r, version=old.version + (r.id in patched))
        for r, old in zip(twin.accounts, before, strict=True)
    ]


def test_numpy_columns_and_dataframes(store: Any) -> None:
    assert (
        store.accounts.patch_columns(
            {
                "id": np.array(["a1", "a2"]),
                "employees": np.array([10, 20]),
                "annual_revenue": np.array([1.5, np.nan]),
            }
        )
        == 2
    )
    a1, a2 = store.accounts.get("a1"), store.accounts.get("a2")
    assert (a1.employees, a1.annual_revenue, a1.version) == (10, Decimal("1.5"), 2)
    assert (a2.employees, a2.annual_revenue, a2.version) == (20, None, 2)
    assert a1.name == "Account 1"  # what was not patched is kept
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"id": ["a3", "a4"], "industry": ["Banking", "Energy"]})
    assert store.accounts.patch_columns(frame) == 2
    assert [store.accounts.get(i).industry for i in ("a3", "a4")] == ["Banking", "Energy"]
    assert store.accounts.patch_columns({"id": [], "employees": []}) == 0


def test_a_bad_value_is_named_and_nothing_is_written(store: Any) -> None:
    before = list(store.accounts)
    with pytest.raises(BatchError) as caught:
        store.accounts.patch_columns({"id": ["a1", "a2"], "employees": np.array([5, -5])})
    [(row, error)] = caught.value.errors
    assert (row, error.record_id, error.field, error.value) == (1, "a2", "employees", -5)
    assert list(store.accounts) == before


def test_unknown_ids_and_stale_versions_are_named_and_nothing_is_written(store: Any) -> None:
    before = list(store.accounts)
    with pytest.raises(BatchError) as caught:
        store.accounts.patch_columns(
            {"id": np.array(["a1", "zz", "a2"]), "employees": np.array([1, 2, 3])}
        )
    [(row, error)] = caught.value.errors
    assert (row, type(error), error.record_id) == (1, NotFound, "zz")
    with pytest.raises(BatchError) as caught:
        store.accounts.patch_columns(
            {"id": np.array(["a1", "a2", "a3"]), "employees": np.array([1, 2, 3])},
            expected_versions=np.array([1, 2, 1]),  # a2 is at version 1
        )
    [(row, error)] = caught.value.errors
    assert (row, type(error), error.record_id) == (1, ConflictError, "a2")
    assert list(store.accounts) == before
    assert (
        store.accounts.patch_columns(
            {"id": ["a1", "a2"], "employees": np.array([7, 8])},
            expected_versions={"a1": 1, "a2": 1},
        )
        == 2
    )
    assert [store.accounts.get(i).version for i in ("a1", "a2")] == [2, 2]


def test_bad_columns_are_refused(store: Any) -> None:
    before = list(store.accounts)
    with pytest.raises(BatchError, match="appears twice"):
        store.accounts.patch_columns({"id": ["a1", "a1"], "employees": [1, 2]})
    with pytest.raises(ValidationError, match="needs an 'id' column"):
        store.accounts.patch_columns({"employees": [1]})
    with pytest.raises(ValidationError, match="needs a column to change"):
        store.accounts.patch_columns({"id": ["a1"]})
    with pytest.raises(ValidationError, match="set by the store"):
        store.accounts.patch_columns({"id": ["a1"], "version": [3]})
    with pytest.raises(ValidationError, match="is not a field of Account"):
        store.accounts.patch_columns({"id": ["a1"], "colour": ["red"]})
    with pytest.raises(ValidationError, match="differ in length"):
        store.accounts.patch_columns({"id": ["a1", "a2"], "employees": [1]})
    with pytest.raises(ValidationError, match="one version per id"):
        store.accounts.patch_columns({"id": ["a1"], "employees": [1]}, expected_versions=[1, 1])
    assert list(store.accounts) == before


def test_change_events_are_emitted(tmp_path: Any) -> None:
    for opened in (
        MemoryStore(events=True),
        StoreFactory("sqlite", str(tmp_path / "e.db"))(events=True),
    ):
        try:
            opened.accounts.add_many(ACCOUNTS[:2])
            opened.accounts.patch_columns({"id": np.array(["a0", "a1"]), "employees": [3, 4]})
            changes = [e for e in read(opened) if isinstance(e, ChangeEvent)]
            assert [(e.record_id, e.operation, e.version) for e in changes[2:]] == [
                ("a0", "update", 2),
                ("a1", "update", 2),
            ]
        finally:
            opened.close()
