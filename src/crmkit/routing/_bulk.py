"""Routing a batch: rules by progressive numpy masks, strategies vectorised per pool.

Pools that cannot interact are assigned independently and vectorised (round robin and
load balancing have closed forms, see ``_pools.rr_picks`` / ``lb_picks``). Pools that can
interact — two pools sharing a rep whose capacity or quota is finite, sub-pools of one pool
that share reps, weighted pools, account owners with a finite allowance — are decided record
by record in arrival order with the single-record code, so the batch always equals routing
the records one by one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from crmkit.records import Lead, Rep
from crmkit.routing._pools import (
    BIG,
    PoolSpec,
    drop,
    lb_picks,
    match_text,
    mismatch,
    pool_reason,
    rotation_order,
    rr_picks,
    static_reason,
)
from crmkit.routing._types import Dropped, Reason, RoutingDecision, RoutingStatus

if TYPE_CHECKING:
    from crmkit.routing._router import Router

Array = np.ndarray[Any, Any]

_OWNED, _QUEUE, _NONE, _POOL, _SEQ = 0, 1, 2, 3, 4


class _Unit:
    """Rows that draw from one pool with one set of match values."""

    def __init__(
        self, uid: int, spec: PoolSpec, values: tuple[str | None, ...], rule: int
    ) -> None:
        self.uid = uid
        self.spec = spec
        self.values = values
        self.rule = rule  # rule index, -1 default, -3 account owner
        self.rows: list[Array] = []
        self.order: list[str] = []  # eligible reps, rotation order
        self.allow: dict[str, int] = {}
        self.binding: dict[str, Reason | None] = {}
        self.static: dict[str, Dropped] = {}  # members that cannot take anything
        self.exhaust: dict[str, int] = {}  # unit position after which the rep is full
        self.picks: Array | None = None
        self.pos_rows: Array | None = None


class _Union:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class RoutingBatch:
    """Decisions for a batch, as arrays; :meth:`decision` builds one ``RoutingDecision``.

    ``owner_code`` and ``queue_code`` hold, per row, a position in ``owner_ids`` /
    ``queue_ids`` (-1: none); ``owner`` and ``queue`` are the same as object arrays of ids
    (``None`` where not set), built when first asked for. ``status`` holds
    ``"assigned"``/``"queued"``/``"unassigned"`` and ``rule`` the matched rule's index in
    the rule set (-1: the default target, -2: none).
    """

    def __init__(self, router: Router, n: int, now: datetime) -> None:
        self.router = router
        self.now = now
        self.n = n
        self.kind = np.full(n, _QUEUE, dtype=np.int8)
        self.rule = np.full(n, -2, dtype=np.int64)
        self.owner_code = np.full(n, -1, dtype=np.int32)
        self.owner_ids: list[str] = []
        self.queue_code = np.full(n, -1, dtype=np.int32)
        self.queue_ids: list[str] = []
        self._code_of: dict[tuple[bool, str], int] = {}
        self._objects: dict[str, Array] = {}
        self.ids: Array = np.array([], dtype=str)
        self.unit = np.full(n, -1, dtype=np.int64)
        self.unit_pos = np.full(n, -1, dtype=np.int64)
        self.pre: dict[int, Dropped] = {}
        self.sequential: dict[int, RoutingDecision] = {}
        self.units: list[_Unit] = []
        self.states: dict[str, dict[str, Any]] = {}

    def _code(self, queue: bool, value: str) -> int:
        key = (queue, value)
        code = self._code_of.get(key)
        if code is None:
            table = self.queue_ids if queue else self.owner_ids
            code = self._code_of[key] = len(table)
            table.append(value)
        return code

    def _set(self, queue: bool, rows: Any, value: str | None) -> None:
        """Owner (or queue) of some rows; None clears it."""
        codes = self.queue_code if queue else self.owner_code
        codes[rows] = -1 if value is None else self._code(queue, value)
        self._objects.pop("queue" if queue else "owner", None)

    def _set_codes(self, queue: bool, rows: Array, values: Sequence[str], picks: Array) -> None:
        """``values[picks[k]]`` for row ``rows[k]``: one code per distinct value."""
        codes = self.queue_code if queue else self.owner_code
        table = np.array([self._code(queue, v) for v in values], dtype=np.int32)
        codes[rows] = table[picks]
        self._objects.pop("queue" if queue else "owner", None)

    def _lazy(self, name: str) -> Array:
        found = self._objects.get(name)
        if found is None:
            if name in ("owner", "queue"):
                codes, table = (
                    (self.owner_code, self.owner_ids)
                    if name == "owner"
                    else (self.queue_code, self.queue_ids)
                )
                found = np.array([*table, None], dtype=object)[codes]
            else:
                found = np.full(self.n, None, dtype=object)
            self._objects[name] = found
        return found

    @property
    def owner(self) -> Array:
        """The owner id per row, ``None`` where not assigned (an object array, built from
        ``owner_code`` and ``owner_ids`` when first asked for)."""
        return self._lazy("owner")

    @property
    def queue(self) -> Array:
        """The queue per row, ``None`` where not queued (built from ``queue_code`` and
        ``queue_ids``)."""
        return self._lazy("queue")

    @property
    def duplicate_of(self) -> Array:
        return self._lazy("duplicate_of")

    @duplicate_of.setter
    def duplicate_of(self, value: Array) -> None:
        self._objects["duplicate_of"] = value

    @property
    def account(self) -> Array:
        return self._lazy("account")

    @property
    def account_owner(self) -> Array:
        return self._lazy("account_owner")

    @property
    def contact(self) -> Array:
        return self._lazy("contact")

    def __len__(self) -> int:
        return self.n

    @property
    def status(self) -> Array:
        """``"assigned"``, ``"queued"`` or ``"unassigned"`` per row."""
        owned = self.owner_code >= 0
        queued = ~owned & (self.queue_code >= 0)
        out = np.full(self.n, "unassigned", dtype="<U10")
        out[owned] = "assigned"
        out[queued] = "queued"
        return out

    def counts(self) -> dict[str, int]:
        """How many records each owner (or ``queue:<name>``) received, and how many were
        left ``unassigned``."""
        labels = [
            str(o) if o is not None else f"queue:{q}" if q is not None else "unassigned"
            for o, q in zip(self.owner.tolist(), self.queue.tolist(), strict=True)
        ]
        values, counts = np.unique(np.array(labels, dtype=str), return_counts=True)
        return dict(zip(values.tolist(), counts.tolist(), strict=True))

    def decisions(self) -> list[RoutingDecision]:
        return [self.decision(i) for i in range(self.n)]

    def decision(self, i: int) -> RoutingDecision:
        """The full decision for row ``i``."""
        if i in self.sequential:
            return self.sequential[i]
        router = self.router
        base: dict[str, Any] = {
            "record_type": router.record_type.__name__,
            "record_id": str(self.ids[i]),
            "duplicate_of": self.duplicate_of[i],
            "at": self.now,
        }
        kind = int(self.kind[i])
        if kind == _OWNED:
            return RoutingDecision(
                status=RoutingStatus.ASSIGNED,
                reason=Reason.ALREADY_OWNED,
                owner_id=self.owner[i],
                **base,
            )
        base.update(
            account_id=self.account[i],
            account_owner_id=self.account_owner[i],
            contact_id=self.contact[i],
        )
        pre = (self.pre[i],) if i in self.pre else ()
        if kind == _NONE:
            return RoutingDecision(
                status=RoutingStatus.UNASSIGNED, reason=Reason.NO_RULE_MATCHED, dropped=pre, **base
            )
        rule_index = int(self.rule[i])
        if rule_index >= 0:
            rule = router.rules.rules[rule_index]
            reason = Reason.RULE_MATCHED
            base.update(rule_id=rule.id, rule_name=rule.name, template_id=rule.template_id)
        elif rule_index == -1:
            assert router._default_rule is not None
            rule = router._default_rule
            reason = Reason.DEFAULT_TARGET
            base.update(template_id=rule.template_id)
        else:
            reason = Reason.ACCOUNT_MATCH
        if kind == _QUEUE:
            return RoutingDecision(
                status=RoutingStatus.QUEUED,
                reason=Reason.QUEUE_TARGET if reason == Reason.RULE_MATCHED else reason,
                queue=self.queue[i],
                dropped=pre,
                **base,
            )
        unit = self.units[int(self.unit[i])]
        pos = int(self.unit_pos[i])
        spec = unit.spec
        dropped: list[Dropped] = list(pre)
        for rep_id in spec.members:
            if pre and rep_id == pre[0].rep_id:  # the account owner, skipped already
                continue
            if rep_id in unit.static:
                dropped.append(unit.static[rep_id])
            elif unit.exhaust.get(rep_id, BIG) < pos:
                rep = router._reps[rep_id]
                binding = unit.binding[rep_id]
                assert binding is not None
                dropped.append(drop(rep_id, binding, rep))
        if reason == Reason.ACCOUNT_MATCH:
            return RoutingDecision(
                status=RoutingStatus.ASSIGNED,
                reason=reason,
                owner_id=self.owner[i],
                pool=spec.key,
                **base,
            )
        team: dict[str, Any] = {
            "team_id": spec.team_id,
            "strategy": spec.strategy if spec.team_id else None,
        }
        if self.owner[i] is None:
            return RoutingDecision(
                status=RoutingStatus.QUEUED,
                reason=Reason.UNKNOWN_TEAM if spec.unknown else Reason.NO_ELIGIBLE_REP,
                queue=spec.fallback_queue,
                pool=spec.key,
                dropped=tuple(dropped),
                **team,
                **base,
            )
        return RoutingDecision(
            status=RoutingStatus.ASSIGNED,
            reason=reason,
            owner_id=self.owner[i],
            pool=spec.key,
            dropped=tuple(dropped),
            **team,
            **base,
        )


def _text(col: Array) -> Array:
    if col.dtype.kind == "U":
        return col
    return np.array(["" if v is None else str(v) for v in col.tolist()], dtype=str)


def _match_codes(
    columns: Mapping[str, Array], field: str, rows: Array
) -> tuple[Array, list[str | None]]:
    """Codes per row and the match text of each code."""
    col = np.asarray(columns[field])[rows]
    if col.dtype.kind == "U":
        uniq, inverse = np.unique(col, return_inverse=True)
        return inverse, [None if u == "" else u for u in uniq.tolist()]
    texts = np.array(["\x00" if (t := match_text(_py(v))) is None else t for v in col.tolist()])
    uniq, inverse = np.unique(texts, return_inverse=True)
    return inverse, [None if u == "\x00" else u for u in uniq.tolist()]


def _py(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _duplicates(router: Router, emails: Array, ids: Array, counted: Array) -> Array:
    """Per row, the smallest other id with the same email among the stored records and
    the earlier rows that routing writes (``counted``)."""
    n = emails.size
    out = np.full(n, None, dtype=object)
    has = np.flatnonzero(emails != "")
    if has.size == 0:
        return out
    lowered = np.char.lower(emails[has])
    uniq, inverse, counts = np.unique(lowered, return_inverse=True, return_counts=True)
    # earlier rows of the batch with the same email: exclusive running minimum of ids
    earlier = np.full(has.size, None, dtype=object)
    multi = np.flatnonzero(counts[inverse] > 1)
    if multi.size:
        group = inverse[multi]
        order = np.lexsort((multi, group))
        rows = multi[order]
        grp = group[order]
        id_rank_uniq, id_rank = np.unique(ids[has][rows], return_inverse=True)
        big = id_rank_uniq.size + 1
        offset = (grp.max() - grp + 1).astype(np.int64) * big
        id_rank = np.where(counted[has][rows], id_rank, big - 1)
        running = np.minimum.accumulate(offset + id_rank)
        prev = np.empty_like(running)
        prev[0] = -1
        prev[1:] = running[:-1]
        first = np.ones(rows.size, dtype=bool)
        first[1:] = grp[1:] != grp[:-1]
        ok = ~first
        ok[ok] = (prev[ok] - offset[ok]) < big - 1
        best = prev[ok] - offset[ok]
        earlier[rows[ok]] = id_rank_uniq[best].astype(object)
    # ids already known to the router (the store)
    known = router._emails
    if known:
        for k, email in enumerate(uniq.tolist()):
            held = known.get(email)
            if not held:
                continue
            for j in np.flatnonzero(inverse == k).tolist():
                rid = str(ids[has[j]])
                stored = next((h for h in held if h != rid), None)
                if stored is not None and (earlier[j] is None or stored < earlier[j]):
                    earlier[j] = stored
    out[has] = earlier
    return out


def route_batch(
    router: Router,
    columns: Mapping[str, Array],
    now: datetime,
    record_at: Callable[[int], Any] | None,
) -> RoutingBatch:
    """Decide a batch; nothing is written (see ``Router.route_many``)."""
    from crmkit.routing._router import OPEN_STATUSES, _RowView

    ids = np.asarray(columns["id"])
    n = ids.size
    batch = RoutingBatch(router, n, now)
    batch.ids = ids
    if n == 0:
        return batch
    email_field = "email" if router.record_type is Lead else "sender_email"
    owners = _text(np.asarray(columns["owner_id"])) if "owner_id" in columns else np.full(n, "")
    owned = owners != ""
    batch.kind[owned] = _OWNED
    if owned.any():
        held, which = np.unique(owners[owned], return_inverse=True)
        batch._set_codes(False, np.flatnonzero(owned), held.tolist(), which.reshape(-1))
    if email_field in columns:
        batch.duplicate_of = _duplicates(
            router, _text(np.asarray(columns[email_field])), ids, np.ones(n, dtype=bool)
        )
    free = np.flatnonzero(~owned)
    rule_of = router.rules.first_match_columns(columns, now)
    loads = router._loads.copy()
    now_us = _micros(now)
    states: dict[str, dict[str, Any]] = {}
    if "status" in columns:
        statuses = _text(np.asarray(columns["status"]))
        open_row = np.isin(statuses, list(OPEN_STATUSES[router.record_type.__name__]))
        open_row |= statuses == ""
    else:
        open_row = np.ones(n, dtype=bool)

    def state_of(spec: PoolSpec) -> dict[str, Any]:
        if spec.key not in states:
            state = copy.deepcopy(router._state(spec.key))
            if spec.count_manual:
                router._sync_manual(spec, state)
            states[spec.key] = state
        return states[spec.key]

    units: dict[tuple[Any, ...], _Unit] = {}
    force_seq = np.zeros(n, dtype=bool)
    rule_rows = free

    # account pre-match
    if router._account_steps and free.size:
        acc_id = np.full(free.size, None, dtype=object)
        acc_owner = np.full(free.size, None, dtype=object)
        acc_contact = np.full(free.size, None, dtype=object)
        for step in router._account_steps:
            need = np.flatnonzero(acc_id == None)  # noqa: E711
            if need.size == 0:
                break
            if not step.table or step.field not in columns:
                continue
            lookup = step.keys(_text(np.asarray(columns[step.field]))[free[need]])
            uniq, inverse = np.unique(lookup, return_inverse=True)
            for k, key in enumerate(uniq.tolist()):
                hit = step.table.get(key) if key else None
                if hit is not None:
                    sel = need[inverse == k]
                    acc_id[sel], acc_owner[sel], acc_contact[sel] = hit
        batch.account[free] = acc_id
        batch.account_owner[free] = acc_owner
        batch.contact[free] = acc_contact
        to_rules = np.ones(free.size, dtype=bool)
        for owner in sorted({o for o in acc_owner.tolist() if o is not None}):
            sel = np.flatnonzero(acc_owner == owner)
            rows = free[sel]
            rep = router._reps.get(owner)
            if rep is None:
                reason: Dropped | None = drop(owner, Reason.UNKNOWN_REP)
            else:
                why = static_reason(rep, now, router.respect_hours)
                reason = drop(owner, why, rep) if why is not None else None
                if reason is None:
                    left, binding = loads.allowance(rep, now_us)
                    if left <= 0:
                        assert binding is not None
                        reason = drop(owner, binding, rep)
                    elif left < BIG:
                        force_seq[rows] = True
                        to_rules[sel] = False
                        continue
            if reason is not None:
                for r in rows.tolist():
                    batch.pre[r] = reason
                continue
            owner_spec = PoolSpec(key=f"rep:{owner}", members=(owner,), fallback_queue=owner)
            unit = units.setdefault(("account", owner), _Unit(len(units), owner_spec, (), -3))
            unit.rows.append(rows)
            batch.rule[rows] = -3
            to_rules[sel] = False
        rule_rows = free[to_rules]

    # rules
    rules = rule_of[rule_rows]
    spec: PoolSpec | None
    small = rules.astype(np.int16) if len(router.rules) < np.iinfo(np.int16).max else rules
    by_rule = np.argsort(small, kind="stable")  # a radix sort for 16-bit keys
    rule_values, rule_starts = np.unique(rules[by_rule], return_index=True)
    rule_ends = [*rule_starts[1:].tolist(), rules.size][: rule_starts.size]
    for index, start, end in zip(
        rule_values.tolist(), rule_starts.tolist(), rule_ends, strict=True
    ):
        rows = rule_rows[by_rule[start:end]]
        if index >= 0:
            spec, rule = router._pools[index], router.rules.rules[index]
        elif router._default_rule is not None:
            spec, rule = router._default_pool, router._default_rule
        else:
            batch.kind[rows] = _NONE
            continue
        batch.rule[rows] = index
        if spec is None:
            batch.kind[rows] = _QUEUE
            batch._set(True, rows, rule.target_id)
            continue
        if spec.matches:
            coded = [_match_codes(columns, m.record_field, rows) for m in spec.matches]
            combined = np.zeros(rows.size, dtype=np.int64)
            for codes, texts in coded:
                combined = combined * (len(texts) + 1) + codes
            _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
            for g, at in enumerate(first.tolist()):
                values = tuple(texts[int(codes[at])] for codes, texts in coded)
                unit = units.setdefault(
                    ("pool", spec, values), _Unit(len(units), spec, values, index)
                )
                unit.rows.append(rows[inverse == g])
        else:
            unit = units.setdefault(("pool", spec, ()), _Unit(len(units), spec, (), index))
            unit.rows.append(rows)

    # eligibility at the start of the batch
    ulist = sorted(units.values(), key=lambda u: u.uid)
    union = _Union()
    seq_units: set[int] = set()
    rep_units: dict[str, list[int]] = {}
    for unit in ulist:
        spec = unit.spec
        state = state_of(spec)
        union.find(unit.uid)
        if spec.strategy == "weighted":
            seq_units.add(unit.uid)
        eligible = []
        for rep_id in spec.members:
            rep = router._reps.get(rep_id)
            if rep is None:
                unit.static[rep_id] = drop(rep_id, Reason.UNKNOWN_REP)
                continue
            why = static_reason(rep, now, router.respect_hours)
            if why is not None:
                unit.static[rep_id] = drop(rep_id, why, rep)
                continue
            bad = next(
                (
                    mismatch(rep, m, v)
                    for m, v in zip(spec.matches, unit.values, strict=True)
                    if not m.accepts(rep, v)
                ),
                None,
            )
            if bad is not None:
                unit.static[rep_id] = bad
                continue
            pooled = pool_reason(rep, spec)
            if pooled is not None:
                unit.static[rep_id] = pooled
                continue
            left, binding = loads.allowance(rep, now_us)
            if left <= 0:
                assert binding is not None
                unit.static[rep_id] = drop(rep_id, binding, rep)
                continue
            unit.allow[rep_id] = left
            unit.binding[rep_id] = binding
            eligible.append(rep_id)
            rep_units.setdefault(rep_id, []).append(unit.uid)
        unit.order = rotation_order(state, eligible)
    # link units that can interact
    by_key: dict[str, list[_Unit]] = {}
    for unit in ulist:
        by_key.setdefault(unit.spec.key, []).append(unit)
    for rep_id, uids in rep_units.items():
        if len(uids) < 2:
            continue
        constrained = any(_weighs(ulist[uid], rep_id) for uid in uids)
        keys = {ulist[uid].spec.key for uid in uids}
        if constrained or len(keys) < len(uids):
            for uid in uids[1:]:
                union.union(uids[0], uid)
    for group in by_key.values():
        if len({u.spec for u in group}) > 1:
            for u in group[1:]:
                union.union(group[0].uid, u.uid)
    # Rows outside the units that change a rep's load part way through the batch (leads
    # that arrive with an owner, account matches decided row by row): the units that weigh
    # that rep's load and have rows after it are decided row by row.
    events: dict[str, int] = {}
    owned_events = np.zeros(0, dtype=np.int64)
    candidates = np.flatnonzero(owned & open_row)
    if candidates.size and router._load_reps:
        owned_events = candidates[np.isin(owners[candidates], sorted(router._load_reps))]
        if owned_events.size:
            owned_events = owned_events[~_counted(router, ids[owned_events], owners[owned_events])]
        for at, rep_id in zip(owned_events.tolist(), owners[owned_events].tolist(), strict=True):
            events.setdefault(rep_id, at)
    for at in np.flatnonzero(force_seq).tolist():
        events.setdefault(str(batch.account_owner[at]), at)
    if force_seq.any():  # account rows decided in turn fall back to their rule's pool
        fallback = set()
        for index in np.unique(rule_of[force_seq]).tolist():
            spec = router._pools[index] if index >= 0 else router._default_pool
            if spec is not None:
                fallback.add(spec.key)
        seq_units |= {unit.uid for unit in ulist if unit.spec.key in fallback}
    for rep_id, first_row in events.items():
        for uid in rep_units.get(rep_id, ()):
            unit = ulist[uid]
            if _weighs(unit, rep_id) and max(int(r.max()) for r in unit.rows) > first_row:
                seq_units.add(uid)
    # a routed row with a closed status adds no open load
    if not open_row.all():
        for unit in ulist:
            if any(not open_row[r].all() for r in unit.rows) and any(
                _weighs(unit, r) for r in unit.allow
            ):
                seq_units.add(unit.uid)
    sizes: dict[int, int] = {}
    for unit in ulist:
        root = union.find(unit.uid)
        sizes[root] = sizes.get(root, 0) + 1
    changed = True
    seq_roots = {union.find(uid) for uid in seq_units} | {r for r, s in sizes.items() if s > 1}
    while changed:
        changed = False
        for group in by_key.values():
            roots = {union.find(u.uid) for u in group}
            if len(roots) > 1 and roots & seq_roots:
                for u in group[1:]:
                    union.union(group[0].uid, u.uid)
                seq_roots = {union.find(r) for r in seq_roots} | {union.find(group[0].uid)}
                changed = True

    seq_rows: list[Array] = [np.flatnonzero(force_seq)]
    assigned_rows: dict[str, list[tuple[Array, Array]]] = {}
    for unit in ulist:
        rows = np.sort(np.concatenate(unit.rows))
        if union.find(unit.uid) in seq_roots:
            seq_rows.append(rows)
            continue
        batch.kind[rows] = _POOL
        batch.unit[rows] = unit.uid
        batch.unit_pos[rows] = np.arange(rows.size)
        reps = unit.order
        allow = np.array([unit.allow[r] for r in reps], dtype=np.int64)
        if unit.spec.strategy == "load_balanced":
            level = np.array(
                [loads.level(unit.spec, router._reps[r]) for r in reps], dtype=np.int64
            )
            picks = lb_picks(rows.size, level, allow)
        else:
            picks = rr_picks(rows.size, allow)
        got = picks >= 0
        if reps:
            batch._set_codes(False, rows[got], reps, picks[got])
        batch._set(True, rows[~got], unit.spec.fallback_queue)
        counts = np.bincount(picks[got], minlength=len(reps)) if reps else np.zeros(0, int)
        for k, rep_id in enumerate(reps):
            taken = int(counts[k])
            if taken >= unit.allow[rep_id] and taken:
                last_pos = int(np.flatnonzero(picks == k)[-1])
                unit.exhaust[rep_id] = last_pos
            if taken:
                loads.add(rep_id, taken)
                if rep_id in router._quota_reps:
                    loads.note_assigned(rep_id, now_us, taken)
        assigned_rows.setdefault(unit.spec.key, []).append(
            (rows[got], picks[got].astype(np.int64))
        )
        unit.picks = picks
        batch.units.append(unit)
    # units are indexed by uid in batch.units
    batch.units = ulist
    # rotation state of vectorised pools, in arrival order
    final: dict[str, dict[str, Any]] = {}
    for pool_key, parts in assigned_rows.items():
        state = states[pool_key]
        rows = np.concatenate([p[0] for p in parts])
        owners_here = np.concatenate([batch.owner_code[p[0]] for p in parts])
        order = np.argsort(rows, kind="stable")
        owners_sorted = owners_here[order]
        base = int(state["seq"])
        if owners_sorted.size:
            last_index: dict[str, int] = {}
            uniq, first_rev = np.unique(owners_sorted[::-1], return_index=True)
            for code, rev in zip(uniq.tolist(), first_rev.tolist(), strict=True):
                last_index[batch.owner_ids[code]] = owners_sorted.size - 1 - rev
            new = copy.deepcopy(state)
            new["seq"] = base + int(owners_sorted.size)
            for rep_id, idx in last_index.items():
                new["last"][rep_id] = base + idx + 1
            final[pool_key] = new
    # the rest, record by record, in arrival order
    if any(part.size for part in seq_rows):  # owned rows only matter to rows decided in turn
        seq_rows.append(owned_events)
    seq_all = np.unique(np.concatenate(seq_rows)) if seq_rows else np.array([], dtype=np.int64)
    owned_event_rows = frozenset(owned_events.tolist())
    if seq_all.size:
        saved = router._loads
        router._loads = loads
        try:
            work: dict[str, dict[str, Any]] = dict(router._states)
            for row in seq_all.tolist():
                if row in owned_event_rows:
                    loads.add(str(owners[row]))
                    continue
                record = record_at(row) if record_at is not None else _RowView(columns, row)
                decision, _plan, work = router._decide(record, now, work)
                if decision.duplicate_of != batch.duplicate_of[row]:
                    import attrs

                    decision = attrs.evolve(decision, duplicate_of=batch.duplicate_of[row])
                batch.sequential[row] = decision
                batch.kind[row] = _SEQ
                batch._set(False, row, decision.owner_id)
                batch._set(True, row, decision.queue)
                if decision.status == RoutingStatus.ASSIGNED and decision.owner_id:
                    if open_row[row]:
                        loads.add(decision.owner_id)
                    if decision.owner_id in router._quota_reps:
                        loads.note_assigned(decision.owner_id, now_us)
            final.update({k: v for k, v in work.items() if v is not router._states.get(k)})
        finally:
            router._loads = saved
    batch.states = final
    _ = Rep
    return batch


def _weighs(unit: _Unit, rep_id: str) -> bool:
    """Whether the unit's choice of ``rep_id`` depends on the rep's load."""
    return unit.allow[rep_id] < BIG or unit.spec.strategy == "load_balanced"


def _counted(router: Router, ids: Array, owners: Array) -> Array:
    """Which of these records the store already holds, open, with this owner (so writing
    them again adds nothing to the owner's load)."""
    repo = router.store.repository(router.record_type)
    stored = repo.columns(
        ["id", "owner_id", "status"], {"field": "id", "op": "in", "value": ids.tolist()}
    )
    from crmkit.routing._router import OPEN_STATUSES

    open_ = np.isin(stored["status"], list(OPEN_STATUSES[router.record_type.__name__]))
    held = dict(zip(stored["id"][open_].tolist(), stored["owner_id"][open_].tolist(), strict=True))
    return np.array(
        [held.get(i) == o for i, o in zip(ids.tolist(), owners.tolist(), strict=True)], dtype=bool
    )


def _micros(now: datetime) -> int:
    from crmkit._time import micros

    return micros(now)
