"""The pipeline section of ``python -m crmkit demo``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TextIO

import numpy as np

from crmkit.pipeline._data import load
from crmkit.pipeline._metrics import forecast, summary, win_loss
from crmkit.store._base import Store

__all__ = ["section"]


def _today(store: Store) -> date:
    """The demo's "today": the latest moment in the data (so runs are reproducible)."""
    data = load(store)
    moments = [
        data.opportunities["created_at"],
        data.opportunities["closed_at"],
        data.stage_changes["at"],
    ]
    values = np.concatenate([m[~np.isnat(m)].astype("M8[us]") for m in moments])
    if len(values) == 0:
        return datetime.now(UTC).date()
    day: date = values.max().astype("M8[D]").item()
    return day


def _quarter_bounds(today: date, ahead: int) -> tuple[date, date]:
    start_q = (today.month - 1) // 3
    first = today.year * 4 + start_q
    last = first + ahead - 1
    start = date(first // 4, first % 4 * 3 + 1, 1)
    end_year, end_q = divmod(last + 1, 4)
    end = date.fromordinal(date(end_year, end_q * 3 + 1, 1).toordinal() - 1)
    return start, end


def section(store: Store, out: TextIO) -> None:
    """Write the pipeline summary, a two-quarter forecast and win rates by team to ``out``.

    Examples
    --------
    >>> import io
    >>> from crmkit import MemoryStore
    >>> buffer = io.StringIO()
    >>> section(MemoryStore(), buffer)
    >>> "Pipeline" in buffer.getvalue()
    True
    """
    data = load(store)
    total = summary(data)
    row = total.rows()[0]
    out.write("== Pipeline ==\n")
    out.write(
        f"open deals: {row['open_count']}  open pipeline: {row['open_pipeline']:,.0f}  "
        f"weighted: {row['weighted_pipeline']:,.0f}\n"
    )
    rate = row["win_rate"]
    out.write(
        f"won: {row['won_count']} ({row['won_revenue']:,.0f})  lost: {row['lost_count']}  "
        f"win rate: {'n/a' if np.isnan(rate) else f'{rate:.1%}'}\n"
    )
    noted = {k: v for k, v in total.missing.items() if v}
    if noted:
        out.write("missing data: " + ", ".join(f"{k}={v}" for k, v in sorted(noted.items())))
        out.write("\n")

    start, end = _quarter_bounds(_today(store), 2)
    out.write(f"\n-- Forecast {start.isoformat()} to {end.isoformat()} --\n")
    ahead = forecast(data, period="quarter", start=start, end=end)
    out.write(f"{'quarter':>8} {'closed':>12} {'commit':>12} {'best case':>12} {'pipeline':>12}\n")
    for item in ahead.rows():
        out.write(
            f"{item['quarter'] or '(none)':>8} {item['closed']:>12,.0f} {item['commit']:>12,.0f} "
            f"{item['best_case']:>12,.0f} {item['pipeline']:>12,.0f}\n"
        )
    if not len(ahead):
        out.write("(no deals close in these quarters)\n")

    out.write("\n-- Win rate by team --\n")
    names = {team.id: team.name for team in store.teams}
    teams = win_loss(data, "team")
    for item in teams.rows():
        label = names.get(item["team"], item["team"] or "(no team)")
        out.write(
            f"{label:<24} {item['win_rate']:>6.1%}  lift {item['lift']:>4.2f}  "
            f"({item['won_count']} won / {item['closed_count']} closed)\n"
        )
    if not len(teams):
        out.write("(no closed deals)\n")
