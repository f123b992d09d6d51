"""Changing the hierarchy in a store: reparenting and acquisitions.

A change is an optimistic update of ``Account.parent_id`` inside a transaction; a change
that would make an account its own ancestor raises
:class:`~crmkit.errors.HierarchyCycleError` with the cycle's path and writes nothing.
The result (:class:`Reparented`) describes the change. crmkit has no record type for
hierarchy history yet, so the history of parent changes is not persisted.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from crmkit.errors import HierarchyCycleError, ValidationError
from crmkit.records import HierarchyChange

if TYPE_CHECKING:
    from crmkit.store import Store

__all__ = ["Merged", "Reparented", "hierarchy_history", "merge_under", "reparent"]


@attrs.frozen
class Reparented:
    """What :func:`reparent` changed: ``account_id`` moved from one parent to another."""

    account_id: str
    from_parent_id: str | None
    to_parent_id: str | None
    at: datetime
    reason: str
    changed_by: str | None
    version: int


@attrs.frozen
class Merged:
    """What :func:`merge_under` changed: the acquired family's top was reparented and
    ``joined`` (every account of the acquired family) now sits under the acquirer."""

    reparented: Reparented
    joined: tuple[str, ...]


def _check_at(at: object, account_id: str) -> None:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValidationError(
            "Account", "at", at, "must be a timezone-aware datetime", record_id=account_id
        )


def _chain(store: Store, start: str | None) -> list[str]:
    """``start`` and its ancestors as stored (stops at a missing parent or a loop)."""
    chain: list[str] = []
    seen: set[str] = set()
    node = start
    while node is not None and node not in seen:
        account = store.accounts.find(node)
        if account is None:
            break
        chain.append(node)
        seen.add(node)
        node = account.parent_id
    return chain


def reparent(
    store: Store,
    account_id: str,
    new_parent_id: str | None,
    *,
    reason: str,
    at: datetime,
    changed_by: str | None = None,
    expected_version: int | None = None,
) -> Reparented:
    """Move ``account_id`` (and its subtree) under ``new_parent_id`` (``None``: make it a root).

    Raises :class:`~crmkit.errors.NotFound` for unknown accounts,
    :class:`~crmkit.errors.HierarchyCycleError` (with the path) when the move would make
    the account its own ancestor, and :class:`~crmkit.errors.ConflictError` when
    ``expected_version`` is given and stale.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ"),
    ...     Account(id="eu", name="EU", parent_id="hq"), Account(id="fr", name="FR")])
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> reparent(store, "fr", "eu", reason="reorg", at=at).to_parent_id
    'eu'
    >>> reparent(store, "hq", "fr", reason="oops", at=at)
    Traceback (most recent call last):
    ...
    crmkit.errors.HierarchyCycleError: Account 'hq' field 'parent_id' = 'hq': would create a cycle:
    hq -> fr -> eu -> hq
    """
    _check_at(at, account_id)
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError(
            "Account", "reason", reason, "say why the parent changes", record_id=account_id
        )
    with store.transaction():
        account = store.accounts.get(account_id)
        if new_parent_id is not None:
            store.accounts.get(new_parent_id)
            chain = _chain(store, new_parent_id)
            if account_id in chain:
                path = [account_id, *chain[: chain.index(account_id) + 1]]
                raise HierarchyCycleError(path)
        version = account.version if expected_version is None else expected_version
        stored = store.accounts.update(
            attrs.evolve(account, parent_id=new_parent_id), expected_version=version
        )
        store.hierarchy_changes.add(
            HierarchyChange(
                id=f"{account_id}:parent:{stored.version:04d}",
                account_id=account_id,
                from_parent_id=account.parent_id,
                to_parent_id=new_parent_id,
                at=at,
                reason=reason,
                changed_by=changed_by,
            )
        )
    return Reparented(
        account_id=account_id,
        from_parent_id=account.parent_id,
        to_parent_id=new_parent_id,
        at=at,
        reason=reason,
        changed_by=changed_by,
        version=stored.version,
    )


def merge_under(
    store: Store,
    acquired_id: str,
    acquirer_id: str,
    *,
    reason: str = "acquisition",
    at: datetime,
    changed_by: str | None = None,
) -> Merged:
    """After an acquisition, put the acquired account's whole family under ``acquirer_id``.

    The acquired account's ultimate parent is reparented under the acquirer, so every
    account of the acquired group joins the acquirer's family. Accounts already in the
    same family raise :class:`~crmkit.errors.ValidationError`.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="big", name="Big"),
    ...     Account(id="small", name="Small"), Account(id="small-de", name="DE",
    ...     parent_id="small")])
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> merged = merge_under(store, "small-de", "big", at=at)
    >>> merged.reparented.account_id, merged.joined
    ('small', ('small', 'small-de'))
    """
    from crmkit.hierarchy._graph import AccountHierarchy
    from crmkit.hierarchy._nav import family

    _check_at(at, acquired_id)
    with store.transaction():
        store.accounts.get(acquirer_id)
        acquired_top = _chain(store, store.accounts.get(acquired_id).id)[-1]
        acquirer_chain = _chain(store, acquirer_id)
        if acquired_top in acquirer_chain:
            raise ValidationError(
                "Account",
                "parent_id",
                acquirer_id,
                f"{acquired_id!r} and {acquirer_id!r} are already in the same family "
                f"(under {acquired_top!r}); use reparent() to move inside a family",
                record_id=acquired_id,
            )
        joined = tuple(family(AccountHierarchy.from_store(store), acquired_top))
        moved = reparent(
            store, acquired_top, acquirer_id, reason=reason, at=at, changed_by=changed_by
        )
    return Merged(reparented=moved, joined=joined)


def hierarchy_history(store: Store, account_id: str) -> list[HierarchyChange]:
    """Every parent change of ``account_id``, oldest first.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="hq", name="HQ"), Account(id="fr", name="FR")])
    >>> _ = reparent(store, "fr", "hq", reason="reorg",
    ...              at=datetime(2026, 1, 5, tzinfo=timezone.utc))
    >>> [(c.from_parent_id, c.to_parent_id, c.reason) for c in hierarchy_history(store, "fr")]
    [(None, 'hq', 'reorg')]
    """
    return store.hierarchy_changes.query(
        {"field": "account_id", "op": "==", "value": account_id}, order_by=["at", "id"]
    )
