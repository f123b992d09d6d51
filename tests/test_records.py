"""Records: validators for every field kind, conversions, evolve, hashing and freezing."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import CrmError, ValidationError
from crmkit.records import (
    RECORD_TYPES,
    Account,
    AccountType,
    Activity,
    ActivityKind,
    Lead,
    LeadStatus,
    Opportunity,
    OpportunityStatus,
    Rep,
    RoutingRule,
    StageChange,
    Territory,
)
from crmkit.testing.builders import build
from crmkit.testing.strategies import records

NAIVE = datetime(2026, 1, 5, 9, 0)


def check_error(
    make: Any, record: str, field: str, value: Any, record_id: str | None = "x"
) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        make()
    err = info.value
    assert isinstance(err, CrmError)
    assert isinstance(err, ValueError)
    assert (err.record, err.field, err.record_id) == (record, field, record_id)
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(err.value)
    else:
        assert err.value == value
    text = str(err)
    assert record in text
    assert field in text or field == "custom"
    if record_id is not None:
        assert repr(record_id) in text
    return err


def test_naive_datetime_names_record_id_field_and_value() -> None:
    err = check_error(lambda: Activity(id="x", kind="call", at=NAIVE), "Activity", "at", NAIVE)
    assert "timezone-aware" in str(err)
    assert repr(NAIVE) in str(err)


@pytest.mark.parametrize(
    ("make", "record", "field", "value"),
    [
        (lambda: Lead(id="x", status="hot"), "Lead", "status", "hot"),
        (lambda: Activity(id="x", kind=3, at=datetime.now(UTC)), "Activity", "kind", 3),
        (lambda: Account(id="x", name="A", employees=-5), "Account", "employees", -5),
        (lambda: Account(id="x", name="A", employees=2.5), "Account", "employees", 2.5),
        (lambda: Account(id="x", name="A", employees=True), "Account", "employees", True),
        (lambda: Account(id="x", name="A", employees="12"), "Account", "employees", "12"),
        (
            lambda: Opportunity(id="x", name="O", probability=1.5),
            "Opportunity",
            "probability",
            1.5,
        ),
        (
            lambda: Opportunity(id="x", name="O", probability=float("nan")),
            "Opportunity",
            "probability",
            float("nan"),
        ),
        (
            lambda: Opportunity(id="x", name="O", amount="a lot"),
            "Opportunity",
            "amount",
            "a lot",
        ),
        (
            lambda: Opportunity(id="x", name="O", amount=Decimal(-1)),
            "Opportunity",
            "amount",
            Decimal(-1),
        ),
        (
            lambda: Opportunity(id="x", name="O", close_date=datetime(2026, 1, 1, tzinfo=UTC)),
            "Opportunity",
            "close_date",
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        (
            lambda: Rep(id="x", name="R", timezone="Mars/Olympus"),
            "Rep",
            "timezone",
            "Mars/Olympus",
        ),
        (lambda: Rep(id="x", name="R", weight=-1), "Rep", "weight", -1.0),
        (lambda: Rep(id="x", name="R", work_days=[1, 9]), "Rep", "work_days", (1, 9)),
        (
            lambda: Rep(id="x", name="R", work_start=time(9, tzinfo=UTC)),
            "Rep",
            "work_start",
            time(9, tzinfo=UTC),
        ),
        (lambda: Rep(id="x", name="R", skills=["a", 1]), "Rep", "skills", ["a", 1]),
        (
            lambda: Account(id="x", name="A", realignment_locked=1),
            "Account",
            "realignment_locked",
            1,
        ),
        (lambda: Account(id="x", name="A\x00B"), "Account", "name", "A\x00B"),
        (lambda: Account(id="x", name="   "), "Account", "name", None),
        (
            lambda: Account(id="x", name="A", created_at="2026-01-01"),
            "Account",
            "created_at",
            "2026-01-01",
        ),
        (
            lambda: Account(id="x", name="A", custom={"not ident": 1}),
            "Account",
            "custom",
            "not ident",
        ),
        (lambda: Account(id="x", name="A", custom={"tier": [1]}), "Account", "custom", [1]),
        (
            lambda: Account(id="x", name="A", custom={"tier": {"a": 1}}),
            "Account",
            "custom",
            {"a": 1},
        ),
        (
            lambda: Account(id="x", name="A", custom={"score": math.nan}),
            "Account",
            "custom",
            math.nan,
        ),
        (lambda: Account(id="x", name="A", custom={"t": "a\x00"}), "Account", "custom", "a\x00"),
        (lambda: Account(id="x", name="A", custom=[("a", 1)]), "Account", "custom", [("a", 1)]),
        (
            lambda: Territory(
                id="x", name="T", criteria={"field": "nope", "op": "==", "value": 1}
            ),
            "Territory",
            "criteria",
            {"field": "nope", "op": "==", "value": 1},
        ),
    ],
)
def test_validators(make: Any, record: str, field: str, value: Any) -> None:
    check_error(make, record, field, value)


def test_id_is_required_and_named() -> None:
    for bad in ("", "   ", None):
        err = check_error(lambda b=bad: Account(id=b, name="A"), "Account", "id", None, None)
        assert "required" in str(err)
    with pytest.raises(ValidationError):
        Account(id=5, name="A")  # type: ignore[arg-type]


def test_routing_rule_criteria_are_read_for_its_record_type() -> None:
    rule = RoutingRule(
        id="r",
        target_id="q",
        applies_to="Inquiry",
        criteria={"field": "channel", "op": "==", "value": "chat"},
    )
    assert rule.criteria == {"field": "channel", "op": "==", "value": "chat"}
    with pytest.raises(ValidationError):  # Leads have no channel
        RoutingRule(
            id="r", target_id="q", criteria={"field": "channel", "op": "==", "value": "chat"}
        )
    with pytest.raises(ValidationError):
        RoutingRule(id="r", target_id="q", applies_to="Spaceship", criteria={"all": []})


# -- conversions -------------------------------------------------------------------------


def test_enum_from_text() -> None:
    assert Opportunity(id="o", name="O", status=" WON ").status is OpportunityStatus.WON
    assert Lead(id="l", status="qualified").status is LeadStatus.QUALIFIED
    assert Activity(id="a", kind="web_visit", at=datetime.now(UTC)).kind is ActivityKind.WEB_VISIT
    assert Account(id="a", name="A").account_type is AccountType.PROSPECT


def test_money_conversions() -> None:
    assert Opportunity(id="o", name="O", amount=12).amount == Decimal(12)
    assert isinstance(Opportunity(id="o", name="O", amount=12).amount, Decimal)
    assert Opportunity(id="o", name="O", amount=0.1).amount == Decimal(
        "0.1"
    )  # not 0.1000000000000000055
    assert Opportunity(id="o", name="O", amount=" 1,200.50 ").amount == Decimal("1200.50")


def test_number_conversions() -> None:
    assert Account(id="a", name="A", employees=12.0).employees == 12
    assert Account(id="a", name="A", employees=Decimal("7")).employees == 7
    assert Opportunity(id="o", name="O", probability=1).probability == 1.0
    assert isinstance(Opportunity(id="o", name="O", probability=1).probability, float)


def test_blank_text_is_none_and_text_is_stripped() -> None:
    account = Account(id="  a1 ", name="  Acme ", country="", industry="   ")
    assert (account.id, account.name) == ("a1", "Acme")
    assert account.country is None
    assert account.industry is None


def test_custom_none_and_blank_values_are_dropped() -> None:
    account = Account(
        id="a", name="A", custom={"tier": " gold ", "gone": None, "blank": "  ", "n": 0}
    )
    assert account.custom == {"tier": "gold", "n": 0}


def test_tags_sorted_and_deduplicated() -> None:
    rep = Rep(id="r", name="R", skills=["spanish", " enterprise", "spanish", ""], team_ids="t1")
    assert rep.skills == ("enterprise", "spanish")
    assert rep.team_ids == ("t1",)
    assert Rep(id="r", name="R", work_days=[4, 0, 0]).work_days == (0, 4)


@pytest.mark.parametrize(
    "tz", [timezone(timedelta(hours=5, minutes=30)), ZoneInfo("America/New_York"), UTC]
)
def test_aware_datetimes_are_normalised_to_utc(tz: Any) -> None:
    local = datetime(2026, 3, 8, 1, 30, tzinfo=tz)
    activity = Activity(id="a", kind="call", at=local)
    assert activity.at == local
    assert activity.at.utcoffset() == timedelta(0)
    assert activity.at.tzinfo is UTC


def test_evolve_revalidates() -> None:
    account = Account(id="a", name="A")
    with pytest.raises(ValidationError):
        attrs.evolve(account, employees=-1)
    with pytest.raises(ValidationError):
        attrs.evolve(account, created_at=NAIVE)
    assert attrs.evolve(account, country=" FR ").country == "FR"


def test_records_are_frozen_and_hashable() -> None:
    account = Account(id="a", name="A", custom={"tier": "gold"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        account.name = "B"  # type: ignore[misc]
    same = Account(id="a", name="A", custom={"tier": "gold"})
    assert account == same
    assert hash(account) == hash(same)
    assert len({account, same}) == 1
    assert account != attrs.evolve(account, custom={"tier": "silver"})


@pytest.mark.parametrize("record_type", RECORD_TYPES, ids=lambda t: t.__name__)
def test_every_record_type_builds_hashes_and_has_the_shared_fields(record_type: type[Any]) -> None:
    record = build(record_type, id="x")
    names = {a.name for a in attrs.fields(record_type)}
    assert {"id", "custom", "version"} <= names
    assert record.version == 0
    assert record.custom == {}
    assert isinstance(hash(record), int)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(RECORD_TYPES).flatmap(records))
def test_generated_records_survive_evolve_unchanged(record: Any) -> None:
    assert attrs.evolve(record) == record
    for field in attrs.fields(type(record)):
        value = getattr(record, field.name)
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)
        if isinstance(value, str):
            assert value == value.strip()
            assert value


def test_dates_and_times() -> None:
    deal = Opportunity(id="o", name="O", close_date=date(2026, 2, 28))
    assert deal.close_date == date(2026, 2, 28)
    rep = Rep(id="r", name="R", work_start=time(8, 30))
    assert rep.work_start == time(8, 30)
    change = StageChange(
        id="s", opportunity_id="o", to_stage="won", at=datetime(2026, 1, 1, tzinfo=UTC), amount=5
    )
    assert change.amount == Decimal(5)


def test_a_blank_string_of_tags_is_no_tags_and_evolve_keeps_it() -> None:
    rep = Rep(id="r", name="R", skills=" ")
    assert rep.skills == ()
    assert Rep(id="r", name="R", skills=" sql ").skills == ("sql",)
    assert attrs.evolve(rep) == rep


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("employees", 2**63, "64-bit"),
        ("employees", Decimal("1e999999999"), "whole number"),
        ("annual_revenue", Decimal("1e309"), "too large"),
        ("annual_revenue", Decimal("1e-16384"), "decimal places"),
        ("created_at", "2026-01-01", "must be a datetime"),
    ],
)
def test_numbers_beyond_what_stores_keep_are_refused(field: str, value: Any, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as info:
        Account(id="x", name="A", **{field: value})
    assert (info.value.record, info.value.field, info.value.record_id) == ("Account", field, "x")


@pytest.mark.parametrize(
    "value",
    [Decimal("sNaN"), Decimal("NaN"), math.inf, 10**400],
    ids=["sNaN", "NaN", "inf", "10**400"],
)
def test_float_fields_refuse_what_is_not_a_finite_float(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        Rep(id="x", name="R", weight=value)
    assert info.value.field == "weight"


def test_aware_datetimes_past_the_calendar_in_utc_are_clamped() -> None:
    late = timezone(timedelta(hours=-5))
    last = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert (
        Account(id="x", name="A", created_at=datetime(9999, 12, 31, 20, tzinfo=late)).created_at
        == last
    )
    assert Account(
        id="x", name="A", created_at=datetime(9999, 12, 31, 18, tzinfo=late)
    ).created_at == datetime(9999, 12, 31, 23, tzinfo=UTC)
    early = datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    assert Account(id="x", name="A", created_at=early).created_at == datetime(1, 1, 1, tzinfo=UTC)


# -- the compiled __init__ ------------------------------------------------------------------


def _attrs_made(cls: type[Any]) -> type[Any]:
    """``cls`` as attrs alone builds it (same name, fields, converters and validators)."""
    made = attrs.make_class(
        cls.__name__,
        {
            a.name: attrs.field(
                default=a.default, converter=a.converter, validator=a.validator, alias=a.alias
            )
            for a in attrs.fields(cls)
        },
        frozen=True,
        kw_only=True,
        slots=True,
    )
    fields = attrs.fields_dict(cls)
    for name, value in vars(cls).items():  # class constants, like Territory.applies_to
        if not name.startswith("__") and name not in fields:
            setattr(made, name, value)
    return made


_ODD_VALUES: list[Any] = [
    None, "", "  ", " x ", "x\x00", "\ud800", "café", "won", " Open ", "Europe/Paris", "nope",
    0, 1, -1, 7, 2**63, -(2**63) - 1, True, False, 1.0, 1.5, -2.5, math.nan, math.inf,
    Decimal("12.50"), Decimal("NaN"), Decimal("1e400"), "1,200.5",
    datetime(2026, 1, 5, 9, 0, tzinfo=UTC), datetime(2026, 1, 5, 9, 0),
    datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo("America/New_York")), date(2026, 1, 5),
    time(9, 0), {}, {"tier": "gold"}, {"bad key": 1}, {"x": ""}, {"x": math.nan}, [], ["a", " b "],
    ("b", "a", "a"), [0, 4], {"kind": "call"}, [{"kind": "call"}], object(),
    Decimal("-0"), Decimal("1E+2"), Decimal("1E-20000"), Decimal("-1.5"), Decimal("1" + "0" * 400),
    Decimal("0." + "0" * 400 + "1"), Decimal("sNaN"), Decimal("-Infinity"), -0.0, 1e300, 5e-324,
]  # fmt: skip


def _outcome(make: type[Any], cls: type[Any], kwargs: dict[str, Any]) -> Any:
    try:
        made = make(**kwargs)
    except Exception as err:  # the same class and message, or the same failure
        return ("raised", type(err).__name__, str(err))
    return ("built", repr(tuple(getattr(made, a.name) for a in attrs.fields(cls))))


def _base_kwargs(cls: type[Any]) -> dict[str, Any]:
    names = {a.alias for a in attrs.fields(cls)}
    t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    base = {"id": "r1", "name": "N", "title": "T", "due_at": t, "at": t}
    return {k: v for k, v in base.items() if k in names}


def _compared_types() -> list[type[Any]]:
    from crmkit.records import RECORD_TYPES

    return [t for t in RECORD_TYPES if t.__name__ != "Inquiry"]  # Inquiry: a post-init


@pytest.mark.parametrize("cls", _compared_types(), ids=lambda t: t.__name__)
def test_the_compiled_init_matches_attrs_field_by_field(cls: type[Any]) -> None:
    """Every field of every record type, given each odd value in turn: the compiled
    ``__init__`` builds the same record or raises the same error as attrs' own."""
    reference = _attrs_made(cls)
    for a in attrs.fields(cls):
        for value in _ODD_VALUES:
            kwargs = {**_base_kwargs(cls), a.alias: value}
            assert _outcome(cls, cls, kwargs) == _outcome(reference, cls, kwargs), (a.name, value)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_compiled_init_builds_and_refuses_like_attrs(data: st.DataObject) -> None:
    """Several odd fields at once: the first bad one in field order is the one named."""
    cls = data.draw(st.sampled_from(_compared_types()))
    names = [a.alias for a in attrs.fields(cls)]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=6))
    kwargs = _base_kwargs(cls)
    kwargs.update({k: data.draw(st.sampled_from(_ODD_VALUES)) for k in chosen})
    assert _outcome(cls, cls, kwargs) == _outcome(_attrs_made(cls), cls, kwargs)


# -- the compiled patcher (what stores' patch and patch_many run) ----------------------------


def _patchable_types() -> list[type[Any]]:
    return [t for t in _compared_types() if t.__name__ not in ("Territory", "RoutingRule")]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_compiled_patcher_equals_attrs_evolve(data: st.DataObject) -> None:
    """A valid record with some fields changed to odd values: the patcher (which checks
    only the changed fields) builds what ``attrs.evolve`` builds, or raises its error."""
    from crmkit._fields import patcher

    cls = data.draw(st.sampled_from(_patchable_types()))
    record = data.draw(records(cls))
    names = [a.name for a in attrs.fields(cls) if a.name not in ("id", "version")]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, min_size=1, max_size=4))
    changes = {k: data.draw(st.sampled_from(_ODD_VALUES)) for k in chosen}
    patch = patcher(cls, tuple(changes))
    assert patch is not None
    ours = _outcome(lambda: patch(record, record.version, *changes.values()), cls, {})
    assert ours == _outcome(lambda: attrs.evolve(record, **changes), cls, {})


def test_the_patcher_declines_what_needs_the_whole_record() -> None:
    from crmkit._fields import patcher
    from crmkit.records import Inquiry, RoutingRule

    assert patcher(RoutingRule, ("applies_to",)) is None  # re-checks the criteria
    assert patcher(RoutingRule, ("criteria",)) is None
    assert patcher(Inquiry, ("sender_email",)) is None  # a post-init fills sender_domain
    assert patcher(Account, ("version",)) is None
    assert patcher(Account, ("nope",)) is None
    assert patcher(Account, ("employees", "employees")) is None
