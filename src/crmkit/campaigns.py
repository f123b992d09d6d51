"""Campaigns: members, status history, attribution, ROI and account-based marketing.

A :class:`~crmkit.records.Campaign` targets *members* (contacts, leads or accounts, one
:class:`~crmkit.records.CampaignMember` each). Members move forward through
``targeted -> sent -> opened -> responded -> converted`` (each step stamps its own
timestamp, which is the member's status history); ``unsubscribed`` can be reached from any
status. Contacts who opted out are never added.

Attribution credits each opportunity's amount to the campaigns that *touched* it: a touch
is a member whose ``responded_at`` is before the opportunity's ``created_at`` and whose
contact, lead or account is the opportunity's contact, lead or account. Models:

=================  ==========================================================
``first_touch``    all the credit to the earliest touch
``last_touch``     all the credit to the latest touch
``linear``         equal shares
``u_shaped``       40% first, 40% last, 20% shared by the touches between
                   (one touch: 100%; two touches: 50/50)
=================  ==========================================================

Touches are ordered by ``responded_at``, ties by member id. The credits of an opportunity
with at least one touch always add up to its amount.

Examples
--------
>>> from datetime import datetime, timezone
>>> from crmkit import Campaign, Contact, MemoryStore, Opportunity
>>> from crmkit import campaigns
>>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
>>> store = MemoryStore()
>>> _ = store.campaigns.add(Campaign(id="c1", name="Webinar", actual_cost=500))
>>> _ = store.contacts.add_many([Contact(id="k1"), Contact(id="k2", opted_out=True)])
>>> result = campaigns.add_members(store, "c1", ids=["k1", "k2"], at=at)
>>> [m.contact_id for m in result.added], dict(result.skipped)
(['k1'], {'k2': 'contact opted out'})
>>> _ = campaigns.set_status(store, result.added[0].id, "responded", at=at)
>>> _ = store.opportunities.add(Opportunity(id="o1", name="Deal", contact_id="k1",
...     amount=2000, status="won", created_at=datetime(2026, 2, 1, tzinfo=timezone.utc)))
>>> campaigns.performance(store).row("c1")["roi"]
3.0
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

import attrs
import numpy as np

from crmkit.errors import NotFound, ValidationError
from crmkit.pipeline import Table
from crmkit.records import (
    Account,
    Activity,
    ActivityKind,
    Campaign,
    CampaignMember,
    CampaignStatus,
    Contact,
    Lead,
    MemberStatus,
    Opportunity,
    OpportunityStatus,
)
from crmkit.store._base import CriteriaLike, Store, run_transaction

__all__ = [
    "AddResult",
    "MODELS",
    "SyncResult",
    "account_engagement",
    "add_members",
    "attribution",
    "attribution_from_columns",
    "coverage",
    "credits",
    "minor_digits",
    "performance",
    "plot_performance",
    "section",
    "set_status",
    "sync_targets",
    "to_decimal",
    "touch_credits",
]

MODELS: tuple[str, ...] = ("first_touch", "last_touch", "linear", "u_shaped")
"""The attribution models :func:`credits` and :func:`attribution` accept."""

_ORDER = ("targeted", "sent", "opened", "responded", "converted")
_STAMP = {
    "targeted": "added_at",
    "sent": "sent_at",
    "opened": "opened_at",
    "responded": "responded_at",
    "converted": "converted_at",
    "unsubscribed": "unsubscribed_at",
}
_FIELD = {Contact: "contact_id", Lead: "lead_id", Account: "account_id"}
_KEYS = ("contact_id", "lead_id", "account_id")
_Array = np.ndarray[Any, Any]


@attrs.frozen(kw_only=True)
class AddResult:
    """What :func:`add_members` did: members ``added``, record ids that were
    ``already_members`` and record ids ``skipped`` with the reason."""

    added: tuple[CampaignMember, ...]
    already_members: tuple[str, ...]
    skipped: Mapping[str, str]


@attrs.frozen(kw_only=True)
class SyncResult:
    """What :func:`sync_targets` did: accounts that ``entered`` the target list, that
    ``left`` it (their still-``targeted`` members deleted), that left it but were
    ``kept`` (members with history stay, reported once), and how many stayed
    ``unchanged``."""

    entered: tuple[str, ...]
    left: tuple[str, ...]
    kept: tuple[str, ...]
    unchanged: int


def _aware(value: Any, record: str, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(record, field, value, "must be a timezone-aware datetime")
    return value


def _campaign(store: Store, campaign_id: str) -> Campaign:
    campaign = store.campaigns.find(campaign_id)
    if campaign is None:
        raise NotFound("Campaign", campaign_id)
    return campaign


def _ids_of(ids: Any, segments: Any = None) -> _Array:
    """Ids from a sequence, a ScoreResult (``.ids``), an array, or the members of the
    named ``segments`` of a Segments object (``.labels``)."""
    if hasattr(ids, "labels") and hasattr(ids, "ids"):
        names = [segments] if isinstance(segments, str) else segments
        if names is None:
            raise ValidationError(
                "CampaignMember",
                "ids",
                f"Segments {tuple(ids.names)}",
                "a Segments object covers every record; name the segments to target with "
                "segments=[...] (their union is targeted)",
            )
        names = list(names)
        unknown = [name for name in names if name not in ids.names]
        if unknown:
            raise ValidationError(
                "CampaignMember",
                "segments",
                unknown,
                f"no such segment; segments: {', '.join(map(str, ids.names))}",
            )
        return np.asarray(ids.ids, dtype=str)[np.isin(ids.labels, names)]
    if segments is not None:
        raise ValidationError(
            "CampaignMember", "segments", segments, "only applies when ids is a Segments object"
        )
    source = ids.ids if hasattr(ids, "ids") else ids
    if isinstance(source, str):
        source = [source]
    return np.asarray(list(np.asarray(source).tolist()), dtype=str)


def add_members(
    store: Store,
    campaign_id: str,
    *,
    criteria: CriteriaLike = None,
    record_type: type[Any] = Contact,
    ids: Any = None,
    segments: Any = None,
    at: datetime,
) -> AddResult:
    """Add the records matching ``criteria`` and/or listed in ``ids`` as members.

    ``ids`` may be a list of record ids, a scoring result (anything with ``.ids``, e.g.
    ``priority_scores(...).top(50)`` for an ABM target list) or a
    :class:`~crmkit.scoring.Segments` together with ``segments=[names]`` (the members of
    those segments, their union). With both criteria and ids, the members are the listed
    ids that match the criteria. Records already in the campaign (under any member id)
    are reported in ``already_members``; contacts that opted out are reported in
    ``skipped`` and never added. An unknown campaign, or an id that does not exist,
    raises :class:`~crmkit.errors.ValidationError` and nothing is written.

    The reads that decide what to add and the writes share one transaction
    (:func:`crmkit.store.run_transaction`), so processes adding the same records at once
    add each one once; the operation is idempotent and retried on a transaction
    conflict.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, Campaign, F, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.campaigns.add(Campaign(id="abm", name="ABM"))
    >>> _ = store.accounts.add_many([Account(id=f"a{i}", name=f"A{i}", employees=100 * i)
    ...                              for i in range(4)])
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> r = add_members(store, "abm", criteria=F.employees >= 200, record_type=Account, at=at)
    >>> [m.account_id for m in r.added]
    ['a2', 'a3']
    >>> add_members(store, "abm", ids=["a1", "a3"], record_type=Account, at=at).already_members
    ('a3',)
    """
    at = _aware(at, "CampaignMember", "added_at")
    if record_type not in _FIELD:
        raise ValidationError(
            "CampaignMember", "record_type", record_type, "must be Contact, Lead or Account"
        )
    if criteria is None and ids is None:
        raise ValidationError(
            "CampaignMember", "criteria", None, "give criteria, ids, or both to pick members"
        )
    wanted = None if ids is None else np.unique(_ids_of(ids, segments))
    return run_transaction(
        store, lambda: _add_members(store, campaign_id, criteria, record_type, wanted, at)
    )


def _add_members(
    store: Store,
    campaign_id: str,
    criteria: CriteriaLike,
    record_type: type[Any],
    wanted: _Array | None,
    at: datetime,
) -> AddResult:
    field = _FIELD[record_type]
    if store.campaigns.find(campaign_id) is None:
        who = [] if wanted is None else wanted.tolist()[:20]
        raise ValidationError(
            "CampaignMember",
            "campaign_id",
            campaign_id,
            f"no such campaign; add the Campaign before its members ({field} {who})",
            record_id=f"{campaign_id}:{field.removesuffix('_id')}:{who[0]}" if who else None,
        )
    repo = store.repository(record_type)
    extra = ["opted_out"] if record_type is Contact else []
    cols = repo.columns(["id", *extra], criteria)
    if wanted is not None:
        if criteria is None:
            known = repo.columns(["id"])["id"]
            unknown = wanted[~np.isin(wanted, known)]
            if len(unknown):
                raise ValidationError(
                    record_type.__name__,
                    "id",
                    unknown.tolist()[:20],
                    f"not found; cannot add to campaign {campaign_id!r}",
                )
        keep = np.isin(cols["id"], wanted)
        cols = {name: col[keep] for name, col in cols.items()}
    candidates = cols["id"]
    existing = store.campaign_members.columns(
        [field], {"field": "campaign_id", "op": "==", "value": campaign_id}
    )[field]
    already = np.isin(candidates, existing)
    opted = cols["opted_out"] if record_type is Contact else np.zeros(len(candidates), bool)
    skip = opted & ~already
    fresh = candidates[~already & ~opted]
    members = [
        CampaignMember(
            id=f"{campaign_id}:{field.removesuffix('_id')}:{record_id}",
            campaign_id=campaign_id,
            added_at=at,
            **{field: record_id},
        )
        for record_id in fresh.tolist()
    ]
    added = store.campaign_members.add_many(members)
    return AddResult(
        added=tuple(added),
        already_members=tuple(candidates[already].tolist()),
        skipped={str(i): "contact opted out" for i in candidates[skip].tolist()},
    )


def set_status(store: Store, member_id: str, status: Any, *, at: datetime) -> CampaignMember:
    """Move a member to ``status`` at ``at``, stamping that status's timestamp.

    Statuses only move forward (``targeted, sent, opened, responded, converted``);
    ``unsubscribed`` is reachable from any status and is final. Setting the current status
    again changes nothing. ``at`` may not be earlier than the member's latest timestamp.

    A conversion is a response too: a member moved straight to ``converted`` (without
    ``responded``) gets ``responded_at = at`` as well, so it counts as a response and as
    a touch in attribution. The read and the write share one transaction
    (:func:`crmkit.store.run_transaction`; idempotent, so retried on a conflict).

    >>> from datetime import datetime, timezone
    >>> from crmkit import Campaign, CampaignMember, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.campaigns.add(Campaign(id="c", name="C"))
    >>> _ = store.campaign_members.add(CampaignMember(id="m", campaign_id="c", lead_id="l"))
    >>> m = set_status(store, "m", "opened", at=datetime(2026, 1, 5, tzinfo=timezone.utc))
    >>> m.status.value, m.opened_at.day, m.sent_at
    ('opened', 5, None)
    >>> set_status(store, "m", "sent", at=datetime(2026, 1, 6, tzinfo=timezone.utc))
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: CampaignMember 'm' field 'status' = 'sent': ...
    >>> m = set_status(store, "m", "converted", at=datetime(2026, 1, 7, tzinfo=timezone.utc))
    >>> m.responded_at == m.converted_at
    True
    """
    return run_transaction(store, lambda: _set_status(store, member_id, status, at))


def _set_status(store: Store, member_id: str, status: Any, at: datetime) -> CampaignMember:
    member = store.campaign_members.find(member_id)
    if member is None:
        raise NotFound("CampaignMember", member_id)
    try:
        new = MemberStatus(status)
    except ValueError:
        raise ValidationError(
            "CampaignMember",
            "status",
            status,
            f"must be one of {', '.join(s.value for s in MemberStatus)}",
            record_id=member_id,
        ) from None
    at = _aware(at, "CampaignMember", _STAMP[new.value])
    old = member.status
    if new == old:
        return member
    if old == MemberStatus.UNSUBSCRIBED or (
        new != MemberStatus.UNSUBSCRIBED and _ORDER.index(new.value) < _ORDER.index(old.value)
    ):
        raise ValidationError(
            "CampaignMember",
            "status",
            new.value,
            f"cannot go back from {old.value!r} (only forward, or to 'unsubscribed')",
            record_id=member_id,
        )
    stamps = [getattr(member, name) for name in _STAMP.values()]
    latest = max((s for s in stamps if s is not None), default=None)
    if latest is not None and at < latest:
        raise ValidationError(
            "CampaignMember",
            _STAMP[new.value],
            at,
            f"is before the member's latest status change at {latest.isoformat()}",
            record_id=member_id,
        )
    changes: dict[str, Any] = {"status": new, _STAMP[new.value]: at}
    if new == MemberStatus.CONVERTED and member.responded_at is None:
        changes["responded_at"] = at
    changed = attrs.evolve(member, **changes)
    return store.campaign_members.update(changed)


# -- attribution ---------------------------------------------------------------------------


def _codes(member_keys: _Array, opp_keys: _Array) -> tuple[_Array, _Array]:
    """Integer codes for the keys, shared by both sides (``-1`` for empty text): both
    columns are factorised together once, so the join compares integers, not text."""
    from crmkit._codes import text_codes

    opp_keys = np.asarray(opp_keys, dtype=str)
    member_keys = np.asarray(member_keys, dtype=str)
    if not np.any(opp_keys != "") or len(member_keys) == 0:
        return np.full(len(member_keys), -1), np.full(len(opp_keys), -1)
    coded = text_codes(np.concatenate([member_keys, opp_keys]))
    codes = coded.codes.astype(np.int64)
    if coded.values.size and coded.values[0] == "":
        codes -= 1  # "" was code 0: now -1
    return codes[: len(member_keys)], codes[len(member_keys) :]


def _join(member_key: _Array, opp_key: _Array) -> tuple[_Array, _Array]:
    """(opportunity row, member row) pairs with equal non-negative keys (a sort join)."""
    live = np.flatnonzero(member_key >= 0)
    order = live[np.argsort(member_key[live], kind="stable")]
    sorted_keys = member_key[order]
    lo = np.searchsorted(sorted_keys, opp_key, side="left")
    hi = np.searchsorted(sorted_keys, opp_key, side="right")
    counts = np.where(opp_key >= 0, hi - lo, 0)
    opp_rows = np.repeat(np.arange(len(opp_key)), counts)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    member_rows = order[np.arange(len(opp_rows)) + starts]
    return opp_rows, member_rows


def _responded(members: Mapping[str, _Array]) -> _Array:
    """When each member responded: ``responded_at``, else ``converted_at`` (a member that
    converted without a response stamp, e.g. written straight to the store, responded
    when it converted)."""
    responded = np.asarray(members["responded_at"], dtype="datetime64[us]")
    if "converted_at" not in members:
        return responded
    converted = np.asarray(members["converted_at"], dtype="datetime64[us]")
    return np.where(np.isnat(responded), converted, responded)


def minor_digits(currency: Any) -> _Array:
    """Digits after the decimal point of each currency's minor unit (ISO 4217).

    Unknown codes have 2 digits, like most currencies.

    >>> minor_digits(["USD", "JPY", "KWD", "eur", "XYZ"]).tolist()
    [2, 0, 3, 2, 2]
    """
    codes, inverse = np.unique(np.asarray(currency, dtype=str), return_inverse=True)
    digits = np.array([_MINOR_DIGITS.get(code.upper(), 2) for code in codes.tolist()], np.int64)
    return digits[inverse.reshape(-1)] if len(codes) else np.zeros(0, np.int64)


def to_decimal(minor: Any, digits: Any) -> _Array:
    """Integer minor units as ``Decimal`` amounts (an object array).

    >>> to_decimal([40001, 7], [2, 0]).tolist()
    [Decimal('400.01'), Decimal('7')]
    """
    pairs = zip(np.asarray(minor).tolist(), np.asarray(digits).tolist(), strict=True)
    return np.array([Decimal(m).scaleb(-d) for m, d in pairs], dtype=object)


def _weights(model: str, rank: _Array, k: _Array) -> tuple[_Array, _Array]:
    """Each touch's weight as an exact fraction ``numerator / denominator``; the
    denominator is the same for every touch of one opportunity."""
    first, last = rank == 0, rank == k - 1
    one = np.ones(len(rank), np.int64)
    if model == "first_touch":
        return first.astype(np.int64), one
    if model == "last_touch":
        return last.astype(np.int64), one
    if model == "linear":
        return one, k
    # u_shaped: 40% to each end and 20% shared by the middle = 2(k-2) and 1 over 5(k-2)
    middle = np.maximum(k - 2, 1)
    numerator = np.where(k <= 2, 1, np.where(first | last, 2 * middle, 1))
    denominator = np.where(k <= 2, k, 5 * middle)
    return numerator.astype(np.int64), denominator.astype(np.int64)


def touch_credits(
    members: Mapping[str, _Array], opportunities: Mapping[str, _Array], model: str = "linear"
) -> dict[str, _Array]:
    """The credit each touch earns under ``model``, from columns (the numpy core).

    ``members`` needs ``contact_id``, ``lead_id``, ``account_id`` (text, ``""`` when
    missing) and ``responded_at`` (``datetime64``; ``converted_at`` fills it in where
    given); ``opportunities`` needs the three ids, ``created_at`` and ``amount`` (float,
    NaN when missing), and may give ``currency`` (2 minor digits when absent).

    Returns columns ``opportunity`` and ``member`` (row positions), ``weight`` (the
    model's share, adding up to 1 per touched opportunity), ``credit_minor`` (the credit
    in the currency's minor unit, ``int64``) and ``digits`` (minor digits of the
    currency), sorted by opportunity, then touch time. :func:`to_decimal` turns the last
    two into ``Decimal`` amounts.

    The amount is rounded to the minor unit and split by the largest remainder method:
    each touch gets the whole minor units of its exact share, and the units left over go
    one each to the touches with the largest fractional remainders; equal remainders go
    to the earlier touch. So an opportunity's credits add up exactly to its amount.

    >>> import numpy as np
    >>> t = np.array(["2026-01-01", "2026-01-02", "2026-01-03"], dtype="datetime64[us]")
    >>> members = {"contact_id": np.array(["k", "k", "k"]), "lead_id": np.array(["", "", ""]),
    ...            "account_id": np.array(["", "", ""]), "responded_at": t}
    >>> opps = {"contact_id": np.array(["k"]), "lead_id": np.array([""]),
    ...         "account_id": np.array([""]), "amount": np.array([100.0]),
    ...         "created_at": np.array(["2026-02-01"], dtype="datetime64[us]")}
    >>> touch_credits(members, opps, "linear")["credit_minor"].tolist()  # 33.34 + 2 x 33.33
    [3334, 3333, 3333]
    >>> c = touch_credits(members, opps, "u_shaped")
    >>> to_decimal(c["credit_minor"], c["digits"]).tolist()
    [Decimal('40.00'), Decimal('20.00'), Decimal('40.00')]
    """
    if model not in MODELS:
        raise ValidationError("attribution", "model", model, f"must be one of {', '.join(MODELS)}")
    for what, cols, need in (
        ("members", members, (*_KEYS, "responded_at")),
        ("opportunities", opportunities, (*_KEYS, "created_at", "amount")),
    ):
        lacking = [name for name in need if name not in cols]
        if lacking:
            raise ValidationError(
                "attribution", what, sorted(cols), f"missing column(s): {', '.join(lacking)}"
            )
    responded_at = _responded(members)
    pairs_o: list[_Array] = []
    pairs_m: list[_Array] = []
    alive = np.flatnonzero(~np.isnat(responded_at))
    for key in _KEYS:
        member_key, opp_key = _codes(np.asarray(members[key])[alive], opportunities[key])
        o, m = _join(member_key, opp_key)
        pairs_o.append(o)
        pairs_m.append(alive[m])
    opp_rows = np.concatenate(pairs_o)
    member_rows = np.concatenate(pairs_m)
    responded = responded_at[member_rows]
    created = np.asarray(opportunities["created_at"], dtype="datetime64[us]")[opp_rows]
    keep = ~np.isnat(responded) & ~np.isnat(created) & (responded < created)
    opp_rows, member_rows = opp_rows[keep], member_rows[keep]
    when = responded_at[member_rows]
    order = np.lexsort((member_rows, when.view(np.int64), opp_rows))
    opp_rows, member_rows = opp_rows[order], member_rows[order]
    # a member matching twice (contact and account) counts once: duplicates are adjacent
    repeat = np.r_[False, (opp_rows[1:] == opp_rows[:-1]) & (member_rows[1:] == member_rows[:-1])]
    if repeat.any():
        opp_rows, member_rows = opp_rows[~repeat], member_rows[~repeat]
    n = len(opp_rows)
    starts = np.flatnonzero(np.r_[True, opp_rows[1:] != opp_rows[:-1]]) if n else np.array([], int)
    sizes = np.diff(np.r_[starts, n])
    k = np.repeat(sizes, sizes).astype(np.int64)
    rank = np.arange(n) - np.repeat(starts, sizes)
    numerator, denominator = _weights(model, rank, k)
    n_opps = len(np.asarray(opportunities["amount"]))
    currency = opportunities.get("currency")
    digits_of_opp = np.full(n_opps, 2, np.int64) if currency is None else minor_digits(currency)
    amount = np.nan_to_num(np.asarray(opportunities["amount"], dtype=np.float64))
    minor_of_opp = np.rint(amount * 10.0**digits_of_opp).astype(np.int64)
    # floor(amount * numerator / denominator) without overflow, and its remainder
    whole = minor_of_opp[opp_rows]
    part = (whole % denominator) * numerator
    credit = (whole // denominator) * numerator + part // denominator
    remainder = part % denominator
    left = whole[starts] - np.add.reduceat(credit, starts) if n else np.zeros(0, np.int64)
    if model == "u_shaped":
        by_remainder = np.lexsort((rank, -remainder, opp_rows))
    else:  # every touch of an opportunity has the same remainder: keep the touch order
        by_remainder = np.arange(n)
    place = np.arange(n) - np.repeat(starts, sizes)
    credit[by_remainder] += place < np.repeat(left, sizes)
    return {
        "opportunity": opp_rows,
        "member": member_rows,
        "weight": numerator / denominator if n else np.zeros(0),
        "credit_minor": credit,
        "digits": digits_of_opp[opp_rows],
    }


_MINOR_DIGITS: Mapping[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}

_MEMBER_FIELDS = [
    "id",
    "campaign_id",
    "contact_id",
    "lead_id",
    "account_id",
    "status",
    "responded_at",
    "converted_at",
]
_OPP_FIELDS = [
    "id",
    "contact_id",
    "lead_id",
    "account_id",
    "amount",
    "currency",
    "status",
    "created_at",
]


def credits(store: Store, model: str = "linear") -> Table:
    """Every touch's credit under ``model``: one row per (opportunity, member).

    Columns: ``opportunity_id``, ``campaign_id``, ``member_id``, ``weight``, ``credit``
    (a ``Decimal`` in the opportunity's currency, to its minor unit; see
    :func:`touch_credits` for the rounding) and ``currency``. The credits of each touched
    opportunity add up exactly to its amount. ``missing["no_amount"]`` counts touched
    opportunities without an amount (credit 0).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Campaign, CampaignMember, MemoryStore, Opportunity
    >>> store = MemoryStore()
    >>> _ = store.campaigns.add_many([Campaign(id=c, name=c) for c in "abc"])
    >>> _ = store.campaign_members.add_many([
    ...     CampaignMember(id=f"{c}:contact:k", campaign_id=c, contact_id="k", status="responded",
    ...                    responded_at=datetime(2026, 1, day, tzinfo=timezone.utc))
    ...     for c, day in [("a", 1), ("b", 2), ("c", 3)]])
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="Deal", contact_id="k",
    ...     amount="1000.01", created_at=datetime(2026, 2, 1, tzinfo=timezone.utc)))
    >>> t = credits(store, "linear")  # the cent left over goes to the first touch
    >>> t["member_id"].tolist()
    ['a:contact:k', 'b:contact:k', 'c:contact:k']
    >>> t["credit"].tolist()
    [Decimal('333.34'), Decimal('333.34'), Decimal('333.33')]
    >>> sum(t["credit"])
    Decimal('1000.01')
    """
    members = store.campaign_members.columns(_MEMBER_FIELDS)
    opps = store.opportunities.columns(_OPP_FIELDS)
    touches = touch_credits(members, opps, model)
    o, m = touches["opportunity"], touches["member"]
    touched = np.unique(o)
    return Table(
        columns={
            "opportunity_id": opps["id"][o],
            "campaign_id": members["campaign_id"][m],
            "member_id": members["id"][m],
            "weight": touches["weight"],
            "credit": to_decimal(touches["credit_minor"], touches["digits"]),
            "currency": opps["currency"][o],
        },
        missing={"no_amount": int(np.isnan(opps["amount"][touched]).sum())},
        title=f"credits ({model})",
    )


def _positions(ids: _Array, keys: _Array) -> _Array:
    """The position of each key in the sorted ``ids`` (-1 where it is not one); the keys
    are factorised first, so only their distinct values are searched."""
    from crmkit._codes import text_codes

    if len(ids) == 0 or len(keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    coded = text_codes(np.asarray(keys, dtype=str))
    at = np.minimum(np.searchsorted(ids, coded.values), len(ids) - 1)
    table = np.where(ids[at] == coded.values, at, -1)
    return np.asarray(table[coded.codes], dtype=np.int64)


def _by_campaign(ids: _Array, keys: _Array, weights: _Array | None = None) -> _Array:
    """Sum ``weights`` (or count) per campaign; ``ids`` sorted; unknown keys are skipped."""
    return _sum_at(ids, _positions(ids, keys), weights)


def _sum_at(ids: _Array, position: _Array, weights: _Array | None = None) -> _Array:
    if len(ids) == 0:
        return np.zeros(0)
    known = position >= 0
    return np.bincount(
        position[known], weights=None if weights is None else weights[known], minlength=len(ids)
    ).astype(np.float64)


def _money_by_campaign(ids: _Array, position: _Array, minor: _Array, digits: _Array) -> _Array:
    """Exact ``Decimal`` sums per campaign of credits in minor units (all brought to the
    most minor digits present, so 1 JPY and 0.5 USD add up to 1.500); ``position`` is each
    credit's campaign in ``ids`` (-1: none)."""
    scale = int(digits.max()) if len(digits) else 2
    total = np.zeros(len(ids), np.int64)
    if len(ids) and len(position):
        known = position >= 0
        scaled = minor[known] * 10 ** (scale - digits[known])
        np.add.at(total, position[known], scaled)
    return to_decimal(total, np.full(len(ids), scale))


def attribution_from_columns(
    members: Mapping[str, _Array],
    opportunities: Mapping[str, _Array],
    model: str = "linear",
    campaign_ids: Any = None,
) -> Table:
    """:func:`attribution` over columns you already hold (as the stores return them).

    ``members`` needs ``campaign_id`` besides what :func:`touch_credits` needs, and
    ``opportunities`` needs ``status``. ``campaign_ids`` defaults to every campaign named
    by a member.

    >>> import numpy as np
    >>> members = {"campaign_id": np.array(["a", "b"]), "contact_id": np.array(["k", "k"]),
    ...            "lead_id": np.array(["", ""]), "account_id": np.array(["", ""]),
    ...            "responded_at": np.array(["2026-01-01", "2026-01-02"], dtype="M8[us]")}
    >>> opps = {"contact_id": np.array(["k"]), "lead_id": np.array([""]),
    ...         "account_id": np.array([""]), "amount": np.array([900.0]),
    ...         "status": np.array(["won"]), "created_at": np.array(["2026-02-01"], "M8[us]")}
    >>> attribution_from_columns(members, opps, "first_touch")["won_revenue"].tolist()
    [Decimal('900.00'), Decimal('0.00')]
    """
    from crmkit._codes import text_codes

    named = text_codes(np.asarray(members["campaign_id"], dtype=str))
    ids = named.values if campaign_ids is None else np.unique(np.asarray(campaign_ids, dtype=str))
    # the campaign of each member, found once per distinct campaign id
    at = np.minimum(np.searchsorted(ids, named.values), max(len(ids) - 1, 0))
    table = np.where(ids[at] == named.values, at, -1) if len(ids) else np.full(at.size, -1)
    touches = touch_credits(members, opportunities, model)
    position = np.asarray(table[named.codes[touches["member"]]], dtype=np.int64)
    status = np.asarray(opportunities["status"])[touches["opportunity"]]
    credit, digits = touches["credit_minor"], touches["digits"]
    return Table(
        columns={
            "campaign_id": ids,
            "opportunities": _sum_at(ids, position, touches["weight"]),
            "amount": _money_by_campaign(ids, position, credit, digits),
            "pipeline": _money_by_campaign(ids, position, credit * (status == "open"), digits),
            "won_revenue": _money_by_campaign(ids, position, credit * (status == "won"), digits),
        },
        keys=("campaign_id",),
        title=f"attribution ({model})",
    )


def attribution(store: Store, model: str = "linear") -> Table:
    """Opportunities and revenue credited to each campaign under ``model``.

    Columns: ``campaign_id``, ``opportunities`` (sum of weights), ``amount`` (all credited
    amount), ``pipeline`` (credit from open opportunities) and ``won_revenue`` (from won
    ones), the money columns as exact ``Decimal`` sums of :func:`credits` (amounts in
    different currencies are added as they are, without conversion). Every campaign is
    listed, in id order.

    >>> from crmkit import MemoryStore
    >>> len(attribution(MemoryStore(), "first_touch"))
    0
    """
    return attribution_from_columns(
        store.campaign_members.columns(_MEMBER_FIELDS),
        store.opportunities.columns(_OPP_FIELDS),
        model,
        campaign_ids=store.campaigns.columns(["id"])["id"],
    )


def performance(store: Store, model: str = "linear") -> Table:
    """Members, responses, conversions, cost and return per campaign.

    Columns: ``campaign_id``, ``name``, ``members``, one ``status_<s>`` count per current
    member status, ``responses`` and ``conversions`` (members that ever responded /
    converted), ``response_rate``, ``cost`` (actual cost), ``cost_per_lead`` (cost per
    response), ``opportunities``, ``cost_per_opportunity``, ``pipeline``, ``won_revenue``
    (``Decimal``, from :func:`attribution` under ``model``) and ``roi``
    (``(won - cost) / cost``). Ratios with a zero or missing denominator are NaN.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Campaign, CampaignMember, MemoryStore, Opportunity
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> store = MemoryStore()
    >>> _ = store.campaigns.add(Campaign(id="c", name="Webinar", actual_cost=400))
    >>> _ = store.campaign_members.add_many([
    ...     CampaignMember(id="m1", campaign_id="c", contact_id="k1", status="responded",
    ...                    responded_at=at),
    ...     CampaignMember(id="m2", campaign_id="c", contact_id="k2")])
    >>> _ = store.opportunities.add(Opportunity(id="o1", name="Deal", contact_id="k1",
    ...     amount=1000, status="won", created_at=datetime(2026, 2, 1, tzinfo=timezone.utc)))
    >>> row = performance(store).row("c")
    >>> row["members"], row["responses"], row["response_rate"], row["cost_per_lead"]
    (2, 1, 0.5, 400.0)
    >>> row["won_revenue"], row["roi"]  # (1000 - 400) / 400
    (Decimal('1000.00'), 1.5)
    """
    camp = store.campaigns.columns(["id", "name", "actual_cost"])
    order = np.argsort(camp["id"])
    ids, names, cost = camp["id"][order], camp["name"][order], camp["actual_cost"][order]
    members = store.campaign_members.columns(_MEMBER_FIELDS)
    keys = members["campaign_id"]
    known = np.ones(len(keys), dtype=bool)
    counts = _by_campaign(ids, keys)
    columns: dict[str, Any] = {"campaign_id": ids, "name": names, "members": counts.astype(int)}
    for status in MemberStatus:
        hit = known & (members["status"] == status.value)
        columns[f"status_{status.value}"] = _by_campaign(ids, keys[hit]).astype(int)
    responses = _by_campaign(ids, keys[known & ~np.isnat(_responded(members))])
    conversions = _by_campaign(ids, keys[known & ~np.isnat(members["converted_at"])])
    credited = attribution(store, model)
    won = credited["won_revenue"].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns.update(
            responses=responses.astype(int),
            conversions=conversions.astype(int),
            response_rate=np.where(counts > 0, responses / counts, np.nan),
            cost=cost,
            cost_per_lead=np.where(responses > 0, cost / responses, np.nan),
            opportunities=credited["opportunities"],
            cost_per_opportunity=np.where(
                credited["opportunities"] > 0, cost / credited["opportunities"], np.nan
            ),
            pipeline=credited["pipeline"],
            won_revenue=credited["won_revenue"],
            roi=np.where(cost > 0, (won - cost) / cost, np.nan),
        )
    return Table(
        columns=columns,
        keys=("campaign_id",),
        missing={"no_cost": int(np.isnan(cost).sum())},
        title=f"campaign performance ({model})",
    )


def plot_performance(source: Store | Table, *, model: str = "linear", ax: Any = None) -> Any:
    """Cost, pipeline and won revenue per campaign as grouped bars; returns the Axes.

    ``source`` is a store (``performance(store, model)`` is computed) or a table from
    :func:`performance`. Needs matplotlib.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from crmkit import Campaign, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.campaigns.add(Campaign(id="c", name="C", actual_cost=10))
    >>> plot_performance(store).get_title()
    'Campaign cost and return (linear)'
    """
    from crmkit._optional import require

    table = source if isinstance(source, Table) else performance(source, model)
    if ax is None:
        plt = require("matplotlib.pyplot", extra="plot", feature="drawing (or pass ax=...)")
        _, ax = plt.subplots()
    x = np.arange(len(table))
    for i, name in enumerate(("cost", "pipeline", "won_revenue")):
        values = np.nan_to_num(np.asarray(table[name], dtype=np.float64))
        ax.bar(x + (i - 1) * 0.27, values, width=0.27, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(table["campaign_id"].tolist())
    ax.set_ylabel("amount")
    ax.legend()
    ax.set_title(f"Campaign cost and return ({model})")
    return ax


# -- account-based marketing -------------------------------------------------------------


_LEFT_TARGETS = "left_targets_at"
"""The custom field :func:`sync_targets` sets on a member kept after its account left
the target list (the time it left, ISO 8601); cleared when the account comes back."""


def sync_targets(
    store: Store,
    campaign_id: str,
    *,
    criteria: CriteriaLike = None,
    ids: Any = None,
    segments: Any = None,
    at: datetime,
) -> SyncResult:
    """Make the campaign's account members the accounts picked by ``criteria`` / ``ids``
    (as in :func:`add_members`; with a :class:`~crmkit.scoring.Segments`, name the
    segments to target: ``ids=segments, segments=["hot", "warm"]`` targets their union).

    - ``entered``: accounts that became targets (new members, or kept members whose
      account came back, whose ``custom["left_targets_at"]`` is cleared);
    - ``left``: accounts that left the list and whose member was still ``targeted``,
      so it was deleted;
    - ``kept``: accounts that left the list but whose member has history (sent, opened
      ...), so it stays, marked with ``custom["left_targets_at"]``. A kept account is
      reported once, at the sync where it leaves; later syncs leave it alone while it
      stays off the list;
    - ``unchanged``: how many targets were targets before and still are.

    Reads and writes share one transaction (:func:`crmkit.store.run_transaction`), so
    processes syncing one campaign at once add and remove each account once; the sync is
    idempotent and retried on a transaction conflict.

    >>> from datetime import datetime, timezone
    >>> import attrs
    >>> from crmkit import Account, Campaign, F, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.campaigns.add(Campaign(id="abm", name="ABM"))
    >>> _ = store.accounts.add_many([Account(id="a", name="A", employees=900),
    ...                              Account(id="b", name="B", employees=50)])
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> sync_targets(store, "abm", criteria=F.employees >= 500, at=at).entered
    ('a',)
    >>> for i, n in (("a", 10), ("b", 700)):
    ...     _ = store.accounts.update(attrs.evolve(store.accounts.get(i), employees=n))
    >>> r = sync_targets(store, "abm", criteria=F.employees >= 500, at=at)
    >>> r.entered, r.left, r.kept
    (('b',), ('a',), ())
    """
    at = _aware(at, "CampaignMember", "added_at")
    if criteria is None and ids is None:
        raise ValidationError(
            "CampaignMember", "criteria", None, "give criteria, ids, or both to pick targets"
        )
    wanted = None if ids is None else np.unique(_ids_of(ids, segments))
    return run_transaction(store, lambda: _sync_targets(store, campaign_id, criteria, wanted, at))


def _sync_targets(
    store: Store, campaign_id: str, criteria: CriteriaLike, wanted: _Array | None, at: datetime
) -> SyncResult:
    added = _add_members(store, campaign_id, criteria, Account, wanted, at)
    targets = {m.account_id for m in added.added} | set(added.already_members)
    members = store.campaign_members.query(
        {"field": "campaign_id", "op": "==", "value": campaign_id}, order_by="account_id"
    )
    back: list[str] = []
    left: list[str] = []
    kept: list[str] = []
    for member in members:
        account_id = member.account_id
        if account_id is None:
            continue
        was_out = _LEFT_TARGETS in member.custom
        if account_id in targets:
            if was_out:
                custom = {k: v for k, v in member.custom.items() if k != _LEFT_TARGETS}
                store.campaign_members.update(attrs.evolve(member, custom=custom))
                back.append(account_id)
        elif was_out:
            continue
        elif member.status == MemberStatus.TARGETED:
            store.campaign_members.delete(member.id, expected_version=member.version)
            left.append(account_id)
        else:
            custom = {**member.custom, _LEFT_TARGETS: at.astimezone(UTC).isoformat()}
            store.campaign_members.update(attrs.evolve(member, custom=custom))
            kept.append(account_id)
    return SyncResult(
        entered=tuple(sorted([m.account_id or "" for m in added.added] + back)),
        left=tuple(left),
        kept=tuple(kept),
        unchanged=len(added.already_members) - len(back),
    )


def _member_accounts(store: Store, campaign_id: str | None) -> dict[str, _Array]:
    """Each member's account (its own, its contact's, or its converted lead's)."""
    where = (
        None if campaign_id is None else {"field": "campaign_id", "op": "==", "value": campaign_id}
    )
    members = store.campaign_members.columns(_MEMBER_FIELDS, where)
    contacts = store.contacts.columns(["id", "account_id"])
    leads = store.leads.columns(["id", "converted_account_id"])
    account = members["account_id"].astype(object)
    for key, table, field in (
        ("contact_id", contacts, "account_id"),
        ("lead_id", leads, "converted_account_id"),
    ):
        order = np.argsort(table["id"])
        sorted_ids = table["id"][order]
        pos = np.searchsorted(sorted_ids, members[key])
        pos = np.minimum(pos, max(len(sorted_ids) - 1, 0))
        found = (members[key] != "") & (len(sorted_ids) > 0)
        if len(sorted_ids):
            found &= sorted_ids[pos] == members[key]
        fill = found & (members["account_id"] == "")
        if fill.any():
            account[fill] = table[field][order][pos[fill]]
    return {**members, "member_account": np.asarray(account.astype(str))}


def account_engagement(store: Store, campaign_id: str | None = None) -> Table:
    """Campaign engagement per account, and rolled up over each account's family.

    Columns: ``account_id``, ``members``, ``engaged`` (members that responded), and
    ``members_family`` / ``engaged_family``: the same summed over the account and every
    account below it (:func:`crmkit.hierarchy.rollup`); ``ultimate_parent_id``. A member
    counts at its own account, its contact's account or its converted lead's account.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, Campaign, CampaignMember, Contact, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="acme", name="Acme"),
    ...                              Account(id="acme-eu", name="Acme EU", parent_id="acme")])
    >>> _ = store.contacts.add_many([Contact(id="ann", account_id="acme"),
    ...                              Contact(id="bob", account_id="acme-eu")])
    >>> _ = store.campaigns.add(Campaign(id="web", name="Webinar"))
    >>> _ = store.campaign_members.add_many([
    ...     CampaignMember(id="m1", campaign_id="web", contact_id="ann", status="responded",
    ...                    responded_at=datetime(2026, 1, 5, tzinfo=timezone.utc)),
    ...     CampaignMember(id="m2", campaign_id="web", contact_id="bob")])
    >>> row = account_engagement(store, "web").row("acme")
    >>> row["members"], row["engaged"], row["members_family"], row["engaged_family"]
    (1, 1, 2, 1)
    """
    from crmkit.hierarchy import AccountHierarchy, rollup

    h = AccountHierarchy.from_store(store)
    members = _member_accounts(store, campaign_id)
    ids = np.asarray(h.ids, dtype=str)
    order = np.argsort(ids)
    sorted_ids = ids[order]
    where = members["member_account"]
    pos = np.minimum(np.searchsorted(sorted_ids, where), max(len(ids) - 1, 0))
    hit = (where != "") & (len(ids) > 0)
    if len(ids):
        hit &= sorted_ids[pos] == where
    rows = order[pos[hit]]
    engaged = ~np.isnat(_responded(members)[hit])
    count = np.bincount(rows, minlength=len(ids)).astype(np.float64)
    active = np.bincount(rows, weights=engaged.astype(np.float64), minlength=len(ids))
    family_count = rollup(h, count, how="sum")
    family_engaged = rollup(h, active, how="sum")
    return Table(
        columns={
            "account_id": ids,
            "members": count.astype(int),
            "engaged": active.astype(int),
            "members_family": np.asarray(family_count.values).astype(int),
            "engaged_family": np.asarray(family_engaged.values).astype(int),
            "ultimate_parent_id": np.asarray(h.ids, dtype=str)[h.tops],
        },
        keys=("account_id",),
        missing={"member_without_account": int((~hit).sum())},
        title="account engagement",
    )


def coverage(store: Store, campaign_id: str, *, since: datetime | None = None) -> Table:
    """Which target accounts (the campaign's account members, less those kept after
    they left the list in :func:`sync_targets`) are covered.

    Columns: ``account_id``, ``engaged_contact`` (a contact at the account responded to
    any campaign), ``meeting`` (a meeting activity at the account, since ``since`` if
    given), ``open_opportunity``. The title counts each.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, Activity, Campaign, CampaignMember, Contact, MemoryStore
    >>> from crmkit import Opportunity
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([Account(id="a", name="A"), Account(id="b", name="B")])
    >>> _ = store.contacts.add(Contact(id="ann", account_id="a"))
    >>> _ = store.campaigns.add_many([Campaign(id="abm", name="ABM"), Campaign(id="w", name="W")])
    >>> _ = store.campaign_members.add_many(
    ...     [CampaignMember(id=f"abm:{x}", campaign_id="abm", account_id=x) for x in "ab"]
    ...     + [CampaignMember(id="w:ann", campaign_id="w", contact_id="ann", status="responded",
    ...                       responded_at=at)])
    >>> _ = store.activities.add(Activity(id="m", kind="meeting", at=at, account_id="b"))
    >>> _ = store.opportunities.add(Opportunity(id="o", name="Pilot", account_id="b"))
    >>> coverage(store, "abm").rows()
    [{'account_id': 'a', 'engaged_contact': True, 'meeting': False, 'open_opportunity': False},
     {'account_id': 'b', 'engaged_contact': False, 'meeting': True, 'open_opportunity': True}]
    """
    _campaign(store, campaign_id)
    listed = store.campaign_members.columns(
        ["account_id", f"custom.{_LEFT_TARGETS}"],
        {"field": "campaign_id", "op": "==", "value": campaign_id},
    )
    still = np.asarray(listed[f"custom.{_LEFT_TARGETS}"]).astype(str)
    targets = np.unique(listed["account_id"][np.isin(still, ["", "None"])])
    targets = targets[targets != ""]
    all_members = _member_accounts(store, None)
    engaged_at = all_members["member_account"][
        (all_members["contact_id"] != "") & ~np.isnat(_responded(all_members))
    ]
    activities = store.activities.columns(["account_id", "kind", "at"])
    met = activities["kind"] == "meeting"
    if since is not None:
        met &= activities["at"] >= np.datetime64(
            _aware(since, "coverage", "since").astimezone(UTC).replace(tzinfo=None), "us"
        )
    opps = store.opportunities.columns(["account_id", "status"])
    columns = {
        "account_id": targets,
        "engaged_contact": np.isin(targets, engaged_at),
        "meeting": np.isin(targets, activities["account_id"][met]),
        "open_opportunity": np.isin(targets, opps["account_id"][opps["status"] == "open"]),
    }
    counts = ", ".join(f"{k}={int(v.sum())}" for k, v in columns.items() if k != "account_id")
    return Table(
        columns=columns, keys=("account_id",), title=f"coverage of {len(targets)}: {counts}"
    )


# -- demo --------------------------------------------------------------------------------


def _demo_store() -> tuple[Any, dict[str, str]]:
    from crmkit import MemoryStore

    store = MemoryStore()
    day = datetime(2026, 1, 5, 9, tzinfo=UTC)
    store.accounts.add_many(
        [
            Account(id="acme", name="Acme", employees=5000),
            Account(id="acme-eu", name="Acme EU", parent_id="acme", employees=800),
            Account(id="globex", name="Globex", employees=1200),
            Account(id="initech", name="Initech", employees=90),
        ]
    )
    store.contacts.add_many(
        [
            Contact(id="ann", account_id="acme"),
            Contact(id="bob", account_id="acme-eu"),
            Contact(id="cy", account_id="globex"),
            Contact(id="dee", account_id="initech", opted_out=True),
        ]
    )
    store.campaigns.add_many(
        [
            Campaign(
                id="webinar",
                name="Spring webinar",
                channel="webinar",
                status=CampaignStatus.ACTIVE,
                budget=Decimal(6000),
                actual_cost=Decimal(5000),
            ),
            Campaign(id="mail", name="Direct mail", channel="mail", actual_cost=Decimal(2000)),
        ]
    )
    skipped: dict[str, str] = {}
    touches = {"webinar": ["ann", "bob", "cy", "dee"], "mail": ["ann", "cy"]}
    for k, (campaign_id, who) in enumerate(touches.items()):
        added = add_members(store, campaign_id, ids=who, at=day)
        skipped.update(added.skipped)
        for i, member in enumerate(added.added):
            set_status(store, member.id, "responded", at=day + timedelta(days=3 * k + i + 1))
    store.opportunities.add_many(
        [
            Opportunity(
                id="o1",
                name="Acme platform",
                contact_id="ann",
                account_id="acme",
                amount=Decimal(30000),
                status=OpportunityStatus.WON,
                created_at=day + timedelta(days=20),
            ),
            Opportunity(
                id="o2",
                name="Globex pilot",
                contact_id="cy",
                account_id="globex",
                amount=Decimal(12000),
                created_at=day + timedelta(days=20),
            ),
        ]
    )
    store.activities.add(Activity(id="m1", kind=ActivityKind.MEETING, at=day, account_id="globex"))
    return store, skipped


def section(store: Store, out: TextIO) -> None:
    """Campaigns, ABM and partner deal registration, on demo data of its own.

    The given store is not read or changed (the section builds a scratch store), so it
    prints the same every run.

    >>> import io
    >>> from crmkit import MemoryStore
    >>> buffer = io.StringIO()
    >>> section(MemoryStore(), buffer)
    >>> "== Campaigns ==" in buffer.getvalue()
    True
    """
    scratch, skipped = _demo_store()
    out.write("== Campaigns ==\n")
    webinar = scratch.campaign_members.count(
        {"field": "campaign_id", "op": "==", "value": "webinar"}
    )
    out.write(
        f"'Spring webinar' has {webinar} member(s); "
        f"never added: {', '.join(f'{k} ({v})' for k, v in skipped.items())}\n"
    )
    perf = performance(scratch, "u_shaped")
    for row in perf.rows():
        out.write(
            f"{row['name']:<15} members {row['members']}  responses {row['responses']}  "
            f"cost {row['cost']:,.0f}  pipeline {row['pipeline']:,.0f}  "
            f"won {row['won_revenue']:,.0f}  ROI {row['roi']:.2f}\n"
        )
    out.write("credit to each campaign by model:\n")
    for model in MODELS:
        table = attribution(scratch, model)
        cells = "  ".join(
            f"{cid} {amount:,.0f}"
            for cid, amount in zip(table["campaign_id"], table["amount"], strict=True)
        )
        out.write(f"  {model:<12} {cells}\n")
    out.write("\n== Account-based marketing ==\n")
    scratch.campaigns.add(Campaign(id="abm", name="Enterprise ABM"))
    from crmkit.criteria import F

    synced = sync_targets(
        scratch, "abm", criteria=F.employees >= 1000, at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    out.write(f"target accounts (employees >= 1000): {', '.join(synced.entered)}\n")
    cover = coverage(scratch, "abm")
    out.write(f"{cover.title}\n")
    engaged = account_engagement(scratch)
    row = engaged.row("acme")
    out.write(
        f"acme: {row['engaged']} engaged member(s), {row['engaged_family']} with its family\n"
    )
    from crmkit.partners import _demo_lines

    out.write("\n== Partners ==\n")
    for line in _demo_lines():
        out.write(line + "\n")
