"""Data quality: normalisers, matching rules, duplicate jobs, merge and unmerge, lead
conversion and lead-to-account matching."""

from __future__ import annotations

from crmkit.dedupe._jobs import (
    DEFAULT_RULES,
    DuplicateAction,
    DuplicateCheck,
    DuplicateError,
    DuplicateIndex,
    DuplicatePair,
    DuplicatePolicy,
    DuplicateReport,
    FieldMatch,
    find_duplicate_pairs,
    find_duplicates,
)
from crmkit.dedupe._merge import (
    MERGEABLE,
    REFERENCES,
    SurvivorRule,
    merge,
    rank_records,
    unmerge,
)
from crmkit.dedupe._normalise import (
    NORMALISERS,
    canonical_first_name,
    domain_of,
    normalise_company,
    normalise_email,
    normalise_person_name,
    normalise_phone,
    normalise_text,
    phone_key,
    phonetic_key,
    registrable_domain,
    strip_accents,
)
from crmkit.dedupe._rules import MatchField, MatchMethod, MatchRule, rules_from_data

__all__ = [
    "DEFAULT_RULES",
    "MERGEABLE",
    "NORMALISERS",
    "REFERENCES",
    "DuplicateAction",
    "DuplicateCheck",
    "DuplicateError",
    "DuplicateIndex",
    "DuplicatePair",
    "DuplicatePolicy",
    "DuplicateReport",
    "FieldMatch",
    "MatchField",
    "MatchMethod",
    "MatchRule",
    "SurvivorRule",
    "canonical_first_name",
    "domain_of",
    "find_duplicate_pairs",
    "find_duplicates",
    "merge",
    "normalise_company",
    "normalise_email",
    "normalise_person_name",
    "normalise_phone",
    "normalise_text",
    "phone_key",
    "phonetic_key",
    "rank_records",
    "registrable_domain",
    "rules_from_data",
    "strip_accents",
    "unmerge",
]
