"""Matching rules: which fields two records are compared on, how, and with what weight."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from crmkit._schema import record_type_named, schema_of
from crmkit.dedupe._normalise import NORMALISERS, phonetic_key
from crmkit.errors import CriteriaError, ValidationError

__all__ = ["MatchField", "MatchMethod", "MatchRule", "rules_from_data"]


class MatchMethod(enum.StrEnum):
    """How one field of two records is compared.

    ``exact``: the stored values are equal; ``normalised``: equal after the field's
    normaliser; ``fuzzy``: a rapidfuzz similarity of the normalised values of at least
    ``threshold``; ``phonetic``: the Soundex keys of the normalised values are equal.
    """

    EXACT = "exact"
    NORMALISED = "normalised"
    FUZZY = "fuzzy"
    PHONETIC = "phonetic"


#: The rapidfuzz scorers a fuzzy field can name; every score is read in [0, 1].
SCORERS = ("jaro_winkler", "ratio", "token_set_ratio", "token_sort_ratio")

#: Fields of two text columns that read as one value (a person's full name).
PERSON_NAME = ("first_name", "last_name")

_DEFAULT_NORMALISER = {
    "email": "email",
    "sender_email": "email",
    "phone": "phone",
    "domain": "domain",
    "website": "domain",
    "company": "company",
}


def _person_name_type(record_type: type[Any]) -> bool:
    names = {f.name for f in attrs.fields(record_type)}
    return set(PERSON_NAME) <= names


def _check_unit(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValidationError("MatchField", attribute.name, value, "must be a number in [0, 1]")


def _check_weight(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValidationError("MatchField", attribute.name, value, "must be a number > 0")


def _to_method(value: Any) -> MatchMethod:
    try:
        return MatchMethod(value)
    except ValueError:
        raise ValidationError(
            "MatchField", "method", value, f"must be one of {', '.join(MatchMethod)}"
        ) from None


@attrs.frozen(kw_only=True)
class MatchField:
    """One field of a rule: compared by ``method``, passing at ``threshold``, counted in
    the rule's score with ``weight``.

    ``field`` is a field of the record, ``custom.<key>``, or ``name``: for contacts and
    leads that is first and last name read together. ``normaliser`` names an entry of
    :data:`~crmkit.dedupe.NORMALISERS`; by default it follows the field (``email``,
    ``phone``, ``domain``, ``company``; ``name`` is ``person`` on contacts and leads and
    ``company`` on accounts; anything else ``text``). ``scorer`` picks the rapidfuzz
    similarity of a fuzzy field (``token_sort_ratio`` by default, so word order does
    not matter).

    >>> MatchField(field="name", method="fuzzy", threshold=0.85)
    MatchField(field='name', method=<MatchMethod.FUZZY: 'fuzzy'>, threshold=0.85, ...)
    """

    field: str
    method: MatchMethod = attrs.field(default=MatchMethod.NORMALISED, converter=_to_method)
    threshold: float = attrs.field(
        default=attrs.Factory(
            lambda self: 0.85 if self.method is MatchMethod.FUZZY else 1.0, takes_self=True
        ),
        validator=_check_unit,
    )
    weight: float = attrs.field(default=1.0, validator=_check_weight)
    normaliser: str | None = None
    scorer: str = "token_sort_ratio"

    def __attrs_post_init__(self) -> None:
        if self.normaliser is not None and self.normaliser not in NORMALISERS:
            raise ValidationError(
                "MatchField",
                "normaliser",
                self.normaliser,
                f"must be one of {', '.join(sorted(NORMALISERS))}",
            )
        if self.scorer not in SCORERS:
            raise ValidationError(
                "MatchField", "scorer", self.scorer, f"must be one of {', '.join(SCORERS)}"
            )

    def normaliser_for(self, record_type: type[Any]) -> str:
        """The normaliser this field uses on ``record_type``."""
        if self.normaliser is not None:
            return self.normaliser
        if self.field == "name":
            return "person" if _person_name_type(record_type) else "company"
        if self.field in PERSON_NAME:
            return "person"
        return _DEFAULT_NORMALISER.get(self.field, "text")

    def source_fields(self, record_type: type[Any]) -> tuple[str, ...]:
        """The stored fields this field reads."""
        if self.field == "name" and _person_name_type(record_type):
            return PERSON_NAME
        return (self.field,)


def _to_field(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    try:
        return MatchField(**value)
    except TypeError as err:
        raise ValidationError("MatchField", None, dict(value), f"bad keys: {err}") from None


def _to_fields(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_to_field(v) for v in value)
    return value


@attrs.frozen(kw_only=True)
class MatchRule:
    """Two records are duplicates under this rule when ``all`` (or ``any``) of its
    fields pass, and the weighted mean score of the fields known on both sides is at
    least ``min_score``.

    A field missing on either side neither passes nor counts in the score: under
    ``all`` such a pair does not match. The blocking keys (which pairs are compared at
    all) come from the rule, see :meth:`blocking_fields`.

    >>> rule = MatchRule(id="person", record_type="Contact", fields=[
    ...     {"field": "name", "method": "fuzzy", "threshold": 0.85, "weight": 2},
    ...     {"field": "phone"}])
    >>> [(f.field, str(f.method)) for f in rule.blocking_fields()]
    [('phone', 'normalised'), ('name', 'fuzzy')]
    >>> MatchRule(id="x", record_type="Contact", fields=[{"field": "shoe_size"}])
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: MatchRule 'x' field 'fields' = 'shoe_size': ...
    """

    id: str
    record_type: str = "Contact"
    fields: tuple[MatchField, ...] = attrs.field(converter=_to_fields)
    combine: str = "all"
    min_score: float = attrs.field(default=0.0, validator=_check_unit)

    def __attrs_post_init__(self) -> None:
        if self.combine not in ("all", "any"):
            raise ValidationError(
                "MatchRule", "combine", self.combine, "must be 'all' or 'any'", record_id=self.id
            )
        if not isinstance(self.fields, tuple) or not self.fields:
            raise ValidationError(
                "MatchRule", "fields", self.fields, "needs at least one field", record_id=self.id
            )
        try:
            kind = record_type_named(self.record_type)
        except CriteriaError as err:
            raise ValidationError(
                "MatchRule", "record_type", self.record_type, str(err), record_id=self.id
            ) from None
        schema = schema_of(kind)
        for item in self.fields:
            if not isinstance(item, MatchField):
                raise ValidationError(
                    "MatchRule", "fields", item, "must be MatchField values", record_id=self.id
                )
            for name in item.source_fields(kind):
                if name.startswith("custom."):
                    continue
                try:
                    schema.field(name)
                except CriteriaError:
                    raise ValidationError(
                        "MatchRule",
                        "fields",
                        name,
                        f"is not a field of {self.record_type}",
                        record_id=self.id,
                    ) from None

    @property
    def kind(self) -> type[Any]:
        """The record class the rule compares."""
        return record_type_named(self.record_type)

    def blocking_fields(self) -> tuple[MatchField, ...]:
        """The fields whose keys decide which pairs are compared.

        Under ``any`` every field blocks on its own. Under ``all`` one key is enough (a
        matching pair agrees on every field): the first exact, normalised or phonetic
        field, combined with the first fuzzy field when there is one (one compound key:
        the same value and a shared word key); a rule of fuzzy fields only blocks on
        its first. A fuzzy field's keys are the Soundex code of each word with the
        initials of the others (a typo in one word keeps the key of another).
        """
        if self.combine == "any":
            return self.fields
        fuzzy = [f for f in self.fields if f.method is MatchMethod.FUZZY]
        for method in (MatchMethod.EXACT, MatchMethod.NORMALISED, MatchMethod.PHONETIC):
            for item in self.fields:
                if item.method is method:
                    return (item, fuzzy[0]) if fuzzy else (item,)
        return (self.fields[0],)


def fuzzy_block_keys(value: str, codes: dict[str, str] | None = None) -> list[str]:
    """The blocking keys of a normalised value compared fuzzily: per word, its Soundex
    code and the initials of the other words. ``codes`` memoises word codes across calls.

    >>> fuzzy_block_keys("robert smith")
    ['R163:s', 'S530:r']
    """
    memo = {} if codes is None else codes
    words = value.split()
    if len(words) <= 1:
        key = phonetic_key(value)
        return [key] if key else []
    keys = []
    for i, word in enumerate(words):
        code = memo.get(word)
        if code is None:
            code = memo[word] = phonetic_key(word) or ""
        if code:
            others = "".join(sorted(w[0] for j, w in enumerate(words) if j != i))
            keys.append(f"{code}:{others}")
    return keys


def rules_from_data(data: Any) -> list[MatchRule]:
    """Matching rules from parsed JSON or TOML: a list of rule dicts (or ``{"rules": [...]}``).

    >>> rules = rules_from_data({"rules": [{"id": "email", "fields": [{"field": "email"}]}]})
    >>> rules[0].fields[0].normaliser_for(rules[0].kind)
    'email'
    """
    entries = data.get("rules") if isinstance(data, Mapping) else data
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
        raise ValidationError("MatchRule", None, data, "expected a list of rules")
    rules = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ValidationError("MatchRule", None, entry, "each rule must be a mapping")
        try:
            rules.append(MatchRule(**entry))
        except TypeError as err:
            raise ValidationError(
                "MatchRule", None, dict(entry), f"unknown or missing keys: {err}"
            ) from None
    return rules
