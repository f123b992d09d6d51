"""A deterministic synthetic CRM to try crmkit on: teams, reps, accounts, deals, activity.

:func:`generate` builds a :class:`Dataset` from a seed and a size (the same seed and size
always give equal records); :func:`load` writes it into any store.

=======  ========  ==========  =======  =============  ==========  ====  ======
size     accounts  contacts    leads    opportunities  activities  reps  months
=======  ========  ==========  =======  =============  ==========  ====  ======
tiny     40        ~120        60       50             1,500       16    6
small    200       ~800        400      300            10,000      40    12
medium   5,000     ~20,000     10,000   7,500          200,000     150   18
large    50,000    ~200,000    100,000  75,000         2,000,000   600   24
=======  ========  ==========  =======  =============  ==========  ====  ======

What is in it:

- **Teams** nest three deep: a global team over the Americas, EMEA and APAC regions, each
  over two offices (New York, Sao Paulo, Paris, London, Tokyo, Sydney). Every team has a
  manager; reps report to their office manager, office managers to their region manager.
  Reps live in their office's time zone and have capacities, skills, languages and working
  hours; a few are out of office at ``as_of``.
- **Accounts** in twelve countries with regions (states, provinces) and postal codes;
  about a third belong to parent/child families, some three or four levels deep; the rest
  stand alone. Each has an industry, employees, an annual revenue (``Decimal``), a domain,
  an owner from its sales region, a lifecycle stage that follows its deals, a territory,
  and custom fields ``custom.tier`` (gold/silver/bronze by revenue), ``custom.nps`` and
  ``custom.seats`` (customers only).
- **Contacts** at every account (some opted out), with emails at the account's domain.
- **Leads** with statuses and sources; some have emails at account domains, a few share
  an email with another lead (duplicates), and some new leads wait unassigned in a queue.
- **Opportunities** in the stages of :data:`STAGES`, open, won or lost, with amounts,
  probabilities, close dates and products; a few have no account. Their **stage changes**
  replay each deal's path from ``prospecting`` to where it is now.
- **Activities** (emails, calls, meetings, web visits ...) over the months before
  ``as_of``, heavily skewed: a few accounts are very active, many are quiet.
- **Territories** of one active territory model, regions over country/region-based
  leaves; every account is in the leaf territory that matches it.

Every reference resolves (owners, managers, parents, accounts, contacts, leads, deals)
except the deliberate gaps: deals without an account, leads waiting in a queue.

Examples
--------
>>> data = generate(seed=7, size="tiny")
>>> data.counts()["accounts"]
40
>>> generate(seed=7, size="tiny") == data
True
>>> all(a.at < data.as_of for a in data.activities)
True
>>> from crmkit.store import MemoryStore
>>> store = MemoryStore()
>>> load(store, data)
>>> len(store.opportunities) == len(data.opportunities)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from crmkit.criteria import Criteria, F, bind
from crmkit.errors import ValidationError
from crmkit.records import (
    Account,
    AccountType,
    Activity,
    ActivityKind,
    Contact,
    Direction,
    Lead,
    LeadStatus,
    Opportunity,
    OpportunityStatus,
    Rep,
    StageChange,
    Team,
    Territory,
    TerritoryModel,
    TerritoryModelState,
)
from crmkit.store._base import Store

__all__ = ["AS_OF", "SIZES", "STAGES", "Dataset", "SizeSpec", "generate", "load"]

AS_OF = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""The default "now" of a generated dataset (a Monday, 09:00 UTC)."""

STAGES: tuple[str, ...] = (
    "prospecting",
    "qualification",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)
"""Opportunity stages, in order (the same names as the default pipeline)."""

_OPEN_PROBABILITY = (0.1, 0.25, 0.5, 0.8)

Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called as :func:`load` writes each record type."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@attrs.frozen(kw_only=True)
class SizeSpec:
    """How many of each record a size generates (contacts per account is a mean)."""

    accounts: int
    contacts_per_account: float
    leads: int
    opportunities: int
    activities: int
    reps: int
    months: int


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(
        accounts=40,
        contacts_per_account=3,
        leads=60,
        opportunities=50,
        activities=1_500,
        reps=16,
        months=6,
    ),
    "small": SizeSpec(
        accounts=200,
        contacts_per_account=4,
        leads=400,
        opportunities=300,
        activities=10_000,
        reps=40,
        months=12,
    ),
    "medium": SizeSpec(
        accounts=5_000,
        contacts_per_account=4,
        leads=10_000,
        opportunities=7_500,
        activities=200_000,
        reps=150,
        months=18,
    ),
    "large": SizeSpec(
        accounts=50_000,
        contacts_per_account=4,
        leads=100_000,
        opportunities=75_000,
        activities=2_000_000,
        reps=600,
        months=24,
    ),
}
"""The sizes :func:`generate` knows ("tiny" is for tests)."""


@attrs.frozen(kw_only=True, eq=True)
class Dataset:
    """A generated CRM: one tuple per record type, plus how it was made."""

    seed: int
    size: str
    as_of: datetime
    teams: tuple[Team, ...]
    reps: tuple[Rep, ...]
    territory_models: tuple[TerritoryModel, ...]
    territories: tuple[Territory, ...]
    accounts: tuple[Account, ...]
    contacts: tuple[Contact, ...]
    leads: tuple[Lead, ...]
    opportunities: tuple[Opportunity, ...]
    stage_changes: tuple[StageChange, ...]
    activities: tuple[Activity, ...]

    def counts(self) -> dict[str, int]:
        """Number of records per record type, in load order.

        Examples
        --------
        >>> list(generate(size="tiny").counts())[:3]
        ['teams', 'reps', 'territory_models']
        """
        return {name: len(getattr(self, name)) for name in _LOAD_ORDER}

    def records(self) -> dict[str, tuple[Any, ...]]:
        """The record tuples by name, in load order (parents before children)."""
        return {name: getattr(self, name) for name in _LOAD_ORDER}


_LOAD_ORDER = (
    "teams",
    "reps",
    "territory_models",
    "territories",
    "accounts",
    "contacts",
    "leads",
    "opportunities",
    "stage_changes",
    "activities",
)

# -- reference data -------------------------------------------------------------------------

# code, weight, sales region, top-level domain, phone prefix, regions, postal format
# (postal format: '9' a digit, 'A' a letter, anything else as is)
_COUNTRIES: tuple[tuple[str, float, str, str, str, tuple[str, ...], str], ...] = (
    (
        "US",
        0.34,
        "Americas",
        ".com",
        "+1",
        ("NY", "CA", "TX", "MA", "IL", "WA", "GA", "CO"),
        "99999",
    ),
    ("CA", 0.05, "Americas", ".ca", "+1", ("ON", "QC", "BC", "AB"), "A9A 9A9"),
    ("BR", 0.06, "Americas", ".com.br", "+55", ("SP", "RJ", "MG", "PR"), "99999-999"),
    ("MX", 0.03, "Americas", ".com.mx", "+52", ("CMX", "JAL", "NLE"), "99999"),
    ("FR", 0.08, "EMEA", ".fr", "+33", ("IDF", "ARA", "PAC", "NAQ"), "99999"),
    ("DE", 0.09, "EMEA", ".de", "+49", ("BY", "BE", "HH", "NW"), "99999"),
    ("GB", 0.10, "EMEA", ".co.uk", "+44", ("ENG", "SCT", "WLS"), "AA9 9AA"),
    ("ES", 0.03, "EMEA", ".es", "+34", ("MD", "CT", "AN"), "99999"),
    ("JP", 0.09, "APAC", ".co.jp", "+81", ("Tokyo", "Osaka", "Aichi", "Kanagawa"), "999-9999"),
    ("AU", 0.06, "APAC", ".com.au", "+61", ("NSW", "VIC", "QLD", "WA"), "9999"),
    ("SG", 0.03, "APAC", ".sg", "+65", ("SG",), "999999"),
    ("IN", 0.04, "APAC", ".in", "+91", ("KA", "MH", "DL", "TN"), "999999"),
)
_SALES_REGIONS = ("Americas", "EMEA", "APAC")

# office key, name, sales region, country, time zone, language, work start hour
_OFFICES = (
    ("nyc", "New York", "Americas", "US", "America/New_York", "en", 9),
    ("sao", "Sao Paulo", "Americas", "BR", "America/Sao_Paulo", "pt", 9),
    ("par", "Paris", "EMEA", "FR", "Europe/Paris", "fr", 9),
    ("lon", "London", "EMEA", "GB", "Europe/London", "en", 8),
    ("tok", "Tokyo", "APAC", "JP", "Asia/Tokyo", "ja", 9),
    ("syd", "Sydney", "APAC", "AU", "Australia/Sydney", "en", 8),
)

# territory key, name, parent key, criteria builder arguments (country list, region list)
_TERRITORIES: tuple[tuple[str, str, str | None, tuple[str, ...], tuple[str, ...]], ...] = (
    ("amer", "Americas", None, ("US", "CA", "BR", "MX"), ()),
    ("emea", "EMEA", None, ("FR", "DE", "GB", "ES"), ()),
    ("apac", "APAC", None, ("JP", "AU", "SG", "IN"), ()),
    ("us-east", "US East", "amer", ("US",), ("NY", "MA", "GA")),
    ("us-central", "US Central", "amer", ("US",), ("TX", "IL", "CO")),
    ("us-west", "US West", "amer", ("US",), ("CA", "WA")),
    ("canada", "Canada", "amer", ("CA",), ()),
    ("latam", "Latin America", "amer", ("BR", "MX"), ()),
    ("france", "France", "emea", ("FR",), ()),
    ("dach", "DACH", "emea", ("DE",), ()),
    ("uki", "UK & Ireland", "emea", ("GB",), ()),
    ("iberia", "Iberia", "emea", ("ES",), ()),
    ("japan", "Japan", "apac", ("JP",), ()),
    ("anz", "Australia & NZ", "apac", ("AU",), ()),
    ("asia", "South & Southeast Asia", "apac", ("SG", "IN"), ()),
)

_NAME_A = (
    "North", "Blue", "Silver", "Red", "Iron", "Bright", "Clear", "Summit", "Green", "Stone",
    "Golden", "Swift", "Oak", "Pine", "River", "Star", "Sun", "Cloud", "Harbor", "Ever",
    "Nova", "Apex", "Cedar", "Crystal", "Eagle", "Falcon", "Granite", "Lake", "Maple", "Ocean",
    "Pioneer", "Quantum", "Rapid", "Sky", "True", "Union", "Vector", "West", "Zenith", "Atlas",
)  # fmt: skip
_NAME_B = (
    "wind", "field", "stone", "bridge", "gate", "point", "wave", "peak", "light", "line",
    "works", "path", "view", "crest", "forge", "mark", "port", "ridge", "side", "way",
    "brook", "core", "dale", "fort", "hill", "land", "mont", "shore", "vale", "wood",
)  # fmt: skip
# company-name ending -> industry
_NAME_C = (
    ("Systems", "Technology"), ("Software", "Technology"), ("Analytics", "Technology"),
    ("Networks", "Telecommunications"), ("Telecom", "Telecommunications"),
    ("Logistics", "Transportation"), ("Freight", "Transportation"),
    ("Foods", "Food & Beverage"), ("Brewing", "Food & Beverage"),
    ("Health", "Healthcare"), ("Medical", "Healthcare"), ("Pharma", "Life Sciences"),
    ("Biotech", "Life Sciences"), ("Energy", "Energy"), ("Power", "Energy"),
    ("Capital", "Financial Services"), ("Bank", "Financial Services"),
    ("Insurance", "Insurance"), ("Motors", "Manufacturing"), ("Industries", "Manufacturing"),
    ("Materials", "Manufacturing"), ("Robotics", "Manufacturing"), ("Media", "Media"),
    ("Studios", "Media"), ("Retail", "Retail"), ("Outfitters", "Retail"),
    ("Partners", "Professional Services"), ("Consulting", "Professional Services"),
    ("Education", "Education"), ("Realty", "Real Estate"),
)  # fmt: skip
_DIVISIONS = (
    "Holdings", "International", "Americas", "Europe", "Asia Pacific", "Services", "Labs",
    "Digital", "Finance", "Manufacturing", "Retail", "Research", "Ventures", "Solutions",
    "Operations",
)  # fmt: skip
_FIRST = (
    "Ada", "Alan", "Grace", "Linus", "Marie", "Nikola", "Rosa", "Tim", "Ana", "Bruno",
    "Camille", "Diego", "Elena", "Felix", "Hana", "Ibrahim", "Julia", "Kenji", "Lucas",
    "Maya", "Noah", "Olivia", "Pedro", "Quinn", "Ravi", "Sofia", "Tomas", "Uma", "Victor",
    "Wei", "Yuki", "Zoe", "Amelie", "Carlos", "Emma", "Hugo", "Isabel", "Leo", "Mila", "Omar",
)  # fmt: skip
_LAST = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Curie", "Tesla", "Parks", "Berners",
    "Silva", "Costa", "Martin", "Bernard", "Dubois", "Muller", "Schmidt", "Weber", "Smith",
    "Jones", "Taylor", "Brown", "Sato", "Suzuki", "Tanaka", "Watanabe", "Garcia", "Lopez",
    "Santos", "Oliveira", "Kumar", "Sharma", "Nguyen", "Chen", "Wang", "Kim", "Park",
    "Rossi", "Novak", "Larsen", "Nielsen", "Walker",
)  # fmt: skip
_TITLES = (
    "CEO", "CFO", "CTO", "VP Sales", "VP Marketing", "Head of IT", "IT Manager",
    "Procurement Manager", "Operations Director", "Engineer", "Analyst", "Office Manager",
)  # fmt: skip
_SKILLS = (
    "enterprise", "mid_market", "smb", "fintech", "healthcare", "manufacturing", "retail",
    "public_sector",
)  # fmt: skip
_PRODUCTS = ("Core", "Analytics", "Integrations", "Support Plus", "Enterprise Suite")
_PRODUCT_WEIGHTS = (0.35, 0.2, 0.15, 0.15, 0.15)
_PRODUCT_PRICE = (20_000.0, 35_000.0, 15_000.0, 8_000.0, 120_000.0)
_LEAD_SOURCES = ("web", "referral", "event", "partner", "cold_call", "paid_search", "webinar")
_LEAD_SOURCE_WEIGHTS = (0.3, 0.1, 0.12, 0.08, 0.1, 0.2, 0.1)
_LEAD_STATUSES = (
    LeadStatus.NEW,
    LeadStatus.WORKING,
    LeadStatus.QUALIFIED,
    LeadStatus.DISQUALIFIED,
    LeadStatus.CONVERTED,
)
_LEAD_STATUS_WEIGHTS = (0.3, 0.25, 0.15, 0.2, 0.1)
_DEAL_SOURCES = ("inbound", "outbound", "partner", "referral")
_DEAL_WIN_RATES = (0.45, 0.2, 0.55, 0.75)
#: chance that a closed lead (converted or disqualified) converted, per lead source
_LEAD_CONVERSION_RATES = (0.3, 0.75, 0.45, 0.6, 0.1, 0.2, 0.4)
_LOSS_REASONS = ("price", "competitor", "no_decision", "timing", "missing_feature")

# kind, weight, done by a rep (actor = owner), inbound
_KINDS: tuple[tuple[ActivityKind, float, bool, bool], ...] = (
    (ActivityKind.EMAIL_SENT, 0.28, True, False),
    (ActivityKind.EMAIL_OPENED, 0.17, False, True),
    (ActivityKind.EMAIL_CLICKED, 0.05, False, True),
    (ActivityKind.EMAIL_REPLIED, 0.04, False, True),
    (ActivityKind.CALL, 0.12, True, False),
    (ActivityKind.MEETING, 0.06, True, False),
    (ActivityKind.WEB_VISIT, 0.16, False, True),
    (ActivityKind.DOWNLOAD, 0.03, False, True),
    (ActivityKind.FORM_SUBMIT, 0.02, False, True),
    (ActivityKind.EVENT, 0.02, False, True),
    (ActivityKind.TASK, 0.03, True, False),
    (ActivityKind.NOTE, 0.02, True, False),
)
_SUBJECTS = {
    ActivityKind.EMAIL_SENT: ("Intro", "Follow-up", "Pricing", "Case study", "Next steps"),
    ActivityKind.CALL: ("Discovery call", "Check-in", "Pricing call"),
    ActivityKind.MEETING: ("Demo", "Workshop", "Quarterly review", "Executive briefing"),
    ActivityKind.WEB_VISIT: ("/pricing", "/product", "/docs", "/blog", "/customers"),
    ActivityKind.DOWNLOAD: ("Buyer's guide", "Whitepaper", "Datasheet"),
    ActivityKind.EVENT: ("Webinar", "User conference", "Roadshow"),
}

_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- helpers ---------------------------------------------------------------------------------


def _ids(prefix: str, n: int) -> list[str]:
    width = max(4, len(str(n)))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, n + 1)]


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def _moments(micros: npt.NDArray[np.int64]) -> list[datetime]:
    """Integer microseconds since the epoch as aware UTC datetimes."""
    naive: list[datetime] = micros.astype("datetime64[us]").tolist()
    return [d.replace(tzinfo=UTC) for d in naive]


def _pick(rng: np.random.Generator, weights: Sequence[float], n: int) -> IntArray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int64)


def _postal(fmt: str, digits: Sequence[int], letters: Sequence[int]) -> str:
    out = []
    d = iter(digits)
    letter = iter(letters)
    for ch in fmt:
        if ch == "9":
            out.append(str(next(d)))
        elif ch == "A":
            out.append(chr(65 + next(letter)))
        else:
            out.append(ch)
    return "".join(out)


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _group_index(keys: IntArray, n_groups: int) -> tuple[IntArray, IntArray, IntArray]:
    """Rows sorted by key, and each key's start and count in that order."""
    order = np.argsort(keys, kind="stable").astype(np.int64)
    counts = np.bincount(keys, minlength=n_groups).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return order, starts, counts


def _pick_in_group(
    rng: np.random.Generator,
    group: IntArray,
    order: IntArray,
    starts: IntArray,
    counts: IntArray,
) -> IntArray:
    """For each row's group, a random member of that group (-1 where the group is empty)."""
    n = counts[group]
    offset = np.floor(rng.random(len(group)) * np.maximum(n, 1)).astype(np.int64)
    picked = order[np.minimum(starts[group] + offset, max(len(order) - 1, 0))] if len(order) else 0
    return np.where(n > 0, picked, -1).astype(np.int64)


# -- generation ------------------------------------------------------------------------------


def generate(seed: int = 0, size: str = "small", *, as_of: datetime = AS_OF) -> Dataset:
    """A synthetic CRM for ``seed`` and ``size`` (see :data:`SIZES`), as it stood at ``as_of``.

    The same arguments always give equal datasets. Nothing is dated at or after
    ``as_of``; open deals close after it.

    Examples
    --------
    >>> data = generate(seed=1, size="tiny")
    >>> sorted({r.timezone for r in data.reps})[:2]
    ['America/New_York', 'America/Sao_Paulo']
    >>> generate(size="huge")
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Dataset.size = 'huge': must be one of tiny, ...
    """
    if size not in SIZES:
        raise ValidationError("Dataset", "size", size, f"must be one of {', '.join(SIZES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValidationError("Dataset", "seed", seed, "must be a whole number >= 0")
    if not isinstance(as_of, datetime) or as_of.tzinfo is None:
        raise ValidationError("Dataset", "as_of", as_of, "must be a timezone-aware datetime")
    as_of = as_of.astimezone(UTC)
    spec = SIZES[size]
    rng = np.random.default_rng(seed)
    return _Builder(rng, spec, as_of).build(seed, size)


class _Builder:
    """Draws the arrays, then builds the records; one instance per :func:`generate` call."""

    def __init__(self, rng: np.random.Generator, spec: SizeSpec, as_of: datetime) -> None:
        self.rng = rng
        self.spec = spec
        self.as_of = as_of
        self.now_us = _micros(as_of)
        self.window_us = spec.months * 30 * _DAY_US

    def build(self, seed: int, size: str) -> Dataset:
        teams, reps = self.people()
        model, territories = self.territories()
        arrays = self.accounts()
        self.contacts()
        opportunities, stage_changes = self.opportunities()
        accounts = self.finish_accounts(arrays)
        contacts = self.finish_contacts()
        leads = self.leads()
        activities = self.activities()
        return Dataset(
            seed=seed,
            size=size,
            as_of=self.as_of,
            teams=tuple(teams),
            reps=tuple(reps),
            territory_models=(model,),
            territories=tuple(territories),
            accounts=tuple(accounts),
            contacts=tuple(contacts),
            leads=tuple(leads),
            opportunities=tuple(opportunities),
            stage_changes=tuple(stage_changes),
            activities=tuple(activities),
        )

    def moments_before(self, n: int, *, span_us: int, skew: float = 1.0) -> IntArray:
        """``n`` instants in the ``span_us`` before ``as_of`` (skew > 1 favours recent)."""
        back = np.floor(self.rng.beta(1.0, skew, size=n) * span_us).astype(np.int64)
        return (self.now_us - 1 - back).astype(np.int64)

    # -- teams and reps --

    def people(self) -> tuple[list[Team], list[Rep]]:
        rng, spec = self.rng, self.spec
        n_offices = len(_OFFICES)
        n_managers = 1 + len(_SALES_REGIONS) + n_offices
        n_sellers = max(spec.reps - n_managers, n_offices)
        n = n_managers + n_sellers
        rep_ids = _ids("rep", n)
        self.rep_ids = rep_ids
        # rows: 0 = head of sales, 1..3 region managers, 4..9 office managers, then sellers
        office_of_seller = np.concatenate(
            [np.arange(n_offices), rng.integers(0, n_offices, n_sellers - n_offices)]
        ).astype(np.int64)
        region_index = {r: i for i, r in enumerate(_SALES_REGIONS)}
        office_region = np.array([region_index[o[2]] for o in _OFFICES], dtype=np.int64)
        office = np.concatenate(
            [[0], [list(office_region).index(i) for i in range(3)], np.arange(n_offices)]
        ).astype(np.int64)
        office = np.concatenate([office, office_of_seller])
        first = rng.integers(0, len(_FIRST), n)
        last = rng.integers(0, len(_LAST), n)
        capacity = rng.integers(15, 61, n)
        weight = rng.choice([1.0, 1.0, 1.0, 1.5, 2.0], size=n)
        n_skills = rng.integers(1, 4, n)
        skill_draw = rng.random((n, len(_SKILLS))).argsort(axis=1)
        created = self.moments_before(n, span_us=5 * 365 * _DAY_US)
        away = rng.random(n) < 0.06
        away_start = self.now_us - rng.integers(0, 5, n) * _DAY_US
        away_len = rng.integers(3, 15, n) * _DAY_US
        late_start = rng.random(n) < 0.3

        team_ids = {
            "global": "team-global",
            **{r: f"team-{r.lower()}" for r in _SALES_REGIONS},
            **{o[0]: f"team-{o[0]}" for o in _OFFICES},
        }
        teams = [Team(id="team-global", name="Global Sales", manager_id=rep_ids[0], region=None)]
        for i, region in enumerate(_SALES_REGIONS):
            teams.append(
                Team(
                    id=team_ids[region],
                    name=f"{region} Sales",
                    manager_id=rep_ids[1 + i],
                    parent_id="team-global",
                    region=region,
                )
            )
        for i, (key, name, region, *_rest) in enumerate(_OFFICES):
            teams.append(
                Team(
                    id=team_ids[key],
                    name=f"{name} Office",
                    manager_id=rep_ids[4 + i],
                    parent_id=team_ids[region],
                    region=region,
                )
            )
        teams = [attrs.evolve(t, created_at=self.as_of - timedelta(days=1500)) for t in teams]

        reps = []
        created_at = _moments(created)
        away_from = _moments(away_start)
        away_until = _moments(away_start + away_len)
        self.seller_rows: dict[str, list[int]] = {r: [] for r in _SALES_REGIONS}
        for row in range(n):
            o = _OFFICES[int(office[row])]
            key, _office_name, region, country, tz, language, start = o
            if row == 0:
                manager, teams_of, title = None, ("team-global",), "Head of Sales"
                region_of: str | None = None
            elif row < 4:
                region = _SALES_REGIONS[row - 1]
                manager, teams_of, title = rep_ids[0], (team_ids[region],), "Regional Director"
                region_of = region
            elif row < n_managers:
                manager = rep_ids[1 + region_index[region]]
                teams_of, title, region_of = (team_ids[key],), "Office Manager", region
            else:
                manager = rep_ids[4 + int(office[row])]
                teams_of, title, region_of = (team_ids[key],), "Account Executive", region
                self.seller_rows[region].append(row)
            begin = start + (1 if late_start[row] else 0)
            skills = tuple(_SKILLS[j] for j in skill_draw[row, : n_skills[row]])
            languages = (language,) if language == "en" else (language, "en")
            reps.append(
                Rep(
                    id=rep_ids[row],
                    name=f"{_FIRST[first[row]]} {_LAST[last[row]]}",
                    email=f"{_FIRST[first[row]].lower()}.{_LAST[last[row]].lower()}.{row + 1}"
                    "@crmkit-demo.example",
                    capacity=int(capacity[row]) if row >= n_managers else None,
                    weight=float(weight[row]),
                    skills=skills,
                    languages=languages,
                    country=country,
                    region=region_of,
                    timezone=tz,
                    work_start=time(begin, 0),
                    work_end=time(begin + 8, 0),
                    away_from=away_from[row] if away[row] else None,
                    away_until=away_until[row] if away[row] else None,
                    manager_id=manager,
                    team_ids=teams_of,
                    created_at=created_at[row],
                    custom={"title": title},
                )
            )
        self.sellers_by_region = {
            r: np.array(rows, dtype=np.int64) for r, rows in self.seller_rows.items()
        }
        self.region_managers = {r: rep_ids[1 + i] for i, r in enumerate(_SALES_REGIONS)}
        return teams, reps

    # -- territories --

    def territories(self) -> tuple[TerritoryModel, list[Territory]]:
        model = TerritoryModel(
            id="tm-fy2026",
            name="FY2026 territories",
            state=TerritoryModelState.ACTIVE,
            activated_at=min(
                datetime(self.as_of.year, 1, 1, tzinfo=UTC), self.as_of - timedelta(days=1)
            ),
            created_at=datetime(self.as_of.year - 1, 11, 1, tzinfo=UTC),
        )
        territories: list[Territory] = []
        self.territory_criteria: list[tuple[str, Any]] = []
        for key, name, parent, countries, regions in _TERRITORIES:
            criteria: Criteria = F.country.isin(list(countries))
            if regions:
                criteria = criteria & F.region.isin(list(regions))
            if parent is None:
                owner = self.region_managers.get(name)
            else:
                region = next(t[1] for t in _TERRITORIES if t[0] == parent)
                sellers = self.sellers_by_region[region]
                owner = self.rep_ids[int(sellers[len(territories) % len(sellers)])]
            territory = Territory(
                id=f"ter-{key}",
                name=name,
                model_id=model.id,
                parent_id=None if parent is None else f"ter-{parent}",
                territory_type="region" if parent is None else "area",
                priority=100 if parent is None else 10,
                criteria=criteria.to_dict(),
                owner_id=owner,
                created_at=model.created_at,
            )
            territories.append(territory)
            if parent is not None:
                self.territory_criteria.append((territory.id, bind(criteria, Account)))
        return model, territories

    # -- accounts --

    def accounts(self) -> dict[str, Any]:
        """Account arrays (records are built in :meth:`finish_accounts`, after the deals)."""
        rng, spec = self.rng, self.spec
        n = spec.accounts
        # families: sizes 2..15 until about a third of the accounts are in one
        in_families = int(n * 0.34)
        sizes: list[int] = []
        while sum(sizes) < in_families:
            big = rng.random() < 0.15
            s = int(rng.integers(7, 16)) if big else int(2 + rng.geometric(0.45))
            sizes.append(min(s, 15, in_families - sum(sizes) + 1))
        sizes = [s for s in sizes if s >= 2]
        fam_sizes = np.array(sizes, dtype=np.int64)
        n_fam_members = int(fam_sizes.sum())
        n_roots = len(sizes) + (n - n_fam_members)
        # slot layout: family members first (root then heap order), then standalone
        fam_of_slot = np.repeat(np.arange(len(sizes)), fam_sizes)
        fam_start = np.concatenate([[0], np.cumsum(fam_sizes)[:-1]]).astype(np.int64)
        k = np.arange(n_fam_members) - fam_start[fam_of_slot]
        branching = rng.integers(2, 4, len(sizes))
        parent_slot = np.full(n, -1, dtype=np.int64)
        member = k > 0
        parent_slot[:n_fam_members][member] = (
            fam_start[fam_of_slot] + (k - 1) // branching[fam_of_slot]
        )[member]
        root_slot = np.arange(n, dtype=np.int64)
        root_slot[:n_fam_members] = fam_start[fam_of_slot]
        position = np.zeros(n, dtype=np.int64)
        position[:n_fam_members] = k
        # which slot gets which id: a random permutation so families are not id-adjacent
        perm = rng.permutation(n).astype(np.int64)
        ids = _ids("acc", n)
        self.account_ids = [ids[p] for p in perm]  # id of each slot
        # names: root slots draw a distinct (A, B, C) combination when possible
        combos = len(_NAME_A) * len(_NAME_B) * len(_NAME_C)
        combo = rng.choice(combos, size=n_roots, replace=n_roots > combos).astype(np.int64)
        root_rows = np.flatnonzero(root_slot == np.arange(n))
        combo_of_slot = np.zeros(n, dtype=np.int64)
        combo_of_slot[root_rows] = combo
        combo_of_slot = combo_of_slot[root_slot]
        # geography: a family shares its root's country for most members
        country = _pick(rng, [c[1] for c in _COUNTRIES], n)
        abroad = rng.random(n) < 0.3
        country = np.where((parent_slot >= 0) & ~abroad, country[root_slot], country)
        region_draw = rng.random(n)
        postal_digits = rng.integers(0, 10, (n, 9))
        postal_letters = rng.integers(0, 26, (n, 4))
        # size: lognormal employees, subsidiaries smaller; revenue per employee by industry
        employees = np.maximum(np.round(np.exp(rng.normal(5.0, 1.6, n))).astype(np.int64), 2)
        employees = np.where(
            parent_slot >= 0,
            np.maximum(employees // (2 + position), 2),
            np.where(
                (root_slot == np.arange(n)) & (np.bincount(root_slot, minlength=n) > 1),
                employees * 5,
                employees,
            ),
        )
        revenue = employees * np.exp(rng.normal(np.log(180_000), 0.5, n))
        revenue = np.round(revenue / 1000.0) * 1000.0
        created = self.moments_before(n, span_us=4 * 365 * _DAY_US, skew=0.8)
        unowned = rng.random(n) < 0.03
        locked = rng.random(n) < 0.02
        division = (rng.integers(0, len(_DIVISIONS), n) + position) % len(_DIVISIONS)

        country_code = [_COUNTRIES[c][0] for c in country]
        region_of = np.zeros(n, dtype=np.int64)
        for c, entry in enumerate(_COUNTRIES):
            here = country == c
            w = 1.0 / np.arange(1, len(entry[5]) + 1)
            cum = np.cumsum(w / w.sum())
            region_of[here] = np.minimum(
                np.searchsorted(cum, region_draw[here], side="right"), len(entry[5]) - 1
            )
        region = [
            _COUNTRIES[c][5][r] for c, r in zip(country.tolist(), region_of.tolist(), strict=True)
        ]
        sales_region = [_COUNTRIES[c][2] for c in country]
        # owners: a random seller of the account's sales region
        owner_row = np.full(n, -1, dtype=np.int64)
        pick = rng.random(n)
        for r in _SALES_REGIONS:
            rows = np.flatnonzero(np.array(sales_region) == r)
            sellers = self.sellers_by_region[r]
            owner_row[rows] = sellers[(pick[rows] * len(sellers)).astype(np.int64)]
        owner_row[unowned] = -1

        # names and domains
        name, domain = [], []
        seen: dict[str, int] = {}
        for row in range(n):
            c = int(combo_of_slot[row])
            a, rest = divmod(c, len(_NAME_B) * len(_NAME_C))
            b, cc = divmod(rest, len(_NAME_C))
            base = f"{_NAME_A[a]}{_NAME_B[b]} {_NAME_C[cc][0]}"
            tld = _COUNTRIES[int(country[root_slot[row]])][3]
            if root_slot[row] == row:
                nth = seen.get(base, 0) + 1
                seen[base] = nth
                root_name = base if nth == 1 else f"{base} {nth}"
                root_domain = _slug(root_name) + tld
                name.append(root_name)
                domain.append(root_domain)
            else:
                root = int(root_slot[row])
                div = _DIVISIONS[int(division[row])]
                name.append(f"{name[root]} {div} {int(position[row])}")
                domain.append(f"{_slug(div)}{int(position[row])}.{domain[root]}")
        self.account_name = name
        self.account_domain = domain
        self.account_country = country
        self.account_sales_region = sales_region
        self.account_owner_row = owner_row
        self.account_employees = employees
        self.account_created = created
        n_accounts = n
        # territory: the leaf whose criteria match (first by priority), by numpy masks
        columns = {
            "country": np.array(country_code, dtype=str),
            "region": np.array(region, dtype=str),
        }
        leaf = np.full(n_accounts, -1, dtype=np.int64)
        for j, (_territory_id, criteria) in enumerate(self.territory_criteria):
            leaf[criteria.mask(columns) & (leaf < 0)] = j
        leaf_ids = [t for t, _ in self.territory_criteria]
        territory = [leaf_ids[j] if j >= 0 else None for j in leaf.tolist()]
        return {
            "parent_slot": parent_slot,
            "country": country_code,
            "region": region,
            "postal": [
                _postal(_COUNTRIES[int(country[row])][6], postal_digits[row], postal_letters[row])
                for row in range(n)
            ],
            "employees": employees,
            "revenue": revenue,
            "created": created,
            "locked": locked,
            "territory": territory,
            "industry": [_NAME_C[int(c) % len(_NAME_C)][1] for c in combo_of_slot],
        }

    def finish_accounts(self, arrays: dict[str, Any]) -> list[Account]:
        rng = self.rng
        n = self.spec.accounts
        revenue = arrays["revenue"]
        q1, q2 = np.quantile(revenue, [0.6, 0.9])
        tier = np.where(revenue >= q2, 0, np.where(revenue >= q1, 1, 2))
        nps = rng.integers(-60, 101, n)
        seats = np.maximum(np.round(arrays["employees"] * rng.uniform(0.05, 0.4, n)), 1)
        churned = rng.random(n) < 0.05
        lead_stage = rng.random(n) < 0.3
        won, open_ = self.account_won, self.account_open
        stage = np.where(
            won,
            np.where(churned, 4, 3),
            np.where(open_, 2, np.where(lead_stage, 1, 0)),
        )
        stage_names = ("prospect", "lead", "opportunity", "customer", "churned")
        partner = rng.random(n) < 0.03
        owner_ids = [None if r < 0 else self.rep_ids[int(r)] for r in self.account_owner_row]
        created = _moments(self.account_created)
        accounts = []
        for row in range(n):
            st = int(stage[row])
            is_customer = st in (3, 4)
            custom: dict[str, str | int | float | bool | None] = {
                "tier": ("gold", "silver", "bronze")[int(tier[row])]
            }
            if is_customer:
                custom["nps"] = int(nps[row])
                custom["seats"] = int(seats[row])
            parent = int(arrays["parent_slot"][row])
            accounts.append(
                Account(
                    id=self.account_ids[row],
                    name=self.account_name[row],
                    account_type=AccountType.PARTNER
                    if partner[row]
                    else (AccountType.CUSTOMER if st == 3 else AccountType.PROSPECT),
                    domain=self.account_domain[row],
                    industry=arrays["industry"][row],
                    country=arrays["country"][row],
                    region=arrays["region"][row],
                    postal_code=arrays["postal"][row],
                    employees=int(arrays["employees"][row]),
                    annual_revenue=Decimal(int(revenue[row])),
                    parent_id=None if parent < 0 else self.account_ids[parent],
                    owner_id=owner_ids[row],
                    territory_id=arrays["territory"][row],
                    realignment_locked=bool(arrays["locked"][row]),
                    lifecycle_stage=stage_names[st],
                    created_at=created[row],
                    custom=custom,
                )
            )
        return accounts

    # -- contacts --

    def contacts(self) -> None:
        rng, spec = self.rng, self.spec
        n_acc = spec.accounts
        per = 1 + rng.poisson(max(spec.contacts_per_account - 1, 0), n_acc)
        per = np.minimum(per, 40)
        account_row = np.repeat(np.arange(n_acc), per).astype(np.int64)
        n = len(account_row)
        self.contact_account = account_row
        self.contact_ids = _ids("con", n)
        first = rng.integers(0, len(_FIRST), n)
        last = rng.integers(0, len(_LAST), n)
        title = rng.integers(0, len(_TITLES), n)
        opted = rng.random(n) < 0.08
        phone = rng.integers(1_000_000, 9_999_999, n)
        acc_created = self.account_created[account_row]
        room = np.minimum(self.now_us - 1 - acc_created, 90 * _DAY_US)
        created = acc_created + np.floor(rng.random(n) * room).astype(np.int64)
        self.contact_created = created
        index = np.arange(n) - np.repeat(np.concatenate([[0], np.cumsum(per)[:-1]]), per)
        self.contact_order, self.contact_start, self.contact_count = _group_index(
            account_row, n_acc
        )
        self._contact_draws = (first, last, title, opted, phone, index)

    def finish_contacts(self) -> list[Contact]:
        first, last, title, opted, phone, index = self._contact_draws
        account_row = self.contact_account
        n = len(account_row)
        created_at = _moments(self.contact_created)
        contacts = []
        for row in range(n):
            acc = int(account_row[row])
            fn, ln = _FIRST[first[row]], _LAST[last[row]]
            country = _COUNTRIES[int(self.account_country[acc])]
            owner = int(self.account_owner_row[acc])
            contacts.append(
                Contact(
                    id=self.contact_ids[row],
                    account_id=self.account_ids[acc],
                    first_name=fn,
                    last_name=ln,
                    email=f"{fn.lower()}.{ln.lower()}{int(index[row]) or ''}"
                    f"@{self.account_domain[acc]}",
                    phone=f"{country[4]} {int(phone[row])}",
                    title=_TITLES[title[row]],
                    country=country[0],
                    owner_id=None if owner < 0 else self.rep_ids[owner],
                    opted_out=bool(opted[row]),
                    created_at=created_at[row],
                )
            )
        return contacts

    # -- opportunities and their stage history --

    def opportunities(self) -> tuple[list[Opportunity], list[StageChange]]:
        rng, spec = self.rng, self.spec
        n = spec.opportunities
        n_acc = spec.accounts
        # bigger accounts get more deals
        w = np.sqrt(self.account_employees.astype(np.float64))
        account_row = rng.choice(n_acc, size=n, p=w / w.sum()).astype(np.int64)
        no_account = rng.random(n) < 0.04
        account_row[no_account] = -1
        self.opp_ids = _ids("opp", n)
        source = rng.integers(0, len(_DEAL_SOURCES), n)
        outcome = _pick(rng, (0.45, 0.25, 0.30), n)  # open, won, lost
        # whether a closed deal is won depends on where it came from, so that deal scoring
        # has a real signal to find
        closed = outcome > 0
        win_rate = np.asarray(_DEAL_WIN_RATES)[source]
        outcome[closed] = np.where(rng.random(int(closed.sum())) < win_rate[closed], 1, 2)
        last_open = rng.integers(0, 4, n)  # the furthest open stage reached
        last_open = np.where(outcome == 1, 3, last_open)
        n_moves = last_open + 1 + (outcome > 0)  # stage changes, including the first
        gaps = rng.exponential(12.0, (n, 5)) * _DAY_US + _DAY_US
        gaps[:, 0] = 0
        gaps[np.arange(5)[None, :] >= n_moves[:, None]] = 0
        total = gaps.sum(axis=1)
        budget = self.window_us * 0.95
        scale = np.minimum(1.0, budget / np.maximum(total, 1.0))
        gaps = gaps * scale[:, None]
        total = gaps.sum(axis=1)
        room = np.maximum(budget - total, 0)
        since_last = np.where(
            outcome == 0,
            np.minimum(room, rng.exponential(10.0, n) * _DAY_US),
            rng.random(n) * room,
        )
        created = (self.now_us - 1 - since_last - total).astype(np.int64)
        at = (created[:, None] + np.cumsum(gaps, axis=1)).astype(np.int64)
        final_stage = np.where(outcome == 0, last_open, np.where(outcome == 1, 4, 5))
        product = _pick(rng, _PRODUCT_WEIGHTS, n)
        amount = (
            np.asarray(_PRODUCT_PRICE)[product]
            * np.exp(rng.normal(0.0, 0.6, n))
            * np.where(
                account_row >= 0,
                np.clip(self.account_employees[np.maximum(account_row, 0)] / 500.0, 0.3, 8.0),
                1.0,
            )
        )
        amount = np.maximum(np.round(amount / 100.0) * 100.0, 500.0)
        close_ahead = rng.integers(7, 181, n)
        loss = rng.integers(0, len(_LOSS_REASONS), n)
        unowned = rng.random(n) < 0.02
        any_seller = np.concatenate(list(self.sellers_by_region.values()))
        fallback = any_seller[rng.integers(0, len(any_seller), n)]
        owner_row = np.where(
            account_row >= 0, self.account_owner_row[np.maximum(account_row, 0)], fallback
        )
        owner_row = np.where(owner_row < 0, fallback, owner_row)
        owner_row[unowned] = -1
        contact_row = np.where(
            account_row >= 0,
            _pick_in_group(
                rng,
                np.maximum(account_row, 0),
                self.contact_order,
                self.contact_start,
                self.contact_count,
            ),
            -1,
        )
        # facts the accounts need: any won / open deal
        won = np.zeros(n_acc, dtype=bool)
        open_ = np.zeros(n_acc, dtype=bool)
        has = account_row >= 0
        won[account_row[has & (outcome == 1)]] = True
        open_[account_row[has & (outcome == 0)]] = True
        self.account_won, self.account_open = won, open_
        self.opp_account = account_row
        self.opp_created = created
        # an account (and its first contacts) exists before its first deal
        earliest = np.full(n_acc, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(earliest, account_row[has], created[has] - _DAY_US)
        moved = earliest < self.account_created
        shift = np.where(moved, self.account_created - earliest, 0)
        self.account_created -= shift
        self.contact_created -= shift[self.contact_account]
        # build
        today = self.as_of.date()
        moments = _moments(at.reshape(-1))
        created_at = moments[::5]
        opportunities, changes = [], []
        change_no = 0
        width = max(4, len(str(int(n_moves.sum()))))
        for row in range(n):
            acc = int(account_row[row])
            stage = STAGES[int(final_stage[row])]
            status = (OpportunityStatus.OPEN, OpportunityStatus.WON, OpportunityStatus.LOST)[
                int(outcome[row])
            ]
            owner = None if owner_row[row] < 0 else self.rep_ids[int(owner_row[row])]
            prod = _PRODUCTS[int(product[row])]
            closed_at = None if outcome[row] == 0 else moments[row * 5 + int(n_moves[row]) - 1]
            prob = (
                _OPEN_PROBABILITY[int(final_stage[row])]
                if outcome[row] == 0
                else (1.0 if outcome[row] == 1 else 0.0)
            )
            amt = Decimal(int(amount[row]))
            opp_id = self.opp_ids[row]
            account_name = self.account_name[acc] if acc >= 0 else "New business"
            opportunities.append(
                Opportunity(
                    id=opp_id,
                    name=f"{account_name} - {prod}",
                    account_id=None if acc < 0 else self.account_ids[acc],
                    contact_id=None
                    if contact_row[row] < 0
                    else self.contact_ids[int(contact_row[row])],
                    amount=amt,
                    stage=stage,
                    probability=prob,
                    status=status,
                    close_date=today + timedelta(days=int(close_ahead[row]))
                    if closed_at is None
                    else closed_at.date(),
                    product=prod,
                    owner_id=owner,
                    source=_DEAL_SOURCES[int(source[row])],
                    loss_reason=_LOSS_REASONS[int(loss[row])] if outcome[row] == 2 else None,
                    created_at=created_at[row],
                    closed_at=closed_at,
                )
            )
            path = [*STAGES[: int(last_open[row]) + 1]]
            if outcome[row] > 0:
                path.append(stage)
            previous: str | None = None
            for step, to_stage in enumerate(path):
                change_no += 1
                changes.append(
                    StageChange(
                        id=f"sc-{change_no:0{width}d}",
                        opportunity_id=opp_id,
                        from_stage=previous,
                        to_stage=to_stage,
                        at=moments[row * 5 + step],
                        amount=amt,
                        probability=_OPEN_PROBABILITY[step]
                        if step < 4 and to_stage == STAGES[step]
                        else prob,
                        changed_by=owner,
                    )
                )
                previous = to_stage
        return opportunities, changes

    # -- leads --

    def leads(self) -> list[Lead]:
        rng, spec = self.rng, self.spec
        n = spec.leads
        n_acc = spec.accounts
        self.lead_ids = _ids("lead", n)
        status = _pick(rng, _LEAD_STATUS_WEIGHTS, n)
        source = _pick(rng, _LEAD_SOURCE_WEIGHTS, n)
        # closed leads convert more often from some sources (a signal for lead scoring)
        closed = (status == 3) | (status == 4)
        rate = np.asarray(_LEAD_CONVERSION_RATES)[source]
        status[closed] = np.where(rng.random(int(closed.sum())) < rate[closed], 4, 3)
        at_account = (rng.random(n) < 0.25) | (status == 4)  # converted leads have an account
        account_row = np.where(at_account, rng.integers(0, n_acc, n), -1)
        country = _pick(rng, [c[1] for c in _COUNTRIES], n)
        country = np.where(
            account_row >= 0, self.account_country[np.maximum(account_row, 0)], country
        )
        region_pick = rng.random(n)
        first = rng.integers(0, len(_FIRST), n)
        last = rng.integers(0, len(_LAST), n)
        title = rng.integers(0, len(_TITLES), n)
        combo = rng.integers(0, len(_NAME_A) * len(_NAME_B) * len(_NAME_C), n)
        employees = np.maximum(np.round(np.exp(rng.normal(4.0, 1.5, n))), 1).astype(np.int64)
        created = self.moments_before(n, span_us=self.window_us, skew=1.5)
        assign_delay = (rng.exponential(4.0, n) * 3600 * _US).astype(np.int64)
        queued = (status == 0) & (rng.random(n) < 0.4)
        dup_of = np.where(rng.random(n) < 0.03, rng.integers(0, n, n), -1)
        owner_pick = rng.random(n)
        has_email = rng.random(n) < 0.95
        utm = rng.random(n) < 0.3
        contact_pick = _pick_in_group(
            rng,
            np.maximum(account_row, 0).astype(np.int64),
            self.contact_order,
            self.contact_start,
            self.contact_count,
        )
        created_at = _moments(created)
        assigned_at = _moments(np.minimum(created + assign_delay, self.now_us - 1))
        emails: list[str | None] = []
        leads = []
        self.lead_owner_row = np.full(n, -1, dtype=np.int64)
        for row in range(n):
            acc = int(account_row[row])
            c = _COUNTRIES[int(country[row])]
            fn, ln = _FIRST[first[row]], _LAST[last[row]]
            if acc >= 0:
                company = self.account_name[acc]
                domain = self.account_domain[acc]
            else:
                a, rest = divmod(int(combo[row]), len(_NAME_B) * len(_NAME_C))
                b, cc = divmod(rest, len(_NAME_C))
                company = f"{_NAME_A[a]}{_NAME_B[b]} {_NAME_C[cc][0]}"
                domain = f"{_slug(company)}-mail{c[3]}"
            email = f"{fn.lower()}.{ln.lower()}@{domain}" if has_email[row] else None
            dup = int(dup_of[row])
            if 0 <= dup < row and emails[dup] is not None:
                email = emails[dup]
            emails.append(email)
            regions = c[5]
            region = regions[int(region_pick[row] * len(regions))]
            st = _LEAD_STATUSES[int(status[row])]
            if queued[row]:
                owner, queue = None, f"inbound-{c[2].lower()}"
            else:
                sellers = self.sellers_by_region[c[2]]
                owner_row = int(sellers[int(owner_pick[row] * len(sellers))])
                self.lead_owner_row[row] = owner_row
                owner, queue = self.rep_ids[owner_row], None
            converted = st is LeadStatus.CONVERTED
            contact = int(contact_pick[row]) if converted else -1
            leads.append(
                Lead(
                    id=self.lead_ids[row],
                    first_name=fn,
                    last_name=ln,
                    company=company,
                    email=email,
                    title=_TITLES[title[row]],
                    source=_LEAD_SOURCES[int(source[row])],
                    status=st,
                    industry=_NAME_C[int(combo[row]) % len(_NAME_C)][1] if acc < 0 else None,
                    country=c[0],
                    region=region,
                    employees=int(employees[row]) if acc < 0 else int(self.account_employees[acc]),
                    owner_id=owner,
                    queue=queue,
                    assigned_at=None if owner is None else assigned_at[row],
                    converted_account_id=self.account_ids[acc] if converted else None,
                    converted_contact_id=self.contact_ids[contact] if contact >= 0 else None,
                    created_at=created_at[row],
                    custom={"utm_campaign": f"fy{self.as_of.year % 100}-q{1 + row % 4}"}
                    if utm[row]
                    else {},
                )
            )
        self.lead_status = status
        self.lead_created = created
        return leads

    # -- activities --

    def activities(self) -> list[Activity]:
        rng, spec = self.rng, self.spec
        n = spec.activities
        n_acc = spec.accounts
        self.activity_ids = ids = _ids("act", n)
        kind = _pick(rng, [k[1] for k in _KINDS], n)
        by_rep = np.array([k[2] for k in _KINDS])[kind]
        inbound = np.array([k[3] for k in _KINDS])[kind]
        # who: 85% accounts (skewed, some dormant), else open leads
        engagement = np.exp(rng.normal(0.0, 1.3, n_acc))
        engagement[rng.random(n_acc) < 0.15] = 0.0
        engagement[self.account_open] *= 3.0
        if engagement.sum() == 0:
            engagement[:] = 1.0
        open_leads = np.flatnonzero(self.lead_status <= 2)
        on_lead = (rng.random(n) < 0.15) & (len(open_leads) > 0)
        account_row = rng.choice(n_acc, size=n, p=engagement / engagement.sum()).astype(np.int64)
        lead_row = np.where(
            on_lead,
            open_leads[rng.integers(0, max(len(open_leads), 1), n)] if len(open_leads) else -1,
            -1,
        )
        account_row = np.where(on_lead, -1, account_row)
        contact_row = _pick_in_group(
            rng,
            np.maximum(account_row, 0),
            self.contact_order,
            self.contact_start,
            self.contact_count,
        )
        contact_row = np.where(account_row >= 0, contact_row, -1)
        # nothing happens with an account, contact or lead before it exists
        start = np.where(account_row >= 0, self.account_created[np.maximum(account_row, 0)], 0)
        if len(self.contact_created):
            start = np.maximum(
                start,
                np.where(contact_row >= 0, self.contact_created[np.maximum(contact_row, 0)], 0),
            )
        if len(self.lead_created):
            start = np.maximum(
                start, np.where(lead_row >= 0, self.lead_created[np.maximum(lead_row, 0)], 0)
            )
        # when: recent-heavy, at a time of day around office hours
        at = self.moments_before(n, span_us=self.window_us, skew=1.6)
        late = at < start
        at = np.where(
            late, start + ((self.now_us - 1 - start) * rng.random(n)).astype(np.int64), at
        )
        day = at // _DAY_US
        hour_us = (np.clip(rng.normal(14.0, 3.5, n), 0.0, 23.9) * 3600 * _US).astype(np.int64)
        moved = day * _DAY_US + hour_us
        moved = np.where(moved >= self.now_us, moved - _DAY_US, moved)
        at = np.where(moved >= start, moved, at)
        # rep actions happen on weekdays: weekend ones move to Friday, or else to Monday
        weekday = (at // _DAY_US + 3) % 7
        back = np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0)) * _DAY_US
        ahead = np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0)) * _DAY_US
        weekend = by_rep & (back > 0)
        to_friday = weekend & (at - back >= start)
        to_monday = weekend & ~to_friday & (at + ahead < self.now_us)
        at = np.where(to_friday, at - back, np.where(to_monday, at + ahead, at))
        # some account activity is about one of the account's deals (created before it)
        opp_order, opp_start, opp_count = _group_index(
            np.where(self.opp_account >= 0, self.opp_account, n_acc).astype(np.int64), n_acc + 1
        )
        opp_row = _pick_in_group(
            rng, np.where(account_row >= 0, account_row, n_acc), opp_order, opp_start, opp_count
        )
        about_deal = (opp_row >= 0) & (account_row >= 0) & (rng.random(n) < 0.5)
        about_deal &= at >= self.opp_created[np.maximum(opp_row, 0)]
        opp_row = np.where(about_deal, opp_row, -1)
        owner_row = np.where(
            account_row >= 0,
            self.account_owner_row[np.maximum(account_row, 0)],
            self.lead_owner_row[np.maximum(lead_row, 0)] if len(self.lead_owner_row) else -1,
        )
        actor_row = np.where(by_rep, owner_row, -1)
        call_in = rng.random(n) < 0.2
        outcome_draw = rng.random(n)
        duration = np.where(
            kind == 4,
            rng.integers(2, 31, n),
            np.where(kind == 5, rng.choice([30, 45, 60], n), -1),
        )
        subject_draw = rng.integers(0, 5, n)
        moments = _moments(at)
        rep_ids, acc_ids, lead_ids = self.rep_ids, self.account_ids, self.lead_ids
        con_ids, opp_ids = self.contact_ids, self.opp_ids
        kinds = [k[0] for k in _KINDS]
        activities = []
        for row, (k, a, lr, cr, orow, ar, inn, dur) in enumerate(
            zip(
                kind.tolist(),
                account_row.tolist(),
                lead_row.tolist(),
                contact_row.tolist(),
                opp_row.tolist(),
                actor_row.tolist(),
                inbound.tolist(),
                duration.tolist(),
                strict=True,
            )
        ):
            kind_ = kinds[k]
            outcome = None
            if kind_ is ActivityKind.CALL:
                inn = bool(call_in[row])
                d = outcome_draw[row]
                outcome = "connected" if d < 0.45 else ("voicemail" if d < 0.8 else "no_answer")
            elif kind_ is ActivityKind.MEETING:
                outcome = "held" if outcome_draw[row] < 0.9 else "no_show"
            subjects = _SUBJECTS.get(kind_)
            activities.append(
                Activity(
                    id=ids[row],
                    kind=kind_,
                    at=moments[row],
                    account_id=acc_ids[a] if a >= 0 else None,
                    contact_id=con_ids[cr] if cr >= 0 else None,
                    lead_id=lead_ids[lr] if lr >= 0 else None,
                    opportunity_id=opp_ids[orow] if orow >= 0 else None,
                    actor_id=rep_ids[ar] if ar >= 0 else None,
                    direction=Direction.INBOUND if inn else Direction.OUTBOUND,
                    outcome=outcome,
                    subject=subjects[subject_draw[row] % len(subjects)] if subjects else None,
                    duration_minutes=dur if dur >= 0 else None,
                )
            )
        return activities


# -- loading ----------------------------------------------------------------------------------

_CHUNK = 50_000


def load(store: Store, dataset: Dataset, *, progress: Progress | None = None) -> None:
    """Write every record of ``dataset`` into ``store`` in one transaction.

    Records go in dependency order (teams and reps before the accounts they own, accounts
    before their contacts and deals ...) with ``add_many``, in chunks; ``progress(step,
    done, total)`` is called after each chunk. If anything fails nothing is written.

    Examples
    --------
    >>> from crmkit.store import MemoryStore
    >>> seen = []
    >>> store = MemoryStore()
    >>> load(store, generate(size="tiny"), progress=lambda step, done, total: seen.append(step))
    >>> seen[0], len(store.accounts)
    ('teams', 40)
    """
    with store.transaction():
        for name, records in dataset.records().items():
            repo = getattr(store, name)
            total = len(records)
            if progress is not None:
                progress(name, 0, total)
            for start in range(0, total, _CHUNK):
                repo.add_many(records[start : start + _CHUNK])
                if progress is not None:
                    progress(name, min(start + _CHUNK, total), total)
