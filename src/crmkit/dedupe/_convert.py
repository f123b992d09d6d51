"""Lead-to-account matching and lead conversion."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from crmkit._optional import require
from crmkit.clock import Clock, SystemClock
from crmkit.dedupe._jobs import DuplicateIndex, _source_columns
from crmkit.dedupe._normalise import normalise_company, normalise_email, registrable_domain
from crmkit.errors import ValidationError
from crmkit.records import Account, Contact, Lead, LeadStatus, Opportunity
from crmkit.store import Store, run_transaction

__all__ = ["FREE_MAIL", "AccountMatch", "AccountMatcher", "Conversion", "convert_lead",
           "match_accounts"]  # fmt: skip

FREE_MAIL = frozenset(
    """
    gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.fr ymail.com hotmail.com
    hotmail.co.uk hotmail.fr outlook.com live.com msn.com aol.com icloud.com me.com mac.com
    proton.me protonmail.com gmx.de gmx.net web.de t-online.de yandex.ru mail.ru qq.com
    163.com 126.com zoho.com btinternet.com orange.fr free.fr laposte.net libero.it
    """.split()  # noqa: SIM905 - a word list reads better as words
)
"""Registrable domains of free mail services: an address there says nothing about the
company, so it never matches an account by domain nor names a new account's domain."""

_DOMAIN, _NAME, _FUZZY, _COUNTRY = 0.6, 0.3, 0.25, 0.1


@attrs.frozen(kw_only=True)
class AccountMatch:
    """A candidate account for a lead, with its score in [0, 1] and the reasons."""

    account_id: str
    score: float
    reasons: tuple[str, ...]
    owner_id: str | None = None


def _company_domain(email: str | None) -> str | None:
    domain = registrable_domain(normalise_email(email))
    return None if domain is None or domain in FREE_MAIL else domain


class AccountMatcher:
    """Accounts prepared for lead-to-account matching (normalised names and domains as
    arrays); build it once and call :meth:`match` per lead.

    A lead's score adds: the same registrable email domain as the account's domain
    (0.6, free mail never counts), the same normalised company name (0.3) or else a
    fuzzy name similarity of at least ``fuzzy_threshold`` (0.25 times the similarity),
    and the same country (+0.1; a different known country takes 0.1 off). Only
    accounts with a domain or name signal are candidates; the score is capped at 1.

    Routing can send a lead to ``match(lead)[0].owner_id`` with the reasons in its
    decision (account-based routing).

    >>> accounts = [Account(id="a1", name="Acme Corporation", domain="acme.com",
    ...                     country="US", owner_id="rep-7"),
    ...             Account(id="a2", name="Acme Widgets", country="DE")]
    >>> lead = Lead(id="l1", company="ACME Corp.", email="bo@eu.acme.com", country="US")
    >>> matcher = AccountMatcher(accounts)
    >>> [(m.account_id, round(m.score, 2), m.reasons) for m in matcher.match(lead)]
    [('a1', 1.0, ('domain acme.com', 'name acme', 'country US'))]
    """

    def __init__(self, source: Any, *, fuzzy_threshold: float = 0.85) -> None:
        cols = _source_columns(source, Account, ["name", "domain", "country", "owner_id"])
        self.ids = cols["id"]
        self.owners = cols["owner_id"]
        self.names = np.array(
            [normalise_company(v) or "" for v in cols["name"].tolist()], dtype=str
        )
        self.domains = np.array(
            [registrable_domain(v) or "" for v in cols["domain"].tolist()], dtype=str
        )
        self.countries = np.char.upper(np.char.strip(cols["country"]))
        self.fuzzy_threshold = fuzzy_threshold

    def match(self, lead: Lead, *, limit: int = 5, min_score: float = 0.0) -> list[AccountMatch]:
        """The best ``limit`` accounts for ``lead``, best first (ties by id)."""
        n = self.ids.size
        score = np.zeros(n)
        signal = np.zeros(n, dtype=bool)
        domain = _company_domain(lead.email)
        by_domain = (self.domains == domain) if domain else np.zeros(n, dtype=bool)
        score += _DOMAIN * by_domain
        name = normalise_company(lead.company)
        by_name = (self.names == name) if name else np.zeros(n, dtype=bool)
        score += _NAME * by_name
        fuzzy = np.zeros(n)
        if name and n:
            process: Any = require("rapidfuzz.process", extra="dedupe", feature="account matching")
            fuzz: Any = require("rapidfuzz.fuzz", extra="dedupe", feature="account matching")
            raw = process.cdist(
                [name],
                self.names.tolist(),
                scorer=fuzz.token_sort_ratio,
                score_cutoff=self.fuzzy_threshold * 100,
                dtype=np.float64,
            )
            fuzzy = np.asarray(raw, dtype=np.float64)[0] / 100
            fuzzy[by_name | (self.names == "")] = 0.0
        score += _FUZZY * fuzzy
        signal = by_domain | by_name | (fuzzy > 0)
        country = (lead.country or "").strip().upper()
        if country:
            known = self.countries != ""
            same = self.countries == country
            score += np.where(known & same, _COUNTRY, np.where(known, -_COUNTRY, 0.0))
        score = np.clip(score, 0.0, 1.0)
        keep = np.flatnonzero(signal & (score >= min_score))
        order = keep[np.lexsort((self.ids[keep], -score[keep]))][:limit]
        matches = []
        for i in order.tolist():
            reasons = []
            if by_domain[i]:
                reasons.append(f"domain {domain}")
            if by_name[i]:
                reasons.append(f"name {name}")
            if fuzzy[i] > 0:
                reasons.append(f"fuzzy name {str(self.names[i])!r} {fuzzy[i]:.2f}")
            if country and self.countries[i]:
                same_country = self.countries[i] == country
                reasons.append(
                    f"country {country}"
                    if same_country
                    else f"country {self.countries[i]} differs from {country}"
                )
            matches.append(
                AccountMatch(
                    account_id=str(self.ids[i]),
                    score=float(score[i]),
                    reasons=tuple(reasons),
                    owner_id=str(self.owners[i]) or None,
                )
            )
        return matches


def match_accounts(source: Any, lead: Lead, *, limit: int = 5) -> list[AccountMatch]:
    """Candidate accounts for ``lead`` from a store, repository or list of accounts
    (see :class:`AccountMatcher`, which is faster for many leads).

    >>> match_accounts([Account(id="a", name="Globex GmbH")], Lead(id="l", company="globex"))
    [AccountMatch(account_id='a', score=0.3, reasons=('name globex',), owner_id=None)]
    """
    if isinstance(source, AccountMatcher):
        return source.match(lead, limit=limit)
    if hasattr(source, "repository") and hasattr(source, "transaction"):
        source = source.accounts
    return AccountMatcher(source).match(lead, limit=limit)


@attrs.frozen(kw_only=True)
class Conversion:
    """What :func:`convert_lead` did: the converted lead and the records it became,
    whether each was created or matched, and the account candidates it weighed."""

    lead: Lead
    account: Account
    contact: Contact
    opportunity: Opportunity | None
    account_created: bool
    contact_created: bool
    account_matches: tuple[AccountMatch, ...] = ()
    memberships_merged: int = 0
    """The lead's campaign memberships in campaigns the contact was already in: the
    contact's membership stands and the lead's stays the lead's (it is not given the
    contact, which would put the contact in the campaign twice)."""


def _carry(
    repo: Any, lead_id: str, contact_id: str, account_id: str, skip: frozenset[str] = frozenset()
) -> int:
    """The lead's records (activities, campaign members) gain its contact and account;
    a campaign member of a campaign in ``skip`` keeps no contact. Returns how many
    records were held back that way."""
    held = 0
    for record in repo.query({"field": "lead_id", "op": "==", "value": lead_id}):
        changes = {}
        if record.contact_id is None:
            if getattr(record, "campaign_id", None) in skip:
                held += 1
                continue
            changes["contact_id"] = contact_id
        if record.account_id is None:
            changes["account_id"] = account_id
        if changes:
            repo.update(attrs.evolve(record, **changes))
    return held


def _person(lead: Lead) -> str:
    return " ".join(p for p in (lead.first_name, lead.last_name) if p) or lead.id


def convert_lead(
    store: Store,
    lead_id: str,
    *,
    account_id: str | None = None,
    contact_id: str | None = None,
    opportunity: bool | str = False,
    owner_id: str | None = None,
    min_account_score: float = 0.6,
    matcher: AccountMatcher | None = None,
    ids: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> Conversion:
    """Convert a lead into an account, a contact and optionally an opportunity, in one
    transaction.

    The account is ``account_id`` if given, else the best match (:func:`match_accounts`)
    scoring at least ``min_account_score`` (by default a domain match, or a name match
    in the same country), else a new account from the lead's company fields. The contact
    is ``contact_id``, else a duplicate of the lead among that account's contacts and
    the contacts with its email (the contact rules of :data:`DEFAULT_RULES`), else a
    new one. ``opportunity=True`` (or a name) adds an opportunity. The lead's activities
    and campaign memberships gain the contact and account (where they had none), except
    a membership of a campaign the contact is already in: the contact's membership stands
    and the lead's is left as it was (counted in ``memberships_merged``); the owner of
    the new records is ``owner_id`` or the lead's. The lead becomes
    ``converted`` with its ``converted_*`` links; converting it again is a
    :class:`~crmkit.errors.ValidationError`. ``ids`` may fix the ids of new records
    (keys ``account``, ``contact``, ``opportunity``). Matching reads every account; to
    convert many leads, build an :class:`AccountMatcher` once and pass ``matcher=`` (it
    only proposes: each proposal is read again inside the transaction, and one no longer
    stored is passed over).

    The reads run in the transaction, so a retry decides afresh.

    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add(Account(id="acme", name="Acme Inc", domain="acme.com"))
    >>> _ = store.leads.add(Lead(id="l1", first_name="Bo", last_name="Li", company="Acme",
    ...                          email="bo@acme.com", owner_id="rep-1"))
    >>> done = convert_lead(store, "l1", opportunity="Acme renewal",
    ...                     ids={"contact": "c1", "opportunity": "o1"})
    >>> done.account.id, done.account_created, done.contact.id, done.opportunity.owner_id
    ('acme', False, 'c1', 'rep-1')
    >>> lead = store.leads.get("l1")
    >>> str(lead.status), lead.converted_account_id, lead.converted_contact_id
    ('converted', 'acme', 'c1')
    >>> convert_lead(store, "l1")
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Lead 'l1' field 'status' = ...: is already converted ...
    """
    new_ids = dict(ids or {})
    unknown = set(new_ids) - {"account", "contact", "opportunity"}
    if unknown:
        raise ValidationError(
            "convert_lead", "ids", sorted(unknown), "keys are account, contact, opportunity"
        )
    now = (clock or SystemClock()).now()

    def operation() -> Conversion:
        lead = store.leads.get(lead_id)
        if lead.status is LeadStatus.CONVERTED or lead.converted_contact_id is not None:
            raise ValidationError(
                "Lead",
                "status",
                lead.status,
                f"is already converted (contact {lead.converted_contact_id}); "
                "a lead converts once",
                record_id=lead.id,
            )
        owner = owner_id or lead.owner_id
        matches: tuple[AccountMatch, ...] = ()
        account: Account | None = None
        if account_id is not None:
            account = store.accounts.get(account_id)
        else:
            matches = tuple(match_accounts(matcher if matcher is not None else store, lead))
            for match in matches:
                if match.score >= min_account_score:
                    account = store.accounts.find(match.account_id)
                    if account is not None:
                        break
        account_created = account is None
        if account is None:
            if not lead.company:
                raise ValidationError(
                    "Lead",
                    "company",
                    None,
                    "is needed to create an account; pass account_id= to use one",
                    record_id=lead.id,
                )
            domain = _company_domain(lead.email)
            account = store.accounts.add(
                Account(
                    id=new_ids.get("account") or f"acc-{uuid.uuid4().hex}",
                    name=lead.company,
                    domain=domain,
                    industry=lead.industry,
                    country=lead.country,
                    region=lead.region,
                    postal_code=lead.postal_code,
                    employees=lead.employees,
                    annual_revenue=lead.annual_revenue,
                    owner_id=owner,
                    created_at=now,
                )
            )
        contact: Contact | None = None
        if contact_id is not None:
            contact = store.contacts.get(contact_id)
        else:
            probe = Contact(
                id=new_ids.get("contact") or f"con-{uuid.uuid4().hex}",
                account_id=account.id,
                first_name=lead.first_name,
                last_name=lead.last_name,
                email=lead.email,
                phone=lead.phone,
                title=lead.title,
                country=lead.country,
                owner_id=owner,
                created_at=now,
            )
            at_account = {"field": "account_id", "op": "==", "value": account.id}
            nearby = {c.id: c for c in store.contacts.query(at_account)}
            if lead.email:
                for c in store.contacts.query({"field": "email", "op": "==", "value": lead.email}):
                    nearby[c.id] = c
            if nearby:
                found = DuplicateIndex(record_type="Contact").add_many(list(nearby.values()))
                best = found.find(probe)
                if best:
                    other = best[0].left_id if best[0].right_id == probe.id else best[0].right_id
                    contact = nearby[other]
        contact_created = contact is None
        if contact is None:
            contact = store.contacts.add(probe)
        elif contact.account_id is None:
            contact = store.contacts.update(attrs.evolve(contact, account_id=account.id))
        deal = None
        if opportunity:
            name = (
                opportunity
                if isinstance(opportunity, str)
                else f"{account.name} ({_person(lead)})"
            )
            deal = store.opportunities.add(
                Opportunity(
                    id=new_ids.get("opportunity") or f"opp-{uuid.uuid4().hex}",
                    name=name,
                    account_id=account.id,
                    contact_id=contact.id,
                    lead_id=lead.id,
                    owner_id=owner,
                    source=lead.source,
                    created_at=now,
                )
            )
        _carry(store.activities, lead.id, contact.id, account.id)
        joined = store.campaign_members.query(
            {"field": "contact_id", "op": "==", "value": contact.id}
        )
        merged_members = _carry(
            store.campaign_members,
            lead.id,
            contact.id,
            account.id,
            frozenset(m.campaign_id for m in joined),
        )
        converted = store.leads.update(
            attrs.evolve(
                lead,
                status=LeadStatus.CONVERTED,
                converted_account_id=account.id,
                converted_contact_id=contact.id,
                converted_opportunity_id=deal.id if deal is not None else None,
            )
        )
        return Conversion(
            lead=converted,
            account=account,
            contact=contact,
            opportunity=deal,
            account_created=account_created,
            contact_created=contact_created,
            account_matches=matches,
            memberships_merged=merged_members,
        )

    return run_transaction(store, operation)
