"""The records of a CRM: frozen attrs values with validators.

Change a record with :func:`attrs.evolve`; the validators run again. Every record has a
string ``id``, a ``custom`` mapping for the fields you add, and a ``version`` that the
stores bump on each write (optimistic concurrency).

Rules shared by all records:

- Datetimes must be timezone-aware and are stored in UTC; a naive datetime is a
  :class:`~crmkit.errors.ValidationError`. Where wall-clock time matters (a rep's working
  hours, a reminder's recurrence) the record also has a ``timezone`` field.
- Money is :class:`~decimal.Decimal` (ints, floats and numeric strings are converted).
- Optional text is stripped; empty text is ``None``.
- Enum fields accept the enum or its value (``status="won"``).

>>> from datetime import datetime, timezone
>>> acme = Account(id="acc-1", name="Acme", country="US", employees=1200)
>>> acme.lifecycle_stage
'prospect'
>>> bigger = attrs.evolve(acme, employees=1500)
>>> bigger.employees
1500
>>> Lead(id="l-1", email="ada@example.com", status="working").status
<LeadStatus.WORKING: 'working'>
>>> Activity(id="a-1", kind="call", at=datetime(2026, 1, 5, 9, 0))
Traceback (most recent call last):
...
crmkit.errors.ValidationError: Activity 'a-1' field 'at' = ...: must be timezone-aware; ...
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from crmkit import _fields as f

__all__ = [
    "RECORD_TYPES",
    "Account",
    "AccountType",
    "Activity",
    "ActivityKind",
    "Cadence",
    "Campaign",
    "CampaignMember",
    "CampaignStatus",
    "Contact",
    "DealRegistration",
    "Direction",
    "Enrollment",
    "EnrollmentStatus",
    "HierarchyChange",
    "Inquiry",
    "InquiryStatus",
    "Lead",
    "LeadStatus",
    "LifecycleChange",
    "MemberStatus",
    "Merge",
    "Opportunity",
    "OpportunityStatus",
    "OwnershipChange",
    "Partner",
    "Record",
    "RegistrationStatus",
    "Reminder",
    "ReminderStatus",
    "Rep",
    "RoutingRule",
    "StageChange",
    "TargetKind",
    "Team",
    "Territory",
    "TerritoryModel",
    "TerritoryModelState",
]


class AccountType(enum.StrEnum):
    """What an account is to you."""

    PROSPECT = "prospect"
    CUSTOMER = "customer"
    PARTNER = "partner"
    COMPETITOR = "competitor"
    OTHER = "other"


class LeadStatus(enum.StrEnum):
    """Where a lead is in qualification."""

    NEW = "new"
    WORKING = "working"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"
    CONVERTED = "converted"


class OpportunityStatus(enum.StrEnum):
    """Whether a deal is still open, or how it closed."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ActivityKind(enum.StrEnum):
    """What happened. Scoring weights and timelines key on these."""

    EMAIL_SENT = "email_sent"
    EMAIL_OPENED = "email_opened"
    EMAIL_CLICKED = "email_clicked"
    EMAIL_REPLIED = "email_replied"
    CALL = "call"
    MEETING = "meeting"
    WEB_VISIT = "web_visit"
    DOWNLOAD = "download"
    FORM_SUBMIT = "form_submit"
    EVENT = "event"
    TASK = "task"
    NOTE = "note"
    OTHER = "other"


class Direction(enum.StrEnum):
    """Who started an interaction."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class TerritoryModelState(enum.StrEnum):
    """A territory model is planned, then active (one at a time), then archived."""

    PLANNING = "planning"
    ACTIVE = "active"
    ARCHIVED = "archived"


class TargetKind(enum.StrEnum):
    """Where a routing rule sends what it matches."""

    REP = "rep"
    TEAM = "team"
    QUEUE = "queue"


class InquiryStatus(enum.StrEnum):
    """An inbound inquiry is open until answered or closed."""

    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


class EnrollmentStatus(enum.StrEnum):
    """Where an enrolment in a cadence stands."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    EXITED = "exited"


class CampaignStatus(enum.StrEnum):
    """A campaign's state."""

    PLANNED = "planned"
    ACTIVE = "active"
    COMPLETED = "completed"
    ABORTED = "aborted"


class MemberStatus(enum.StrEnum):
    """How far a campaign member got, in order."""

    TARGETED = "targeted"
    SENT = "sent"
    OPENED = "opened"
    RESPONDED = "responded"
    CONVERTED = "converted"
    UNSUBSCRIBED = "unsubscribed"


class RegistrationStatus(enum.StrEnum):
    """A partner's deal registration."""

    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ReminderStatus(enum.StrEnum):
    """A reminder is open until done or cancelled; an occurrence of a recurring reminder
    left open when a later one came is ``missed`` (see ``crmkit.reminders.tick``)."""

    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"
    MISSED = "missed"


@attrs.frozen(kw_only=True)
class Account:
    """A company you sell to, partner with, or track.

    ``parent_id`` links a subsidiary to its parent (see ``crmkit.hierarchy``);
    ``domain`` (``acme.com``) lets lead routing match leads to accounts by email;
    ``realignment_locked`` keeps an account in its territory when territories are redrawn.
    """

    id: str = f.record_id()
    name: str = f.text(required=True)
    account_type: AccountType = f.choice(AccountType, default=AccountType.PROSPECT)
    domain: str | None = f.text()
    industry: str | None = f.text()
    country: str | None = f.text()
    region: str | None = f.text()
    postal_code: str | None = f.text()
    employees: int | None = f.integer()
    annual_revenue: Decimal | None = f.money()
    parent_id: str | None = f.text()
    owner_id: str | None = f.text()
    territory_id: str | None = f.text()
    realignment_locked: bool = f.flag(default=False)
    lifecycle_stage: str = f.text(default="prospect")
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Contact:
    """A person, usually at an account. ``opted_out`` people are never marketed to."""

    id: str = f.record_id()
    account_id: str | None = f.text()
    first_name: str | None = f.text()
    last_name: str | None = f.text()
    email: str | None = f.text()
    phone: str | None = f.text()
    title: str | None = f.text()
    country: str | None = f.text()
    owner_id: str | None = f.text()
    opted_out: bool = f.flag(default=False)
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()

    @property
    def name(self) -> str:
        """First and last name, whichever are known."""
        return " ".join(p for p in (self.first_name, self.last_name) if p)


@attrs.frozen(kw_only=True)
class Lead:
    """A person or company not yet qualified. Owned by a rep or waiting in a ``queue``.

    When converted, the ``converted_*`` ids point at the records it became.
    """

    id: str = f.record_id()
    first_name: str | None = f.text()
    last_name: str | None = f.text()
    company: str | None = f.text()
    email: str | None = f.text()
    phone: str | None = f.text()
    title: str | None = f.text()
    source: str | None = f.text()
    status: LeadStatus = f.choice(LeadStatus, default=LeadStatus.NEW)
    industry: str | None = f.text()
    country: str | None = f.text()
    region: str | None = f.text()
    postal_code: str | None = f.text()
    employees: int | None = f.integer()
    annual_revenue: Decimal | None = f.money()
    owner_id: str | None = f.text()
    queue: str | None = f.text()
    assigned_at: datetime | None = f.moment()
    converted_account_id: str | None = f.text()
    converted_contact_id: str | None = f.text()
    converted_opportunity_id: str | None = f.text()
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Opportunity:
    """A deal. ``account_id`` may be empty (a deal not yet tied to an account).

    ``probability`` is a fraction in [0, 1]; ``status`` says open, won or lost and
    ``closed_at`` when it closed.
    """

    id: str = f.record_id()
    name: str = f.text(required=True)
    account_id: str | None = f.text()
    contact_id: str | None = f.text()
    lead_id: str | None = f.text()
    amount: Decimal | None = f.money()
    currency: str = f.text(default="USD")
    stage: str = f.text(default="prospecting")
    probability: float | None = f.number(minimum=0.0, maximum=1.0)
    status: OpportunityStatus = f.choice(OpportunityStatus, default=OpportunityStatus.OPEN)
    close_date: date | None = f.day()
    product: str | None = f.text()
    owner_id: str | None = f.text()
    source: str | None = f.text()
    loss_reason: str | None = f.text()
    created_at: datetime | None = f.moment()
    closed_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Activity:
    """Something that happened: an email, a call, a meeting, a web visit.

    It refers to any of an account, contact, lead and opportunity; ``actor_id`` is the rep
    who did it (``None`` for a prospect's own action such as a web visit).
    """

    id: str = f.record_id()
    kind: ActivityKind = f.choice(ActivityKind)
    at: datetime = f.moment(required=True)
    account_id: str | None = f.text()
    contact_id: str | None = f.text()
    lead_id: str | None = f.text()
    opportunity_id: str | None = f.text()
    actor_id: str | None = f.text()
    direction: Direction | None = f.choice(Direction, default=None)
    outcome: str | None = f.text()
    subject: str | None = f.text()
    duration_minutes: int | None = f.integer()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Rep:
    """A salesperson (or any user who owns records).

    ``capacity`` is how many open leads they may hold (``None``: unlimited); ``weight``
    biases weighted distribution; working hours are ``work_start``-``work_end`` on
    ``work_days`` (0 = Monday) in ``timezone``; ``away_from``/``away_until`` is an
    out-of-office period.
    """

    id: str = f.record_id()
    name: str = f.text(required=True)
    email: str | None = f.text()
    active: bool = f.flag(default=True)
    capacity: int | None = f.integer()
    weight: float = f.number(default=1.0, minimum=0.0)
    skills: tuple[str, ...] = f.tags()
    languages: tuple[str, ...] = f.tags()
    country: str | None = f.text()
    region: str | None = f.text()
    timezone: str = f.zone()
    work_days: tuple[int, ...] = f.weekdays()
    work_start: time = f.clock_time(default=time(9, 0))
    work_end: time = f.clock_time(default=time(17, 0))
    away_from: datetime | None = f.moment()
    away_until: datetime | None = f.moment()
    manager_id: str | None = f.text()
    team_ids: tuple[str, ...] = f.tags()
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Team:
    """A group of reps; ``parent_id`` nests teams (a region over its offices)."""

    id: str = f.record_id()
    name: str = f.text(required=True)
    manager_id: str | None = f.text()
    parent_id: str | None = f.text()
    region: str | None = f.text()
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Territory:
    """A slice of the market, defined by ``criteria`` over accounts.

    Territories belong to a ``model_id`` (a territory model), nest through ``parent_id``,
    and a lower ``priority`` number wins when several match an account.
    """

    applies_to: ClassVar[str] = "Account"

    id: str = f.record_id()
    name: str = f.text(required=True)
    model_id: str | None = f.text()
    parent_id: str | None = f.text()
    territory_type: str | None = f.text()
    priority: int = f.integer(default=100)
    criteria: Mapping[str, Any] | None = f.criteria_field()
    owner_id: str | None = f.text()
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class TerritoryModel:
    """A set of territories drawn together; only one model is ``active`` at a time."""

    id: str = f.record_id()
    name: str = f.text(required=True)
    state: TerritoryModelState = f.choice(
        TerritoryModelState, default=TerritoryModelState.PLANNING
    )
    activated_at: datetime | None = f.moment()
    archived_at: datetime | None = f.moment()
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Inquiry:
    """An inbound message (email, web form, chat) to be routed and answered.

    ``sender_domain`` defaults to the lower-cased domain of ``sender_email``.
    """

    id: str = f.record_id()
    subject: str | None = f.text()
    body: str | None = f.text()
    sender_email: str | None = f.text()
    sender_domain: str | None = f.text()
    channel: str | None = f.text()
    language: str | None = f.text()
    status: InquiryStatus = f.choice(InquiryStatus, default=InquiryStatus.OPEN)
    account_id: str | None = f.text()
    contact_id: str | None = f.text()
    owner_id: str | None = f.text()
    team_id: str | None = f.text()
    queue: str | None = f.text()
    template_id: str | None = f.text()
    received_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()

    def __attrs_post_init__(self) -> None:
        if self.sender_domain is None and self.sender_email and "@" in self.sender_email:
            domain = self.sender_email.rsplit("@", 1)[1].strip().lower()
            object.__setattr__(self, "sender_domain", domain or None)


@attrs.frozen(kw_only=True)
class RoutingRule:
    """One rule of an ordered rule set: records matching ``criteria`` go to the target.

    Rules of a ``rule_set`` are tried by ``position`` (first match wins). ``applies_to``
    names the record type the criteria read (``"Lead"``, ``"Inquiry"``, ``"Account"``).
    ``strategy`` picks a rep inside a team target (round robin, load balanced ...);
    ``template_id`` is the response template for inquiries; ``active``,
    ``starts_at`` and ``ends_at`` switch the rule on and off.
    """

    id: str = f.record_id()
    rule_set: str = f.text(default="default")
    position: int = f.integer(default=0)
    name: str | None = f.text()
    applies_to: str = f.text(default="Lead")
    criteria: Mapping[str, Any] | None = f.criteria_field()
    target_kind: TargetKind = f.choice(TargetKind, default=TargetKind.QUEUE)
    target_id: str = f.text(required=True)
    strategy: str | None = f.text()
    template_id: str | None = f.text()
    active: bool = f.flag(default=True)
    starts_at: datetime | None = f.moment()
    ends_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Reminder:
    """Something a rep must do by ``due_at``, optionally recurring (``rrule``).

    ``timezone`` is the wall-clock zone the reminder lives in (recurrence and "due today"
    are computed there).
    """

    id: str = f.record_id()
    owner_id: str | None = f.text()
    title: str = f.text(required=True)
    due_at: datetime = f.moment(required=True)
    timezone: str = f.zone()
    remind_before_minutes: int = f.integer(default=0)
    rrule: str | None = f.text()
    status: ReminderStatus = f.choice(ReminderStatus, default=ReminderStatus.OPEN)
    snoozed_until: datetime | None = f.moment()
    completed_at: datetime | None = f.moment()
    account_id: str | None = f.text()
    contact_id: str | None = f.text()
    lead_id: str | None = f.text()
    opportunity_id: str | None = f.text()
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Cadence:
    """A sequence of selling steps (email, call, task, wait) that contacts or leads are
    enrolled in. Each step is a small dict, e.g. ``{"kind": "email", "wait_days": 2,
    "business_days": True}``; the reminders engine defines the keys it reads."""

    id: str = f.record_id()
    name: str = f.text(required=True)
    steps: tuple[Mapping[str, Any], ...] = f.json_steps()
    weekdays_only: bool = f.flag(default=True)
    timezone: str = f.zone()
    active: bool = f.flag(default=True)
    owner_id: str | None = f.text()
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Enrollment:
    """One contact or lead going through a cadence, with its persisted schedule."""

    id: str = f.record_id()
    cadence_id: str = f.text(required=True)
    contact_id: str | None = f.text()
    lead_id: str | None = f.text()
    owner_id: str | None = f.text()
    status: EnrollmentStatus = f.choice(EnrollmentStatus, default=EnrollmentStatus.ACTIVE)
    step_index: int = f.integer(default=0)
    next_due_at: datetime | None = f.moment()
    enrolled_at: datetime = f.moment(required=True)
    paused_at: datetime | None = f.moment()
    ended_at: datetime | None = f.moment()
    exit_reason: str | None = f.text()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Campaign:
    """A marketing programme; ``parent_id`` groups campaigns into programmes."""

    id: str = f.record_id()
    name: str = f.text(required=True)
    channel: str | None = f.text()
    status: CampaignStatus = f.choice(CampaignStatus, default=CampaignStatus.PLANNED)
    parent_id: str | None = f.text()
    starts_on: date | None = f.day()
    ends_on: date | None = f.day()
    budget: Decimal | None = f.money()
    actual_cost: Decimal | None = f.money()
    owner_id: str | None = f.text()
    created_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class CampaignMember:
    """A contact, lead or account in a campaign; the ``*_at`` fields are its status history."""

    id: str = f.record_id()
    campaign_id: str = f.text(required=True)
    contact_id: str | None = f.text()
    lead_id: str | None = f.text()
    account_id: str | None = f.text()
    status: MemberStatus = f.choice(MemberStatus, default=MemberStatus.TARGETED)
    added_at: datetime | None = f.moment()
    sent_at: datetime | None = f.moment()
    opened_at: datetime | None = f.moment()
    responded_at: datetime | None = f.moment()
    converted_at: datetime | None = f.moment()
    unsubscribed_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Partner:
    """A partner (reseller, referral partner ...) behind a partner ``account_id``."""

    id: str = f.record_id()
    account_id: str = f.text(required=True)
    tier: str | None = f.text()
    grade: float | None = f.number(minimum=0.0)
    regions: tuple[str, ...] = f.tags()
    capacity: int | None = f.integer()
    active: bool = f.flag(default=True)
    manager_id: str | None = f.text()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class DealRegistration:
    """A partner's claim on a deal at an account, approved or rejected, with an expiry."""

    id: str = f.record_id()
    partner_id: str = f.text(required=True)
    account_id: str | None = f.text()
    opportunity_id: str | None = f.text()
    company: str | None = f.text()
    product: str | None = f.text()
    amount: Decimal | None = f.money()
    status: RegistrationStatus = f.choice(RegistrationStatus, default=RegistrationStatus.SUBMITTED)
    submitted_at: datetime = f.moment(required=True)
    decided_at: datetime | None = f.moment()
    decided_by: str | None = f.text()
    decision_reason: str | None = f.text()
    expires_on: date | None = f.day()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class OwnershipChange:
    """History: ``record_type`` ``record_id`` went from one owner to another, and why."""

    id: str = f.record_id()
    record_type: str = f.text(required=True)
    record_id: str = f.text(required=True)
    from_owner_id: str | None = f.text()
    to_owner_id: str | None = f.text()
    at: datetime = f.moment(required=True)
    reason: str | None = f.text()
    changed_by: str | None = f.text()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class LifecycleChange:
    """History: an account moved from one lifecycle stage to another."""

    id: str = f.record_id()
    account_id: str = f.text(required=True)
    from_stage: str | None = f.text()
    to_stage: str = f.text(required=True)
    at: datetime = f.moment(required=True)
    reason: str | None = f.text()
    changed_by: str | None = f.text()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class HierarchyChange:
    """History: an account moved from one parent to another (``None``: a root)."""

    id: str = f.record_id()
    account_id: str = f.text(required=True)
    from_parent_id: str | None = f.text()
    to_parent_id: str | None = f.text()
    at: datetime = f.moment(required=True)
    reason: str | None = f.text()
    changed_by: str | None = f.text()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class StageChange:
    """History: an opportunity moved from one stage to another."""

    id: str = f.record_id()
    opportunity_id: str = f.text(required=True)
    from_stage: str | None = f.text()
    to_stage: str = f.text(required=True)
    at: datetime = f.moment(required=True)
    amount: Decimal | None = f.money()
    probability: float | None = f.number(minimum=0.0, maximum=1.0)
    changed_by: str | None = f.text()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


@attrs.frozen(kw_only=True)
class Merge:
    """History: records of ``record_type`` merged into ``survivor_id`` (see
    ``crmkit.dedupe.merge``).

    ``snapshot`` is the JSON text ``unmerge`` reads (the records as they were before the
    merge and every reference it re-pointed); ``unmerged_at`` is set once it was undone.
    """

    id: str = f.record_id()
    record_type: str = f.text(required=True)
    survivor_id: str = f.text(required=True)
    merged_ids: tuple[str, ...] = f.tags()
    at: datetime = f.moment(required=True)
    survivor_rule: str | None = f.text()
    merged_by: str | None = f.text()
    reason: str | None = f.text()
    snapshot: str | None = f.text()
    unmerged_at: datetime | None = f.moment()
    custom: Mapping[str, f.Scalar] = f.custom()
    version: int = f.version()


Record = (
    Account
    | Contact
    | Lead
    | Opportunity
    | Activity
    | Rep
    | Team
    | Territory
    | Reminder
    | OwnershipChange
    | StageChange
    | LifecycleChange
    | TerritoryModel
    | RoutingRule
    | Inquiry
    | HierarchyChange
    | Cadence
    | Enrollment
    | Campaign
    | CampaignMember
    | Partner
    | DealRegistration
    | Merge
)
"""Any crmkit record."""

RECORD_TYPES: tuple[type[Any], ...] = (
    Account,
    Contact,
    Lead,
    Opportunity,
    Activity,
    Rep,
    Team,
    Territory,
    Reminder,
    OwnershipChange,
    StageChange,
    LifecycleChange,
    TerritoryModel,
    RoutingRule,
    Inquiry,
    HierarchyChange,
    Cadence,
    Enrollment,
    Campaign,
    CampaignMember,
    Partner,
    DealRegistration,
    Merge,
)
"""Every record type, in the order stores create their tables."""

for _record_type in RECORD_TYPES:  # inline conversion and checks: see f.compile_init
    f.compile_init(_record_type)
