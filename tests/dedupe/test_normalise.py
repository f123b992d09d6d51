"""Normalisers: worked cases and properties."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmkit.dedupe import (
    canonical_first_name,
    domain_of,
    normalise_company,
    normalise_email,
    normalise_person_name,
    normalise_phone,
    phone_key,
    phonetic_key,
    registrable_domain,
)
from crmkit.errors import MissingDependencyError, ValidationError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACME Inc.", "acme"),
        ("Acme, Incorporated", "acme"),
        ("acme ltd", "acme"),
        ("ACME LIMITED", "acme"),
        ("Acme GmbH", "acme"),
        ("Acme S.A.", "acme"),
        ("Acme SAS", "acme"),
        ("Acme L.L.C.", "acme"),
        ("Acme plc", "acme"),
        ("Acme AG", "acme"),
        ("Acme Pty Ltd", "acme"),
        ("The Acme Corporation", "acme"),
        ("Ácmé", "acme"),
        ("Smith & Co", "smith"),
        ("Procter & Gamble", "procter and gamble"),
        ("The Company", "company"),
        ("", None),
        ("...", None),
    ],
)
def test_company_names(raw: str, expected: str | None) -> None:
    assert normalise_company(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://acme.com", "acme.com"),
        ("HTTPS://WWW.ACME.COM/", "acme.com"),
        ("www2.acme.com", "acme.com"),
        ("user:pw@acme.com:443/x", "acme.com"),
        ("shop.acme.com.au", "acme.com.au"),
        ("a.b.acme.co.jp", "acme.co.jp"),
        ("acme.unknowntld", "acme.unknowntld"),
        ("x.acme.unknowntld", "acme.unknowntld"),
        ("sales@eu.acme.de", "acme.de"),
        ("com", None),
        ("com.au", None),
        ("not a site", None),
    ],
)
def test_registrable_domain(raw: str, expected: str | None) -> None:
    assert registrable_domain(raw) == expected


def test_extra_suffixes_extend_the_list() -> None:
    assert registrable_domain("shop.team.example.net") == "example.net"
    assert registrable_domain("shop.team.example.net", extra_suffixes=["example.net"]) == (
        "team.example.net"
    )


def test_domain_of_keeps_subdomains() -> None:
    assert domain_of("https://eu.shop.acme.com/path") == "eu.shop.acme.com"


def test_email_policies() -> None:
    assert normalise_email("Ada+X@Example.com") == "ada+x@example.com"
    assert normalise_email("Ada+X@Example.com", plus_addresses="strip") == "ada@example.com"
    assert normalise_email("+x@example.com", plus_addresses="strip") == "+x@example.com"
    assert normalise_email("a@b") is None
    assert normalise_email(None) is None
    with pytest.raises(ValidationError, match="plus_addresses"):
        normalise_email("a@b.com", plus_addresses="drop")


def test_phones() -> None:
    assert normalise_phone("+44 20 7946 0000") == "+442079460000"
    assert normalise_phone("(415) 555-0132", region="us") == "+14155550132"
    assert normalise_phone("5550132") is None  # no region, no country code
    assert phone_key("+1 415-555-0132") == phone_key("415.555.0132") == "155550132"


def test_phone_without_the_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "phonenumbers", None)
    with pytest.raises(MissingDependencyError, match=r"crmkit\[phone\]"):
        normalise_phone("+44 20 7946 0000")


def test_person_names() -> None:
    assert canonical_first_name("BOBBY") == "robert"
    assert canonical_first_name("Unlisted") == "unlisted"
    assert normalise_person_name("Bill", "Gates") == normalise_person_name("Gates", "William")
    assert normalise_person_name(None, None) is None


def test_soundex_reference_codes() -> None:
    # the reference codes of the US National Archives' description of Soundex
    cases = {
        "Robert": "R163",
        "Rupert": "R163",
        "Rubin": "R150",
        "Ashcraft": "A261",
        "Ashcroft": "A261",
        "Tymczak": "T522",
        "Pfister": "P236",
        "Honeyman": "H555",
    }
    assert {name: phonetic_key(name) for name in cases} == cases


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÉéÜü -'", max_size=20)


@given(names, names)
def test_person_name_is_symmetric_in_first_and_last(first: str, last: str) -> None:
    assert normalise_person_name(first, last) == normalise_person_name(last, first)


@given(st.text(max_size=30))
def test_normalisers_are_idempotent(text: str) -> None:
    once = normalise_company(text)
    assert once is None or normalise_company(once) == once
    email = normalise_email(text)
    assert email is None or normalise_email(email) == email
