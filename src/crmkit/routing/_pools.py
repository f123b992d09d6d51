"""Pools, eligibility and strategies, for one record at a time and vectorised.

A *pool* is the set of reps a team target draws from (``team:<id>``); a direct rep target
or an account owner is a pool of one. Rotation state is kept per pool: ``seq`` counts the
assignments the pool made and ``last[rep]`` is the ``seq`` of the rep's latest one, so
"waited longest since the last assignment" is "smallest ``last``" (never assigned first,
then rep id). Load (open records) and quota counts are kept per rep, read from the store
inside the routing transaction the first time a rep is looked at (:class:`Loads`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import numpy as np

from crmkit._schema import schema_of
from crmkit._time import micros
from crmkit.errors import ValidationError
from crmkit.records import Rep, RoutingRule
from crmkit.routing._types import Dropped, Reason, in_hours

Array = np.ndarray[Any, Any]

STRATEGIES = ("load_balanced", "round_robin", "weighted")
"""The strategies a team target may use (``RoutingRule.strategy``)."""

BIG = 1 << 40  # "unlimited" remaining capacity, as an integer level
DAY_US = 86_400 * 1_000_000
MONTH_US = 30 * DAY_US
QUOTA_DAY = "quota_per_day"
QUOTA_30_DAYS = "quota_per_30_days"

_TAG_FIELDS = frozenset(a.name for a in attrs.fields(Rep) if a.metadata.get("kind") == "tags")


@attrs.frozen
class Match:
    """A dynamic attribute match: the rep's ``rep_field`` equals (or, for a list field
    such as ``skills`` or ``languages``, contains) the record's ``record_field``."""

    rep_field: str
    record_field: str

    @property
    def is_tags(self) -> bool:
        return self.rep_field in _TAG_FIELDS

    def rep_value(self, rep: Rep) -> Any:
        return getattr(rep, self.rep_field)

    def accepts(self, rep: Rep, value: str | None) -> bool:
        if value is None:
            return False
        have = getattr(rep, self.rep_field)
        return value in have if self.is_tags else have == value


def record_value(record: Any, field: str) -> str | None:
    """A record's value as match text (``None`` when missing)."""
    if field.startswith("custom."):
        value = record.custom.get(field.removeprefix("custom."))
    else:
        value = getattr(record, field)
    return match_text(value)


def match_text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    if hasattr(value, "value") and isinstance(value.value, str):
        value = value.value
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else str(float(value))
    return str(value)


def parse_matches(rule: RoutingRule, record_type: type[Any]) -> tuple[Match, ...]:
    """``rule.custom["match"]``: ``"country"``, ``"rep.country == lead.country"`` or
    ``"languages = custom.language"``, several separated by commas."""
    text = rule.custom.get("match")
    if text is None:
        return ()
    if not isinstance(text, str):
        raise ValidationError(
            "RoutingRule", "custom.match", text, "must be text", record_id=rule.id
        )
    rep_fields = {a.name for a in attrs.fields(Rep)}
    schema = schema_of(record_type)
    matches = []
    for term in text.split(","):
        term = term.strip()
        if not term:
            continue
        if "==" in term:
            left, right = term.split("==", 1)
        elif "=" in term:
            left, right = term.split("=", 1)
        else:
            left = right = term
        rep_field = left.strip().removeprefix("rep.")
        record_field = right.strip()
        for prefix in ("lead.", "inquiry.", "record."):
            record_field = record_field.removeprefix(prefix)
        if rep_field not in rep_fields or schema_kind(Rep, rep_field) not in ("text", "tags"):
            raise ValidationError(
                "RoutingRule",
                "custom.match",
                text,
                f"{rep_field!r} is not a text or list field of Rep",
                record_id=rule.id,
            )
        if record_field.startswith("custom."):
            if not record_field.removeprefix("custom.").isidentifier():
                raise ValidationError(
                    "RoutingRule",
                    "custom.match",
                    text,
                    f"bad field {record_field!r}",
                    record_id=rule.id,
                )
        else:
            names = {f.name for f in schema.fields}
            if record_field not in names:
                raise ValidationError(
                    "RoutingRule",
                    "custom.match",
                    text,
                    f"{schema.name} has no field {record_field!r}",
                    record_id=rule.id,
                )
        matches.append(Match(rep_field, record_field))
    return tuple(matches)


def schema_kind(record_type: type[Any], name: str) -> str:
    for info in schema_of(record_type).fields:
        if info.name == name:
            return info.kind
    return ""


@attrs.frozen
class PoolSpec:
    """Who a target draws from and how."""

    key: str
    members: tuple[str, ...]
    strategy: str = "round_robin"
    team_id: str | None = None
    matches: tuple[Match, ...] = ()
    skills: tuple[str, ...] = ()
    count_manual: bool = False
    fallback_queue: str = "unrouted"
    by_capacity: bool = False  # load balancing by remaining capacity (every member has one)
    unknown: bool = False  # a team target that names no team


def pool_for_rule(
    rule: RoutingRule,
    members: Sequence[str],
    record_type: type[Any],
    *,
    by_capacity: bool = False,
    unknown: bool = False,
) -> PoolSpec:
    """The pool a team or rep rule draws from."""
    strategy = rule.strategy or "round_robin"
    if strategy not in STRATEGIES:
        raise ValidationError(
            "RoutingRule",
            "strategy",
            strategy,
            f"must be one of {', '.join(STRATEGIES)}",
            record_id=rule.id,
        )
    skills_text = rule.custom.get("skills")
    if skills_text is not None and not isinstance(skills_text, str):
        raise ValidationError(
            "RoutingRule",
            "custom.skills",
            skills_text,
            "must be comma-separated text",
            record_id=rule.id,
        )
    skills = tuple(sorted({s.strip() for s in (skills_text or "").split(",") if s.strip()}))
    count_manual = rule.custom.get("count_manual", False)
    if not isinstance(count_manual, bool):
        raise ValidationError(
            "RoutingRule",
            "custom.count_manual",
            count_manual,
            "must be true or false",
            record_id=rule.id,
        )
    fallback = rule.custom.get("fallback_queue") or rule.target_id
    team = rule.target_id if rule.target_kind == "team" else None
    return PoolSpec(
        key=f"{rule.target_kind}:{rule.target_id}",
        members=tuple(sorted(members)),
        strategy=strategy,
        team_id=team,
        matches=parse_matches(rule, record_type),
        skills=skills,
        count_manual=count_manual,
        fallback_queue=str(fallback),
        by_capacity=by_capacity,
        unknown=unknown,
    )


# -- eligibility -----------------------------------------------------------------------------


def drop(rep_id: str, code: Reason, rep: Rep | None = None, extra: str = "") -> Dropped:
    """A :class:`Dropped` with the standard sentence for ``code``."""
    who = f"rep {rep_id!r}"
    if code == Reason.UNKNOWN_REP:
        text = f"{who} does not exist"
    elif code == Reason.INACTIVE:
        text = f"{who} is inactive"
    elif code == Reason.OUT_OF_OFFICE and rep is not None:
        until = rep.away_until.isoformat() if rep.away_until else "further notice"
        text = f"{who} is out of office until {until}"
    elif code == Reason.OUTSIDE_HOURS and rep is not None:
        days = "".join("MTWTFSS"[d] for d in rep.work_days)
        text = (
            f"{who} works {rep.work_start:%H:%M}-{rep.work_end:%H:%M} {rep.timezone} on "
            f"{days or 'no days'}"
        )
    elif code == Reason.AT_CAPACITY and rep is not None:
        text = f"{who} is at its capacity of {rep.capacity} open records"
    elif code == Reason.DAILY_QUOTA and rep is not None:
        text = f"{who} reached its quota of {rep.custom.get(QUOTA_DAY)} per day"
    elif code == Reason.MONTHLY_QUOTA and rep is not None:
        text = f"{who} reached its quota of {rep.custom.get(QUOTA_30_DAYS)} per 30 days"
    elif code == Reason.ZERO_WEIGHT:
        text = f"{who} has weight 0"
    else:
        text = f"{who}: {code}"
    return Dropped(rep_id, code, text + extra)


def static_reason(rep: Rep, now: datetime, respect_hours: bool) -> Reason | None:
    """Why a rep cannot take anything at ``now`` whatever it is, or ``None``."""
    if not rep.active:
        return Reason.INACTIVE
    start, end = rep.away_from, rep.away_until
    if (
        (start is not None or end is not None)
        and (start is None or start <= now)
        and (end is None or now < end)
    ):
        return Reason.OUT_OF_OFFICE
    if respect_hours and not in_hours(
        now, rep.timezone, rep.work_days, rep.work_start, rep.work_end
    ):
        return Reason.OUTSIDE_HOURS
    return None


def pool_reason(rep: Rep, pool: PoolSpec) -> Dropped | None:
    """Static reasons that depend on the pool but not the record (skills, weight)."""
    missing = [s for s in pool.skills if s not in rep.skills]
    if missing:
        return Dropped(
            rep.id, Reason.MISSING_SKILL, f"rep {rep.id!r} lacks skill(s) {', '.join(missing)}"
        )
    if pool.strategy == "weighted" and int_weight(rep.weight) <= 0:
        return drop(rep.id, Reason.ZERO_WEIGHT, rep)
    return None


def mismatch(rep: Rep, match: Match, value: str | None) -> Dropped:
    have = getattr(rep, match.rep_field)
    shown = list(have) if isinstance(have, tuple) else have
    return Dropped(
        rep.id,
        Reason.ATTRIBUTE_MISMATCH,
        f"rep {rep.id!r} {match.rep_field}={shown!r} does not match "
        f"{match.record_field}={value!r}",
    )


def int_weight(weight: float) -> int:
    """Weights as integers in thousandths, so rotation arithmetic is exact."""
    return round(weight * 1000)


class Loads:
    """Open records and recent assignment times per rep (for capacity, quotas and load
    balancing).

    A rep's numbers are read the first time they are needed (``count_open(rep_id)``,
    ``assigned_times(rep_id)``: the router passes store queries, run inside its
    transaction) and then move on with the assignments the operation makes.
    """

    def __init__(
        self,
        count_open: Callable[[str], int] | None = None,
        assigned_times: Callable[[str], list[int]] | None = None,
    ) -> None:
        self.open: dict[str, int] = {}
        self.recent: dict[str, list[int]] = {}
        self._count_open = count_open
        self._assigned_times = assigned_times

    def copy(self) -> Loads:
        out = Loads(self._count_open, self._assigned_times)
        out.open = dict(self.open)
        out.recent = {k: list(v) for k, v in self.recent.items()}
        return out

    def open_of(self, rep_id: str) -> int:
        """The rep's open records."""
        count = self.open.get(rep_id)
        if count is None:
            count = self.open[rep_id] = self._count_open(rep_id) if self._count_open else 0
        return count

    def times_of(self, rep_id: str) -> list[int]:
        """When the rep was assigned records lately (microseconds, sorted)."""
        times = self.recent.get(rep_id)
        if times is None:
            found = self._assigned_times(rep_id) if self._assigned_times else []
            times = self.recent[rep_id] = sorted(found)
        return times

    def add(self, rep_id: str, count: int = 1) -> None:
        """The rep holds ``count`` more open records."""
        self.open[rep_id] = self.open_of(rep_id) + count

    def note_assigned(self, rep_id: str, now_us: int, count: int = 1) -> None:
        """The rep was assigned ``count`` records at ``now_us`` (for quotas)."""
        times = self.times_of(rep_id)
        if times and times[-1] > now_us:
            for _ in range(count):
                bisect.insort(times, now_us)
        else:
            times.extend([now_us] * count)

    def allowance(self, rep: Rep, now_us: int) -> tuple[int, Reason | None]:
        """How many more records the rep may take now, and which limit binds first
        (capacity, then the daily quota, then the 30-day quota)."""
        if rep.capacity is None and not rep.custom:
            return BIG, None
        limits: list[tuple[int, Reason]] = []
        if rep.capacity is not None:
            limits.append((rep.capacity - self.open_of(rep.id), Reason.AT_CAPACITY))
        quotas = [
            (quota, window, code)
            for key, window, code in (
                (QUOTA_DAY, DAY_US, Reason.DAILY_QUOTA),
                (QUOTA_30_DAYS, MONTH_US, Reason.MONTHLY_QUOTA),
            )
            if isinstance(quota := rep.custom.get(key), (int, float))
            and not isinstance(quota, bool)
        ]
        if quotas:
            times = self.times_of(rep.id)
            for quota, window, code in quotas:
                used = len(times) - bisect.bisect_right(times, now_us - window)
                limits.append((int(quota) - used, code))
        if not limits:
            return BIG, None
        least = min(v for v, _ in limits)
        least = max(least, 0)
        binding = next(code for v, code in limits if max(v, 0) == least)
        return least, binding

    def remaining_capacity(self, rep: Rep) -> int:
        if rep.capacity is None:
            return BIG
        return rep.capacity - self.open_of(rep.id)

    def level(self, pool: PoolSpec, rep: Rep) -> int:
        """What load balancing maximises: the remaining capacity when every member of
        the pool has a capacity, else minus the open records (fewest open first)."""
        if pool.by_capacity:
            return self.remaining_capacity(rep)
        return -self.open_of(rep.id)


def new_state() -> dict[str, Any]:
    return {"seq": 0, "last": {}, "swrr": {}, "manual_mark": None}


# -- one record --------------------------------------------------------------------------------


def rotation_order(state: Mapping[str, Any], reps: Sequence[str]) -> list[str]:
    """Reps by time since their last assignment, longest first (then by id)."""
    last = state["last"]
    return sorted(reps, key=lambda r: (last.get(r, -1), r))


def pick(
    pool: PoolSpec,
    state: Mapping[str, Any],
    candidates: Sequence[Rep],
    loads: Loads,
) -> Rep:
    """The strategy's choice among eligible ``candidates`` (in member order)."""
    last = state["last"]
    if pool.strategy == "load_balanced":
        return max(
            candidates,
            key=lambda r: (loads.level(pool, r), -last.get(r.id, -1), _neg(r.id)),
        )
    if pool.strategy == "weighted":
        current = state["swrr"]
        best: Rep | None = None
        best_value = 0
        for rep in candidates:
            value = current.get(rep.id, 0) + int_weight(rep.weight)
            if best is None or value > best_value:
                best, best_value = rep, value
        assert best is not None
        return best
    return min(candidates, key=lambda r: (last.get(r.id, -1), r.id))


class _Neg:
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Neg) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Neg) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


def _neg(text: str) -> _Neg:
    return _Neg(text)


def advance(pool: PoolSpec, state: dict[str, Any], chosen: Rep, candidates: Sequence[Rep]) -> None:
    """Record that ``chosen`` got a record from ``pool``."""
    state["seq"] += 1
    state["last"][chosen.id] = state["seq"]
    if pool.strategy == "weighted":
        current = state["swrr"]
        total = 0
        for rep in candidates:
            w = int_weight(rep.weight)
            current[rep.id] = current.get(rep.id, 0) + w
            total += w
        current[chosen.id] -= total


# -- vectorised --------------------------------------------------------------------------------


def rr_picks(n: int, allowance: Array) -> Array:
    """Round robin over reps already in rotation order, each taking at most
    ``allowance[i]`` records: the rep index for each of ``n`` records (-1: nobody left).

    Equivalent to picking, ``n`` times, the rep that waited longest among those with
    allowance left: rep ``i`` takes its ``j``-th record in round ``j``.
    """
    m = allowance.size
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or m == 0:
        return out
    a = np.minimum(allowance.astype(np.int64), n)
    total = int(a.sum())
    if total <= n:
        rounds = int(a.max())
    else:
        lo, hi = 1, n  # smallest R with sum(min(a, R)) >= n
        while lo < hi:
            mid = (lo + hi) // 2
            if int(np.minimum(a, mid).sum()) >= n:
                hi = mid
            else:
                lo = mid + 1
        rounds = lo
    counts = np.minimum(a, rounds)
    rep = np.repeat(np.arange(m), counts)
    starts = np.cumsum(counts) - counts
    round_no = np.arange(rep.size) - np.repeat(starts, counts)
    order = np.lexsort((rep, round_no))
    taken = rep[order][:n]
    out[: taken.size] = taken
    return out


def lb_picks(n: int, level: Array, allowance: Array) -> Array:
    """Load balancing over reps in rotation order: always the highest ``level`` (the
    remaining capacity, or minus the open records; see :meth:`Loads.level`), ties to the
    rep that waited longest. Returns the rep index per record.

    Rep ``i`` takes records at levels ``level[i]``, ``level[i] - 1`` ...; at a level the
    reps that start there go first, then those that started one higher, and so on, so the
    order is (level descending, starting level ascending, rotation rank).
    """
    m = allowance.size
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or m == 0:
        return out
    c = level.astype(np.int64)
    a = np.minimum(np.maximum(allowance.astype(np.int64), 0), n)

    def count(t: int) -> int:
        return int(np.clip(np.minimum(a, c - t + 1), 0, None).sum())

    lo_t = int((c - a + 1).min())
    hi_t = int(c.max())
    if count(lo_t) <= n:
        threshold = lo_t
    else:  # largest t with count(t) >= n
        lo, hi = lo_t, hi_t
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(mid) >= n:
                lo = mid
            else:
                hi = mid - 1
        threshold = lo
    counts = np.clip(np.minimum(a, c - threshold + 1), 0, None)
    rep = np.repeat(np.arange(m), counts)
    starts = np.cumsum(counts) - counts
    k = np.arange(rep.size) - np.repeat(starts, counts)
    lev = c[rep] - k
    order = np.lexsort((rep, c[rep], -lev))
    taken = rep[order][:n]
    out[: taken.size] = taken
    return out


def now_micros(now: datetime) -> int:
    return micros(now)


def window_start(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
