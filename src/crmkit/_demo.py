"""The body of ``python -m crmkit demo``: build (or reuse) the demo data, then summarise it.

:func:`run_demo` generates a :mod:`crmkit.datasets` dataset into a store, unless the store
already holds the demo data for the same seed and size (remembered with
``store.save_state("crmkit.demo", ...)`` in the same transaction as the records), then
writes a summary computed from the *store*: counts, accounts by country, open pipeline by
stage, leads by status, activities per month, top owners, and step timings.

After the foundation summary it imports each module named in :data:`SECTIONS` and calls
its ``section(store, out)``; engines add their own demo sections that way.

Examples
--------
>>> import io
>>> from crmkit.store import MemoryStore
>>> out = io.StringIO()
>>> run_demo(MemoryStore(), seed=0, size="tiny", out=out)
>>> "== Open pipeline by stage ==" in out.getvalue()
True
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

import numpy as np

from crmkit._schema import plural
from crmkit.datasets import AS_OF, STAGES, Progress, generate, load
from crmkit.errors import CrmError
from crmkit.records import LeadStatus
from crmkit.registry import record_types
from crmkit.store._base import Store

__all__ = ["SECTIONS", "STATE_KEY", "DemoDataError", "run_demo", "summary"]

SECTIONS: tuple[str, ...] = (
    "crmkit.hierarchy._demo",
    "crmkit.scoring._demo",
    "crmkit.routing._demo",
    "crmkit.pipeline._demo",
    "crmkit.reminders._demo",
    "crmkit.campaigns",
    "crmkit.dedupe._demo",
)
"""Modules whose ``section(store, out)`` runs after the foundation summary, in order."""

STATE_KEY = "crmkit.demo"
"""The store state document that says which demo data a store holds."""


class DemoDataError(CrmError):
    """The store holds other data than the demo asked for (use ``--fresh``)."""


def _has_records(store: Store) -> bool:
    return any(len(store.repository(t)) for t in record_types())


def run_demo(
    store: Store,
    *,
    seed: int,
    size: str,
    out: TextIO,
    progress: Progress | None = None,
    as_of: datetime = AS_OF,
) -> None:
    """Fill ``store`` with the demo data for ``seed``/``size`` (or reuse it) and summarise it.

    Raises :class:`DemoDataError` if the store holds anything else: other demo data or
    records that are not the demo's.
    """
    wanted = {"seed": seed, "size": size, "as_of": as_of.isoformat()}
    steps: list[tuple[str, float]] = []
    state = store.load_state(STATE_KEY)
    if state is not None:
        held = {k: state.get(k) for k in wanted}
        if held != wanted:
            raise DemoDataError(
                f"the store holds demo data for seed {held['seed']}, size {held['size']} "
                f"(as of {held['as_of']}), not seed {seed}, size {size}; rerun with --fresh "
                "to rebuild it, or pick another --db"
            )
        out.write(f"Reusing the demo data already in the store (seed {seed}, size {size}).\n")
    else:
        if _has_records(store):
            raise DemoDataError(
                "the store already holds records that are not crmkit demo data; rerun with "
                "--fresh to replace them (this deletes them), or pick another --db"
            )
        start = time.perf_counter()
        data = generate(seed, size, as_of=as_of)
        steps.append(("generate", time.perf_counter() - start))
        start = time.perf_counter()
        with store.transaction():
            load(store, data, progress=progress)
            store.save_state(STATE_KEY, {**wanted, "counts": data.counts()})
        steps.append(("load", time.perf_counter() - start))
        out.write(
            f"Built the demo data (seed {seed}, size {size}, as of {as_of:%Y-%m-%d %H:%M %Z}): "
            f"{sum(data.counts().values()):,} records.\n"
        )
    start = time.perf_counter()
    summary(store, out, as_of=as_of)
    steps.append(("summary", time.perf_counter() - start))
    for name in SECTIONS:
        start = time.perf_counter()
        module = importlib.import_module(name)
        out.write("\n")
        module.section(store, out)
        steps.append((name, time.perf_counter() - start))
    _section(out, "Timings")
    _table(out, ("step", "seconds"), [(name, f"{sec:.2f}") for name, sec in steps])


# -- the summary -----------------------------------------------------------------------------


def _section(out: TextIO, title: str) -> None:
    out.write(f"\n== {title} ==\n")


def _table(
    out: TextIO, header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = ""
) -> None:
    """An aligned text table; ``align`` has one ``l``/``r`` per column (default: first
    column left, the rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        parts = [
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        ]
        out.write("  " + "  ".join(parts).rstrip() + "\n")


def _counts(values: np.ndarray[Any, Any]) -> list[tuple[str, int]]:
    """(value, count) pairs, most frequent first, ties by value."""
    keys, counts = np.unique(values, return_counts=True)
    order = sorted(range(len(keys)), key=lambda i: (-int(counts[i]), str(keys[i])))
    return [(str(keys[i]), int(counts[i])) for i in order]


def _money(value: float) -> str:
    return f"{value:,.0f}"


def summary(store: Store, out: TextIO, *, as_of: datetime = AS_OF) -> None:
    """Write the foundation summary of whatever ``store`` holds to ``out``.

    Examples
    --------
    >>> import io
    >>> from crmkit.store import MemoryStore
    >>> out = io.StringIO()
    >>> summary(MemoryStore(), out)
    >>> print(out.getvalue())
    == Records ==
    ...
      accounts  0
    ...
    """
    _section(out, "Records")
    _table(
        out,
        ("record type", "count"),
        [(plural(t), f"{len(store.repository(t)):,}") for t in record_types()],
    )
    _accounts_by_country(store, out)
    _pipeline_by_stage(store, out)
    _leads_by_status(store, out)
    _activities_by_month(store, out, as_of)
    _top_owners(store, out)


def _accounts_by_country(store: Store, out: TextIO) -> None:
    cols = store.accounts.columns(["country", "region"])
    _section(out, "Accounts by country and region")
    country = np.where(cols["country"] == "", "(none)", cols["country"])
    region = np.where(cols["region"] == "", "(none)", cols["region"])
    rows = []
    for name, count in _counts(country):
        top = _counts(region[country == name])[:4]
        rows.append((name, f"{count:,}", ", ".join(f"{r} {c:,}" for r, c in top)))
    _table(out, ("country", "accounts", "top regions"), rows, "lrl")


def _pipeline_by_stage(store: Store, out: TextIO) -> None:
    cols = store.opportunities.columns(["stage", "status", "amount", "probability"])
    _section(out, "Open pipeline by stage")
    is_open = cols["status"] == "open"
    stage = cols["stage"][is_open]
    amount = np.nan_to_num(cols["amount"][is_open])
    weighted = amount * np.nan_to_num(cols["probability"][is_open])
    names = [s for s in STAGES if s in set(stage.tolist())]
    names += sorted(set(stage.tolist()) - set(STAGES))
    rows = []
    for name in names:
        hit = stage == name
        rows.append(
            (name, f"{int(hit.sum()):,}", _money(amount[hit].sum()), _money(weighted[hit].sum()))
        )
    rows.append(("total", f"{int(is_open.sum()):,}", _money(amount.sum()), _money(weighted.sum())))
    _table(out, ("stage", "deals", "amount", "weighted"), rows)


def _leads_by_status(store: Store, out: TextIO) -> None:
    cols = store.leads.columns(["status", "owner_id", "queue"])
    _section(out, "Leads by status")
    rows = []
    for status in LeadStatus:
        hit = cols["status"] == status.value
        queued = hit & (cols["owner_id"] == "") & (cols["queue"] != "")
        rows.append((status.value, f"{int(hit.sum()):,}", f"{int(queued.sum()):,}"))
    _table(out, ("status", "leads", "in a queue"), rows)


def _activities_by_month(store: Store, out: TextIO, as_of: datetime) -> None:
    cols = store.activities.columns(["at"])
    _section(out, "Activities per month")
    months = cols["at"].astype("datetime64[M]")
    keys, counts = np.unique(months[~np.isnat(months)], return_counts=True)
    top = int(counts.max()) if len(counts) else 0
    rows = []
    for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
        bar = "#" * (0 if top == 0 else max(1, round(40 * count / top)))
        rows.append((f"{key:%Y-%m}", f"{count:,}", bar))
    _table(out, ("month", "activities", ""), rows, "lrl")


def _top_owners(store: Store, out: TextIO, limit: int = 5) -> None:
    acc = store.accounts.columns(["owner_id"])
    opp = store.opportunities.columns(["owner_id", "status", "amount"])
    _section(out, f"Top {limit} owners by open pipeline")
    is_open = (opp["status"] == "open") & (opp["owner_id"] != "")
    keys, inverse = np.unique(opp["owner_id"][is_open], return_inverse=True)
    pipeline = np.bincount(inverse, weights=np.nan_to_num(opp["amount"][is_open]))
    deals = np.bincount(inverse)
    owned = dict(_counts(acc["owner_id"][acc["owner_id"] != ""]))
    stats = {o: (owned.get(o, 0), 0, 0.0) for o in owned}
    for o, d, p in zip(keys.tolist(), deals.tolist(), pipeline.tolist(), strict=True):
        stats[o] = (owned.get(o, 0), int(d), float(p))
    ranked = sorted(stats.items(), key=lambda item: (-item[1][2], item[0]))[:limit]
    rows = []
    for owner, (accounts, open_deals, amount) in ranked:
        rep = store.reps.find(owner)
        name = rep.name if rep is not None else "(unknown rep)"
        rows.append((owner, name, f"{accounts:,}", f"{open_deals:,}", _money(amount)))
    _table(out, ("owner", "name", "accounts", "open deals", "open pipeline"), rows, "llrrr")
