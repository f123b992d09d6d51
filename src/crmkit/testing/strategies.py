"""Hypothesis strategies for crmkit records and criteria.

Every strategy produces *valid* values: records that construct without error and that a
store round-trips unchanged. Text has no NUL, no surrogates and no surrounding blanks
(records strip text); datetimes are aware, in UTC and other zones, between 1990 and 2100;
money has at most 14 significant digits; floats are finite; custom fields hold text,
ints, floats and bools.

``narrow=True`` draws values from small pools (a handful of words, numbers, instants) so
that criteria generated with ``criteria_for(..., narrow=True)`` actually match some
records, and ``ids(small=True)`` draws ids from five letters so that stateful tests hit
existing ids.

Hypothesis is an optional dependency (``pip install crmkit[testing]``); import this
module only from tests.

Examples
--------
>>> from hypothesis import find
>>> from crmkit.testing.strategies import accounts, criteria_for
>>> from crmkit.records import Account
>>> find(accounts(), lambda a: a.employees is not None).employees
0
>>> from crmkit.criteria import bind
>>> crit = find(criteria_for(Account, narrow=True), lambda c: "field" in c)
>>> sorted(crit)
['field', 'op', 'value']
>>> bind(crit, Account).fields
frozenset({'id'})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import attrs
from hypothesis import strategies as st

from crmkit._schema import QUERYABLE_KINDS, schema_of
from crmkit.criteria import OPERATORS, AllOf, AnyOf, Condition, Criteria, Not
from crmkit.records import (
    Account,
    Activity,
    Cadence,
    Campaign,
    CampaignMember,
    Contact,
    DealRegistration,
    Enrollment,
    HierarchyChange,
    Inquiry,
    Lead,
    LifecycleChange,
    Merge,
    Opportunity,
    OwnershipChange,
    Partner,
    Reminder,
    Rep,
    RoutingRule,
    StageChange,
    Team,
    Territory,
    TerritoryModel,
)
from crmkit.registry import CustomField, record_types
from crmkit.registry import custom_fields as custom_declarations

__all__ = [
    "CUSTOM_KEYS",
    "SMALL_IDS",
    "TIME_ZONES",
    "accounts",
    "activities",
    "aware_datetimes",
    "cadences",
    "campaign_members",
    "campaigns",
    "contacts",
    "criteria_for",
    "custom_fields",
    "deal_registrations",
    "enrollments",
    "hierarchy_changes",
    "ids",
    "inquiries",
    "leads",
    "lifecycle_changes",
    "merges",
    "money",
    "opportunities",
    "ownership_changes",
    "partners",
    "records",
    "reminders",
    "reps",
    "routing_rules",
    "stage_changes",
    "teams",
    "territories",
    "territory_models",
    "texts",
]

T = TypeVar("T")
S = st.SearchStrategy

SMALL_IDS = ("a", "b", "c", "d", "e")
"""The ids ``ids(small=True)`` draws from."""

TIME_ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney")
"""IANA zone names used for ``timezone`` fields and for generated datetimes."""

CUSTOM_KEYS = ("tier", "score", "vip", "region_code")
"""The custom field names narrow records and criteria use."""

_MIN_DT = datetime(1990, 1, 1)
_MAX_DT = datetime(2100, 1, 1)
_ZONES: tuple[Any, ...] = (
    UTC,
    *(ZoneInfo(name) for name in TIME_ZONES[1:]),
    timezone(timedelta(hours=-3, minutes=-30)),
)

# -- scalar strategies -------------------------------------------------------------------

_NARROW_TEXT = ("a", "ab", "abc", "b", "ba", "US", "CA", "Zürich", "z z")
_NARROW_INTS = (0, 1, 2, 5, 500)
_NARROW_FLOATS = (0.0, 0.25, 0.5, 1.0)
_NARROW_MONEY = (Decimal("0"), Decimal("1.5"), Decimal("2"), Decimal("1000.00"))
_NARROW_DT = (
    datetime(2020, 1, 1, 12, 0, tzinfo=UTC),
    datetime(2020, 1, 1, 13, 0, tzinfo=ZoneInfo("Europe/Paris")),  # the same instant
    datetime(2020, 1, 1, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2021, 6, 30, 23, 59, tzinfo=ZoneInfo("America/New_York")),
    datetime(1999, 12, 31, 0, 0, tzinfo=UTC),
)
_NARROW_DATES = (date(2020, 1, 1), date(2020, 1, 2), date(2024, 2, 29), date(1999, 12, 31))


def texts(*, narrow: bool = False, max_size: int = 16) -> S[str]:
    """Non-empty text without NUL, surrogates or surrounding whitespace."""
    if narrow:
        return st.sampled_from(_NARROW_TEXT)
    return (
        st.text(
            st.characters(codec="utf-8", exclude_characters="\x00"),
            min_size=1,
            max_size=max_size,
        )
        .map(str.strip)
        .filter(bool)
    )


def ids(*, small: bool = False) -> S[str]:
    """Record ids; ``small=True`` draws from :data:`SMALL_IDS` so that ids collide."""
    if small:
        return st.sampled_from(SMALL_IDS)
    return st.one_of(
        st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=10),
        texts(max_size=10),
    )


def aware_datetimes(*, narrow: bool = False) -> S[datetime]:
    """Timezone-aware datetimes between 1990 and 2100, in UTC and other zones."""
    if narrow:
        return st.sampled_from(_NARROW_DT)
    return st.datetimes(min_value=_MIN_DT, max_value=_MAX_DT, timezones=st.sampled_from(_ZONES))


def _dates(narrow: bool) -> S[date]:
    if narrow:
        return st.sampled_from(_NARROW_DATES)
    return st.dates(min_value=_MIN_DT.date(), max_value=_MAX_DT.date())


def money(*, narrow: bool = False) -> S[Decimal]:
    """Non-negative ``Decimal`` amounts with up to 12 whole digits and 2 places."""
    if narrow:
        return st.sampled_from(_NARROW_MONEY)
    return st.decimals(
        min_value=0, max_value=Decimal("999999999999.99"), places=2, allow_nan=False
    )


def _ints(narrow: bool) -> S[int]:
    if narrow:
        return st.sampled_from(_NARROW_INTS)
    return st.integers(min_value=0, max_value=10**12)


def _fractions(narrow: bool) -> S[float]:
    if narrow:
        return st.sampled_from(_NARROW_FLOATS)
    return st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def _floats(narrow: bool, minimum: float | None = None) -> S[float]:
    if narrow:
        return st.sampled_from(_NARROW_FLOATS)
    return st.floats(
        min_value=-1e12 if minimum is None else minimum,
        max_value=1e12,
        allow_nan=False,
        allow_infinity=False,
    )


def _custom_values(narrow: bool) -> S[str | int | float | bool]:
    if narrow:
        return st.one_of(
            st.sampled_from(_NARROW_TEXT),
            st.sampled_from((*_NARROW_INTS, -1)),
            st.sampled_from(_NARROW_FLOATS),
            st.booleans(),
        )
    return st.one_of(
        texts(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(min_value=-1e15, max_value=1e15, allow_nan=False, allow_infinity=False),
        st.booleans(),
    )


def custom_fields(*, narrow: bool = False) -> S[dict[str, str | int | float | bool]]:
    """A ``custom`` mapping: identifier keys, scalar values (never ``None``: dropped)."""
    keys: S[str] = (
        st.sampled_from(CUSTOM_KEYS)
        if narrow
        else st.one_of(
            st.sampled_from(CUSTOM_KEYS),
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
        )
    )
    return st.dictionaries(keys, _custom_values(narrow), max_size=3)


# -- records ----------------------------------------------------------------------------


def _field_strategy(record_type: type[Any], field: attrs.Attribute[Any], narrow: bool) -> S[Any]:
    """The strategy for one field, from its kind (and its name where the kind is not enough)."""
    name, kind = field.name, field.metadata.get("kind", "json")
    if name == "id":
        return ids()
    if name == "timezone":
        return st.sampled_from(TIME_ZONES)
    if name in ("probability",):
        return _fractions(narrow)
    if name == "work_days":
        return st.lists(st.integers(0, 6), max_size=7)
    if name == "steps":
        step = st.fixed_dictionaries(
            {"kind": st.sampled_from(["email", "call", "task", "wait"])},
            optional={"wait_days": st.integers(0, 30), "business_days": st.booleans()},
        )
        return st.lists(step, max_size=4)
    if name == "criteria":
        applies_to = "Account" if record_type is Territory else "Lead"
        return criteria_for(_type_named(applies_to), narrow=narrow)
    if kind == "text":
        return texts(narrow=narrow)
    if kind == "enum":
        return st.sampled_from(list(field.metadata["enum"]))
    if kind == "int":
        return _ints(narrow)
    if kind == "float":
        minimum = field.metadata.get("minimum")
        floats = _floats(narrow, minimum=minimum)
        return floats if minimum is None else floats.filter(lambda x: x >= minimum)
    if kind == "money":
        return money(narrow=narrow)
    if kind == "bool":
        return st.booleans()
    if kind == "datetime":
        return aware_datetimes(narrow=narrow)
    if kind == "date":
        return _dates(narrow)
    if kind == "tags":
        return st.lists(texts(narrow=narrow), max_size=3)
    if kind == "custom":
        return _custom_of(record_type, narrow)
    if kind == "time":
        return st.times()
    raise TypeError(f"no strategy for {record_type.__name__}.{name} ({kind})")  # pragma: no cover


_DECLARED_VALUES: dict[str, Callable[[CustomField, bool], S[Any]]] = {
    "text": lambda f, narrow: texts(narrow=narrow).filter(lambda t: bool(t.strip())),
    "int": lambda f, narrow: _ints(narrow),
    "float": lambda f, narrow: _floats(narrow),
    "money": lambda f, narrow: st.integers(0, 10**9).map(lambda cents: cents / 100),
    "bool": lambda f, narrow: st.booleans(),
    "enum": lambda f, narrow: st.sampled_from([str(m.value) for m in cast(Any, f.enum)]),
}


def _custom_of(record_type: type[Any], narrow: bool) -> S[dict[str, Any]]:
    """``custom`` mappings of ``record_type``: declared fields (see
    :func:`crmkit.registry.declare_custom_field`) hold values of their kind."""
    declared = custom_declarations(record_type)
    if not declared:
        return custom_fields(narrow=narrow)
    required = {
        n: _DECLARED_VALUES[f.kind](f, narrow)
        for n, f in declared.items()
        if f.required and f.default is None
    }
    optional = {n: _DECLARED_VALUES[f.kind](f, narrow) for n, f in declared.items()}
    for name in required:
        del optional[name]
    typed = st.fixed_dictionaries(required, optional=optional)
    free = custom_fields(narrow=narrow).map(
        lambda d: {k: v for k, v in d.items() if k not in declared}
    )
    return st.tuples(free, typed).map(lambda pair: {**pair[0], **pair[1]})


def _type_named(name: str) -> type[Any]:
    for record_type in record_types():
        if record_type.__name__ == name:
            return record_type
    raise LookupError(name)  # pragma: no cover


def _record_strategy(
    record_type: type[T],
    *,
    ids: S[str] | None,
    narrow: bool,
    exclude: tuple[str, ...] = (),
) -> S[T]:
    required: dict[str, S[Any]] = {}
    optional: dict[str, S[Any]] = {}
    for field in attrs.fields(cast(Any, record_type)):
        if field.name == "version" or field.name in exclude:
            continue
        strategy = _field_strategy(record_type, field, narrow)
        if field.name == "id" and ids is not None:
            strategy = ids
        if field.default is attrs.NOTHING or (
            field.name == "custom" and custom_declarations(record_type)
        ):  # declared custom fields may be required: always draw them
            required[field.name] = strategy
        elif field.default is None:
            optional[field.name] = st.one_of(st.none(), strategy)
        else:
            optional[field.name] = strategy
    kwargs = st.fixed_dictionaries(required, optional=optional)
    return kwargs.map(lambda kw: record_type(**kw))


def accounts(*, ids: S[str] | None = None, narrow: bool = False) -> S[Account]:
    """Valid :class:`~crmkit.records.Account` records."""
    return _record_strategy(Account, ids=ids, narrow=narrow)


def contacts(*, ids: S[str] | None = None, narrow: bool = False) -> S[Contact]:
    """Valid :class:`~crmkit.records.Contact` records."""
    return _record_strategy(Contact, ids=ids, narrow=narrow)


def leads(*, ids: S[str] | None = None, narrow: bool = False) -> S[Lead]:
    """Valid :class:`~crmkit.records.Lead` records."""
    return _record_strategy(Lead, ids=ids, narrow=narrow)


def opportunities(*, ids: S[str] | None = None, narrow: bool = False) -> S[Opportunity]:
    """Valid :class:`~crmkit.records.Opportunity` records."""
    return _record_strategy(Opportunity, ids=ids, narrow=narrow)


def activities(*, ids: S[str] | None = None, narrow: bool = False) -> S[Activity]:
    """Valid :class:`~crmkit.records.Activity` records."""
    return _record_strategy(Activity, ids=ids, narrow=narrow)


def reps(*, ids: S[str] | None = None, narrow: bool = False) -> S[Rep]:
    """Valid :class:`~crmkit.records.Rep` records."""
    return _record_strategy(Rep, ids=ids, narrow=narrow)


def teams(*, ids: S[str] | None = None, narrow: bool = False) -> S[Team]:
    """Valid :class:`~crmkit.records.Team` records."""
    return _record_strategy(Team, ids=ids, narrow=narrow)


def territories(*, ids: S[str] | None = None, narrow: bool = False) -> S[Territory]:
    """Valid :class:`~crmkit.records.Territory` records with criteria over accounts."""
    return _record_strategy(Territory, ids=ids, narrow=narrow)


def reminders(*, ids: S[str] | None = None, narrow: bool = False) -> S[Reminder]:
    """Valid :class:`~crmkit.records.Reminder` records."""
    return _record_strategy(Reminder, ids=ids, narrow=narrow)


def ownership_changes(*, ids: S[str] | None = None, narrow: bool = False) -> S[OwnershipChange]:
    """Valid :class:`~crmkit.records.OwnershipChange` records."""
    return _record_strategy(OwnershipChange, ids=ids, narrow=narrow)


def stage_changes(*, ids: S[str] | None = None, narrow: bool = False) -> S[StageChange]:
    """Valid :class:`~crmkit.records.StageChange` records."""
    return _record_strategy(StageChange, ids=ids, narrow=narrow)


def lifecycle_changes(*, ids: S[str] | None = None, narrow: bool = False) -> S[LifecycleChange]:
    """Valid :class:`~crmkit.records.LifecycleChange` records."""
    return _record_strategy(LifecycleChange, ids=ids, narrow=narrow)


def hierarchy_changes(*, ids: S[str] | None = None, narrow: bool = False) -> S[HierarchyChange]:
    """Valid :class:`~crmkit.records.HierarchyChange` records."""
    return _record_strategy(HierarchyChange, ids=ids, narrow=narrow)


def cadences(*, ids: S[str] | None = None, narrow: bool = False) -> S[Cadence]:
    """Valid :class:`~crmkit.records.Cadence` records."""
    return _record_strategy(Cadence, ids=ids, narrow=narrow)


def enrollments(*, ids: S[str] | None = None, narrow: bool = False) -> S[Enrollment]:
    """Valid :class:`~crmkit.records.Enrollment` records."""
    return _record_strategy(Enrollment, ids=ids, narrow=narrow)


def campaigns(*, ids: S[str] | None = None, narrow: bool = False) -> S[Campaign]:
    """Valid :class:`~crmkit.records.Campaign` records."""
    return _record_strategy(Campaign, ids=ids, narrow=narrow)


def campaign_members(*, ids: S[str] | None = None, narrow: bool = False) -> S[CampaignMember]:
    """Valid :class:`~crmkit.records.CampaignMember` records."""
    return _record_strategy(CampaignMember, ids=ids, narrow=narrow)


def partners(*, ids: S[str] | None = None, narrow: bool = False) -> S[Partner]:
    """Valid :class:`~crmkit.records.Partner` records."""
    return _record_strategy(Partner, ids=ids, narrow=narrow)


def deal_registrations(*, ids: S[str] | None = None, narrow: bool = False) -> S[DealRegistration]:
    """Valid :class:`~crmkit.records.DealRegistration` records."""
    return _record_strategy(DealRegistration, ids=ids, narrow=narrow)


def territory_models(*, ids: S[str] | None = None, narrow: bool = False) -> S[TerritoryModel]:
    """Valid :class:`~crmkit.records.TerritoryModel` records."""
    return _record_strategy(TerritoryModel, ids=ids, narrow=narrow)


def merges(*, ids: S[str] | None = None, narrow: bool = False) -> S[Merge]:
    """Valid :class:`~crmkit.records.Merge` records."""
    return _record_strategy(Merge, ids=ids, narrow=narrow)


_RULE_TARGETS = ("Lead", "Inquiry", "Account")


def routing_rules(*, ids: S[str] | None = None, narrow: bool = False) -> S[RoutingRule]:
    """Valid :class:`~crmkit.records.RoutingRule` records; criteria fit ``applies_to``."""

    @st.composite
    def build(draw: st.DrawFn) -> RoutingRule:
        applies_to = draw(st.sampled_from(_RULE_TARGETS))
        criteria = draw(st.none() | criteria_for(_type_named(applies_to), narrow=narrow))
        base = draw(
            _record_strategy(
                RoutingRule, ids=ids, narrow=narrow, exclude=("applies_to", "criteria")
            )
        )
        return attrs.evolve(base, applies_to=applies_to, criteria=criteria)

    return build()


def inquiries(*, ids: S[str] | None = None, narrow: bool = False) -> S[Inquiry]:
    """Valid :class:`~crmkit.records.Inquiry` records."""
    return _record_strategy(Inquiry, ids=ids, narrow=narrow)


_BY_TYPE: dict[type[Any], Callable[..., S[Any]]] = {
    Account: accounts,
    Contact: contacts,
    Lead: leads,
    Opportunity: opportunities,
    Activity: activities,
    Rep: reps,
    Team: teams,
    Territory: territories,
    Reminder: reminders,
    OwnershipChange: ownership_changes,
    StageChange: stage_changes,
    LifecycleChange: lifecycle_changes,
    HierarchyChange: hierarchy_changes,
    Cadence: cadences,
    Enrollment: enrollments,
    Campaign: campaigns,
    CampaignMember: campaign_members,
    Partner: partners,
    DealRegistration: deal_registrations,
    TerritoryModel: territory_models,
    RoutingRule: routing_rules,
    Inquiry: inquiries,
    Merge: merges,
}


def records(record_type: type[T], *, ids: S[str] | None = None, narrow: bool = False) -> S[T]:
    """Valid records of ``record_type`` (built-in or registered, see
    :func:`crmkit.registry.record_types`); declared custom fields get values of their kind."""
    make = _BY_TYPE.get(record_type)
    if make is not None:
        return make(ids=ids, narrow=narrow)
    if not attrs.has(record_type):
        raise TypeError(f"{record_type!r} is not a crmkit record type")

    def registered() -> S[T]:  # checked when drawn: a test may register the type later
        if record_type not in record_types():
            raise TypeError(f"{record_type!r} is not a registered crmkit record type")
        return _record_strategy(record_type, ids=ids, narrow=narrow)

    return st.deferred(registered)


# -- criteria ---------------------------------------------------------------------------

_EQUALITY = ("==", "!=", "in", "not in")
_NULL_TESTS = ("is null", "is not null", "exists")
_ORDERED = ("<", "<=", ">", ">=", "between")
_OPS_BY_DOMAIN: Mapping[str, tuple[str, ...]] = {
    "text": (*_EQUALITY, *_ORDERED, "startswith", "contains", *_NULL_TESTS),
    "enum": (*_EQUALITY, *_NULL_TESTS),
    "number": (*_EQUALITY, *_ORDERED, *_NULL_TESTS),
    "bool": (*_EQUALITY, *_NULL_TESTS),
    "datetime": (*_EQUALITY, *_ORDERED, *_NULL_TESTS),
    "date": (*_EQUALITY, *_ORDERED, *_NULL_TESTS),
}
assert all(op in OPERATORS for ops in _OPS_BY_DOMAIN.values() for op in ops)

_DOMAIN = {
    "text": "text",
    "enum": "enum",
    "int": "number",
    "float": "number",
    "money": "number",
    "bool": "bool",
    "datetime": "datetime",
    "date": "date",
}


def _numbers(narrow: bool) -> S[int | float | Decimal]:
    if narrow:
        return st.sampled_from((*_NARROW_INTS, -1, 0.25, 0.5, 1.0, Decimal("1.5"), 1000))
    return st.one_of(
        st.integers(min_value=-(10**12), max_value=10**12),
        st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
        money(),
    )


def _values_for(domain: str, enum_values: tuple[str, ...], narrow: bool) -> S[Any]:
    if domain == "text":
        return texts(narrow=narrow)
    if domain == "enum":
        return st.sampled_from(enum_values)
    if domain == "number":
        return _numbers(narrow)
    if domain == "bool":
        return st.booleans()
    if domain == "datetime":
        return aware_datetimes(narrow=narrow)
    return _dates(narrow)


@st.composite
def _condition(draw: st.DrawFn, record_type: type[Any], narrow: bool) -> Condition:
    schema = schema_of(record_type)
    fields = [f for f in schema.fields if f.kind in QUERYABLE_KINDS]
    names = [f.name for f in fields] + [f"custom.{key}" for key in CUSTOM_KEYS]
    name = draw(st.sampled_from(names))
    enum_values: tuple[str, ...] = ()
    if name.startswith("custom."):
        domain = draw(st.sampled_from(("text", "number", "bool")))
    else:
        info = schema.field(name)
        domain = _DOMAIN[info.kind]
        if info.enum is not None:
            enum_values = tuple(str(m.value) for m in info.enum)
    op = draw(st.sampled_from(_OPS_BY_DOMAIN[domain]))
    values = _values_for(domain, enum_values, narrow)
    if op in ("is null", "is not null"):
        return Condition(name, op)
    if op == "exists":
        return Condition(name, op, draw(st.booleans()))
    if op in ("in", "not in"):
        return Condition(name, op, draw(st.lists(values, max_size=3)))
    if op == "between":
        return Condition(name, op, (draw(values), draw(values)))
    if op in ("startswith", "contains") and narrow:
        return Condition(name, op, draw(st.sampled_from(("a", "b", "Z", "z", "Zü", "S"))))
    return Condition(name, op, draw(values))


def criteria_for(
    record_type: type[Any], *, narrow: bool = False, as_dict: bool = True, max_leaves: int = 5
) -> S[Any]:
    """Random valid criteria over ``record_type``'s queryable fields (and custom fields).

    Values have the type each field holds and operators come from
    :data:`crmkit.criteria.OPERATORS`. The JSON-able dict form by default; ``as_dict=False``
    gives :class:`~crmkit.criteria.Criteria` objects (datetimes stay datetimes).
    """
    leaf: S[Criteria] = _condition(record_type, narrow)

    def extend(children: S[Criteria]) -> S[Criteria]:
        many = st.lists(children, max_size=3).map(tuple)
        return st.one_of(
            many.map(lambda items: AllOf(items=items)),
            many.map(lambda items: AnyOf(items=items)),
            children.map(lambda item: Not(item=item)),
        )

    tree: S[Criteria] = st.recursive(leaf, extend, max_leaves=max_leaves)
    if as_dict:
        return tree.map(lambda c: c.to_dict())
    return tree
