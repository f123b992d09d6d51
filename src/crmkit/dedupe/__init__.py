"""Data quality: normalisers, matching rules, duplicate jobs, merge and unmerge, lead
conversion and lead-to-account matching."""

from __future__ import annotations

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

__all__ = [
    "NORMALISERS",
    "canonical_first_name",
    "domain_of",
    "normalise_company",
    "normalise_email",
    "normalise_person_name",
    "normalise_phone",
    "normalise_text",
    "phone_key",
    "phonetic_key",
    "registrable_domain",
    "strip_accents",
]
