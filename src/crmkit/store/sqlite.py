"""SQLiteStore: a durable store in one SQLite file (stdlib ``sqlite3`` only).

It keeps the same contract as :class:`~crmkit.store.MemoryStore` (see
``crmkit.store._base``) and raises the same errors; anything ``sqlite3`` itself raises is
turned into a :class:`~crmkit.errors.StorageError` that says what was being done.

How records are stored:

- one table per record type (``accounts``, ``activities`` ...), one column per field;
- text and enums as ``TEXT``, whole numbers as ``INTEGER``, floats as ``REAL``, booleans
  as ``INTEGER`` 0/1, datetimes as ``INTEGER`` microseconds since the epoch (UTC), dates
  as ISO ``TEXT``;
- money as ``REAL`` (for criteria and ordering) plus a ``<field>__decimal`` ``TEXT``
  column holding the exact ``Decimal``, so nothing is rounded;
- ``custom`` as a JSON object (criteria read it with ``json_extract``), tags as a JSON
  list, times of day as ISO text, and the other structured fields (routing criteria,
  weekdays) as JSON that keeps tuples, decimals and datetimes exact.

Files are opened in WAL mode with ``synchronous=NORMAL`` (a committed transaction survives
a crash of the program; a power cut may lose the last few). Write transactions start with
``BEGIN IMMEDIATE`` and nest through savepoints. The file's layout is versioned with
``PRAGMA user_version`` and upgraded by numbered migrations when it is opened.

Examples
--------
>>> from decimal import Decimal
>>> from crmkit.records import Account
>>> store = SQLiteStore(":memory:")
>>> acme = store.accounts.add(Account(id="a1", name="Acme", annual_revenue=Decimal("1.10")))
>>> store.accounts.get("a1") == acme, acme.version
(True, 1)
>>> store.accounts.get("a1").annual_revenue
Decimal('1.10')
>>> with store.transaction():
...     _ = store.accounts.add(Account(id="a2", name="Globex", country="US"))
>>> [a.id for a in store.accounts.query({"field": "country", "op": "==", "value": "US"})]
['a2']
>>> store.close()
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from operator import itemgetter
from time import monotonic, sleep
from typing import Any, Generic, TypeVar

import attrs
import numpy as np

from crmkit._columns import column_from_values, field_kind
from crmkit._fields import check_state
from crmkit._schema import FieldInfo, plural, schema_of
from crmkit.criteria import BoundCriteria
from crmkit.errors import (
    AlreadyExists,
    BatchError,
    ConflictError,
    CrmError,
    NotFound,
    StorageError,
    TransactionConflict,
    ValidationError,
)
from crmkit.records import (
    RECORD_TYPES,
    Merge,
)
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
    order_key,
    patch_fields,
    patch_record,
    paused_gc,
    raise_batch_problems,
    storable_id,
    version_copier,
)
from crmkit.store._columnar import (
    AddsColumns,
    patch_through_patch_many,
    patches_from_columns,
    proven_columns,
)
from crmkit.store._events import EmitsChanges, Outbox, events_setting

__all__ = ["SQLiteRepository", "SQLiteStore"]

T = TypeVar("T")

_log = logging.getLogger("crmkit.store")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_NAT = -(2**63)  # numpy's NaT as int64
_INT64 = (-(2**63), 2**63 - 1)
_STATE_TABLE = "crmkit_state"
_EVENTS_TABLE = "crmkit_events"
_EVENT_COLUMNS = "position, kind, name, record_id, operation, version, fields, payload, actor, at"
_DECIMAL_SUFFIX = "__decimal"
_first = itemgetter(0)
_BULK_FROM = 10_000  # add_many of this many rows into an empty table sets its indexes aside

#: fields worth an index wherever a record type has them (lookups, joins, common filters)
_INDEXED = (
    "owner_id",
    "account_id",
    "contact_id",
    "lead_id",
    "opportunity_id",
    "parent_id",
    "model_id",
    "territory_id",
    "manager_id",
    "record_id",
    "status",
    "stage",
    "at",
    "due_at",
    "close_date",
    "country",
    "email",
    "domain",
    "sender_domain",
    "snoozed_until",
    "next_due_at",
    "campaign_id",
    "partner_id",
    "cadence_id",
)
#: composite indexes for the queries a record type is known for
_EXTRA_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "Activity": (("account_id", "at"), ("contact_id", "at"), ("lead_id", "at")),
    "RoutingRule": (("rule_set", "position"),),
}
_SKIP_SINGLE: dict[str, frozenset[str]] = {
    "Activity": frozenset({"account_id", "contact_id", "lead_id"}),
}


def _json_codec() -> tuple[Callable[[Any], str], Callable[[str], Any]]:
    """Fast JSON for the per-row hot path (custom fields, tags): the C encoder and
    scanner ``json`` itself uses, without the per-call setup of ``dumps``/``loads``."""
    from json import decoder, encoder

    scan: Any = getattr(decoder.JSONDecoder(), "scan_once")  # noqa: B009 - untyped

    def loads(text: str) -> Any:
        return scan(text, 0)[0]

    make: Any = getattr(encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - Pythons without the C accelerator
        return json.dumps, loads
    chunks = make(
        None, None, encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )

    def dumps(value: Any) -> str:
        return "".join(chunks(value, 0))

    return dumps, loads


_dumps, _loads = _json_codec()


def _q(name: str) -> str:
    """Quote an identifier (names come from record schemas, never from input)."""
    return '"' + name.replace('"', '""') + '"'


# -- JSON for structured fields ---------------------------------------------------------


class _Unstorable(Exception):
    pass


def _tree(value: Any) -> Any:
    """``value`` as JSON-able data that decodes back to an equal value (see ``_untree``)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple):
        return {"$tuple": [_tree(v) for v in value]}
    if isinstance(value, list):
        return [_tree(v) for v in value]
    if isinstance(value, Mapping):
        items = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Unstorable(f"mapping keys must be text, not {key!r}")
            items[key] = _tree(item)
        return {"$dict": items} if any(k.startswith("$") for k in items) else items
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    from crmkit.criteria import Criteria

    if isinstance(value, Criteria):
        return {"$criteria": value.to_dict()}
    raise _Unstorable(f"cannot store a {type(value).__name__} ({value!r}) as JSON")


_TAGS: dict[str, Callable[[Any], Any]] = {
    "$tuple": lambda v: tuple(_untree(i) for i in v),
    "$dict": lambda v: {k: _untree(i) for k, i in v.items()},
    "$decimal": Decimal,
    "$datetime": datetime.fromisoformat,
    "$date": date.fromisoformat,
    "$time": time.fromisoformat,
}


def _untree(data: Any) -> Any:
    if isinstance(data, list):
        return [_untree(v) for v in data]
    if isinstance(data, dict):
        if len(data) == 1:
            ((key, inner),) = data.items()
            if key in _TAGS:
                return _TAGS[key](inner)
            if key == "$criteria":
                from crmkit.criteria import parse

                return parse(inner)
        return {k: _untree(v) for k, v in data.items()}
    return data


def _tree_dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(_tree(value))


def _tree_loads(text: str | None) -> Any:
    return None if text is None else _untree(json.loads(text))


# -- per-type codecs ----------------------------------------------------------------------


@attrs.frozen
class _Column:
    name: str
    sql_type: str


class _Codec:
    """Columns, SQL and compiled row encoder/decoder of one record type."""

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
        self.columns = _table_columns(self.fields)
        self.column_names = [c.name for c in self.columns]
        self.encode: Callable[[Any, int], tuple[Any, ...]]
        self.decode: Callable[[Sequence[Any]], Any]
        #: field name -> (its columns, an encoder of its value to those columns)
        self.field_codecs: dict[str, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]]
        self._patch_sql: dict[tuple[tuple[str, ...], bool, bool, str], str] = {}
        self.with_version = version_copier(record_type)
        self._compile()
        # SQL, built once so sqlite3's statement cache reuses the prepared statements
        t = _q(self.table)
        names = ", ".join(_q(c) for c in self.column_names)
        marks = ", ".join("?" * len(self.column_names))
        self.select_list = ", ".join(
            _q(info.name + _DECIMAL_SUFFIX) if info.kind == "money" else _q(info.name)
            for info in self.fields
        )
        self.sql_get = f"SELECT {self.select_list} FROM {t} WHERE id = ?"
        self.sql_exists = f"SELECT 1 FROM {t} WHERE id = ?"
        self.sql_any = f"SELECT 1 FROM {t} LIMIT 1"
        self.sql_version = f"SELECT version FROM {t} WHERE id = ?"
        self.sql_count = f"SELECT COUNT(*) FROM {t}"
        self.sql_insert = f"INSERT INTO {t} ({names}) VALUES ({marks})"
        sets = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in self.column_names[1:-1])
        self.sql_upsert = (
            f"{self.sql_insert} ON CONFLICT(id) DO UPDATE SET {sets}, version = excluded.version"
        )
        self.sql_put = (
            f"{self.sql_insert} ON CONFLICT(id) DO UPDATE SET {sets}, "
            f"version = {t}.version + 1 RETURNING version"
        )
        assigns = ", ".join(f"{_q(c)} = ?" for c in self.column_names[1:])
        self.sql_update = f"UPDATE {t} SET {assigns} WHERE id = ? AND version = ?"
        self.sql_delete = f"DELETE FROM {t} WHERE id = ?"
        self.sql_delete_version = f"DELETE FROM {t} WHERE id = ? AND version = ?"
        self.sql_ids_in = f"SELECT id FROM {t} WHERE id IN (SELECT value FROM json_each(?))"
        self.sql_versions_in = (
            f"SELECT id, version FROM {t} WHERE id IN (SELECT value FROM json_each(?))"
        )

    def _compile(self) -> None:
        """Generate this type's row encoder and decoder.

        The generated source is built only from the record class's own attrs field names
        and kinds (never from data or user input), the same technique attrs uses for
        ``__init__``; it removes a per-field Python loop from every row read and written.
        """
        ns: dict[str, Any] = {
            "_cls": self.record_type,
            "_new": object.__new__,
            "_EPOCH": _EPOCH,
            "_US": _US,
            "_dumps": _dumps,
            "_loads": _loads,
            "_tree_dumps": _tree_dumps,
            "_tree_loads": _tree_loads,
            "_Decimal": Decimal,
            "_date": date.fromisoformat,
            "_time": time.fromisoformat,
            "_tuple": tuple,
            "_bool": bool,
            "_float": float,
            "_str": str,
        }
        enc: list[str] = []
        dec: list[str] = []
        for i, info in enumerate(self.fields):
            n = info.name
            setter = f"_s_{n}"
            ns[setter] = self.record_type.__dict__[n].__set__
            enc.extend(_encode_exprs(info, f"r.{n}"))
            dec.append(f"    {setter}(o, {_decode_expr(info, f'row[{i}]', ns)})")
        enc[-1] = "version"  # the version column is written by the store
        source = (
            "def encode(r, version):\n"
            f"    return ({', '.join(enc)},)\n"
            "def decode(row):\n"
            "    o = _new(_cls)\n" + "\n".join(dec) + "\n    return o\n"
        )
        for info in self.fields[1:-1]:
            exprs = _encode_exprs(info, "value")
            source += f"def enc_{info.name}(value):\n    return ({', '.join(exprs)},)\n"
        exec(compile(source, f"<crmkit sqlite codec {self.name}>", "exec"), ns)
        self.encode = ns["encode"]
        self.decode = ns["decode"]
        self.field_codecs = {
            info.name: (
                (info.name, info.name + _DECIMAL_SUFFIX) if info.kind == "money" else (info.name,),
                ns[f"enc_{info.name}"],
            )
            for info in self.fields[1:-1]
        }

    def patch_sql(
        self, fields: tuple[str, ...], *, checked: bool, returning: bool, condition: str = ""
    ) -> str:
        """``UPDATE`` of only the columns of ``fields`` (and the version), built once;
        ``condition`` is compiled criteria the row must also match (its parameters follow
        the id and the version)."""
        key = (fields, checked, returning, condition)
        sql = self._patch_sql.get(key)
        if sql is None:
            columns = [c for f in fields for c in self.field_codecs[f][0]]
            sets = ", ".join(f"{_q(c)} = ?" for c in columns)
            sql = f"UPDATE {_q(self.table)} SET {sets}, version = version + 1 WHERE id = ?"
            sql += " AND version = ?" if checked else ""
            sql += f" AND ({condition})" if condition else ""
            sql += f" RETURNING {self.select_list}" if returning else ""
            if len(self._patch_sql) >= 512:
                self._patch_sql.clear()
            self._patch_sql[key] = sql
        return sql

    def encode_patch(self, probe: Any, fields: tuple[str, ...]) -> list[Any]:
        """The column values of ``fields`` taken from ``probe``, in :meth:`patch_sql` order."""
        values: list[Any] = []
        for name in fields:
            values.extend(self.field_codecs[name][1](getattr(probe, name)))
        return values

    def encoding_problems(self, record: Any) -> list[tuple[str, Any, str]]:
        """Why a record cannot be written (only called after sqlite3 refused it)."""
        problems: list[tuple[str, Any, str]] = []
        for info in self.fields:
            value = getattr(record, info.name)
            if info.kind == "int" and isinstance(value, int):
                if not _INT64[0] <= value <= _INT64[1]:
                    problems.append(
                        (info.name, value, "does not fit in a 64-bit integer (SQLite's limit)")
                    )
            elif info.kind in ("text", "enum") and isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    problems.append((info.name, value, "is not valid Unicode text"))
            elif info.kind == "json":
                try:
                    _tree(value)
                except _Unstorable as err:
                    problems.append((info.name, value, str(err)))
        return problems

    def check_encodable(self, record: Any) -> None:
        for name, value, reason in self.encoding_problems(record):
            raise ValidationError(self.name, name, value, reason, record_id=record.id)


def _table_columns(fields: Sequence[FieldInfo]) -> list[_Column]:
    columns = []
    for info in fields:
        kind = info.kind
        if info.name == "id":
            columns.append(_Column("id", "TEXT PRIMARY KEY NOT NULL"))
        elif kind == "money":
            columns.append(_Column(info.name, "REAL"))
            columns.append(_Column(info.name + _DECIMAL_SUFFIX, "TEXT"))
        elif kind in ("int", "datetime", "bool"):
            columns.append(_Column(info.name, "INTEGER"))
        elif kind == "float":
            columns.append(_Column(info.name, "REAL"))
        else:  # text, enum, date, custom, tags, json, time
            columns.append(_Column(info.name, "TEXT"))
    return columns


def _encode_exprs(info: FieldInfo, v: str) -> list[str]:
    kind = info.kind
    if kind in ("text", "int", "float", "bool"):
        return [v]
    if kind == "enum":
        return [f"(None if (x := {v}) is None else x._value_)"]
    if kind == "money":
        return [f"(None if (x := {v}) is None else _float(x))", "(None if x is None else _str(x))"]
    if kind == "datetime":
        return [f"(None if (x := {v}) is None else (x - _EPOCH) // _US)"]
    if kind in ("date", "time"):
        return [f"(None if (x := {v}) is None else x.isoformat())"]
    if kind == "custom":
        return [f"(_dumps(x) if (x := {v}) else '{{}}')"]
    if kind == "tags":
        return [f"_dumps({v})"]
    return [f"_tree_dumps({v})"]  # json


def _decode_expr(info: FieldInfo, c: str, ns: dict[str, Any]) -> str:
    kind = info.kind
    if kind in ("text", "int", "float"):
        return c
    if kind == "enum":
        assert info.enum is not None
        table = f"_E_{info.name}"
        ns[table] = {str(m.value): m for m in info.enum}
        return f"(None if (x := {c}) is None else {table}[x])"
    if kind == "bool":
        return f"_bool({c})"
    if kind == "money":
        return f"(None if (x := {c}) is None else _Decimal(x))"
    if kind == "datetime":
        return f"(None if (x := {c}) is None else _EPOCH + _US * x)"
    if kind == "date":
        return f"(None if (x := {c}) is None else _date(x))"
    if kind == "time":
        return f"(None if (x := {c}) is None else _time(x))"
    if kind == "custom":
        return f"({{}} if (x := {c}) == '{{}}' else _loads(x))"
    if kind == "tags":
        return f"_tuple(_loads({c}))"
    return f"_tree_loads({c})"  # json


_CODECS: dict[type[Any], _Codec] = {}


def _codec(record_type: type[Any]) -> _Codec:
    codec = _CODECS.get(record_type)
    if codec is None:
        codec = _CODECS[record_type] = _Codec(record_type)
    return codec


# -- migrations ---------------------------------------------------------------------------


def _create_table(conn: sqlite3.Connection, record_type: type[Any]) -> None:
    """The table of one record type with its indexes, as the record is defined now."""
    codec = _codec(record_type)
    table = codec.table
    body = ", ".join(f"{_q(c.name)} {c.sql_type}" for c in codec.columns)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {_q(table)} ({body})")
    skip = _SKIP_SINGLE.get(codec.name, frozenset())
    groups: list[tuple[str, ...]] = [
        (name,) for name in _INDEXED if name in codec.kinds and name not in skip
    ]
    groups += [g for g in _EXTRA_INDEXES.get(codec.name, ()) if all(n in codec.kinds for n in g)]
    for group in groups:
        index = _q(f"ix_{table}_{'_'.join(group)}")
        columns = ", ".join(_q(n) for n in group)
        conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {_q(table)} ({columns})")


_V1_TYPES = (
    "Account",
    "Contact",
    "Lead",
    "Opportunity",
    "Activity",
    "Rep",
    "Team",
    "Territory",
    "Reminder",
    "OwnershipChange",
    "StageChange",
    "LifecycleChange",
    "TerritoryModel",
    "RoutingRule",
    "Inquiry",
    "HierarchyChange",
    "Cadence",
    "Enrollment",
    "Campaign",
    "CampaignMember",
    "Partner",
    "DealRegistration",
)


def _migration_1(conn: sqlite3.Connection) -> None:
    """Every record table of crmkit 0.1 and the state documents."""
    by_name = {t.__name__: t for t in RECORD_TYPES}
    for name in _V1_TYPES:
        _create_table(conn, by_name[name])
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_q(_STATE_TABLE)} "
        "(name TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL)"
    )


def _migration_2(conn: sqlite3.Connection) -> None:
    """An index on reminders ``(status, snoozed_until, due_at)``: the due and next-due
    queries then read only open reminders in due order, whatever the history of done
    ones (the due query at 1e5 reminders went from about 20 ms to 1 ms)."""
    conn.execute(
        "CREATE INDEX IF NOT EXISTS ix_reminders_status_snoozed_until_due_at "
        "ON reminders (status, snoozed_until, due_at)"
    )


#: Migration ``n`` (1-based) brings a file from ``user_version`` n-1 to n. Append, never
#: edit: a new record type gets ``lambda conn: _create_table(conn, NewType)``, a new field
#: an ``ALTER TABLE ... ADD COLUMN``.
def _migration_3(conn: sqlite3.Connection) -> None:
    """The table of merge history (``crmkit.dedupe``)."""
    _create_table(conn, Merge)


def _migration_4(conn: sqlite3.Connection) -> None:
    """The outbox of change and domain events (``crmkit.events``): ``position`` counts up
    and is never reused (``AUTOINCREMENT``); ``at`` is microseconds since the epoch."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_EVENTS_TABLE} ("
        "position INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT NOT NULL, "
        "record_id TEXT, operation TEXT, version INTEGER, fields TEXT, payload TEXT, "
        "actor TEXT, at INTEGER NOT NULL)"
    )


_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
)
SCHEMA_VERSION = len(_MIGRATIONS)


def _hint(err: BaseException) -> str:
    text = str(err).lower()
    if "locked" in text or "busy" in text:
        return "another connection holds the write lock; retry, or keep transactions short"
    if "full" in text:
        return "the disk is full; free some space and retry"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return "the file is not a crmkit SQLite database or it is corrupted"
    if "unable to open" in text:
        return "check that the path names a file in an existing, writable directory"
    if "readonly" in text or "read-only" in text:
        return "the file or its directory is read-only"
    if "closed" in text:
        return "the store was closed; open a new SQLiteStore"
    if "disk i/o" in text:
        return "the operating system reported an I/O error"
    return ""


# -- the repository -----------------------------------------------------------------------

#: bound criteria -> their ``WHERE`` clause and parameters (SQLite's column encodings are
#: the same in every store, so one cache serves all)
_WHERE: dict[BoundCriteria, tuple[str, tuple[Any, ...]]] = {}


class SQLiteRepository(AddsColumns, Generic[T]):
    """The records of one type in a :class:`SQLiteStore`."""

    def __init__(self, store: SQLiteStore, record_type: type[T]) -> None:
        self._store = store
        self._type = record_type
        self._codec = _codec(record_type)
        self._name = self._codec.name
        self._orders: dict[Any, tuple[str, tuple[Any, ...]]] = {}
        self._plans: dict[Any, tuple[str, tuple[Any, ...]]] = {}
        # the record last read inside a write transaction, with that transaction's serial:
        # a patch of it in the same transaction computes the new record instead of
        # reading it back (nothing else can write the row while the transaction holds
        # the write lock)
        self._read: tuple[int, Any] | None = None

    def __repr__(self) -> str:
        return f"<SQLiteRepository {self._codec.table}>"

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
        store = self._store
        try:
            with store._lock:
                row = store._conn.execute(self._codec.sql_get, (record_id,)).fetchone()
        except sqlite3.Error as err:
            raise store._error(f"reading {self._name} {record_id!r}", err) from err
        if row is None:
            return None
        record = self._decode(row)
        if store._depth and store._owner == threading.get_ident():
            self._read = (store._serial, record)
        return record

    def _held(self, record_id: str, expected_version: int | None) -> Any:
        """The record read earlier in the current transaction, if it is ``record_id`` at
        ``expected_version`` (so the stored row is exactly it), else None."""
        read, store = self._read, self._store
        if read is None or expected_version is None or not store._depth:
            return None
        serial, record = read
        if (
            serial != store._serial
            or record.id != record_id
            or record.version != expected_version
            or store._owner != threading.get_ident()
        ):
            return None
        return record

    def _decode(self, row: Sequence[Any]) -> T:
        try:
            record: T = self._codec.decode(row)
        except Exception as err:
            raise StorageError(
                f"SQLite store {self._store._label}: a stored {self._name} row "
                f"(id {row[0]!r}) cannot be read back; the file was changed outside crmkit "
                f"or is corrupted: {err!r}"
            ) from err
        return record

    def _rows(self, sql: str, params: Sequence[Any], doing: str) -> list[Any]:
        store = self._store
        try:
            with store._lock:
                return store._conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise store._error(doing, err) from err

    def __iter__(self) -> Iterator[T]:
        rows = self._rows(
            f"SELECT {self._codec.select_list} FROM {_q(self._codec.table)} ORDER BY id",
            (),
            f"reading {self._codec.table}",
        )
        return iter([self._decode(row) for row in rows])

    def __len__(self) -> int:
        rows = self._rows(self._codec.sql_count, (), f"counting {self._codec.table}")
        return int(rows[0][0])

    def __contains__(self, record_id: object) -> bool:
        if not storable_id(record_id):
            return False
        rows = self._rows(
            self._codec.sql_exists, (record_id,), f"looking up {self._name} {record_id!r}"
        )
        return bool(rows)

    def _where(self, criteria: CriteriaLike) -> tuple[str, list[Any]]:
        test = bound(criteria, self._type)
        known = _WHERE.get(test)  # bound criteria are cached, so a repeated query finds it
        if known is not None:
            return known[0], list(known[1])
        params: list[Any] = []
        if test.matches_everything:
            where = ""
        else:
            sql, params = test.to_sql(self._criteria_column)
            where = f" WHERE {sql}"
        if len(_WHERE) >= 512:
            _WHERE.clear()
        _WHERE[test] = (where, tuple(params))
        return where, params

    def _criteria_column(self, name: str) -> str:
        # criteria compare numbers as float64; an INTEGER column compared with a REAL
        # parameter would be exact in SQLite and disagree beyond 2**53
        if self._codec.kinds.get(name) == "int":
            return f"CAST({_q(name)} AS REAL)"
        return _q(name)

    def _order(self, order_by: str | Sequence[str]) -> tuple[str, list[Any]]:
        key = order_by if isinstance(order_by, str) else order_key(order_by)
        known = self._orders.get(key) if key is not None else None
        if known is not None:
            return known[0], list(known[1])
        sql, params = self._order_sql(order_by)
        if key is not None:
            if len(self._orders) >= 256:
                self._orders.clear()
            self._orders[key] = (sql, tuple(params))
        return sql, params

    def _order_sql(self, order_by: str | Sequence[str]) -> tuple[str, list[Any]]:
        terms: list[str] = []
        params: list[Any] = []
        for name, descending in order_fields(self._type, order_by):
            if name.startswith("custom."):
                path = '$."' + name.removeprefix("custom.") + '"'
                # numbers (and true/false) order as floats, like MemoryStore's sort key
                expr = (
                    "CASE json_type(custom, ?) WHEN 'integer' "
                    "THEN CAST(json_extract(custom, ?) AS REAL) ELSE json_extract(custom, ?) END"
                )
                params.extend([path, path, path])
            elif self._codec.kinds[name] == "int":
                expr = f"CAST({_q(name)} AS REAL)"
            else:
                expr = _q(name)
            terms.append(f"{expr} {'DESC' if descending else 'ASC'}")
        terms.append("id ASC")
        return " ORDER BY " + ", ".join(terms), params

    def query(
        self,
        criteria: CriteriaLike = None,
        *,
        order_by: str | Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[T]:
        """Matching records, ordered (see the store contract), paged by ``limit``/``offset``."""
        test = bound(criteria, self._type)
        check_page(limit, offset)
        paged = limit is not None or offset != 0
        okey = order_by if isinstance(order_by, str) else order_key(order_by)
        # id order, unpaged: sorted here (a C sort of the rows' ids) rather than by
        # SQLite's sorter, which spills a large result to temporary storage
        by_id = okey == () and not paged
        # the statement and its fixed parameters, built once per (criteria, order, paging)
        key = (test, okey, paged)
        plan = self._plans.get(key) if okey is not None else None
        if plan is None:
            where, params = self._where(test)
            order, order_params = ("", []) if by_id else self._order(order_by)
            sql = f"SELECT {self._codec.select_list} FROM {_q(self._codec.table)}{where}{order}"
            if paged:
                sql += " LIMIT ? OFFSET ?"
            plan = (sql, (*params, *order_params))
            if okey is not None:
                if len(self._plans) >= 256:
                    self._plans.clear()
                self._plans[key] = plan
        sql, fixed = plan
        values = (*fixed, -1 if limit is None else limit, offset) if paged else fixed
        rows = self._rows(sql, values, f"querying {self._codec.table}")
        if by_id:
            rows.sort(key=_first)  # text ids: code point order is SQLite's byte order
        decode = self._decode
        with paused_gc(len(rows)):
            return [decode(row) for row in rows]

    def count(self, criteria: CriteriaLike = None) -> int:
        where, params = self._where(criteria)
        rows = self._rows(self._codec.sql_count + where, params, f"counting {self._codec.table}")
        return int(rows[0][0])

    def columns(
        self, fields: Sequence[str], criteria: CriteriaLike = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """The named fields of the matching records (in id order) as numpy columns.

        Built from SQL rows without making record objects; the arrays are the ones
        :func:`crmkit._columns.columns_of` makes from the records.
        """
        if isinstance(fields, str):
            fields = [fields]
        kinds = [field_kind(self._type, name) for name in fields]
        where, params = self._where(criteria)
        exprs: list[str] = []
        select_params: list[Any] = []
        for name, kind in zip(fields, kinds, strict=True):
            if kind == "custom":
                exprs.append("custom -> ?")
                select_params.append('$."' + name.removeprefix("custom.") + '"')
            elif kind in ("text", "enum"):
                exprs.append(f"IFNULL({_q(name)}, '')")
            elif kind == "datetime":
                exprs.append(f"IFNULL({_q(name)}, {_NAT})")
            elif kind == "date":
                exprs.append(f"IFNULL({_q(name)}, 'NaT')")
            else:
                exprs.append(_q(name))
        result: dict[str, np.ndarray[Any, Any]] = {}
        if not exprs:
            return result
        sql = f"SELECT {', '.join(exprs)} FROM {_q(self._codec.table)}{where} ORDER BY id"
        rows = self._rows(sql, select_params + params, f"reading columns of {self._codec.table}")
        values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else []
        for i, (name, kind) in enumerate(zip(fields, kinds, strict=True)):
            raw: Sequence[Any] = values[i] if values else ()
            result[name] = self._column(name, kind, raw)
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
            return np.array(raw, dtype="datetime64[D]")
        if kind == "custom":
            loads = _loads
            return column_from_values(kind, [None if v is None else loads(v) for v in raw])
        info = self._codec.schema.field(name)  # tags, json, time: Python objects
        return column_from_values(kind, [_decode_one(info, v) for v in raw])

    # -- writes --

    def add(self, record: T) -> T:
        check_type(self._type, record)
        new: Any = record
        codec = self._codec
        store = self._store
        with store._lock:
            try:
                store._conn.execute(codec.sql_insert, codec.encode(new, 1))
            except sqlite3.IntegrityError as err:
                if new.id in self:
                    raise AlreadyExists(self._name, new.id) from None
                raise store._error(f"adding {self._name} {new.id!r}", err) from err
            except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
                codec.check_encodable(new)
                raise store._error(f"adding {self._name} {new.id!r}", err) from err
            except sqlite3.Error as err:
                raise store._error(f"adding {self._name} {new.id!r}", err) from err
        stored: T = codec.with_version(new, 1)
        return stored

    def put(self, record: T) -> T:
        check_type(self._type, record)
        new: Any = record
        codec = self._codec
        store = self._store
        with store._lock:
            try:
                rows = store._conn.execute(codec.sql_put, codec.encode(new, 1)).fetchall()
            except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
                codec.check_encodable(new)
                raise store._error(f"putting {self._name} {new.id!r}", err) from err
            except sqlite3.Error as err:
                raise store._error(f"putting {self._name} {new.id!r}", err) from err
        stored: T = codec.with_version(new, int(rows[0][0]))
        return stored

    def update(self, record: T, *, expected_version: int | None = None) -> T:
        check_type(self._type, record)
        new: Any = record
        expected: int = new.version if expected_version is None else expected_version
        codec = self._codec
        store = self._store
        doing = f"updating {self._name} {new.id!r}"
        with store._lock:
            try:
                encoded = codec.encode(new, expected + 1)
                cursor = store._conn.execute(codec.sql_update, (*encoded[1:], new.id, expected))
                if cursor.rowcount == 0:
                    rows = store._conn.execute(codec.sql_version, (new.id,)).fetchall()
                    if not rows:
                        raise NotFound(self._name, new.id)
                    raise ConflictError(self._name, new.id, expected, int(rows[0][0]))
            except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
                codec.check_encodable(new)
                raise store._error(doing, err) from err
            except sqlite3.Error as err:
                raise store._error(doing, err) from err
        stored: T = codec.with_version(new, expected + 1)
        return stored

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
        ``where`` criteria are compiled into the same ``UPDATE`` (``... AND <criteria>``),
        so checking them and writing is one statement.
        """
        changes = patch_fields(self._type, record_id, fields)
        test: BoundCriteria | None = None  # ``where``, bound and compiled
        condition, condition_params = "", list[Any]()
        if where is not None:
            test = bound(where, self._type)
            condition, condition_params = self._where(test)
            condition = condition.removeprefix(" WHERE ")
        held = self._held(record_id, expected_version)
        if held is not None and test is None:
            return self._patch_held(held, changes)
        probe = convert_patch(self._type, record_id, changes)
        if probe is None:
            with self._store.transaction():
                old: Any = self.get(record_id)
                if expected_version is not None and old.version != expected_version:
                    raise ConflictError(self._name, record_id, expected_version, old.version)
                probe = patch_record(old, changes)
                expected_version = old.version
        codec, store = self._codec, self._store
        names = tuple(changes)
        checked = expected_version is not None
        sql = codec.patch_sql(names, checked=checked, returning=True, condition=condition)
        params = codec.encode_patch(probe, names)
        params.append(record_id)
        if checked:
            params.append(expected_version)
        if condition:
            params.extend(condition_params)
        doing = f"patching {self._name} {record_id!r}"
        with store._lock:
            try:
                rows = store._conn.execute(sql, params).fetchall()
                if not rows:
                    found = store._conn.execute(codec.sql_version, (record_id,)).fetchall()
                    if not found:
                        raise NotFound(self._name, record_id)
                    version = int(found[0][0])
                    if expected_version is not None and version != expected_version:
                        raise ConflictError(self._name, record_id, expected_version, version)
                    assert test is not None
                    raise condition_failed(self._name, record_id, test, version)
            except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
                raise store._error(doing, err) from err
            except sqlite3.Error as err:
                raise store._error(doing, err) from err
        return self._decode(rows[0])

    def _patch_held(self, old: Any, changes: dict[str, Any]) -> T:
        """Patch a record this transaction has read: the new record is computed, and the
        ``UPDATE`` (still checked on the version) returns nothing to decode."""
        new: Any = patch_record(old, changes, old.version + 1)
        codec, store = self._codec, self._store
        names = tuple(changes)
        params = codec.encode_patch(new, names)
        params += (old.id, old.version)
        doing = f"patching {self._name} {old.id!r}"
        with store._lock:
            try:
                cursor = store._conn.execute(
                    codec.patch_sql(names, checked=True, returning=False), params
                )
                if cursor.rowcount == 0:
                    found = store._conn.execute(codec.sql_version, (old.id,)).fetchall()
                    if not found:
                        raise NotFound(self._name, old.id)
                    raise ConflictError(self._name, old.id, old.version, found[0][0])
            except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
                raise store._error(doing, err) from err
            except sqlite3.Error as err:
                raise store._error(doing, err) from err
        self._read = (store._serial, new)
        stored: T = new
        return stored

    def _get_many(self, ids: Iterable[Any]) -> dict[str, T]:
        """The stored records among ``ids``, read in one query."""
        wanted = [i for i in ids if isinstance(i, str)]
        sql = f"SELECT {self._codec.select_list} FROM {_q(self._codec.table)} "
        sql += "WHERE id IN (SELECT value FROM json_each(?))"
        rows = self._rows(sql, [json.dumps(wanted)], f"reading {plural(self._type)}")
        found: dict[str, T] = {}
        for row in rows:
            found[row[0]] = self._decode(row)
        return found

    def patch_many(
        self,
        changes: Mapping[str, Mapping[str, Any]],
        *,
        expected_versions: Mapping[str, int] | None = None,
        where: CriteriaLike = None,
    ) -> list[T]:
        """Patch every record or none (one ``UPDATE`` per set of changed fields); a bad
        entry raises ``BatchError`` listing them all and nothing is written. ``where`` is
        checked on the records read inside the transaction, which holds the write lock."""
        store, codec = self._store, self._codec
        size = len(changes) if isinstance(changes, Mapping) else 0
        with store.transaction():
            with paused_gc(size):  # reads and patches a record per entry
                stored = self._get_many(changes) if size else {}
                pairs = check_patches(self._type, changes, expected_versions, stored, where)
            groups = group_patches(pairs, changes, codec.encode_patch)
            doing = f"patching {len(pairs)} {plural(self._type)}"
            try:
                with store._lock:
                    for names, rows in groups.items():
                        sql = codec.patch_sql(names, checked=True, returning=False)
                        store._conn.executemany(sql, rows)
            except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
                raise store._error(doing, err) from err
            except sqlite3.Error as err:
                raise store._error(doing, err) from err
        return [new for _, new in pairs]  # check_patches stamped the next version

    def patch_columns(self, columns: Any, *, expected_versions: Any = None) -> int:
        """``patch_columns`` (see :class:`~crmkit.store._columnar.AddsColumns`): when numpy
        proves the values valid, one ``executemany`` of ``UPDATE ... WHERE id = ?`` and no
        record read or decoded. With ``expected_versions`` the stored versions are read
        first (ids and versions only); without, ids are looked up only when fewer rows
        changed than were given."""
        patches = patches_from_columns(self._type, columns, expected_versions)
        ids, names, versions = patches.ids, patches.names, patches.versions
        values = proven_columns(self._type, patches) if ids else None
        if values is None or (versions is not None and len(versions) != len(ids)):
            return patch_through_patch_many(self, patches)
        store, codec = self._store, self._codec
        encoded: list[tuple[Any, ...]] = []
        for name, column in zip(names, values, strict=True):
            encoded.extend(zip(*map(codec.field_codecs[name][1], column), strict=True))
        rows = list(zip(*encoded, ids, strict=True))
        sql = codec.patch_sql(tuple(names), checked=False, returning=False)
        doing = f"patching {len(ids)} {plural(self._type)}"
        with store.transaction(), store._lock:
            try:
                if versions is not None:
                    self._check_stored(ids, versions)
                if store._conn.executemany(sql, rows).rowcount != len(ids):
                    self._check_stored(ids, None)
                    raise StorageError(f"SQLite store {store._label}: {doing} changed fewer rows")
            except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
                raise store._error(doing, err) from err
            except sqlite3.Error as err:
                raise store._error(doing, err) from err
        return len(ids)

    def _check_stored(self, ids: list[str], versions: dict[str, int] | None) -> None:
        """Raise a ``BatchError`` naming each id not stored (``NotFound``) or, with
        ``versions``, not at its expected version (``ConflictError``)."""
        stored: dict[str, int] = {}
        conn, table = self._store._conn, _q(self._codec.table)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT id, version FROM {table} WHERE id IN ({marks})"
            stored.update(conn.execute(sql, chunk).fetchall())
        errors: list[tuple[int, CrmError]] = []
        for index, record_id in enumerate(ids):
            version = stored.get(record_id)
            if version is None:
                errors.append((index, NotFound(self._name, record_id)))
            elif versions is not None and version != versions[record_id]:
                errors.append(
                    (index, ConflictError(self._name, record_id, versions[record_id], version))
                )
        if errors:
            raise BatchError(self._name, errors)

    def delete(self, record_id: str, *, expected_version: int | None = None) -> None:
        codec = self._codec
        store = self._store
        if not storable_id(record_id):
            raise NotFound(self._name, record_id)
        self._read = None  # a record added again under this id would share its version
        with store._lock:
            try:
                if expected_version is None:
                    cursor = store._conn.execute(codec.sql_delete, (record_id,))
                else:
                    cursor = store._conn.execute(
                        codec.sql_delete_version, (record_id, expected_version)
                    )
                if cursor.rowcount == 0:
                    rows = store._conn.execute(codec.sql_version, (record_id,)).fetchall()
                    if not rows:
                        raise NotFound(self._name, record_id)
                    assert expected_version is not None
                    raise ConflictError(self._name, record_id, expected_version, int(rows[0][0]))
            except sqlite3.Error as err:
                raise store._error(f"deleting {self._name} {record_id!r}", err) from err

    def _ids_json(self, batch: list[Any]) -> str:
        record_type: type[Any] = self._type
        return json.dumps([r.id for r in batch if isinstance(r, record_type)])

    def add_many(self, records: Iterable[T]) -> list[T]:
        """Add every record or none: a bad one raises ``BatchError`` listing them all."""
        batch: list[Any] = list(records)
        codec = self._codec
        store = self._store
        doing = f"adding {len(batch)} {codec.table}"
        with store.transaction():
            # one set-based lookup of the batch's ids (none needed into an empty table)
            empty = not batch or not self._rows(codec.sql_any, (), doing)
            existing = (
                set()
                if empty
                else {
                    row[0] for row in self._rows(codec.sql_ids_in, (self._ids_json(batch),), doing)
                }
            )
            batch = check_batch(self._type, batch, existing.__contains__)
            if empty and len(batch) >= _BULK_FROM:
                with self._indexes_set_aside(doing):
                    self._write_many(codec.sql_insert, batch, None, doing)
            else:
                self._write_many(codec.sql_insert, batch, None, doing)
        with_version = codec.with_version
        with paused_gc(len(batch)):
            return [r if r.version == 1 else with_version(r, 1) for r in batch]

    def put_many(self, records: Iterable[T]) -> list[T]:
        """Insert or replace every record or none (no version check)."""
        batch: list[Any] = list(records)
        codec = self._codec
        store = self._store
        doing = f"putting {len(batch)} {codec.table}"
        with store.transaction():
            batch = check_batch(self._type, batch, None)
            old = dict(self._rows(codec.sql_versions_in, (self._ids_json(batch),), doing))
            versions = [old.get(r.id, 0) + 1 for r in batch]
            self._write_many(codec.sql_upsert, batch, versions, doing)
        with_version = codec.with_version
        return [
            r if r.version == v else with_version(r, v)
            for r, v in zip(batch, versions, strict=True)
        ]

    @contextmanager
    def _indexes_set_aside(self, doing: str) -> Iterator[None]:
        """Drop the table's indexes for a bulk load into an empty table and create them
        again after it: one sort per index instead of a B-tree insert per row and index
        (the enclosing transaction puts them back if the load fails)."""
        store, table = self._store, self._codec.table
        with store._lock:
            try:
                indexes = store._conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = ? AND sql IS NOT NULL",
                    (table,),
                ).fetchall()
                for name, _ in indexes:
                    store._conn.execute(f"DROP INDEX {_q(name)}")
            except sqlite3.Error as err:
                raise store._error(doing, err) from err
            yield
            try:
                for _, sql in indexes:
                    store._conn.execute(sql)
            except sqlite3.Error as err:
                raise store._error(doing, err) from err

    def _write_many(
        self, sql: str, batch: list[Any], versions: list[int] | None, doing: str
    ) -> None:
        """Encode and insert a checked batch (the caller's transaction undoes a failure)."""
        store = self._store
        encode = self._codec.encode
        try:
            if versions is None:
                rows = [encode(r, 1) for r in batch]
            else:
                rows = [encode(r, v) for r, v in zip(batch, versions, strict=True)]
            store._conn.executemany(sql, rows)
        except (OverflowError, UnicodeEncodeError, _Unstorable) as err:
            self._raise_batch_problems(batch)
            raise store._error(doing, err) from err
        except sqlite3.Error as err:
            raise store._error(doing, err) from err

    def _raise_batch_problems(self, batch: list[Any]) -> None:
        raise_batch_problems(self._name, batch, self._codec.encoding_problems)


class _EmittingSQLiteRepository(EmitsChanges, SQLiteRepository[T]):
    """A SQLiteRepository whose writes yield change events (when the store's are on)."""


class _CheckedSQLiteRepository(IntegrityChecked, EmitsChanges, SQLiteRepository[T]):
    """A SQLiteRepository whose writes check the rules that span records (campaign members)."""


def _decode_one(info: FieldInfo, value: Any) -> Any:
    if value is None:
        return None
    if info.kind == "tags":
        return tuple(json.loads(value))
    if info.kind == "time":
        return time.fromisoformat(value)
    return _tree_loads(value)


# -- the store ----------------------------------------------------------------------------


class _Busy(Exception):
    """Opening met a lock that SQLite will not wait for; opening tries again."""

    def __init__(self, doing: str, err: sqlite3.OperationalError) -> None:
        super().__init__(doing)
        self.doing = doing
        self.err = err


class SQLiteStore(RepositoryAccess):
    """A complete store in one SQLite file (or ``":memory:"``); thread-safe.

    One connection per store, guarded by a lock; a transaction holds the lock for its
    whole duration, so other threads of the same store wait rather than see half of it.
    Other processes may open the same file: WAL lets them read while one writes, and a
    writer waits up to ``timeout`` seconds for the write lock before a
    :class:`~crmkit.errors.StorageError` says the database is locked.

    ``events=True`` turns the outbox of :mod:`crmkit.events` on for the database (and
    ``False`` off); the choice is kept in the file, so every process that opens it later
    with the default ``events=None`` follows it.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 5.0, events: bool | None = None
    ) -> None:
        if events is not None and not isinstance(events, bool):
            raise ValidationError("SQLiteStore", "events", events, "must be True, False or None")
        self._path = path
        self._label = ":memory:" if path == ":memory:" else repr(os.fspath(path))
        self._lock = threading.RLock()
        self._depth = 0
        self._owner: int | None = None  # the thread inside a transaction, if any
        self._serial = 0  # counts outermost transactions (what a repository read is from)
        try:
            conn = sqlite3.connect(
                path,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=512,
            )
        except (sqlite3.Error, OSError) as err:
            raise self._error("opening the database file", err) from err
        self._conn = conn
        self._finalizer = weakref.finalize(self, conn.close)
        try:
            self._setup(in_memory=path in (":memory:", ""), timeout=timeout)
        except BaseException:
            self.close()
            raise
        self._outbox = Outbox(self._events_write, enabled=False)
        self._repos: dict[type[Any], SQLiteRepository[Any]] = {
            t: (_CheckedSQLiteRepository if t in CHECKED_TYPES else _EmittingSQLiteRepository)(
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

    def _error(self, doing: str, err: BaseException) -> StorageError:
        hint = _hint(err)
        message = f"SQLite store {self._label}: {doing} failed: {err}"
        text = str(err).lower()
        kind = TransactionConflict if "locked" in text or "busy" in text else StorageError
        return kind(message + (f" ({hint})" if hint else ""))

    def _setup(self, *, in_memory: bool, timeout: float) -> None:
        """Check the file is crmkit's (or new), switch it to WAL, run the migrations.

        Several processes may open one new file at once: the WAL switch and the first
        migration each need the file to themselves, and SQLite answers "locked" at once
        rather than waiting on them, so opening retries until ``timeout`` has passed.
        """
        deadline = monotonic() + timeout
        pause = 0.001
        while True:
            try:
                self._setup_once(in_memory=in_memory)
                return
            except _Busy as busy:
                if monotonic() >= deadline:
                    raise self._error(busy.doing, busy.err) from busy.err
            sleep(pause * (0.5 + random.random()))  # jitter, so openers spread out
            pause = min(pause * 2, 0.05)

    def _setup_once(self, *, in_memory: bool) -> None:
        conn = self._conn
        doing = "opening the database"
        try:
            doing = "reading the database layout"
            current = self.user_version
            if current > SCHEMA_VERSION:
                raise StorageError(
                    f"SQLite store {self._label}: the file has layout version {current}, "
                    f"newer than this crmkit knows ({SCHEMA_VERSION}); upgrade crmkit"
                )
            self._refuse_foreign_file()
            if not in_memory:
                doing = "switching to WAL journal mode"
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StorageError(
                        f"SQLite store {self._label}: cannot switch to WAL journal mode "
                        f"(got {mode!r})"
                    )
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            if current < SCHEMA_VERSION:
                doing = "upgrading the database layout"
                conn.execute("BEGIN IMMEDIATE")
                try:
                    current = self.user_version  # another process may have just migrated
                    if current == 0:
                        self._refuse_foreign_file()
                    for number in range(current + 1, SCHEMA_VERSION + 1):
                        _MIGRATIONS[number - 1](conn)
                        conn.execute(f"PRAGMA user_version = {int(number)}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                if current < SCHEMA_VERSION:
                    _log.info(
                        "SQLite store %s: migrated the layout from version %d to %d",
                        self._label,
                        current,
                        SCHEMA_VERSION,
                        extra={"from_version": current, "to_version": SCHEMA_VERSION},
                    )
            doing = "checking the database layout"
            self._check_layout()
        except sqlite3.OperationalError as err:
            text = str(err).lower()
            if "locked" in text or "busy" in text:
                raise _Busy(doing, err) from err
            raise self._error(doing, err) from err
        except sqlite3.Error as err:
            raise self._error(doing, err) from err

    def _refuse_foreign_file(self) -> None:
        """Raise, before anything is written, when the file holds tables but not crmkit's.

        crmkit keeps its records in a file of its own; an application's own database
        (say one with an ``accounts`` table of its own) is left exactly as it was.
        """
        names = {
            row[0]
            for row in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if names and _STATE_TABLE not in names:
            shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
            raise StorageError(
                f"SQLite store {self._label}: the file is not a crmkit database (it has "
                f"table(s) {shown} and no {_STATE_TABLE}); nothing was changed. Give "
                "crmkit a file of its own"
            )

    def _check_layout(self) -> None:
        for record_type in RECORD_TYPES:
            codec = _codec(record_type)
            rows = self._conn.execute(f"PRAGMA table_info({_q(codec.table)})").fetchall()
            have = {row[1] for row in rows}
            missing = [c for c in codec.column_names if c not in have]
            if missing:
                raise StorageError(
                    f"SQLite store {self._label}: table {codec.table} lacks column(s) "
                    f"{', '.join(missing)}; a migration for this crmkit version is missing"
                )

    @property
    def user_version(self) -> int:
        """The layout version of the file (``PRAGMA user_version``)."""
        try:
            with self._lock:
                return int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as err:
            raise self._error("reading the layout version", err) from err

    @property
    def path(self) -> str | os.PathLike[str]:
        """Where the database lives (``":memory:"`` for an in-memory store)."""
        return self._path

    def __repr__(self) -> str:
        return f"<SQLiteStore {self._label}>"

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
                    with self.transaction():
                        self._open_custom(t)
                    self._repos[t] = _EmittingSQLiteRepository(self, t)
            self._generation = generation
            for t, declared in list(DECLARED.items()):
                for name, field in declared.items():
                    if field.indexed and t in self._repos:
                        self.ensure_index(t, f"custom.{name}")

    def _open_custom(self, record_type: type[Any]) -> None:
        """Create the table of a registered type, or add its new optional fields."""
        codec = _codec(record_type)
        doing = f"opening the table of {codec.name}"
        try:
            conn = self._conn
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_q(_custom.TABLE)} (name TEXT PRIMARY KEY NOT "
                "NULL, table_name TEXT NOT NULL, fields TEXT NOT NULL)"
            )
            row = conn.execute(
                f"SELECT table_name, fields FROM {_q(_custom.TABLE)} WHERE name = ?",
                (codec.name,),
            ).fetchone()
            described = _custom.describe(record_type)
            if row is None:
                if self._query_master(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                    codec.table,
                ):
                    raise StorageError(
                        f"SQLite store {self._label}: table {codec.table} exists but was not "
                        f"created for record type {codec.name}; pick another table name "
                        "(register_record(cls, table=...))"
                    )
                _create_table(conn, record_type)
                conn.execute(
                    f"INSERT INTO {_q(_custom.TABLE)} (name, table_name, fields) VALUES (?, ?, ?)",
                    (codec.name, codec.table, described),
                )
                return
            if row[0] != codec.table:
                raise StorageError(
                    f"SQLite store {self._label}: record type {codec.name} is stored in table "
                    f"{row[0]}, not {codec.table}; register it with table={row[0]!r}"
                )
            if row[1] == described:
                return
            where = f"SQLite store {self._label}"
            for info, default in _custom.added_fields(record_type, row[1], where):
                columns = _table_columns([info])
                for column in columns:
                    conn.execute(
                        f"ALTER TABLE {_q(codec.table)} ADD COLUMN {_q(column.name)} "
                        f"{column.sql_type}"
                    )
                if default is not None:
                    values = codec.field_codecs[info.name][1](default)
                    sets = ", ".join(f"{_q(c.name)} = ?" for c in columns)
                    conn.execute(f"UPDATE {_q(codec.table)} SET {sets}", values)
            conn.execute(
                f"UPDATE {_q(_custom.TABLE)} SET fields = ? WHERE name = ?",
                (described, codec.name),
            )
        except sqlite3.Error as err:
            raise self._error(doing, err) from err

    def repository(self, record_type: type[T]) -> SQLiteRepository[T]:
        """The repository for ``record_type`` (a built-in or registered record type)."""
        if self._generation != STATE.generation:
            self._sync()
        try:
            return self._repos[record_type]
        except (KeyError, TypeError):
            raise ValidationError(
                "Store", None, record_type, "is not a crmkit record type"
            ) from None

    @property
    def in_transaction(self) -> bool:
        """Whether the calling thread is inside a :meth:`transaction` of this store."""
        return self._owner == threading.get_ident()

    def transaction(self, *, lock: str | None = None) -> AbstractContextManager[None]:
        """Everything inside lands together or not at all; transactions nest.

        The outermost transaction is ``BEGIN IMMEDIATE`` (it takes the write lock at
        once, so it never fails half way for a lock); inner ones are savepoints. ``lock``
        is accepted for the protocol and ignored: write transactions already run one at
        a time.
        """
        return _Transaction(self)  # a plain class: no generator frame per call

    def _run(self, sql: str, doing: str) -> None:
        try:
            self._conn.execute(sql)
        except sqlite3.Error as err:
            raise self._error(doing, err) from err

    def ensure_index(self, record_type: type[Any], *fields: str) -> tuple[str, ...]:
        """Create (if missing) an index on ``fields`` of ``record_type``; returns its key.

        Any field criteria compare may be indexed, custom fields included: the index is
        on the same expression the compiled criteria use (``json_extract(custom, ...)``
        for ``custom.<key>``; a single custom field gets a second index for numeric
        comparisons), so ``query(F.custom["tier"] == "gold")`` becomes an index lookup.
        The index is part of the file: declare it once, at start-up, in any process.

        >>> from crmkit.records import Account
        >>> store = SQLiteStore(":memory:")
        >>> store.ensure_index(Account, "custom.tier")
        ('custom.tier',)
        >>> store.indexes(Account)
        [('custom.tier',)]
        """
        key = index_fields(record_type, fields)
        codec = self.repository(record_type)._codec
        table = codec.table

        def expression(field: str, numeric: bool = False) -> str:
            if field.startswith("custom."):
                path = "'$.\"" + field.removeprefix("custom.") + "\"'"
                expr = f"json_extract(custom, {path})"
                return f"CAST({expr} AS REAL)" if numeric else expr
            return f"CAST({_q(field)} AS REAL)" if codec.kinds[field] == "int" else _q(field)

        statements = [(f"cx_{table}({','.join(key)})", [expression(f) for f in key])]
        if len(key) == 1 and key[0].startswith("custom."):
            statements.append((f"cx_{table}({key[0]}) number", [expression(key[0], True)]))
        with self.transaction():
            for name, exprs in statements:
                self._run(
                    f"CREATE INDEX IF NOT EXISTS {_q(name)} ON {_q(table)} ({', '.join(exprs)})",
                    f"creating index {name}",
                )
        return key

    def indexes(self, record_type: type[Any]) -> list[tuple[str, ...]]:
        """The indexes declared with :meth:`ensure_index` on ``record_type`` (by any
        process), in name order."""
        table = self.repository(record_type)._codec.table
        prefix = f"cx_{table}("
        rows = self._query_master(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", table
        )
        found = sorted(r[0] for r in rows if r[0].startswith(prefix) and r[0].endswith(")"))
        return [tuple(name[len(prefix) : -1].split(",")) for name in found]

    def _query_master(self, sql: str, table: str) -> list[Any]:
        try:
            with self._lock:
                return self._conn.execute(sql, (table,)).fetchall()
        except sqlite3.Error as err:
            raise self._error("reading the database layout", err) from err

    # -- events (see crmkit.events) --

    def _events_transaction(self) -> Any:
        return self.transaction()

    def _events_write(self, rows: list[tuple[Any, ...]], at: datetime) -> int:
        """Append ``rows`` to the outbox (inside the outermost transaction, which holds
        the write lock: positions are handed out in commit order)."""
        micros = (at - _EPOCH) // _US
        try:
            found = self._conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = ?", (_EVENTS_TABLE,)
            ).fetchone()
            first = (int(found[0]) if found else 0) + 1
            self._conn.executemany(
                f"INSERT INTO {_EVENTS_TABLE} ({_EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(first + i, *row, micros) for i, row in enumerate(rows)],
            )
        except sqlite3.Error as err:
            raise self._error(f"writing {len(rows)} events", err) from err
        return first

    def _events_read(self, after: int, limit: int | None) -> list[Any]:
        try:
            with self._lock:
                return self._conn.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM {_EVENTS_TABLE} WHERE position > ? "
                    "ORDER BY position LIMIT ?",
                    (after, -1 if limit is None else limit),
                ).fetchall()
        except sqlite3.Error as err:
            raise self._error("reading events", err) from err

    def _events_trim(self, through: int) -> int:
        try:
            with self._lock:
                cursor = self._conn.execute(
                    f"DELETE FROM {_EVENTS_TABLE} WHERE position <= ?", (through,)
                )
                return int(cursor.rowcount)
        except sqlite3.Error as err:
            raise self._error("trimming events", err) from err

    def load_state(self, name: str) -> dict[str, Any] | None:
        """A small JSON document saved with :meth:`save_state`, or ``None``."""
        try:
            with self._lock:
                row = self._conn.execute(
                    f"SELECT data FROM {_q(_STATE_TABLE)} WHERE name = ?", (name,)
                ).fetchone()
        except sqlite3.Error as err:
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
            with self._lock:
                self._conn.execute(
                    f"INSERT INTO {_q(_STATE_TABLE)} (name, data) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET data = excluded.data",
                    (name, text),
                )
        except sqlite3.Error as err:
            raise self._error(f"saving state {name!r}", err) from err

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back); idempotent."""
        with self._lock:
            self._finalizer()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Transaction:
    """One level of :meth:`SQLiteStore.transaction` (a plain context manager: a single
    write pays for it each call). With the store's events on it also opens the outbox's
    delivery (around the whole level, commit included) and level (around the work)."""

    __slots__ = ("_delivering", "_depth", "_level", "_store")

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._depth = 0
        self._delivering: AbstractContextManager[None] | None = None
        self._level: AbstractContextManager[None] | None = None

    def __enter__(self) -> None:
        store = self._store
        outbox = store._outbox
        if outbox.enabled:
            self._delivering = outbox.delivering()
            self._delivering.__enter__()
        store._lock.acquire()
        try:
            depth = store._depth
            store._run(
                "BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT crmkit_{depth}",
                "starting a transaction",
            )
        except BaseException as err:
            store._lock.release()
            if self._delivering is not None:
                self._delivering.__exit__(type(err), err, err.__traceback__)
            raise
        self._depth = depth
        store._depth = depth + 1
        store._serial += depth == 0
        store._owner = threading.get_ident()
        if self._delivering is not None:
            self._level = outbox.level(depth == 0)
            self._level.__enter__()

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        delivering, level = self._delivering, self._level
        if delivering is None or level is None:
            self._end(kind is not None)
            return
        try:
            try:
                level.__exit__(kind, error, trace)  # writes the events before a commit
            except BaseException:
                self._end(True)
                raise
            self._end(kind is not None)
        except BaseException as err:
            delivering.__exit__(type(err), err, err.__traceback__)
            raise
        delivering.__exit__(kind, error, trace)

    def _end(self, failed: bool) -> None:
        """Commit (or release the savepoint), or roll back when ``failed``; unlock."""
        store, depth = self._store, self._depth
        try:
            store._depth = depth
            if failed:
                if depth == 0:
                    store._owner = None
                    store._run("ROLLBACK", "rolling back a transaction")
                    if store._synced_in_transaction:  # its new tables were undone too
                        store._generation = -1
                else:
                    store._serial += 1  # what was read inside may be undone
                    store._run(f"ROLLBACK TO crmkit_{depth}", "rolling back a savepoint")
                    store._run(f"RELEASE crmkit_{depth}", "rolling back a savepoint")
                return
            if depth == 0:
                store._owner = None
                try:
                    store._run("COMMIT", "committing a transaction")
                except StorageError:
                    if store._conn.in_transaction:
                        store._run("ROLLBACK", "rolling back a failed commit")
                    raise
            else:
                store._run(f"RELEASE crmkit_{depth}", "ending a savepoint")
        finally:
            store._lock.release()
