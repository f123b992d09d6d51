"""The values routing hands back: reason codes, dropped candidates, decisions, schedules."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from crmkit.errors import ValidationError
from crmkit.records import Rep, TargetKind

if TYPE_CHECKING:
    from crmkit.dedupe import DuplicatePair


class RoutingStatus(enum.StrEnum):
    """Where a routed record ended: with a rep, in a queue, or (only without a default
    target) nowhere yet, waiting for :meth:`Router.sweep` to escalate it."""

    ASSIGNED = "assigned"
    QUEUED = "queued"
    UNASSIGNED = "unassigned"


class Reason(enum.StrEnum):
    """Machine-readable reason codes; every decision and every dropped candidate has one."""

    # why a decision went where it went
    RULE_MATCHED = "rule_matched"
    DEFAULT_TARGET = "default_target"
    NO_RULE_MATCHED = "no_rule_matched"
    ACCOUNT_MATCH = "account_match"
    ALREADY_OWNED = "already_owned"
    QUEUE_TARGET = "queue_target"
    NO_ELIGIBLE_REP = "no_eligible_rep"
    UNKNOWN_TEAM = "unknown_team"
    ESCALATED = "escalated"
    # why a candidate rep was skipped
    UNKNOWN_REP = "unknown_rep"
    INACTIVE = "inactive"
    OUT_OF_OFFICE = "out_of_office"
    OUTSIDE_HOURS = "outside_hours"
    ATTRIBUTE_MISMATCH = "attribute_mismatch"
    MISSING_SKILL = "missing_skill"
    ZERO_WEIGHT = "zero_weight"
    AT_CAPACITY = "at_capacity"
    DAILY_QUOTA = "daily_quota"
    MONTHLY_QUOTA = "monthly_quota"


@attrs.frozen
class Dropped:
    """A candidate rep that was skipped, with a reason code and a sentence."""

    rep_id: str
    code: Reason
    text: str


@attrs.frozen(kw_only=True)
class RoutingDecision:
    """The outcome of routing one record, with every reason.

    ``status`` is ``assigned`` (``owner_id`` set), ``queued`` (``queue`` set) or
    ``unassigned``; ``reason`` says why (a :class:`Reason`), ``rule_id`` which rule
    matched, ``dropped`` which candidates were skipped and why (one entry per rep).
    ``duplicate_of`` names an earlier record with the same email; ``account_id`` the
    account the record was matched to (``account_owner_id`` its owner, ``contact_id`` the
    contact an inquiry's sender is), also when the owner could not take it.
    """

    record_type: str
    record_id: str
    status: RoutingStatus
    reason: Reason
    owner_id: str | None = None
    queue: str | None = None
    team_id: str | None = None
    rule_id: str | None = None
    rule_name: str | None = None
    template_id: str | None = None
    strategy: str | None = None
    pool: str | None = None
    dropped: tuple[Dropped, ...] = ()
    duplicate_of: str | None = None
    account_id: str | None = None
    account_owner_id: str | None = None
    contact_id: str | None = None
    at: datetime | None = None
    account_score: float | None = None
    account_reasons: tuple[str, ...] = ()
    duplicates: tuple[DuplicatePair, ...] = ()

    def explain(self) -> str:
        """A short, human-readable account of the decision.

        >>> d = RoutingDecision(record_type="Lead", record_id="l1", status="assigned",
        ...     reason=Reason.RULE_MATCHED, owner_id="r1", rule_id="us", rule_name="US",
        ...     team_id="na", strategy="round_robin",
        ...     dropped=(Dropped("r2", Reason.INACTIVE, "rep 'r2' is inactive"),))
        >>> print(d.explain())
        Lead l1: assigned to r1 (rule 'US' matched; team na, round_robin)
          skipped r2: inactive - rep 'r2' is inactive
        """
        if self.status == RoutingStatus.ASSIGNED:
            head = f"assigned to {self.owner_id}"
        elif self.status == RoutingStatus.QUEUED:
            head = f"queued in {self.queue}"
        else:
            head = "unassigned"
        why = {
            Reason.RULE_MATCHED: f"rule {self.rule_name or self.rule_id!r} matched",
            Reason.DEFAULT_TARGET: "no rule matched; default target",
            Reason.NO_RULE_MATCHED: "no rule matched and there is no default target",
            Reason.ACCOUNT_MATCH: f"matches account {self.account_id}, routed to its owner",
            Reason.ALREADY_OWNED: "already owned; left as is",
            Reason.QUEUE_TARGET: f"rule {self.rule_name or self.rule_id!r} targets a queue",
            Reason.NO_ELIGIBLE_REP: "no eligible rep in the pool",
            Reason.ESCALATED: "unassigned past its SLA; escalated",
        }.get(self.reason, str(self.reason))
        if self.reason == Reason.UNKNOWN_TEAM:
            why = f"team {self.team_id!r} does not exist"
            if self.rule_id is not None:
                why = f"rule {self.rule_name or self.rule_id!r} matched but {why}"
        elif self.reason == Reason.NO_ELIGIBLE_REP and self.team_id and not self.dropped:
            why = f"team {self.team_id!r} has no members"
            if self.rule_id is not None:
                why = f"rule {self.rule_name or self.rule_id!r} matched but {why}"
        elif self.reason == Reason.NO_ELIGIBLE_REP and self.rule_id is not None:
            why = f"rule {self.rule_name or self.rule_id!r} matched but no rep was eligible"
        extra = []
        if self.team_id:
            extra.append(f"team {self.team_id}")
        if self.strategy:
            extra.append(self.strategy)
        if self.template_id:
            extra.append(f"template {self.template_id}")
        if self.reason == Reason.ACCOUNT_MATCH and self.account_score is not None:
            why = (
                f"matches account {self.account_id} (score {self.account_score:.2f}: "
                f"{', '.join(self.account_reasons)}), routed to its owner"
            )
        line = f"{self.record_type} {self.record_id}: {head} ({why}"
        line += ("; " + ", ".join(extra)) if extra else ""
        line += ")"
        lines = [line]
        found = {p.right_id if p.left_id == self.record_id else p.left_id for p in self.duplicates}
        if self.duplicate_of and self.duplicate_of not in found:
            lines.append(f"  duplicate of {self.record_type} {self.duplicate_of} (same email)")
        for pair in self.duplicates:
            other = pair.right_id if pair.left_id == self.record_id else pair.left_id
            agreed = ", ".join(f.field for f in pair.fields if f.passed)
            lines.append(
                f"  duplicate of {self.record_type} {other} on {agreed} "
                f"({pair.rule_id}, score {pair.score:.2f})"
            )
        if self.account_id and self.reason != Reason.ACCOUNT_MATCH:
            if self.account_score is not None:
                lines.append(
                    f"  account {self.account_id} scored {self.account_score:.2f} "
                    f"({', '.join(self.account_reasons)})"
                )
            if self.account_owner_id is None:
                lines.append(f"  account {self.account_id} matched first, but it has no owner")
            else:
                lines.append(
                    f"  account {self.account_id} matched first, but its owner "
                    f"{self.account_owner_id} could not take it (see below)"
                )
        lines.extend(f"  skipped {d.rep_id}: {d.code} - {d.text}" for d in self.dropped)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        data = attrs.asdict(self, recurse=False)
        data["status"] = str(self.status)
        data["reason"] = str(self.reason)
        data["dropped"] = [
            {"rep_id": d.rep_id, "code": str(d.code), "text": d.text} for d in self.dropped
        ]
        data["at"] = self.at.isoformat() if self.at else None
        data["account_reasons"] = list(self.account_reasons)
        data["duplicates"] = [
            {
                "id": p.right_id if p.left_id == self.record_id else p.left_id,
                "rule_id": p.rule_id,
                "score": p.score,
                "fields": [f.field for f in p.fields if f.passed],
            }
            for p in self.duplicates
        ]
        return data


@attrs.frozen
class Target:
    """Where something is sent: ``Target("queue", "inbox")``, ``Target("team", "emea")``."""

    kind: TargetKind = attrs.field(converter=TargetKind)
    id: str
    strategy: str | None = None


@attrs.frozen(kw_only=True)
class Schedule:
    """A weekly working schedule: ``days`` (0 = Monday) from ``start`` to ``end`` local
    time in ``timezone``. Used for SLA clocks in business hours.

    >>> from datetime import datetime, timezone
    >>> s = Schedule()
    >>> monday_8 = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    >>> s.business_hours_between(monday_8, monday_8 + timedelta(days=1))
    8.0
    """

    timezone: str = "UTC"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: time = time(9, 0)
    end: time = time(17, 0)

    @classmethod
    def of_rep(cls, rep: Rep) -> Schedule:
        """The schedule a rep works."""
        return cls(
            timezone=rep.timezone, days=rep.work_days, start=rep.work_start, end=rep.work_end
        )

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls inside working hours."""
        return in_hours(at, self.timezone, self.days, self.start, self.end)

    def business_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours elapsed between two instants (0 when ``end <= start``)."""
        if end <= start:
            return 0.0
        zone = ZoneInfo(self.timezone)
        local_start = start.astimezone(zone)
        total = 0.0
        day = local_start.date() - timedelta(days=1)
        last = end.astimezone(zone).date()
        while day <= last:
            if day.weekday() in self.days:
                open_at = datetime.combine(day, self.start, zone)
                close_at = datetime.combine(day, self.end, zone)
                if close_at <= open_at:
                    close_at += timedelta(days=1)
                lo, hi = max(open_at, start), min(close_at, end)
                if hi > lo:
                    total += (hi - lo).total_seconds() / 3600.0
            day += timedelta(days=1)
        return total


def in_hours(at: datetime, timezone: str, days: tuple[int, ...], start: time, end: time) -> bool:
    """Whether ``at`` is inside ``start``-``end`` on ``days`` in ``timezone``.

    A shift that ends before it starts runs overnight and belongs to the day it starts.
    """
    local = at.astimezone(ZoneInfo(timezone))
    clock = local.time().replace(tzinfo=None)
    if start < end:
        return local.weekday() in days and start <= clock < end
    if clock >= start:
        return local.weekday() in days
    return clock < end and (local.weekday() - 1) % 7 in days


def check_aware(record: str, field: str, value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(record, field, value, "must be a timezone-aware datetime")
    return value


def scalar_mapping(data: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(data or {})


def merge_dropped(*groups: tuple[Dropped, ...] | list[Dropped]) -> tuple[Dropped, ...]:
    """The skipped reps of several tries, one entry per rep (its first reason)."""
    seen: set[str] = set()
    out: list[Dropped] = []
    for group in groups:
        for item in group:
            if item.rep_id not in seen:
                seen.add(item.rep_id)
                out.append(item)
    return tuple(out)
