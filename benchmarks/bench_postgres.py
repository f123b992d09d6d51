"""PostgresStore beside raw psycopg on the same tables and indexes.

    python benchmarks/bench_postgres.py [--quick] [--large] [-n ACCOUNTS] [--repeat R]
        [--dsn DSN] [--ops K]

``n`` Account records (default 100,000; ``--large`` 1,000,000; ``--quick`` 10,000) are built
once. The store gets a schema of its own; the raw peer a second schema whose table is
``CREATE TABLE ... (LIKE <store table> INCLUDING ALL)``, so it has the same columns and
indexes. Both schemas are dropped at the end. Then:

- **bulk insert**: ``PostgresStore.accounts.add_many(records)`` into the empty table, beside
  raw ``COPY`` from ready-made tuples (the database work alone) and raw ``COPY`` including a
  hand-written record -> tuple encoder. Rounds alternate the contenders and keep the best.
  Target: within 1.5x of raw ``COPY``.
- **get** by id, ``--ops`` random ids (default 2,000): ``store.accounts.get`` (a connection of the
  store's pool per call, decodes a record) beside raw ``SELECT ... WHERE id = %s`` on one
  connection (a tuple). Target: within 1.5x.
- **update**, ``--ops`` records: ``store.accounts.update`` (version check) beside the same
  ``UPDATE ... WHERE id = %s AND version = %s`` by hand. Target: within 1.5x.
- **indexed query** ``owner_id == rep-NNN`` (about n/300 rows, the owner index) for
  ``--ops / 10`` random owners: records beside raw tuples. Target: within 1.5x.

Every section alternates its contenders round by round and keeps each one's best round.
Results are checked against each other before the tables are printed.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import attrs
import psycopg

from _common import Table, bench_args, best_of
from bench_store import make_accounts
from crmkit.criteria import F
from crmkit.records import Account
from crmkit.store.postgres import PostgresStore


def encode_by_hand(a: Account, version: int = 1) -> tuple[Any, ...]:
    """What a raw-psycopg user writes to turn an Account into a row of the store's table."""
    return (
        a.id,
        a.name,
        a.account_type.value,
        a.domain,
        a.industry,
        a.country,
        a.region,
        a.postal_code,
        a.employees,
        a.annual_revenue,
        a.parent_id,
        a.owner_id,
        a.territory_id,
        a.realignment_locked,
        a.lifecycle_stage,
        a.created_at,
        json.dumps(dict(a.custom)),
        version,
    )


COLUMNS = (
    "id, name, account_type, domain, industry, country, region, postal_code, employees, "
    "annual_revenue, parent_id, owner_id, territory_id, realignment_locked, lifecycle_stage, "
    "created_at, custom, version"
)


def main() -> None:
    def configure(parser: Any) -> None:
        parser.add_argument("--large", action="store_true", help="n = 1,000,000")
        parser.add_argument("--dsn", default="dbname=test", help="libpq connection string")
        parser.add_argument("--ops", type=int, default=2_000, help="gets and updates")

    args = bench_args(__doc__, default_n=100_000, quick_n=10_000, configure=configure)
    if args.large:
        args.n = 1_000_000
        print("n = 1,000,000 (--large)")
    records = make_accounts(args.n)
    tag = uuid.uuid4().hex[:8]
    schema, raw_schema = f"crmkit_bench_{tag}", f"crmkit_bench_raw_{tag}"
    store = PostgresStore(args.dsn, schema=schema)
    raw = psycopg.connect(args.dsn, autocommit=True)
    raw.execute("SET TIME ZONE 'UTC'")
    raw.execute(f"CREATE SCHEMA {raw_schema}")
    raw.execute(f"CREATE TABLE {raw_schema}.accounts (LIKE {schema}.accounts INCLUDING ALL)")
    table_name = f"{raw_schema}.accounts"
    try:
        run(args, store, raw, records, table_name)
    finally:
        store.close()
        raw.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        raw.execute(f"DROP SCHEMA IF EXISTS {raw_schema} CASCADE")
        raw.close()


def interleaved(contenders: dict[str, Any], repeat: int) -> dict[str, float]:
    """The best time of each contender, the contenders taking turns round by round (on a
    shared machine the load moves between rounds; turns give each the same chances)."""
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(max(1, repeat)):
        for name, fn in contenders.items():
            best[name] = min(best[name], best_of(fn, repeat=1))
    return best


def run(
    args: Any, store: PostgresStore, raw: psycopg.Connection[Any], records: list[Account], t: str
) -> None:
    n = len(records)
    rows = [encode_by_hand(a) for a in records]

    def store_insert() -> None:
        store.accounts.add_many(records)

    def raw_copy(encode: bool) -> None:
        cur = raw.cursor()
        with raw.transaction(), cur.copy(f"COPY {t} ({COLUMNS}) FROM STDIN") as copy:
            for row in [encode_by_hand(a) for a in records] if encode else rows:
                copy.write_row(row)

    def empty() -> None:
        raw.execute(f"TRUNCATE {store.schema}.accounts")
        raw.execute(f"TRUNCATE {t}")

    best = {"crmkit": float("inf"), "raw": float("inf"), "raw+encode": float("inf")}
    for _ in range(max(1, args.repeat)):
        for name, fn in (
            ("raw", lambda: raw_copy(False)),
            ("raw+encode", lambda: raw_copy(True)),
            ("crmkit", store_insert),
        ):
            empty()
            best[name] = min(best[name], best_of(fn, repeat=1))
    raw.execute(f"TRUNCATE {t}")
    raw_copy(False)
    raw.execute(f"ANALYZE {store.schema}.accounts")
    raw.execute(f"ANALYZE {t}")
    assert len(store.accounts) == n
    table = Table(f"bulk insert of {n:,} accounts")
    base = table.add("raw COPY (ready tuples)", best["raw"], per=n)
    table.add("raw COPY + hand encoder", best["raw+encode"], base=base, per=n)
    table.add("PostgresStore.add_many", best["crmkit"], base=base, per=n, target=1.5)
    table.print()

    rng = random.Random(7)
    ids = [records[rng.randrange(n)].id for _ in range(args.ops)]
    get_sql = f"SELECT {COLUMNS} FROM {t} WHERE id = %s"
    first = raw.execute(get_sql, (ids[0],)).fetchone()
    assert first is not None
    assert store.accounts.get(ids[0]).id == first[0]

    def store_gets() -> None:
        get = store.accounts.get
        for record_id in ids:
            get(record_id)

    def raw_gets() -> None:
        cur = raw.cursor()
        for record_id in ids:
            cur.execute(get_sql, (record_id,)).fetchone()

    got = interleaved({"raw": raw_gets, "crmkit": store_gets}, args.repeat)
    table = Table(f"get by id, {len(ids):,} calls")
    base = table.add("raw SELECT (tuple)", got["raw"], per=len(ids))
    table.add(
        "PostgresStore.get (record)",
        got["crmkit"],
        base=base,
        per=len(ids),
        target=1.5,
    )
    table.print()

    update_ids = sorted(set(ids))
    current = {r.id: r for r in (store.accounts.get(i) for i in update_ids)}
    raw_versions = dict.fromkeys(update_ids, 1)
    names = iter(range(10**9))
    update_sql = (
        f"UPDATE {t} SET name = %s, account_type = %s, domain = %s, industry = %s, "
        "country = %s, region = %s, postal_code = %s, employees = %s, annual_revenue = %s, "
        "parent_id = %s, owner_id = %s, territory_id = %s, realignment_locked = %s, "
        "lifecycle_stage = %s, created_at = %s, custom = %s, version = %s "
        "WHERE id = %s AND version = %s"
    )
    by_id = {r.id: r for r in records}

    def store_updates() -> None:
        update = store.accounts.update
        for record_id in update_ids:
            current[record_id] = update(
                attrs.evolve(current[record_id], name=f"Renamed {next(names)}")
            )

    def raw_updates() -> None:
        cur = raw.cursor()
        for record_id in update_ids:
            version = raw_versions[record_id]
            row = encode_by_hand(
                attrs.evolve(by_id[record_id], name=f"Renamed {next(names)}"), version + 1
            )
            cur.execute(update_sql, (*row[1:], record_id, version))
            if cur.rowcount != 1:
                raise AssertionError("raw update lost its version")
            raw_versions[record_id] = version + 1

    got = interleaved({"raw": raw_updates, "crmkit": store_updates}, args.repeat)
    table = Table(f"update with a version check, {len(update_ids):,} records")
    base = table.add("raw UPDATE (hand encoder)", got["raw"], per=len(update_ids))
    table.add(
        "PostgresStore.update",
        got["crmkit"],
        base=base,
        per=len(update_ids),
        target=1.5,
    )
    table.print()
    assert store.accounts.get(update_ids[0]).version == raw_versions[update_ids[0]]

    owners = [f"rep-{rng.randint(1, 300):03d}" for _ in range(max(1, args.ops // 10))]
    query_sql = f"SELECT {COLUMNS} FROM {t} WHERE owner_id = %s ORDER BY id"
    got = [a.id for a in store.accounts.query(F.owner_id == owners[0])]
    assert got == [row[0] for row in raw.execute(query_sql, (owners[0],)).fetchall()]

    def store_queries() -> int:
        return sum(len(store.accounts.query(F.owner_id == owner)) for owner in owners)

    def raw_queries() -> int:
        cur = raw.cursor()
        return sum(len(cur.execute(query_sql, (owner,)).fetchall()) for owner in owners)

    found = store_queries()
    got = interleaved({"raw": raw_queries, "crmkit": store_queries}, args.repeat)
    table = Table(f"indexed query owner_id == X, {len(owners):,} queries, {found:,} rows")
    base = table.add("raw SELECT (tuples)", got["raw"], per=found)
    table.add(
        "PostgresStore.query (records)",
        got["crmkit"],
        base=base,
        per=found,
        target=1.5,
    )
    table.print()


if __name__ == "__main__":
    main()
