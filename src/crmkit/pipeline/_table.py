"""Table: a small column-oriented result (numpy arrays), convertible to pandas."""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np

from crmkit._optional import require
from crmkit.errors import ValidationError

__all__ = ["Table"]


def _frozen_columns(value: Mapping[str, Any]) -> Mapping[str, np.ndarray[Any, Any]]:
    return MappingProxyType({str(k): np.asarray(v) for k, v in value.items()})


def _frozen_counts(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType({str(k): int(v) for k, v in value.items()})


def _keys(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _python(value: Any) -> Any:
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else value.item()
        return value.item()
    return value


@attrs.frozen(kw_only=True, eq=False)
class Table:
    """Columns of equal length; ``keys`` name the group-by columns.

    ``missing`` counts what the computation found missing (deals without an amount, a
    close date, an account, an owner ...): nothing is dropped silently. Rows whose group
    value is missing form their own group with the key ``""``.

    Examples
    --------
    >>> t = Table(columns={"owner": ["ann", "bob"], "won": [3, 1]}, keys=("owner",),
    ...           missing={"no_amount": 2})
    >>> len(t), t.column_names
    (2, ('owner', 'won'))
    >>> t.rows()
    [{'owner': 'ann', 'won': 3}, {'owner': 'bob', 'won': 1}]
    >>> t["won"].sum()
    np.int64(4)
    >>> t.row("bob")
    {'owner': 'bob', 'won': 1}
    >>> t.missing["no_amount"]
    2
    """

    columns: Mapping[str, np.ndarray[Any, Any]] = attrs.field(converter=_frozen_columns)
    keys: tuple[str, ...] = attrs.field(default=(), converter=_keys)
    missing: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts)
    title: str = ""

    def __attrs_post_init__(self) -> None:
        lengths = {name: len(col) for name, col in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValidationError("Table", "columns", lengths, "columns must have equal lengths")
        unknown = [k for k in self.keys if k not in self.columns]
        if unknown:
            raise ValidationError("Table", "keys", unknown, "keys must name columns")

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in order (keys first)."""
        return tuple(self.columns)

    def __len__(self) -> int:
        for column in self.columns.values():
            return len(column)
        return 0

    def __getitem__(self, name: str) -> np.ndarray[Any, Any]:
        try:
            return self.columns[name]
        except KeyError:
            raise ValidationError(
                "Table",
                "column",
                name,
                f"no such column; columns: {', '.join(self.columns)}",
            ) from None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict of plain Python values."""
        names = list(self.columns)
        lists = [self.columns[n].tolist() for n in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]

    def row(self, *key: Any) -> dict[str, Any]:
        """The row whose key columns equal ``key`` (``ValidationError`` if none)."""
        if len(key) != len(self.keys):
            raise ValidationError(
                "Table", "keys", key, f"give one value per key column {self.keys}"
            )
        mask = np.ones(len(self), dtype=bool)
        for name, value in zip(self.keys, key, strict=True):
            mask &= self.columns[name] == value
        found = np.flatnonzero(mask)
        if len(found) == 0:
            raise ValidationError("Table", "keys", key, "no row has this key")
        index = int(found[0])
        return {n: _python(c[index]) for n, c in self.columns.items()}

    def select(self, mask: Sequence[bool] | np.ndarray[Any, Any]) -> Table:
        """The rows where ``mask`` is true (same keys, missing and title)."""
        keep = np.asarray(mask, dtype=bool)
        return Table(
            columns={n: c[keep] for n, c in self.columns.items()},
            keys=self.keys,
            missing=self.missing,
            title=self.title,
        )

    def to_pandas(self) -> Any:
        """A :class:`pandas.DataFrame` indexed by the key columns (needs pandas)."""
        pd = require("pandas", extra="pandas", feature="Table.to_pandas()")
        frame = pd.DataFrame(dict(self.columns))
        if self.keys:
            frame = frame.set_index(list(self.keys))
        frame.attrs["missing"] = dict(self.missing)
        return frame

    def _cells(self, limit: int) -> tuple[list[str], list[list[str]]]:
        names = list(self.columns)
        shown = min(len(self), limit)
        body = []
        for i in range(shown):
            cells = []
            for n in names:
                v = self.columns[n][i]
                if isinstance(v, (float, np.floating)):
                    number = float(v)
                    text = f"{number:,.4g}" if abs(number) < 1 else f"{number:,.2f}"
                    cells.append("" if np.isnan(number) else text)
                else:
                    cells.append(str(_python(v)))
            body.append(cells)
        return names, body

    def __repr__(self) -> str:
        names, body = self._cells(20)
        widths = [max([len(n)] + [len(r[i]) for r in body]) for i, n in enumerate(names)]
        lines = [f"<Table {self.title or ''} {len(self)} rows>".replace("  ", " ")]
        lines.append("  ".join(n.rjust(w) for n, w in zip(names, widths, strict=True)))
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
        if len(self) > len(body):
            lines.append(f"... {len(self) - len(body)} more rows")
        if self.missing:
            lines.append(
                "missing: " + ", ".join(f"{k}={v}" for k, v in sorted(self.missing.items()))
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        names, body = self._cells(50)
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body
        )
        caption = html.escape(self.title or "Table") + f" ({len(self)} rows)"
        if self.missing:
            caption += "; missing: " + html.escape(
                ", ".join(f"{k}={v}" for k, v in sorted(self.missing.items()))
            )
        return f"<table><caption>{caption}</caption><tr>{head}</tr>{rows}</table>"
