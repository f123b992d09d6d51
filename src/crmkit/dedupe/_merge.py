"""Merge duplicates into a survivor, re-pointing every reference, and undo it."""

from __future__ import annotations

import enum
import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from crmkit._schema import record_type_named
from crmkit.clock import Clock, SystemClock
from crmkit.codec import from_dict, to_dict
from crmkit.errors import (
    ConflictError,
    CriteriaError,
    HierarchyCycleError,
    NotFound,
    ValidationError,
)
from crmkit.events import emit
from crmkit.records import (
    Account,
    Activity,
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
    StageChange,
)
from crmkit.registry import references_to
from crmkit.store import Store, run_transaction

__all__ = ["MERGEABLE", "REFERENCES", "SurvivorRule", "merge", "rank_records", "unmerge"]

_log = logging.getLogger("crmkit.dedupe")

REFERENCES: Mapping[str, tuple[tuple[type[Any], str], ...]] = {
    "Account": (
        (Account, "parent_id"),
        (Contact, "account_id"),
        (Opportunity, "account_id"),
        (Activity, "account_id"),
        (Reminder, "account_id"),
        (CampaignMember, "account_id"),
        (DealRegistration, "account_id"),
        (Partner, "account_id"),
        (Inquiry, "account_id"),
        (LifecycleChange, "account_id"),
        (HierarchyChange, "account_id"),
        (HierarchyChange, "from_parent_id"),
        (HierarchyChange, "to_parent_id"),
        (Lead, "converted_account_id"),
    ),
    "Contact": (
        (Opportunity, "contact_id"),
        (Activity, "contact_id"),
        (Reminder, "contact_id"),
        (Enrollment, "contact_id"),
        (CampaignMember, "contact_id"),
        (Inquiry, "contact_id"),
        (Lead, "converted_contact_id"),
    ),
    "Lead": (
        (Opportunity, "lead_id"),
        (Activity, "lead_id"),
        (Reminder, "lead_id"),
        (Enrollment, "lead_id"),
        (CampaignMember, "lead_id"),
    ),
    "Opportunity": (
        (Activity, "opportunity_id"),
        (Reminder, "opportunity_id"),
        (StageChange, "opportunity_id"),
        (DealRegistration, "opportunity_id"),
        (Lead, "converted_opportunity_id"),
    ),
}
"""Every field that refers to a record of each mergeable type; ownership history
(``OwnershipChange.record_type`` + ``record_id``) and the fields of registered record
types declared with ``crmkit.fields.reference(...)`` are re-pointed too."""

MERGEABLE = tuple(REFERENCES)
"""The record types :func:`merge` accepts."""

_ACTIVITY_FIELD = {
    "Account": "account_id",
    "Contact": "contact_id",
    "Lead": "lead_id",
    "Opportunity": "opportunity_id",
}
_NOT_MERGED = ("id", "version", "custom", "created_at")


class SurvivorRule(enum.StrEnum):
    """Which record of a group survives a merge.

    ``oldest``: the earliest ``created_at`` (records without one come last);
    ``most_complete``: the most fields filled in; ``most_recent_activity``: the latest
    activity logged against it. Ties go to the oldest, then the smallest id.
    """

    OLDEST = "oldest"
    MOST_COMPLETE = "most_complete"
    MOST_RECENT_ACTIVITY = "most_recent_activity"


def _type_of(record_type: type[Any] | str) -> type[Any]:
    try:
        kind = record_type_named(record_type) if isinstance(record_type, str) else record_type
    except CriteriaError as err:
        raise ValidationError("merge", "record_type", record_type, str(err)) from None
    if getattr(kind, "__name__", None) not in REFERENCES:
        raise ValidationError(
            "merge", "record_type", record_type, f"must be one of {', '.join(MERGEABLE)}"
        )
    return kind


def _filled(record: Any) -> int:
    count = len(record.custom)
    for field in attrs.fields(type(record)):
        if field.name in _NOT_MERGED:
            continue
        value = getattr(record, field.name)
        if value is not None and value != () and value != field.default:
            count += 1
    return count


def _oldest_key(record: Any) -> tuple[Any, ...]:
    created = record.created_at
    return (created is None, created or datetime.min, record.id)


def rank_records(
    store: Store, records: Sequence[Any], rule: SurvivorRule | str = SurvivorRule.OLDEST
) -> list[Any]:
    """``records`` best survivor first under ``rule``.

    >>> from datetime import datetime, timezone
    >>> from crmkit.store import MemoryStore
    >>> old = Contact(id="c2", created_at=datetime(2020, 1, 1, tzinfo=timezone.utc))
    >>> full = Contact(id="c1", email="a@x.com", phone="1", title="CTO")
    >>> [r.id for r in rank_records(MemoryStore(), [full, old], "oldest")]
    ['c2', 'c1']
    >>> [r.id for r in rank_records(MemoryStore(), [full, old], "most_complete")]
    ['c1', 'c2']
    """
    try:
        rule = SurvivorRule(rule)
    except ValueError:
        raise ValidationError(
            "merge", "rule", rule, f"must be one of {', '.join(SurvivorRule)}"
        ) from None
    ranked = sorted(records, key=_oldest_key)
    if rule is SurvivorRule.MOST_COMPLETE:
        ranked.sort(key=lambda r: -_filled(r))
    elif rule is SurvivorRule.MOST_RECENT_ACTIVITY:
        field = _ACTIVITY_FIELD[type(records[0]).__name__]
        ids = [r.id for r in records]
        latest: dict[str, datetime] = {}
        for activity in store.activities.query({"field": field, "op": "in", "value": ids}):
            key = getattr(activity, field)
            if key not in latest or activity.at > latest[key]:
                latest[key] = activity.at

        def by_activity(record: Any) -> tuple[bool, float]:
            at = latest.get(record.id)
            return (at is None, -at.timestamp() if at is not None else 0.0)

        ranked.sort(key=by_activity)
    return ranked


def _choose(ranked: list[Any], fields: Mapping[str, str], kind: type[Any]) -> dict[str, Any]:
    """The survivor's new field values under the field-level survivorship ``fields``."""
    names = [f.name for f in attrs.fields(kind) if f.name not in _NOT_MERGED]
    for name, how in fields.items():
        if name not in names:
            raise ValidationError(
                kind.__name__, name, how, "is not a field a merge can choose (field survivorship)"
            )
        if how not in ("first", "survivor", "newest", "oldest") and how not in {
            r.id for r in ranked
        }:
            raise ValidationError(
                kind.__name__,
                name,
                how,
                "must be 'first', 'survivor', 'newest', 'oldest' or the id of a merged record",
            )
    by_age = sorted(ranked, key=_oldest_key)
    chosen: dict[str, Any] = {}
    for name in names:
        how = fields.get(name, "first")
        if how == "survivor":
            continue
        if how == "newest":
            order = [r for r in reversed(by_age) if r.created_at is not None] + [
                r for r in by_age if r.created_at is None
            ]
        elif how == "oldest":
            order = by_age
        elif how == "first":
            order = ranked
        else:
            order = [r for r in ranked if r.id == how]
        for record in order:
            value = getattr(record, name)
            if value is not None and value != ():
                chosen[name] = value
                break
    custom: dict[str, Any] = {}
    for record in reversed(ranked):
        custom.update(record.custom)
    chosen["custom"] = custom
    created = [r.created_at for r in ranked if r.created_at is not None]
    chosen["created_at"] = min(created) if created else None
    return chosen


def _references(store: Store, name: str, ids: list[str]) -> list[tuple[type[Any], Any, str]]:
    """``(type, record, field)`` for every field of every record pointing into ``ids``."""
    found = []
    # references declared on registered types (fields.reference(Account)) count too
    for ref_type, field in REFERENCES[name] + references_to(name):
        repo = store.repository(ref_type)
        for record in repo.query({"field": field, "op": "in", "value": ids}):
            found.append((ref_type, record, field))
    history = store.ownership_changes.query(
        {
            "all": [
                {"field": "record_type", "op": "==", "value": name},
                {"field": "record_id", "op": "in", "value": ids},
            ]
        }
    )
    found.extend((OwnershipChange, record, "record_id") for record in history)
    return found


_MEMBER_FIELD = {"Account": "account_id", "Contact": "contact_id", "Lead": "lead_id"}


def _member_person(member: CampaignMember) -> tuple[str, str] | None:
    """Who a campaign member is, as the store's rule sees it: its contact, else its lead,
    else (for an account member) its account."""
    for field in ("contact_id", "lead_id", "account_id"):
        value = getattr(member, field)
        if value is not None:
            return field, value
    return None


def _claims(member: CampaignMember, other: CampaignMember) -> bool:
    """Whether the store's rule counts ``other`` as ``member``'s person again."""
    person = _member_person(member)
    if person is None or getattr(other, person[0]) != person[1]:
        return False
    return person[0] != "account_id" or (other.contact_id is None and other.lead_id is None)


def _doubled_members(
    store: Store, name: str, survivor_id: str, ranked_ids: list[str]
) -> list[CampaignMember]:
    """The memberships a merge removes rather than re-points: those that, re-pointed to
    the survivor, would be a person already in that campaign. Members standing for
    someone else (a contact member of a merged lead) are kept first, then the merged
    records' own in rank order (the survivor's first)."""
    field = _MEMBER_FIELD.get(name)
    if field is None:
        return []
    rank = {record_id: i for i, record_id in enumerate(ranked_ids)}
    found = store.campaign_members.query({"field": field, "op": "in", "value": ranked_ids})

    def order(member: CampaignMember) -> tuple[bool, int, str]:
        person = _member_person(member)
        own = person is not None and person[0] == field
        return (own, rank[getattr(member, field)], member.id)

    kept: dict[str, list[CampaignMember]] = {}
    removed = []
    for member in sorted(found, key=order):
        repoint: dict[str, Any] = {field: survivor_id}
        moved = attrs.evolve(member, **repoint)
        same = kept.setdefault(member.campaign_id, [])
        if any(_claims(moved, k) or _claims(k, moved) for k in same):
            removed.append(member)
        else:
            same.append(moved)
    return removed


def _resolve_parent(parent: str | None, survivor_id: str, before: Mapping[str, Any]) -> str | None:
    """The survivor's parent when it pointed into the merged group: the group's nearest
    ancestor outside it, else none."""
    seen = set()
    while parent is not None and (parent in before or parent == survivor_id):
        if parent == survivor_id or parent in seen:
            return None
        seen.add(parent)
        parent = before[parent].parent_id
    return parent


def _check_no_cycle(store: Store, survivor_id: str) -> None:
    path = [survivor_id]
    parent = store.accounts.get(survivor_id).parent_id
    while parent is not None:
        path.append(parent)
        if parent == survivor_id:
            raise HierarchyCycleError(path)
        found = store.accounts.find(parent)
        parent = found.parent_id if found is not None else None
        if len(path) > 10_000:  # an existing cycle above: not this merge's to report
            return


def merge(
    store: Store,
    record_type: type[Any] | str,
    ids: Iterable[str],
    *,
    survivor: str | None = None,
    rule: SurvivorRule | str = SurvivorRule.OLDEST,
    fields: Mapping[str, str] | None = None,
    merge_id: str | None = None,
    merged_by: str | None = None,
    reason: str | None = None,
    clock: Clock | None = None,
) -> Merge:
    """Merge the records ``ids`` of ``record_type`` (accounts, contacts, leads or
    opportunities) into one survivor, in one transaction.

    The survivor is ``survivor`` if given, else the best under ``rule``
    (:class:`SurvivorRule`). Each field takes the first non-empty value of the records
    in rank order (``fields`` overrides per field: ``"survivor"``, ``"newest"``,
    ``"oldest"``, ``"first"`` or a record id); ``custom`` fields are united (higher
    rank wins) and ``created_at`` is the earliest. Every reference to a merged record
    (see :data:`REFERENCES`, ownership history included) is re-pointed to the survivor,
    the merged records are deleted, and a :class:`~crmkit.records.Merge` record keeps
    everything :func:`unmerge` needs. Where several merged records are members of one
    campaign, the survivor keeps its own membership (else the best-ranked record's) and
    the others are deleted rather than re-pointed, so the survivor is in each campaign
    once (a lead's own membership also yields to a contact member that names a merged
    lead); the snapshot keeps them and :func:`unmerge` adds them back.

    The reads run inside the transaction (``run_transaction``), so a retry decides
    afresh; with a fixed ``merge_id`` a retry after success fails with AlreadyExists.

    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.contacts.add_many([Contact(id="c1", email="ada@x.com"),
    ...     Contact(id="c2", first_name="Ada", phone="555 0100")])
    >>> _ = store.activities.add(Activity(id="a1", kind="call", contact_id="c2",
    ...     at=datetime(2026, 1, 5, tzinfo=__import__("datetime").timezone.utc)))
    >>> done = merge(store, "Contact", ["c1", "c2"], merge_id="m1")
    >>> kept = store.contacts.get("c1")
    >>> (kept.email, kept.first_name, kept.phone), store.activities.get("a1").contact_id
    (('ada@x.com', 'Ada', '555 0100'), 'c1')
    >>> "c2" in store.contacts, done.merged_ids
    (False, ('c2',))
    """
    kind = _type_of(record_type)
    name = kind.__name__
    group = list(dict.fromkeys(ids))
    if len(group) < 2:
        raise ValidationError(name, "id", group, "a merge needs at least two distinct records")
    if survivor is not None and survivor not in group:
        raise ValidationError(name, "id", survivor, "the survivor must be one of the merged ids")
    field_rules = dict(fields or {})
    now = (clock or SystemClock()).now()
    new_id = merge_id or f"merge-{uuid.uuid4().hex}"

    def operation() -> Merge:
        repo = store.repository(kind)
        records = [repo.get(i) for i in group]
        ranked = rank_records(store, records, rule)
        if survivor is not None:
            ranked.sort(key=lambda r: r.id != survivor)
        keep = ranked[0]
        merged = [r.id for r in ranked[1:]]
        before = {r.id: r for r in records if r.id != keep.id}
        chosen = _choose(ranked, field_rules, kind)
        if kind is Account:
            chosen["parent_id"] = _resolve_parent(chosen.get("parent_id"), keep.id, before)
        removed = _doubled_members(store, name, keep.id, [r.id for r in ranked])
        gone_members = {m.id for m in removed}
        changes: dict[tuple[str, str], dict[str, Any]] = {}
        current: dict[tuple[str, str], Any] = {}
        for ref_type, record, field in _references(store, name, merged):
            if ref_type is kind and record.id in group:
                continue  # the group itself: the survivor is rebuilt, the rest deleted
            if ref_type is CampaignMember and record.id in gone_members:
                continue
            key = (ref_type.__name__, record.id)
            current[key] = record
            changes.setdefault(key, {})[field] = getattr(record, field)
        for member in removed:  # first, so re-pointing the kept ones makes no duplicate
            store.campaign_members.delete(member.id)
        after: dict[str, int] = {}
        for key, olds in changes.items():
            record = current[key]
            updated = attrs.evolve(record, **dict.fromkeys(olds, keep.id))
            stored = store.repository(type(record)).update(updated)
            after[f"{key[0]}:{key[1]}"] = stored.version
        new_survivor = repo.update(attrs.evolve(keep, **chosen))
        for record_id in merged:
            repo.delete(record_id)
        if kind is Account:
            _check_no_cycle(store, keep.id)
        snapshot = {
            "records": [to_dict(r) for r in records],
            "references": [
                [type_name, record_id, field, old]
                for (type_name, record_id), olds in changes.items()
                for field, old in olds.items()
            ],
            "after": after,
            "removed_members": [to_dict(m) for m in removed],
            "survivor_version": new_survivor.version,
        }
        emit(
            store,
            "records.merged",
            subject=keep.id,
            payload={"record_type": name, "merged_ids": merged, "merge_id": new_id},
        )
        return store.merges.add(
            Merge(
                id=new_id,
                record_type=name,
                survivor_id=keep.id,
                merged_ids=tuple(merged),
                at=now,
                survivor_rule=str(SurvivorRule(rule)) if survivor is None else "chosen",
                merged_by=merged_by,
                reason=reason,
                snapshot=json.dumps(snapshot, sort_keys=True),
            )
        )

    done = run_transaction(store, operation)
    _log.info(
        "merge %s: %s %s merged into %s",
        done.id,
        done.record_type,
        ", ".join(done.merged_ids),
        done.survivor_id,
        extra={"merge_id": done.id, "survivor_id": done.survivor_id},
    )
    return done


def unmerge(
    store: Store, merge_id: str, *, force: bool = False, clock: Clock | None = None
) -> Merge:
    """Undo the merge ``merge_id``: the survivor and the merged records get back every
    field they had, every re-pointed reference points where it did, and the Merge
    record is marked ``unmerged_at``; campaign memberships the merge removed as
    duplicates are added back with their ids and fields. Versions move forward (a
    restored record is a new write), so readers holding the merged state see a conflict
    rather than stale data.

    If the survivor or a re-pointed record was written since the merge, unmerge raises
    :class:`~crmkit.errors.ConflictError` and changes nothing; ``force=True`` restores
    anyway (references only where they still point at the survivor). Unmerging twice
    is a :class:`~crmkit.errors.ValidationError`.

    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.leads.add_many([Lead(id="l1", email="a@x.com"), Lead(id="l2", company="X")])
    >>> _ = merge(store, "Lead", ["l1", "l2"], merge_id="m1")
    >>> store.leads.get("l1").company
    'X'
    >>> undone = unmerge(store, "m1")
    >>> store.leads.get("l1").company is None, store.leads.get("l2").company
    (True, 'X')
    """
    now = (clock or SystemClock()).now()

    def operation() -> Merge:
        record = store.merges.get(merge_id)
        if record.unmerged_at is not None:
            raise ValidationError(
                "Merge",
                "unmerged_at",
                record.unmerged_at,
                "was already unmerged",
                record_id=merge_id,
            )
        kind = _type_of(record.record_type)
        data = json.loads(record.snapshot or "{}")
        before = [from_dict(kind, item) for item in data["records"]]
        repo = store.repository(kind)
        survivor = repo.get(record.survivor_id)
        if not force and survivor.version != data["survivor_version"]:
            raise ConflictError(
                kind.__name__, survivor.id, data["survivor_version"], survivor.version
            )
        grouped: dict[tuple[str, str], dict[str, Any]] = {}
        for type_name, record_id, field, old in data["references"]:
            grouped.setdefault((type_name, record_id), {})[field] = old
        restores = []
        for (type_name, record_id), olds in grouped.items():
            ref_repo = store.repository(record_type_named(type_name))
            now_record = ref_repo.find(record_id)
            if now_record is None:
                if force:
                    continue
                raise NotFound(type_name, record_id)
            expected = data["after"][f"{type_name}:{record_id}"]
            if not force and now_record.version != expected:
                raise ConflictError(type_name, record_id, expected, now_record.version)
            back = {
                f: old for f, old in olds.items() if getattr(now_record, f) == record.survivor_id
            }
            if back:
                restores.append((ref_repo, attrs.evolve(now_record, **back)))
        for item in before:
            if item.id == survivor.id:
                repo.update(attrs.evolve(item, version=survivor.version))
            else:
                repo.add(item)
        for ref_repo, restored in restores:
            ref_repo.update(restored)
        for item in data.get("removed_members", []):
            member = from_dict(CampaignMember, item)
            if force and member.id in store.campaign_members:
                continue  # added again since the merge: the later write stands
            store.campaign_members.add(member)
        return store.merges.update(attrs.evolve(record, unmerged_at=now))

    undone = run_transaction(store, operation)
    _log.info(
        "merge %s undone: %s %s restored beside %s",
        undone.id,
        undone.record_type,
        ", ".join(undone.merged_ids),
        undone.survivor_id,
        extra={"merge_id": undone.id, "survivor_id": undone.survivor_id},
    )
    return undone
