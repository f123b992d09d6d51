"""ScoreResult and Segments: small typed results with ids, values and explanations."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import attrs
import numpy as np

from crmkit._optional import require
from crmkit.errors import CrmError, NotFound, ValidationError

Array = np.ndarray[Any, Any]


def _array(value: Any) -> Array:
    return np.asarray(value)


def _names(value: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _optional_array(value: Any) -> Array | None:
    return None if value is None else np.asarray(value, dtype=np.float64)


def _baseline(value: Any) -> float | Array:
    return float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64)


def _flags(value: Any) -> Array:
    return np.asarray(value, dtype=bool)


def _texts(value: Any) -> Array:
    return np.asarray(value, dtype=str)


def _all_scoreable(result: Any) -> Array:
    return np.ones(len(result.ids), dtype=bool)


def _no_reasons(result: Any) -> Array:
    return np.full(len(result.ids), "", dtype=str)


def _require_matplotlib() -> Any:
    return require("matplotlib.pyplot", extra="plot", feature="plotting")


@attrs.frozen(eq=False)
class ScoreResult:
    """Scores of some records, with optional per-feature contributions.

    ``values[i]`` is the score of ``ids[i]``. When ``contributions`` is present,
    ``raw == baseline + contributions.sum(axis=1)`` holds for every row (up to float
    rounding); ``raw`` is the score itself for engagement, fit and priority, and the
    log-odds for lead scores (whose ``values`` are probabilities). ``baseline`` is one
    number, or one per row when rows start from different places (the team prior of a
    naive Bayes lead score).

    ``scoreable[i]`` is False when no score could be given to ``ids[i]``; its value,
    ``raw`` and contributions are then NaN, ``reasons[i]`` says why and
    :meth:`explain` returns no factors for it.

    >>> import numpy as np
    >>> r = ScoreResult(ids=np.array(["a", "b", "c"]), values=np.array([1.0, 3.0, 2.0]),
    ...                 contributions=np.array([[1.0, 0.0], [1.0, 2.0], [0.5, 1.5]]),
    ...                 feature_names=("calls", "meetings"), name="engagement")
    >>> r.top(2).ids.tolist()
    ['b', 'c']
    >>> r["b"]
    3.0
    >>> r.factors("b")
    ['meetings +2', 'calls +1']
    """

    ids: Array = attrs.field(converter=_array)
    values: Array = attrs.field(converter=_array)
    contributions: Array | None = attrs.field(default=None, converter=_optional_array)
    feature_names: tuple[str, ...] = attrs.field(default=(), converter=_names)
    baseline: float | Array = attrs.field(default=0.0, converter=_baseline)
    raw: Array | None = attrs.field(default=None, converter=_optional_array)
    name: str = "score"
    units: str = "points"
    scoreable: Array = attrs.field(
        default=attrs.Factory(_all_scoreable, takes_self=True), converter=_flags
    )
    reasons: Array = attrs.field(
        default=attrs.Factory(_no_reasons, takes_self=True), converter=_texts
    )

    def __attrs_post_init__(self) -> None:
        n = len(self.ids)
        if self.values.shape != (n,):
            raise ValidationError(
                "ScoreResult", "values", self.values.shape, f"must have one value per id ({n})"
            )
        if self.contributions is not None and self.contributions.shape != (
            n,
            len(self.feature_names),
        ):
            raise ValidationError(
                "ScoreResult",
                "contributions",
                self.contributions.shape,
                f"must be (ids, features) = ({n}, {len(self.feature_names)})",
            )
        for field in ("raw", "baseline", "scoreable", "reasons"):
            value = getattr(self, field)
            if isinstance(value, np.ndarray) and value.shape != (n,):
                raise ValidationError("ScoreResult", field, value.shape, "must match ids")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        explained = (
            f", {len(self.feature_names)} features" if self.contributions is not None else ""
        )
        return f"<ScoreResult {self.name}: {len(self)} scores{explained}>"

    @property
    def explained(self) -> Array:
        """What the contributions add up to (with ``baseline``): ``raw`` or ``values``."""
        return self.values if self.raw is None else self.raw

    def position(self, record_id: Any) -> int:
        """The row of ``record_id``; unknown ids raise :class:`~crmkit.errors.NotFound`."""
        hits = np.flatnonzero(self.ids == record_id)
        if len(hits) == 0:
            raise NotFound(f"score {self.name!r} row", str(record_id))
        return int(hits[0])

    def __getitem__(self, record_id: Any) -> float:
        return float(self.values[self.position(record_id)])

    def reason(self, record_id: Any) -> str:
        """Why ``record_id`` has no score (``""`` when it has one)."""
        return str(self.reasons[self.position(record_id)])

    def order(self, descending: bool = True) -> Array:
        """Row positions sorted by score (ties keep their original order)."""
        values = np.nan_to_num(self.values, nan=-np.inf)
        return np.argsort(-values if descending else values, kind="stable")

    def take(self, rows: Any) -> ScoreResult:
        """A new result with only ``rows`` (positions or a boolean mask), in that order."""
        rows = np.asarray(rows)
        return attrs.evolve(
            self,
            ids=self.ids[rows],
            values=self.values[rows],
            contributions=None if self.contributions is None else self.contributions[rows],
            baseline=self.baseline[rows]
            if isinstance(self.baseline, np.ndarray)
            else self.baseline,
            raw=None if self.raw is None else self.raw[rows],
            scoreable=self.scoreable[rows],
            reasons=self.reasons[rows],
        )

    def top(self, n: int = 10) -> ScoreResult:
        """The ``n`` best scores, best first."""
        return self.take(self.order()[: max(int(n), 0)])

    def explain(self, record_id: Any) -> list[tuple[str, float]]:
        """``(feature, contribution)`` of one record, largest effect first.

        An unscoreable record (see ``reasons``) has no factors: the list is empty.
        """
        if self.contributions is None:
            raise CrmError(
                f"score {self.name!r} was computed without contributions; pass explain=True"
            )
        at = self.position(record_id)
        if not self.scoreable[at]:
            return []
        row = self.contributions[at]
        order = np.argsort(-np.abs(row), kind="stable")
        return [(self.feature_names[j], float(row[j])) for j in order]

    def factors(self, record_id: Any, n: int = 3, *, sign: str = "both") -> list[str]:
        """The top factors of one record in words, e.g. ``'meetings +12.5'``.

        ``sign`` is ``"both"``, ``"positive"`` or ``"negative"``; zero effects are left out.
        """
        if sign not in ("both", "positive", "negative"):
            raise ValidationError("factors", "sign", sign, "use 'both', 'positive' or 'negative'")
        words = []
        for feature, value in self.explain(record_id):
            if value == 0 or (sign == "positive" and value < 0):
                continue
            if sign == "negative" and value > 0:
                continue
            words.append(f"{feature} {value:+.3g}")
            if len(words) >= n:
                break
        return words

    def to_pandas(self) -> Any:
        """A DataFrame indexed by id: the score, ``raw`` if any, and one column per feature."""
        pd = require("pandas", extra="pandas", feature="to_pandas()")

        data: dict[str, Any] = {self.name: self.values}
        if self.raw is not None:
            data[f"{self.name}_raw"] = self.raw
        if isinstance(self.baseline, np.ndarray):
            data[f"{self.name}_baseline"] = self.baseline
        if not self.scoreable.all():
            data["scoreable"] = self.scoreable
            data["reason"] = self.reasons
        if self.contributions is not None:
            for j, feature in enumerate(self.feature_names):
                data[feature] = self.contributions[:, j]
        return pd.DataFrame(data, index=pd.Index(self.ids, name="id"))

    def _repr_html_(self) -> str:
        head = self.top(10)
        cells = ["<th>id</th>", f"<th>{html.escape(self.name)}</th>"]
        if head.contributions is not None:
            cells.append("<th>top factors</th>")
        rows = ["<tr>" + "".join(cells) + "</tr>"]
        for i, record_id in enumerate(head.ids):
            row = [f"<td>{html.escape(str(record_id))}</td>", f"<td>{head.values[i]:.4g}</td>"]
            if head.contributions is not None:
                words = head.factors(record_id) if head.scoreable[i] else [head.reasons[i]]
                row.append(f"<td>{html.escape(', '.join(words))}</td>")
            rows.append("<tr>" + "".join(row) + "</tr>")
        caption = html.escape(repr(self))
        return f"<table><caption>{caption}</caption>{''.join(rows)}</table>"

    def plot_distribution(self, ax: Any = None, bins: int = 30) -> Any:
        """A histogram of the scores (needs matplotlib); returns the Axes."""
        plt = _require_matplotlib()
        if ax is None:
            _, ax = plt.subplots()
        finite = self.values[np.isfinite(self.values)]
        ax.hist(finite, bins=bins)
        ax.set_xlabel(self.name)
        ax.set_ylabel("records")
        return ax

    def plot_lift(self, y: Any, ax: Any = None, bins: int = 10) -> Any:
        """The cumulative gain curve against outcomes ``y`` (1 = won); returns the Axes."""
        from crmkit.scoring._metrics import lift_table

        plt = _require_matplotlib()
        table = lift_table(y, self.values, bins=bins)
        if ax is None:
            _, ax = plt.subplots()
        share = np.concatenate([[0.0], table["cumulative_share"]])
        gain = np.concatenate([[0.0], table["gain"]])
        ax.plot(share, gain, marker="o", label=self.name)
        ax.plot([0, 1], [0, 1], linestyle="--", label="random")
        ax.set_xlabel("share of records, best scores first")
        ax.set_ylabel("share of positives found")
        ax.legend()
        return ax


@attrs.frozen(eq=False)
class Segments:
    """A partition of records into named segments.

    ``labels[i]`` is the segment of ``ids[i]``; ``names`` lists segments in order.

    >>> import numpy as np
    >>> s = Segments(ids=np.array(["a", "b", "c"]), labels=np.array(["hot", "cold", "hot"]),
    ...              names=("hot", "cold"))
    >>> s.sizes()
    {'hot': 2, 'cold': 1}
    >>> s.members("hot").tolist()
    ['a', 'c']
    """

    ids: Array = attrs.field(converter=_array)
    labels: Array = attrs.field(converter=_array)
    names: tuple[str, ...] = attrs.field(converter=_names)

    def __attrs_post_init__(self) -> None:
        if self.labels.shape != self.ids.shape:
            raise ValidationError("Segments", "labels", self.labels.shape, "must match ids")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"<Segments {self.sizes()}>"

    def codes(self) -> Array:
        """The segment number (position in ``names``) of each record, -1 if in none."""
        lookup = {name: i for i, name in enumerate(self.names)}
        cats, inverse = np.unique(self.labels, return_inverse=True)
        table = np.array([lookup.get(str(c), -1) for c in cats], dtype=np.int64)
        return table[inverse.reshape(-1)] if len(cats) else np.zeros(0, dtype=np.int64)

    def sizes(self) -> dict[str, int]:
        """Records per segment, in segment order (empty segments count 0)."""
        codes = self.codes()
        counts = np.bincount(codes[codes >= 0], minlength=len(self.names))
        return {name: int(counts[i]) for i, name in enumerate(self.names)}

    def mask(self, name: str) -> Array:
        """Membership of one segment as a boolean array."""
        self._check(name)
        return np.asarray(self.labels == name)

    def members(self, name: str) -> Array:
        """The ids in one segment."""
        members: Array = self.ids[self.mask(name)]
        return members

    def membership(self) -> Array:
        """A boolean matrix: one row per record, one column per segment."""
        codes = self.codes()
        matrix: Array = codes[:, None] == np.arange(len(self.names))[None, :]
        return matrix

    def to_pandas(self) -> Any:
        """A categorical Series of segment labels indexed by id."""
        pd = require("pandas", extra="pandas", feature="to_pandas()")

        return pd.Series(
            pd.Categorical(self.labels, categories=list(self.names)),
            index=pd.Index(self.ids, name="id"),
            name="segment",
        )

    def _check(self, name: str) -> None:
        if name not in self.names:
            raise NotFound("segment", name)
