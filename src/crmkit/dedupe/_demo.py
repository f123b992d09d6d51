"""The data-quality section of ``python -m crmkit demo``: a duplicate job on the store's
contacts and on generated contacts with known duplicates, a CSV import under duplicate
rules, and account-based routing of new leads.

Everything that writes runs on a scratch copy in memory, so the demo database is left as
it was and a second run prints the same thing.

>>> import io
>>> from crmkit import Account, Lead, MemoryStore, Rep
>>> store = MemoryStore()
>>> _ = store.reps.add(Rep(id="r1", name="R1"))
>>> _ = store.accounts.add(Account(id="a1", name="Initech LLC", domain="initech.com",
...                                owner_id="r1", country="US"))
>>> _ = store.leads.add(Lead(id="l1", first_name="Ann", last_name="Lee", company="Initech",
...                          email="ann@initech.com", country="US"))
>>> out = io.StringIO()
>>> section(store, out, generated=2_000)
>>> print(out.getvalue())
== Duplicates ==
contacts in the store: 0 Contact records, 0 pairs compared, ...
2,000 generated contacts (100 duplicate rows): ... s, precision 1.000, recall 1.000
...
== Duplicate rules on import ==
block: nothing written; 1 row(s) refused, e.g.
  row 2, column 'email' = 'ANN@INITECH.COM': Lead 'again-0' duplicates l1 on email ...
alert: Lead import: 2 row(s) read, 2 written, 0 skipped
1 row(s) with duplicates (imported):
  row 2: 'again-0' duplicates l1 on email (lead-email, score 1.00)
<BLANKLINE>
== Account-based routing ==
Lead abm-0: assigned to r1 (matches account a1 (score 1.00: domain initech.com, ...
Lead abm-none: queued in unrouted (no rule matched; default target)
<BLANKLINE>
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any, TextIO

import numpy as np

from crmkit.clock import FixedClock
from crmkit.dedupe._generate import generate_duplicates, pair_quality
from crmkit.dedupe._jobs import DuplicatePolicy, find_duplicate_pairs
from crmkit.records import Account, Lead, Rep, RoutingRule
from crmkit.store.memory import MemoryStore

__all__ = ["section"]


def section(store: Any, out: TextIO, *, generated: int = 5_000) -> None:
    """Write the data-quality section for ``store`` (read only) to ``out``."""
    out.write("== Duplicates ==\n")
    report = find_duplicate_pairs(store, record_type="Contact")
    out.write(f"contacts in the store: {report.summary()}\n")
    data = generate_duplicates(generated, seed=11)
    start = time.perf_counter()
    job = find_duplicate_pairs(data.columns, record_type="Contact")
    seconds = time.perf_counter() - start
    precision, recall = pair_quality(data.columns["id"], data.truth, job.clusters)
    extra = len(data) - int(np.unique(data.truth).size)
    out.write(
        f"{len(data):,} generated contacts ({extra:,} duplicate rows): {seconds:.2f} s, "
        f"precision {precision:.3f}, recall {recall:.3f}\n"
    )
    if job.pairs:
        example = next((p for p in job.pairs if p.rule_id != "contact-email"), job.pairs[0])
        out.write(example.explain() + "\n")
    scratch = _scratch_copy(store)
    _import(scratch, out)
    _routing(scratch, out)


def _scratch_copy(store: Any) -> MemoryStore:
    scratch = MemoryStore()
    with scratch.transaction():
        for record_type in (Account, Lead, Rep, RoutingRule):
            scratch.repository(record_type).put_many(list(store.repository(record_type)))
    return scratch


def _import(store: MemoryStore, out: TextIO) -> None:
    """Three leads of the store again (email in capitals, a nickname) and a new one."""
    from crmkit.io import ImportFailed, import_csv

    known = [lead for lead in store.leads if lead.email and lead.first_name][:3]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "first_name", "last_name", "email", "company"])
    for k, lead in enumerate(known):
        email = (lead.email or "").upper()
        writer.writerow([f"again-{k}", lead.first_name, lead.last_name, email, lead.company])
    writer.writerow(["fresh-1", "Zoe", "Quill", "zoe.quill@example.org", "Quill & Co"])
    text = buffer.getvalue()
    out.write("\n== Duplicate rules on import ==\n")
    try:
        import_csv(store, "leads", io.StringIO(text), duplicates=DuplicatePolicy(action="block"))
    except ImportFailed as err:
        first = err.report.errors[0] if err.report.errors else None
        out.write(f"block: nothing written; {len(err.report.errors)} row(s) refused, e.g.\n")
        if first is not None:
            out.write(f"  {first}\n")
    report = import_csv(
        store, "leads", io.StringIO(text), duplicates=DuplicatePolicy(action="alert")
    )
    out.write(f"alert: {report}\n")


def _routing(store: MemoryStore, out: TextIO) -> None:
    """New leads from people at existing accounts, routed to the account owners."""
    from crmkit.datasets import AS_OF
    from crmkit.routing._router import Router

    owned = [a for a in store.accounts if a.owner_id and a.domain and a.name][:3]
    leads = [
        Lead(
            id=f"abm-{k}",
            first_name="Sam",
            last_name=f"Reader{k}",
            company=account.name.upper() + (" Inc." if k % 2 else ""),
            email=f"sam.reader{k}@{account.domain}",
            country=account.country,
        )
        for k, account in enumerate(owned)
    ]
    leads.append(Lead(id="abm-none", company="Nobody Known", email="x@unknown-company.test"))
    router = Router(store, clock=FixedClock(AS_OF), account_min_score=0.6)
    out.write("\n== Account-based routing ==\n")
    for decision in router.route_many(leads):
        out.write(decision.explain() + "\n")
