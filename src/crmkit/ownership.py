"""Who owns what: reassignment with history, and handing over a departing rep's book.

Every owner change is an optimistic update of the record's ``owner_id`` plus an
:class:`~crmkit.records.OwnershipChange` written in the same transaction, so the history
and the records never disagree. Unknown and inactive reps never receive anything.

>>> from datetime import datetime, timezone
>>> from crmkit import Account, MemoryStore, Rep
>>> store = MemoryStore()
>>> _ = store.reps.add_many([Rep(id="ann", name="Ann"), Rep(id="bob", name="Bob")])
>>> _ = store.accounts.add(Account(id="acme", name="Acme", owner_id="ann"))
>>> at = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
>>> change = reassign(store, "Account", "acme", "bob", reason="territory swap", at=at)
>>> change.from_owner_id, change.to_owner_id, store.accounts.get("acme").owner_id
('ann', 'bob', 'bob')
>>> [c.to_owner_id for c in ownership_history(store, "Account", "acme")]
['bob']
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from crmkit._schema import plural, record_type_named
from crmkit.errors import ConflictError, ValidationError
from crmkit.events import _owner_changes
from crmkit.records import LeadStatus, OwnershipChange
from crmkit.store._base import run_transaction

if TYPE_CHECKING:
    from crmkit.store import Store

__all__ = [
    "CASCADES",
    "Move",
    "ReassignmentPlan",
    "ownership_history",
    "plan_departure",
    "reassign",
]

CASCADES = ("opportunities", "leads", "reminders")
"""What :func:`plan_departure` can cascade from an account to its new owner."""

_OPEN_LEADS = [LeadStatus.NEW.value, LeadStatus.WORKING.value, LeadStatus.QUALIFIED.value]


def _record_type(record: type[Any] | str) -> type[Any]:
    record_type = record_type_named(record) if isinstance(record, str) else record
    if not attrs.has(record_type) or "owner_id" not in attrs.fields_dict(record_type):
        name = getattr(record_type, "__name__", str(record_type))
        raise ValidationError(name, "owner_id", None, "this record type has no owner")
    return record_type


def _check_at(at: object, record: str, record_id: str) -> None:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValidationError(
            record, "at", at, "must be a timezone-aware datetime", record_id=record_id
        )


def _check_receiver(store: Store, rep_id: object, record: str, record_id: str) -> None:
    if not isinstance(rep_id, str) or not rep_id:
        raise ValidationError(record, "owner_id", rep_id, "must be a rep id", record_id=record_id)
    rep = store.reps.find(rep_id)
    if rep is None:
        raise ValidationError(
            record,
            "owner_id",
            rep_id,
            "is not a known rep; add the Rep first",
            record_id=record_id,
        )
    if not rep.active:
        raise ValidationError(
            record,
            "owner_id",
            rep_id,
            "is an inactive rep; inactive reps never receive records",
            record_id=record_id,
        )


def _change_id(
    store: Store, record_type: type[Any], record_id: str, version: int, at: datetime
) -> str:
    change_id = f"{plural(record_type)}:{record_id}:owner:{version:04d}"
    if change_id in store.ownership_changes:
        change_id += f":{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S%f')}"
    return change_id


def _write(
    store: Store,
    record_type: type[Any],
    current: Any,
    new_owner_id: str,
    *,
    reason: str | None,
    at: datetime,
    changed_by: str | None,
    expected_version: int,
) -> OwnershipChange:
    repo: Any = store.repository(record_type)
    stored = repo.update(
        attrs.evolve(current, owner_id=new_owner_id), expected_version=expected_version
    )
    change = OwnershipChange(
        id=_change_id(store, record_type, current.id, stored.version, at),
        record_type=record_type.__name__,
        record_id=current.id,
        from_owner_id=current.owner_id,
        to_owner_id=new_owner_id,
        at=at,
        reason=reason,
        changed_by=changed_by,
    )
    stored_change = store.ownership_changes.add(change)
    _owner_changes(store, [stored_change])
    return stored_change


def reassign(
    store: Store,
    record: type[Any] | str,
    record_id: str,
    new_owner_id: str,
    *,
    reason: str | None,
    at: datetime,
    changed_by: str | None = None,
    expected_version: int | None = None,
) -> OwnershipChange | None:
    """Give ``record_id`` (an Account, Lead, Opportunity ... or its type name) a new owner.

    Reads the record, then writes the update (optimistic: ``expected_version`` defaults
    to the version read) and an :class:`~crmkit.records.OwnershipChange`, all in one
    transaction (:func:`crmkit.store.run_transaction`, retried on a transaction conflict:
    each attempt reads afresh, so it is idempotent), and returns the change; returns
    ``None`` and writes nothing when the record already has that owner, so processes
    giving one record to one rep at once write one change. Unknown or inactive reps raise
    :class:`~crmkit.errors.ValidationError`.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore, Rep
    >>> store = MemoryStore()
    >>> _ = store.reps.add_many([Rep(id="ana", name="Ana"), Rep(id="bo", name="Bo", active=False)])
    >>> _ = store.accounts.add(Account(id="acme", name="Acme"))
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> change = reassign(store, "Account", "acme", "ana", reason="territory", at=at)
    >>> (change.from_owner_id, change.to_owner_id, store.accounts.get("acme").owner_id)
    (None, 'ana', 'ana')
    >>> reassign(store, "Account", "acme", "ana", reason="again", at=at) is None
    True
    >>> reassign(store, "Account", "acme", "bo", reason="x", at=at)
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Account 'acme' field 'owner_id' = 'bo': ...
    """
    record_type = _record_type(record)
    name = record_type.__name__
    _check_at(at, name, record_id)

    def write() -> OwnershipChange | None:
        current: Any = store.repository(record_type).get(record_id)
        _check_receiver(store, new_owner_id, name, record_id)
        version = current.version if expected_version is None else expected_version
        if current.version != version:
            raise ConflictError(name, record_id, version, current.version)
        if current.owner_id == new_owner_id:
            return None
        return _write(
            store,
            record_type,
            current,
            new_owner_id,
            reason=reason,
            at=at,
            changed_by=changed_by,
            expected_version=version,
        )

    return run_transaction(store, write)


def ownership_history(
    store: Store, record: type[Any] | str, record_id: str
) -> list[OwnershipChange]:
    """Every owner change of one record, oldest first (ties by change id).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Lead, MemoryStore, Rep
    >>> store = MemoryStore()
    >>> _ = store.reps.add_many([Rep(id="ana", name="Ana"), Rep(id="cy", name="Cy")])
    >>> _ = store.leads.add(Lead(id="l1"))
    >>> for day, rep in ((5, "ana"), (6, "cy")):
    ...     _ = reassign(store, "Lead", "l1", rep, reason="rebalance",
    ...                  at=datetime(2026, 1, day, tzinfo=timezone.utc))
    >>> [(c.from_owner_id, c.to_owner_id) for c in ownership_history(store, "Lead", "l1")]
    [(None, 'ana'), ('ana', 'cy')]
    """
    record_type = _record_type(record)
    return store.ownership_changes.query(
        {
            "all": [
                {"field": "record_type", "op": "==", "value": record_type.__name__},
                {"field": "record_id", "op": "==", "value": record_id},
            ]
        },
        order_by="at",
    )


@attrs.frozen
class Move:
    """One planned owner change; ``follows`` names the record it follows (account,
    opportunity or lead), if any."""

    record_type: str
    record_id: str
    from_owner_id: str
    to_owner_id: str
    expected_version: int
    weight: float
    follows: str | None = None


@attrs.frozen
class ReassignmentPlan:
    """A departing rep's book spread over other reps: inspect it, then :meth:`apply` it.

    ``workload_before``/``workload_after`` are account workloads (count or revenue,
    per ``balance_by``) of the departing rep and every receiver; ``excluded`` names reps
    that were asked for but cannot receive (inactive, unknown, the departing rep);
    ``left_over`` are records of the departing rep that no moved account took along.
    """

    departing_rep_id: str
    at: datetime
    reason: str
    balance_by: str
    receivers: tuple[str, ...]
    moves: tuple[Move, ...]
    workload_before: Mapping[str, float]
    workload_after: Mapping[str, float]
    excluded: Mapping[str, str]
    left_over: tuple[tuple[str, str], ...]

    def assignments(self, record_type: str = "Account") -> dict[str, list[str]]:
        """``{receiver: [record ids]}`` for one record type (every receiver listed)."""
        out: dict[str, list[str]] = {rep: [] for rep in self.receivers}
        for move in self.moves:
            if move.record_type == record_type:
                out[move.to_owner_id].append(move.record_id)
        return out

    def __str__(self) -> str:
        lines = [
            f"hand-over of {self.departing_rep_id} ({len(self.moves)} records, "
            f"balanced by {self.balance_by}):",
            f"  {'rep':<16}{'receives':>9}{'before':>14}{'after':>14}",
        ]
        accounts = self.assignments()
        for rep in (self.departing_rep_id, *self.receivers):
            got = len(accounts.get(rep, []))
            lines.append(
                f"  {rep:<16}{got:>9}{self.workload_before[rep]:>14,.0f}"
                f"{self.workload_after[rep]:>14,.0f}"
            )
        for rep, why in self.excluded.items():
            lines.append(f"  excluded {rep}: {why}")
        if self.left_over:
            lines.append(f"  left with {self.departing_rep_id}: {len(self.left_over)} records")
        return "\n".join(lines)

    def apply(self, store: Store, *, changed_by: str | None = None) -> list[OwnershipChange]:
        """Write every move and its OwnershipChange in one transaction.

        A record changed since the plan was made raises
        :class:`~crmkit.errors.ConflictError`, a receiver made inactive meanwhile raises
        :class:`~crmkit.errors.ValidationError`; either way nothing is written. The checks
        and the writes share one transaction (:func:`crmkit.store.run_transaction`), so a
        plan applied by several processes at once is applied once: the others get
        ``ConflictError``.
        """
        return run_transaction(store, lambda: self._apply(store, changed_by))

    def _apply(self, store: Store, changed_by: str | None) -> list[OwnershipChange]:
        changes = []
        for rep in self.receivers:
            _check_receiver(store, rep, "Rep", rep)
        for move in self.moves:
            record_type = record_type_named(move.record_type)
            current: Any = store.repository(record_type).get(move.record_id)
            if current.version != move.expected_version:
                raise ConflictError(
                    move.record_type, move.record_id, move.expected_version, current.version
                )
            changes.append(
                _write(
                    store,
                    record_type,
                    current,
                    move.to_owner_id,
                    reason=self.reason,
                    at=self.at,
                    changed_by=changed_by,
                    expected_version=move.expected_version,
                )
            )
        return changes


def _loads(store: Store, reps: Sequence[str], balance_by: str) -> dict[str, float]:
    cols = store.accounts.columns(["owner_id", "annual_revenue"])
    owners = cols["owner_id"]
    weights = (
        np.ones(owners.size) if balance_by == "count" else np.nan_to_num(cols["annual_revenue"])
    )
    return {rep: float(weights[owners == rep].sum()) for rep in reps}


def _domain(email: str | None) -> str:
    if not email or "@" not in email:
        return ""
    return email.rsplit("@", 1)[1].strip().lower()


def plan_departure(
    store: Store,
    departing_rep_id: str,
    to_reps: Iterable[str],
    *,
    balance_by: str = "count",
    cascade: Iterable[str] = CASCADES,
    at: datetime,
    reason: str = "rep departure",
) -> ReassignmentPlan:
    """Plan how the accounts of a departing rep are spread over ``to_reps``.

    Accounts are taken largest first (by revenue when ``balance_by="revenue"``, else
    one each; ties by id) and each goes to the receiver with the least workload so far
    (ties by rep id). Workload counts the accounts a receiver already owns. With
    ``cascade``, the departing rep's open opportunities and open reminders of a moved
    account, and open leads whose email domain is a moved account's ``domain``, follow
    the account to its new owner. Nothing is written until :meth:`ReassignmentPlan.apply`.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore, Opportunity, Rep
    >>> store = MemoryStore()
    >>> _ = store.reps.add_many([Rep(id="gone", name="G"), Rep(id="ann", name="A"),
    ...                          Rep(id="bob", name="B"), Rep(id="cy", name="C", active=False)])
    >>> _ = store.accounts.add_many([Account(id=f"a{i}", name=f"A{i}", owner_id="gone",
    ...                              annual_revenue=100 * i) for i in range(1, 4)])
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="x", account_id="a3",
    ...                                         owner_id="gone"))
    >>> plan = plan_departure(store, "gone", ["ann", "bob", "cy"], balance_by="revenue",
    ...                       at=datetime(2026, 3, 2, tzinfo=timezone.utc))
    >>> plan.assignments(), dict(plan.excluded)
    ({'ann': ['a3'], 'bob': ['a2', 'a1']}, {'cy': 'inactive'})
    >>> dict(plan.workload_after)
    {'gone': 0.0, 'ann': 300.0, 'bob': 300.0}
    >>> len(plan.apply(store)), store.opportunities.get("o1").owner_id
    (4, 'ann')
    """
    if balance_by not in ("count", "revenue"):
        raise ValidationError(
            "ReassignmentPlan", "balance_by", balance_by, "must be 'count' or 'revenue'"
        )
    cascades = tuple(cascade)
    for item in cascades:
        if item not in CASCADES:
            raise ValidationError(
                "ReassignmentPlan", "cascade", item, f"must be among {', '.join(CASCADES)}"
            )
    _check_at(at, "ReassignmentPlan", departing_rep_id)
    store.reps.get(departing_rep_id)
    receivers: list[str] = []
    excluded: dict[str, str] = {}
    for rep_id in dict.fromkeys(to_reps):
        found = store.reps.find(rep_id)
        if rep_id == departing_rep_id:
            excluded[rep_id] = "is the departing rep"
        elif found is None:
            excluded[rep_id] = "unknown rep"
        elif not found.active:
            excluded[rep_id] = "inactive"
        else:
            receivers.append(rep_id)
    receivers.sort()
    if not receivers:
        raise ValidationError(
            "ReassignmentPlan",
            "to_reps",
            sorted(excluded),
            "no active rep to hand the accounts to",
            record_id=departing_rep_id,
        )
    owned = {"field": "owner_id", "op": "==", "value": departing_rep_id}
    accounts = store.accounts.query(owned)
    weights = [1.0 if balance_by == "count" else float(a.annual_revenue or 0) for a in accounts]
    before = _loads(store, [departing_rep_id, *receivers], balance_by)
    load = {rep: before[rep] for rep in receivers}
    heap = [(load[rep], rep) for rep in receivers]
    heapq.heapify(heap)
    moves: list[Move] = []
    new_owner: dict[str, str] = {}
    for weight, account in sorted(
        zip(weights, accounts, strict=True), key=lambda pair: (-pair[0], pair[1].id)
    ):
        current, rep = heapq.heappop(heap)
        new_owner[account.id] = rep
        moves.append(Move("Account", account.id, departing_rep_id, rep, account.version, weight))
        heapq.heappush(heap, (current + weight, rep))
    after = {departing_rep_id: before[departing_rep_id] - float(sum(weights))}
    after.update({rep: load for load, rep in heap})
    left_over: list[tuple[str, str]] = []
    followed: dict[str, dict[str, str]] = {"Opportunity": {}, "Lead": {}}
    if "opportunities" in cascades:
        for opp in store.opportunities.query(
            {"all": [owned, {"field": "status", "op": "==", "value": "open"}]}
        ):
            if opp.account_id in new_owner:
                rep = new_owner[opp.account_id]
                followed["Opportunity"][opp.id] = rep
                moves.append(
                    Move(
                        "Opportunity",
                        opp.id,
                        departing_rep_id,
                        rep,
                        opp.version,
                        0.0,
                        follows=opp.account_id,
                    )
                )
            else:
                left_over.append(("Opportunity", opp.id))
    if "leads" in cascades:
        by_domain: dict[str, str] = {}
        for account in accounts:
            if account.domain:
                by_domain.setdefault(account.domain.lower(), account.id)
        for lead in store.leads.query(
            {"all": [owned, {"field": "status", "op": "in", "value": _OPEN_LEADS}]}
        ):
            account_id = by_domain.get(_domain(lead.email))
            if account_id is not None:
                rep = new_owner[account_id]
                followed["Lead"][lead.id] = rep
                moves.append(
                    Move(
                        "Lead",
                        lead.id,
                        departing_rep_id,
                        rep,
                        lead.version,
                        0.0,
                        follows=account_id,
                    )
                )
            else:
                left_over.append(("Lead", lead.id))
    if "reminders" in cascades:
        for reminder in store.reminders.query(
            {"all": [owned, {"field": "status", "op": "==", "value": "open"}]}
        ):
            via: tuple[str | None, str | None] = (None, None)
            if reminder.account_id in new_owner:
                via = (reminder.account_id, new_owner[reminder.account_id])
            elif reminder.opportunity_id in followed["Opportunity"]:
                via = (reminder.opportunity_id, followed["Opportunity"][reminder.opportunity_id])
            elif reminder.lead_id in followed["Lead"]:
                via = (reminder.lead_id, followed["Lead"][reminder.lead_id])
            if via[1] is None:
                left_over.append(("Reminder", reminder.id))
                continue
            moves.append(
                Move(
                    "Reminder",
                    reminder.id,
                    departing_rep_id,
                    via[1],
                    reminder.version,
                    0.0,
                    follows=via[0],
                )
            )
    return ReassignmentPlan(
        departing_rep_id=departing_rep_id,
        at=at,
        reason=reason,
        balance_by=balance_by,
        receivers=tuple(receivers),
        moves=tuple(moves),
        workload_before=before,
        workload_after={rep: after[rep] for rep in before},
        excluded=excluded,
        left_over=tuple(left_over),
    )
