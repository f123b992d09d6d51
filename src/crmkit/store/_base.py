"""The storage protocols, and the pieces every backend shares.

A :class:`Store` holds one :class:`Repository` per record type. Semantics every backend
follows (``crmkit.testing.StoreContract`` checks each of them):

- ``add`` stores a new record at ``version=1`` and returns the stored record; an id that
  exists raises :class:`~crmkit.errors.AlreadyExists`.
- ``put`` inserts or replaces without a version check: version 1, or stored version + 1.
- ``update`` replaces an existing record if its stored version equals ``expected_version``
  (default: the version of the record you pass, i.e. the one you read), else raises
  :class:`~crmkit.errors.ConflictError`; a missing id raises
  :class:`~crmkit.errors.NotFound`. The result has the version bumped by one.
- ``delete`` removes a record (``NotFound`` if missing; optional ``expected_version``).
- ``patch(id, expected_version=None, where=None, **fields)`` changes only the named fields,
  converting and validating only those; ``patch_many({id: {field: value}},
  expected_versions=..., where=...)`` does the same for many records, atomically (a bad
  entry: ``BatchError``, nothing written). ``where`` (criteria) makes a patch conditional:
  it applies only if the stored record matches, else ``ConflictError`` (``condition``
  set); a missing id is ``NotFound``. The SQL stores check it in the ``UPDATE`` itself.
- ``add_many`` / ``put_many`` are atomic: a bad record (wrong type, duplicate id in the
  batch, id already stored for ``add_many``) means nothing is written and a
  :class:`~crmkit.errors.BatchError` lists every bad record by position.
- ``add_columns(columns)`` adds the records held in columns (field name -> array or list,
  or a DataFrame) through ``add_many``: same checks, same errors, all or none; it returns
  how many were added (see :mod:`crmkit.store._columnar`). ``patch_columns(columns,
  expected_versions=...)`` patches the records of its ``"id"`` column with the other
  columns, exactly as ``patch_many`` of the same changes would, and returns how many.
- ``query(criteria, order_by=..., limit=..., offset=...)`` returns records in ``order_by``
  order (``"-field"`` for descending; missing values first when ascending, last when
  descending) with ties, and the default, by ``id``.
- Iteration yields every record in ``id`` order.
- ``columns(fields, criteria)`` returns numpy arrays (see :func:`crmkit._columns.columns_of`).
- ``store.transaction()`` makes everything inside atomic; an exception rolls it all back.
  Transactions nest (an inner failure caught inside the outer block undoes only the inner).
- ``load_state(name)`` / ``save_state(name, data)`` keep small JSON documents (rotation
  state of routing pools, for example) inside the same transactions.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import random
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import attrs
import numpy as np

from crmkit._fields import CUSTOM_CHECKS, VALIDATED_WITH, patcher
from crmkit._repr import short_repr
from crmkit._schema import QUERYABLE_KINDS, schema_of
from crmkit.criteria import BoundCriteria, Criteria, bind
from crmkit.errors import (
    BatchError,
    ConflictError,
    CriteriaError,
    CrmError,
    NotFound,
    StorageError,
    ValidationError,
)
from crmkit.records import (
    Account,
    Activity,
    Cadence,
    Campaign,
    CampaignMember,
    Contact,
    DealRegistration,
    Enrollment,
    HierarchyChange,
    Inquiry,
    Lead,
    LifecycleChange,
    Merge,
    Opportunity,
    OwnershipChange,
    Partner,
    Reminder,
    Rep,
    RoutingRule,
    StageChange,
    Team,
    Territory,
    TerritoryModel,
)

__all__ = ["CriteriaLike", "Repository", "RepositoryAccess", "Store", "run_transaction"]

T = TypeVar("T")

_log = logging.getLogger("crmkit.store")

CriteriaLike = Criteria | Mapping[str, Any] | BoundCriteria | None
"""What ``query``, ``count`` and ``columns`` accept: builder criteria, the dict form, bound
criteria, or ``None`` for everything."""


@runtime_checkable
class Repository(Protocol[T]):
    """The records of one type in one store."""

    @property
    def record_type(self) -> type[T]: ...

    def get(self, record_id: str) -> T: ...

    def find(self, record_id: str) -> T | None: ...

    def add(self, record: T) -> T: ...

    def put(self, record: T) -> T: ...

    def update(self, record: T, *, expected_version: int | None = None) -> T: ...

    def delete(self, record_id: str, *, expected_version: int | None = None) -> None: ...

    def patch(
        self,
        record_id: str,
        *,
        expected_version: int | None = None,
        where: CriteriaLike = None,
        **fields: Any,
    ) -> T:
        """Change only ``fields`` of a stored record; returns it at the next version.

        With ``expected_version`` the stored version must equal it, and with ``where``
        the stored record must match those criteria, or nothing is written and
        :class:`~crmkit.errors.ConflictError` is raised (a version mismatch is reported
        first; a failed ``where`` sets the error's ``condition``). A missing id raises
        :class:`~crmkit.errors.NotFound`. The check and the write are one step: two
        processes patching the same record ``where=F.status == "open"`` cannot both win.

        >>> from crmkit.criteria import F
        >>> from crmkit.records import Account
        >>> from crmkit.store import MemoryStore
        >>> store = MemoryStore()
        >>> _ = store.accounts.add(Account(id="a1", name="Acme", country="US"))
        >>> store.accounts.patch("a1", where=F.country == "US", country="CA").version
        2
        >>> store.accounts.patch("a1", where=F.country == "US", country="MX")
        Traceback (most recent call last):
        ...
        crmkit.errors.ConflictError: Account 'a1' (version 2) does not match the condition ...
        """
        ...

    def patch_many(
        self,
        changes: Mapping[str, Mapping[str, Any]],
        *,
        expected_versions: Mapping[str, int] | None = None,
        where: CriteriaLike = None,
    ) -> list[T]:
        """Patch every record or none; ``where`` must hold for each of them (an entry whose
        record does not match is reported in the ``BatchError`` as a ``ConflictError``)."""
        ...

    def add_many(self, records: Iterable[T]) -> list[T]: ...

    def put_many(self, records: Iterable[T]) -> list[T]: ...

    def add_columns(self, columns: Any) -> int: ...

    def patch_columns(self, columns: Any, *, expected_versions: Any = None) -> int: ...

    def query(
        self,
        criteria: CriteriaLike = None,
        *,
        order_by: str | Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[T]: ...

    def count(self, criteria: CriteriaLike = None) -> int: ...

    def columns(
        self, fields: Sequence[str], criteria: CriteriaLike = None
    ) -> dict[str, np.ndarray[Any, Any]]: ...

    def __iter__(self) -> Iterator[T]: ...

    def __len__(self) -> int: ...

    def __contains__(self, record_id: object) -> bool: ...


@runtime_checkable
class Store(Protocol):
    """A place to keep CRM records: one repository per record type, plus transactions."""

    @property
    def accounts(self) -> Repository[Account]: ...
    @property
    def contacts(self) -> Repository[Contact]: ...
    @property
    def leads(self) -> Repository[Lead]: ...
    @property
    def opportunities(self) -> Repository[Opportunity]: ...
    @property
    def activities(self) -> Repository[Activity]: ...
    @property
    def reps(self) -> Repository[Rep]: ...
    @property
    def teams(self) -> Repository[Team]: ...
    @property
    def territories(self) -> Repository[Territory]: ...
    @property
    def reminders(self) -> Repository[Reminder]: ...
    @property
    def ownership_changes(self) -> Repository[OwnershipChange]: ...
    @property
    def stage_changes(self) -> Repository[StageChange]: ...

    @property
    def lifecycle_changes(self) -> Repository[LifecycleChange]: ...
    @property
    def territory_models(self) -> Repository[TerritoryModel]: ...
    @property
    def routing_rules(self) -> Repository[RoutingRule]: ...
    @property
    def inquiries(self) -> Repository[Inquiry]: ...
    @property
    def hierarchy_changes(self) -> Repository[HierarchyChange]: ...
    @property
    def cadences(self) -> Repository[Cadence]: ...
    @property
    def enrollments(self) -> Repository[Enrollment]: ...
    @property
    def campaigns(self) -> Repository[Campaign]: ...
    @property
    def campaign_members(self) -> Repository[CampaignMember]: ...
    @property
    def partners(self) -> Repository[Partner]: ...
    @property
    def deal_registrations(self) -> Repository[DealRegistration]: ...
    @property
    def merges(self) -> Repository[Merge]: ...

    def repository(self, record_type: type[T]) -> Repository[T]: ...

    def transaction(self, *, lock: str | None = None) -> AbstractContextManager[None]: ...

    def ensure_index(self, record_type: type[Any], *fields: str) -> tuple[str, ...]: ...

    def indexes(self, record_type: type[Any]) -> list[tuple[str, ...]]: ...

    def load_state(self, name: str) -> dict[str, Any] | None: ...

    def save_state(self, name: str, data: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class RepositoryAccess:
    """One property per record type (``store.accounts`` ...), for stores that implement
    ``repository(record_type)``; both shipped stores use it."""

    def repository(self, record_type: type[T]) -> Repository[T]:
        raise NotImplementedError

    @property
    def accounts(self) -> Repository[Account]:
        return self.repository(Account)

    @property
    def contacts(self) -> Repository[Contact]:
        return self.repository(Contact)

    @property
    def leads(self) -> Repository[Lead]:
        return self.repository(Lead)

    @property
    def opportunities(self) -> Repository[Opportunity]:
        return self.repository(Opportunity)

    @property
    def activities(self) -> Repository[Activity]:
        return self.repository(Activity)

    @property
    def reps(self) -> Repository[Rep]:
        return self.repository(Rep)

    @property
    def teams(self) -> Repository[Team]:
        return self.repository(Team)

    @property
    def territories(self) -> Repository[Territory]:
        return self.repository(Territory)

    @property
    def reminders(self) -> Repository[Reminder]:
        return self.repository(Reminder)

    @property
    def ownership_changes(self) -> Repository[OwnershipChange]:
        return self.repository(OwnershipChange)

    @property
    def stage_changes(self) -> Repository[StageChange]:
        return self.repository(StageChange)

    @property
    def lifecycle_changes(self) -> Repository[LifecycleChange]:
        return self.repository(LifecycleChange)

    @property
    def territory_models(self) -> Repository[TerritoryModel]:
        return self.repository(TerritoryModel)

    @property
    def routing_rules(self) -> Repository[RoutingRule]:
        return self.repository(RoutingRule)

    @property
    def inquiries(self) -> Repository[Inquiry]:
        return self.repository(Inquiry)

    @property
    def hierarchy_changes(self) -> Repository[HierarchyChange]:
        return self.repository(HierarchyChange)

    @property
    def cadences(self) -> Repository[Cadence]:
        return self.repository(Cadence)

    @property
    def enrollments(self) -> Repository[Enrollment]:
        return self.repository(Enrollment)

    @property
    def campaigns(self) -> Repository[Campaign]:
        return self.repository(Campaign)

    @property
    def campaign_members(self) -> Repository[CampaignMember]:
        return self.repository(CampaignMember)

    @property
    def partners(self) -> Repository[Partner]:
        return self.repository(Partner)

    @property
    def deal_registrations(self) -> Repository[DealRegistration]:
        return self.repository(DealRegistration)

    @property
    def merges(self) -> Repository[Merge]:
        return self.repository(Merge)


# -- running engine operations safely with many processes ---------------------------------


def run_transaction(
    store: Store,
    operation: Callable[[], T],
    *,
    attempts: int = 5,
    backoff: float = 0.01,
    lock: str | None = None,
) -> T:
    """``operation()`` inside ``store.transaction()``, run again when the store says the
    transaction lost a race (a retryable :class:`~crmkit.errors.StorageError`).

    This is how every engine does a read-modify-write (``tick``, routing rotation,
    registrations ...): the reads and the writes share one transaction, so no other
    process can change what was read before it is written. SQLite serialises writers
    (``BEGIN IMMEDIATE``); PostgreSQL runs the transaction ``SERIALIZABLE`` and may
    answer :class:`~crmkit.errors.TransactionConflict`, after which everything was rolled
    back and the operation runs again, up to ``attempts`` times with a growing, jittered
    pause. Only pass idempotent operations: ones that read what they need inside the
    transaction and decide afresh on each attempt.

    Inside an outer transaction there is nothing to retry on its own: the operation runs
    once and a conflict goes to the outer caller.

    ``lock`` names state that many workers update at once (a routing pool's rotation):
    stores that can (PostgreSQL) then run transactions with the same name one after the
    other instead of letting them refuse each other; SQLite and MemoryStore already run
    every write transaction one at a time and ignore it.

    >>> from crmkit.store import MemoryStore
    >>> from crmkit.records import Account
    >>> store = MemoryStore()
    >>> run_transaction(store, lambda: store.accounts.add(Account(id="a1", name="Acme"))).version
    1
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValidationError(
            "run_transaction", "attempts", attempts, "must be a whole number >= 1"
        )
    if getattr(store, "in_transaction", False):
        return operation()
    pause = backoff
    for attempt in range(1, attempts + 1):
        try:
            with store.transaction() if lock is None else store.transaction(lock=lock):
                return operation()
        except StorageError as err:
            if not err.retryable or attempt == attempts:
                raise
            _log.warning(
                "transaction failed on attempt %d of %d, running it again: %s: %s",
                attempt,
                attempts,
                type(err).__name__,
                err,
                extra={"attempt": attempt, "attempts": attempts, "error": err},
            )
        time.sleep(pause * (0.5 + random.random()))  # jitter, so racers spread out
        pause = min(pause * 2, 1.0)
    raise AssertionError("unreachable")  # pragma: no cover


# -- integrity rules that span records ----------------------------------------------------


def _person(member: Any) -> tuple[str, str] | None:
    """The field and value that say who a campaign member is (None: nobody named)."""
    if member.contact_id is not None:
        return "contact_id", member.contact_id
    if member.lead_id is not None:
        return "lead_id", member.lead_id
    if member.account_id is not None:
        return "account_id", member.account_id
    return None


def _in_chunks(values: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def member_problems(store: Store, members: Sequence[Any]) -> list[tuple[int, CrmError]]:
    """Why written campaign members break the rules (checked inside the write's transaction).

    A member must belong to a stored campaign, and a contact (or lead, or, for an account
    member, the account) is in a campaign once: the same person under another member id
    is a duplicate (in a batch, every one after the first). A batch costs one query per
    500 campaigns or people, never one per member.
    """
    problems: list[tuple[int, CrmError]] = []
    position = {m.id: i for i, m in enumerate(members)}
    known: set[str] = set()
    for chunk in _in_chunks(m.campaign_id for m in members):
        found = store.campaigns.query({"field": "id", "op": "in", "value": chunk})
        known.update(c.id for c in found)
    wanted: dict[str, set[str]] = {}
    for member in members:
        person = _person(member)
        if person is not None:
            wanted.setdefault(person[0], set()).add(person[1])
    holders: dict[tuple[str, str, str], list[str]] = {}
    for field, values in wanted.items():
        for chunk in _in_chunks(values):
            criteria = {"field": field, "op": "in", "value": chunk}
            for other in store.campaign_members.query(criteria):
                # an account member is one that names no contact and no lead
                if field != "account_id" or (other.contact_id is None and other.lead_id is None):
                    key = (other.campaign_id, field, getattr(other, field))
                    holders.setdefault(key, []).append(other.id)
    for index, member in enumerate(members):
        if member.campaign_id not in known:
            problems.append(
                (
                    index,
                    ValidationError(
                        "CampaignMember",
                        "campaign_id",
                        member.campaign_id,
                        "no such campaign; add the campaign first",
                        record_id=member.id,
                    ),
                )
            )
            continue
        person = _person(member)
        if person is None:
            continue
        field, value = person
        # within one batch the first member of a person stands; later ones are duplicates
        others = sorted(
            other
            for other in holders.get((member.campaign_id, field, value), ())
            if other != member.id and position.get(other, -1) < index
        )
        if others:
            problems.append(
                (
                    index,
                    ValidationError(
                        "CampaignMember",
                        field,
                        value,
                        f"is already in campaign {member.campaign_id!r} as member {others[0]!r}",
                        record_id=member.id,
                    ),
                )
            )
    return problems


class IntegrityChecked:
    """Mixin for a store's repository class: every write of a record type with rules
    that span records (today: campaign members) is checked, after it is written and in
    the same transaction, so a bad write is undone whole (``ValidationError``, or
    ``BatchError`` for a batch)."""

    _store: Any

    def _checked(self, write: Callable[[], Any], single: bool) -> Any:
        with self._store.transaction():
            written = write()
            batch = [written] if single else list(written)
            problems = member_problems(self._store, batch)
            if problems:
                if single:
                    raise problems[0][1]
                raise BatchError("CampaignMember", problems)
            return written

    def add(self, record: Any) -> Any:
        parent = cast(Any, super())
        return self._checked(lambda: parent.add(record), True)

    def put(self, record: Any) -> Any:
        parent = cast(Any, super())
        return self._checked(lambda: parent.put(record), True)

    def update(self, record: Any, *, expected_version: int | None = None) -> Any:
        parent = cast(Any, super())
        return self._checked(
            lambda: parent.update(record, expected_version=expected_version), True
        )

    def patch_columns(self, columns: Any, *, expected_versions: Any = None) -> int:
        from crmkit.store._columnar import (  # it imports this module
            patch_through_patch_many,
            patches_from_columns,
        )

        patches = patches_from_columns(cast(Any, self).record_type, columns, expected_versions)
        return patch_through_patch_many(self, patches)

    def patch(
        self,
        record_id: str,
        *,
        expected_version: int | None = None,
        where: CriteriaLike = None,
        **fields: Any,
    ) -> Any:
        parent = cast(Any, super())
        return self._checked(
            lambda: parent.patch(
                record_id, expected_version=expected_version, where=where, **fields
            ),
            True,
        )

    def add_many(self, records: Iterable[Any]) -> Any:
        parent = cast(Any, super())
        return self._checked(lambda: parent.add_many(records), False)

    def put_many(self, records: Iterable[Any]) -> Any:
        parent = cast(Any, super())
        return self._checked(lambda: parent.put_many(records), False)

    def patch_many(
        self,
        changes: Mapping[str, Mapping[str, Any]],
        *,
        expected_versions: Any = None,
        where: CriteriaLike = None,
    ) -> Any:
        parent = cast(Any, super())
        return self._checked(
            lambda: parent.patch_many(changes, expected_versions=expected_versions, where=where),
            False,
        )


#: record types whose repositories check integrity rules on every write
CHECKED_TYPES = frozenset({CampaignMember})


# -- shared by the backends ----------------------------------------------------------------


def bound(criteria: CriteriaLike, record_type: type[Any]) -> BoundCriteria:
    """Bind criteria in any accepted form to ``record_type``.

    Binding checks every field and value, which costs tens of microseconds; an app that
    runs the same query again and again gets the bound criteria from a small cache,
    keyed by the criteria's JSON form (so ``1`` and ``True`` stay apart).
    """
    if isinstance(criteria, BoundCriteria):
        if criteria.record_type is not record_type:
            raise CriteriaError(
                f"criteria bound to {criteria.record_type.__name__} used on {record_type.__name__}"
            )
        return criteria
    if criteria is None:
        return bind(criteria, record_type)
    if isinstance(criteria, Criteria):  # the same object again: no key to build
        known = _BY_OBJECT.get((id(criteria), record_type))
        if known is not None and known[0]() is criteria:
            return known[1]
    try:
        data = criteria.to_dict() if isinstance(criteria, Criteria) else criteria
        key = _KEY.encode(data)
    except (TypeError, ValueError, RecursionError):  # not JSON: bind it afresh
        return bind(criteria, record_type)
    result = _bind_json(key, cast(Hashable, record_type))
    if isinstance(criteria, Criteria):
        if len(_BY_OBJECT) >= 512:
            _BY_OBJECT.clear()
        _BY_OBJECT[(id(criteria), record_type)] = (weakref.ref(criteria), result)
    return result


#: the cache key of criteria in their JSON form (one encoder: ``json.dumps`` with options
#: builds a new one per call)
_KEY = json.JSONEncoder(allow_nan=False)

#: criteria objects bound lately, by identity (the weak reference tells a reused id apart)
_BY_OBJECT: dict[tuple[int, type[Any]], tuple[weakref.ref[Any], BoundCriteria]] = {}


@functools.lru_cache(maxsize=512)
def _bind_json(key: str, record_type: Hashable) -> BoundCriteria:
    return bind(json.loads(key), cast(type[Any], record_type))


def index_fields(record_type: type[Any], fields: Sequence[str]) -> tuple[str, ...]:
    """``fields`` checked as the key of a declared index on ``record_type``.

    Any field criteria can compare may be indexed, custom fields included
    (``"custom.tier"``); up to four fields, none twice.

    >>> from crmkit.records import Account
    >>> index_fields(Account, ["industry", "custom.tier"])
    ('industry', 'custom.tier')
    """
    name = getattr(record_type, "__name__", repr(record_type))
    if not isinstance(record_type, type) or not attrs.has(record_type):
        raise ValidationError("Store", None, record_type, "is not a crmkit record type")
    if not fields or len(fields) > 4:
        raise ValidationError(name, None, tuple(fields), "an index takes one to four field names")
    checked: list[str] = []
    schema = schema_of(record_type)
    for field in fields:
        if not isinstance(field, str):
            raise ValidationError(name, None, field, "index fields are field names (text)")
        if field.startswith("custom."):
            if not field.removeprefix("custom.").isidentifier():
                raise ValidationError(
                    name, field, field, "a custom field in an index must be an identifier"
                )
        else:
            try:
                info = schema.field(field)
            except CriteriaError as err:
                raise ValidationError(name, field, field, str(err)) from None
            if info.kind not in QUERYABLE_KINDS:
                raise ValidationError(
                    name, field, field, f"{info.kind} fields cannot be compared, so not indexed"
                )
        if field in checked:
            raise ValidationError(name, field, field, "appears twice in the index")
        checked.append(field)
    return tuple(checked)


def order_fields(record_type: type[Any], order_by: str | Sequence[str]) -> list[tuple[str, bool]]:
    """``order_by`` as ``[(field, descending)]``, checked against the record type (each
    checked form is kept, so a repeated query does not check it again)."""
    if type(order_by) is tuple and not order_by:  # the default: id order
        return []
    key = (record_type, order_by if isinstance(order_by, str) else order_key(order_by))
    known = _ORDERS.get(key)
    if known is not None:
        return list(known)
    result = _order_fields(record_type, order_by)
    if key[1] is not None:
        if len(_ORDERS) >= 512:
            _ORDERS.clear()
        _ORDERS[key] = tuple(result)
    return result


def order_key(order_by: Any) -> tuple[str, ...] | None:
    """``order_by`` as a hashable key for the caches of checked orders, or ``None``."""
    if isinstance(order_by, (list, tuple)) and all(type(item) is str for item in order_by):
        return tuple(order_by)
    return None


_ORDERS: dict[tuple[type[Any], Any], tuple[tuple[str, bool], ...]] = {}


def _order_fields(record_type: type[Any], order_by: Any) -> list[tuple[str, bool]]:
    if isinstance(order_by, str):
        items: list[Any] = [order_by]
    elif isinstance(order_by, (list, tuple)):
        items = list(order_by)
    else:
        raise CriteriaError(
            f"order_by takes a field name or a list of them, like ['-amount', 'name'], "
            f"not {order_by!r}"
        )
    schema = schema_of(record_type)
    result = []
    for item in items:
        if not isinstance(item, str) or not item.strip("-"):
            raise CriteriaError(
                f"order_by takes field names like 'name' or '-created_at', not {item!r}"
            )
        descending = item.startswith("-")
        name = item.removeprefix("-")
        if name.startswith("custom."):
            if not name.removeprefix("custom.").isidentifier():
                raise CriteriaError(
                    f"custom field name in order_by {item!r} must be an identifier"
                )
        else:
            info = schema.field(name)
            if info.kind not in QUERYABLE_KINDS:
                raise CriteriaError(f"{schema.name}.{name} ({info.kind}) cannot be ordered by")
        result.append((name, descending))
    return result


def sort_key(name: str) -> Callable[[Any], tuple[Any, ...]]:
    """A Python sort key that orders values the way SQLite orders the stored column.

    Missing values first, then numbers (bools as 0/1, datetimes as instants), then text
    (enums by value, dates as ISO text).
    """
    if name.startswith("custom."):
        key = name.removeprefix("custom.")
        return lambda r: _rank(r.custom.get(key))
    return lambda r: _rank(getattr(r, name))


def _rank(value: Any) -> tuple[Any, ...]:
    if value is None:
        return (0,)
    if isinstance(value, str):  # includes StrEnum members
        return (2, str(value.value) if hasattr(value, "value") else value)
    if isinstance(value, datetime):
        return (1, value)
    if isinstance(value, date):
        return (2, value.isoformat())
    if isinstance(value, (bool, int, float, Decimal)):
        return (1, float(value))
    return (3, repr(value))


def sort_records(
    records: list[T], record_type: type[Any], order_by: str | Sequence[str]
) -> list[T]:
    """Sort ``records`` by ``order_by`` then ``id``, stable, in place and returned."""
    records.sort(key=lambda r: getattr(r, "id"))  # noqa: B009 - records are typed per repo
    for name, descending in reversed(order_fields(record_type, order_by)):
        records.sort(key=sort_key(name), reverse=descending)
    return records


#: a batch this large pauses the cyclic garbage collector while it makes its records
GC_PAUSE_FROM = 10_000


@contextmanager
def paused_gc(size: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch of ``size`` records is made.

    Every record is a tracked object, so a batch of a million records would otherwise
    start hundreds of collections, the later ones walking every record alive. Records
    hold no reference cycles; at the end of the batch the collector runs once over the
    young generations (so the next caller does not pay for the batch) and is enabled
    again. Smaller batches, and a collector already paused by the caller, are left alone.

    >>> with paused_gc(100_000):
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    if size < GC_PAUSE_FROM or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.collect(1)
        gc.enable()


_COPIERS: dict[type[Any], Callable[[Any, int], Any]] = {}


def version_copier(record_type: type[T]) -> Callable[[T, int], T]:
    """``copy(record, version)``: the record with a new ``version`` and nothing re-checked.

    Stores stamp every record they write with a version. ``attrs.evolve`` would run the
    record's converters and validators again, though a frozen record was checked when it
    was built; the copier only copies its slots, several times faster.

    The copier is generated from the class's own attrs field names (never from data),
    the technique attrs itself uses for ``__init__``.

    >>> from crmkit.records import Account
    >>> copy = version_copier(Account)
    >>> copy(Account(id="a1", name="Acme"), 3).version
    3
    """
    known = _COPIERS.get(record_type)
    if known is not None:
        return known
    names = [field.name for field in attrs.fields(cast(Any, record_type))]
    if "version" not in names or not all(n.isidentifier() for n in names):
        raise TypeError(f"{record_type.__name__} is not a versioned record type")
    ns: dict[str, Any] = {"_cls": record_type, "_new": object.__new__}
    lines = []
    for n in names:
        ns[f"_s_{n}"] = record_type.__dict__[n].__set__
        lines.append(f"    _s_{n}(o, {'version' if n == 'version' else 'r.' + n})")
    source = "def copy(r, version):\n    o = _new(_cls)\n" + "\n".join(lines) + "\n    return o\n"
    exec(compile(source, f"<crmkit version copier {record_type.__name__}>", "exec"), ns)
    copier: Callable[[T, int], T] = ns["copy"]
    _COPIERS[record_type] = copier
    return copier


_VALIDATED_WITH = VALIDATED_WITH  # patching the key re-checks the values
_NEEDS_RECORD = frozenset(_VALIDATED_WITH) | {d for ds in _VALIDATED_WITH.values() for d in ds}
_UNPATCHABLE = frozenset({"id", "version"})


def needs_record(field: str) -> bool:
    """Whether a patch of ``field`` must read the stored record: its check reads another
    field, or another field's check reads it."""
    return field in _NEEDS_RECORD


_FIELDS: dict[type[Any], dict[str, attrs.Attribute[Any]]] = {}


def _fields_of(record_type: type[Any]) -> dict[str, attrs.Attribute[Any]]:
    """``attrs.fields_dict(record_type)``, built once per class (attrs builds it per call)."""
    known = _FIELDS.get(record_type)
    if known is None:
        known = _FIELDS[record_type] = attrs.fields_dict(record_type)
    return known


def patch_fields(record_type: type[Any], record_id: Any, changes: Any) -> dict[str, Any]:
    """``changes`` checked as a mapping of field names of ``record_type`` to new values."""
    name = record_type.__name__
    if not isinstance(changes, Mapping) or not changes:
        raise ValidationError(
            name,
            None,
            changes,
            "a patch is a non-empty mapping of field names to values",
            record_id=record_id if isinstance(record_id, str) else None,
        )
    known = _fields_of(record_type)
    for field in changes:
        if field in _UNPATCHABLE or field not in known:
            reason = (
                "cannot be patched (the store sets it)"
                if field in _UNPATCHABLE
                else f"is not a field of {name}"
            )
            raise ValidationError(name, str(field), changes[field], reason, record_id=record_id)
    return dict(changes)


def patch_record(record: T, changes: Mapping[str, Any], version: int | None = None) -> T:
    """``record`` with ``changes`` applied, converting and validating only what changed.

    ``attrs.evolve`` would check every field again; a patch of two fields of a wide
    record checks two (plus any field whose validator reads a changed one). ``version``
    stamps the copy (default: the record's own).

    >>> from crmkit.records import Account
    >>> acme = Account(id="a1", name="Acme", employees=10)
    >>> patch_record(acme, {"employees": "12"})
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Account 'a1' field 'employees' = '12': must be a whole number
    >>> patch_record(acme, {"employees": 12}).employees
    12
    """
    cls = type(record)
    stamp = cast(Any, record).version if version is None else version
    patch = patcher(cls, tuple(changes))
    if patch is not None:
        return cast(T, patch(record, stamp, *changes.values()))
    known = _fields_of(cls)
    new = version_copier(cls)(record, stamp)
    checked: list[str] = []
    for name, value in changes.items():
        field = known[name]
        convert: Any = field.converter  # (a subscripted cast would be built per call)
        if convert is not None:
            value = convert(value)
        object.__setattr__(new, name, value)
        checked.append(name)
        checked.extend(d for d in _VALIDATED_WITH.get(name, ()) if d in known)
    for name in dict.fromkeys(checked):
        field = known[name]
        if field.validator is not None:
            field.validator(new, field, getattr(new, name))
    return new


def convert_patch(record_type: type[T], record_id: str, changes: Mapping[str, Any]) -> T | None:
    """A probe record holding only ``id`` and the converted, validated ``changes``, for
    stores that write a patch without reading the record first; ``None`` when a changed
    field's validator needs the rest of the record (then read it and use
    :func:`patch_record`)."""
    if any(name in _NEEDS_RECORD for name in changes):
        return None
    known = _fields_of(record_type)
    probe: Any = object.__new__(record_type)
    object.__setattr__(probe, "id", record_id)
    for name, value in changes.items():
        field = known[name]
        convert: Any = field.converter  # (a subscripted cast would be built per call)
        if convert is not None:
            value = convert(value)
        if field.validator is not None:
            field.validator(probe, field, value)
        object.__setattr__(probe, name, value)
    return cast(T, probe)


def _patcher_for(record_type: type[Any], names: tuple[str, ...]) -> Callable[..., Any] | None:
    """The compiled patcher of ``names`` when they are all patchable fields (else the
    caller checks the entry the slow way, which names the bad field)."""
    known = _fields_of(record_type)
    if any(n in _UNPATCHABLE or n not in known for n in names):
        return None
    return patcher(record_type, names)


def check_patches(
    record_type: type[Any],
    changes: Any,
    expected_versions: Any,
    current: Callable[[str], Any] | Mapping[str, Any],
    where: CriteriaLike = None,
) -> list[tuple[Any, Any]]:
    """``[(stored record, patched record)]`` for ``patch_many`` (the patched one already
    carries the next version), or a :class:`BatchError` naming every bad entry (unknown
    id, bad field or value, stale version, a stored record not matching ``where``) by
    position."""
    name = record_type.__name__
    test = None if where is None else bound(where, record_type)
    if not isinstance(changes, Mapping):
        raise ValidationError(
            name, None, changes, "patch_many takes a mapping of ids to field changes"
        )
    versions = {} if expected_versions is None else expected_versions
    if not isinstance(versions, Mapping):
        raise ValidationError(name, None, versions, "expected_versions must map ids to versions")
    pairs: list[tuple[Any, Any]] = []
    errors: list[tuple[int, CrmError]] = []
    stored = current if isinstance(current, Mapping) else None
    read = cast(Callable[[str], Any], current)
    patchers: dict[tuple[str, ...], Callable[..., Any] | None] = {}
    for index, (record_id, fields) in enumerate(changes.items()):
        try:
            patch = None
            if type(fields) is dict and fields:  # the common case: one compiled patcher
                names = tuple(fields)
                if names in patchers:
                    patch = patchers[names]
                else:
                    patch = patchers[names] = _patcher_for(record_type, names)
            if patch is not None:
                old = read(record_id) if stored is None else stored.get(record_id)
                if old is None:
                    raise NotFound(name, record_id)
                expected = versions.get(record_id)
                if expected is not None and old.version != expected:
                    raise ConflictError(name, record_id, expected, old.version)
                if test is not None and not test.matches(old):
                    raise condition_failed(name, record_id, test, old.version)
                pairs.append((old, patch(old, old.version + 1, *fields.values())))
                continue
            checked = patch_fields(record_type, record_id, fields)
            if isinstance(current, Mapping):  # the stored records, read in one query
                old = current.get(record_id)
                if old is None:
                    raise NotFound(name, record_id)
            else:
                old = current(record_id)
            expected = versions.get(record_id)
            if expected is not None and old.version != expected:
                raise ConflictError(name, record_id, expected, old.version)
            if test is not None and not test.matches(old):
                raise condition_failed(name, record_id, test, old.version)
            pairs.append((old, patch_record(old, checked, old.version + 1)))
        except CrmError as err:
            errors.append((index, err))
    if errors:
        raise BatchError(name, errors)
    return pairs


def condition_failed(
    record: str, record_id: str, test: BoundCriteria, version: int
) -> ConflictError:
    """The error of a patch whose ``where`` criteria the stored record (at ``version``)
    does not match."""
    return ConflictError(
        record, record_id, version, version, condition=short_repr(test.criteria.to_dict())
    )


def raise_batch_problems(
    record: str, batch: Sequence[Any], problems: Callable[[Any], list[tuple[str, Any, str]]]
) -> None:
    """Raise a :class:`BatchError` naming every record of ``batch`` that ``problems``
    (a store's ``(field, value, reason)`` check of what it cannot encode) finds fault with."""
    errors: list[tuple[int, CrmError]] = [
        (index, ValidationError(record, name, value, reason, record_id=item.id))
        for index, item in enumerate(batch)
        for name, value, reason in problems(item)
    ]
    if errors:
        raise BatchError(record, errors)


def storable_id(record_id: object) -> bool:
    """Whether ``record_id`` could name a stored record: text that is valid Unicode (an
    id with a lone surrogate can never have been stored, so it is simply not found).

    >>> storable_id("acc-1"), storable_id("acc-\\ud800"), storable_id(7)
    (True, False, False)
    """
    if not isinstance(record_id, str):
        return False
    try:
        record_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def group_patches(
    pairs: Sequence[tuple[Any, Any]],
    changes: Mapping[str, Mapping[str, Any]],
    encode: Callable[[Any, tuple[str, ...]], list[Any]],
) -> dict[tuple[str, ...], list[list[Any]]]:
    """``{changed field names: [row, ...]}`` for the SQL stores' ``patch_many``: each row is
    ``encode(new record, names)`` followed by the id and the stored version, so one
    ``UPDATE ... WHERE id = ? AND version = ?`` per set of fields writes them all."""
    groups: dict[tuple[str, ...], list[list[Any]]] = {}
    for old, new in pairs:
        names = tuple(changes[old.id])
        groups.setdefault(names, []).append([*encode(new, names), old.id, old.version])
    return groups


def check_page(limit: int | None, offset: int) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise CriteriaError(f"limit must be a whole number >= 0 or None, not {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise CriteriaError(f"offset must be a whole number >= 0, not {offset!r}")


def check_type(record_type: type[Any], record: Any) -> None:
    """Refuse a record of another type, or one whose declared custom fields (see
    :func:`crmkit.registry.declare_custom_field`) do not fit, e.g. one built before the
    declaration."""
    if not isinstance(record, record_type):
        raise ValidationError(
            record_type.__name__,
            None,
            record,
            f"expected a {record_type.__name__} record, got {type(record).__name__}",
        )
    declared = CUSTOM_CHECKS.get(record_type)
    if declared is not None:
        declared(record, record.custom, False)


def check_batch(
    record_type: type[Any], records: Iterable[Any], exists: Callable[[str], bool] | None
) -> list[Any]:
    """Every problem in a batch, raised together as a :class:`BatchError`.

    ``exists`` (for ``add_many``) tells whether an id is already stored.
    """
    batch = list(records)
    if CUSTOM_CHECKS.get(record_type) is None and all(type(r) is record_type for r in batch):
        ids = [r.id for r in batch]  # the common case, checked in C-speed passes
        if len(set(ids)) == len(ids) and (exists is None or not any(map(exists, ids))):
            return batch
    errors: list[tuple[int, CrmError]] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(batch):
        try:
            check_type(record_type, record)
        except ValidationError as err:
            errors.append((index, err))
            continue
        if record.id in seen:
            errors.append(
                (
                    index,
                    ValidationError(
                        record_type.__name__,
                        "id",
                        record.id,
                        f"appears twice in the batch (first at #{seen[record.id]})",
                        record_id=record.id,
                    ),
                )
            )
            continue
        seen[record.id] = index
        if exists is not None and exists(record.id):
            errors.append(
                (
                    index,
                    ValidationError(
                        record_type.__name__,
                        "id",
                        record.id,
                        "already exists; use put_many() to replace",
                        record_id=record.id,
                    ),
                )
            )
    if errors:
        raise BatchError(record_type.__name__, errors)
    return batch
