"""Records and the record store: the peer harness's W6 scenario and the per-call costs.

    python benchmarks/bench_record_store.py [--quick] [-n RECORDS] [--repeat R]

Everything runs in one process, crmkit beside the harness's floors (the same algorithms),
and the ratios are printed per table (best of ``--repeat`` runs, default 3):

- **records**: building an ``Account`` and ``attrs.evolve`` of two fields, with crmkit's
  compiled ``__init__`` beside the ``__init__`` attrs itself writes for the same fields,
  converters and validators (what crmkit 0.1 ran), and the compiled patcher the stores'
  ``patch``/``patch_many`` run (it converts and checks only the changed fields).
  Target (issue 14): half the cost.
- **a repeated query**: the same criteria (one object, and an equal dict) matching one
  record through a declared index, beside the floor that reads the same index by hand (a
  ``dict`` of id sets; raw ``sqlite3`` with the same SQL and index). The overhead is the
  difference per call. Target: <= 5 us.
- **W6** (n accounts as plain dicts, default 100,000; n/10 updates of employees and
  revenue; a filter on the most common industry): insert, filter and update on
  MemoryStore beside the harness's ``dict_of_dicts`` and ``dict+industry_index`` floors,
  and on ``SQLiteStore(":memory:")`` beside raw ``sqlite3`` on the same table and indexes.
  crmkit builds its Account records inside the timing, as the harness's plugin does, and
  declares the industry index as the indexed peers do. Targets: memory <= 3x the best
  dict peer; SQLite <= 1.5x raw sqlite3.
  The update phase is also run with ``patch_columns`` (the updates made into numpy
  columns inside the timing), which returns a count, so SQLite neither reads nor decodes.
- **W6 insert from columns**: the same accounts held as numpy columns, added with
  ``repo.add_columns`` beside ``add_many`` of records built from the dicts and the same
  floors (``dict_of_dicts``; raw ``sqlite3`` ``executemany``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import attrs
import numpy as np

from _common import Table, bench_args, best_of
from crmkit._fields import patcher
from crmkit.criteria import F
from crmkit.records import Account
from crmkit.store.memory import MemoryStore
from crmkit.store.sqlite import SQLiteStore

INDUSTRIES = [f"industry-{i:02d}" for i in range(30)]
COUNTRIES = [f"C{i:02d}" for i in range(50)]
FIELDS = ("id", "name", "industry", "country", "employees", "revenue", "parent_id")


def w6_records(n: int, seed: int = 6) -> dict[str, Any]:
    """The harness's W6 data: skewed industries, 20% with a parent, n/10 updates."""
    rng = np.random.default_rng(seed)
    ids = [f"acc-{int(x):012x}" for x in rng.choice(2**48, size=n, replace=False)]
    zipf = 1.0 / np.arange(1, len(INDUSTRIES) + 1) ** 0.5
    ind = rng.choice(len(INDUSTRIES), size=n, p=zipf / zipf.sum())
    ctry = rng.integers(0, len(COUNTRIES), n)
    emp = np.clip(np.exp(rng.normal(4.0, 2.0, n)), 1, 1_000_000).astype(np.int64)
    rev = np.round(rng.lognormal(14.0, 2.0, n), 2)
    parent = (rng.random(n) * np.arange(n)).astype(np.int64)
    has_parent = rng.random(n) < 0.2
    records = [
        {
            "id": ids[i],
            "name": f"Company {i}",
            "industry": INDUSTRIES[d],
            "country": COUNTRIES[c],
            "employees": e,
            "revenue": r,
            "parent_id": ids[p] if h and i else None,
        }
        for i, d, c, e, r, p, h in zip(
            range(n),
            ind.tolist(),
            ctry.tolist(),
            emp.tolist(),
            rev.tolist(),
            parent.tolist(),
            has_parent.tolist(),
            strict=True,
        )
    ]
    k = max(1, n // 10)
    updates = [
        (ids[i], {"employees": int(e), "revenue": float(r)})
        for i, e, r in zip(
            rng.choice(n, size=k, replace=False),
            np.clip(np.exp(rng.normal(4.0, 2.0, k)), 1, 1_000_000).astype(np.int64),
            np.round(rng.lognormal(14.0, 2.0, k), 2),
            strict=True,
        )
    ]
    return {"records": records, "updates": updates, "industry": INDUSTRIES[0]}


def w6_columns(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The W6 accounts as the numpy columns a user holding arrays would pass."""
    return {
        "id": np.array([r["id"] for r in records]),
        "name": np.array([r["name"] for r in records]),
        "industry": np.array([r["industry"] for r in records]),
        "country": np.array([r["country"] for r in records]),
        "employees": np.array([r["employees"] for r in records], dtype=np.int64),
        "annual_revenue": np.array([r["revenue"] for r in records]),
        "parent_id": np.array([r["parent_id"] or "" for r in records]),  # "": none
    }


def attrs_made(cls: type[Any]) -> type[Any]:
    """``cls`` with the ``__init__`` attrs writes (same fields, converters, validators)."""
    return attrs.make_class(
        cls.__name__,
        {
            a.name: attrs.field(
                default=a.default, converter=a.converter, validator=a.validator, alias=a.alias
            )
            for a in attrs.fields(cls)
        },
        frozen=True,
        kw_only=True,
        slots=True,
    )


# -- the harness's floors ------------------------------------------------------------------


class DictStore:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def insert_many(self, records: list[dict[str, Any]]) -> None:
        rows = self.rows
        for r in records:
            rows[r["id"]] = dict(r)

    def filter_industry(self, industry: str) -> list[dict[str, Any]]:
        return [r for r in self.rows.values() if r["industry"] == industry]

    def update_many(self, updates: list[tuple[str, dict[str, Any]]]) -> None:
        rows = self.rows
        for id_, changes in updates:
            rows[id_].update(changes)


class IndexedDictStore(DictStore):
    def __init__(self) -> None:
        super().__init__()
        self.by_industry: dict[str, dict[str, None]] = {}

    def insert_many(self, records: list[dict[str, Any]]) -> None:
        rows, idx = self.rows, self.by_industry
        for r in records:
            rid = r["id"]
            rows[rid] = dict(r)
            idx.setdefault(r["industry"], {})[rid] = None

    def filter_industry(self, industry: str) -> list[dict[str, Any]]:
        rows = self.rows
        return [rows[i] for i in self.by_industry.get(industry, ())]

    def update_many(self, updates: list[tuple[str, dict[str, Any]]]) -> None:
        rows, idx = self.rows, self.by_industry
        for id_, changes in updates:
            r = rows[id_]
            if "industry" in changes and changes["industry"] != r["industry"]:
                del idx[r["industry"]][id_]
                idx.setdefault(changes["industry"], {})[id_] = None
            r.update(changes)


class RawSqlite:
    """The harness's ``sqlite_columns_memory``: typed columns, indexes on industry and
    country, one transaction per batch."""

    def __init__(self) -> None:
        self.con = sqlite3.connect(":memory:", isolation_level=None)
        self.con.executescript(
            "CREATE TABLE account (id TEXT PRIMARY KEY, name TEXT, industry TEXT, country TEXT,"
            " employees INTEGER, revenue REAL, parent_id TEXT);"
            "CREATE INDEX account_industry ON account (industry);"
            "CREATE INDEX account_country ON account (country);"
        )

    def insert_many(self, records: list[dict[str, Any]]) -> None:
        self.con.execute("BEGIN")
        self.con.executemany(
            "INSERT INTO account VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tuple(r[f] for f in FIELDS) for r in records),
        )
        self.con.execute("COMMIT")

    def filter_industry(self, industry: str) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(FIELDS)} FROM account WHERE industry = ?"
        return [dict(zip(FIELDS, r, strict=True)) for r in self.con.execute(sql, (industry,))]

    def update_many(self, updates: list[tuple[str, dict[str, Any]]]) -> None:
        self.con.execute("BEGIN")
        self.con.executemany(
            "UPDATE account SET employees = ?, revenue = ? WHERE id = ?",
            ((c["employees"], c["revenue"], i) for i, c in updates),
        )
        self.con.execute("COMMIT")


# -- crmkit, as the harness's plugin calls it ---------------------------------------------


class CrmkitAccounts:
    def __init__(self, store: MemoryStore | SQLiteStore) -> None:
        self.store, self.repo = store, store.accounts
        store.ensure_index(Account, "industry")
        store.ensure_index(Account, "country")

    def insert_many(self, records: list[dict[str, Any]]) -> None:
        self.repo.add_many(
            [
                Account(
                    id=r["id"],
                    name=r["name"],
                    industry=r["industry"],
                    country=r["country"],
                    employees=r["employees"],
                    annual_revenue=r["revenue"],
                    parent_id=r["parent_id"],
                )
                for r in records
            ]
        )

    def filter_industry(self, industry: str) -> list[Account]:
        return self.repo.query(F.industry == industry)

    def update_many(self, updates: list[tuple[str, dict[str, Any]]]) -> None:
        self.repo.patch_many(
            {i: {"employees": c["employees"], "annual_revenue": c["revenue"]} for i, c in updates}
        )


class CrmkitAccountsColumns(CrmkitAccounts):
    """The same, updating with ``patch_columns``: the updates turned into numpy columns
    (timed), then one call that returns a count instead of the records."""

    def update_many(self, updates: list[tuple[str, dict[str, Any]]]) -> None:
        self.repo.patch_columns(
            {
                "id": np.array([i for i, _ in updates]),
                "employees": np.array([c["employees"] for _, c in updates], dtype=np.int64),
                "annual_revenue": np.array([c["revenue"] for _, c in updates], dtype=np.float64),
            }
        )


def scenario(make: Any, data: dict[str, Any], repeat: int) -> dict[str, float]:
    """Best seconds of each phase over ``repeat`` fresh stores (phases run in order)."""
    import time

    best = {"insert": float("inf"), "filter": float("inf"), "update": float("inf")}
    for _ in range(repeat):
        store = make()
        for phase, method, arg in (
            ("insert", store.insert_many, data["records"]),
            ("filter", store.filter_industry, data["industry"]),
            ("update", store.update_many, data["updates"]),
        ):
            start = time.perf_counter()
            method(arg)
            best[phase] = min(best[phase], time.perf_counter() - start)
    return best


def insert_from_columns(data: dict[str, Any], n: int, repeat: int) -> Table:
    """W6 insert from numpy columns: ``add_columns`` beside ``add_many`` and the floors."""
    columns = w6_columns(data["records"])
    bulk = Table(f"W6 insert from columns: {n:,} accounts (best of {repeat}; per record)")

    def timed(make: Any, load: Any) -> float:
        import time

        best = float("inf")
        for _ in range(repeat):
            target = make()
            start = time.perf_counter()
            load(target)
            best = min(best, time.perf_counter() - start)
        return best

    floor = bulk.add(
        "dict_of_dicts",
        timed(DictStore, lambda p: p.insert_many(data["records"])),
        per=n,
    )
    for label, make in (
        ("MemoryStore", MemoryStore),
        ("SQLiteStore", lambda: SQLiteStore(":memory:")),
    ):
        if label == "SQLiteStore":
            floor = bulk.add(
                "raw sqlite3 executemany",
                timed(RawSqlite, lambda p: p.insert_many(data["records"])),
                per=n,
            )
        bulk.add(
            f"crmkit {label}.add_many (records built from the dicts)",
            timed(lambda m=make: CrmkitAccounts(m()), lambda p: p.insert_many(data["records"])),
            base=floor,
            per=n,
        )
        bulk.add(
            f"crmkit {label}.add_columns",
            timed(lambda m=make: CrmkitAccounts(m()), lambda p: p.repo.add_columns(columns)),
            base=floor,
            per=n,
            target=3.0 if label == "MemoryStore" else 1.5,
        )
    return bulk


def main() -> None:
    args = bench_args(__doc__, default_n=100_000, quick_n=20_000)
    n, repeat = args.n, args.repeat

    # -- records --
    plain = attrs_made(Account)
    fields = {
        "id": "acc-000000000001",
        "name": "Acme 1",
        "industry": "Retail",
        "country": "US",
        "employees": 120,
        "annual_revenue": 1234567.25,
        "parent_id": None,
    }
    reps = 20_000

    def build(cls: Any) -> Any:
        return lambda: [cls(**fields) for _ in range(reps)]

    ours, theirs = Account(**fields), plain(**fields)
    records = Table(f"one Account, {reps:,} times (per record; best of {repeat})")
    base = records.add(
        "attrs' own __init__ (crmkit 0.1)", best_of(build(plain), repeat=repeat), per=reps
    )
    records.add(
        "crmkit compiled __init__",
        best_of(build(Account), repeat=repeat),
        base=base,
        per=reps,
        target=0.5,
    )
    base = records.add(
        "attrs.evolve(2 fields), attrs' __init__",
        best_of(
            lambda: [attrs.evolve(theirs, employees=5, annual_revenue=9.5) for _ in range(reps)],
            repeat=repeat,
        ),
        per=reps,
    )
    records.add(
        "attrs.evolve(2 fields), compiled __init__",
        best_of(
            lambda: [attrs.evolve(ours, employees=5, annual_revenue=9.5) for _ in range(reps)],
            repeat=repeat,
        ),
        base=base,
        per=reps,
        target=0.5,
    )
    patch = patcher(Account, ("employees", "annual_revenue"))
    assert patch is not None
    records.add(
        "compiled patcher (2 fields; what patch/patch_many run)",
        best_of(lambda: [patch(ours, 1, 5, 9.5) for _ in range(reps)], repeat=repeat),
        base=base,
        per=reps,
    )
    records.print()

    # -- a repeated query --
    data = w6_records(n)
    accounts = [
        Account(id=r["id"], name=r["name"], industry=r["id"][-6:], country=r["country"])
        for r in data["records"]
    ]  # industry unique per account: the query matches one record
    memory, sqlite = MemoryStore(), SQLiteStore(":memory:")
    by_industry: dict[str, set[str]] = {}
    for store in (memory, sqlite):
        store.ensure_index(Account, "industry")
        store.accounts.add_many(accounts)
    rows = {a.id: a for a in accounts}
    for a in accounts:
        by_industry.setdefault(str(a.industry), set()).add(a.id)
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE a (id TEXT PRIMARY KEY, industry TEXT)")
    raw.execute("CREATE INDEX a_industry ON a (industry)")
    raw.executemany("INSERT INTO a VALUES (?, ?)", [(a.id, a.industry) for a in accounts])
    target = str(accounts[n // 2].industry)
    criteria = F.industry == target
    as_dict = criteria.to_dict()
    calls = 20_000

    def loop(fn: Any) -> Any:
        return lambda: [fn() for _ in range(calls)]

    q = Table(f"a repeated query matching 1 of {n:,} records ({calls:,} calls; per call)")
    floor = q.add(
        "floor: dict index lookup + records",
        best_of(loop(lambda: [rows[i] for i in sorted(by_industry[target])]), repeat=repeat),
        per=calls,
    )
    for label, c in (("same criteria object", criteria), ("an equal dict", as_dict)):
        t = best_of(loop(lambda c=c: memory.accounts.query(c)), repeat=repeat)
        q.add(
            f"MemoryStore.query, {label}",
            t,
            base=floor,
            per=calls,
            note=f"overhead {(t - floor) / calls * 1e6:.1f} us (target <= 5)",
        )
    floor = q.add(
        "floor: raw sqlite3 SELECT on the index",
        best_of(
            loop(lambda: raw.execute("SELECT id FROM a WHERE industry = ?", (target,)).fetchall()),
            repeat=repeat,
        ),
        per=calls,
    )
    for label, c in (("same criteria object", criteria), ("an equal dict", as_dict)):
        t = best_of(loop(lambda c=c: sqlite.accounts.query(c)), repeat=repeat)
        q.add(
            f"SQLiteStore.query, {label}",
            t,
            base=floor,
            per=calls,
            note=f"overhead {(t - floor) / calls * 1e6:.1f} us (decodes a record)",
        )
    q.print()
    sqlite.close()

    # -- W6 --
    w6 = Table(f"W6: {n:,} accounts, {len(data['updates']):,} updates (best of {repeat})")
    peers = {
        "dict_of_dicts": scenario(DictStore, data, repeat),
        "dict+industry_index": scenario(IndexedDictStore, data, repeat),
        "raw sqlite3 (columns, indexes)": scenario(RawSqlite, data, repeat),
        "crmkit MemoryStore": scenario(lambda: CrmkitAccounts(MemoryStore()), data, repeat),
        "crmkit SQLiteStore": scenario(
            lambda: CrmkitAccounts(SQLiteStore(":memory:")), data, repeat
        ),
        "crmkit SQLiteStore, patch_columns": scenario(
            lambda: CrmkitAccountsColumns(SQLiteStore(":memory:")), data, repeat
        ),
        "crmkit MemoryStore, patch_columns": scenario(
            lambda: CrmkitAccountsColumns(MemoryStore()), data, repeat
        ),
    }
    for phase, count in (
        ("insert", n),
        ("filter", 1),
        ("update", len(data["updates"])),
    ):
        best_dict = min(peers["dict_of_dicts"][phase], peers["dict+industry_index"][phase])
        for name in ("dict_of_dicts", "dict+industry_index"):
            w6.add(f"{phase}: {name}", peers[name][phase], per=count)
        w6.add(
            f"{phase}: crmkit MemoryStore",
            peers["crmkit MemoryStore"][phase],
            base=best_dict,
            per=count,
            target=3.0,
        )
        raw_s = w6.add(
            f"{phase}: raw sqlite3 (columns, indexes)",
            peers["raw sqlite3 (columns, indexes)"][phase],
            per=count,
        )
        w6.add(
            f"{phase}: crmkit SQLiteStore",
            peers["crmkit SQLiteStore"][phase],
            base=raw_s,
            per=count,
            target=1.5,
        )
        if phase == "update":
            w6.add(
                "update: crmkit MemoryStore, patch_columns",
                peers["crmkit MemoryStore, patch_columns"][phase],
                base=best_dict,
                per=count,
                target=3.0,
            )
            w6.add(
                "update: crmkit SQLiteStore, patch_columns",
                peers["crmkit SQLiteStore, patch_columns"][phase],
                base=raw_s,
                per=count,
                target=1.5,
            )
    w6.print()

    bulk = insert_from_columns(data, n, repeat)
    bulk.print()
    missed = [*records.missed(), *w6.missed(), *bulk.missed()]
    print("\ntargets: " + ("all met" if not missed else f"{len(missed)} MISSED"))


if __name__ == "__main__":
    main()
