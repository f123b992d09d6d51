"""Territory models, vectorised territory assignment, realignment and balancing."""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

import attrs
import numpy as np

from crmkit._codes import _MIX, CodedColumns, ShortKeys, text_codes
from crmkit._mask import _typed_column
from crmkit._schema import schema_of
from crmkit.criteria import AllOf, Condition, Criteria, _Leaf, _Node, bind, parse
from crmkit.errors import NotFound, ValidationError
from crmkit.events import _owner_changes
from crmkit.records import (
    Account,
    OpportunityStatus,
    OwnershipChange,
    Territory,
    TerritoryModel,
    TerritoryModelState,
)
from crmkit.store._base import run_transaction

Array = np.ndarray[Any, Any]

CHANGED_BY = "crmkit.territories"

PRIMARY, TIE, NO_MATCH, LOCKED = "primary", "tie", "no_match", "locked"
"""Why an account has (or lacks) a primary territory."""


# -- models ---------------------------------------------------------------------------------


def active_model(store: Any) -> TerritoryModel | None:
    """The active territory model, if any.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import MemoryStore, TerritoryModel
    >>> store = MemoryStore()
    >>> _ = store.territory_models.add(TerritoryModel(id="fy26", name="FY26"))
    >>> active_model(store) is None  # a new model is in planning
    True
    >>> _ = activate_model(store, "fy26", now=datetime(2026, 1, 5, tzinfo=timezone.utc))
    >>> active_model(store).id
    'fy26'
    """
    found = store.territory_models.query({"field": "state", "op": "==", "value": "active"})
    return found[0] if found else None


def activate_model(store: Any, model_id: str, *, now: datetime) -> TerritoryModel:
    """Make ``model_id`` the one active model; the previously active one is archived.

    >>> from datetime import datetime, timezone
    >>> from crmkit import MemoryStore, TerritoryModel
    >>> store = MemoryStore()
    >>> _ = store.territory_models.add(TerritoryModel(id="fy26", name="FY26"))
    >>> _ = store.territory_models.add(TerritoryModel(id="fy27", name="FY27"))
    >>> now = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> _ = activate_model(store, "fy26", now=now)
    >>> _ = activate_model(store, "fy27", now=now)
    >>> [(m.id, str(m.state)) for m in store.territory_models]
    [('fy26', 'archived'), ('fy27', 'active')]
    """
    with store.transaction():
        model: TerritoryModel = store.territory_models.get(model_id)
        if model.state == TerritoryModelState.ARCHIVED:
            raise ValidationError(
                "TerritoryModel",
                "state",
                "archived",
                "an archived model cannot be activated",
                record_id=model_id,
            )
        for other in store.territory_models.query(
            {"field": "state", "op": "==", "value": "active"}
        ):
            if other.id != model_id:
                store.territory_models.update(
                    attrs.evolve(other, state=TerritoryModelState.ARCHIVED, archived_at=now)
                )
        if model.state != TerritoryModelState.ACTIVE:
            model = store.territory_models.update(
                attrs.evolve(model, state=TerritoryModelState.ACTIVE, activated_at=now)
            )
    return model


def territories_of(store: Any, model_id: str) -> list[Territory]:
    """The territories of a model, by id."""
    if model_id not in store.territory_models:
        raise NotFound("TerritoryModel", model_id)
    found: list[Territory] = store.territories.query(
        {"field": "model_id", "op": "==", "value": model_id}
    )
    return found


# -- assignment -------------------------------------------------------------------------------


_REASONS = (PRIMARY, TIE, NO_MATCH, LOCKED)


@attrs.frozen(eq=False)
class TerritoryAssignment:
    """Every matching territory per account, and the primary one.

    ``primary_index`` holds, per account, the position of its primary territory in
    ``territory_ids`` (-1: none) and ``reason_code`` a position in ``REASONS``:
    ``primary``, ``tie`` (several territories at the best priority and depth: no
    primary), ``no_match`` or ``locked`` (``realignment_locked`` accounts keep their
    territory). ``primary`` (territory id or ``""``) and ``reason`` are the same as text,
    built when first asked for. ``match_count`` is the number of territories each account
    falls in; ``pair_account`` and ``pair_territory`` list every (account index, territory
    index) match, listed when first asked for.
    """

    REASONS: ClassVar[tuple[str, ...]] = _REASONS

    account_ids: Array
    territory_ids: Array
    primary_index: Array
    reason_code: Array
    match_count: Array
    parts: tuple[_Cells, ...] = attrs.field(repr=False)
    locked: Array | None = None
    locked_territory: Array | None = None
    _text: dict[str, Array] = attrs.field(factory=dict, init=False, repr=False)

    @property
    def primary(self) -> Array:
        """The primary territory id per account (``""``: none; a locked account keeps its
        ``territory_id``)."""
        found = self._text.get("primary")
        if found is None:
            table = np.append(self.territory_ids, "") if self.territory_ids.size else None
            if table is None:
                found = np.full(self.primary_index.size, "", dtype="<U1")
            else:
                found = table[self.primary_index]
            if self.locked is not None and self.locked_territory is not None:
                found = found.astype(np.result_type(found, self.locked_territory))
                found[self.locked] = self.locked_territory[self.locked]
            self._text["primary"] = found
        return found

    def _listed(self, name: str) -> Array:
        found = self._text.get(name)
        if found is None:
            if name == "pair_account":
                listed = [part.pair_rows() for part in self.parts]
            else:
                listed = [part.pair_territories() for part in self.parts]
            found = np.concatenate(listed) if listed else np.zeros(0, dtype=np.int64)
            self._text[name] = found = found.astype(np.int64, copy=False)
        return found

    @property
    def pair_account(self) -> Array:
        """The account index of every (account, territory) match."""
        return self._listed("pair_account")

    @property
    def pair_territory(self) -> Array:
        """The territory index of every (account, territory) match (in the order of
        ``pair_account``)."""
        return self._listed("pair_territory")

    @property
    def reason(self) -> Array:
        """Why each account has (or lacks) a primary territory, as text."""
        found = self._text.get("reason")
        if found is None:
            found = self._text["reason"] = np.array(_REASONS)[self.reason_code]
        return found

    def matches(self, account_id: str) -> list[str]:
        """Every territory an account falls in, by territory id."""
        where = np.flatnonzero(self.account_ids == account_id)
        if where.size == 0:
            raise NotFound("Account", account_id)
        hits = self.pair_territory[self.pair_account == where[0]]
        return sorted(self.territory_ids[hits].tolist())

    def primary_of(self, account_id: str) -> tuple[str | None, str]:
        """``(territory id or None, reason)`` for one account."""
        where = np.flatnonzero(self.account_ids == account_id)
        if where.size == 0:
            raise NotFound("Account", account_id)
        i = int(where[0])
        return (str(self.primary[i]) or None, str(self.reason[i]))

    def counts(self) -> dict[str, int]:
        """Accounts per primary territory (every territory, zero included)."""
        found = self.primary[self.primary != ""]
        ids, counts = np.unique(found, return_counts=True)
        out = dict.fromkeys(self.territory_ids.tolist(), 0)
        out.update(zip(ids.tolist(), counts.tolist(), strict=True))
        return out

    @property
    def coverage(self) -> float:
        """The share of accounts with a primary territory."""
        return float((self.primary != "").mean()) if self.primary.size else 0.0


def _flatten(node: Criteria) -> list[Criteria]:
    if not isinstance(node, AllOf):
        return [node]
    out: list[Criteria] = []
    for item in node.items:
        if isinstance(item, AllOf):
            out.extend(_flatten(item))
        else:
            out.append(item)
    return out


def _memo_key(items: Sequence[Criteria]) -> tuple[Any, ...] | None:
    """A key telling conditions apart exactly (``1``, ``1.0`` and ``True`` are equal in
    Python but bind differently, so each value's type is part of it), or None when some
    item is not a plain condition."""
    key: list[Any] = []
    for item in items:
        if type(item) is not Condition:
            return None
        value = item.value
        kinds = tuple(map(type, value)) if type(value) is tuple else type(value)
        key.append((item.field, item.op, value, kinds))
    return tuple(key)


def _effective(territories: Sequence[Territory]) -> tuple[list[list[Criteria]], Array]:
    """Each territory's own conditions and its ancestors', and its depth."""
    by_id = {t.id: t for t in territories}
    conditions: list[list[Criteria]] = []
    depth = np.zeros(len(territories), dtype=np.int64)
    for k, territory in enumerate(territories):
        items: list[Criteria] = []
        seen: set[str] = set()
        node: Territory | None = territory
        while node is not None:
            if node.id in seen:
                raise ValidationError(
                    "Territory",
                    "parent_id",
                    node.parent_id,
                    "parent links form a cycle",
                    record_id=territory.id,
                )
            seen.add(node.id)
            items.extend(_flatten(parse(node.criteria)))
            if node.parent_id is None:
                node = None
            else:
                parent = by_id.get(node.parent_id)
                if parent is None:
                    raise ValidationError(
                        "Territory",
                        "parent_id",
                        node.parent_id,
                        "names no territory of the same model",
                        record_id=node.id,
                    )
                node = parent
        conditions.append(items)
        depth[k] = len(seen) - 1
    return conditions, depth


_RANGE_OPS = frozenset({"between", "<", "<=", ">", ">="})


def territory_fields(territories: Sequence[Territory]) -> list[str]:
    fields: set[str] = set()
    for t in territories:
        fields |= bind(t.criteria, Account).fields
    return sorted(fields)


class _Factor:
    """A column factorised once: sorted unique values and each row's code."""

    def __init__(self, column: Array) -> None:
        self._order: Array | None = None
        self.numeric = column.dtype.kind in "iuf"
        if self.numeric:
            self.uniq, codes = np.unique(column.astype(np.float64), return_inverse=True)
        else:
            coded = text_codes(_typed_column("text", column)[0])
            self.uniq, codes = coded.values, coded.codes
        self.codes = codes.reshape(-1).astype(np.int64)
        if self.numeric:
            valid = self.uniq.size - int(np.isnan(self.uniq).sum())
            self.first_valid, self.end_valid = 0, valid
        else:
            self.first_valid = 1 if self.uniq.size and self.uniq[0] == "" else 0
            self.end_valid = self.uniq.size

    def order(self) -> Array:
        """The rows in code order (computed once)."""
        if self._order is None:
            small = self.codes.astype(np.int16) if self.uniq.size < 2**15 else self.codes
            self._order = np.argsort(small, kind="stable" if small.dtype == np.int16 else None)
        return self._order

    @classmethod
    def of_text(cls, values: Array, codes: Array, order: Array | None = None) -> _Factor:
        out = cls.__new__(cls)
        out._order = order
        out.numeric = False
        out.uniq, out.codes = values, codes.astype(np.int64)
        out.first_valid = 1 if values.size and values[0] == "" else 0
        out.end_valid = values.size
        return out

    def code_of(self, value: Any) -> int:
        v = float(value) if self.numeric else value
        k = int(np.searchsorted(self.uniq, v))
        if k < self.uniq.size and self.uniq[k] == v:
            return k
        return -1

    def bounds_many(self, ranges: Sequence[Sequence[Condition]]) -> tuple[Array, Array]:
        """:meth:`bounds` of many ranges with a few vectorised binary searches."""
        conv: Any = float if self.numeric else str
        lows = np.full(len(ranges), self.first_valid, dtype=np.int64)
        highs = np.full(len(ranges), self.end_valid, dtype=np.int64)
        found: dict[tuple[bool, str], tuple[list[int], list[Any]]] = {}
        for k, conds in enumerate(ranges):
            for cond in conds:
                if cond.op == "between":
                    a, b = cond.value
                    parts = [(True, "left", a), (False, "right", b)]
                elif cond.op in (">", ">="):
                    parts = [(True, "left" if cond.op == ">=" else "right", cond.value)]
                else:
                    parts = [(False, "right" if cond.op == "<=" else "left", cond.value)]
                for lower, side, value in parts:
                    rows, values = found.setdefault((lower, side), ([], []))
                    rows.append(k)
                    values.append(conv(value))
        for (lower, side), (rows, values) in found.items():
            at = np.searchsorted(self.uniq, np.array(values), side)  # type: ignore[call-overload]
            if lower:
                np.maximum.at(lows, np.array(rows, dtype=np.intp), at)
            else:
                np.minimum.at(highs, np.array(rows, dtype=np.intp), at)
        return lows, np.maximum(lows, highs)

    def bounds(self, conds: Sequence[Condition]) -> tuple[int, int]:
        """The codes ``[lo, hi)`` every condition admits (a half-open range is two)."""
        conv: Any = float if self.numeric else str
        u: Any = self.uniq
        lo, hi = self.first_valid, self.end_valid
        for cond in conds:
            if cond.op == "between":
                a, b = cond.value
                lo = max(lo, int(np.searchsorted(u, conv(a), "left")))
                hi = min(hi, int(np.searchsorted(u, conv(b), "right")))
            elif cond.op in (">", ">="):
                side: Literal["left", "right"] = "left" if cond.op == ">=" else "right"
                lo = max(lo, int(np.searchsorted(u, conv(cond.value), side)))
            else:
                side2: Literal["left", "right"] = "right" if cond.op == "<=" else "left"
                hi = min(hi, int(np.searchsorted(u, conv(cond.value), side2)))
        return lo, max(lo, hi)


class TerritoryIndex:
    """Territories compiled once for many assignments: each territory's conditions (its
    own and its ancestors') split into what is indexed (equality on text fields, one
    range) and a residual criteria bound once. :func:`assign_columns` and
    ``match_territories`` take one in place of the territories. Groups of territories
    whose residuals are number bounds are decided per cell (equality values x range band x
    number bands) with no (account, territory) pairs formed; the others list their pairs.

    >>> from crmkit import F, Territory
    >>> index = TerritoryIndex([Territory(id="de", name="DE",
    ...                                   criteria=(F.country == "DE").to_dict())])
    >>> assign_columns(index, {"id": np.array(["a1", "a2"]),
    ...                        "country": np.array(["DE", "FR"])}).primary_index.tolist()
    [0, -1]
    """

    def __init__(self, territories: Sequence[Territory]) -> None:
        self.territories = list(territories)
        conds, self.depth = _effective(self.territories)
        schema = schema_of(Account)
        self.kinds = {f.name: f.kind for f in schema.fields}
        self.groups: dict[
            tuple[tuple[str, ...], str | None],
            list[tuple[int, list[Condition], list[Condition], Any]],
        ] = {}
        bound: dict[tuple[Any, ...], Any] = {}
        for k, items in enumerate(conds):
            eq: dict[str, Condition] = {}
            rng: list[Condition] = []
            rest: list[Criteria] = []
            for item in items:
                if (
                    isinstance(item, Condition)
                    and not item.field.startswith("custom.")
                    and item.field not in eq
                ):
                    kind = self.kinds.get(item.field)
                    if item.op in ("==", "in") and kind in ("text", "enum"):
                        eq[item.field] = item
                        continue
                    if (
                        item.op in _RANGE_OPS
                        and kind in ("text", "int", "float", "money")
                        and (not rng or rng[0].field == item.field)
                    ):
                        rng.append(item)  # lo <= x < hi is two conditions, one range
                        continue
                rest.append(item)
            key = (tuple(sorted(eq)), rng[0].field if rng else None)
            root = None
            if rest:  # territories often share a residual (an employee band): bind it once
                memo = _memo_key(rest)
                found = bound.get(memo) if memo is not None else None
                if found is None:
                    found = bind(AllOf(items=tuple(rest)), Account)._root
                    if memo is not None:
                        bound[memo] = found
                root = found
            self.groups.setdefault(key, []).append((k, [eq[f] for f in key[0]], rng, root))
        self.ids = (
            np.array([t.id for t in self.territories], dtype=str)
            if self.territories
            else np.array([], dtype=str)
        )
        priority = np.array([t.priority for t in self.territories], dtype=np.int64)
        # rank of (priority, -depth): equal ranks tie, the lowest wins
        if self.territories:
            _, rank = np.unique(np.stack([priority, -self.depth]), axis=1, return_inverse=True)
            self.rank = rank.reshape(-1).astype(np.int64)
        else:
            self.rank = np.zeros(0, dtype=np.int64)
        self._plan_cells()

    def _plan_cells(self) -> None:
        """What deciding a group per cell needs that does not depend on the accounts:
        each range field's bands and distinct ranges, each residual number field's bands,
        and per group its queries (territory, mentioned equality values, range)."""
        ranges: dict[str, dict[tuple[tuple[str, Any], ...], int]] = {}
        conds: dict[str, list[list[Condition]]] = {}
        numbers: dict[tuple[tuple[str, ...], str | None], Any] = {}
        ends: dict[str, set[float]] = {}
        for key, members in self.groups.items():
            residual = {k: rest for k, _eq, _rng, rest in members if rest is not None}
            found = numbers[key] = _number_residual(residual)
            for field, by_k in (found or {}).items():
                ends.setdefault(field, set()).update(
                    v for pair in by_k.values() for v in pair if math.isfinite(v)
                )
            if key[1] is not None:
                for _k, _eq, rng, _rest in members:
                    seen = ranges.setdefault(key[1], {})
                    bkey = tuple((c.op, c.value) for c in rng)
                    if bkey not in seen:
                        seen[bkey] = len(seen)
                        conds.setdefault(key[1], []).append(rng)
        self._ranges = {
            field: _range_plan(self.kinds.get(field) in ("int", "float", "money"), found)
            for field, found in conds.items()
        }
        self._number_bands = {
            field: _Bands(np.array(sorted(found), dtype=np.float64))
            for field, found in ends.items()
        }
        # every value each equality field is tested for, over all groups
        values: dict[str, set[Any]] = {}
        for (eq_fields, _rng_field), members in self.groups.items():
            for _k, eqs, _rng, _rest in members:
                for field, cond in zip(eq_fields, eqs, strict=True):
                    given = cond.value if isinstance(cond.value, tuple) else (cond.value,)
                    values.setdefault(field, set()).update(
                        v if type(v) is str else _plain(v) for v in given
                    )
        said: dict[tuple[str, ...], list[list[Any]] | None] = {}
        for eq_fields in {key[0] for key in self.groups}:
            lists = [values.get(field, set()) for field in eq_fields]
            plain = all(isinstance(v, str) for found in lists for v in found)
            said[eq_fields] = [sorted(found) for found in lists] if plain else None
        count = len(self.territories)
        self._plans: dict[tuple[tuple[str, ...], str | None], _GroupPlan | None] = {}
        for key, members in self.groups.items():
            by_field = numbers[key]
            rng_field = key[1]
            if by_field is None or (rng_field is not None and self._ranges[rng_field] is None):
                self._plans[key] = None
                continue
            bands: dict[str, tuple[Array, Array]] = {}
            for field, by_k in by_field.items():
                nb = self._number_bands[field]
                b0 = np.zeros(count, dtype=np.int64)
                b1 = np.full(count, nb.size, dtype=np.int64)  # no test: every band
                if by_k:  # [low, high] -> bands [2j + 1, 2j' + 2) (see _Bands), all at once
                    ks = np.fromiter(by_k, dtype=np.int64, count=len(by_k))
                    closed = np.array(list(by_k.values()), dtype=np.float64).reshape(-1, 2)
                    finite = np.isfinite(closed)
                    at = 2 * np.searchsorted(nb.ends, closed).astype(np.int64)
                    b0[ks] = np.where(finite[:, 0], at[:, 0] + 1, 0)
                    b1[ks] = np.maximum(b0[ks], np.where(finite[:, 1], at[:, 1] + 2, nb.size - 1))
                bands[field] = (b0, b1)
            self._plans[key] = _GroupPlan.of(
                members, ranges.get(rng_field, {}) if rng_field else {}, bands, said[key[0]]
            )

    def __len__(self) -> int:
        return len(self.territories)

    def match(self, columns: Mapping[str, Array]) -> tuple[Array, Array]:
        """Every (account row, territory index) match, listed pair by pair."""
        _cells, acc, ter = self.decide(columns, cells=False)
        return acc, ter

    def decide(
        self, columns: Mapping[str, Array], *, cells: bool = True
    ) -> tuple[list[_Cells], Array, Array]:
        """The groups answered per cell (when ``cells`` and the conditions allow it) and
        the (account row, territory index) pairs of the others."""
        n = len(next(iter(columns.values()))) if columns else 0
        kinds = self.kinds
        factors: dict[str, _Factor] = {}
        coded = CodedColumns(columns, n)

        def factor(name: str) -> _Factor:
            if name not in factors:
                column = np.asarray(columns[name])
                if column.dtype.kind == "U" or kinds.get(name) in ("text", "enum"):
                    text = coded.text(name)
                    factors[name] = _Factor.of_text(text.values, text.codes, text.order)
                else:
                    factors[name] = _Factor(column)
            return factors[name]

        cache: dict[str, Array | None] = {}
        decided: list[_Cells] = []
        pair_acc: list[Array] = []
        pair_ter: list[Array] = []
        for (eq_fields, rng_field), members in self.groups.items():
            if not eq_fields and rng_field is None:
                for k, _eq, _rng, root in members:
                    mask = coded.mask(root, slice(None)) if root is not None else np.ones(n, bool)
                    rows = np.flatnonzero(mask)
                    pair_acc.append(rows)
                    pair_ter.append(np.full(rows.size, k, dtype=np.int64))
                continue
            if cells:
                by_cell = self._cell_group(coded, factor, n, eq_fields, rng_field, cache)
                if by_cell is not None:
                    decided.append(by_cell)
                    continue
            found = self._group(coded, factor, n, eq_fields, rng_field, members)
            if found is not None:
                pair_acc.append(found[0])
                pair_ter.append(found[1])
        if pair_acc:
            return (
                decided,
                np.concatenate(pair_acc).astype(np.int64),
                np.concatenate(pair_ter).astype(np.int64),
            )
        return decided, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

    def _cell_group(
        self,
        coded: CodedColumns,
        factor: Any,
        n: int,
        eq_fields: tuple[str, ...],
        rng_field: str | None,
        cache: dict[str, Array | None],
    ) -> _Cells | None:
        """The group decided per cell of (equality key, range band, residual number bands)
        with no (account, territory) pairs, or None when cells cannot express it."""
        plan = self._plans.get((eq_fields, rng_field))
        if plan is None:
            return None
        band: Array | None = None
        if rng_field is not None:
            if rng_field not in cache:
                ranges = self._ranges[rng_field]
                assert ranges is not None
                cache[rng_field] = ranges.bands_of(np.asarray(coded.columns[rng_field]))
            band = cache[rng_field]
            if band is None:
                return None
        key = np.zeros(n, dtype=np.int64)
        q_key = np.zeros(plan.q_ter.size, dtype=np.int64)
        known = np.ones(plan.q_ter.size, dtype=bool)
        spotted: list[Array | None] = []
        for field, mentioned in zip(eq_fields, plan.mentioned, strict=True):
            name = "=" + field  # the values every group mentions: one pass per field
            if name not in cache:
                cache[name] = _mention_codes(np.asarray(coded.columns[field]), mentioned)
            spotted.append(cache[name])
        # per-account keys in int32 when no key can reach 2**31 (less memory to stream)
        ranged = self._ranges.get(rng_field) if rng_field is not None else None
        keys_bound = math.prod(m.size + 1 for m in plan.mentioned)
        keys_bound *= ranged.width + 1 if ranged is not None else 1
        narrow = np.int32 if max(keys_bound, 8 * n + (1 << 22)) < 2**31 else np.int64
        if all(found is not None for found in spotted):
            # each account's value as its place among the values the territories mention
            key = np.zeros(n, dtype=narrow)
            for found, mentioned, q_value in zip(
                spotted, plan.mentioned, plan.q_value, strict=True
            ):
                assert found is not None
                key = key * (mentioned.size + 1) + found.astype(narrow, copy=False)
                q_key = q_key * (mentioned.size + 1) + q_value
        else:
            for field, mentioned, q_value in zip(
                eq_fields, plan.mentioned, plan.q_value, strict=True
            ):
                fac = factor(field)
                size = fac.uniq.size
                key = key * size + fac.codes
                if size:
                    at = np.minimum(np.searchsorted(fac.uniq, mentioned), size - 1)
                    code = np.where(fac.uniq[at] == mentioned, at, -1)[q_value]
                else:
                    code = np.full(q_value.size, -1, dtype=np.int64)
                known &= code >= 0
                q_key = q_key * size + code
        if not known.any():
            return _Cells.empty(n)
        q_ter, q_key = plan.q_ter[known], q_key[known]
        if rng_field is not None:
            assert band is not None
            ranges = self._ranges[rng_field]
            assert ranges is not None
            # only this group's range ends cut the bands: a smaller composite key space
            q_bound = plan.q_bound[known]
            lows, highs = ranges.lows[q_bound], ranges.highs[q_bound]
            ends = np.unique(np.concatenate([lows, highs]))
            local: Array = np.searchsorted(ends, np.arange(ranges.width), "right")
            local = local.astype(narrow)
            width = ends.size + 1
            q_lo = q_key * width + local[lows]
            q_hi = q_key * width + local[highs]
            composite = key * width + local[band]
        else:
            width, composite = 1, key
            q_lo, q_hi = q_key, q_key + 1
        edges = np.unique(np.concatenate([q_lo, q_hi]))
        segments = edges.size  # the last segment, outside every query, is never covered
        span = int(edges[-1] - edges[0])
        if span <= 8 * n + (1 << 22):
            # a table over the keys the queries span, plus one slot below and one above
            # for every key outside them (clipped there): one gather per account
            lut = np.empty(span + 2, dtype=np.int32)
            lut[0] = lut[-1] = segments - 1
            lut[1:-1] = np.repeat(np.arange(segments - 1, dtype=np.int32), np.diff(edges))
            rel = composite - (int(edges[0]) - 1)
            np.clip(rel, 0, span + 1, out=rel)
            seg = np.take(lut, rel)
        else:
            seg = np.searchsorted(edges, composite, "right") - 1
            seg[seg < 0] = segments - 1
        s0 = np.searchsorted(edges, q_lo)
        owner, within = _expand(np.searchsorted(edges, q_hi) - s0)
        ter, cell = q_ter[owner], s0[owner] + within
        cells = segments
        for field, (b0, b1) in plan.bands.items():
            bands = self._number_bands[field]
            owner, within = _expand(b1[ter] - b0[ter])
            ter, cell = ter[owner], cell[owner] * bands.size + b0[ter[owner]] + within
            cells *= bands.size
            if cells > 8 * n + (1 << 22):
                return None
            name = "#" + field
            if name not in cache:
                cache[name] = _number_bands(bands, coded, field)
            found = cache[name]
            assert found is not None
            seg = seg.astype(narrow, copy=False) * bands.size + found
        count = np.bincount(cell, minlength=cells)
        decision = _decision(cell, ter, self.rank, cells)
        by_cell = np.argsort(cell, kind="stable")
        return _Cells(
            count=np.take(count, seg),
            decision=np.take(decision, seg),
            cell=seg,
            ptr=np.cumsum(count) - count,
            ters=ter[by_cell],
        )

    def _group(
        self,
        coded: CodedColumns,
        factor: Any,
        n: int,
        eq_fields: tuple[str, ...],
        rng_field: str | None,
        members: list[tuple[int, list[Condition], list[Condition], Any]],
    ) -> tuple[Array, Array] | None:
        facs = [factor(f) for f in eq_fields]
        codes_key = np.zeros(n, dtype=np.int64)
        for fac in facs:
            codes_key = codes_key * fac.uniq.size + fac.codes
        rfac = factor(rng_field) if rng_field is not None else None
        width = (rfac.uniq.size + 1) if rfac is not None else 1
        composite = codes_key * width + (rfac.codes if rfac is not None else 0)
        keys = int(codes_key.max()) + 1 if n else 0
        if rfac is not None and keys <= np.iinfo(np.int16).max:
            # the accounts in range order once per field, then a stable radix sort by the
            # small equality key: (equality key, range rank) without sorting per group
            by_range = rfac.order()
            order = by_range[np.argsort(codes_key[by_range].astype(np.int16), kind="stable")]
        else:
            if composite.size and int(composite.max()) < np.iinfo(np.int32).max:
                composite = composite.astype(np.int32)  # sorts faster
            order = np.argsort(composite)
        ordered = composite[order]
        queries = _queries(facs, members, rfac is not None)
        if queries is None:
            return None
        q_ter, q_lo, q_bound, bound_conds, residual = queries
        width = (rfac.uniq.size + 1) if rfac is not None else 1
        q_lo = q_lo * width
        base = q_lo
        which = q_bound
        if rfac is not None and bound_conds:
            lows, highs = rfac.bounds_many(bound_conds)
            lows, highs = np.append(lows, 0), np.append(highs, 1)  # -1: no range
        else:
            lows, highs = np.zeros(1, np.int64), np.ones(1, np.int64)
        q_lo_a, q_hi_a = base + lows[which], base + highs[which]
        starts = np.searchsorted(ordered, q_lo_a, "left")
        ends = np.searchsorted(ordered, q_hi_a, "left")
        lengths = ends - starts
        total = int(lengths.sum())
        ter = np.repeat(np.array(q_ter, dtype=np.int64), lengths)
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        accounts = order[np.arange(total, dtype=np.int64) + offsets]
        if residual:
            keep = _pairs_residual(coded, residual, accounts, ter, len(self.territories))
            if keep is not None:
                return accounts[keep], ter[keep]
            keep = np.ones(total, dtype=bool)
            bounds = np.cumsum(lengths) - lengths
            for q, k in enumerate(q_ter):
                if k not in residual or lengths[q] == 0:
                    continue
                lo, hi = int(bounds[q]), int(bounds[q] + lengths[q])
                keep[lo:hi] = coded.mask(residual[k], accounts[lo:hi])
            accounts, ter = accounts[keep], ter[keep]
        return accounts, ter


def _queries(
    facs: Sequence[_Factor],
    members: list[tuple[int, list[Condition], list[Condition], Any]],
    ranged: bool,
) -> tuple[Array, Array, Array, list[list[Condition]], dict[int, Any]] | None:
    """One query per (territory, combination of its equality codes): the territory, the
    equality key, which distinct range (-1: none), the distinct ranges and the residuals."""
    q_ter: list[int] = []
    q_key: list[int] = []
    residual: dict[int, Any] = {}
    code_cache: list[dict[Any, int]] = [{} for _ in facs]
    bound_cache: dict[tuple[tuple[str, Any], ...], int] = {}
    bound_conds: list[list[Condition]] = []
    q_bound: list[int] = []
    for k, eqs, rng, rest in members:
        if rest is not None:
            residual[k] = rest
        value_sets = []
        for fac, cache, cond in zip(facs, code_cache, eqs, strict=True):
            values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
            codes = set()
            for v in values:
                code = cache.get(v)
                if code is None:
                    code = cache[v] = fac.code_of(_plain(v))
                if code >= 0:
                    codes.add(code)
            value_sets.append(sorted(codes))
        if ranged and rng:
            bkey = tuple((c.op, c.value) for c in rng)
            b = bound_cache.get(bkey)
            if b is None:
                b = bound_cache[bkey] = len(bound_conds)
                bound_conds.append(rng)
        else:
            b = -1
        if len(value_sets) == 1 and len(value_sets[0]) == 1:
            combos: Any = ((value_sets[0][0],),)
        else:
            combos = itertools.product(*value_sets)
        for combo in combos:
            kv = 0
            for fac, code in zip(facs, combo, strict=True):
                kv = kv * fac.uniq.size + code
            q_ter.append(k)
            q_key.append(kv)
            q_bound.append(b)
    if not q_ter:
        return None
    return (
        np.array(q_ter, dtype=np.int64),
        np.array(q_key, dtype=np.int64),
        np.array(q_bound, dtype=np.int64),
        bound_conds,
        residual,
    )


def _expand(counts: Array) -> tuple[Array, Array]:
    """For ``counts[i]`` items per owner ``i``: each item's owner and its place within."""
    owner = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    within = np.arange(owner.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, within


def _number_residual(
    residual: Mapping[int, Any],
) -> dict[str, dict[int, tuple[float, float]]] | None:
    """The residuals as closed number intervals per field and territory, or None when some
    residual is more than a conjunction of number bounds."""
    numbers: dict[str, dict[int, tuple[float, float]]] = {}
    for k, root in residual.items():
        items = root.items if isinstance(root, _Node) and root.kind == "all" else (root,)
        for leaf in items:
            if not (
                isinstance(leaf, _Leaf)
                and leaf.domain == "number"
                and not leaf.negate
                and leaf.op in _NUMBER_BOUNDS
            ):
                return None
            low, high = _closed(leaf.op, leaf.value)
            found = numbers.setdefault(leaf.field, {}).get(k, (-math.inf, math.inf))
            numbers[leaf.field][k] = (max(found[0], low), min(found[1], high))
    return numbers


class _Bands:
    """Values cut at the sorted distinct boundaries ``ends``: band ``2j`` lies below
    ``ends[j]`` (and above ``ends[j-1]``), band ``2j+1`` is ``ends[j]`` itself and the last
    band, ``2 * len(ends) + 1``, holds missing values, which no range admits."""

    def __init__(self, ends: Array) -> None:
        self.ends = ends
        self.size = 2 * ends.size + 2

    def of(self, keys: Array, missing: Array | None) -> Array:
        at = np.searchsorted(self.ends, keys, "left")
        band = 2 * at.astype(np.int64)
        if self.ends.size:
            hit = self.ends[np.minimum(at, self.ends.size - 1)] == keys
            band += hit
        if missing is not None:
            band[missing] = self.size - 1
        return band

    def low(self, value: Any, strict: bool) -> int:
        j = int(np.searchsorted(self.ends, value))
        return 2 * j + (2 if strict else 1)

    def high(self, value: Any, strict: bool) -> int:
        j = int(np.searchsorted(self.ends, value))
        return 2 * j + (1 if strict else 2)


def _number_bands(bands: _Bands, coded: CodedColumns, field: str) -> Array:
    """Each row's band of a number field; an integer column over a short span reads a
    table of every integer in it."""
    raw = np.asarray(coded.columns.get(field, ()))
    if raw.dtype.kind in "iu" and raw.size and coded.order is None:
        low, high = int(raw.min()), int(raw.max())
        if low >= 0 and high <= 8 * raw.size + (1 << 22):
            low = 0  # a table from 0 up: no shift per row
        if high - low <= 8 * raw.size + (1 << 22):
            table = bands.of(np.arange(low, high + 1, dtype=np.float64), None)
            table = table.astype(np.int32 if bands.size < 2**31 else np.int64)
            found: Array = np.take(table, raw - low if low else raw)
            return found
    values = coded.numbers(field)
    return bands.of(values, np.isnan(values))


def _mention_codes(column: Array, mentioned: Array) -> Array | None:
    """Each row's place in ``mentioned`` (``mentioned.size``: none of them), through a
    table of hashes of the rows' bytes, every hit checked against the value; None when the
    column is not Latin-1 text or the mentioned values' hashes collide."""
    column = np.ascontiguousarray(column)
    n = column.size
    width = column.dtype.itemsize // 4
    if column.dtype.kind != "U" or width == 0 or n == 0:
        return None
    units = column.view(np.uint32).reshape(n, width)
    if int(units.max()) > 0xFF:
        return None
    said = np.asarray(mentioned, dtype=str)
    fitted = ShortKeys.fit(said, 1 << 16) if said.size else None
    if fitted is not None:  # the mentioned values' exact keys span a small table
        short, places = fitted
        table = np.full(short.span + 1, mentioned.size, dtype=np.int32)
        table[places] = np.arange(mentioned.size)
        keys = short.keys(column)  # -1 (the last slot) for a value none of them is
        exact: Array = np.take(table, keys)
        return exact
    padded = -(-width // 8) * 8
    fits = np.array(  # a longer or wider value matches no row
        [len(v) <= width and all(ord(c) <= 0xFF for c in v) for v in mentioned.tolist()],
        dtype=bool,
    )
    wanted = np.zeros((mentioned.size, padded), dtype=np.uint8)
    for k, value in enumerate(mentioned.tolist()):
        if fits[k]:
            raw = value.encode("latin-1")
            wanted[k, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    low = np.zeros((n, padded), dtype=np.uint8)
    low[:, :width] = units
    words = low.view(np.uint64)
    wanted_words = wanted.view(np.uint64)

    def hashed(w: Array) -> Array:
        h = np.zeros(w.shape[0], dtype=np.uint64)
        for j in range(w.shape[1]):
            h ^= w[:, j]
            h *= _MIX
        return h

    bits = max(4, 2 * int(mentioned.size).bit_length() + 4)
    shift = np.uint64(64 - bits)
    wanted_slot = (hashed(wanted_words) >> shift).astype(np.intp)[fits]
    if np.unique(wanted_slot).size != wanted_slot.size:
        return None
    table = np.full(1 << bits, mentioned.size, dtype=np.int64)
    table[wanted_slot] = np.flatnonzero(fits)
    found = table[(hashed(words) >> shift).astype(np.intp)]
    # a miss (found == mentioned.size) reads an extra row and stays a miss either way
    wanted_words = np.concatenate([wanted_words, np.full((1, padded // 8), ~np.uint64(0))])
    same = words[:, 0] == wanted_words[:, 0][found]
    for j in range(1, padded // 8):
        same &= words[:, j] == wanted_words[:, j][found]
    found[~same] = mentioned.size
    return found


def _text_keys(values: Array) -> Array | None:
    """Latin-1 text of at most 8 characters as big-endian uint64 keys (text order is key
    order), or None."""
    values = np.ascontiguousarray(values)
    width = values.dtype.itemsize // 4
    if values.dtype.kind != "U" or width > 8:
        return None
    units = values.view(np.uint32).reshape(values.size, width)
    if units.size and int(units.max()) > 0xFF:
        return None
    low = np.zeros((values.size, 8), dtype=np.uint8)
    low[:, :width] = units
    return low.view(">u8").reshape(-1).astype(np.uint64)


@attrs.frozen(eq=False)
class _RangePlan:
    """A range field's bands (the distinct bounds of every territory's range) and each
    distinct range's bands ``[lows, highs)``."""

    numeric: bool
    bands: _Bands
    lows: Array
    highs: Array

    @property
    def width(self) -> int:
        return self.bands.size

    def bands_of(self, column: Array) -> Array | None:
        """Each row's band, without factorising the column (None: text that is not
        Latin-1 or longer than 8 characters)."""
        if self.numeric:
            keys = column.astype(np.float64)
            return self.bands.of(keys, np.isnan(keys))
        dense = self._dense_bands(column)
        if dense is not None:
            return dense
        found = _text_keys(column)
        if found is None:
            return None
        return self.bands.of(found, found == 0)  # "" is never in a range

    def _dense_bands(self, column: Array) -> Array | None:
        """Text bands through exact dense keys of the rows and the bounds (see
        :class:`~crmkit._codes.ShortKeys`) and a table from key to band, when that table is
        small: for short codes over a small alphabet, such as postal codes; None
        otherwise."""
        n = column.size
        if column.dtype.kind != "U" or n == 0 or column.dtype.itemsize == 0:
            return None
        ends = self.bands.ends.astype(">u8").view(np.uint8).reshape(-1, 8)
        used = np.flatnonzero(ends.any(axis=0))
        wide = max(1, int(used[-1]) + 1 if used.size else 1)  # no wider than the bounds
        end_text = ends[:, :wide].astype(np.uint32).view(f"<U{wide}").reshape(-1)
        fitted = ShortKeys.fit(column, 8 * n + (1 << 22), end_text)
        if fitted is None:
            return None
        short, key = fitted
        at = short.keys(end_text).astype(np.int64)
        # bands over [0, span): 2i below end i, 2i+1 at it, 2m above the last
        cuts = np.empty(2 * at.size + 2, dtype=np.int64)
        cuts[0], cuts[-1] = 0, short.span
        cuts[1:-1:2], cuts[2:-1:2] = at, at + 1
        lut = np.repeat(np.arange(2 * at.size + 1, dtype=np.int32), np.diff(cuts))
        empty = int(short.keys(np.array([""]))[0])
        if empty >= 0:
            lut[empty] = self.bands.size - 1  # "" is never in a range
        found: Array = np.take(lut, key)
        return found


def _range_plan(numeric: bool, bound_conds: list[list[Condition]]) -> _RangePlan | None:
    """The bands of these ranges (None: a text bound that is not plain enough)."""
    rows: list[int] = []
    ops: list[str] = []
    values: list[Any] = []
    for r, conds in enumerate(bound_conds):
        for cond in conds:
            parts = (
                [(">=", cond.value[0]), ("<=", cond.value[1])]
                if cond.op == "between"
                else [(cond.op, cond.value)]
            )
            for op, value in parts:
                rows.append(r)
                ops.append(op)
                values.append(_plain(value))
    keys: Array | None
    if numeric:
        keys = np.array([float(v) for v in values], dtype=np.float64)
    elif all(isinstance(v, str) for v in values):
        keys = _text_keys(np.array(values, dtype=str)) if values else np.zeros(0, np.uint64)
    else:
        keys = None
    if keys is None:
        return None
    bands = _Bands(np.unique(keys))
    j = 2 * np.searchsorted(bands.ends, keys).astype(np.int64)
    op_of: Array = np.array(ops, dtype=object)
    row = np.array(rows, dtype=np.intp)
    lows = np.zeros(len(bound_conds), dtype=np.int64)
    highs = np.full(len(bound_conds), bands.size - 1, dtype=np.int64)
    for name, lower, add in ((">=", True, 1), (">", True, 2), ("<=", False, 2), ("<", False, 1)):
        pick: Array = op_of == name
        if pick.any():
            (np.maximum if lower else np.minimum).at(
                lows if lower else highs, row[pick], j[pick] + add
            )
    return _RangePlan(numeric, bands, lows, np.maximum(lows, highs))


@attrs.frozen(eq=False)
class _GroupPlan:
    """A group's queries, one per (territory, combination of its equality values): the
    territory, per equality field the value's place in ``mentioned`` (that field's
    distinct values), the distinct range (see :class:`_RangePlan`); and per residual number
    field each territory's bands ``[b0, b1)``."""

    q_ter: Array
    mentioned: list[Array]
    q_value: list[Array]
    q_bound: Array
    bands: dict[str, tuple[Array, Array]]

    @classmethod
    def of(
        cls,
        members: list[tuple[int, list[Condition], list[Condition], Any]],
        ranges: Mapping[tuple[tuple[str, Any], ...], int],
        bands: dict[str, tuple[Array, Array]],
        mentioned: list[list[Any]] | None,
    ) -> _GroupPlan | None:
        width = len(members[0][1]) if members else 0
        lists = [
            [
                [
                    v if type(v) is str else _plain(v)
                    for v in (c.value if isinstance(c.value, tuple) else (c.value,))
                ]
                for c in eqs
            ]
            for _k, eqs, _rng, _rest in members
        ]
        if mentioned is None:
            return None
        where = [{v: j for j, v in enumerate(m)} for m in mentioned]
        q_ter: list[int] = []
        q_bound: list[int] = []
        q_value: list[list[int]] = [[] for _ in range(width)]
        for (k, _eqs, rng, _rest), per in zip(members, lists, strict=True):
            b = ranges[tuple((c.op, c.value) for c in rng)] if rng else -1
            for combo in itertools.product(*[sorted(set(vs)) for vs in per]):
                q_ter.append(k)
                q_bound.append(b)
                for i, v in enumerate(combo):
                    q_value[i].append(where[i][v])
        return cls(
            q_ter=np.array(q_ter, dtype=np.int64),
            mentioned=[np.array(m, dtype=str) for m in mentioned],
            q_value=[np.array(q, dtype=np.int64) for q in q_value],
            q_bound=np.array(q_bound, dtype=np.int64),
            bands=bands,
        )


_NONE = np.int64(np.iinfo(np.int32).max) << 32
"""The decision of no match."""


def _decision(cell: Array, ter: Array, rank: Array, cells: int) -> Array:
    """Per cell, the best rank of its (cell, territory) pairs in the high 32 bits and in the
    low bits the territory holding it plus one (0: several tie); ``_NONE``: no pair."""
    pair_rank = rank[ter]
    best = np.full(cells, np.iinfo(np.int32).max, dtype=np.int64)
    np.minimum.at(best, cell, pair_rank)
    top = pair_rank == best[cell]
    holder = np.zeros(cells, dtype=np.int64)
    holder[cell[top]] = ter[top] + 1
    holder[np.bincount(cell[top], minlength=cells) > 1] = 0
    return (best << 32) | holder


@attrs.frozen(eq=False)
class _Cells:
    """One group's answer per account, read from per-cell tables: how many territories
    match and the decision (see :func:`_decision`); ``cell`` and the cells' territory lists
    (``ptr``, ``ters``) give the pairs when asked for."""

    count: Array
    decision: Array
    cell: Array
    ptr: Array
    ters: Array

    @classmethod
    def empty(cls, n: int) -> _Cells:
        none = np.zeros(n, dtype=np.int64)
        return cls(none, np.full(n, _NONE, dtype=np.int64), none, np.zeros(1, np.int64), none[:0])

    @classmethod
    def of_pairs(cls, n: int, acc: Array, ter: Array, rank: Array) -> _Cells:
        """The same per-account answer from listed pairs (one cell per account)."""
        count = np.bincount(acc, minlength=n)
        by_acc = np.argsort(acc, kind="stable")
        return cls(
            count=count,
            decision=_decision(acc, ter, rank, n),
            cell=np.arange(n, dtype=np.int64),
            ptr=np.cumsum(count) - count,
            ters=ter[by_acc],
        )

    def merge(self, decision: Array) -> Array:
        """This decision and another group's: the better rank wins, equal ranks tie."""
        mine = self.decision >> 32
        out = np.minimum(self.decision, decision)
        tie = mine == decision >> 32  # no match in both is _NONE either way
        out[tie] = mine[tie] << 32
        return out

    def pair_rows(self) -> Array:
        """The account row of every pair, in account order."""
        return np.repeat(np.arange(self.count.size, dtype=np.int64), self.count)

    def pair_territories(self) -> Array:
        """The territory of every pair, in the order of :meth:`pair_rows`."""
        rows = np.flatnonzero(self.count)
        counts = self.count[rows]
        first = np.cumsum(counts) - counts  # each row's first pair
        shift = np.repeat(self.ptr[self.cell[rows]] - first, counts)
        shift += np.arange(shift.size, dtype=np.int64)
        found: Array = self.ters[shift]
        return found


_NUMBER_BOUNDS = frozenset({">=", ">", "<=", "<", "==", "between"})


def _pairs_residual(
    coded: CodedColumns, residual: Mapping[int, Any], accounts: Array, ter: Array, count: int
) -> Array | None:
    """Which (account, territory) pairs pass their territory's residual criteria, for all
    pairs at once, or None when some residual is not a plain conjunction of text tests and
    number bounds (the caller then tests territory by territory).

    A text test is a table over the field's distinct values (one row per territory); number
    bounds become one closed interval per territory and field.
    """
    text: dict[str, dict[int, Array]] = {}
    numbers: dict[str, dict[int, tuple[float, float]]] = {}
    for k, root in residual.items():
        items = root.items if isinstance(root, _Node) and root.kind == "all" else (root,)
        for leaf in items:
            if not isinstance(leaf, _Leaf):
                return None
            if leaf.domain == "text":
                table = coded.table(leaf)
                rows = text.setdefault(leaf.field, {})
                rows[k] = rows[k] & table if k in rows else table
            elif leaf.domain == "number" and not leaf.negate and leaf.op in _NUMBER_BOUNDS:
                low, high = _closed(leaf.op, leaf.value)
                found = numbers.setdefault(leaf.field, {}).get(k, (-math.inf, math.inf))
                numbers[leaf.field][k] = (max(found[0], low), min(found[1], high))
            else:
                return None
    if any((len(rows) + 1) * coded.text(f).values.size > 1 << 25 for f, rows in text.items()):
        return None  # tables too large: many distinct values
    keep = np.ones(accounts.size, dtype=bool)
    for field, rows in text.items():
        codes = coded.text(field)
        size = codes.values.size
        local = np.full(count, len(rows), dtype=np.int64)  # the last row: no test, all pass
        tables = np.ones((len(rows) + 1, size), dtype=bool)
        for row, (k, table) in enumerate(rows.items()):
            local[k] = row
            tables[row] = table
        keep &= tables.reshape(-1)[local[ter] * size + codes.codes[accounts]]
    for field, ranges in numbers.items():
        lows = np.full(count, -math.inf)
        highs = np.full(count, math.inf)
        tested = np.zeros(count, dtype=bool)
        for k, (low, high) in ranges.items():
            lows[k], highs[k], tested[k] = low, high, True
        values = coded.numbers(field)[accounts]
        inside = (values >= lows[ter]) & (values <= highs[ter])  # NaN is never inside
        keep &= inside | ~tested[ter]
    return keep


def _closed(op: str, value: Any) -> tuple[float, float]:
    """A number condition as a closed interval of float64 values."""
    if op == "between":
        return float(value[0]), float(value[1])
    v = float(value)
    if op == "==":
        return v, v
    if op == ">=":
        return v, math.inf
    if op == ">":
        return float(np.nextafter(v, math.inf)), math.inf
    if op == "<=":
        return -math.inf, v
    return -math.inf, float(np.nextafter(v, -math.inf))


def match_territories(
    territories: Sequence[Territory] | TerritoryIndex, columns: Mapping[str, Array]
) -> tuple[Array, Array, Array]:
    """Every (account row, territory index) match, and each territory's depth.

    Territories are grouped by the equality fields and the range field of their top-level
    conditions (``country == "US"``, ``postal_code between [...]``, or a half-open
    ``postal_code >= lo`` and ``postal_code < hi``); each group sorts the accounts once by
    (equality key, range rank) and finds every territory's accounts with vectorised binary
    searches. Remaining conditions are masks over those candidates only, on the text
    columns' integer codes; a territory with nothing indexable is one mask over all
    accounts.
    """
    index = territories if isinstance(territories, TerritoryIndex) else TerritoryIndex(territories)
    acc, ter = index.match(columns)
    return acc, ter, index.depth


def _plain(value: Any) -> Any:
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    return value


def assign_columns(
    territories: Sequence[Territory] | TerritoryIndex, columns: Mapping[str, Array]
) -> TerritoryAssignment:
    """Assign accounts given as columns (``id``, optional ``territory_id`` and
    ``realignment_locked``, and the fields the territories read).

    ``territories`` may be a :class:`TerritoryIndex` built once for many calls.

    Examples
    --------
    >>> from crmkit import F, Territory
    >>> territories = [
    ...     Territory(id="de", name="DE", priority=10, criteria=(F.country == "DE").to_dict()),
    ...     Territory(id="eu", name="EU", priority=50,
    ...               criteria=F.country.isin(["DE", "FR"]).to_dict()),
    ... ]
    >>> columns = {"id": np.array(["a1", "a2", "a3", "a4"]),
    ...            "country": np.array(["DE", "FR", "US", "DE"]),
    ...            "territory_id": np.array(["", "", "", "old"]),
    ...            "realignment_locked": np.array([False, False, False, True])}
    >>> result = assign_columns(territories, columns)
    >>> result.primary.tolist(), result.reason.tolist()
    (['de', 'eu', '', 'old'], ['primary', 'primary', 'no_match', 'locked'])
    >>> result.matches("a1")
    ['de', 'eu']
    """
    compiled = (
        territories if isinstance(territories, TerritoryIndex) else TerritoryIndex(territories)
    )
    ids = np.asarray(columns["id"])
    decided, acc, ter = compiled.decide(columns)
    n = ids.size
    tids = compiled.ids
    if acc.size or not decided:
        decided.append(_Cells.of_pairs(n, acc, ter, compiled.rank))
    count, decision = decided[0].count, decided[0].decision
    for part in decided[1:]:
        count = count + part.count
        decision = part.merge(decision)
    matched = decision < _NONE
    holder = decision & 0xFFFFFFFF
    placed = matched & (holder > 0)
    index = np.where(placed, holder - 1, -1)
    reason = np.full(n, _REASONS.index(NO_MATCH), dtype=np.int8)
    reason[placed] = _REASONS.index(PRIMARY)
    reason[matched & (holder == 0)] = _REASONS.index(TIE)
    locked: Array | None = None
    current: Array | None = None
    if "realignment_locked" in columns:
        locked = np.asarray(columns["realignment_locked"], dtype=bool)
        current = np.asarray(columns.get("territory_id", np.full(n, "")))
        index[locked] = -1
        reason[locked] = _REASONS.index(LOCKED)
    return TerritoryAssignment(
        account_ids=ids,
        territory_ids=tids,
        primary_index=index,
        reason_code=reason,
        match_count=count,
        parts=tuple(decided),
        locked=locked,
        locked_territory=current,
    )


def assign_territories(store: Any, model_id: str | None = None) -> TerritoryAssignment:
    """Match every stored account against a model's territories (the active model by
    default). Nothing is written; see :func:`realignment_diff` to apply.

    Examples
    --------
    >>> from crmkit import Account, F, MemoryStore, Territory, TerritoryModel
    >>> store = MemoryStore()
    >>> _ = store.territory_models.add(TerritoryModel(id="fy26", name="FY26"))
    >>> _ = store.territories.add_many([
    ...     Territory(id="de", name="DE", model_id="fy26", criteria=(F.country == "DE").to_dict()),
    ...     Territory(id="fr", name="FR", model_id="fy26", criteria=(F.country == "FR").to_dict()),
    ... ])
    >>> _ = store.accounts.add_many([Account(id="a1", name="A1", country="DE"),
    ...                              Account(id="a2", name="A2", country="DE"),
    ...                              Account(id="a3", name="A3", country="US")])
    >>> result = assign_territories(store, "fy26")  # a planning model, named explicitly
    >>> result.counts(), result.primary_of("a3")
    ({'de': 2, 'fr': 0}, (None, 'no_match'))
    >>> store.accounts.get("a1").territory_id is None  # nothing is written
    True
    """
    if model_id is None:
        model = active_model(store)
        if model is None:
            raise ValidationError("TerritoryModel", "state", None, "no territory model is active")
        model_id = model.id
    territories = territories_of(store, model_id)
    fields = sorted(
        set(territory_fields(territories)) | {"id", "territory_id", "realignment_locked"}
    )
    return assign_columns(territories, store.accounts.columns(fields))


# -- realignment ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Move:
    """One account's change in a realignment."""

    account_id: str
    from_territory: str | None
    to_territory: str | None
    from_owner: str | None
    to_owner: str | None
    open_pipeline: float


@attrs.frozen(kw_only=True)
class RealignmentDiff:
    """What moving to ``to_model`` would change, before anything is written.

    ``workload`` maps rep id to ``{"accounts": (before, after), "revenue": ...,
    "pipeline": ...}``; ``unplaced`` lists accounts without a primary territory in the new
    model (tie or no match) with the reason; they keep their owner, and ``cleared`` holds
    those of them that still carry a ``territory_id``: applying the diff clears it (a
    ``Move`` to ``None``), so no account is left in a territory of an archived model.
    """

    from_model: str | None
    to_model: str
    moves: tuple[Move, ...]
    unplaced: tuple[tuple[str, str], ...]
    kept_locked: tuple[str, ...]
    workload: Mapping[str, Mapping[str, tuple[float, float]]]
    cleared: tuple[Move, ...] = ()

    @property
    def owner_changes(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.from_owner != m.to_owner)

    @property
    def pipeline_moving(self) -> float:
        """Open pipeline on accounts whose owner changes."""
        return float(sum(m.open_pipeline for m in self.owner_changes))

    def summary(self) -> str:
        return (
            f"{len(self.moves)} account(s) move territory, {len(self.owner_changes)} change "
            f"owner, {self.pipeline_moving:,.0f} open pipeline moves, "
            f"{len(self.unplaced)} unplaced ({len(self.cleared)} cleared), "
            f"{len(self.kept_locked)} locked"
        )


def _account_values(store: Any) -> tuple[Array, Array, Array, Array]:
    cols = store.accounts.columns(["id", "owner_id", "annual_revenue"])
    ids = cols["id"]
    revenue = np.nan_to_num(cols["annual_revenue"])
    opp = store.opportunities.columns(["account_id", "status", "amount"])
    open_ = (opp["status"] == OpportunityStatus.OPEN.value) & (opp["account_id"] != "")
    pipeline = np.zeros(ids.size)
    if open_.any() and ids.size:
        order = np.argsort(ids)
        pos = np.searchsorted(ids[order], opp["account_id"][open_])
        pos = np.clip(pos, 0, ids.size - 1)
        hit = ids[order][pos] == opp["account_id"][open_]
        np.add.at(pipeline, order[pos[hit]], np.nan_to_num(opp["amount"][open_][hit]))
    return ids, cols["owner_id"], revenue, pipeline


def _workload(owners: Array, revenue: Array, pipeline: Array) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    has = owners != ""
    uniq, inv = np.unique(owners[has], return_inverse=True)
    counts = np.bincount(inv, minlength=uniq.size)
    rev = np.bincount(inv, weights=revenue[has], minlength=uniq.size)
    pip = np.bincount(inv, weights=pipeline[has], minlength=uniq.size)
    for k, rep in enumerate(uniq.tolist()):
        out[rep] = {
            "accounts": float(counts[k]),
            "revenue": float(rev[k]),
            "pipeline": float(pip[k]),
        }
    return out


def realignment_diff(
    store: Any, to_model: str, *, from_model: str | None = None
) -> RealignmentDiff:
    """Compare the accounts' current territories (``from_model``: the active model) with
    where ``to_model`` would put them. Owners follow the new territory's ``owner_id``
    (unchanged when the territory has none).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, F, MemoryStore, Opportunity, Territory, TerritoryModel
    >>> store = MemoryStore()
    >>> _ = store.territory_models.add_many([TerritoryModel(id=m, name=m) for m in ("y1", "y2")])
    >>> _ = activate_model(store, "y1", now=datetime(2026, 1, 5, tzinfo=timezone.utc))
    >>> _ = store.territories.add_many([
    ...     Territory(id="dach", name="DACH", model_id="y2", owner_id="ben",
    ...               criteria=(F.country == "DE").to_dict()),
    ...     Territory(id="fr", name="France", model_id="y2",
    ...               criteria=(F.country == "FR").to_dict()),
    ... ])
    >>> _ = store.accounts.add_many([
    ...     Account(id=a, name=a, country=c, owner_id="ana", territory_id="eu")
    ...     for a, c in [("a1", "DE"), ("a2", "FR"), ("a3", "US")]])
    >>> _ = store.opportunities.add(
    ...     Opportunity(id="o1", name="Deal", account_id="a1", amount=500, owner_id="ana"))
    >>> diff = realignment_diff(store, "y2")
    >>> diff.from_model
    'y1'
    >>> print(diff.summary())  # doctest: +NORMALIZE_WHITESPACE
    2 account(s) move territory, 1 change owner, 500 open pipeline moves,
    1 unplaced (1 cleared), 0 locked
    >>> [(m.account_id, m.to_territory, m.to_owner) for m in diff.moves], diff.unplaced
    ([('a1', 'dach', 'ben'), ('a2', 'fr', 'ana')], (('a3', 'no_match'),))
    >>> [(m.account_id, m.from_territory, m.to_territory) for m in diff.cleared]
    [('a3', 'eu', None)]
    >>> diff.workload["ben"]["accounts"], diff.workload["ben"]["pipeline"]
    ((0.0, 1.0), (0.0, 500.0))
    """
    if from_model is None:
        current = active_model(store)
        from_model = current.id if current is not None else None
    territories = territories_of(store, to_model)
    fields = sorted(
        set(territory_fields(territories)) | {"id", "territory_id", "realignment_locked"}
    )
    cols = store.accounts.columns(fields)
    result = assign_columns(territories, cols)
    ids, owners, revenue, pipeline = _account_values(store)
    owner_of_territory = {t.id: t.owner_id for t in territories}
    new_owner = owners.astype(object).copy()
    placed = result.reason == PRIMARY
    target = result.primary
    for tid, owner in owner_of_territory.items():
        if owner is not None:
            new_owner[placed & (target == tid)] = owner
    current_t = cols["territory_id"]
    moving = placed & (target != current_t)
    moves = tuple(
        Move(
            account_id=str(ids[i]),
            from_territory=str(current_t[i]) or None,
            to_territory=str(target[i]),
            from_owner=str(owners[i]) or None,
            to_owner=new_owner[i] or None,
            open_pipeline=float(pipeline[i]),
        )
        for i in np.flatnonzero(moving | (placed & (new_owner != owners.astype(object)))).tolist()
    )
    unplaced_rows = np.flatnonzero(np.isin(result.reason, [TIE, NO_MATCH]))
    unplaced = tuple((str(ids[i]), str(result.reason[i])) for i in unplaced_rows.tolist())
    cleared = tuple(
        Move(
            account_id=str(ids[i]),
            from_territory=str(current_t[i]),
            to_territory=None,
            from_owner=str(owners[i]) or None,
            to_owner=str(owners[i]) or None,
            open_pipeline=float(pipeline[i]),
        )
        for i in unplaced_rows[current_t[unplaced_rows] != ""].tolist()
    )
    locked = tuple(str(ids[i]) for i in np.flatnonzero(result.reason == LOCKED).tolist())
    before = _workload(owners, revenue, pipeline)
    after = _workload(
        np.array([o or "" for o in new_owner.tolist()], dtype=str), revenue, pipeline
    )
    reps = sorted(set(before) | set(after))
    zero = {"accounts": 0.0, "revenue": 0.0, "pipeline": 0.0}
    workload = {
        rep: {m: (before.get(rep, zero)[m], after.get(rep, zero)[m]) for m in zero} for rep in reps
    }
    return RealignmentDiff(
        from_model=from_model,
        to_model=to_model,
        moves=moves,
        unplaced=unplaced,
        kept_locked=locked,
        workload=workload,
        cleared=cleared,
    )


def apply_realignment(
    store: Any, diff: RealignmentDiff, *, now: datetime, changed_by: str = CHANGED_BY
) -> int:
    """Apply a diff in one transaction: accounts get their new territory and owner (the
    ``cleared`` ones lose their old territory), open opportunities the account owner held
    follow the account, every owner change is recorded as an ``OwnershipChange``, and
    ``to_model`` becomes the active model. Returns the number of accounts changed.

    It runs in :func:`~crmkit.store.run_transaction` and is idempotent: accounts already
    where the diff puts them are skipped, so applying a diff twice (or from several
    workers at once) changes nothing the second time and returns 0. An account whose
    territory or owner changed since the diff was made is a ``ValidationError`` and
    nothing is written: compute the diff again.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, F, MemoryStore, Opportunity, Territory, TerritoryModel
    >>> store = MemoryStore()
    >>> _ = store.territory_models.add(TerritoryModel(id="fy27", name="FY27"))
    >>> _ = store.territories.add(Territory(id="dach", name="DACH", model_id="fy27",
    ...     owner_id="ben", criteria=(F.country == "DE").to_dict()))
    >>> _ = store.accounts.add(Account(id="a1", name="A1", country="DE", owner_id="ana"))
    >>> _ = store.opportunities.add(
    ...     Opportunity(id="o1", name="Deal", account_id="a1", owner_id="ana"))
    >>> diff = realignment_diff(store, "fy27")
    >>> apply_realignment(store, diff, now=datetime(2026, 2, 1, tzinfo=timezone.utc))
    1
    >>> store.accounts.get("a1").territory_id, store.accounts.get("a1").owner_id
    ('dach', 'ben')
    >>> store.opportunities.get("o1").owner_id, active_model(store).id
    ('ben', 'fy27')
    >>> sorted(c.record_type for c in store.ownership_changes)
    ['Account', 'Opportunity']
    """

    def write() -> int:
        accounts = []
        changes = []
        moved_owner: dict[str, tuple[str | None, str | None]] = {}
        for move in (*diff.moves, *diff.cleared):
            account = store.accounts.get(move.account_id)
            if account.realignment_locked:
                continue
            now_at = (account.territory_id, account.owner_id)
            if now_at == (move.to_territory, move.to_owner):
                continue  # applied already
            if now_at != (move.from_territory, move.from_owner):
                raise ValidationError(
                    "Account",
                    "territory_id",
                    account.territory_id,
                    f"changed since the realignment diff was made (territory "
                    f"{move.from_territory!r}, owner {move.from_owner!r} then; owner "
                    f"{account.owner_id!r} now): compute the diff again",
                    record_id=account.id,
                )
            accounts.append(
                attrs.evolve(account, territory_id=move.to_territory, owner_id=move.to_owner)
            )
            if account.owner_id != move.to_owner:
                moved_owner[account.id] = (account.owner_id, move.to_owner)
                changes.append(
                    _change(
                        "Account",
                        account.id,
                        account.owner_id,
                        move.to_owner,
                        now,
                        f"realignment to {diff.to_model}",
                        changed_by,
                    )
                )
        store.accounts.put_many(accounts)
        if moved_owner:
            opps = store.opportunities.query(
                {
                    "all": [
                        {"field": "account_id", "op": "in", "value": sorted(moved_owner)},
                        {"field": "status", "op": "==", "value": "open"},
                    ]
                }
            )
            updated = []
            for opp in opps:
                old, new = moved_owner[opp.account_id]
                if opp.owner_id == old and old != new:
                    updated.append(attrs.evolve(opp, owner_id=new))
                    changes.append(
                        _change(
                            "Opportunity",
                            opp.id,
                            old,
                            new,
                            now,
                            f"account {opp.account_id} realigned",
                            changed_by,
                        )
                    )
            store.opportunities.put_many(updated)
        store.ownership_changes.add_many(changes)
        _owner_changes(store, changes)
        activate_model(store, diff.to_model, now=now)
        return len(accounts)

    return run_transaction(store, write, attempts=10)


def _change(
    kind: str, rid: str, old: str | None, new: str | None, now: datetime, reason: str, by: str
) -> OwnershipChange:
    return OwnershipChange(
        id=f"oc-{uuid.uuid4().hex}",
        record_type=kind,
        record_id=rid,
        from_owner_id=old,
        to_owner_id=new,
        at=now,
        reason=reason,
        changed_by=by,
    )


# -- balancing ---------------------------------------------------------------------------------

MEASURES = ("accounts", "pipeline", "revenue")


def imbalance(loads: Sequence[float] | Array) -> float:
    """The imbalance measure: coefficient of variation (population std / mean) of the
    workload per rep; 0 is perfectly even.

    >>> imbalance([10, 10, 10]), round(imbalance([0, 10, 20]), 3)
    (0.0, 0.816)
    """
    values = np.asarray(loads, dtype=np.float64)
    if values.size == 0 or values.mean() == 0:
        return 0.0
    return float(values.std() / values.mean())


@attrs.frozen(kw_only=True)
class BalancePlan:
    """Suggested account moves between reps and the imbalance before and after."""

    measure: str
    moves: tuple[tuple[str, str, str, float], ...]  # account, from rep, to rep, value
    before: Mapping[str, float]
    after: Mapping[str, float]
    imbalance_before: float
    imbalance_after: float


def suggest_balance(
    store: Any,
    *,
    measure: str = "accounts",
    reps: Sequence[str] | None = None,
    max_moves: int = 50,
) -> BalancePlan:
    """Greedy moves of unlocked accounts from the busiest rep to the least busy that lower
    the :func:`imbalance` of ``measure`` (``accounts``, ``revenue`` or ``pipeline``).

    Each step moves, from the busiest rep to the least busy, the account whose value is
    closest to half their gap; it stops when no move helps or after ``max_moves``.

    Examples
    --------
    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([
    ...     Account(id="a1", name="A1", owner_id="ana", annual_revenue=100,
    ...             realignment_locked=True),
    ...     Account(id="a2", name="A2", owner_id="ana", annual_revenue=60),
    ...     Account(id="a3", name="A3", owner_id="ana", annual_revenue=40),
    ... ])
    >>> plan = suggest_balance(store, measure="revenue", reps=["ana", "ben"])
    >>> plan.moves  # a1 is locked; 60 is closest to half the 200 gap, then 40 to half of 80
    (('a2', 'ana', 'ben', 60.0), ('a3', 'ana', 'ben', 40.0))
    >>> plan.before, plan.after, plan.imbalance_before, plan.imbalance_after
    ({'ana': 200.0, 'ben': 0.0}, {'ana': 100.0, 'ben': 100.0}, 1.0, 0.0)
    """
    if measure not in MEASURES:
        raise ValidationError("BalancePlan", "measure", measure, f"must be one of {MEASURES}")
    ids, owners, revenue, pipeline = _account_values(store)
    locked = store.accounts.columns(["realignment_locked"])["realignment_locked"]
    value = {"accounts": np.ones(ids.size), "revenue": revenue, "pipeline": pipeline}[measure]
    if reps is None:
        reps = [r.id for r in store.reps if r.active]
    reps = sorted(reps)
    if not reps:
        raise ValidationError("BalancePlan", "reps", reps, "needs at least one rep")
    index = {r: k for k, r in enumerate(reps)}
    owner_idx = np.array([index.get(o, -1) for o in owners.tolist()], dtype=np.int64)
    load = np.bincount(
        owner_idx[owner_idx >= 0], weights=value[owner_idx >= 0], minlength=len(reps)
    )
    before = dict(zip(reps, load.tolist(), strict=True))
    start = imbalance(load)
    moves = []
    movable = ~np.asarray(locked, dtype=bool)
    for _ in range(max_moves):
        hi, lo = int(np.argmax(load)), int(np.argmin(load))
        gap = load[hi] - load[lo]
        cand = np.flatnonzero((owner_idx == hi) & movable & (value > 0) & (value < gap))
        if cand.size == 0:
            break
        best = cand[np.argmin(np.abs(value[cand] - gap / 2))]
        owner_idx[best] = lo
        load[hi] -= value[best]
        load[lo] += value[best]
        moves.append((str(ids[best]), reps[hi], reps[lo], float(value[best])))
    return BalancePlan(
        measure=measure,
        moves=tuple(moves),
        before=before,
        after=dict(zip(reps, load.tolist(), strict=True)),
        imbalance_before=start,
        imbalance_after=imbalance(load),
    )
