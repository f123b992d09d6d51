"""The Router: rules, account pre-match, pools and strategies; one record or a batch."""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from crmkit._columns import columns_of
from crmkit.clock import Clock, SystemClock
from crmkit.errors import ValidationError
from crmkit.events import _routed
from crmkit.records import (
    Inquiry,
    InquiryStatus,
    Lead,
    LeadStatus,
    OwnershipChange,
    Rep,
    RoutingRule,
    TargetKind,
)
from crmkit.routing._pools import (
    QUOTA_30_DAYS,
    QUOTA_DAY,
    Loads,
    PoolSpec,
    advance,
    drop,
    mismatch,
    new_state,
    pick,
    pool_for_rule,
    pool_reason,
    record_value,
    static_reason,
)
from crmkit.routing._rules import RuleSet, rules_of
from crmkit.routing._types import (
    Dropped,
    Reason,
    RoutingDecision,
    RoutingStatus,
    Schedule,
    Target,
    merge_dropped,
)
from crmkit.store._base import run_transaction

if TYPE_CHECKING:
    from crmkit.dedupe import AccountMatch, DuplicateCheck, DuplicatePolicy
    from crmkit.routing._bulk import RoutingBatch

Array = np.ndarray[Any, Any]

DEFAULT_TARGET = Target("queue", "unrouted")
"""Where records no rule matches go unless you say otherwise."""

ROUTER = "crmkit.routing"
"""``changed_by`` of the ownership changes the router writes."""

ATTEMPTS = 10
"""How many times a routing transaction that lost a race (PostgreSQL) is run again."""

OPEN_STATUSES: dict[str, tuple[str, ...]] = {
    "Lead": (LeadStatus.NEW.value, LeadStatus.WORKING.value),
    "Inquiry": (InquiryStatus.OPEN.value,),
}

FREE_MAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "proton.me",
        "protonmail.com",
        "mail.com",
        "yandex.ru",
        "qq.com",
        "163.com",
    }
)
_SUFFIXES = frozenset(
    {
        "inc",
        "incorporated",
        "llc",
        "ltd",
        "limited",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "sarl",
        "plc",
        "corp",
        "corporation",
        "co",
        "company",
        "bv",
        "nv",
        "oy",
        "ab",
        "spa",
        "srl",
        "pty",
        "kg",
        "the",
    }
)
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise_company(name: str | None) -> str | None:
    """A company name for matching: lower case, punctuation and legal suffixes removed.

    >>> normalise_company("ACME, Inc.")
    'acme'
    >>> normalise_company("The Acme Company GmbH")
    'acme'
    """
    if not name:
        return None
    words = [w for w in _NON_WORD.sub(" ", name.lower()).split() if w not in _SUFFIXES]
    return " ".join(words) or None


def email_domain(email: str | None) -> str | None:
    """The lower-cased domain of an email address (``None`` for free-mail domains).

    >>> email_domain("Ada@Example.COM"), email_domain("bob@gmail.com")
    ('example.com', None)
    """
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower()
    return None if not domain or domain in FREE_MAIL else domain


_Hit = tuple[str, str | None, str | None]
"""An account match: the account id, its owner, and the contact (inquiries) it came by."""


@attrs.frozen
class _Step:
    """One way to match a record to an account: a field, how a value (or a whole text
    column, ``""`` for none) becomes a lookup key, and the lookup table."""

    field: str
    key: Callable[[Any], str | None]
    keys: Callable[[Array], Array]
    table: Mapping[str, _Hit]


_FREE_MAIL = np.array(sorted(FREE_MAIL))


def _same(value: Any) -> str | None:
    return str(value) or None


def _same_array(column: Array) -> Array:
    return column


def _lower(value: Any) -> str | None:
    return str(value).strip().lower() or None


def _lower_array(column: Array) -> Array:
    return np.char.lower(np.char.strip(column))


def _domain(value: Any) -> str | None:
    domain = str(value).strip().lower()
    return None if not domain or domain in FREE_MAIL else domain


def _domain_array(column: Array) -> Array:
    domains = np.char.lower(np.char.strip(column))
    return np.where(np.isin(domains, _FREE_MAIL), "", domains)


def _email_domains(column: Array) -> Array:
    """:func:`email_domain` over a column (``""`` for none)."""
    if column.size == 0:
        return column
    has_at = np.char.find(column, "@") >= 0
    domains = np.where(has_at, np.char.rpartition(column, "@")[:, 2], "")
    return _domain_array(domains)


def _companies(column: Array) -> Array:
    """:func:`normalise_company` over a column, once per distinct name."""
    uniq, inverse = np.unique(column, return_inverse=True)
    keys = np.array([normalise_company(u) or "" for u in uniq.tolist()] or [""], dtype=str)
    return keys[inverse] if column.size else column


@attrs.frozen(kw_only=True)
class Escalation:
    """Records still without an owner ``after_hours`` business hours (on ``schedule``)
    after they were created go to ``target`` when :meth:`Router.sweep` runs."""

    after_hours: float
    target: Target
    schedule: Schedule = attrs.field(factory=Schedule)


@attrs.frozen
class _Plan:
    pool: PoolSpec
    chosen: Rep
    candidates: tuple[Rep, ...]


class _RowView:
    """Attribute access over one row of columns (for the rare sequential part of a batch)."""

    def __init__(self, columns: Mapping[str, Array], row: int) -> None:
        self._columns = columns
        self._row = row
        custom: dict[str, Any] = {}
        for name, col in columns.items():
            if name.startswith("custom."):
                value = _plain(col[row])
                if value is not None:
                    custom[name.removeprefix("custom.")] = value
        self.custom = custom

    def __getattr__(self, name: str) -> Any:
        try:
            col = self._columns[name]
        except KeyError:
            return None
        return _plain(col[self._row])


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value == "" or (isinstance(value, float) and value != value):
        return None
    return value


class Router:
    """Routes leads (or inquiries) through a rule set to reps, teams and queues.

    ``route(record)`` decides, advances the rotation, and (unless ``apply=False``) writes
    the record, its owner or queue and an :class:`~crmkit.records.OwnershipChange`, all in
    one store transaction. Rotation state lives in the store (``load_state``) and is read,
    like each rep's open records and quota counts, inside that transaction: routers in
    several processes share one fair rotation, and a new Router over the same store
    continues exactly where the last one stopped. ``route_many(records)`` gives the same
    decisions as routing them one by one.

    The Router caches rules, reps, teams, accounts (``match_accounts``,
    ``account_min_score``), the email index behind ``duplicate_of`` and the duplicate
    index of ``duplicates``; call :meth:`refresh` after changing those.

    ``account_min_score`` turns on account-based routing for leads: a lead whose best
    :class:`~crmkit.dedupe.AccountMatcher` match scores at least that goes to the
    account's owner, with the score and reasons in the decision; a lead with no such
    match, or whose account owner cannot take it, goes through the rules as usual.
    ``duplicates`` is a duplicate rule (:class:`~crmkit.dedupe.DuplicatePolicy`) for the
    records routed (lead capture): ``block`` refuses a record with duplicates
    (:class:`~crmkit.dedupe.DuplicateError`; ``route_many`` refuses the whole batch with
    a :class:`~crmkit.dedupe.DuplicateBatchError`) and writes nothing, ``alert`` routes
    it and lists the duplicates in ``decision.duplicates``.

    >>> from datetime import datetime, timezone
    >>> from crmkit import FixedClock, Lead, MemoryStore, Rep, RoutingRule
    >>> store = MemoryStore()
    >>> for rid in ("a", "b", "c"):
    ...     _ = store.reps.add(Rep(id=rid, name=rid.upper(), team_ids=["sales"]))
    >>> _ = store.routing_rules.add(RoutingRule(id="all", target_kind="team",
    ...                                         target_id="sales"))
    >>> clock = FixedClock(datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc))
    >>> router = Router(store, clock=clock)
    >>> [router.route(Lead(id=f"l{i}")).owner_id for i in range(4)]
    ['a', 'b', 'c', 'a']
    """

    def __init__(
        self,
        store: Any,
        rule_set: str = "default",
        *,
        record_type: type[Any] = Lead,
        rules: Iterable[RoutingRule] | None = None,
        default: Target | None = DEFAULT_TARGET,
        clock: Clock | None = None,
        match_accounts: bool = False,
        respect_hours: bool = True,
        escalation: Escalation | None = None,
        account_min_score: float | None = None,
        duplicates: DuplicatePolicy | None = None,
    ) -> None:
        if record_type not in (Lead, Inquiry):
            raise ValidationError(
                "Router", "record_type", record_type, "routes Lead or Inquiry records"
            )
        if account_min_score is not None and (
            record_type is not Lead
            or isinstance(account_min_score, bool)
            or not isinstance(account_min_score, int | float)
            or not 0 <= account_min_score <= 1
        ):
            raise ValidationError(
                "Router",
                "account_min_score",
                account_min_score,
                "must be a score from 0 to 1, and routes leads only",
            )
        self.account_min_score = account_min_score
        self.duplicates = duplicates
        self.store = store
        self.rule_set_name = rule_set
        self.record_type = record_type
        self.default = default
        self.clock: Clock = clock or SystemClock()
        self.match_accounts = match_accounts
        self.respect_hours = respect_hours
        self.escalation = escalation
        self._given_rules = None if rules is None else list(rules)
        self._states: dict[str, dict[str, Any]] = {}
        self.refresh()

    # -- caches ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read rules, reps, teams, accounts and the email index from the store.

        Loads and rotation state need no refresh: every operation reads them afresh.
        """
        name = self.record_type.__name__
        rules = self._given_rules
        if rules is None:
            rules = rules_of(self.store, self.rule_set_name, self.record_type)
        self.rules = RuleSet(rules, record_type=self.record_type)
        self._reps: dict[str, Rep] = {r.id: r for r in self.store.reps}
        teams: dict[str, list[str]] = {}
        for rep in self._reps.values():
            for team in rep.team_ids:
                teams.setdefault(team, []).append(rep.id)
        self._teams = teams
        self._team_ids = frozenset(teams) | {t.id for t in self.store.teams}
        self._pools: list[PoolSpec | None] = []
        for rule in self.rules.rules:
            self._pools.append(self._pool_of(rule))
        self._default_rule: RoutingRule | None = None
        self._default_pool: PoolSpec | None = None
        if self.default is not None:
            self._default_rule = RoutingRule(
                id="(default)",
                rule_set=self.rule_set_name,
                applies_to=name,
                target_kind=self.default.kind,
                target_id=self.default.id,
                strategy=self.default.strategy,
            )
            self._default_pool = self._pool_of(self._default_rule)
        # reps whose open records can change a decision: a capacity, or load balancing
        self._load_reps = frozenset(
            [r.id for r in self._reps.values() if r.capacity is not None]
            + [
                m
                for pool in [*self._pools, self._default_pool]
                if pool is not None and pool.strategy == "load_balanced"
                for m in pool.members
            ]
        )
        self._quota_reps = frozenset(
            r.id for r in self._reps.values() if QUOTA_DAY in r.custom or QUOTA_30_DAYS in r.custom
        )
        # duplicate index: email -> the two smallest ids holding it
        email_field = "email" if name == "Lead" else "sender_email"
        cols = self.store.repository(self.record_type).columns(["id", email_field])
        emails = cols[email_field]
        self._emails: dict[str, list[str]] = {}
        ids = cols["id"]
        have = emails != ""
        lowered = np.char.lower(emails[have]) if have.any() else np.array([], dtype=str)
        for email, rid in zip(lowered.tolist(), ids[have].tolist(), strict=True):
            self._remember_email(email, rid)
        self._read_accounts()
        self._read_duplicates()
        self._states = {}
        self._loads = Loads()
        self._static_cache: tuple[datetime | None, dict[str, Reason | None]] = (None, {})

    def _read_accounts(self) -> None:
        """The lookups that match a record to an account (``match_accounts``), in the
        order they are tried: a lead by email domain, then company name; an inquiry by its
        ``account_id``, its ``contact_id``, its sender as a stored contact's email, then
        its sender domain. Free-mail domains never match."""
        self._account_steps: list[_Step] = []
        self._matcher: Any = None
        self._scored: dict[str, AccountMatch] = {}  # record id -> its best scored match
        self._scored_hits: dict[str, _Hit] = {}  # the same, as a lookup step keyed by id
        self._scored_on: dict[str, tuple[Any, ...]] = {}  # the values each was scored on
        if self.account_min_score is not None:
            from crmkit.dedupe import AccountMatcher

            self._matcher = AccountMatcher(self.store.accounts)
            self._account_steps.append(_Step("id", _same, _same_array, self._scored_hits))
        if not self.match_accounts:
            return
        by_id: dict[str, _Hit] = {}
        by_domain: dict[str, _Hit] = {}
        by_company: dict[str, _Hit] = {}
        for account in self.store.accounts:
            hit = (account.id, account.owner_id, None)
            by_id[account.id] = hit
            if account.domain:
                domain = account.domain.strip().lower()
                if domain not in FREE_MAIL:
                    by_domain.setdefault(domain, hit)
            key = normalise_company(account.name)
            if key:
                by_company.setdefault(key, hit)
        if self.record_type is Lead:
            self._account_steps += [
                _Step("email", email_domain, _email_domains, by_domain),
                _Step("company", normalise_company, _companies, by_company),
            ]
            return
        by_contact: dict[str, _Hit] = {}
        by_contact_email: dict[str, _Hit] = {}
        contacts = self.store.contacts.columns(["id", "email", "account_id"])
        for cid, email, account_id in zip(
            contacts["id"].tolist(),
            contacts["email"].tolist(),
            contacts["account_id"].tolist(),
            strict=True,
        ):
            account_hit = by_id.get(account_id)
            if account_hit is None:
                continue
            hit = (account_hit[0], account_hit[1], cid)
            by_contact[cid] = hit
            if email:
                by_contact_email.setdefault(email.lower(), hit)
        self._account_steps = [
            _Step("account_id", _same, _same_array, by_id),
            _Step("contact_id", _same, _same_array, by_contact),
            _Step("sender_email", _lower, _lower_array, by_contact_email),
            _Step("sender_domain", _domain, _domain_array, by_domain),
        ]

    def _read_duplicates(self) -> None:
        """The duplicate index of the ``duplicates`` rule (none for ``allow``)."""
        from crmkit.dedupe import DuplicateAction, DuplicatePolicy

        self._duplicate_index: Any = None
        policy = self.duplicates
        if policy is None:
            return
        if not isinstance(policy, DuplicatePolicy):
            raise ValidationError(
                "Router", "duplicates", policy, "must be a crmkit.dedupe.DuplicatePolicy"
            )
        if policy.action is not DuplicateAction.ALLOW:
            repo = self.store.repository(self.record_type)
            self._duplicate_index = policy.index(repo, self.record_type.__name__)

    def _check_duplicates(self, records: Sequence[Any]) -> list[DuplicateCheck] | None:
        """The duplicate rule's verdicts on records about to be routed; a block raises
        (nothing is written). ``None`` when there is no rule to check."""
        if self._duplicate_index is None:
            return None
        assert self.duplicates is not None
        if len(records) == 1:
            return [self.duplicates.enforce(self._duplicate_index, records[0])]
        return self.duplicates.enforce_many(self._duplicate_index, records)

    def _score_accounts(self, records: Iterable[Any]) -> None:
        """The best scored account match of each record without an owner (account-based
        routing), kept for the decisions of this operation."""
        self._scored.clear()
        self._scored_hits.clear()
        self._scored_on.clear()
        for record in records:
            if record.owner_id is None:
                self._score_account(record)

    def _score_account(self, record: Any) -> None:
        self._scored.pop(record.id, None)
        self._scored_hits.pop(record.id, None)
        self._scored_on[record.id] = (record.email, record.company, record.country)
        found = self._matcher.match(record, limit=1, min_score=self.account_min_score)
        if found:
            self._scored[record.id] = found[0]
            self._scored_hits[record.id] = (found[0].account_id, found[0].owner_id, None)

    def _with_findings(
        self, decision: RoutingDecision, check: DuplicateCheck | None
    ) -> RoutingDecision:
        """The decision with the duplicates found and the scored account match's reasons."""
        changes: dict[str, Any] = {}
        if check is not None and check.matches:
            changes["duplicates"] = check.matches
        scored = self._scored.get(decision.record_id)
        if (
            scored is not None
            and decision.account_id == scored.account_id
            and decision.account_score is None
        ):
            changes["account_score"] = scored.score
            changes["account_reasons"] = scored.reasons
        return attrs.evolve(decision, **changes) if changes else decision

    def _remember_email(self, email: str, record_id: str) -> None:
        held = self._emails.setdefault(email, [])
        if record_id in held:
            return
        held.append(record_id)
        held.sort()
        del held[2:]

    def _pool_of(self, rule: RoutingRule) -> PoolSpec | None:
        if rule.target_kind == TargetKind.QUEUE:
            return None
        if rule.target_kind == TargetKind.REP:
            members: Sequence[str] = (rule.target_id,)
        else:
            members = self._teams.get(rule.target_id, ())
        known = [self._reps[m] for m in members if m in self._reps]
        return pool_for_rule(
            rule,
            members,
            self.record_type,
            by_capacity=bool(known) and all(r.capacity is not None for r in known),
            unknown=rule.target_kind == TargetKind.TEAM and rule.target_id not in self._team_ids,
        )

    def _begin(self, now: datetime) -> None:
        """Start an operation: rotation state and loads are read afresh from the store (in
        the operation's transaction), never from what an earlier operation saw."""
        self._states = {}
        self._loads = Loads(self._count_open, lambda rep_id: self._assigned_times(rep_id, now))

    def _count_open(self, rep_id: str) -> int:
        name = self.record_type.__name__
        count: int = self.store.repository(self.record_type).count(
            {
                "all": [
                    {"field": "owner_id", "op": "==", "value": rep_id},
                    {"field": "status", "op": "in", "value": list(OPEN_STATUSES[name])},
                ]
            }
        )
        return count

    def _assigned_times(self, rep_id: str, now: datetime) -> list[int]:
        """When ``rep_id`` was given records of this type in the last 30 days (quotas)."""
        changes = self.store.ownership_changes.columns(
            ["at"],
            {
                "all": [
                    {"field": "record_type", "op": "==", "value": self.record_type.__name__},
                    {"field": "to_owner_id", "op": "==", "value": rep_id},
                    {"field": "at", "op": ">", "value": now - timedelta(days=30)},
                ]
            },
        )
        at_us = changes["at"].astype("datetime64[us]").astype(np.int64)
        return sorted(at_us.tolist())

    def _state(self, key: str) -> dict[str, Any]:
        state = self._states.get(key)
        if state is None:
            state = self.store.load_state(self._state_name(key)) or new_state()
            self._states[key] = state
        return state

    def _state_name(self, key: str) -> str:
        return f"crmkit.routing.{self.record_type.__name__}.{key}"

    @property
    def _lock_name(self) -> str:
        """One lock for all routing of this record type: routers in other processes take
        turns (on PostgreSQL) rather than refusing each other's rotation updates."""
        return f"crmkit.routing.{self.record_type.__name__}"

    def _sync_manual(self, pool: PoolSpec, state: dict[str, Any]) -> None:
        """Count assignments made outside the router as the rep's latest turn."""
        mark = state.get("manual_mark")
        criteria: dict[str, Any] = {
            "field": "record_type",
            "op": "==",
            "value": self.record_type.__name__,
        }
        if mark is not None:
            criteria = {"all": [criteria, {"field": "at", "op": ">=", "value": mark[0]}]}
        changes = self.store.ownership_changes.query(criteria)
        changes.sort(key=lambda c: (c.at, c.id))
        members = set(pool.members)
        for change in changes:
            key = [change.at.isoformat(), change.id]
            if mark is not None and (change.at, change.id) <= (
                datetime.fromisoformat(mark[0]),
                mark[1],
            ):
                continue
            if change.changed_by == ROUTER:
                continue
            mark = key
            if change.to_owner_id not in members:
                continue
            state["seq"] += 1
            state["last"][change.to_owner_id] = state["seq"]
        state["manual_mark"] = mark

    # -- one record -----------------------------------------------------------------------

    def route(self, record: Any, *, apply: bool = True) -> RoutingDecision:
        """Route one record. With ``apply`` (the default) the decision is written at once.

        The rotation state and the loads are read, and the decision written, in one
        :func:`~crmkit.store.run_transaction`, so routers in other processes never make
        the same turn twice; a transaction that loses a race is decided again from
        scratch (routing is idempotent in that sense).
        """
        self._check_record(record)
        checks = self._check_duplicates([record])
        if self._matcher is not None:
            self._score_accounts([record])
        now = self.clock.now()

        def decide() -> RoutingDecision:
            self._begin(now)
            decision, plan, states = self._decide(record, now, {})
            if apply:
                self._write([(record, decision, plan)], states, now)
            return decision

        if not apply:
            return self._with_findings(decide(), checks[0] if checks else None)
        decision = run_transaction(self.store, decide, attempts=ATTEMPTS, lock=self._lock_name)
        self._remember([record])
        _log_outcomes([decision])
        return self._with_findings(decision, checks[0] if checks else None)

    def _check_record(self, record: Any) -> None:
        if not isinstance(record, self.record_type):
            raise ValidationError(
                self.record_type.__name__,
                None,
                record,
                f"this router routes {self.record_type.__name__} records, "
                f"not {type(record).__name__}",
            )

    def _duplicate_of(self, record: Any) -> str | None:
        email = record.email if self.record_type is Lead else record.sender_email
        if not email:
            return None
        held = self._emails.get(email.lower(), ())
        for other in held:
            if other != record.id:
                return other
        return None

    def _decide(
        self, record: Any, now: datetime, states: dict[str, dict[str, Any]]
    ) -> tuple[RoutingDecision, _Plan | None, dict[str, dict[str, Any]]]:
        """The decision for ``record``; ``states`` is copied on write, never mutated."""
        name = self.record_type.__name__
        base: dict[str, Any] = {
            "record_type": name,
            "record_id": record.id,
            "duplicate_of": self._duplicate_of(record),
            "at": now,
        }
        if record.owner_id is not None:
            return (
                RoutingDecision(
                    status=RoutingStatus.ASSIGNED,
                    reason=Reason.ALREADY_OWNED,
                    owner_id=record.owner_id,
                    **base,
                ),
                None,
                states,
            )
        pre: list[Dropped] = []
        account = self._account_for(record) if self._account_steps else None
        if account is not None:
            account_id, owner, contact_id = account
            base.update(account_id=account_id, account_owner_id=owner, contact_id=contact_id)
            scored = self._scored.get(record.id)
            if scored is not None and scored.account_id == account_id:
                base.update(account_score=scored.score, account_reasons=scored.reasons)
            if owner is not None:
                owner_pool = PoolSpec(key=f"rep:{owner}", members=(owner,), fallback_queue=owner)
                result = self._from_pool(owner_pool, record, now, states)
                if result[0] is not None:
                    chosen, candidates, _dropped, new_states = result
                    assert chosen is not None
                    return (
                        RoutingDecision(
                            status=RoutingStatus.ASSIGNED,
                            reason=Reason.ACCOUNT_MATCH,
                            owner_id=chosen.id,
                            pool=owner_pool.key,
                            **base,
                        ),
                        _Plan(owner_pool, chosen, candidates),
                        new_states,
                    )
                pre.extend(result[2])
        index = self.rules.first_match_index(record, now)
        pool: PoolSpec | None
        if index >= 0:
            rule, pool = self.rules.rules[index], self._pools[index]
            reason = Reason.RULE_MATCHED
        elif self._default_rule is not None:
            rule, pool = self._default_rule, self._default_pool
            reason = Reason.DEFAULT_TARGET
        else:
            return (
                RoutingDecision(
                    status=RoutingStatus.UNASSIGNED,
                    reason=Reason.NO_RULE_MATCHED,
                    dropped=tuple(pre),
                    **base,
                ),
                None,
                states,
            )
        is_rule = reason == Reason.RULE_MATCHED
        base.update(
            rule_id=rule.id if is_rule else None,
            rule_name=rule.name if is_rule else None,
            template_id=rule.template_id,
        )
        if pool is None:
            return (
                RoutingDecision(
                    status=RoutingStatus.QUEUED,
                    reason=Reason.QUEUE_TARGET if is_rule else reason,
                    queue=rule.target_id,
                    dropped=tuple(pre),
                    **base,
                ),
                None,
                states,
            )
        chosen, candidates, dropped, new_states = self._from_pool(pool, record, now, states)
        team: dict[str, Any] = {
            "team_id": pool.team_id,
            "strategy": pool.strategy if pool.team_id else None,
        }
        if chosen is None:
            return (
                RoutingDecision(
                    status=RoutingStatus.QUEUED,
                    reason=Reason.UNKNOWN_TEAM if pool.unknown else Reason.NO_ELIGIBLE_REP,
                    queue=pool.fallback_queue,
                    pool=pool.key,
                    dropped=merge_dropped(pre, dropped),
                    **team,
                    **base,
                ),
                None,
                states,
            )
        return (
            RoutingDecision(
                status=RoutingStatus.ASSIGNED,
                reason=reason,
                owner_id=chosen.id,
                pool=pool.key,
                dropped=merge_dropped(pre, dropped),
                **team,
                **base,
            ),
            _Plan(pool, chosen, candidates),
            new_states,
        )

    def _static(self, rep: Rep, now: datetime) -> Reason | None:
        cache = self._static_cache
        if cache[0] != now:
            cache = self._static_cache = (now, {})
        known = cache[1]
        if rep.id not in known:
            known[rep.id] = static_reason(rep, now, self.respect_hours)
        return known[rep.id]

    def _account_for(self, record: Any) -> _Hit | None:
        if self._matcher is not None and self._scored_on.get(record.id) != (
            record.email,
            record.company,
            record.country,
        ):  # not scored in this operation (sweep, apply), or scored on other values
            self._score_account(record)
        for step in self._account_steps:
            value = getattr(record, step.field)
            key = step.key(value) if value else None
            if key is not None:
                hit = step.table.get(key)
                if hit is not None:
                    return hit
        return None

    def _from_pool(
        self, pool: PoolSpec, record: Any, now: datetime, states: dict[str, dict[str, Any]]
    ) -> tuple[Rep | None, tuple[Rep, ...], list[Dropped], dict[str, dict[str, Any]]]:
        state = states.get(pool.key) or self._state(pool.key)
        if pool.count_manual:
            state = _copy_state(state)
            self._sync_manual(pool, state)
            states = {**states, pool.key: state}
        now_us = _micros(now)
        matches = pool.matches
        values = [record_value(record, m.record_field) for m in matches] if matches else []
        pooled_checks = bool(pool.skills) or pool.strategy == "weighted"
        loads = self._loads
        candidates: list[Rep] = []
        dropped: list[Dropped] = []
        for rep_id in pool.members:
            rep = self._reps.get(rep_id)
            if rep is None:
                dropped.append(drop(rep_id, Reason.UNKNOWN_REP))
                continue
            why = self._static(rep, now)
            if why is not None:
                dropped.append(drop(rep_id, why, rep))
                continue
            if matches:
                bad = next(
                    (
                        mismatch(rep, m, v)
                        for m, v in zip(matches, values, strict=True)
                        if not m.accepts(rep, v)
                    ),
                    None,
                )
                if bad is not None:
                    dropped.append(bad)
                    continue
            if pooled_checks:
                pooled = pool_reason(rep, pool)
                if pooled is not None:
                    dropped.append(pooled)
                    continue
            if rep.capacity is not None or rep.custom:
                left, binding = loads.allowance(rep, now_us)
                if left <= 0:
                    assert binding is not None
                    dropped.append(drop(rep_id, binding, rep))
                    continue
            candidates.append(rep)
        if not candidates:
            return None, (), dropped, states
        chosen = pick(pool, state, candidates, self._loads)
        new_state = _copy_state(state)
        advance(pool, new_state, chosen, candidates)
        return chosen, tuple(candidates), dropped, {**states, pool.key: new_state}

    # -- writing ----------------------------------------------------------------------------

    def apply(self, decision: RoutingDecision, record: Any | None = None) -> Any:
        """Write a decision made with ``apply=False``: the record's owner or queue, an
        ownership change, and the rotation step it took. Returns the stored record.

        The decision is re-checked: if the rotation moved on since, route again instead.
        """
        if record is not None:
            self._check_record(record)
        now = decision.at or self.clock.now()
        repo = self.store.repository(self.record_type)

        def write() -> Any:
            self._begin(now)
            current = repo.get(decision.record_id) if record is None else record
            again, plan, states = self._decide(current, now, {})
            if (again.status, again.owner_id, again.queue) != (
                decision.status,
                decision.owner_id,
                decision.queue,
            ):
                raise ValidationError(
                    self.record_type.__name__,
                    "owner_id",
                    decision.owner_id,
                    "this decision is stale (the rotation or loads moved on); route it again",
                    record_id=decision.record_id,
                )
            return self._write([(current, again, plan)], states, now)[0]

        stored = run_transaction(self.store, write, attempts=ATTEMPTS, lock=self._lock_name)
        self._remember([stored])
        return stored

    def _write(
        self,
        items: Sequence[tuple[Any, RoutingDecision, _Plan | None]],
        states: dict[str, dict[str, Any]],
        now: datetime,
    ) -> list[Any]:
        """Write decisions inside the caller's transaction: every record (assigned,
        queued, or left with the owner it came with), an ownership change for each new
        owner, and the rotation state the decisions moved on."""
        repo = self.store.repository(self.record_type)
        name = self.record_type.__name__
        to_write = [self._updated(record, decision, now) for record, decision, _ in items]
        changes = [
            OwnershipChange(
                id=f"oc-{uuid.uuid4().hex}",
                record_type=name,
                record_id=record.id,
                from_owner_id=record.owner_id,
                to_owner_id=decision.owner_id,
                at=now,
                reason=f"routing: {decision.reason}"
                + (f" ({decision.rule_id})" if decision.rule_id else ""),
                changed_by=ROUTER,
            )
            for record, decision, _ in items
            if decision.status == RoutingStatus.ASSIGNED
            and decision.reason != Reason.ALREADY_OWNED
        ]
        stored: list[Any] = repo.put_many(to_write)
        if changes:
            self.store.ownership_changes.add_many(changes)
        _routed(self.store, name, [decision for _, decision, _ in items], changes)
        for key in sorted(states):
            if states[key] is not self._states.get(key):
                self.store.save_state(self._state_name(key), states[key])
        return stored

    def _remember(self, records: Iterable[Any]) -> None:
        """Add written records to the duplicate index (after their transaction)."""
        field = "email" if self.record_type is Lead else "sender_email"
        for record in records:
            email = getattr(record, field)
            if email:
                self._remember_email(email.lower(), record.id)
            if self._duplicate_index is not None:
                self._duplicate_index.add(record)

    def _updated(self, record: Any, decision: RoutingDecision, now: datetime) -> Any:
        changes: dict[str, Any] = {}
        if decision.reason != Reason.ALREADY_OWNED:
            changes.update(owner_id=decision.owner_id, queue=decision.queue)
            if self.record_type is Lead:
                changes["assigned_at"] = now if decision.status == RoutingStatus.ASSIGNED else None
            else:
                changes["team_id"] = decision.team_id
                changes["template_id"] = decision.template_id
        if self.record_type is Inquiry:
            if record.account_id is None and decision.account_id is not None:
                changes["account_id"] = decision.account_id
            if record.contact_id is None and decision.contact_id is not None:
                changes["contact_id"] = decision.contact_id
        if record.created_at is None if self.record_type is Lead else record.received_at is None:
            changes["created_at" if self.record_type is Lead else "received_at"] = now
        return attrs.evolve(record, **changes) if changes else record

    # -- many records ------------------------------------------------------------------------

    def route_many(self, records: Iterable[Any], *, apply: bool = True) -> list[RoutingDecision]:
        """Route records in arrival order; the same decisions as :meth:`route` one by one,
        computed with numpy masks for the rules and vectorised strategies.

        With ``apply`` everything (records, ownership changes, rotation) is read and
        written in one :func:`~crmkit.store.run_transaction`.
        """
        batch = list(records)
        for record in batch:
            self._check_record(record)
        ids = [r.id for r in batch]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise ValidationError(
                self.record_type.__name__, "id", dup, "appears twice in the batch", record_id=dup
            )
        checks = self._check_duplicates(batch)
        if self._matcher is not None:
            self._score_accounts(batch)
        now = self.clock.now()
        columns = columns_of(self.record_type, batch, self._batch_fields())

        def decide() -> list[RoutingDecision]:
            self._begin(now)
            result = self._route_columns(columns, now, lambda i: batch[i])
            decisions = [result.decision(i) for i in range(len(batch))]
            if apply:
                plans: list[tuple[Any, RoutingDecision, _Plan | None]] = [
                    (r, d, None) for r, d in zip(batch, decisions, strict=True)
                ]
                self._write(plans, result.states, now)
            return decisions

        if not apply:
            decisions = decide()
        else:
            decisions = run_transaction(
                self.store, decide, attempts=ATTEMPTS, lock=self._lock_name
            )
            self._remember(batch)
            _log_outcomes(decisions)
        return [
            self._with_findings(d, checks[i] if checks else None) for i, d in enumerate(decisions)
        ]

    def route_columns(self, columns: Mapping[str, Array]) -> RoutingBatch:
        """Decide routes for records given as numpy columns (``id`` plus the fields the rules
        read, see :meth:`batch_fields`), without writing. Nothing is built per row until you
        ask for ``result.decision(i)``; ``result.owner`` etc. are arrays.

        A missing ``sender_domain`` column is derived from ``sender_email``.
        """
        now = self.clock.now()
        optional = {"email", "sender_email", "owner_id", "status", "company", "country"} | {
            step.field for step in self._account_steps
        }
        columns = dict(columns)
        if "sender_domain" not in columns and "sender_email" in columns:
            senders = np.asarray(columns["sender_email"]).astype(str)
            has_at = np.char.find(senders, "@") >= 0
            columns["sender_domain"] = np.where(
                has_at,
                np.char.lower(np.char.strip(np.char.rpartition(senders, "@")[:, 2]))
                if senders.size
                else senders,
                "",
            )
        missing = [f for f in self._batch_fields() if f not in columns and f not in optional]
        if missing:
            raise ValidationError(
                self.record_type.__name__, None, sorted(columns), f"columns lack {missing}"
            )
        self._begin(now)
        if self._matcher is not None:
            n = np.asarray(columns["id"]).size
            self._score_accounts(_RowView(columns, i) for i in range(n))
        return self._route_columns(columns, now, None)

    def batch_fields(self) -> list[str]:
        """The columns :meth:`route_columns` needs."""
        return self._batch_fields()

    def _batch_fields(self) -> list[str]:
        fields = set(self.rules.fields) | {"id", "owner_id", "status"}
        fields.add("email" if self.record_type is Lead else "sender_email")
        fields |= {step.field for step in self._account_steps}
        if self._matcher is not None:
            fields |= {"email", "company", "country"}
        for pool in [*self._pools, self._default_pool]:
            if pool is not None:
                fields |= {m.record_field for m in pool.matches}
        return sorted(fields)

    def _route_columns(
        self,
        columns: Mapping[str, Array],
        now: datetime,
        record_at: Callable[[int], Any] | None,
    ) -> RoutingBatch:
        from crmkit.routing._bulk import route_batch

        return route_batch(self, columns, now, record_at)

    # -- sweeping -----------------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> list[RoutingDecision]:
        """Retry every open record without an owner; escalate those past the SLA.

        Returns the decisions that changed something (new owner, queue or escalation).
        """
        if now is not None:
            from crmkit.clock import FixedClock

            clock: Clock = FixedClock(now)
        else:
            clock = self.clock
        saved, self.clock = self.clock, clock
        try:
            return self._sweep(clock.now())
        finally:
            self.clock = saved

    def _sweep(self, now: datetime) -> list[RoutingDecision]:
        name = self.record_type.__name__
        repo = self.store.repository(self.record_type)
        waiting = repo.query(
            {
                "all": [
                    {"field": "owner_id", "op": "is null"},
                    {"field": "status", "op": "in", "value": list(OPEN_STATUSES[name])},
                ]
            },
            order_by="created_at" if self.record_type is Lead else "received_at",
        )

        def retry(record_id: str) -> RoutingDecision | None:
            self._begin(now)
            record = repo.get(record_id)  # as it is now: another process may have routed it
            if record.owner_id is not None or record.status not in OPEN_STATUSES[name]:
                return None
            decision, plan, states = self._decide(record, now, {})
            if decision.status != RoutingStatus.ASSIGNED:
                escalated = self._escalate(record, decision, now)
                if escalated is not None:
                    return escalated
                if decision.queue == record.queue:
                    return None
            self._write([(record, decision, plan)], states, now)
            return decision

        out: list[RoutingDecision] = []
        for record in waiting:
            decision = run_transaction(
                self.store,
                functools.partial(retry, record.id),
                attempts=ATTEMPTS,
                lock=self._lock_name,
            )
            if decision is not None:
                out.append(decision)
        _log_outcomes(out)
        return out

    def _escalate(
        self, record: Any, decision: RoutingDecision, now: datetime
    ) -> RoutingDecision | None:
        esc = self.escalation
        if esc is None:
            return None
        since = record.created_at if self.record_type is Lead else record.received_at
        if since is None or record.queue == esc.target.id:
            return None
        if esc.schedule.business_hours_between(since, now) < esc.after_hours:
            return None
        base = attrs.evolve(
            decision,
            reason=Reason.ESCALATED,
            status=RoutingStatus.QUEUED,
            owner_id=None,
            queue=esc.target.id,
        )
        plan: _Plan | None = None
        states: dict[str, dict[str, Any]] = {}
        if esc.target.kind == TargetKind.REP:
            base = attrs.evolve(
                base, status=RoutingStatus.ASSIGNED, owner_id=esc.target.id, queue=None
            )
        elif esc.target.kind == TargetKind.TEAM:
            rule = RoutingRule(
                id="(escalation)",
                applies_to=self.record_type.__name__,
                target_kind=TargetKind.TEAM,
                target_id=esc.target.id,
                strategy=esc.target.strategy,
            )
            pool = self._pool_of(rule)
            assert pool is not None
            chosen, candidates, dropped, states = self._from_pool(pool, record, now, states)
            base = attrs.evolve(base, team_id=esc.target.id, dropped=tuple(dropped))
            if chosen is not None:
                base = attrs.evolve(
                    base, status=RoutingStatus.ASSIGNED, owner_id=chosen.id, queue=None
                )
                plan = _Plan(pool, chosen, candidates)
        self._write([(record, base, plan)], states, now)
        return base


def _copy_state(state: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "seq": state["seq"],
        "last": dict(state["last"]),
        "swrr": dict(state["swrr"]),
        "manual_mark": state.get("manual_mark"),
    }


def _micros(now: datetime) -> int:
    delta = now - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# -- logging ---------------------------------------------------------------------------------

_log = logging.getLogger("crmkit.routing")

#: reason -> (level, what happened); the other reasons are routine and not logged
_LOGGED = {
    Reason.NO_RULE_MATCHED: (logging.WARNING, "matched no routing rule"),
    Reason.UNKNOWN_TEAM: (logging.WARNING, "routed to a team that does not exist"),
    Reason.NO_ELIGIBLE_REP: (logging.INFO, "found no eligible rep"),
    Reason.DEFAULT_TARGET: (logging.INFO, "matched no routing rule, went to the default"),
    Reason.ESCALATED: (logging.INFO, "escalated"),
}


def _log_outcomes(decisions: Sequence[RoutingDecision]) -> None:
    """Log the written decisions someone should look at, one line per reason and place:
    ``Lead l7, l9: found no eligible rep; now in queue apac (no_eligible_rep)``."""
    groups: dict[tuple[Reason, str, str | None, str | None], list[str]] = {}
    for d in decisions:
        if d.reason in _LOGGED:
            key = (d.reason, d.record_type, d.queue, d.owner_id)
            groups.setdefault(key, []).append(d.record_id)
    for (reason, record_type, queue, owner), ids in groups.items():
        level, what = _LOGGED[reason]
        now = f"in queue {queue}" if queue else f"owned by {owner}" if owner else "unassigned"
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        _log.log(
            level,
            "%s %s: %s; now %s (%s)",
            record_type,
            shown,
            what,
            now,
            reason.value,
            extra={"reason": reason.value, "record_type": record_type, "record_ids": ids},
        )
