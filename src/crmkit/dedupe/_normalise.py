"""Normalisers: small pure functions that turn a value into the form two records are
compared in. Each returns ``None`` for a value with nothing left to compare."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from crmkit._optional import require
from crmkit.errors import ValidationError

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

_PLUS_POLICIES = ("keep", "strip")


def _data_lines(name: str) -> list[str]:
    text = resources.files("crmkit.dedupe").joinpath(name).read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


@cache
def _suffixes() -> frozenset[str]:
    return frozenset(line.lower() for line in _data_lines("public_suffixes.txt"))


@cache
def _nicknames() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in _data_lines("nicknames.txt"):
        canonical, _, nicks = line.partition(":")
        canonical = canonical.strip().lower()
        table.setdefault(canonical, canonical)
        for nick in nicks.split(","):
            nick = nick.strip().lower()
            if nick:
                table.setdefault(nick, canonical)
    return table


def strip_accents(text: str) -> str:
    """``text`` without combining accents (NFKD, marks dropped).

    >>> strip_accents("Société Générale Zürich")
    'Societe Generale Zurich'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_text(value: str | None) -> str | None:
    """Case-folded, accent-free words separated by single spaces.

    >>> normalise_text("  Crème  Brûlée-Café ")
    'creme brulee cafe'
    >>> normalise_text("--") is None
    True
    """
    if not value:
        return None
    words = _NON_ALNUM.sub(" ", strip_accents(value).casefold()).split()
    return " ".join(words) or None


def normalise_email(value: str | None, *, plus_addresses: str = "keep") -> str | None:
    """An email address lower-cased and trimmed; ``None`` if it has no ``local@domain``.

    ``plus_addresses="strip"`` drops a ``+tag`` from the local part (``ada+news@x.com``
    is ``ada@x.com``); the default keeps it, because not every mail server treats ``+``
    as a sub-address. Dots in the local part are kept for the same reason.

    >>> normalise_email(" Ada.Lovelace@Example.COM ")
    'ada.lovelace@example.com'
    >>> normalise_email("ada+crm@example.com", plus_addresses="strip")
    'ada@example.com'
    >>> normalise_email("not an email") is None
    True
    """
    if plus_addresses not in _PLUS_POLICIES:
        raise ValidationError(
            "normalise_email", "plus_addresses", plus_addresses, "must be 'keep' or 'strip'"
        )
    if not value:
        return None
    text = value.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or " " in text or "." not in domain:
        return None
    if plus_addresses == "strip":
        local = local.split("+", 1)[0] or local
    return f"{local}@{domain.rstrip('.')}"


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def domain_of(value: str | None) -> str | None:
    """The host name of a website or email address: lower case, no scheme, path, port,
    user or leading ``www.``.

    >>> domain_of("https://www.Acme.co.uk/about?x=1")
    'acme.co.uk'
    >>> domain_of("Ada@Mail.Acme.com")
    'mail.acme.com'
    >>> domain_of("acme.com:8080"), domain_of("") is None
    ('acme.com', True)
    """
    if not value:
        return None
    text = value.strip().lower()
    if "@" in text and "/" not in text:
        text = text.rpartition("@")[2]
    else:
        text = _SCHEME.sub("", text)
        text = re.split(r"[/?#]", text, maxsplit=1)[0]
        text = text.rpartition("@")[2]
    text = text.split(":", 1)[0].strip(".")
    while text.startswith("www.") or re.match(r"^www\d\.", text):
        text = text.split(".", 1)[1]
    if not text or " " in text or "." not in text:
        return None
    return text


def registrable_domain(value: str | None, *, extra_suffixes: Iterable[str] = ()) -> str | None:
    """The domain a company registers (``acme.co.uk``), from a website, email or host.

    The public suffixes come from a list shipped with crmkit (no network); a host
    whose ending is not on the list keeps its last two labels. ``extra_suffixes`` adds
    suffixes (``["myshop.example"]``) for this call.

    >>> registrable_domain("https://shop.eu.acme.co.uk/cart")
    'acme.co.uk'
    >>> registrable_domain("bob@sales.acme.com")
    'acme.com'
    >>> registrable_domain("www.acme.com.au"), registrable_domain("co.uk") is None
    ('acme.com.au', True)
    """
    host = domain_of(value)
    if host is None:
        return None
    suffixes = _suffixes() | {s.strip(".").lower() for s in extra_suffixes}
    labels = host.split(".")
    for start in range(len(labels)):  # the longest listed suffix wins
        if ".".join(labels[start:]) in suffixes:
            return ".".join(labels[start - 1 :]) if start else None
    return ".".join(labels[-2:])


def normalise_phone(value: str | None, *, region: str | None = None) -> str | None:
    """A phone number in E.164 (``+442079460000``), read with the ``phonenumbers``
    package (``pip install 'crmkit[phone]'``); ``None`` if it is not a possible number.

    ``region`` (ISO country, ``"GB"``) reads numbers written without a country code.

    >>> normalise_phone("+1 (415) 555-0132")
    '+14155550132'
    >>> normalise_phone("020 7946 0000", region="GB")
    '+442079460000'
    >>> normalise_phone("call me") is None
    True
    """
    if not value:
        return None
    phonenumbers: Any = require("phonenumbers", extra="phone", feature="normalise_phone()")
    try:
        number = phonenumbers.parse(value, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    result: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return result


def phone_key(value: str | None, *, digits: int = 9) -> str | None:
    """The last ``digits`` digits of a phone number: a matching key that ignores
    formatting, country codes and trunk prefixes, with no dependency.

    It is what the matching rules use by default (``normaliser="phone"``): fast on a
    million rows, where ``normalise_phone`` is exact but costs a parse per value.

    >>> phone_key("+44 20 7946 0000"), phone_key("(020) 7946-0000")
    ('079460000', '079460000')
    >>> phone_key("12345") is None
    True
    """
    if not value:
        return None
    found = _NOT_DIGIT.sub("", value)
    if len(found) < min(digits, 7):
        return None
    return found[-digits:]


_NOT_DIGIT = re.compile(r"\D+")
_LEGAL_SUFFIXES = frozenset(
    """
    inc incorporated corp corporation co company cos ltd limited llc llp lp plc pllc
    gmbh mbh ag kg kgaa ohg ug se sa sas sasu sarl srl spa sl sau bv nv oy oyj ab as asa
    aps kk pty pvt pte sdn bhd nl cv sc scs eurl
    """.split()  # noqa: SIM905 - a word list reads better as words
)
_SINGLE_LETTER_DOT = re.compile(r"\b([a-z])\.")


def normalise_company(value: str | None) -> str | None:
    """A company name for matching: accents, case, punctuation, a leading "The" and
    trailing legal forms (Inc, Ltd, GmbH, S.A., LLC, plc, AG, SAS ...) removed;
    ``&`` reads as "and".

    Legal forms are removed only at the end, so "Co-operative Bank" keeps its "co".

    >>> normalise_company("The ACME Company, Inc.")
    'acme'
    >>> normalise_company("Société Générale S.A.")
    'societe generale'
    >>> normalise_company("Müller & Söhne GmbH & Co. KG")
    'muller and sohne'
    >>> normalise_company("Co-operative Bank plc")
    'co operative bank'
    """
    if not value:
        return None
    text = strip_accents(value).casefold()
    text = _SINGLE_LETTER_DOT.sub(r"\1", text).replace("&", " and ").replace("'", "")
    words = _NON_ALNUM.sub(" ", text).split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and (words[-1] in _LEGAL_SUFFIXES or words[-1] == "and"):
        words.pop()
    return " ".join(words) or None


def canonical_first_name(value: str | None) -> str | None:
    """A given name through the shipped nickname table (``Bob`` is ``robert``).

    >>> canonical_first_name("Bob"), canonical_first_name("Liz"), canonical_first_name("Zoë")
    ('robert', 'elizabeth', 'zoe')
    """
    text = normalise_text(value)
    if text is None:
        return None
    table = _nicknames()
    return " ".join(table.get(word, word) for word in text.split())


def normalise_person_name(first: str | None, last: str | None = None) -> str | None:
    """A person's name for matching: nicknames made canonical, accents, case and
    punctuation removed, and the words sorted, so transposed first and last names
    compare equal.

    Every word goes through the nickname table (a surname that is also a nickname, such
    as "Bill", becomes "william" on both sides alike).

    >>> normalise_person_name("Bob", "Smith"), normalise_person_name("Smith", "Robert")
    ('robert smith', 'robert smith')
    >>> normalise_person_name("Seán", "O'Brien-Kelly")
    'kelly obrien sean'
    """
    parts = [p.replace("'", "") for p in (first, last) if p]
    canonical = canonical_first_name(" ".join(parts))
    if canonical is None:
        return None
    return " ".join(sorted(canonical.split()))


_SOUNDEX = {c: str(d) for d, letters in enumerate(("", "bfpv", "cgjkqsxz", "dt", "l", "mn", "r"))
            for c in letters}  # fmt: skip


def _soundex(word: str) -> str:
    first = word[0]
    code = first.upper()
    last = _SOUNDEX.get(first, "")
    for c in word[1:]:
        digit = _SOUNDEX.get(c, "")
        if digit and digit != last:
            code += digit
            if len(code) == 4:
                break
        if c not in "hw":  # h and w do not separate equal codes; vowels do
            last = digit
    return code.ljust(4, "0")


def phonetic_key(value: str | None) -> str | None:
    """A Soundex code per word (American Soundex: first letter, then three digits for
    the consonant groups), sorted: names that sound alike share a key.

    >>> phonetic_key("Robert"), phonetic_key("Rupert"), phonetic_key("Ashcraft")
    ('R163', 'R163', 'A261')
    >>> phonetic_key("Catherine Smith"), phonetic_key("Smyth Kathryn")
    ('C365 S530', 'K365 S530')
    """
    text = normalise_text(value)
    if text is None:
        return None
    words = [w for w in text.split() if w.isalpha()]
    return " ".join(sorted(_soundex(w) for w in words)) or None


def _person(value: str | None) -> str | None:
    return normalise_person_name(value)


def _domain(value: str | None) -> str | None:
    return registrable_domain(value)


def _email(value: str | None) -> str | None:
    return normalise_email(value)


NORMALISERS: Mapping[str, Callable[[str | None], str | None]] = {
    "company": normalise_company,
    "domain": _domain,
    "e164": normalise_phone,
    "email": _email,
    "person": _person,
    "phone": phone_key,
    "text": normalise_text,
}
"""The normalisers a matching rule can name (``MatchField(normaliser="company")``)."""
