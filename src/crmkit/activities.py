"""Activity tracking: log what happened, read it back as a timeline, count it for scoring.

An :class:`~crmkit.records.Activity` refers to any of an account, contact, lead and
opportunity. :func:`timeline` reads the activities of one of them newest first (ties by id),
optionally with the account's whole family (its hierarchy) and the family's contacts;
:func:`last_touch` and :func:`activity_counts` are numpy over store columns, for scoring.

>>> from datetime import datetime, timezone
>>> from crmkit.store import MemoryStore
>>> store = MemoryStore()
>>> at = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
>>> _ = log(store, "call", at, id="a1", account_id="acc-1", actor_id="rep-1")
>>> _ = log(store, "email_sent", at.replace(hour=10), id="a2", account_id="acc-1")
>>> [a.id for a in timeline(store, "account", "acc-1")]
['a2', 'a1']
>>> counts = activity_counts(store)
>>> counts["account_id"].tolist(), counts["total"].tolist(), counts["call"].tolist()
(['acc-1'], [2], [1])
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import numpy as np

from crmkit._time import EPOCH, micros
from crmkit.criteria import Criteria, F
from crmkit.errors import ValidationError
from crmkit.records import Activity, ActivityKind
from crmkit.store._base import Store

__all__ = [
    "REF_KINDS",
    "TimelinePage",
    "activity_counts",
    "last_touch",
    "log",
    "log_many",
    "timeline",
    "timeline_page",
]

REF_KINDS: dict[str, str] = {
    "account": "account_id",
    "contact": "contact_id",
    "lead": "lead_id",
    "opportunity": "opportunity_id",
}
"""What :func:`timeline` accepts as ``ref_kind``, and the Activity field each one reads."""


def log(
    store: Store,
    kind: ActivityKind | str,
    at: datetime,
    *,
    id: str | None = None,
    **fields: Any,
) -> Activity:
    """Record one activity and return it as stored (a random id if none is given).

    ``fields`` are any other :class:`~crmkit.records.Activity` fields (``account_id``,
    ``actor_id``, ``direction``, ``outcome``, ``subject``, ``duration_minutes`` ...).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit.store import MemoryStore
    >>> a = log(MemoryStore(), "meeting", datetime(2026, 1, 5, tzinfo=timezone.utc),
    ...         contact_id="c-1", outcome="booked demo")
    >>> a.kind, a.outcome, a.version
    (<ActivityKind.MEETING: 'meeting'>, 'booked demo', 1)
    """
    record = _make(kind, at, id, fields)
    return store.activities.add(record)


def log_many(store: Store, activities: Iterable[Activity]) -> list[Activity]:
    """Record many activities at once: all of them, or (on a bad one) none.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit.store import MemoryStore
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> len(log_many(MemoryStore(), [Activity(id=f"a{i}", kind="note", at=at)
    ...                              for i in range(3)]))
    3
    """
    return store.activities.add_many(activities)


def _make(kind: Any, at: Any, record_id: str | None, fields: dict[str, Any]) -> Activity:
    import attrs

    known = {a.name for a in attrs.fields(Activity)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValidationError(
            "Activity",
            unknown[0],
            fields[unknown[0]],
            f"is not an Activity field; known fields: {', '.join(sorted(known))}",
            record_id=record_id,
        )
    return Activity(id=record_id or f"act-{uuid.uuid4().hex}", kind=kind, at=at, **fields)


def _family_and_contacts(
    store: Store, ref_kind: str, ref_id: str, include_family: bool, include_contacts: bool
) -> Criteria:
    field = REF_KINDS[ref_kind]
    if ref_kind != "account" or not (include_family or include_contacts):
        return F[field] == ref_id
    accounts = [ref_id]
    if include_family:
        from crmkit.hierarchy import AccountHierarchy, family

        h = AccountHierarchy.from_store(store)
        if ref_id in h:
            accounts = family(h, ref_id)
    criteria: Criteria = F.account_id.isin(accounts)
    if include_contacts:
        cols = store.contacts.columns(["id"], F.account_id.isin(accounts))
        if len(cols["id"]):
            criteria = criteria | F.contact_id.isin(cols["id"].tolist())
    return criteria


def timeline(
    store: Store,
    ref_kind: str,
    ref_id: str,
    *,
    kinds: Sequence[ActivityKind | str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
    include_family: bool = False,
    include_contacts: bool = False,
) -> list[Activity]:
    """The activities of one account, contact, lead or opportunity, newest first.

    ``ref_kind`` is ``"account"``, ``"contact"``, ``"lead"`` or ``"opportunity"``. Ties on
    ``at`` are ordered by id. ``kinds`` keeps only those kinds; ``since`` (inclusive) and
    ``until`` (exclusive) bound ``at``; ``limit``/``offset`` cut the list (default: all
    of it; to read page by page, use :func:`timeline_page`). For an account,
    ``include_family`` adds every account of its hierarchy family and ``include_contacts``
    adds the activities of those accounts' contacts. The query runs in the store (SQL for
    :class:`~crmkit.store.SQLiteStore`).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit.store import MemoryStore
    >>> from crmkit.records import Account, Contact
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ"),
    ...                              Account(id="fr", name="FR", parent_id="hq")])
    >>> _ = store.contacts.add(Contact(id="c1", account_id="fr"))
    >>> t = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> _ = log(store, "call", t, id="x1", account_id="hq")
    >>> _ = log(store, "email_replied", t, id="x2", contact_id="c1")
    >>> [a.id for a in timeline(store, "account", "hq")]
    ['x1']
    >>> [a.id for a in timeline(store, "account", "hq", include_family=True,
    ...                         include_contacts=True)]
    ['x1', 'x2']
    """
    criteria = _timeline_criteria(
        store, ref_kind, ref_id, kinds, since, until, include_family, include_contacts
    )
    return store.activities.query(criteria, order_by=["-at"], limit=limit, offset=offset)


def _timeline_criteria(
    store: Store,
    ref_kind: str,
    ref_id: str,
    kinds: Sequence[ActivityKind | str] | None,
    since: datetime | None,
    until: datetime | None,
    include_family: bool,
    include_contacts: bool,
) -> Criteria | None:
    if ref_kind not in REF_KINDS:
        raise ValidationError(
            "Activity",
            "ref_kind",
            ref_kind,
            f"must be one of {', '.join(REF_KINDS)}",
        )
    if not isinstance(ref_id, str) or not ref_id:
        raise ValidationError("Activity", REF_KINDS[ref_kind], ref_id, "must be a non-empty id")
    base = _family_and_contacts(store, ref_kind, ref_id, include_family, include_contacts)
    return _narrow(base, kinds, since, until)


@attrs.frozen
class TimelinePage:
    """One page of a timeline: ``items`` newest first; ``has_more`` says whether more
    exist; pass ``next_cursor`` as ``cursor`` to read them (``None`` on the last page)."""

    items: list[Activity]
    has_more: bool
    next_cursor: str | None


def timeline_page(
    store: Store,
    ref_kind: str,
    ref_id: str,
    *,
    cursor: str | None = None,
    limit: int = 50,
    kinds: Sequence[ActivityKind | str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_family: bool = False,
    include_contacts: bool = False,
) -> TimelinePage:
    """A page of :func:`timeline` (same arguments) after ``cursor``, at most ``limit`` items.

    The cursor is a position (the last item's time and id), not an offset, so activities
    logged between two calls neither repeat nor shift an item out of the next page; an
    activity logged *older* than the cursor still shows up on a later page.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> for i in range(5):
    ...     _ = log(store, "call", t.replace(hour=i), id=f"x{i}", account_id="acme")
    >>> page = timeline_page(store, "account", "acme", limit=3)
    >>> [a.id for a in page.items], page.has_more
    (['x4', 'x3', 'x2'], True)
    >>> last = timeline_page(store, "account", "acme", limit=3, cursor=page.next_cursor)
    >>> [a.id for a in last.items], last.has_more, last.next_cursor
    (['x1', 'x0'], False, None)
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("Activity", "limit", limit, "must be a whole number >= 1")
    criteria = _timeline_criteria(
        store, ref_kind, ref_id, kinds, since, until, include_family, include_contacts
    )
    if cursor is not None:
        at, last_id = _read_cursor(cursor)
        after = (F.at < at) | ((F.at == at) & (F.id > last_id))
        criteria = after if criteria is None else criteria & after
    found = store.activities.query(criteria, order_by=["-at"], limit=limit + 1)
    items, more = found[:limit], len(found) > limit
    next_cursor = f"{micros(items[-1].at)}:{items[-1].id}" if more else None
    return TimelinePage(items=items, has_more=more, next_cursor=next_cursor)


def _read_cursor(cursor: Any) -> tuple[datetime, str]:
    head, sep, last_id = cursor.partition(":") if isinstance(cursor, str) else ("", "", "")
    try:
        if not sep or not last_id:
            raise ValueError
        return EPOCH + timedelta(microseconds=int(head)), last_id
    except (ValueError, OverflowError):
        raise ValidationError(
            "Activity", "cursor", cursor, "is not a cursor returned by timeline_page"
        ) from None


def _narrow(
    criteria: Criteria | None,
    kinds: Sequence[ActivityKind | str] | None,
    since: datetime | None,
    until: datetime | None,
) -> Criteria | None:
    parts: list[Criteria] = [] if criteria is None else [criteria]
    if kinds is not None:
        values = [_kind(k) for k in kinds]
        parts.append(F.kind.isin(values))
    if since is not None:
        parts.append(F.at >= since)
    if until is not None:
        parts.append(F.at < until)
    if not parts:
        return None
    result = parts[0]
    for part in parts[1:]:
        result = result & part
    return result


def _kind(value: Any) -> str:
    try:
        return ActivityKind(value).value
    except ValueError:
        raise ValidationError(
            "Activity",
            "kind",
            value,
            f"must be one of {', '.join(k.value for k in ActivityKind)}",
        ) from None


def last_touch(
    store: Store,
    *,
    kinds: Sequence[ActivityKind | str] | None = None,
    outbound_only: bool = False,
) -> dict[str, np.ndarray[Any, Any]]:
    """The latest activity time per account: ``{"account_id": ids, "at": datetime64[us]}``.

    Accounts come sorted by id. An activity logged on a contact without an
    ``account_id`` counts for the contact's account (as stored now); activities with
    neither are ignored. ``kinds`` restricts the activity kinds counted as a touch;
    ``outbound_only`` counts only what your reps did (``direction == "outbound"`` or an
    ``actor_id``).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> for i, (acc, day) in enumerate([("b", 3), ("a", 1), ("b", 7), ("a", 2)]):
    ...     _ = log(store, "call", datetime(2026, 1, day, tzinfo=timezone.utc),
    ...             id=f"x{i}", account_id=acc)
    >>> lt = last_touch(store)
    >>> lt["account_id"].tolist(), [str(d)[:10] for d in lt["at"]]
    (['a', 'b'], ['2026-01-02', '2026-01-07'])
    """
    criteria = _narrow(F.account_id.notnull() | F.contact_id.notnull(), kinds, None, None)
    cols = store.activities.columns(
        ["account_id", "contact_id", "at", "direction", "actor_id"], criteria
    )
    ids = _accounts_of(store, cols["account_id"], cols["contact_id"])
    keep = ids != ""
    cols = {name: values[keep] for name, values in cols.items()}
    ids, at = ids[keep], cols["at"]
    if outbound_only:
        keep = (cols["direction"] == "outbound") | (cols["actor_id"] != "")
        ids, at = ids[keep], at[keep]
    if len(ids) == 0:
        return {"account_id": np.array([], dtype=str), "at": np.array([], dtype="datetime64[us]")}
    keys, inverse = np.unique(ids, return_inverse=True)
    latest = np.full(len(keys), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest, inverse, at.astype(np.int64))
    return {"account_id": keys, "at": latest.astype("datetime64[us]")}


def _accounts_of(
    store: Store, account_ids: np.ndarray[Any, Any], contact_ids: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """``account_ids`` with each empty one filled from its contact's account ("" if none)."""
    missing = (account_ids == "") & (contact_ids != "")
    if not missing.any():
        return account_ids
    wanted = np.unique(contact_ids[missing]).tolist()
    known = store.contacts.columns(["id", "account_id"], F.id.isin(wanted))
    order = np.argsort(known["id"])
    keys, values = known["id"][order], known["account_id"][order]
    result = account_ids.astype(object)
    if len(keys):
        pos = np.minimum(np.searchsorted(keys, contact_ids[missing]), len(keys) - 1)
        found = keys[pos] == contact_ids[missing]
        result[np.flatnonzero(missing)[found]] = values[pos[found]]
    return result.astype(str)


def activity_counts(
    store: Store,
    by: str = "account_id",
    kinds: Sequence[ActivityKind | str] | None = None,
    since: datetime | None = None,
) -> dict[str, np.ndarray[Any, Any]]:
    """Activity counts per ``by`` value as columns, for scoring features.

    Returns ``{by: sorted keys, "total": int64, <kind>: int64 for each kind}``; the kinds
    are ``kinds`` if given (in that order) else every kind seen. Rows with an empty ``by``
    are ignored. ``since`` counts only activities at or after it.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> t = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> for i, (c, k) in enumerate([("c1", "call"), ("c2", "call"), ("c1", "meeting")]):
    ...     _ = log(store, k, t, id=f"x{i}", contact_id=c)
    >>> counts = activity_counts(store, by="contact_id", kinds=["meeting"])
    >>> counts["contact_id"].tolist(), counts["total"].tolist(), counts["meeting"].tolist()
    (['c1'], [1], [1])
    """
    if by not in {"account_id", "contact_id", "lead_id", "opportunity_id", "actor_id"}:
        raise ValidationError(
            "Activity",
            "by",
            by,
            "must be account_id, contact_id, lead_id, opportunity_id or actor_id",
        )
    criteria = _narrow(F[by].notnull(), kinds, since, None)
    cols = store.activities.columns([by, "kind"], criteria)
    keys, inverse = np.unique(cols[by], return_inverse=True)
    result: dict[str, np.ndarray[Any, Any]] = {
        by: keys,
        "total": np.bincount(inverse, minlength=len(keys)).astype(np.int64),
    }
    names = [_kind(k) for k in kinds] if kinds is not None else sorted(set(cols["kind"].tolist()))
    for name in names:
        result[name] = np.bincount(
            inverse, weights=(cols["kind"] == name).astype(np.float64), minlength=len(keys)
        ).astype(np.int64)
    return result
