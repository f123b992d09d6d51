"""PostgresStore: crmkit's records in a PostgreSQL database (psycopg 3 and psycopg_pool).

The store for apps that run several worker processes, or that already keep their data in
PostgreSQL. It keeps the contract of :class:`~crmkit.store.MemoryStore` and
:class:`~crmkit.store.SQLiteStore` (``crmkit.testing.StoreContract`` and a stateful test
hold all three to it) and raises the same errors; whatever psycopg raises is turned into a
:class:`~crmkit.errors.StorageError` subclass that says what to do (see "Running on
PostgreSQL" in the docs).

How records are stored, in a schema of their own (``schema="crmkit"`` by default), so the
tables sit beside the host app's:

- one table per record type, one column per field; text and enums ``text COLLATE "C"``
  (code-point order, the order Python and SQLite use), whole numbers ``bigint``, floats
  ``double precision``, booleans ``boolean``, money ``numeric`` (exact ``Decimal``),
  datetimes ``timestamptz`` (an instant; read back in UTC), dates ``date``;
- ``custom`` as a ``jsonb`` object, tags as a ``jsonb`` list, the structured fields
  (routing criteria, weekdays) as ``jsonb`` that keeps tuples, decimals and datetimes
  exact, times of day as ISO text;
- criteria compare whole numbers and money as ``float8``, like every other store.

The outermost :meth:`PostgresStore.transaction` runs ``SERIALIZABLE``: the engines read
and then write inside one transaction (:func:`crmkit.store.run_transaction`), and
serializable isolation makes PostgreSQL refuse, with a retryable
:class:`~crmkit.errors.TransactionConflict`, any interleaving that could lose an update
(SQLite gets the same guarantee from ``BEGIN IMMEDIATE``). Inner transactions are
savepoints.

The layout is created and upgraded by numbered migrations recorded in
``<schema>.crmkit_migrations``, under ``pg_advisory_xact_lock`` so that processes
starting together migrate once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, time
from time import monotonic as time_monotonic
from typing import Any, Generic, TypeVar

import numpy as np

try:
    import psycopg
    import psycopg.adapt
    import psycopg_pool
    from psycopg.rows import tuple_row
except ImportError as _err:  # pragma: no cover - depends on the installed extras
    from crmkit.errors import MissingDependencyError

    raise MissingDependencyError(
        "psycopg", "postgres", "crmkit.store.postgres (PostgresStore)"
    ) from _err

from crmkit._columns import column_from_values, field_kind
from crmkit._fields import check_state
from crmkit._schema import FieldInfo, plural, schema_of
from crmkit.criteria import BoundCriteria, _postgres_custom_expr, _postgres_sql
from crmkit.errors import (
    AlreadyExists,
    ConflictError,
    NotFound,
    StatementTimeout,
    StorageError,
    StorageUnavailable,
    TransactionConflict,
    ValidationError,
)
from crmkit.records import RECORD_TYPES, Merge
from crmkit.registry import DECLARED, STATE, record_types
from crmkit.store import _custom
from crmkit.store._base import (
    CHECKED_TYPES,
    CriteriaLike,
    IntegrityChecked,
    RepositoryAccess,
    bound,
    check_batch,
    check_page,
    check_patches,
    check_type,
    condition_failed,
    convert_patch,
    group_patches,
    index_fields,
    order_fields,
    patch_fields,
    patch_record,
    raise_batch_problems,
    storable_id,
    version_copier,
)
from crmkit.store._columnar import AddsColumns
from crmkit.store._events import EmitsChanges, Outbox, events_setting
from crmkit.store.sqlite import (
    _EXTRA_INDEXES,
    _INDEXED,
    _SKIP_SINGLE,
    _V1_TYPES,
    _dumps,
    _loads,
    _q,
    _tree,
    _tree_dumps,
    _Unstorable,
    _untree,
)

__all__ = ["PostgresRepository", "PostgresStore"]

T = TypeVar("T")

_log = logging.getLogger("crmkit.store")
R = TypeVar("R")

_NAT = -(2**63)  # numpy's NaT as int64
_INT64 = (-(2**63), 2**63 - 1)
_SERIALIZABLE = "BEGIN ISOLATION LEVEL SERIALIZABLE"
_READ_COMMITTED = "BEGIN ISOLATION LEVEL READ COMMITTED"
_STREAM_FROM = 2_000  # queries that may return more rows stream them in chunks of this size
_NAME = 63  # PostgreSQL's longest identifier
_IDLE = psycopg.pq.TransactionStatus.IDLE
_OK = psycopg.pq.ConnStatus.OK


def _literal(text: str) -> str:
    """A SQL string literal for a checked identifier (custom keys; never data values)."""
    return "'" + text.replace("'", "''") + "'"


# -- per-type codecs ----------------------------------------------------------------------


def _sql_type(info: FieldInfo) -> str:
    kind = info.kind
    if info.name == "id":
        return 'text COLLATE "C" PRIMARY KEY'
    if info.name == "version":
        return "bigint NOT NULL"
    return {
        "text": 'text COLLATE "C"',
        "enum": 'text COLLATE "C"',
        "int": "bigint",
        "float": "double precision",
        "money": "numeric",
        "bool": "boolean",
        "datetime": "timestamptz",
        "date": "date",
        "time": "text",
        "custom": "jsonb NOT NULL DEFAULT '{}'",
    }.get(kind, "jsonb")  # tags, json


class _Codec:
    """Columns and compiled row encoder/decoder of one record type (schema-independent)."""

    def __init__(self, record_type: type[Any]) -> None:
        self.record_type = record_type
        self.schema = schema_of(record_type)
        self.name = self.schema.name
        self.table = plural(record_type)
        self.fields = self.schema.fields
        self.kinds = {info.name: info.kind for info in self.fields}
        if self.fields[0].name != "id" or self.fields[-1].name != "version":
            raise TypeError(f"{self.name} must start with 'id' and end with 'version'")
        for info in self.fields:
            if not info.name.isidentifier():
                raise TypeError(f"{self.name}.{info.name} is not an identifier")
        self.column_names = [info.name for info in self.fields]
        self.encode: Callable[[Any, int], tuple[Any, ...]]
        self.decode: Callable[[Sequence[Any]], Any]
        self.with_version = version_copier(record_type)
        self._compile()

    def _compile(self) -> None:
        """Generate this type's row encoder and decoder.

        The source is built only from the record class's own attrs field names and kinds
        (never from data), the technique attrs uses for ``__init__``.
        """
        ns: dict[str, Any] = {
            "_cls": self.record_type,
            "_new": object.__new__,
            "_UTC": UTC,
            "_dumps": _dumps,
            "_custom_dumps": _custom_dumps,
            "_tree_dumps": _tree_dumps,
            "_untree": _untree,
            "_time": time.fromisoformat,
            "_tuple": tuple,
            "_MIN": _INT64[0],
            "_MAX": _INT64[1],
            "_too_big": _too_big,
        }
        enc: list[str] = []
        dec: list[str] = []
        for i, info in enumerate(self.fields):
            n = info.name
            setter = f"_s_{n}"
            ns[setter] = self.record_type.__dict__[n].__set__
            enc.append(_encode_expr(info, f"r.{n}"))
            dec.append(f"    {setter}(o, {_decode_expr(info, f'row[{i}]', ns)})")
        enc[-1] = "version"  # the version column is written by the store
        source = (
            "def encode(r, version):\n"
            f"    return ({', '.join(enc)},)\n"
            "def decode(row):\n"
            "    o = _new(_cls)\n" + "\n".join(dec) + "\n    return o\n"
        )
        for info in self.fields[1:-1]:
            source += f"def enc_{info.name}(value):\n    return {_encode_expr(info, 'value')}\n"
        exec(compile(source, f"<crmkit postgres codec {self.name}>", "exec"), ns)
        self.encode = ns["encode"]
        self.decode = ns["decode"]
        self._field_encoders: dict[str, Callable[[Any], Any]] = {
            info.name: ns[f"enc_{info.name}"] for info in self.fields[1:-1]
        }

    def encode_patch(self, probe: Any, fields: tuple[str, ...]) -> list[Any]:
        """The column values of ``fields`` taken from ``probe`` (for partial updates)."""
        return [self._field_encoders[name](getattr(probe, name)) for name in fields]

    def encoding_problems(self, record: Any) -> list[tuple[str, Any, str]]:
        """Why a record cannot be written (only asked after encoding it failed)."""
        problems: list[tuple[str, Any, str]] = []
        for info in self.fields:
            value = getattr(record, info.name)
            if info.kind == "int" and isinstance(value, int):
                if not _INT64[0] <= value <= _INT64[1]:
                    problems.append(
                        (info.name, value, "does not fit in a 64-bit integer (bigint)")
                    )
            elif info.kind in ("text", "enum") and isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    problems.append((info.name, value, "is not valid Unicode text"))
            elif info.kind == "custom":
                for key, item in value.items():
                    if isinstance(item, str):
                        try:
                            item.encode("utf-8")
                        except UnicodeEncodeError:
                            problems.append((info.name, value, f"{key!r} is not valid Unicode"))
            elif info.kind == "json":
                try:
                    _tree(value)
                except _Unstorable as err:
                    problems.append((info.name, value, str(err)))
        return problems

    def check_encodable(self, record: Any) -> None:
        for name, value, reason in self.encoding_problems(record):
            raise ValidationError(self.name, name, value, reason, record_id=record.id)


def _custom_dumps(custom: Mapping[str, Any]) -> str:
    """Custom fields as JSON that ``jsonb`` reads back with the same types.

    ``jsonb`` keeps numbers as decimals and prints ``1.7e308`` as its 309 digits, which
    would read back as an int; a float that large is written out in full with a ``.0``,
    which it keeps.
    """
    text = _dumps(custom)
    if "e+" not in text:  # Python writes floats from 1e16 up with an exponent ("1e+16")
        return text
    if not any(isinstance(v, float) and abs(v) >= 1e16 for v in custom.values()):
        return text
    parts = []
    for key, value in custom.items():
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            parts.append(f"{json.dumps(key)}: {value:.1f}")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{" + ", ".join(parts) + "}"


def _too_big(value: int) -> Any:
    raise OverflowError(f"{value} does not fit in a 64-bit integer")


def _encode_expr(info: FieldInfo, v: str) -> str:
    kind = info.kind
    if kind == "int":
        return f"(x if (x := {v}) is None or _MIN <= x <= _MAX else _too_big(x))"
    if kind == "enum":
        return f"(None if (x := {v}) is None else x._value_)"
    if kind == "time":
        return f"(None if (x := {v}) is None else x.isoformat())"
    if kind == "custom":
        return f"(_custom_dumps(x) if (x := {v}) else '{{}}')"
    if kind == "tags":
        return f"_dumps({v})"
    if kind == "json":
        return f"_tree_dumps({v})"
    return v  # text, float, bool, money (Decimal), datetime, date: psycopg adapts them


def _decode_expr(info: FieldInfo, c: str, ns: dict[str, Any]) -> str:
    kind = info.kind
    if kind == "enum":
        assert info.enum is not None
        table = f"_E_{info.name}"
        ns[table] = {str(m.value): m for m in info.enum}
        return f"(None if (x := {c}) is None else {table}[x])"
    if kind == "datetime":  # the pool's sessions run in UTC; a host's may not
        return f"(None if (x := {c}) is None else x if x.tzinfo is _UTC else x.astimezone(_UTC))"
    if kind == "time":
        return f"(None if (x := {c}) is None else _time(x))"
    if kind == "tags":
        return f"_tuple({c})"
    if kind == "json":
        return f"(None if (x := {c}) is None else _untree(x))"
    return c  # text, int, float, bool, money, date, custom (psycopg loads jsonb)


_CODECS: dict[type[Any], _Codec] = {}


def _codec(record_type: type[Any]) -> _Codec:
    codec = _CODECS.get(record_type)
    if codec is None:
        codec = _CODECS[record_type] = _Codec(record_type)
    return codec


# -- migrations ---------------------------------------------------------------------------


def _index_name(table: str, parts: Sequence[str]) -> str:
    name = f"ix_{table}_{'_'.join(parts)}"
    if len(name) > _NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[: _NAME - 11]}_{digest}"
    return name


def _create_table(cur: psycopg.Cursor[Any], schema: str, record_type: type[Any]) -> None:
    """The table of one record type with its indexes, as the record is defined now."""
    codec = _codec(record_type)
    table = f"{_q(schema)}.{_q(codec.table)}"
    body = ", ".join(f"{_q(info.name)} {_sql_type(info)}" for info in codec.fields)
    cur.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
    skip = _SKIP_SINGLE.get(codec.name, frozenset())
    groups: list[tuple[str, ...]] = [
        (name,) for name in _INDEXED if name in codec.kinds and name not in skip
    ]
    groups += [g for g in _EXTRA_INDEXES.get(codec.name, ()) if all(n in codec.kinds for n in g)]
    for group in groups:
        index = _q(_index_name(codec.table, group))
        columns = ", ".join(_q(n) for n in group)
        cur.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({columns})")


def _migration_1(cur: psycopg.Cursor[Any], schema: str) -> None:
    """Every record table of crmkit 0.1, the state documents and the declared indexes."""
    by_name = {t.__name__: t for t in RECORD_TYPES}
    for name in _V1_TYPES:
        _create_table(cur, schema, by_name[name])
    s = _q(schema)
    cur.execute(
        f'CREATE INDEX IF NOT EXISTS "ix_reminders_status_snoozed_until_due_at" '
        f'ON {s}."reminders" ("status", "snoozed_until", "due_at")'
    )
    cur.execute(
        f'CREATE TABLE IF NOT EXISTS {s}."crmkit_state" '
        '(name text COLLATE "C" PRIMARY KEY, data text NOT NULL)'
    )
    cur.execute(
        f'CREATE TABLE IF NOT EXISTS {s}."crmkit_indexes" '
        "(name text PRIMARY KEY, record_type text NOT NULL, fields jsonb NOT NULL)"
    )


#: Migration ``n`` (1-based) brings a schema from version n-1 to n. Append, never edit: a
#: new record type gets ``lambda cur, schema: _create_table(cur, schema, NewType)``, a new
#: field an ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``.
def _migration_2(cur: psycopg.Cursor[Any], schema: str) -> None:
    """The merge history of ``crmkit.dedupe``."""
    _create_table(cur, schema, Merge)


def _migration_3(cur: psycopg.Cursor[Any], schema: str) -> None:
    """The outbox of change and domain events (``crmkit.events``)."""
    s = _q(schema)
    cur.execute(f'CREATE SEQUENCE IF NOT EXISTS {s}."crmkit_event_positions"')
    cur.execute(
        f'CREATE TABLE IF NOT EXISTS {s}."crmkit_events" (position bigint PRIMARY KEY '
        f"DEFAULT nextval('{s}.\"crmkit_event_positions\"'::regclass), "
        'kind text NOT NULL, name text COLLATE "C" NOT NULL, record_id text COLLATE "C", '
        "operation text, version bigint, fields jsonb, payload jsonb, actor text, "
        "at timestamptz NOT NULL)"
    )


_MIGRATIONS: tuple[Callable[[psycopg.Cursor[Any], str], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
)
SCHEMA_VERSION = len(_MIGRATIONS)
_OWN_TABLES = ("crmkit_migrations", "crmkit_state", "crmkit_indexes", "crmkit_events")
_EVENT_COLUMNS = "position, kind, name, record_id, operation, version, fields, payload, actor, at"
_EVENT_VALUES = _EVENT_COLUMNS.removeprefix("position, ")
_EVENTS_BY_COPY = 200  # more events than this go in with COPY, fewer with one pipelined insert


def _lock_key(schema: str) -> int:
    """The advisory lock that serialises crmkit's DDL on one schema."""
    digest = hashlib.sha256(f"crmkit:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# -- errors -------------------------------------------------------------------------------

_CREDENTIALS = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied for database",
    "authentication failed",
)
_RETRY = (
    "nothing of the transaction was written; run the whole transaction again "
    "(crmkit.store.run_transaction does this for idempotent operations)"
)


def _classify(err: BaseException) -> tuple[type[StorageError], str]:
    """The crmkit error class for a psycopg error, and what to do about it."""
    if isinstance(err, psycopg_pool.PoolTimeout):
        return StorageUnavailable, (
            "no connection came free in time: the server is down or unreachable, or all "
            "of the pool's connections are busy (raise pool_size); retry later"
        )
    if isinstance(err, psycopg_pool.PoolClosed):
        return StorageError, "the store was closed; open a new PostgresStore"
    state = getattr(err, "sqlstate", None) or ""
    if state in ("40001", "40P01", "55P03"):
        return TransactionConflict, "another transaction touched the same rows; " + _RETRY
    if state == "23505":
        return TransactionConflict, "another transaction wrote the same id at the same time; " + (
            _RETRY
        )
    if state == "57014":
        if "statement timeout" in str(err):
            return StatementTimeout, (
                "the statement ran longer than the store's statement_timeout and the "
                "transaction was rolled back; narrow the query, declare an index "
                "(ensure_index) or raise statement_timeout"
            )
        return StorageError, "the statement was cancelled"
    if state in ("28000", "28P01", "3D000", "42501"):
        return StorageError, "check the user, password and database name in the DSN"
    if state.startswith("08") or state in ("57P01", "57P02", "57P03"):
        return StorageUnavailable, (
            "the connection to the server was lost or refused; the server rolled back the "
            "open transaction; retry when it is reachable again"
        )
    if state in ("42P01", "3F000"):
        return StorageError, (
            "crmkit's schema or tables are missing (dropped outside crmkit?); open a new "
            "PostgresStore to create them"
        )
    if state == "25P02":
        return StorageError, "the enclosing transaction failed earlier; roll it back"
    if isinstance(err, psycopg.OperationalError) and not state:
        text = str(err).lower()
        if "fatal" in text and any(marker in text for marker in _CREDENTIALS):
            return StorageError, (
                "the server refused the connection: check the user, password and database "
                "name in the DSN (retrying will not help)"
            )
        return StorageUnavailable, (
            "the server cannot be reached or the connection was lost; the server rolled "
            "back the open transaction; check that it is running and retry"
        )
    if isinstance(err, psycopg.InterfaceError):
        return StorageUnavailable, "the connection is closed; retry with a new one"
    return StorageError, ""


def _cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """The connection's cursor for short reads (tuples), made once: a cursor costs a
    few microseconds to make, a tenth of a read by primary key. A connection serves one
    thread at a time, and each read fetches all its rows before the next one starts."""
    cur: psycopg.Cursor[Any] | None = getattr(conn, "_crmkit_cursor", None)
    if cur is None:
        cur = psycopg.Cursor(conn, row_factory=tuple_row)
        conn._crmkit_cursor = cur  # type: ignore[attr-defined]
    return cur


def _closed(conn: psycopg.Connection[Any]) -> bool:
    return conn.closed or conn.pgconn.status != psycopg.pq.ConnStatus.OK


# -- the repository -----------------------------------------------------------------------


class PostgresRepository(AddsColumns, Generic[T]):
    """The records of one type in a :class:`PostgresStore`."""

    def __init__(self, store: PostgresStore, record_type: type[T]) -> None:
        self._store = store
        self._type = record_type
        codec = self._codec = _codec(record_type)
        self._name = codec.name
        self._wheres: dict[BoundCriteria, tuple[str, tuple[Any, ...]]] = {}
        s = _q(store.schema)
        t = self._table = f"{s}.{_q(codec.table)}"
        names = ", ".join(_q(c) for c in codec.column_names)
        marks = ", ".join(["%s"] * len(codec.column_names))
        self._select_list = names
        self._sql_get = f"SELECT {names} FROM {t} WHERE id = %s"
        self._sql_exists = f"SELECT 1 FROM {t} WHERE id = %s"
        self._sql_version = f"SELECT version FROM {t} WHERE id = %s"
        self._sql_count = f"SELECT count(*) FROM {t}"
        self._sql_add = f"INSERT INTO {t} ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"
        sets = ", ".join(f"{_q(c)} = EXCLUDED.{_q(c)}" for c in codec.column_names[1:-1])
        self._sql_put = (
            f"INSERT INTO {t} ({names}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET "
            f"{sets}, version = {t}.version + 1 RETURNING version"
        )
        assigns = ", ".join(f"{_q(c)} = %s" for c in codec.column_names[1:])
        self._sql_update = f"UPDATE {t} SET {assigns} WHERE id = %s AND version = %s"
        self._sql_delete = f"DELETE FROM {t} WHERE id = %s"
        self._sql_delete_version = f"DELETE FROM {t} WHERE id = %s AND version = %s"
        self._sql_ids_in = (  # ids as one JSON text: much faster to send than a text[]
            f"SELECT id FROM {t} WHERE id IN (SELECT jsonb_array_elements_text(%s::jsonb))"
        )
        self._sql_copy = f"COPY {t} ({names}) FROM STDIN"
        self._patch_sqls: dict[tuple[tuple[str, ...], bool, bool, str], str] = {}
        # put_many: COPY into a session-private temporary table, then one upsert from it
        digest = hashlib.sha256(store.schema.encode()).hexdigest()[:8]
        temp = _q(f"crmkit_put_{digest}_{codec.table}"[:_NAME])
        self._sql_temp = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} "
            f"(LIKE {t} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        self._sql_copy_temp = f"COPY {temp} ({names}) FROM STDIN"
        self._sql_put_temp = (
            f"WITH moved AS (DELETE FROM {temp} RETURNING {names}) "
            f"INSERT INTO {t} ({names}) SELECT {names} FROM moved "
            f"ON CONFLICT (id) DO UPDATE SET {sets}, version = {t}.version + 1 "
            "RETURNING id, version"
        )

    def __repr__(self) -> str:
        return f"<PostgresRepository {self._table}>"

    @property
    def record_type(self) -> type[T]:
        return self._type

    # -- reads --

    def get(self, record_id: str) -> T:
        record = self.find(record_id)
        if record is None:
            raise NotFound(self._name, record_id)
        return record

    def find(self, record_id: str) -> T | None:
        if not storable_id(record_id):
            return None
        rows = self._rows(self._sql_get, (record_id,), f"reading {self._name} {record_id!r}")
        return self._decode(rows[0]) if rows else None

    def _decode(self, row: Sequence[Any]) -> T:
        try:
            record: T = self._codec.decode(row)
        except Exception as err:
            raise StorageError(
                f"{self._store._label}: a stored {self._name} row (id {row[0]!r}) cannot be "
                f"read back; the table was changed outside crmkit: {err!r}"
            ) from err
        return record

    def _rows(self, sql: str, params: Sequence[Any], doing: str) -> list[Any]:
        def read(conn: psycopg.Connection[Any]) -> list[Any]:
            return _cursor(conn).execute(sql, params).fetchall()

        return self._store._read(read, doing)

    def __iter__(self) -> Iterator[T]:
        return iter(self.query())

    def __len__(self) -> int:
        return int(self._rows(self._sql_count, (), f"counting {self._codec.table}")[0][0])

    def __contains__(self, record_id: object) -> bool:
        if not storable_id(record_id):
            return False
        return bool(
            self._rows(self._sql_exists, (record_id,), f"looking up {self._name} {record_id!r}")
        )

    def _where(self, criteria: CriteriaLike) -> tuple[str, list[Any]]:
        test = bound(criteria, self._type)
        known = self._wheres.get(test)  # bound criteria are cached: a repeated query hits
        if known is not None:
            return known[0], list(known[1])
        params: list[Any] = []
        if test.matches_everything:
            where = ""
        else:
            sql, params = _postgres_sql(test, self._column_expr)
            where = f" WHERE {sql}"
        if len(self._wheres) >= 256:
            self._wheres.clear()
        self._wheres[test] = (where, tuple(params))
        return where, params

    def _column_expr(self, name: str) -> str:
        # criteria and ordering compare numbers as float64, as the other stores do
        if self._codec.kinds.get(name) in ("int", "money"):
            return f"({_q(name)})::float8"
        return _q(name)

    def _order(self, order_by: str | Sequence[str]) -> str:
        terms: list[str] = []
        for name, descending in order_fields(self._type, order_by):
            way = "DESC NULLS LAST" if descending else "ASC NULLS FIRST"
            if name.startswith("custom."):
                # missing first, then numbers (true/false as 1/0), then text: MemoryStore's key
                key = _literal(name.removeprefix("custom."))
                kind = f"jsonb_typeof(custom -> {key})"
                terms.append(
                    f"(CASE {kind} WHEN 'number' THEN 1 WHEN 'boolean' THEN 1 "
                    f"WHEN 'string' THEN 2 ELSE 0 END) {way}"
                )
                terms.append(
                    f"(CASE {kind} WHEN 'number' THEN (custom ->> {key})::float8 "
                    f"WHEN 'boolean' THEN (CASE WHEN custom ->> {key} = 'true' "
                    f"THEN 1::float8 ELSE 0::float8 END) END) {way}"
                )
                terms.append(
                    f"((CASE WHEN {kind} = 'string' THEN custom ->> {key} END) "
                    f'COLLATE "C") {way}'
                )
            else:
                terms.append(f"{self._column_expr(name)} {way}")
        terms.append("id ASC")
        return " ORDER BY " + ", ".join(terms)

    def query(
        self,
        criteria: CriteriaLike = None,
        *,
        order_by: str | Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[T]:
        """Matching records, ordered (see the store contract), paged by ``limit``/``offset``.

        Large results stream from the server in chunks, decoded as they arrive.
        """
        where, params = self._where(criteria)
        check_page(limit, offset)
        sql = f"SELECT {self._select_list} FROM {self._table}{where}{self._order(order_by)}"
        if limit is not None or offset:
            sql += " LIMIT %s OFFSET %s"
            params += [limit, offset]
        decode = self._decode

        def read(conn: psycopg.Connection[Any]) -> list[T]:
            cur = psycopg.Cursor(conn, row_factory=tuple_row)
            if limit is not None and limit <= _STREAM_FROM:
                return [decode(row) for row in cur.execute(sql, params).fetchall()]
            return [decode(row) for row in cur.stream(sql, params, size=_STREAM_FROM)]

        return self._store._read(read, f"querying {self._codec.table}")

    def count(self, criteria: CriteriaLike = None) -> int:
        where, params = self._where(criteria)
        rows = self._rows(self._sql_count + where, params, f"counting {self._codec.table}")
        return int(rows[0][0])

    def columns(
        self, fields: Sequence[str], criteria: CriteriaLike = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """The named fields of the matching records (in id order) as numpy columns.

        Each column is computed by the server in the shape numpy wants (numbers as
        ``float8``, datetimes as microseconds, dates as days) without making records;
        the arrays are the ones :func:`crmkit._columns.columns_of` makes from records.
        """
        if isinstance(fields, str):
            fields = [fields]
        kinds = [field_kind(self._type, name) for name in fields]
        where, params = self._where(criteria)
        exprs: list[str] = []
        for name, kind in zip(fields, kinds, strict=True):
            column = _q(name)
            if kind == "custom":
                exprs.append(f"custom -> {_literal(name.removeprefix('custom.'))}")
            elif kind in ("text", "enum"):
                exprs.append(f"COALESCE({column}, '')")
            elif kind in ("int", "float", "money"):
                exprs.append(f"({column})::float8")
            elif kind == "datetime":
                exprs.append(f"COALESCE((extract(epoch FROM {column}) * 1000000)::int8, {_NAT})")
            elif kind == "date":
                exprs.append(f"COALESCE(({column} - DATE '1970-01-01')::int8, {_NAT})")
            else:
                exprs.append(column)
        result: dict[str, np.ndarray[Any, Any]] = {}
        if not exprs:
            return result
        sql = f"SELECT {', '.join(exprs)} FROM {self._table}{where} ORDER BY id"
        rows = self._rows(sql, params, f"reading columns of {self._codec.table}")
        values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else []
        for i, (name, kind) in enumerate(zip(fields, kinds, strict=True)):
            result[name] = self._column(name, kind, values[i] if values else ())
        return result

    def _column(self, name: str, kind: str, raw: Sequence[Any]) -> np.ndarray[Any, Any]:
        if kind in ("text", "enum"):
            return np.array(raw, dtype=str)
        if kind in ("int", "float", "money"):
            return np.array(raw, dtype=np.float64)
        if kind == "bool":
            return np.array(raw, dtype=bool)
        if kind == "datetime":
            return np.array(raw, dtype=np.int64).view("datetime64[us]")
        if kind == "date":
            return np.array(raw, dtype=np.int64).view("datetime64[D]")
        if kind == "custom":
            return column_from_values(kind, raw)
        info = self._codec.schema.field(name)  # tags, json, time: Python objects
        return column_from_values(kind, [_decode_one(info, v) for v in raw])

    # -- writes --

    def add(self, record: T) -> T:
        check_type(self._type, record)
        new: Any = record
        codec = self._codec
        store = self._store
        doing = f"adding {self._name} {new.id!r}"
        try:
            encoded = codec.encode(new, 1)
            with store._use() as conn:
                cur = psycopg.Cursor(conn).execute(self._sql_add, encoded)
        except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
            codec.check_encodable(new)
            raise store._error(doing, err) from err
        except psycopg.Error as err:
            raise store._error(doing, err) from err
        if cur.rowcount == 0:
            raise AlreadyExists(self._name, new.id)
        stored: T = codec.with_version(new, 1)
        return stored

    def put(self, record: T) -> T:
        check_type(self._type, record)
        new: Any = record
        codec = self._codec
        store = self._store
        doing = f"putting {self._name} {new.id!r}"
        try:
            encoded = codec.encode(new, 1)
            with store._use() as conn:
                rows = psycopg.Cursor(conn).execute(self._sql_put, encoded).fetchall()
        except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
            codec.check_encodable(new)
            raise store._error(doing, err) from err
        except psycopg.Error as err:
            raise store._error(doing, err) from err
        stored: T = codec.with_version(new, int(rows[0][0]))
        return stored

    def update(self, record: T, *, expected_version: int | None = None) -> T:
        check_type(self._type, record)
        new: Any = record
        expected: int = new.version if expected_version is None else expected_version
        codec = self._codec
        store = self._store
        doing = f"updating {self._name} {new.id!r}"
        try:
            encoded = codec.encode(new, expected + 1)
            with store._use() as conn:
                cur = psycopg.Cursor(conn, row_factory=tuple_row)
                cur.execute(self._sql_update, (*encoded[1:], new.id, expected))
                if cur.rowcount == 0:
                    rows = cur.execute(self._sql_version, (new.id,)).fetchall()
                    if not rows:
                        raise NotFound(self._name, new.id)
                    raise ConflictError(self._name, new.id, expected, int(rows[0][0]))
        except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
            codec.check_encodable(new)
            raise store._error(doing, err) from err
        except psycopg.Error as err:
            raise store._error(doing, err) from err
        stored: T = codec.with_version(new, expected + 1)
        return stored

    def _patch_sql(
        self, fields: tuple[str, ...], *, checked: bool, returning: bool, condition: str = ""
    ) -> str:
        key = (fields, checked, returning, condition)
        sql = self._patch_sqls.get(key)
        if sql is None:
            sets = ", ".join(f"{_q(f)} = %s" for f in fields)
            sql = f"UPDATE {self._table} SET {sets}, version = version + 1 WHERE id = %s"
            sql += " AND version = %s" if checked else ""
            sql += f" AND ({condition})" if condition else ""  # compiled ``where`` criteria
            sql += f" RETURNING {self._select_list}" if returning else ""
            if len(self._patch_sqls) >= 512:
                self._patch_sqls.clear()
            self._patch_sqls[key] = sql
        return sql

    def patch(
        self,
        record_id: str,
        *,
        expected_version: int | None = None,
        where: CriteriaLike = None,
        **fields: Any,
    ) -> T:
        """Change only ``fields`` of a stored record: one ``UPDATE`` of those columns.

        The new values are converted and checked like the record's own fields; the
        record is not read first unless a changed field's check needs the rest of it.
        ``where`` criteria are compiled into the same ``UPDATE``, so the row is checked
        and written under one row lock.
        """
        changes = patch_fields(self._type, record_id, fields)
        store, codec = self._store, self._codec
        test: BoundCriteria | None = None  # ``where``, bound and compiled
        condition, condition_params = "", list[Any]()
        if where is not None:
            test = bound(where, self._type)
            condition, condition_params = self._where(test)
            condition = condition.removeprefix(" WHERE ")
        probe = convert_patch(self._type, record_id, changes)
        if probe is None:
            with store.transaction():
                old: Any = self.get(record_id)
                if expected_version is not None and old.version != expected_version:
                    raise ConflictError(self._name, record_id, expected_version, old.version)
                probe = patch_record(old, changes)
                expected_version = old.version
        names = tuple(changes)
        checked = expected_version is not None
        params = codec.encode_patch(probe, names)
        params.append(record_id)
        if checked:
            params.append(expected_version)
        if condition:
            params.extend(condition_params)
        sql = self._patch_sql(names, checked=checked, returning=True, condition=condition)
        doing = f"patching {self._name} {record_id!r}"
        try:
            with store._use() as conn:
                cur = psycopg.Cursor(conn, row_factory=tuple_row)
                cur.execute(sql, params)
                rows = cur.fetchall()
                if not rows:
                    found = cur.execute(self._sql_version, (record_id,)).fetchall()
                    if not found:
                        raise NotFound(self._name, record_id)
                    version = int(found[0][0])
                    if expected_version is not None and version != expected_version:
                        raise ConflictError(self._name, record_id, expected_version, version)
                    assert test is not None
                    raise condition_failed(self._name, record_id, test, version)
        except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
            raise store._error(doing, err) from err
        except psycopg.Error as err:
            raise store._error(doing, err) from err
        return self._decode(rows[0])

    def _get_many(self, ids: Sequence[str]) -> dict[str, Any]:
        """The stored records among ``ids``, read in one query (for change events)."""
        rows = self._rows(
            f"SELECT {self._select_list} FROM {self._table} "
            "WHERE id IN (SELECT jsonb_array_elements_text(%s::jsonb))",
            [json.dumps(list(ids))],
            f"reading {self._codec.table}",
        )
        return {row[0]: self._decode(row) for row in rows}

    def patch_many(
        self,
        changes: Mapping[str, Mapping[str, Any]],
        *,
        expected_versions: Mapping[str, int] | None = None,
        where: CriteriaLike = None,
    ) -> list[T]:
        """Patch every record or none (one ``UPDATE`` per set of changed fields); a bad
        entry raises ``BatchError`` listing them all and nothing is written. ``where`` is
        checked on the records read in the transaction (each ``UPDATE`` checks the version
        it read)."""
        store, codec = self._store, self._codec
        with store.transaction():
            wanted = (
                [i for i in changes if isinstance(i, str)] if isinstance(changes, Mapping) else []
            )
            rows = self._rows(
                f"SELECT {self._select_list} FROM {self._table} "
                "WHERE id IN (SELECT jsonb_array_elements_text(%s::jsonb))",
                [json.dumps(wanted)],
                f"reading {codec.table}",
            )
            stored: dict[str, Any] = {row[0]: self._decode(row) for row in rows}
            pairs = check_patches(self._type, changes, expected_versions, stored, where)
            groups = group_patches(pairs, changes, codec.encode_patch)
            doing = f"patching {len(pairs)} {codec.table}"
            try:
                with store._use() as conn:
                    cur = psycopg.Cursor(conn)
                    for names, rows in groups.items():
                        cur.executemany(
                            self._patch_sql(names, checked=True, returning=False), rows
                        )
            except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
                raise store._error(doing, err) from err
            except psycopg.Error as err:
                raise store._error(doing, err) from err
        return [new for _, new in pairs]  # check_patches stamped the next version

    def delete(self, record_id: str, *, expected_version: int | None = None) -> None:
        if not storable_id(record_id):
            raise NotFound(self._name, record_id)
        store = self._store
        try:
            with store._use() as conn:
                cur = psycopg.Cursor(conn, row_factory=tuple_row)
                if expected_version is None:
                    cur.execute(self._sql_delete, (record_id,))
                else:
                    cur.execute(self._sql_delete_version, (record_id, expected_version))
                if cur.rowcount == 0:
                    rows = cur.execute(self._sql_version, (record_id,)).fetchall()
                    if not rows:
                        raise NotFound(self._name, record_id)
                    assert expected_version is not None
                    raise ConflictError(self._name, record_id, expected_version, int(rows[0][0]))
        except psycopg.Error as err:
            raise store._error(f"deleting {self._name} {record_id!r}", err) from err

    def _ids(self, batch: list[Any]) -> list[str]:
        record_type: type[Any] = self._type
        return [r.id for r in batch if isinstance(r, record_type) and isinstance(r.id, str)]

    def add_many(self, records: Iterable[T]) -> list[T]:
        """Add every record or none: a bad one raises ``BatchError`` listing them all.

        The ids are checked in one query, then the rows go in with ``COPY``.
        """
        batch: list[Any] = list(records)
        store = self._store
        doing = f"adding {len(batch)} {self._codec.table}"
        if not batch:
            return []
        with store._atomic(_READ_COMMITTED):
            ids = _dumps(self._ids(batch))
            existing = {row[0] for row in self._rows(self._sql_ids_in, (ids,), doing)}
            batch = check_batch(self._type, batch, existing.__contains__)
            stored: list[T] = []
            self._copy(self._sql_copy, batch, doing, None, stored)
        return stored

    def put_many(self, records: Iterable[T]) -> list[T]:
        """Insert or replace every record or none (no version check).

        The rows go with ``COPY`` into a temporary table, and from there into the table in
        one ``INSERT ... ON CONFLICT`` that bumps the versions of the replaced ones.
        """
        batch: list[Any] = list(records)
        store = self._store
        doing = f"putting {len(batch)} {self._codec.table}"
        batch = check_batch(self._type, batch, None)
        if not batch:
            return []
        with store._atomic(_READ_COMMITTED):
            rows = self._copy(self._sql_copy_temp, batch, doing, self._sql_put_temp)
        versions: dict[str, int] = dict(rows)
        with_version = self._codec.with_version
        return [r if r.version == (v := versions[r.id]) else with_version(r, v) for r in batch]

    def _copy(
        self,
        copy_sql: str,
        batch: list[Any],
        doing: str,
        then: str | None,
        stored: list[Any] | None = None,
    ) -> list[Any]:
        """COPY a checked batch (inside the caller's transaction), then run ``then``.

        Each record is encoded as its row is written, so that the server stores the
        rows sent so far while the next ones are encoded; ``stored`` gets each record
        stamped with version 1 on the way (for ``add_many``). A record that cannot be
        encoded aborts the COPY, so nothing is written.
        """
        store = self._store
        encode = self._codec.encode
        with_version = self._codec.with_version
        try:
            with store._use() as conn:
                cur = psycopg.Cursor(conn, row_factory=tuple_row)
                if then is not None:
                    cur.execute(self._sql_temp)
                with cur.copy(copy_sql) as copy:
                    write = copy.write_row
                    if stored is None:
                        for r in batch:
                            write(encode(r, 1))
                    else:
                        add = stored.append
                        for r in batch:
                            write(encode(r, 1))
                            add(r if r.version == 1 else with_version(r, 1))
                return [] if then is None else cur.execute(then).fetchall()
        except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
            self._raise_batch_problems(batch)
            raise store._error(doing, err) from err
        except psycopg.Error as err:
            raise store._error(doing, err) from err

    def _raise_batch_problems(self, batch: list[Any]) -> None:
        raise_batch_problems(self._name, batch, self._codec.encoding_problems)


class _EmittingPostgresRepository(EmitsChanges, PostgresRepository[T]):
    """A PostgresRepository whose writes yield change events (when the store's are on)."""


class _CheckedPostgresRepository(IntegrityChecked, EmitsChanges, PostgresRepository[T]):
    """A PostgresRepository whose writes check the rules that span records (campaign members)."""


def _decode_one(info: FieldInfo, value: Any) -> Any:
    if value is None:
        return None
    if info.kind == "tags":
        return tuple(value)
    if info.kind == "time":
        return time.fromisoformat(value)
    return _untree(value)


# -- the store ----------------------------------------------------------------------------


class _JsonbLoader(psycopg.adapt.Loader):
    """``jsonb`` text to Python with json's C scanner (psycopg's default calls
    ``json.loads``, which first sniffs the encoding of every value)."""

    def load(self, data: Any) -> Any:
        return _loads(bytes(data).decode())


def _configure(conn: psycopg.Connection[Any], *, timeout_ms: int | None) -> None:
    """Set up each new pool connection."""
    conn.adapters.register_loader("jsonb", _JsonbLoader)
    conn.execute("SET TIME ZONE 'UTC'")
    if timeout_ms is not None:
        conn.execute(f"SET statement_timeout = {int(timeout_ms)}")


def _unpark(
    pool: psycopg_pool.ConnectionPool[Any],
    parked: list[psycopg.Connection[Any]],
    lock: threading.Lock,
) -> None:
    """Hand the parked connections back to the pool."""
    with lock:
        conns = parked[:]
        parked.clear()
    for conn in conns:
        pool.putconn(conn)


def _close_pool(
    pool: psycopg_pool.ConnectionPool[Any],
    parked: list[psycopg.Connection[Any]],
    lock: threading.Lock,
) -> None:
    """The store's finalizer: the parked connections back, then close the pool (not a
    method: it must not keep the store alive)."""
    _unpark(pool, parked, lock)
    pool.close()


class _Local(threading.local):
    conn: psycopg.Connection[Any] | None = None
    depth = 0
    savepoints = False  # the outermost level is a savepoint in the host's transaction


class PostgresStore(RepositoryAccess):
    """A complete store in a PostgreSQL schema; thread-safe, and safe with many processes.

    ``dsn`` is a libpq connection string or URL (``"dbname=crm user=app"``,
    ``"postgresql://app@db/crm"``; ``None`` uses libpq's defaults and ``PG*`` environment
    variables); the store keeps a pool of up to ``pool_size``
    connections. Each thread inside :meth:`transaction` holds one connection until the
    outermost transaction ends; calls outside a transaction borrow one per call and commit
    at once.

    ``connection=`` runs the store on a psycopg connection the host app owns instead (and
    no pool). crmkit never commits, rolls back or closes it: when it is not in autocommit
    mode, or the host has begun a transaction on it, every call runs inside the host's
    transaction and :meth:`transaction` is a savepoint in it (so :attr:`in_transaction`
    is true and :func:`~crmkit.store.run_transaction` leaves retrying to the host); an
    idle autocommit connection behaves as the store's own pool of one connection. Calls
    from several threads take turns on it.

    ``schema`` names the PostgreSQL schema of crmkit's tables (created when missing);
    ``statement_timeout`` (seconds) cancels longer statements with
    :class:`~crmkit.errors.StatementTimeout` (on a host's connection it is set for that
    session).

    ``events=True`` turns the outbox of :mod:`crmkit.events` on for the schema (``False``
    off); the choice is kept in the schema, and processes opening it with the default
    ``events=None`` follow it. Events are written last in each transaction, under an
    exclusive lock on the outbox table held until the commit, so positions become
    visible in order (the eventsourcing library's technique); a ``NOTIFY`` wakes
    :meth:`crmkit.events.Consumer.wait`.

    >>> store = PostgresStore("dbname=crm", schema="crm")  # doctest: +SKIP
    >>> store.accounts.add(Account(id="a1", name="Acme")).version  # doctest: +SKIP
    1
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        schema: str = "crmkit",
        connection: psycopg.Connection[Any] | None = None,
        pool_size: int = 5,
        statement_timeout: float | None = None,
        connect_timeout: float = 10.0,
        events: bool | None = None,
    ) -> None:
        if events is not None and not isinstance(events, bool):
            raise ValidationError("PostgresStore", "events", events, "must be True, False or None")
        if not isinstance(schema, str) or not schema.isidentifier() or len(schema) > _NAME:
            raise ValidationError(
                "PostgresStore", "schema", schema, "must be an identifier like 'crmkit'"
            )
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValidationError(
                "PostgresStore", "pool_size", pool_size, "must be a whole number >= 1"
            )
        if statement_timeout is not None and (
            isinstance(statement_timeout, bool)
            or not isinstance(statement_timeout, (int, float))
            or not statement_timeout > 0
        ):
            raise ValidationError(
                "PostgresStore",
                "statement_timeout",
                statement_timeout,
                "must be a number of seconds > 0, or None for no limit",
            )
        if connection is not None and dsn is not None:
            raise ValidationError(
                "PostgresStore", "connection", connection, "give a dsn or a connection, not both"
            )
        if connection is not None and not isinstance(connection, psycopg.Connection):
            raise ValidationError(
                "PostgresStore", "connection", connection, "must be a psycopg.Connection"
            )
        self._schema = schema
        self._label = f"PostgreSQL store (schema {schema!r})"
        self._timeout_ms = None if statement_timeout is None else int(statement_timeout * 1000)
        self._local = _Local()
        self._lock = threading.RLock()  # a host connection serves one thread at a time
        self._host = connection
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        # idle pool connections kept out of the pool between calls (see _borrow)
        self._parked: list[psycopg.Connection[Any]] = []
        self._park_lock = threading.Lock()
        self._wanting = 0  # threads waiting on the pool: connections go back to it
        self._closed = False
        self._outbox = Outbox(self._events_write, enabled=False)
        digest = hashlib.sha256(schema.encode()).hexdigest()[:16]
        self._channel = f"crmkit_events_{digest}"
        if connection is not None:
            self._setup(connection)
            if self._timeout_ms is not None:
                self._run(
                    connection,
                    f"SET statement_timeout = {int(self._timeout_ms)}",
                    "setting statement_timeout",
                )
        else:
            options: dict[str, Any] = {
                "autocommit": True,
                "connect_timeout": max(1, int(connect_timeout)),
            }
            try:
                if "application_name" not in psycopg.conninfo.conninfo_to_dict(dsn or ""):
                    options["application_name"] = f"crmkit-{schema}"[:_NAME]
                first = psycopg.connect(dsn or "", **options)
            except psycopg.Error as err:
                raise self._error("connecting", err) from err
            try:
                self._setup(first)
            finally:
                first.close()
            self._pool = psycopg_pool.ConnectionPool(
                dsn or "",
                kwargs=options,
                min_size=1,
                max_size=pool_size,
                # not a bound method: the pool must not keep the store alive
                configure=functools.partial(_configure, timeout_ms=self._timeout_ms),
                timeout=connect_timeout,
                name=f"crmkit-{schema}",
                open=True,
            )
            self._finalizer = weakref.finalize(
                self, _close_pool, self._pool, self._parked, self._park_lock
            )
            try:  # the first connection now, not in the background while the caller works
                self._pool.wait(timeout=connect_timeout)
            except psycopg.Error as err:
                self._finalizer()
                raise self._error("opening the connection pool", err) from err
        self._repos: dict[type[Any], PostgresRepository[Any]] = {
            t: (_CheckedPostgresRepository if t in CHECKED_TYPES else _EmittingPostgresRepository)(
                self, t
            )
            for t in RECORD_TYPES
        }
        self._generation = -1  # the registry's generation the repositories reflect
        self._synced_in_transaction = False  # a rollback may undo what _sync created
        try:
            self._sync()
            self._outbox.enabled = events_setting(self, events)
        except BaseException:
            self.close()
            raise

    # -- errors --

    def _error(self, doing: str, err: BaseException) -> StorageError:
        if self._closed:
            return StorageError(f"{self._label}: {doing} failed: the store was closed")
        kind, hint = _classify(err)
        if kind is StorageUnavailable and self._pool is not None:
            # drop the pool's other dead connections so that the next call gets a live one
            with contextlib.suppress(Exception):  # best effort: the next call reports anything
                _unpark(self._pool, self._parked, self._park_lock)
                self._pool.check()
        message = f"{self._label}: {doing} failed: {str(err).strip()}"
        return kind(message + (f" ({hint})" if hint else ""))

    # -- layout --

    def _setup(self, conn: psycopg.Connection[Any]) -> None:
        """Create or upgrade crmkit's schema (under an advisory lock), then check it."""
        doing = "upgrading the database layout"
        own = conn.autocommit  # a host's transaction is the host's to commit
        cur = psycopg.Cursor(conn, row_factory=tuple_row)
        s = _q(self._schema)
        try:
            if own:
                cur.execute("BEGIN")
            try:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self._schema),))
                row = cur.execute(
                    "SELECT to_regclass(%s)", (f'{s}."crmkit_migrations"',)
                ).fetchone()
                if row is None or row[0] is None:
                    self._refuse_foreign(cur)
                    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                    cur.execute(
                        f'CREATE TABLE {s}."crmkit_migrations" (version integer PRIMARY KEY, '
                        "description text NOT NULL, applied_at timestamptz NOT NULL "
                        "DEFAULT now())"
                    )
                    current = 0
                else:
                    current = self._current_version(cur)
                if current > SCHEMA_VERSION:
                    raise StorageError(
                        f"{self._label}: the schema has layout version {current}, newer than "
                        f"this crmkit knows ({SCHEMA_VERSION}); upgrade crmkit"
                    )
                for number in range(current + 1, SCHEMA_VERSION + 1):
                    migration = _MIGRATIONS[number - 1]
                    migration(cur, self._schema)
                    summary = (migration.__doc__ or migration.__name__).strip().splitlines()[0]
                    cur.execute(
                        f'INSERT INTO {s}."crmkit_migrations" (version, description) '
                        "VALUES (%s, %s)",
                        (number, summary),
                    )
                doing = "checking the database layout"
                self._check_layout(cur)
            except BaseException:
                if own and not _closed(conn):
                    cur.execute("ROLLBACK")
                raise
            if own:
                cur.execute("COMMIT")
            if current < SCHEMA_VERSION:
                _log.info(
                    "%s: migrated the layout from version %d to %d",
                    self._label,
                    current,
                    SCHEMA_VERSION,
                    extra={"from_version": current, "to_version": SCHEMA_VERSION},
                )
        except psycopg.Error as err:
            raise self._error(doing, err) from err

    def _refuse_foreign(self, cur: psycopg.Cursor[Any]) -> None:
        names = [_codec(t).table for t in RECORD_TYPES] + list(_OWN_TABLES)
        clash = [
            row[0]
            for row in cur.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s "
                "AND tablename = ANY(%s::text[]) ORDER BY 1",
                (self._schema, names),
            ).fetchall()
        ]
        if clash:
            raise StorageError(
                f"{self._label}: schema {self._schema!r} already has table(s) "
                f"{', '.join(clash)} that crmkit did not create; nothing was changed. "
                "Give crmkit a schema of its own (schema=...)"
            )

    def _current_version(self, cur: psycopg.Cursor[Any]) -> int:
        s = _q(self._schema)
        cur.execute("SAVEPOINT crmkit_version")
        try:
            row = cur.execute(
                f'SELECT COALESCE(MAX(version), 0) FROM {s}."crmkit_migrations"'
            ).fetchone()
        except psycopg.errors.UndefinedColumn as err:
            cur.execute("ROLLBACK TO SAVEPOINT crmkit_version")
            raise StorageError(
                f"{self._label}: {self._schema}.crmkit_migrations is not crmkit's migration "
                "table; nothing was changed. Give crmkit a schema of its own (schema=...)"
            ) from err
        cur.execute("RELEASE SAVEPOINT crmkit_version")
        return int(row[0]) if row else 0

    def _check_layout(self, cur: psycopg.Cursor[Any]) -> None:
        have: dict[str, set[str]] = {}
        for table, column in cur.execute(
            "SELECT c.relname, a.attname FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 "
            "AND NOT a.attisdropped",
            (self._schema,),
        ).fetchall():
            have.setdefault(table, set()).add(column)
        for record_type in RECORD_TYPES:
            codec = _codec(record_type)
            missing = [c for c in codec.column_names if c not in have.get(codec.table, set())]
            if missing:
                raise StorageError(
                    f"{self._label}: table {codec.table} lacks column(s) {', '.join(missing)}; "
                    "a migration for this crmkit version is missing"
                )

    @property
    def schema(self) -> str:
        """The PostgreSQL schema that holds crmkit's tables."""
        return self._schema

    @property
    def layout_version(self) -> int:
        """The number of the last migration applied to the schema."""
        try:
            with self._use() as conn:
                row = conn.execute(
                    f'SELECT COALESCE(MAX(version), 0) FROM {_q(self._schema)}."crmkit_migrations"'
                ).fetchone()
            return int(row[0]) if row else 0
        except psycopg.Error as err:
            raise self._error("reading the layout version", err) from err

    def __repr__(self) -> str:
        return f"<PostgresStore schema={self._schema!r}>"

    def _sync(self) -> None:
        """Tables and repositories for the record types registered now (created, or
        given their new optional fields, see ``crmkit.store._custom``), and the indexes
        of custom fields declared ``indexed``."""
        with self._lock:
            generation = STATE.generation
            self._synced_in_transaction = self.in_transaction
            types = record_types()
            for gone in [t for t in self._repos if t not in RECORD_TYPES]:
                del self._repos[gone]  # opened again below: cheap, and right after a rollback
            for t in types:
                if t not in self._repos:
                    self._open_custom(t)
                    self._repos[t] = _EmittingPostgresRepository(self, t)
            self._generation = generation
            for t, declared in list(DECLARED.items()):
                for name, field in declared.items():
                    if field.indexed and t in self._repos:
                        self.ensure_index(t, f"custom.{name}")

    def _open_custom(self, record_type: type[Any]) -> None:
        """Create the table of a registered type, or add its new optional fields."""
        codec = _codec(record_type)
        s = _q(self._schema)
        meta = f"{s}.{_q(_custom.TABLE)}"
        table = f"{s}.{_q(codec.table)}"
        doing = f"opening the table of {codec.name}"
        described = _custom.describe(record_type)
        with self._atomic(_READ_COMMITTED):
            try:
                with self._use() as conn:
                    cur = psycopg.Cursor(conn, row_factory=tuple_row)
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self._schema),))
                    cur.execute(
                        f"CREATE TABLE IF NOT EXISTS {meta} (name text PRIMARY KEY, "
                        "table_name text NOT NULL, fields text NOT NULL)"
                    )
                    row = cur.execute(
                        f"SELECT table_name, fields FROM {meta} WHERE name = %s", (codec.name,)
                    ).fetchone()
                    if row is None:
                        exists = cur.execute(
                            "SELECT to_regclass(%s)", (f"{s}.{_q(codec.table)}",)
                        ).fetchone()
                        if exists is not None and exists[0] is not None:
                            raise StorageError(
                                f"{self._label}: table {codec.table} exists but was not "
                                f"created for record type {codec.name}; pick another table "
                                "name (register_record(cls, table=...))"
                            )
                        _create_table(cur, self._schema, record_type)
                        cur.execute(
                            f"INSERT INTO {meta} (name, table_name, fields) VALUES (%s, %s, %s)",
                            (codec.name, codec.table, described),
                        )
                        return
                    if row[0] != codec.table:
                        raise StorageError(
                            f"{self._label}: record type {codec.name} is stored in table "
                            f"{row[0]}, not {codec.table}; register it with table={row[0]!r}"
                        )
                    if row[1] == described:
                        return
                    for info, default in _custom.added_fields(record_type, row[1], self._label):
                        cur.execute(
                            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {_q(info.name)} "
                            f"{_sql_type(info)}"
                        )
                        if default is not None:
                            value = codec._field_encoders[info.name](default)
                            cur.execute(f"UPDATE {table} SET {_q(info.name)} = %s", (value,))
                    cur.execute(
                        f"UPDATE {meta} SET fields = %s WHERE name = %s", (described, codec.name)
                    )
            except psycopg.Error as err:
                raise self._error(doing, err) from err

    def repository(self, record_type: type[T]) -> PostgresRepository[T]:
        """The repository for ``record_type`` (a built-in or registered record type)."""
        if self._generation != STATE.generation:
            self._sync()
        try:
            return self._repos[record_type]
        except (KeyError, TypeError):
            raise ValidationError(
                "Store", None, record_type, "is not a crmkit record type"
            ) from None

    # -- connections and transactions --

    @contextmanager
    def _use(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection for one call: the thread's transaction's, or a borrowed one."""
        conn = self._local.conn
        if conn is not None:
            yield conn
            return
        if self._host is not None:
            with self._lock:
                if self._closed:
                    raise psycopg.InterfaceError("the store was closed")
                yield self._host
            return
        conn = self._borrow()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _borrow(self) -> psycopg.Connection[Any]:
        """A connection of the pool for this thread: a parked one, else the pool's.

        Checking a connection out of ``psycopg_pool`` and back costs a third of a read
        by primary key, so between calls the store keeps idle connections parked in a
        list of its own (at most one per thread that used the store at once).
        While a thread waits on the pool, connections go back to the pool instead, so
        nobody waits for a connection that sits parked.
        """
        with self._park_lock:
            if self._parked:
                return self._parked.pop()
            self._wanting += 1
        try:
            pool = self._pool
            assert pool is not None
            conn: psycopg.Connection[Any] = pool.getconn()
            return conn
        finally:
            with self._park_lock:
                self._wanting -= 1

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        """Park a healthy idle connection for the next call, or hand it to the pool."""
        pgconn = conn.pgconn
        if (
            pgconn.transaction_status == _IDLE
            and pgconn.status == _OK
            and not conn.closed
            and conn.autocommit
        ):
            with self._park_lock:
                if not self._wanting and not self._closed:
                    self._parked.append(conn)
                    return
        pool = self._pool
        assert pool is not None
        pool.putconn(conn)

    def _read(self, read: Callable[[psycopg.Connection[Any]], R], doing: str) -> R:
        """``read(conn)`` on the connection for one call. A read outside a transaction
        that meets a connection the server has dropped (a restart, an idle timeout) runs
        once more on a fresh one: reading twice changes nothing."""
        for attempt in (1, 2):
            try:
                conn = self._local.conn
                if conn is not None:
                    return read(conn)
                if self._host is not None:
                    with self._use() as conn:
                        return read(conn)
                conn = self._borrow()
                try:
                    return read(conn)
                finally:
                    self._give_back(conn)
            except psycopg.Error as err:
                error = self._error(doing, err)
                again = (
                    attempt == 1
                    and type(error) is StorageUnavailable
                    and self._pool is not None
                    and self._local.conn is None
                    and not isinstance(err, psycopg_pool.PoolTimeout)
                )
                if not again:
                    raise error from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, conn: psycopg.Connection[Any], sql: str, doing: str) -> None:
        try:
            conn.execute(sql)
        except psycopg.Error as err:
            raise self._error(doing, err) from err

    @property
    def in_transaction(self) -> bool:
        """Whether the calling thread is inside a transaction of this store (with a
        host-owned connection not in autocommit mode: always, the host's)."""
        return self._local.conn is not None or self._host_transaction()

    def _host_transaction(self) -> bool:
        """Whether crmkit runs inside a transaction of the host's (see the class doc)."""
        host = self._host
        if host is None:
            return False
        idle = host.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        return not host.autocommit or not idle

    @contextmanager
    def transaction(self, *, lock: str | None = None) -> Iterator[None]:
        """Everything inside lands together or not at all; transactions nest.

        The outermost transaction is ``SERIALIZABLE``: if another transaction's writes
        would make it lose an update, PostgreSQL refuses one of them and it raises the
        retryable :class:`~crmkit.errors.TransactionConflict` (nothing of it was written).
        Inner transactions are savepoints.

        ``lock`` names a lock (an advisory lock on this schema) taken before the
        transaction begins and released after it ends: transactions under the same name,
        in any process, then run one after the other, each seeing the last one's writes,
        instead of refusing each other. Engines use it for state many workers update at
        once (a routing pool's rotation). It is ignored inside an outer transaction.
        """
        with self._atomic(_SERIALIZABLE, lock=lock):
            yield

    @contextmanager
    def _atomic(self, begin: str, *, lock: str | None = None) -> Iterator[None]:
        """A transaction started with ``begin`` (a savepoint inside one already open).

        Batches outside a transaction run ``READ COMMITTED``: each of their statements
        is atomic on its own, and serializable's predicate locks would make concurrent
        imports of different ids refuse each other for nothing.
        """
        local = self._local
        if local.conn is not None:
            with self._savepoint(local.conn, local.depth):
                yield
            return
        host = self._host
        if host is not None:
            with self._lock:
                if self._closed:
                    raise StorageError(f"{self._label}: the store was closed")
                if self._host_transaction():  # a savepoint in the host's transaction
                    local.conn, local.depth = host, 1
                    try:
                        with self._savepoint(host, 0):
                            yield
                    finally:
                        local.conn, local.depth = None, 0
                    return
                with self._outbox.delivering(), self._outermost(host, begin):
                    yield
            return
        try:
            conn = self._borrow()
        except psycopg.Error as err:
            raise self._error("starting a transaction", err) from err
        try:
            with self._outbox.delivering():
                if lock is None:
                    with self._outermost(conn, begin):
                        yield
                else:
                    with self._advisory(conn, lock), self._outermost(conn, begin):
                        yield
        finally:
            self._give_back(conn)

    @contextmanager
    def _advisory(self, conn: psycopg.Connection[Any], name: str) -> Iterator[None]:
        """Hold the session advisory lock ``name`` (of this schema) around the block."""
        key = _lock_key(f"{self._schema}:{name}")
        self._run_params(conn, "SELECT pg_advisory_lock(%s)", key, f"taking lock {name!r}")
        try:
            yield
        finally:
            if not _closed(conn):
                with contextlib.suppress(psycopg.Error):  # a lost connection released it
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def _run_params(self, conn: psycopg.Connection[Any], sql: str, key: int, doing: str) -> None:
        try:
            conn.execute(sql, (key,))
        except psycopg.Error as err:
            raise self._error(doing, err) from err

    @contextmanager
    def _outermost(self, conn: psycopg.Connection[Any], begin: str) -> Iterator[None]:
        local = self._local
        self._run(conn, begin, "starting a transaction")
        local.conn, local.depth = conn, 1
        try:
            with self._outbox.level(True):
                yield
        except BaseException:
            local.conn, local.depth = None, 0
            self._quietly(conn, "ROLLBACK", "rolling back a transaction")
            if self._synced_in_transaction:  # its new tables were undone too
                self._generation = -1
            raise
        local.conn, local.depth = None, 0
        try:
            self._run(conn, "COMMIT", "committing a transaction")
        except StorageError:
            idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if not _closed(conn) and not idle:
                self._quietly(conn, "ROLLBACK", "rolling back a failed commit")
            raise

    @contextmanager
    def _savepoint(self, conn: psycopg.Connection[Any], depth: int) -> Iterator[None]:
        local = self._local
        name = f"crmkit_{depth}"
        self._run(conn, f"SAVEPOINT {name}", "starting a nested transaction")
        local.depth = depth + 1
        try:
            # depth 0: crmkit's outermost level inside a host's transaction
            with self._outbox.level(depth == 0):
                yield
        except BaseException:
            local.depth = depth
            self._quietly(conn, f"ROLLBACK TO SAVEPOINT {name}", "rolling back a savepoint")
            self._quietly(conn, f"RELEASE SAVEPOINT {name}", "rolling back a savepoint")
            raise
        local.depth = depth
        self._run(conn, f"RELEASE SAVEPOINT {name}", "ending a nested transaction")

    def _quietly(self, conn: psycopg.Connection[Any], sql: str, doing: str) -> None:
        """Undo after an error; on a lost connection the server has already undone it all."""
        if _closed(conn):
            return
        try:
            conn.execute(sql)
        except psycopg.Error as err:
            if not _closed(conn):
                raise self._error(doing, err) from err

    # -- events (see crmkit.events) --

    def _events_transaction(self) -> Any:
        # what a lone write did before events: READ COMMITTED, now with its event
        return self._atomic(_READ_COMMITTED)

    def _events_write(self, rows: list[tuple[Any, ...]], at: Any) -> int:
        """Append ``rows`` to the outbox, last in the transaction: the exclusive table
        lock (held to the commit) makes transactions take positions in commit order, so
        a reader that sees position n has seen every committed one before it (and the
        positions of one transaction are consecutive). A few events go in one pipelined
        round trip, many with ``COPY``."""
        s = _q(self._schema)
        table = f'{s}."crmkit_events"'
        last = f"currval('{s}.\"crmkit_event_positions\"'::regclass)"
        values = [(*row, at) for row in rows]
        try:
            with self._use() as conn:
                cur = psycopg.Cursor(conn, row_factory=tuple_row)
                if len(values) > _EVENTS_BY_COPY:
                    cur.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
                    with cur.copy(f"COPY {table} ({_EVENT_VALUES}) FROM STDIN") as copy:
                        for value in values:
                            copy.write_row(value)
                    cur.execute(f"SELECT {last}, pg_notify(%s, {last}::text)", (self._channel,))
                else:
                    marks = ", ".join(["%s"] * len(values[0]))
                    with conn.pipeline():
                        cur.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
                        cur.executemany(
                            f"INSERT INTO {table} ({_EVENT_VALUES}) VALUES ({marks})", values
                        )
                        cur.execute(
                            f"SELECT {last}, pg_notify(%s, {last}::text)", (self._channel,)
                        )
                found = cur.fetchone()
        except psycopg.Error as err:
            raise self._error(f"writing {len(rows)} events", err) from err
        assert found is not None
        return int(found[0]) - len(rows) + 1

    def _events_read(self, after: int, limit: int | None) -> list[Any]:
        sql = (
            f'SELECT {_EVENT_COLUMNS} FROM {_q(self._schema)}."crmkit_events" '
            "WHERE position > %s ORDER BY position LIMIT %s"
        )

        def read(conn: psycopg.Connection[Any]) -> list[Any]:
            cur = psycopg.Cursor(conn, row_factory=tuple_row)
            return cur.execute(sql, (after, limit)).fetchall()

        return self._read(read, "reading events")

    def _events_trim(self, through: int) -> int:
        try:
            with self._use() as conn:
                cur = psycopg.Cursor(conn).execute(
                    f'DELETE FROM {_q(self._schema)}."crmkit_events" WHERE position <= %s',
                    (through,),
                )
                return int(cur.rowcount)
        except psycopg.Error as err:
            raise self._error("trimming events", err) from err

    def _events_wait(self, after: int, timeout: float) -> bool:
        """Wait with ``LISTEN`` until an event after ``after`` is committed (by any
        process) or ``timeout`` seconds have passed; whether one is there."""
        pool = self._pool
        if pool is None or self._local.conn is not None:  # a host's connection: poll
            from crmkit.events import _poll_wait

            return _poll_wait(self, after, timeout)
        try:
            conn = self._borrow()
        except psycopg.Error as err:
            raise self._error("waiting for events", err) from err
        try:
            conn.execute(f"LISTEN {_q(self._channel)}")
            try:
                deadline = time_monotonic() + timeout
                while not self._events_read(after, 1):
                    left = deadline - time_monotonic()
                    if left <= 0:
                        return False
                    # a notification may be stale (sent before this LISTEN): look again
                    for _ in conn.notifies(timeout=left, stop_after=1):
                        break
                return True
            finally:
                if not _closed(conn):
                    conn.execute(f"UNLISTEN {_q(self._channel)}")
        except psycopg.Error as err:
            raise self._error("waiting for events", err) from err
        finally:
            self._give_back(conn)

    # -- state documents --

    def load_state(self, name: str) -> dict[str, Any] | None:
        """A small JSON document saved with :meth:`save_state`, or ``None``."""
        if not isinstance(name, str):
            return None
        try:
            with self._use() as conn:
                row = (
                    psycopg.Cursor(conn, row_factory=tuple_row)
                    .execute(
                        f'SELECT data FROM {_q(self._schema)}."crmkit_state" WHERE name = %s',
                        (name,),
                    )
                    .fetchone()
                )
        except psycopg.Error as err:
            raise self._error(f"reading state {name!r}", err) from err
        if row is None:
            return None
        data: dict[str, Any] = json.loads(row[0])
        return data

    def save_state(self, name: str, data: Mapping[str, Any]) -> None:
        """Keep ``data`` (JSON-able) under ``name``; transactions cover it."""
        check_state(name, data)
        try:
            text = json.dumps(dict(data), sort_keys=True)
        except (TypeError, ValueError) as err:
            raise ValidationError("State", name, data, f"must be JSON-able: {err}") from err
        if not isinstance(name, str):
            raise ValidationError("State", None, name, "the state name must be text")
        try:
            with self._use() as conn:
                psycopg.Cursor(conn).execute(
                    f'INSERT INTO {_q(self._schema)}."crmkit_state" (name, data) '
                    "VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data",
                    (name, text),
                )
        except (UnicodeEncodeError, ValueError) as err:
            raise ValidationError("State", name, data, f"cannot be stored: {err}") from err
        except psycopg.Error as err:
            raise self._error(f"saving state {name!r}", err) from err

    # -- declared indexes --

    def ensure_index(self, record_type: type[Any], *fields: str) -> tuple[str, ...]:
        """Make queries on ``fields`` of ``record_type`` index lookups; idempotent.

        Fields may be any queryable field or ``custom.<key>``. A custom field's index
        holds its text values (and, indexed alone, a second index its numbers), in the
        very expressions the compiled criteria use. Returns the checked fields.

        The index is built with ``CREATE INDEX``, which blocks writes to the table while
        it runs; on a large live table create it ``CONCURRENTLY`` by hand instead (the
        expressions are in ``pg_indexes``).
        """
        fields = index_fields(record_type, fields)
        repo = self.repository(record_type)
        codec = repo._codec
        exprs: list[str] = []
        parts: list[str] = []
        for name in fields:
            if name.startswith("custom."):
                key = name.removeprefix("custom.")
                exprs.append(_postgres_custom_expr("custom", key, "text"))
                parts.append(f"custom_{key}")
            else:
                exprs.append(repo._column_expr(name))
                parts.append(name)
        index = _index_name(codec.table, parts)
        indexes = [(index, exprs)]
        if len(fields) == 1 and fields[0].startswith("custom."):
            key = fields[0].removeprefix("custom.")
            number = _postgres_custom_expr("custom", key, "number")
            indexes.append((_index_name(codec.table, [*parts, "num"]), [number]))
        s = _q(self._schema)
        doing = f"creating index {index}"
        with self._atomic(_READ_COMMITTED):
            try:
                with self._use() as conn:
                    cur = psycopg.Cursor(conn)
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self._schema),))
                    for name, columns in indexes:
                        cur.execute(
                            f"CREATE INDEX IF NOT EXISTS {_q(name)} ON {repo._table} "
                            f"({', '.join(f'({c})' for c in columns)})"
                        )
                    cur.execute(
                        f'INSERT INTO {s}."crmkit_indexes" (name, record_type, fields) '
                        "VALUES (%s, %s, %s) ON CONFLICT (name) DO NOTHING",
                        (index, codec.name, json.dumps(list(fields))),
                    )
            except psycopg.Error as err:
                raise self._error(doing, err) from err
        return fields

    def indexes(self, record_type: type[Any]) -> list[tuple[str, ...]]:
        """The field lists declared with :meth:`ensure_index` for ``record_type``."""
        codec = self.repository(record_type)._codec
        try:
            with self._use() as conn:
                rows = (
                    psycopg.Cursor(conn, row_factory=tuple_row)
                    .execute(
                        f'SELECT fields FROM {_q(self._schema)}."crmkit_indexes" '
                        "WHERE record_type = %s ORDER BY name",
                        (codec.name,),
                    )
                    .fetchall()
                )
        except psycopg.Error as err:
            raise self._error(f"listing the indexes of {codec.table}", err) from err
        return [tuple(row[0]) for row in rows]

    # -- closing --

    def close(self) -> None:
        """Close the pool (open transactions are rolled back); a host-owned connection is
        left open. Idempotent."""
        with self._lock:
            self._closed = True
            if self._pool is not None:
                self._finalizer()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
