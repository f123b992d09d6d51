"""The Router: rules, account pre-match, pools and strategies; one record or a batch."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from crmkit._columns import columns_of
from crmkit.clock import Clock, SystemClock
from crmkit.errors import ValidationError
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
)

if TYPE_CHECKING:
    from crmkit.routing._bulk import RoutingBatch

Array = np.ndarray[Any, Any]

DEFAULT_TARGET = Target("queue", "unrouted")
"""Where records no rule matches go unless you say otherwise."""

ROUTER = "crmkit.routing"
"""``changed_by`` of the ownership changes the router writes."""

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
    the owner or queue and an :class:`~crmkit.records.OwnershipChange`, all in one store
    transaction. Rotation state lives in the store (``load_state``), so a new Router over
    the same store continues exactly where the last one stopped, and
    ``route_many(records)`` gives the same decisions as routing them one by one.

    The Router caches reps, loads and rotation state; call :meth:`refresh` after changing
    reps or rules, or when another process routes into the same store.

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
    ) -> None:
        if record_type not in (Lead, Inquiry):
            raise ValidationError(
                "Router", "record_type", record_type, "routes Lead or Inquiry records"
            )
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
        """Re-read rules, reps, loads, accounts and rotation state from the store."""
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
        # loads: open records per owner, assignment times of reps with quotas
        repo = self.store.repository(self.record_type)
        cols = repo.columns(
            ["id", "owner_id", "status", "email" if name == "Lead" else "sender_email"]
        )
        owners, statuses = cols["owner_id"], cols["status"]
        open_mask = np.isin(statuses, np.array(OPEN_STATUSES[name])) & (owners != "")
        found, counts = np.unique(owners[open_mask], return_counts=True)
        quota_reps = {
            r.id for r in self._reps.values() if QUOTA_DAY in r.custom or QUOTA_30_DAYS in r.custom
        }
        recent: dict[str, list[int]] = {}
        if quota_reps:
            changes = self.store.ownership_changes.columns(
                ["record_type", "to_owner_id", "at"],
                {"field": "record_type", "op": "==", "value": name},
            )
            at_us = changes["at"].astype("datetime64[us]").astype(np.int64)
            for rep_id in quota_reps:
                recent[rep_id] = sorted(at_us[changes["to_owner_id"] == rep_id].tolist())
        self._quota_reps = frozenset(quota_reps)
        self._loads = Loads(dict(zip(found.tolist(), counts.tolist(), strict=True)), recent)
        # duplicate index: email -> the two smallest ids holding it
        emails = cols["email" if name == "Lead" else "sender_email"]
        self._emails: dict[str, list[str]] = {}
        ids = cols["id"]
        have = emails != ""
        lowered = np.char.lower(emails[have]) if have.any() else np.array([], dtype=str)
        for email, rid in zip(lowered.tolist(), ids[have].tolist(), strict=True):
            self._remember_email(email, rid)
        # accounts by domain and normalised name
        self._by_domain: dict[str, tuple[str, str | None]] = {}
        self._by_company: dict[str, tuple[str, str | None]] = {}
        if self.match_accounts:
            for account in self.store.accounts:
                if account.domain:
                    self._by_domain.setdefault(
                        account.domain.strip().lower(), (account.id, account.owner_id)
                    )
                key = normalise_company(account.name)
                if key:
                    self._by_company.setdefault(key, (account.id, account.owner_id))
        self._states = {}
        self._static_cache: tuple[datetime | None, dict[str, Reason | None]] = (None, {})

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
        return pool_for_rule(rule, members, self.record_type)

    def _state(self, key: str) -> dict[str, Any]:
        state = self._states.get(key)
        if state is None:
            state = self.store.load_state(self._state_name(key)) or new_state()
            self._states[key] = state
        return state

    def _state_name(self, key: str) -> str:
        return f"crmkit.routing.{self.record_type.__name__}.{key}"

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
        """Route one record. With ``apply`` (the default) the decision is written at once."""
        self._check_record(record)
        now = self.clock.now()
        decision, plan, states = self._decide(record, now, dict(self._states))
        if apply:
            self._commit([(record, decision, plan)], states, now)
        return decision

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
        if self.match_accounts and self.record_type is Lead:
            account = self._account_for(record)
            if account is not None:
                account_id, owner = account
                base["account_id"] = account_id
                if owner is not None:
                    owner_pool = PoolSpec(
                        key=f"rep:{owner}", members=(owner,), fallback_queue=owner
                    )
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
                    reason=Reason.NO_ELIGIBLE_REP,
                    queue=pool.fallback_queue,
                    pool=pool.key,
                    dropped=(*pre, *dropped),
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
                dropped=(*pre, *dropped),
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

    def _account_for(self, record: Any) -> tuple[str, str | None] | None:
        domain = email_domain(record.email)
        if domain is not None and domain in self._by_domain:
            return self._by_domain[domain]
        key = normalise_company(record.company)
        if key is not None and key in self._by_company:
            return self._by_company[key]
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
        if record is None:
            record = self.store.repository(self.record_type).get(decision.record_id)
        self._check_record(record)
        now = decision.at or self.clock.now()
        again, plan, states = self._decide(record, now, dict(self._states))
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
        return self._commit([(record, again, plan)], states, now)[0]

    def _commit(
        self,
        items: Sequence[tuple[Any, RoutingDecision, _Plan | None]],
        states: dict[str, dict[str, Any]],
        now: datetime,
    ) -> list[Any]:
        repo = self.store.repository(self.record_type)
        name = self.record_type.__name__
        written: list[Any] = []
        to_write: list[Any] = []
        changes: list[OwnershipChange] = []
        touched = {key for key in states if states[key] is not self._states.get(key)}
        with self.store.transaction():
            for record, decision, _plan in items:
                if decision.reason == Reason.ALREADY_OWNED:  # left exactly as it is
                    written.append(record)
                    continue
                new = self._updated(record, decision, now)
                written.append(new)
                to_write.append(new)
                if decision.status == RoutingStatus.ASSIGNED:
                    changes.append(
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
                    )
            stored = {r.id: r for r in repo.put_many(to_write)}
            if changes:
                self.store.ownership_changes.add_many(changes)
            for key in sorted(touched):
                self.store.save_state(self._state_name(key), states[key])
        # the transaction landed: move the caches on
        self._states.update({k: states[k] for k in touched})
        now_us = _micros(now)
        for record, decision, _plan in items:
            if decision.reason == Reason.ALREADY_OWNED:
                continue
            email = record.email if name == "Lead" else record.sender_email
            if email:
                self._remember_email(email.lower(), record.id)
            if decision.status == RoutingStatus.ASSIGNED:
                assert decision.owner_id is not None
                self._loads.open[decision.owner_id] = (
                    self._loads.open.get(decision.owner_id, 0) + 1
                )
                if decision.owner_id in self._quota_reps:
                    self._loads.recent.setdefault(decision.owner_id, []).append(now_us)
        return [stored.get(r.id, r) for r in written]

    def _updated(self, record: Any, decision: RoutingDecision, now: datetime) -> Any:
        if decision.reason == Reason.ALREADY_OWNED:
            return record
        changes: dict[str, Any] = {"owner_id": decision.owner_id, "queue": decision.queue}
        if self.record_type is Lead:
            changes["assigned_at"] = now if decision.status == RoutingStatus.ASSIGNED else None
        else:
            changes["team_id"] = decision.team_id
            changes["template_id"] = decision.template_id
        if record.created_at is None if self.record_type is Lead else record.received_at is None:
            changes["created_at" if self.record_type is Lead else "received_at"] = now
        return attrs.evolve(record, **changes)

    # -- many records ------------------------------------------------------------------------

    def route_many(self, records: Iterable[Any], *, apply: bool = True) -> list[RoutingDecision]:
        """Route records in arrival order; the same decisions as :meth:`route` one by one,
        computed with numpy masks for the rules and vectorised strategies.

        With ``apply`` everything (records, ownership changes, rotation) is written in one
        transaction.
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
        now = self.clock.now()
        fields = self._batch_fields()
        columns = columns_of(self.record_type, batch, fields)
        result = self._route_columns(columns, now, lambda i: batch[i])
        decisions = [result.decision(i) for i in range(len(batch))]
        if apply:
            plans: list[tuple[Any, RoutingDecision, _Plan | None]] = [
                (r, d, None) for r, d in zip(batch, decisions, strict=True)
            ]
            self._commit(plans, result.states, now)
        return decisions

    def route_columns(self, columns: Mapping[str, Array]) -> RoutingBatch:
        """Decide routes for records given as numpy columns (``id`` plus the fields the rules
        read, see :meth:`batch_fields`), without writing. Nothing is built per row until you
        ask for ``result.decision(i)``; ``result.owner`` etc. are arrays."""
        now = self.clock.now()
        optional = {"email", "sender_email", "owner_id"}
        missing = [f for f in self._batch_fields() if f not in columns and f not in optional]
        if missing:
            raise ValidationError(
                self.record_type.__name__, None, sorted(columns), f"columns lack {missing}"
            )
        return self._route_columns(columns, now, None)

    def batch_fields(self) -> list[str]:
        """The columns :meth:`route_columns` needs."""
        return self._batch_fields()

    def _batch_fields(self) -> list[str]:
        fields = set(self.rules.fields) | {"id", "owner_id"}
        fields.add("email" if self.record_type is Lead else "sender_email")
        if self.match_accounts and self.record_type is Lead:
            fields |= {"company"}
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
        out: list[RoutingDecision] = []
        for record in waiting:
            decision, plan, states = self._decide(record, now, dict(self._states))
            if decision.status == RoutingStatus.ASSIGNED:
                self._commit([(record, decision, plan)], states, now)
                out.append(decision)
                continue
            escalated = self._escalate(record, decision, now)
            if escalated is not None:
                out.append(escalated)
            elif decision.queue != record.queue:
                self._commit([(record, decision, plan)], states, now)
                out.append(decision)
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
        states = dict(self._states)
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
        self._commit([(record, base, plan)], states, now)
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
