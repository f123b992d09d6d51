"""The codec: lossless JSON round trips, a private converter, and clean errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.codec import from_dict, from_json, make_converter, to_dict, to_json
from crmkit.errors import ValidationError
from crmkit.records import RECORD_TYPES, Account, Opportunity, Rep
from crmkit.testing.strategies import records


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(RECORD_TYPES).flatmap(records))
def test_json_round_trip_is_lossless(record: Any) -> None:
    record_type = type(record)
    text = to_json(record)
    again = from_json(record_type, text)
    assert again == record
    assert to_json(again) == text  # the same bytes a second time
    plain = json.loads(text)
    assert from_dict(record_type, plain) == record


def test_json_shapes() -> None:
    deal = Opportunity(
        id="o",
        name="Deal",
        amount=Decimal("0.10"),
        status="won",
        created_at=datetime(2026, 1, 5, 9, 30, 0, 15, tzinfo=UTC),
        custom={"tier": "gold", "seats": 3, "ok": True, "ratio": 0.5},
    )
    data = to_dict(deal)
    assert data["amount"] == "0.10"  # exact decimal text
    assert data["status"] == "won"
    assert data["created_at"] == "2026-01-05T09:30:00.000015+00:00"
    assert data["custom"] == {"tier": "gold", "seats": 3, "ok": True, "ratio": 0.5}
    rep = Rep(id="r", name="R", skills=["b", "a"])
    rep_data = to_dict(rep)
    assert rep_data["skills"] == ["a", "b"]
    assert rep_data["work_start"] == "09:00:00"
    assert rep_data["work_days"] == [0, 1, 2, 3, 4]
    assert from_dict(Rep, rep_data) == rep


def test_make_converter_returns_a_new_converter_each_call() -> None:
    first, second = make_converter(), make_converter()
    assert first is not second
    assert first is not cattrs.global_converter
    first.register_unstructure_hook(Decimal, float)  # a user's hook stays on their converter
    account = Account(id="a", name="A", annual_revenue=Decimal("1.5"))
    assert first.unstructure(account)["annual_revenue"] == 1.5
    assert second.unstructure(account)["annual_revenue"] == "1.5"
    assert to_dict(account)["annual_revenue"] == "1.5"


def test_global_cattrs_converter_is_untouched() -> None:
    make_converter()
    to_json(Account(id="a", name="A", created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert cattrs.global_converter.unstructure(when) is when
    assert cattrs.global_converter.unstructure(Decimal("1.5")) == Decimal("1.5")


@pytest.mark.parametrize(
    "data",
    [
        {"id": "a"},  # missing name
        {"id": "a", "name": "A", "nickname": "x"},  # extra field
        {"id": "a", "name": "A", "employees": "many"},
        {"id": "a", "name": "A", "employees": -1},
        {"id": "a", "name": "A", "created_at": 5},
        {"id": "a", "name": "A", "created_at": "yesterday"},
        {"id": "a", "name": "A", "created_at": "2026-01-01T00:00:00"},  # naive
        {"id": "a", "name": "A", "annual_revenue": True},
        {"id": "a", "name": "A", "annual_revenue": "lots"},
        {"id": "a", "name": "A", "account_type": "friend"},
        {"id": "a", "name": "A", "custom": [1]},
        {"id": "a", "name": "A", "custom": {"a": {"b": 1}}},
        "not a dict",
        None,
        ["id", "a"],
    ],
    ids=repr,
)
def test_from_dict_bad_data_raises_validation_error(data: Any) -> None:
    with pytest.raises(ValidationError) as info:
        from_dict(Account, data)
    assert info.value.record == "Account"
    assert "Account" in str(info.value)
    if isinstance(data, dict):
        assert info.value.record_id == "a"


def test_from_json_bad_json_raises_validation_error() -> None:
    with pytest.raises(ValidationError, match="is not JSON"):
        from_json(Account, "{nope")


def test_missing_and_extra_fields_are_named() -> None:
    with pytest.raises(ValidationError, match="missing field 'name'"):
        from_dict(Account, {"id": "a"})
    with pytest.raises(ValidationError, match="nickname"):
        from_dict(Account, {"id": "a", "name": "A", "nickname": "x"})


def test_from_dict_wrong_type_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        from_dict(Account, {"id": "a", "name": "A", "employees": "many"})
    assert info.value.field == "employees"
    assert info.value.value == "many"
    assert info.value.record_id == "a"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b'{"id": "a", "name": "\xff"}', "utf-8"),
        ("[" * 100_000 + "]" * 100_000, "nests too deep"),
        ('{"id": "a", "name": "A", "employees": 1' + "0" * 4999 + "}", "5000 digits"),
        ('{"id": "a", "name": "A", "employees": 1e999}', "employees"),
        ('{"id": "a", "name": "A", "employees": NaN}', "employees"),
        ('{"id": "a", "name": "A", "custom": {"n": 1' + "0" * 30 + "}}", "64-bit"),
        ('{"id": "a", "name": "\\ud800"}', "surrogate"),
        (7, "not JSON"),
    ],
)
def test_hostile_json_is_a_validation_error_with_a_short_message(text: Any, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        from_json(Account, text)
    message = str(info.value)
    assert words in message
    assert "set_int_max_str_digits" not in message
    assert len(message) < 1000


def test_from_dict_with_a_huge_int_names_the_field() -> None:
    with pytest.raises(ValidationError, match="64-bit") as info:
        from_dict(Account, {"id": "a", "name": "A", "employees": 10**5000})
    assert info.value.field == "employees"
    assert "<int of about 5001 digits>" in str(info.value)
