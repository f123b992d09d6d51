"""The columns the pipeline metrics read, and the numpy grouping they share.

Everything here works on whole arrays: text columns are factorised once (a 64-bit hash of
the fixed-width code points, checked for collisions), lookups into reps and accounts are
done per distinct value and gathered back through the codes, and groups are summed with
``np.bincount``. No Python loop runs per opportunity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np

from crmkit._time import micros
from crmkit.errors import ValidationError
from crmkit.pipeline._stages import Pipeline
from crmkit.store._base import Store

__all__ = ["PipelineData", "load"]

Array = np.ndarray[Any, Any]

OPPORTUNITY_FIELDS = (
    "id",
    "account_id",
    "amount",
    "stage",
    "probability",
    "status",
    "close_date",
    "product",
    "owner_id",
    "source",
    "loss_reason",
    "created_at",
    "closed_at",
)
REP_FIELDS = ("id", "name", "manager_id", "region", "team")
ACCOUNT_FIELDS = ("id", "name", "parent_id", "region", "territory_id")
NAMED_FIELDS = ("id", "name")
CHANGE_FIELDS = ("id", "opportunity_id", "from_stage", "to_stage", "at", "amount", "probability")

_TEXT = "U"
_KINDS = {
    "id": _TEXT,
    "name": _TEXT,
    "account_id": _TEXT,
    "stage": _TEXT,
    "status": _TEXT,
    "product": _TEXT,
    "owner_id": _TEXT,
    "source": _TEXT,
    "loss_reason": _TEXT,
    "amount": "f",
    "probability": "f",
    "close_date": "M8[D]",
    "created_at": "M8[us]",
    "closed_at": "M8[us]",
}

PERIODS = {
    "month": ("close_date", "M"),
    "quarter": ("close_date", "Q"),
    "year": ("close_date", "Y"),
    "created_month": ("created_at", "M"),
    "created_quarter": ("created_at", "Q"),
    "created_year": ("created_at", "Y"),
}
REP_DIMENSIONS = {"team": "team", "manager": "manager_id", "rep_region": "region"}
ACCOUNT_DIMENSIONS = {"region": "region", "territory": "territory_id", "family": "family"}
#: dimensions whose values are record ids, and the table naming those records
NAMED_DIMENSIONS = {
    "owner": "reps",
    "manager": "reps",
    "account": "accounts",
    "family": "accounts",
    "team": "teams",
    "territory": "territories",
}
LABELS = ("id", "name")


def _text(column: Array) -> Array:
    """Any column as unicode with ``""`` for missing (object columns from custom fields)."""
    if column.dtype.kind == "U":
        return column
    if column.dtype.kind == "O":
        return np.array(["" if v is None else str(v) for v in column.tolist()], dtype=str)
    return column.astype(str)


def _frozen(columns: Mapping[str, Any]) -> Mapping[str, Array]:
    return MappingProxyType({k: np.asarray(v) for k, v in columns.items()})


def _check_columns(
    what: str, columns: Mapping[str, Any], needed: Sequence[str]
) -> dict[str, Array]:
    lengths = {len(np.asarray(c)) for c in columns.values()}
    if len(lengths) > 1:
        raise ValidationError(what, "columns", sorted(columns), "columns must have equal lengths")
    n = lengths.pop() if lengths else 0
    result: dict[str, Array] = {}
    for name in columns:
        result[name] = np.asarray(columns[name])
    for name in needed:
        if name not in result:
            if name == "id" or (what == "StageChange" and name in ("opportunity_id", "to_stage")):
                raise ValidationError(what, name, None, "this column is required")
            kind = _KINDS.get(name, _TEXT)
            result[name] = (
                np.full(n, "", dtype=str)
                if kind == _TEXT
                else np.full(n, np.nan)
                if kind == "f"
                else np.full(n, np.datetime64("NaT"), dtype=kind)
            )
    for name, kind in _KINDS.items():
        if name in result and name in needed:
            column = result[name]
            try:
                if kind == _TEXT:
                    result[name] = _text(column)
                elif kind == "f":
                    result[name] = column.astype(np.float64)
                else:
                    result[name] = column.astype(kind)
            except (TypeError, ValueError) as err:
                raise ValidationError(
                    what, name, column.dtype, f"cannot be read as {kind}: {err}"
                ) from err
    return result


def _empty(fields: Sequence[str]) -> dict[str, Array]:
    return _check_columns("columns", {"id": np.array([], dtype=str)}, fields)


def _no_names() -> Mapping[str, Array]:
    return _frozen(_empty(NAMED_FIELDS))


@attrs.frozen(kw_only=True, eq=False)
class PipelineData:
    """The columns every pipeline metric reads: opportunities, reps, accounts, history,
    and the names of reps, accounts, teams and territories (for ``labels="name"``).

    Build it once with :func:`load` (from a store) or :meth:`from_columns` (from arrays
    you already have) and pass it to several metrics to avoid reading the store again.

    Examples
    --------
    >>> import numpy as np
    >>> data = PipelineData.from_columns(
    ...     {"id": np.array(["o1", "o2"]), "amount": np.array([100.0, np.nan]),
    ...      "status": np.array(["open", "won"])})
    >>> len(data), data.opportunities["owner_id"]
    (2, array(['', ''], dtype='<U1'))
    """

    opportunities: Mapping[str, Array] = attrs.field(converter=_frozen)
    reps: Mapping[str, Array] = attrs.field(converter=_frozen)
    accounts: Mapping[str, Array] = attrs.field(converter=_frozen)
    stage_changes: Mapping[str, Array] = attrs.field(converter=_frozen)
    teams: Mapping[str, Array] = attrs.field(converter=_frozen, factory=_no_names)
    territories: Mapping[str, Array] = attrs.field(converter=_frozen, factory=_no_names)

    def __len__(self) -> int:
        return len(self.opportunities["id"])

    @classmethod
    def from_columns(
        cls,
        opportunities: Mapping[str, Any],
        *,
        reps: Mapping[str, Any] | None = None,
        accounts: Mapping[str, Any] | None = None,
        stage_changes: Mapping[str, Any] | None = None,
        teams: Mapping[str, Any] | None = None,
        territories: Mapping[str, Any] | None = None,
    ) -> PipelineData:
        """Data from numpy columns named like the record fields (missing ones are empty).

        ``reps`` may carry a ``team`` column (the rep's primary team) instead of
        ``team_ids``. ``reps``, ``accounts``, ``teams`` and ``territories`` may carry a
        ``name`` column, which ``labels="name"`` shows instead of ids.
        """
        reps_columns = dict(reps or {"id": np.array([], dtype=str)})
        if "team" not in reps_columns and "team_ids" in reps_columns:
            reps_columns["team"] = _first_tags(np.asarray(reps_columns.pop("team_ids")))
        return cls(
            opportunities=_check_columns("Opportunity", opportunities, OPPORTUNITY_FIELDS),
            reps=_check_columns("Rep", reps_columns, REP_FIELDS),
            accounts=_check_columns(
                "Account", accounts or {"id": np.array([], dtype=str)}, ACCOUNT_FIELDS
            ),
            stage_changes=_check_columns(
                "StageChange",
                stage_changes
                or {
                    "id": np.array([], dtype=str),
                    "opportunity_id": np.array([], dtype=str),
                    "to_stage": np.array([], dtype=str),
                },
                CHANGE_FIELDS,
            ),
            teams=_check_columns("Team", teams or {"id": np.array([], dtype=str)}, NAMED_FIELDS),
            territories=_check_columns(
                "Territory", territories or {"id": np.array([], dtype=str)}, NAMED_FIELDS
            ),
        )


def _first_tags(column: Array) -> Array:
    """The first tag of each tuple (a rep's primary team); one step per rep, not per deal."""
    return np.array([t[0] if t else "" for t in column.tolist()], dtype=str)


def load(store: Store, *, fields: Sequence[str] = ()) -> PipelineData:
    """Read the columns the metrics need from ``store`` (plus extra opportunity ``fields``,
    e.g. ``"custom.segment"``).

    Examples
    --------
    >>> from crmkit import MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="A", amount=5))
    >>> load(store).opportunities["amount"]
    array([5.])
    """
    wanted = list(OPPORTUNITY_FIELDS) + [f for f in fields if f not in OPPORTUNITY_FIELDS]
    opportunities = store.opportunities.columns(wanted)
    for name in fields:
        if name.startswith("custom."):
            opportunities[name] = _text(opportunities[name])
    reps = store.reps.columns(["id", "name", "manager_id", "region", "team_ids"])
    accounts = store.accounts.columns(list(ACCOUNT_FIELDS))
    extra = ["custom.close_date", "custom.previous_close_date", "custom.previous_amount"]
    changes = store.stage_changes.columns([*CHANGE_FIELDS, *extra])
    changes["close_date"] = _dates(_text(changes.pop("custom.close_date")))
    changes["previous_close_date"] = _dates(_text(changes.pop("custom.previous_close_date")))
    previous_amount = changes.pop("custom.previous_amount")
    changes["previous_amount"] = (
        previous_amount
        if previous_amount.dtype.kind == "f"
        else np.full(len(previous_amount), np.nan)
    )
    return PipelineData.from_columns(
        opportunities,
        reps=reps,
        accounts=accounts,
        stage_changes=changes,
        teams=store.teams.columns(list(NAMED_FIELDS)),
        territories=store.territories.columns(list(NAMED_FIELDS)),
    )


def _dates(text: Array) -> Array:
    out = np.full(len(text), np.datetime64("NaT"), dtype="M8[D]")
    present = text != ""
    if present.any():
        with contextlib.suppress(ValueError):  # not ISO dates: treat as unknown
            out[present] = text[present].astype("M8[D]")
    return out


def data_of(source: Store | PipelineData, fields: Sequence[str] = ()) -> PipelineData:
    """``source`` itself, or the data loaded from a store."""
    if isinstance(source, PipelineData):
        missing = [f for f in fields if f not in source.opportunities]
        if missing:
            raise ValidationError(
                "PipelineData",
                "opportunities",
                missing,
                "these columns were not loaded; pass them to load(store, fields=...)",
            )
        return source
    if not hasattr(source, "opportunities"):
        raise ValidationError(
            "pipeline", None, source, "expected a Store or PipelineData to read deals from"
        )
    return load(source, fields=[f for f in fields if f not in OPPORTUNITY_FIELDS])


# -- factorising and looking up ------------------------------------------------------------


def factorize(values: Array) -> tuple[Array, Array]:
    """``(codes, uniques)`` with ``uniques`` sorted and ``uniques[codes] == values``.

    >>> codes, uniques = factorize(np.array(["b", "a", "b", ""]))
    >>> codes.tolist(), uniques.tolist()
    ([2, 1, 2, 0], ['', 'a', 'b'])
    """
    n = len(values)
    if values.dtype.kind == "U" and n > 1000 and values.dtype.itemsize > 0:
        width = values.dtype.itemsize // 4
        points = np.ascontiguousarray(values).view(np.uint32).reshape(n, width)
        hashed = np.zeros(n, dtype=np.uint64)
        prime = np.uint64(1_099_511_628_211)
        for j in range(width):  # one pass per character position, not per value
            hashed = (hashed ^ points[:, j]) * prime
        _, first, inverse = np.unique(hashed, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        found = values[first]
        if np.array_equal(found[inverse], values):
            order = np.argsort(found, kind="stable")
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            return rank[inverse], found[order]
    uniques, inverse = np.unique(values, return_inverse=True)
    return inverse.ravel().astype(np.int64), uniques


def factorize_ints(values: Array) -> tuple[Array, Array]:
    """``factorize`` for integer arrays: dense counting when the range is small."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), values[:0]
    low, high = int(values.min()), int(values.max())
    if high - low <= 4 * len(values) + 1024:
        present = np.zeros(high - low + 1, dtype=bool)
        shifted = values - low
        present[shifted] = True
        remap = np.cumsum(present) - 1
        return remap[shifted].astype(np.int64), np.flatnonzero(present) + low
    uniques, inverse = np.unique(values, return_inverse=True)
    return inverse.ravel().astype(np.int64), uniques


def lookup(keys: Array, ids: Array) -> Array:
    """Index of each key in ``ids`` (``-1`` if absent or empty)."""
    if len(ids) == 0 or len(keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pos = np.searchsorted(sorted_ids, keys)
    pos = np.minimum(pos, len(ids) - 1)
    found = (sorted_ids[pos] == keys) & (keys != "")
    return np.where(found, order[pos], -1).astype(np.int64)


def ultimate_parents(ids: Array, parent_ids: Array) -> tuple[Array, Array]:
    """``(root index, in_cycle mask)`` for each account by pointer jumping.

    A parent that is not a known account makes the account a root; accounts in (or
    below) a parent cycle get ``-1``.

    >>> ids = np.array(["a", "b", "c", "d"])
    >>> roots, cyc = ultimate_parents(ids, np.array(["", "a", "b", "zz"]))
    >>> ids[roots].tolist(), cyc.tolist()
    (['a', 'a', 'a', 'd'], [False, False, False, False])
    """
    n = len(ids)
    parent = lookup(parent_ids, ids)
    is_root = parent < 0
    pointer = np.where(is_root, np.arange(n), parent)
    for _ in range(max(1, int(np.ceil(np.log2(max(n, 2))))) + 1):
        jumped = pointer[pointer]
        if np.array_equal(jumped, pointer):
            break
        pointer = jumped
    bad = ~is_root[pointer] if n else np.zeros(0, dtype=bool)
    return np.where(bad, -1, pointer).astype(np.int64), bad


@attrs.define
class Context:
    """Per-call cache of factorised columns and lookups."""

    data: PipelineData
    labels: str = attrs.field(default="id")
    _codes: dict[str, tuple[Array, Array]] = attrs.field(factory=dict)
    _rep_index: Array | None = None
    _account_index: Array | None = None

    def codes(self, name: str) -> tuple[Array, Array]:
        if name not in self._codes:
            self._codes[name] = factorize(_text(self.data.opportunities[name]))
        return self._codes[name]

    def rep_index(self) -> Array:
        """Per opportunity, the index of its owner in ``reps`` (``-1``: none/unknown)."""
        if self._rep_index is None:
            codes, uniques = self.codes("owner_id")
            self._rep_index = lookup(uniques, self.data.reps["id"])[codes]
        return self._rep_index

    def account_index(self) -> Array:
        if self._account_index is None:
            codes, uniques = self.codes("account_id")
            self._account_index = lookup(uniques, self.data.accounts["id"])[codes]
        return self._account_index

    @labels.validator
    def _check_labels(self, _: Any, value: str) -> None:
        if value not in LABELS:
            raise ValidationError(
                "pipeline", "labels", value, "must be 'id' (record ids) or 'name' (their names)"
            )

    def dimension(self, name: str) -> tuple[Array, Array]:
        """``(codes, labels)`` of a group-by dimension; missing values get label ``""``.

        With ``labels="name"``, the ids of reps, accounts, teams and territories are
        shown as those records' names (see :func:`named`)."""
        codes, labels = self._dimension(name)
        if self.labels == "name" and name in NAMED_DIMENSIONS:
            table = getattr(self.data, NAMED_DIMENSIONS[name])
            return named(codes, labels, table["id"], table["name"])
        return codes, labels

    def _dimension(self, name: str) -> tuple[Array, Array]:
        opp = self.data.opportunities
        if name in PERIODS:
            field, unit = PERIODS[name]
            return period_codes(opp[field], unit)
        if name in ("owner", "account"):
            return self.codes(f"{name}_id")
        if name in REP_DIMENSIONS:
            return self._gather(self.rep_index(), self.data.reps[REP_DIMENSIONS[name]])
        if name in ACCOUNT_DIMENSIONS:
            accounts = self.data.accounts
            if name == "family":
                roots, _ = ultimate_parents(accounts["id"], accounts["parent_id"])
                values = np.where(roots >= 0, accounts["id"][np.maximum(roots, 0)], "")
            else:
                values = accounts[ACCOUNT_DIMENSIONS[name]]
            return self._gather(self.account_index(), values)
        if name in opp and (opp[name].dtype.kind in "UO"):
            return self.codes(name)
        raise ValidationError(
            "Opportunity",
            "by",
            name,
            "unknown dimension; use owner, team, manager, rep_region, region, territory, "
            "family, account, product, stage, status, source, loss_reason, a custom.<field> "
            "loaded with the data, or a period: " + ", ".join(PERIODS),
        )

    def _gather(self, index: Array, values: Array) -> tuple[Array, Array]:
        labels, inverse = np.unique(_text(values), return_inverse=True)
        if "" not in labels:
            labels = np.concatenate([np.array([""]), labels])
            inverse = inverse.ravel() + 1
        codes = np.where(index >= 0, inverse.ravel()[np.maximum(index, 0)], 0)
        if len(values) == 0:
            codes = np.zeros(len(index), dtype=np.int64)
        return codes.astype(np.int64), labels

    def missing_counts(self) -> dict[str, int]:
        """What is missing across the deals, by kind."""
        opp = self.data.opportunities
        no_owner = opp["owner_id"] == ""
        account_missing = opp["account_id"] == ""
        return {
            "no_amount": int(np.isnan(opp["amount"]).sum()),
            "no_close_date": int(np.isnat(opp["close_date"]).sum()),
            "no_created_at": int(np.isnat(opp["created_at"]).sum()),
            "no_owner": int(no_owner.sum()),
            "unknown_owner": int(((self.rep_index() < 0) & ~no_owner).sum()),
            "no_account": int(account_missing.sum()),
            "unknown_account": int(((self.account_index() < 0) & ~account_missing).sum()),
        }


def named(codes: Array, labels: Array, ids: Array, names: Array) -> tuple[Array, Array]:
    """``(codes, labels)`` with each id label replaced by the name of its record, sorted.

    An id with no record (or a record without a name) keeps the id; ids whose records
    share a name get ``"name (id)"`` so that groups stay apart; ``""`` stays ``""``.

    >>> codes, labels = named(np.array([0, 1, 2, 3]), np.array(["", "r1", "r2", "zz"]),
    ...                       np.array(["r1", "r2", "r3"]), np.array(["Sam", "Ann", "Sam"]))
    >>> labels[codes].tolist()
    ['', 'Sam', 'Ann', 'zz']
    >>> named(np.array([0, 1]), np.array(["r1", "r3"]), np.array(["r1", "r3"]),
    ...       np.array(["Sam", "Sam"]))[1].tolist()
    ['Sam (r1)', 'Sam (r3)']
    """
    index = lookup(labels, ids)
    text = labels
    if len(ids) and len(labels):
        found = names[np.maximum(index, 0)]
        text = np.where((index >= 0) & (found != ""), found, labels)
    for _ in range(4):  # a name may look like another's "name (id)": tell apart again
        _, inverse, counts = np.unique(text, return_inverse=True, return_counts=True)
        clash = (counts[inverse.ravel()] > 1) & (labels != "")
        if not clash.any():
            break
        text = np.where(clash, np.char.add(np.char.add(text, " ("), labels), text)
        text = np.where(clash, np.char.add(text, ")"), text)
    else:
        text = labels  # the ids themselves are distinct
    new_labels, inverse = np.unique(text, return_inverse=True)
    if len(codes) == 0:
        return codes, new_labels
    return inverse.ravel()[codes].astype(np.int64), new_labels


def period_codes(values: Array, unit: str) -> tuple[Array, Array]:
    """Codes and labels (``2026-01``, ``2026Q1``, ``2026``) of the periods of dates."""
    missing = np.isnat(values)
    months = values.astype("M8[M]").astype(np.int64)
    if unit == "M":
        ordinal = months
    elif unit == "Q":
        ordinal = months // 3
    else:
        ordinal = months // 12
    ordinal = np.where(missing, 0, ordinal)
    codes, uniques = factorize_ints(ordinal[~missing])
    labels = np.array([_period_label(int(u), unit) for u in uniques], dtype=str)
    if missing.any():
        full = np.zeros(len(values), dtype=np.int64)
        full[~missing] = codes + 1
        return full, np.concatenate([np.array([""]), labels]).astype(str)
    return codes, labels


def _period_label(ordinal: int, unit: str) -> str:
    if unit == "M":
        return f"{1970 + ordinal // 12:04d}-{ordinal % 12 + 1:02d}"
    if unit == "Q":
        return f"{1970 + ordinal // 4:04d}Q{ordinal % 4 + 1}"
    return f"{1970 + ordinal:04d}"


@attrs.frozen
class Groups:
    """Group ids per row and the key columns per group."""

    ids: Array
    count: int
    keys: dict[str, Array]
    missing: dict[str, int]


def group(ctx: Context, by: str | Sequence[str], rows: Array | None = None) -> Groups:
    """Group the opportunities (or ``rows``, indices into them) by dimensions."""
    names = [by] if isinstance(by, str) else list(by)
    n = len(ctx.data) if rows is None else len(rows)
    if not names:
        return Groups(np.zeros(n, dtype=np.int64), 1, {}, {})
    dims = []
    missing: dict[str, int] = {}
    for name in names:
        codes, labels = ctx.dimension(name)
        if rows is not None:
            codes = codes[rows]
        dims.append((codes, labels))
        if len(labels) and labels[0] == "":
            missing[f"no_{name}"] = int((codes == 0).sum())
        else:
            missing[f"no_{name}"] = 0
    sizes = [max(len(labels), 1) for _, labels in dims]
    total = int(np.prod(sizes, dtype=np.float64))
    if total < 2**62:
        combined = np.zeros(n, dtype=np.int64)
        for (codes, _), size in zip(dims, sizes, strict=True):
            combined = combined * size + codes
        if total <= 4 * n + 65536:
            present = np.bincount(combined, minlength=total) > 0
            remap = np.cumsum(present) - 1
            ids = remap[combined]
            group_codes = np.flatnonzero(present)
        else:
            group_codes, ids = np.unique(combined, return_inverse=True)
            ids = ids.ravel()
        keys: dict[str, Array] = {}
        rest = group_codes
        for name, (_, labels), size in reversed(list(zip(names, dims, sizes, strict=True))):
            keys[name] = labels[rest % size] if len(labels) else np.array([], dtype=str)
            rest = rest // size
        keys = {name: keys[name] for name in names}
        return Groups(ids.astype(np.int64), len(group_codes), keys, missing)
    stacked = np.stack([codes for codes, _ in dims], axis=1)
    uniq, ids = np.unique(stacked, axis=0, return_inverse=True)
    keys = {
        name: labels[uniq[:, i]]
        for i, (name, (_, labels)) in enumerate(zip(names, dims, strict=True))
    }
    return Groups(ids.ravel().astype(np.int64), len(uniq), keys, missing)


def stage_values(ctx: Context, pipeline: Pipeline, column: str = "stage") -> tuple[Array, Array]:
    """Per opportunity: the index of its stage in ``pipeline`` (-1: unknown) and the
    stage's default probability (NaN when unknown)."""
    codes, uniques = ctx.codes(column)
    positions = {name: i for i, name in enumerate(pipeline.names)}
    index = np.array([positions.get(str(u), -1) for u in uniques], dtype=np.int64)
    probability = np.array(
        [pipeline.stages[i].probability if i >= 0 else np.nan for i in index], dtype=np.float64
    )
    return index[codes], probability[codes]


def stage_index(values: Array, pipeline: Pipeline) -> Array:
    """Index in ``pipeline`` of each stage name in ``values`` (-1: unknown)."""
    codes, uniques = factorize(_text(values))
    positions = {name: i for i, name in enumerate(pipeline.names)}
    index = np.array([positions.get(str(u), -1) for u in uniques], dtype=np.int64)
    return index[codes] if len(values) else np.zeros(0, dtype=np.int64)


def to_micros(moment: datetime | date) -> np.datetime64:
    """A datetime (aware) or date as ``datetime64[us]``."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValidationError(
                "pipeline", "now", moment, "must be a timezone-aware datetime (add tzinfo=...)"
            )
        result: np.datetime64 = np.datetime64(micros(moment.astimezone(UTC)), "us")
        return result
    if isinstance(moment, date):
        day: np.datetime64 = np.datetime64(moment, "D").astype("M8[us]")
        return day
    raise ValidationError("pipeline", "now", moment, "must be a datetime or a date")


def divide(a: Array, b: Array) -> Array:
    """``a / b`` with NaN where ``b`` is 0 (no warnings)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out = np.full(np.broadcast(a, b).shape, np.nan)
    np.divide(a, b, out=out, where=b != 0)
    return out
