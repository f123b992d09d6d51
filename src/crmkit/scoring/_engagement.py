"""Engagement: decayed, weighted, capped activity counts per account, in numpy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from crmkit.errors import HierarchyCycleError, ValidationError
from crmkit.records import ActivityKind
from crmkit.scoring._inputs import (
    Array,
    FloatArray,
    IntArray,
    as_columns,
    datetimes,
    days,
    factorize_text,
    index_of,
    instant,
    require,
    same_length,
    text,
)
from crmkit.scoring._result import ScoreResult

_WHAT = "engagement_scores"
_US_PER_DAY = 86_400 * 1_000_000
_ACTIVITY_KINDS = frozenset(k.value for k in ActivityKind)
_CHUNK = 1 << 16


def engagement_scores(
    columns: Any,
    *,
    weights: Mapping[str, float],
    now: datetime | np.datetime64,
    half_lives: Mapping[str, Any] | float | timedelta | None = None,
    window: float | timedelta | None = None,
    caps: Mapping[str, float] | None = None,
    total_cap: float | None = None,
    entity: str = "account_id",
    ids: Any = None,
    contacts: Any = None,
    kind_names: Sequence[str] | None = None,
    parent_ids: Any = None,
    rollup: Callable[[FloatArray], FloatArray] | None = None,
    explain: bool = False,
) -> ScoreResult:
    """Engagement score per account from activity columns.

    Each event of kind ``k`` that happened ``age`` days before ``now`` counts
    ``weights[k] * 0.5 ** (age / half_lives[k])`` (no decay without ``half_lives``);
    events after ``now``, older than ``window``, with no timestamp, or of a kind with no
    weight count 0. ``caps[k]`` caps an account's total of kind ``k``; ``total_cap`` caps
    its total (all kinds scaled down alike, so contributions still add up).

    ``columns`` has an ``entity`` column (ids, or integer positions with ``ids=n``), a
    ``kind`` column (text, or integer codes naming ``kind_names``) and an ``at`` column
    (``datetime64[us]``, UTC): exactly what ``store.activities.columns(["account_id",
    "contact_id", "kind", "at"])`` returns, or plain arrays, or a pandas DataFrame.

    - ``ids``: the accounts to score, in result order (default: every id in the events);
      an int ``n`` when ``entity`` holds positions ``0..n-1``.
    - ``contacts``: ``{"id": [...], "account_id": [...]}`` (``store.contacts.columns``) or
      a dict contact -> account; events with no account but a contact count for the
      contact's account.
    - ``parent_ids``: the parent of each account in ``ids`` (id or position; ``""``/-1 for
      none): each account also gets the engagement of all its descendants.
      ``rollup`` is any function ``values -> values`` used instead.
    - ``explain``: also return contributions per kind (they add up to the score).

    Examples
    --------
    >>> import numpy as np
    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 1, 31, tzinfo=timezone.utc)
    >>> cols = {"account_id": np.array(["a", "a", "b", "b"]),
    ...         "kind": np.array(["meeting", "email_opened", "meeting", "call"]),
    ...         "at": np.array(["2026-01-31", "2026-01-01", "2026-01-17", "2026-02-02"],
    ...                        dtype="datetime64[us]")}
    >>> r = engagement_scores(cols, weights={"meeting": 10, "email_opened": 1, "call": 5},
    ...                       half_lives={"meeting": 14, "email_opened": 30, "call": 7},
    ...                       now=now, explain=True)
    >>> r.ids.tolist(), r.values.round(3).tolist()
    (['a', 'b'], [10.5, 5.0])
    >>> r.factors("a")
    ['meeting +10', 'email_opened +0.5']
    """
    cols = as_columns(columns, _WHAT)
    at_raw = require(cols, "at", _WHAT)
    kinds_raw = require(cols, "kind", _WHAT)
    same_length(cols, [entity, "kind", "at", "contact_id"], _WHAT)
    now64 = instant(now, _WHAT, "now")

    weight_map = _check_map(weights, "weights")
    kinds_known = list(weight_map)
    hl_map: dict[str, float] = {}
    default_hl: float | None = None
    if isinstance(half_lives, Mapping):
        for key, value in half_lives.items():
            hl_map[_kind_key(key, "half_lives")] = days(value, _WHAT, f"half_lives[{key!r}]")
    elif half_lives is not None:
        default_hl = days(half_lives, _WHAT, "half_lives")
    cap_map = _check_map(caps or {}, "caps")
    for kind in [*hl_map, *cap_map]:
        if kind not in weight_map:
            kinds_known.append(kind)
    kinds_known = list(dict.fromkeys(kinds_known))

    # -- kinds -> codes (slot K is "no weight") ----------------------------------------
    kind_codes, kind_labels = _kind_codes(kinds_raw, kinds_known, kind_names)
    n_kinds = len(kind_labels)
    _check_unseen(kind_codes, kind_labels, kinds_known, n_kinds)
    weight_of = np.zeros(n_kinds + 1)
    inv_hl_us = np.zeros(n_kinds + 1)
    for j, label in enumerate(kind_labels):
        weight_of[j] = weight_map.get(str(label), 0.0)
        hl = hl_map.get(str(label), default_hl)
        inv_hl_us[j] = 0.0 if hl is None else 1.0 / (hl * _US_PER_DAY)
    # code -1 (a kind with no weight) reads the last slot of the tables: weight 0

    # -- entities -> positions 0..n-1 (-1: none) ----------------------------------------
    entity_idx, result_ids = _entities(cols, entity, ids, contacts)
    n = len(result_ids)

    # -- the kernel: cache-sized chunks, one exp2 per event, one bincount -------------------
    at = datetimes(at_raw, _WHAT, "at")
    value = _decayed(at, now64, window, kind_codes, weight_of, inv_hl_us)
    if len(entity_idx) and entity_idx.min() < 0:
        slot = entity_idx + 1  # slot 0 collects events with no account
        offset = 1
    else:
        slot, offset = entity_idx, 0

    used = [j for j, label in enumerate(kind_labels) if weight_of[j] != 0]
    names = tuple(str(kind_labels[j]) for j in used)
    need_matrix = explain or bool(cap_map)
    contributions: FloatArray | None = None
    if need_matrix:
        k1 = n_kinds + 1
        kind_slot = np.where(kind_codes < 0, n_kinds, kind_codes)
        matrix = np.bincount(slot * k1 + kind_slot, value, minlength=(n + offset) * k1)
        matrix = matrix.astype(np.float64, copy=False)  # bincount of no events gives ints
        matrix = matrix.reshape(n + offset, k1)[offset:, :n_kinds]
        for kind, cap in cap_map.items():
            hits = np.flatnonzero(kind_labels == kind)
            if len(hits):
                np.minimum(matrix[:, hits[0]], cap, out=matrix[:, hits[0]])
        contributions = np.ascontiguousarray(matrix[:, used])
        totals = contributions.sum(axis=1)
    else:
        totals = np.bincount(slot, value, minlength=n + offset)[offset:].astype(np.float64)

    if total_cap is not None:
        cap = _check_number(total_cap, "total_cap")
        if cap < 0:
            raise ValidationError(_WHAT, "total_cap", total_cap, "must be >= 0")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scale = np.where(totals > cap, cap / totals, 1.0)
        totals = np.minimum(totals, cap) if contributions is None else totals * scale
        if contributions is not None:
            contributions *= scale[:, None]

    if parent_ids is not None or rollup is not None:
        roll = rollup if rollup is not None else _hierarchy_rollup(parent_ids, result_ids)
        totals = _apply_rollup(roll, totals, n)
        if contributions is not None:
            contributions = np.column_stack(
                [_apply_rollup(roll, contributions[:, j], n) for j in range(len(names))]
            ).reshape(n, len(names))
    if contributions is not None and explain:
        totals = contributions.sum(axis=1)
    return ScoreResult(
        ids=result_ids,
        values=totals,
        contributions=contributions if explain else None,
        feature_names=names if explain else (),
        name="engagement",
    )


def _kind_key(key: Any, field: str) -> str:
    if hasattr(key, "value") and isinstance(key.value, str):
        return str(key.value)
    if not isinstance(key, str) or not key:
        raise ValidationError(_WHAT, field, key, "keys must be activity kinds (text)")
    return key


def _check_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValidationError(_WHAT, field, value, "must be a number")
    result = float(value)
    if not np.isfinite(result):
        raise ValidationError(_WHAT, field, value, "must be finite")
    return result


def _check_map(values: Mapping[str, Any], field: str) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise ValidationError(_WHAT, field, values, "must be a dict of kind -> number")
    out = {}
    for key, value in values.items():
        kind = _kind_key(key, field)
        out[kind] = _check_number(value, f"{field}[{kind!r}]")
        if field == "caps" and out[kind] < 0:
            raise ValidationError(_WHAT, f"caps[{kind!r}]", value, "caps must be >= 0")
    return out


def _kind_codes(
    raw: Array, known: list[str], kind_names: Sequence[str] | None
) -> tuple[IntArray, Array]:
    """Codes into the returned labels; -1 for kinds that are not ``known``."""
    array = np.asarray(raw)
    if array.dtype.kind in "iu":
        if kind_names is None:
            raise ValidationError(
                _WHAT, "kind", str(array.dtype), "integer kind codes need kind_names=[...]"
            )
        labels = np.array([_kind_key(k, "kind_names") for k in kind_names], dtype=str)
        codes = array.astype(np.int64, copy=False)
        if len(codes) and (codes.min() < -1 or codes.max() >= len(labels)):
            bad = (codes < -1) | (codes >= len(labels))
            raise ValidationError(
                _WHAT, "kind", int(codes[np.argmax(bad)]), f"is not a code of {len(labels)} kinds"
            )
        return codes, labels
    array = text(array)
    return _string_codes(np.ascontiguousarray(array), known), np.array(known, dtype=str)


def _string_codes(values: Array, known: list[str]) -> IntArray:
    """Match a unicode column against a few known strings without sorting it.

    Picks a few character positions that tell the known strings apart, looks events up
    by those characters, then checks each candidate exactly (in chunks).
    """
    n = len(values)
    width = values.dtype.itemsize // 4
    candidates = [k for k in known if len(k) <= width]
    if n == 0 or width == 0 or not candidates:
        return np.full(n, -1, dtype=np.int64)
    table = np.array(candidates, dtype=values.dtype).view(np.uint32).reshape(-1, width)
    positions = _distinguishing_positions(table)
    if positions is None:
        codes, _ = factorize_text(values, candidates)
        codes[codes >= len(candidates)] = -1
        return _remap(codes, candidates, known)
    grid = values.view(np.uint32).reshape(n, width)
    # each chosen position: code point -> small index (a lookup table over all code points)
    luts = []
    table_key = np.zeros(len(candidates), dtype=np.int64)
    size = 1
    for p in positions:
        seen = np.unique(table[:, p])
        lut = np.full(0x110000, len(seen), dtype=np.int16)
        lut[seen] = np.arange(len(seen))
        luts.append((p, lut, len(seen) + 1))
        table_key = table_key * (len(seen) + 1) + lut[table[:, p]]
        size *= len(seen) + 1
    code_of_key = np.full(size, -1, dtype=np.int64)
    code_of_key[table_key] = np.arange(len(candidates))
    words = np.array(candidates, dtype=values.dtype)
    codes = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        key = np.zeros(stop - start, dtype=np.int64)
        for p, lut, radix in luts:
            key *= radix
            key += np.take(lut, grid[start:stop, p])
        block = np.take(code_of_key, key)
        block[values[start:stop] != np.take(words, np.maximum(block, 0))] = -1
        codes[start:stop] = block
    return _remap(codes, candidates, known)


def _remap(codes: IntArray, candidates: list[str], known: list[str]) -> IntArray:
    if candidates == known:
        return codes
    lookup = np.array([known.index(c) for c in candidates] + [-1], dtype=np.int64)
    return lookup[np.where(codes < 0, len(candidates), codes)]


def _distinguishing_positions(table: Array) -> list[int] | None:
    """At most 3 columns of ``table`` whose values tell every row apart (greedy)."""
    rows, width = table.shape
    chosen: list[int] = []
    groups = np.zeros(rows, dtype=np.int64)
    while len(np.unique(groups)) < rows:
        if len(chosen) == 3:
            return None
        best, best_count, best_groups = -1, -1, groups
        for p in range(width):
            if p in chosen:
                continue
            trial = np.unique(np.column_stack([groups, table[:, p]]), axis=0, return_inverse=True)
            count = len(trial[0])
            if count > best_count:
                best, best_count, best_groups = p, count, trial[1].reshape(-1)
        chosen.append(best)
        groups = best_groups
    return chosen or [0]


def _check_unseen(codes: IntArray, labels: Array, known: list[str], n_kinds: int) -> None:
    """A weight for a kind that is neither an ActivityKind nor in the data is a typo."""
    suspicious = [k for k in known if k not in _ACTIVITY_KINDS]
    if not suspicious:
        return
    counts = np.bincount(codes[codes >= 0], minlength=n_kinds)
    for kind in suspicious:
        hits = np.flatnonzero(labels == kind)
        if not len(hits) or counts[hits[0]] == 0:
            raise ValidationError(
                _WHAT,
                "weights",
                kind,
                "is not an activity kind and no event has it; known kinds: "
                + ", ".join(sorted(_ACTIVITY_KINDS)),
            )


def _entities(
    cols: dict[str, Array], entity: str, ids: Any, contacts: Any
) -> tuple[IntArray, Array]:
    raw = require(cols, entity, _WHAT)
    if np.asarray(raw).dtype.kind in "iu":
        idx = np.asarray(raw).astype(np.int64, copy=False)
        if ids is None:
            count = int(idx.max()) + 1 if len(idx) else 0
            result_ids: Array = np.arange(count)
        elif isinstance(ids, (int, np.integer)):
            result_ids = np.arange(int(ids))
        else:
            result_ids = np.asarray(ids)
        if len(idx) and (idx.min() < -1 or idx.max() >= len(result_ids)):
            bad = (idx < -1) | (idx >= len(result_ids))
            raise ValidationError(
                _WHAT,
                entity,
                int(idx[np.argmax(bad)]),
                f"is not a position in 0..{len(result_ids) - 1}",
            )
        return idx, result_ids
    keys = text(raw)
    if contacts is not None:
        keys = _via_contacts(cols, keys, contacts)
    if ids is None:
        present = keys[keys != ""]
        result_ids = np.unique(present) if len(present) else np.array([], dtype=str)
    else:
        result_ids = text(np.asarray(ids))
    return index_of(keys, result_ids, _WHAT, entity), result_ids


def _via_contacts(cols: dict[str, Array], accounts: Array, contacts: Any) -> Array:
    if "contact_id" not in cols:
        raise ValidationError(_WHAT, "contact_id", None, "contacts= needs a contact_id column")
    if isinstance(contacts, Mapping) and "id" in contacts and "account_id" in contacts:
        contact_ids = text(np.asarray(contacts["id"]))
        contact_accounts = text(np.asarray(contacts["account_id"]))
    elif isinstance(contacts, Mapping):
        contact_ids = text(np.array(list(contacts.keys()), dtype=object))
        contact_accounts = text(np.array(list(contacts.values()), dtype=object))
    else:
        raise ValidationError(
            _WHAT,
            "contacts",
            type(contacts).__name__,
            "expected {'id': [...], 'account_id': [...]} or a dict contact -> account",
        )
    event_contacts = text(cols["contact_id"])
    need = (accounts == "") & (event_contacts != "")
    if not need.any():
        return accounts
    known = np.isin(event_contacts[need], contact_ids)
    looked_up = np.full(int(need.sum()), "", dtype=contact_accounts.dtype)
    if known.any():
        pos = index_of(event_contacts[need][known], contact_ids, _WHAT, "contact_id")
        looked_up[known] = contact_accounts[pos]
    width = max(accounts.dtype.itemsize, looked_up.dtype.itemsize) // 4
    out = accounts.astype(f"<U{max(width, 1)}")
    out[need] = looked_up
    return out


def _decayed(
    at: Array,
    now64: Any,
    window: Any,
    codes: IntArray,
    weight_of: FloatArray,
    inv_hl_us: FloatArray,
) -> FloatArray:
    """``weight * 0.5 ** (age / half_life)`` per event; 0 if dropped (future, old, NaT)."""
    limit = None if window is None else round(days(window, _WHAT, "window") * _US_PER_DAY)
    stamps = at.view(np.int64)
    now_us = np.int64(now64.astype(np.int64))
    n = len(stamps)
    value = np.empty(n)
    if n == 0:
        return value
    has_nat = bool(stamps.min() == np.iinfo(np.int64).min)
    positive = bool((weight_of >= 0).all())
    if positive:
        with np.errstate(divide="ignore"):
            log_w = np.log2(weight_of)  # w * 2**-x == 2**(log2(w) - x): one exp2, no multiply
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        part = stamps[start:stop]
        age = now_us - part
        code = codes[start:stop]
        out = value[start:stop]
        nat = part == np.iinfo(np.int64).min if has_nat else None
        if nat is not None:
            age[nat] = 0  # no timestamp: counts 0 below; an age of 0 keeps exp2 finite
        if positive:
            exponent = np.take(log_w, code)
            exponent -= age * np.take(inv_hl_us, code)
            np.exp2(exponent, out=out)
        else:
            np.multiply(
                np.take(weight_of, code), np.exp2(-(age * np.take(inv_hl_us, code))), out=out
            )
        if nat is not None:
            out[nat] = 0.0
        if age.min() < 0:
            out[age < 0] = 0.0
        if limit is not None and age.max() > limit:
            out[age > limit] = 0.0
    return value


def _hierarchy_rollup(parent_ids: Any, ids: Array) -> Callable[[FloatArray], FloatArray]:
    """Sum over each account and all its descendants, one numpy pass per level."""
    parents = np.asarray(parent_ids)
    n = len(ids)
    if parents.shape != (n,):
        raise ValidationError(
            _WHAT, "parent_ids", parents.shape, f"needs one parent per account ({n})"
        )
    if parents.dtype.kind in "iu":
        parent = parents.astype(np.int64)
        bad = (parent < -1) | (parent >= n)
        if bad.any():
            raise ValidationError(
                _WHAT, "parent_ids", int(parent[np.argmax(bad)]), "is not a position or -1"
            )
    else:
        parent = index_of(text(parents), ids, _WHAT, "parent_ids")
    depth = np.zeros(n, dtype=np.int64)
    hop = parent.copy()
    for _ in range(n + 1):
        alive = hop >= 0
        if not alive.any():
            break
        depth[alive] += 1
        hop[alive] = parent[hop[alive]]
    else:
        stuck = int(np.flatnonzero(hop >= 0)[0])
        path = [stuck]
        while parent[path[-1]] not in path:
            path.append(int(parent[path[-1]]))
        path.append(int(parent[path[-1]]))
        raise HierarchyCycleError([str(ids[i]) for i in path])
    levels = [np.flatnonzero(depth == d) for d in range(int(depth.max(initial=0)), 0, -1)]

    def roll(values: FloatArray) -> FloatArray:
        total = np.array(values, dtype=np.float64, copy=True)
        for nodes in levels:
            total += np.bincount(parent[nodes], total[nodes], minlength=n)
        return total

    return roll


def _apply_rollup(
    roll: Callable[[FloatArray], FloatArray], values: FloatArray, n: int
) -> FloatArray:
    out = np.asarray(roll(values), dtype=np.float64)
    if out.shape != (n,):
        raise ValidationError(_WHAT, "rollup", out.shape, f"must return {n} values")
    return out
