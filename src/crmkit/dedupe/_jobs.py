"""Duplicate jobs: blocking, vectorised comparison, pairs with explanations, clusters; the
incremental index behind ``find_duplicates``; duplicate rules (allow / alert / block)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import networkx as nx
import numpy as np

from crmkit._columns import columns_of
from crmkit._optional import require
from crmkit.dedupe._normalise import (
    NORMALISERS,
    canonical_first_name,
    phonetic_key,
)
from crmkit.dedupe._rules import MatchField, MatchMethod, MatchRule, fuzzy_block_keys
from crmkit.errors import BatchError, ValidationError

__all__ = [
    "DEFAULT_RULES",
    "DuplicateAction",
    "DuplicateBatchError",
    "DuplicateCheck",
    "DuplicateError",
    "DuplicateIndex",
    "DuplicatePair",
    "DuplicatePolicy",
    "DuplicateReport",
    "FieldMatch",
    "find_duplicate_pairs",
    "find_duplicates",
]

Array = np.ndarray[Any, Any]

DEFAULT_RULES: Mapping[str, tuple[MatchRule, ...]] = {
    "Contact": (
        MatchRule(id="contact-email", record_type="Contact", fields=[{"field": "email"}]),
        MatchRule(
            id="contact-name-phone",
            record_type="Contact",
            fields=[
                {"field": "name", "method": "fuzzy", "threshold": 0.85, "weight": 2},
                {"field": "phone"},
            ],
        ),
        MatchRule(
            id="contact-name-account",
            record_type="Contact",
            fields=[
                {"field": "name", "method": "fuzzy", "threshold": 0.9, "weight": 2},
                {"field": "account_id", "method": "exact"},
            ],
        ),
    ),
    "Lead": (
        MatchRule(id="lead-email", record_type="Lead", fields=[{"field": "email"}]),
        MatchRule(
            id="lead-name-phone",
            record_type="Lead",
            fields=[
                {"field": "name", "method": "fuzzy", "threshold": 0.85, "weight": 2},
                {"field": "phone"},
            ],
        ),
        MatchRule(
            id="lead-name-company",
            record_type="Lead",
            fields=[
                {"field": "name", "method": "fuzzy", "threshold": 0.9, "weight": 2},
                {"field": "company"},
            ],
        ),
    ),
    "Account": (
        MatchRule(id="account-domain", record_type="Account", fields=[{"field": "domain"}]),
        MatchRule(
            id="account-name-country",
            record_type="Account",
            fields=[
                {"field": "name", "method": "fuzzy", "threshold": 0.9, "weight": 2},
                {"field": "country", "method": "normalised"},
            ],
        ),
    ),
}
"""The rules used when none are given, by record type. Contacts: the same email; or a
similar name and the same phone; or a similar name at the same account."""


# -- reading the values a rule compares ------------------------------------------------------


def _infer_type(source: Any) -> str | None:
    if hasattr(source, "record_type") and hasattr(source, "columns"):
        return str(source.record_type.__name__)
    if isinstance(source, Sequence) and source and attrs.has(type(source[0])):
        return type(source[0]).__name__
    return None


def _rules_of(rules: MatchRule | Iterable[MatchRule] | None, kind: str | None) -> list[MatchRule]:
    if rules is None:
        if kind not in DEFAULT_RULES:
            raise ValidationError(
                "MatchRule",
                "record_type",
                kind,
                f"has no default rules; pass rules or record_type= one of "
                f"{', '.join(DEFAULT_RULES)}",
            )
        return list(DEFAULT_RULES[str(kind)])
    found = [rules] if isinstance(rules, MatchRule) else list(rules)
    if not found or not all(isinstance(r, MatchRule) for r in found):
        raise ValidationError("MatchRule", None, rules, "expected MatchRule values")
    types = {r.record_type for r in found}
    if len(types) > 1:
        raise ValidationError(
            "MatchRule", "record_type", sorted(types), "rules of one job compare one type"
        )
    return found


def _source_columns(source: Any, kind: type[Any], fields: Sequence[str]) -> dict[str, Array]:
    """The text columns ``fields`` (and ``id``) of a store, repository, records or columns."""
    wanted = ["id", *dict.fromkeys(fields)]
    if isinstance(source, Mapping):
        missing = [f for f in wanted if f not in source]
        if missing:
            raise ValidationError(kind.__name__, missing[0], None, "is missing from the columns")
        cols = {f: np.asarray(source[f]) for f in wanted}
    elif hasattr(source, "repository") and hasattr(source, "transaction"):
        cols = source.repository(kind).columns(wanted)
    elif hasattr(source, "record_type") and hasattr(source, "columns"):
        cols = source.columns(wanted)
    else:
        records = list(source)
        for record in records:
            if not isinstance(record, kind):
                raise ValidationError(
                    kind.__name__, None, record, f"expected {kind.__name__} records"
                )
        cols = columns_of(kind, records, wanted)
    return {name: _as_text(values) for name, values in cols.items()}


def _text_of(value: Any) -> str:
    """A field value as the text rules compare: ``""`` for missing (None, NaN), numbers
    without a trailing ``.0`` (a number column holds floats), enums by value.

    >>> [_text_of(v) for v in (None, float("nan"), 5, 5.0, 2.5, True, "x")]
    ['', '', '5', '5', '2.5', 'True', 'x']
    """
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        if value != value:
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _as_text(values: Array) -> Array:
    if values.dtype.kind == "U":
        return values
    return np.array([_text_of(v) for v in values.tolist()], dtype=str)


def _factorise(values: Array, *, ordered: bool = True) -> tuple[Array, list[str]]:
    """``(codes, uniques)``: each value's 1-based code among the distinct values (0 for
    ``""``, missing) and those values (``uniques[0] == ""``); ``ordered`` codes are
    ranks in alphabetical order."""
    seen: dict[str, int] = {"": 0}
    raw = np.fromiter(
        (seen.setdefault(v, len(seen)) for v in values.tolist()), dtype=np.int64, count=values.size
    )
    words = list(seen)
    if not ordered:
        return raw, words
    order = sorted(range(1, len(words)), key=words.__getitem__)
    rank = np.zeros(len(words), dtype=np.int64)
    rank[order] = np.arange(1, len(words), dtype=np.int64)
    codes: Array = rank[raw]
    return codes, ["", *(words[i] for i in order)]


def _unique_inverse(values: Array) -> tuple[Array, Array]:
    """``np.unique(values, return_inverse=True)`` for int64, by sorting (faster here)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.ones(ordered.size, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    inverse = np.empty(values.size, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _person_part(value: str) -> str | None:
    return canonical_first_name(value.replace("'", ""))


def _hashes(items: Iterable[Any], count: int) -> Array:
    """Python hashes of ``items`` as int64 (blocking keys: a collision only adds pairs to
    compare, never a match)."""
    return np.fromiter(map(hash, items), dtype=np.int64, count=count)


def _compare_key(item: MatchField) -> tuple[str, MatchMethod, str | None]:
    """Fields with equal keys compare the same values (thresholds and weights aside)."""
    return (item.field, item.method, item.normaliser)


def _order_field(rule: MatchRule) -> MatchField:
    """The field whose value orders a block (similar values side by side)."""
    fuzzy = [f for f in rule.fields if f.method is MatchMethod.FUZZY]
    return fuzzy[0] if fuzzy else rule.blocking_fields()[0]


def _candidate_pairs(blocks: list[tuple[Array, Array, Array]], n: int, window: int) -> Array:
    """Pairs of rows sharing a blocking key, at most ``window`` apart in the block sorted
    by value (sorted neighbourhood, so a huge block costs ``n * window``, not ``n**2``),
    as sorted unique codes ``lo * n + hi``."""
    codes: list[Array] = []
    for rows, keys, order_values in blocks:
        if rows.size < 2:
            continue
        key_codes = keys
        order = np.lexsort((order_values, key_codes))
        rows, key_codes = rows[order], key_codes[order]
        for d in range(1, window + 1):
            same = key_codes[:-d] == key_codes[d:]
            if not same.any():
                break
            a, b = rows[:-d][same], rows[d:][same]
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            keep = lo != hi
            codes.append(lo[keep].astype(np.int64) * n + hi[keep])
    if not codes:
        return np.zeros(0, dtype=np.int64)
    unique, _ = _unique_inverse(np.concatenate(codes))
    return unique


_SCORERS: dict[str, tuple[str, str, float]] = {
    "ratio": ("rapidfuzz.fuzz", "ratio", 100.0),
    "token_sort_ratio": ("rapidfuzz.fuzz", "token_sort_ratio", 100.0),
    "token_set_ratio": ("rapidfuzz.fuzz", "token_set_ratio", 100.0),
    "jaro_winkler": ("rapidfuzz.distance.JaroWinkler", "normalized_similarity", 1.0),
}


def _fuzzy(name: str, left: list[str], right: list[str], workers: int) -> Array:
    module, attr, scale = _SCORERS[name]
    process: Any = require("rapidfuzz.process", extra="dedupe", feature="fuzzy matching")
    scorer = getattr(require(module, extra="dedupe", feature="fuzzy matching"), attr)
    if not left:
        return np.zeros(0)
    scores = process.cpdist(left, right, scorer=scorer, workers=workers, dtype=np.float64)
    result: Array = np.asarray(scores, dtype=np.float64) / scale
    return result


Coded = tuple[Array, list[str]]


def _score(
    rule: MatchRule, values: list[Coded], left: Array, right: Array, workers: int
) -> tuple[Array, Array, list[Array]]:
    """``(matched, score, field_scores)`` of the pairs ``left[k], right[k]`` (row numbers
    into the factorised ``values`` of the rule's fields); a field score is NaN where
    either side is missing. Equal values score 1 without a call; a fuzzy field scores
    each distinct pair of values once."""
    m = left.size
    total = np.zeros(m)
    weights = np.zeros(m)
    passed_all = np.ones(m, dtype=bool)
    passed_any = np.zeros(m, dtype=bool)
    field_scores = []
    for item, (codes, uniques) in zip(rule.fields, values, strict=True):
        a, b = codes[left], codes[right]
        present = (a != 0) & (b != 0)
        equal = present & (a == b)
        score = np.full(m, np.nan)
        score[present] = 0.0
        score[equal] = 1.0
        if item.method is MatchMethod.FUZZY:
            todo = np.flatnonzero(present & ~equal)
            if todo.size:
                size = len(uniques)
                pair_codes = np.minimum(a[todo], b[todo]) * size + np.maximum(a[todo], b[todo])
                distinct, inverse = _unique_inverse(pair_codes)
                lows = [uniques[i] for i in (distinct // size).tolist()]
                highs = [uniques[i] for i in (distinct % size).tolist()]
                score[todo] = _fuzzy(item.scorer, lows, highs, workers)[inverse]
        passed = present & (np.nan_to_num(score, nan=-1.0) >= item.threshold - 1e-12)
        passed_all &= passed
        passed_any |= passed
        total += np.where(present, score, 0.0) * item.weight
        weights += present * item.weight
        field_scores.append(score)
    mean = np.divide(total, weights, out=np.zeros(m), where=weights > 0)
    matched = (passed_all if rule.combine == "all" else passed_any) & (mean >= rule.min_score)
    return matched, mean, field_scores


def _compose(codes: Array, mapped: list[str], *, ordered: bool) -> Coded:
    """Codes of ``mapped[codes]`` without building the full string column: only the
    distinct mapped values are factorised."""
    m_codes, m_uniques = _factorise(np.array(mapped, dtype=str), ordered=ordered)
    composed: Array = m_codes[codes]
    return composed, m_uniques


def _coded(
    item: MatchField, kind: type[Any], cols: Mapping[str, Array], *, ordered: bool
) -> Coded:
    """The values ``item`` compares as ``(codes, uniques)`` (``""``, code 0, where
    missing): each distinct raw value (or pair of first and last names) is normalised
    once, and the column is never rebuilt as text."""
    sources = item.source_fields(kind)
    if len(sources) == 2:
        first, first_uniques = _factorise(cols[sources[0]], ordered=False)
        last, last_uniques = _factorise(cols[sources[1]], ordered=False)
        pair_codes = first * len(last_uniques) + last
        distinct, inverse = _unique_inverse(pair_codes)
        firsts = (distinct // len(last_uniques)).tolist()
        lasts = (distinct % len(last_uniques)).tolist()
        person = item.method is not MatchMethod.EXACT and item.normaliser_for(kind) == "person"
        if person:
            fp = ["", *((_person_part(u) or "") for u in first_uniques[1:])]
            lp = ["", *((_person_part(u) or "") for u in last_uniques[1:])]
            mapped = [
                " ".join(sorted(f"{fp[a]} {lp[b]}".split()))
                for a, b in zip(firsts, lasts, strict=True)
            ]
        else:
            mapped = [
                " ".join(p for p in (first_uniques[a], last_uniques[b]) if p)
                for a, b in zip(firsts, lasts, strict=True)
            ]
            if item.method is not MatchMethod.EXACT:
                fn = NORMALISERS[item.normaliser_for(kind)]
                mapped = [(fn(v) or "") if v else "" for v in mapped]
        if item.method is MatchMethod.PHONETIC:
            mapped = [(phonetic_key(v) or "") if v else "" for v in mapped]
        return _compose(inverse, mapped, ordered=ordered)
    raw, uniques = _factorise(cols[sources[0]], ordered=False)
    if item.method is MatchMethod.EXACT:
        return _compose(raw, uniques, ordered=ordered)
    fn = NORMALISERS[item.normaliser_for(kind)]
    mapped = ["", *((fn(u) or "") for u in uniques[1:])]
    if item.method is MatchMethod.PHONETIC:
        mapped = [(phonetic_key(v) or "") if v else "" for v in mapped]
    return _compose(raw, mapped, ordered=ordered)


def _coded_keys(item: MatchField, coded: Coded, ids: dict[str, int]) -> tuple[Array, Array]:
    """``(rows, keys)`` of the job: a value's code for an exact, normalised or phonetic
    field; for a fuzzy field the ids (in ``ids``) of its word keys."""
    codes, uniques = coded
    present = np.flatnonzero(codes != 0)
    if item.method is not MatchMethod.FUZZY:
        return present, codes[present]
    memo: dict[str, str] = {}
    per_value = [[], *([ids.setdefault(k, len(ids)) for k in fuzzy_block_keys(u, memo)]
                       for u in uniques[1:])]  # fmt: skip
    counts = np.array([len(k) for k in per_value], dtype=np.int64)
    flat = np.array([k for keys in per_value for k in keys] or [0], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    value_codes = codes[present]
    per_row = counts[value_codes]
    rows = np.repeat(present, per_row)
    offsets = np.arange(rows.size) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    keys = flat[np.repeat(starts[value_codes], per_row) + offsets]
    return rows, keys


def _job_keys(
    rule: MatchRule,
    coded: Mapping[MatchField, Coded],
    cache: dict[Any, tuple[Array, Array]],
    ids: dict[str, int],
) -> list[tuple[Array, Array]]:
    """``[(rows, keys)]`` per blocking key of ``rule`` (see :meth:`MatchRule.blocking_fields`),
    from codes: under ``all`` one compound key, under ``any`` one key per field. ``ids``
    numbers the fuzzy word keys, shared by the rules of one job."""

    def keys_of(item: MatchField) -> tuple[Array, Array]:
        key = _compare_key(item)
        if key not in cache:
            cache[key] = _coded_keys(item, coded[item], ids)
        return cache[key]

    fields = rule.blocking_fields()
    if rule.combine == "any" or len(fields) == 1:
        return [keys_of(f) for f in fields]
    anchor_field, fuzzy_field = fields
    rows, keys = keys_of(fuzzy_field)
    anchor = coded[anchor_field][0][rows]
    keep = anchor != 0
    return [(rows[keep], anchor[keep] * (len(ids) + 1) + keys[keep])]


def _index_keys(
    rule: MatchRule, coded: Mapping[MatchField, Coded], cache: dict[Any, tuple[Array, Array]]
) -> list[tuple[Array, Array]]:
    """:func:`_keys_one` for many rows at once, from codes: the same hashed keys (the
    index's keys must match what ``find`` computes for one record)."""

    def keys_of(item: MatchField) -> tuple[Array, Array]:
        key = _compare_key(item)
        if key in cache:
            return cache[key]
        codes, uniques = coded[item]
        present = np.flatnonzero(codes != 0)
        if item.method is not MatchMethod.FUZZY:
            hashes = np.array([0, *(hash(u) for u in uniques[1:])], dtype=np.int64)
            cache[key] = (present, hashes[codes[present]])
            return cache[key]
        memo: dict[str, str] = {}
        per_value = [[], *([hash(k) for k in fuzzy_block_keys(u, memo)] for u in uniques[1:])]
        counts = np.array([len(k) for k in per_value], dtype=np.int64)
        flat = np.array([k for keys in per_value for k in keys] or [0], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        value_codes = codes[present]
        per_row = counts[value_codes]
        rows = np.repeat(present, per_row)
        offsets = np.arange(rows.size) - np.repeat(np.cumsum(per_row) - per_row, per_row)
        cache[key] = (rows, flat[np.repeat(starts[value_codes], per_row) + offsets])
        return cache[key]

    fields = rule.blocking_fields()
    if rule.combine == "any" or len(fields) == 1:
        return [keys_of(f) for f in fields]
    anchor_field, fuzzy_field = fields
    rows, keys = keys_of(fuzzy_field)
    anchor_codes, anchor_uniques = coded[anchor_field]
    anchors = anchor_codes[rows]
    keep = anchors != 0
    pairs = zip(
        (anchor_uniques[c] for c in anchors[keep].tolist()), keys[keep].tolist(), strict=True
    )
    return [(rows[keep], _hashes(pairs, int(keep.sum())))]


# -- results ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FieldMatch:
    """How one field of a pair compared: the compared values, the score (``None`` when
    either side is missing) and whether it passed the field's threshold."""

    field: str
    method: MatchMethod
    left: str | None
    right: str | None
    score: float | None
    passed: bool


@attrs.frozen(kw_only=True)
class DuplicatePair:
    """Two records the rule ``rule_id`` calls duplicates, with its score and per-field
    explanation (``left_id < right_id``)."""

    left_id: str
    right_id: str
    score: float
    rule_id: str
    fields: tuple[FieldMatch, ...]

    def explain(self) -> str:
        """One line per field.

        >>> pair = DuplicatePair(left_id="c1", right_id="c2", score=1.0, rule_id="email",
        ...     fields=(FieldMatch(field="email", method=MatchMethod.NORMALISED,
        ...         left="a@x.com", right="a@x.com", score=1.0, passed=True),))
        >>> print(pair.explain())
        c1 ~ c2 by email (score 1.00)
          email normalised: 'a@x.com' vs 'a@x.com' -> 1.00 passed
        """
        lines = [f"{self.left_id} ~ {self.right_id} by {self.rule_id} (score {self.score:.2f})"]
        for f in self.fields:
            shown = "missing" if f.score is None else f"{f.score:.2f}"
            verdict = "passed" if f.passed else "failed"
            lines.append(f"  {f.field} {f.method}: {f.left!r} vs {f.right!r} -> {shown} {verdict}")
        return "\n".join(lines)


@attrs.frozen(kw_only=True)
class DuplicateReport:
    """The result of a duplicate job: matched pairs (best rule per pair), clusters (the
    connected components of the pairs, each sorted, largest first), and counts."""

    record_type: str
    records: int
    candidates: int
    pairs: tuple[DuplicatePair, ...]
    clusters: tuple[tuple[str, ...], ...]

    def summary(self) -> str:
        """A short text report."""
        dupes = sum(len(c) - 1 for c in self.clusters)
        by_rule: dict[str, int] = {}
        for pair in self.pairs:
            by_rule[pair.rule_id] = by_rule.get(pair.rule_id, 0) + 1
        rules = ", ".join(f"{k}: {v}" for k, v in sorted(by_rule.items())) or "none"
        return (
            f"{self.records} {self.record_type} records, {self.candidates} pairs compared, "
            f"{len(self.pairs)} duplicate pairs ({rules}), {len(self.clusters)} clusters, "
            f"{dupes} records to merge away"
        )


def _pairs_from(
    rules: list[MatchRule],
    ids: Array,
    values: list[list[Coded]],
    found: list[tuple[Array, Array, Array, Array, list[Array]]],
) -> list[DuplicatePair]:
    """Best rule per pair, as :class:`DuplicatePair` values sorted by ids."""
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    for r, (left, right, matched, scores, _) in enumerate(found):
        for k in np.flatnonzero(matched).tolist():
            key = (int(left[k]), int(right[k]))
            held = best.get(key)
            if held is None or scores[k] > held[0]:
                best[key] = (float(scores[k]), r, k)
    pairs = []
    for (i, j), (score, r, k) in best.items():
        rule = rules[r]
        field_scores = found[r][4]
        fields = []
        for item, (codes, uniques), scores in zip(
            rule.fields, values[r], field_scores, strict=True
        ):
            s = float(scores[k])
            known = not np.isnan(s)
            fields.append(
                FieldMatch(
                    field=item.field,
                    method=item.method,
                    left=uniques[codes[i]] or None,
                    right=uniques[codes[j]] or None,
                    score=s if known else None,
                    passed=known and s >= item.threshold - 1e-12,
                )
            )
        a, b = str(ids[i]), str(ids[j])
        if b < a:
            a, b = b, a
            fields = [attrs.evolve(f, left=f.right, right=f.left) for f in fields]
        pairs.append(
            DuplicatePair(
                left_id=a, right_id=b, score=score, rule_id=rule.id, fields=tuple(fields)
            )
        )
    pairs.sort(key=lambda p: (p.left_id, p.right_id))
    return pairs


def _clusters(pairs: Sequence[DuplicatePair]) -> tuple[tuple[str, ...], ...]:
    graph = nx.Graph()
    graph.add_edges_from((p.left_id, p.right_id) for p in pairs)
    clusters = [tuple(sorted(c)) for c in nx.connected_components(graph)]
    clusters.sort(key=lambda c: (-len(c), c))
    return tuple(clusters)


def find_duplicate_pairs(
    source: Any,
    rules: MatchRule | Iterable[MatchRule] | None = None,
    *,
    record_type: str | None = None,
    window: int = 20,
    workers: int = 1,
) -> DuplicateReport:
    """A duplicate job over ``source``: a store, a repository, a list of records, or
    columns (a mapping of field name to array, with ``id``).

    Each rule derives its blocking keys (:meth:`MatchRule.blocking_fields`); only pairs
    sharing a key and at most ``window`` apart in the key's block (sorted by value) are
    compared; comparisons run over arrays (rapidfuzz ``cpdist``, numpy), ``workers``
    threads for the fuzzy scores. A pair matched by several rules keeps its best score.

    >>> from crmkit.records import Contact
    >>> people = [
    ...     Contact(id="c1", first_name="Robert", last_name="Smith", phone="+1 415 555 0100"),
    ...     Contact(id="c2", first_name="Bob", last_name="Smith", phone="(415) 555-0100"),
    ...     Contact(id="c3", first_name="Ada", last_name="Lovelace", email="ada@example.com"),
    ...     Contact(id="c4", first_name="A.", last_name="Byron", email="ADA@example.com")]
    >>> report = find_duplicate_pairs(people)
    >>> [(p.left_id, p.right_id, p.rule_id) for p in report.pairs]
    [('c1', 'c2', 'contact-name-phone'), ('c3', 'c4', 'contact-email')]
    >>> report.clusters
    (('c1', 'c2'), ('c3', 'c4'))
    """
    found_rules = _rules_of(rules, record_type or _infer_type(source))
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValidationError("find_duplicate_pairs", "window", window, "must be an int >= 1")
    kind = found_rules[0].kind
    needed = [s for r in found_rules for f in r.fields for s in f.source_fields(kind)]
    cols = _source_columns(source, kind, needed)
    ids = cols["id"]
    n = int(ids.size)
    ordering = {_compare_key(_order_field(r)) for r in found_rules}
    coded_by_key: dict[Any, Coded] = {}
    for item in (f for r in found_rules for f in r.fields):
        key = _compare_key(item)
        if key not in coded_by_key:
            coded_by_key[key] = _coded(item, kind, cols, ordered=key in ordering)
    coded = {f: coded_by_key[_compare_key(f)] for r in found_rules for f in r.fields}
    key_cache: dict[Any, tuple[Array, Array]] = {}
    word_ids: dict[str, int] = {}
    values: list[list[Coded]] = []
    found = []
    candidates = 0
    for rule in found_rules:
        rule_values = [coded[f] for f in rule.fields]
        values.append(rule_values)
        order_codes = coded[_order_field(rule)][0]
        blocks = [
            (rows, keys, order_codes[rows])
            for rows, keys in _job_keys(rule, coded, key_cache, word_ids)
        ]
        pair_codes = _candidate_pairs(blocks, max(n, 1), window)
        left, right = pair_codes // max(n, 1), pair_codes % max(n, 1)
        candidates += int(left.size)
        matched, score, field_scores = _score(rule, rule_values, left, right, workers)
        found.append((left, right, matched, score, field_scores))
    pairs = _pairs_from(found_rules, ids, values, found)
    return DuplicateReport(
        record_type=found_rules[0].record_type,
        records=n,
        candidates=candidates,
        pairs=tuple(pairs),
        clusters=_clusters(pairs),
    )


# -- one record: the same values, keys and scores as the arrays above, without numpy ------


def _raw_one(record: Any, name: str) -> str:
    if name.startswith("custom."):
        value = record.custom.get(name.removeprefix("custom."))
    else:
        value = getattr(record, name)
    if isinstance(value, Decimal):
        value = float(value)
    return _text_of(value)


def _compared_one(item: MatchField, kind: type[Any], record: Any) -> str:
    """What :func:`_coded` gives for ``record`` (one row), as text."""
    sources = item.source_fields(kind)
    raw = [_raw_one(record, s) for s in sources]
    if item.method is MatchMethod.EXACT:
        return raw[0] if len(raw) == 1 else " ".join(p for p in raw if p)
    normaliser = item.normaliser_for(kind)
    if len(raw) == 2 and normaliser == "person":
        first, last = ((_person_part(p) or "") if p else "" for p in raw)
        value = " ".join(sorted(f"{first} {last}".split()))
    else:
        joined = raw[0] if len(raw) == 1 else " ".join(p for p in raw if p)
        value = (NORMALISERS[normaliser](joined) or "") if joined else ""
    if item.method is MatchMethod.PHONETIC:
        value = (phonetic_key(value) or "") if value else ""
    return value


def _keys_one(rule: MatchRule, values: Mapping[MatchField, str]) -> list[list[int]]:
    """The hashed keys of one row per blocking key of ``rule`` (as :func:`_index_keys`)."""

    def keys_of(item: MatchField) -> list[int]:
        value = values[item]
        if not value:
            return []
        if item.method is not MatchMethod.FUZZY:
            return [hash(value)]
        return [hash(k) for k in fuzzy_block_keys(value)]

    fields = rule.blocking_fields()
    if rule.combine == "any" or len(fields) == 1:
        return [keys_of(f) for f in fields]
    anchor_field, fuzzy_field = fields
    anchor = values[anchor_field]
    return [[hash((anchor, k)) for k in keys_of(fuzzy_field)] if anchor else []]


def _scorer(name: str) -> tuple[Any, float]:
    module, attr, scale = _SCORERS[name]
    return getattr(require(module, extra="dedupe", feature="fuzzy matching"), attr), scale


def _pair_one(
    rule: MatchRule, mine: Mapping[MatchField, str], theirs: Mapping[MatchField, str]
) -> tuple[bool, float, list[FieldMatch]]:
    """What :func:`_score` decides for one pair, with the explanation."""
    total = weights = 0.0
    passed_all, passed_any = True, False
    fields = []
    for item in rule.fields:
        a, b = mine[item], theirs[item]
        score: float | None = None
        if a and b:
            if a == b:
                score = 1.0
            elif item.method is MatchMethod.FUZZY:
                scorer, scale = _scorer(item.scorer)
                score = float(scorer(a, b)) / scale
            else:
                score = 0.0
        passed = score is not None and score >= item.threshold - 1e-12
        passed_all &= passed
        passed_any |= passed
        if score is not None:
            total += score * item.weight
            weights += item.weight
        fields.append(
            FieldMatch(
                field=item.field,
                method=item.method,
                left=a or None,
                right=b or None,
                score=score,
                passed=passed,
            )
        )
    mean = total / weights if weights > 0 else 0.0
    matched = (passed_all if rule.combine == "all" else passed_any) and mean >= rule.min_score
    return matched, mean, fields


# -- incremental: an index for one record at a time ------------------------------------------


class DuplicateIndex:
    """The blocking keys and compared values of many records, to find the duplicates of
    one record quickly (on every insert, in lead capture, in an import).

    Build it once from a store, records or columns (:meth:`add_many`, vectorised), keep
    it current with :meth:`add` and :meth:`discard`, and ask :meth:`find`. It holds only
    the normalised values the rules compare, not the records. A key shared by more than
    ``2 * window`` records is read as the ``window`` neighbours on each side of the
    record's value, as the job does.

    >>> from crmkit.records import Contact
    >>> index = DuplicateIndex(record_type="Contact").add_many(
    ...     [Contact(id="c1", first_name="William", last_name="Gates", phone="+1 206 555 0101")])
    >>> new = Contact(id="c9", first_name="Gates", last_name="Bill", phone="206-555-0101")
    >>> [(p.left_id, p.right_id, p.rule_id) for p in index.find(new)]
    [('c1', 'c9', 'contact-name-phone')]
    """

    def __init__(
        self,
        rules: MatchRule | Iterable[MatchRule] | None = None,
        *,
        record_type: str | None = None,
        window: int = 20,
        workers: int = 1,
    ) -> None:
        self.rules = _rules_of(rules, record_type)
        self.record_type = self.rules[0].record_type
        self._kind = self.rules[0].kind
        self._window = window
        self._workers = workers
        self._fields = list(dict.fromkeys(f for r in self.rules for f in r.fields))
        self._needed = [s for f in self._fields for s in f.source_fields(self._kind)]
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._values: dict[MatchField, list[str]] = {f: [] for f in self._fields}
        blocks = [len(_keys_one(r, dict.fromkeys(r.fields, ""))) for r in self.rules]
        self._sorted: list[list[tuple[Array, Array]]] = [
            [(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))] * b for b in blocks
        ]
        self._recent: list[list[dict[int, list[int]]]] = [[{} for _ in range(b)] for b in blocks]

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._row

    def add_many(self, source: Any) -> DuplicateIndex:
        """Add every record of a store, repository, list of records or columns; a record
        already indexed is replaced. Returns the index."""
        cols = _source_columns(source, self._kind, self._needed)
        new_ids = cols["id"].tolist()
        for record_id in new_ids:
            self.discard(record_id)
        start = len(self._ids)
        self._ids.extend(new_ids)
        self._row.update((rid, start + k) for k, rid in enumerate(new_ids))
        by_key: dict[Any, Coded] = {}
        for f in self._fields:
            if _compare_key(f) not in by_key:
                by_key[_compare_key(f)] = _coded(f, self._kind, cols, ordered=False)
        coded = {f: by_key[_compare_key(f)] for f in self._fields}
        for f in self._fields:
            codes, uniques = coded[f]
            self._values[f].extend(uniques[c] for c in codes.tolist())
        cache: dict[Any, tuple[Array, Array]] = {}
        for r, rule in enumerate(self.rules):
            order_values = np.array(self._values[_order_field(rule)], dtype=str)
            for b, (rows, keys) in enumerate(_index_keys(rule, coded, cache)):
                old_keys, old_rows = self._sorted[r][b]
                recent = self._recent[r][b]
                extra_keys = [k for k, rs in recent.items() for _ in rs]
                extra_rows = [row for rs in recent.values() for row in rs]
                recent.clear()
                all_keys = np.concatenate(
                    [old_keys, keys, np.array(extra_keys, dtype=np.int64)]
                ).astype(np.int64)
                all_rows = np.concatenate(
                    [old_rows, rows + start, np.array(extra_rows, dtype=np.int64)]
                ).astype(np.int64)
                by_value = order_values[all_rows]
                order = np.lexsort((by_value, all_keys))
                self._sorted[r][b] = (all_keys[order], all_rows[order])
        return self

    def add(self, record: Any) -> None:
        """Index one record (replacing its earlier version)."""
        if not isinstance(record, self._kind):
            raise ValidationError(
                self.record_type, None, record, f"expected a {self.record_type} record"
            )
        self.discard(record.id)
        row = len(self._ids)
        self._ids.append(record.id)
        self._row[record.id] = row
        mine = {f: _compared_one(f, self._kind, record) for f in self._fields}
        for f in self._fields:
            self._values[f].append(mine[f])
        for r, rule in enumerate(self.rules):
            for b, keys in enumerate(_keys_one(rule, mine)):
                for key in keys:
                    self._recent[r][b].setdefault(key, []).append(row)

    def discard(self, record_id: str) -> None:
        """Forget a record (no error if it is not indexed)."""
        self._row.pop(record_id, None)

    def _candidates(self, r: int, b: int, key: int, value: str) -> set[int]:
        sorted_keys, rows = self._sorted[r][b]
        lo = int(np.searchsorted(sorted_keys, key, "left"))
        hi = int(np.searchsorted(sorted_keys, key, "right"))
        if hi - lo > 2 * self._window:  # a big block: the window around the value
            column = self._values[_order_field(self.rules[r])]
            block_values = np.array([column[i] for i in rows[lo:hi].tolist()], dtype=str)
            at = int(np.searchsorted(block_values, value))
            lo, hi = lo + max(0, at - self._window), lo + min(hi - lo, at + self._window)
        found = set(rows[lo:hi].tolist())
        found.update(self._recent[r][b].get(key, ()))
        return found

    def find(self, record: Any) -> list[DuplicatePair]:
        """The indexed records the rules call duplicates of ``record``, best score
        first (the record itself, by id, is never its own duplicate)."""
        if not isinstance(record, self._kind):
            raise ValidationError(
                self.record_type, None, record, f"expected a {self.record_type} record"
            )
        mine = {f: _compared_one(f, self._kind, record) for f in self._fields}
        best: dict[str, tuple[float, DuplicatePair]] = {}
        for r, rule in enumerate(self.rules):
            value = mine[_order_field(rule)]
            rows: set[int] = set()
            for b, keys in enumerate(_keys_one(rule, mine)):
                for key in keys:
                    rows |= self._candidates(r, b, key, value)
            for i in sorted(rows):
                other = self._ids[i]
                if self._row.get(other) != i or other == record.id:
                    continue
                theirs = {f: self._values[f][i] for f in rule.fields}
                matched, score, fields = _pair_one(rule, mine, theirs)
                if not matched or (other in best and best[other][0] >= score):
                    continue
                left, right = record.id, other
                if right < left:
                    left, right = right, left
                    fields = [attrs.evolve(f, left=f.right, right=f.left) for f in fields]
                pair = DuplicatePair(
                    left_id=left,
                    right_id=right,
                    score=score,
                    rule_id=rule.id,
                    fields=tuple(fields),
                )
                best[other] = (score, pair)
        pairs = [pair for _, pair in best.values()]
        pairs.sort(key=lambda p: (-p.score, p.left_id, p.right_id))
        return pairs


def find_duplicates(
    source: Any, record: Any, rules: MatchRule | Iterable[MatchRule] | None = None
) -> list[DuplicatePair]:
    """The duplicates of ``record`` in ``source``: a :class:`DuplicateIndex` (fast: build
    it once), or a store, repository or list of records (indexed on each call).

    >>> from crmkit.store import MemoryStore
    >>> from crmkit.records import Contact
    >>> store = MemoryStore()
    >>> _ = store.contacts.add(Contact(id="c1", email="ada@example.com"))
    >>> [p.left_id for p in find_duplicates(store, Contact(id="new", email="Ada@Example.com"))]
    ['c1']
    """
    if isinstance(source, DuplicateIndex):
        if rules is not None:
            raise ValidationError(
                "find_duplicates", "rules", rules, "an index already has its rules"
            )
        return source.find(record)
    kind = type(record).__name__
    return DuplicateIndex(rules, record_type=kind).add_many(source).find(record)


# -- duplicate rules: allow, alert, block -----------------------------------------------------


class DuplicateAction(enum.StrEnum):
    """What a duplicate rule does when a new record has duplicates."""

    ALLOW = "allow"
    ALERT = "alert"
    BLOCK = "block"


class DuplicateError(ValidationError):
    """A record was refused because a ``block`` duplicate rule found duplicates;
    ``check`` is the verdict (its ``matches`` name the stored duplicates)."""

    check: DuplicateCheck | None = None


class DuplicateBatchError(BatchError, DuplicateError):
    """Records of a batch were refused by a ``block`` duplicate rule and nothing was
    written; ``errors`` lists each one's index in the batch and its
    :class:`DuplicateError`."""


@attrs.frozen(kw_only=True)
class DuplicateCheck:
    """The verdict of a :class:`DuplicatePolicy` on one record."""

    record_id: str
    action: DuplicateAction = attrs.field(converter=DuplicateAction)
    matches: tuple[DuplicatePair, ...]

    @property
    def allowed(self) -> bool:
        """False only when the action is ``block`` and duplicates were found."""
        return not (self.action is DuplicateAction.BLOCK and self.matches)

    @property
    def alert(self) -> bool:
        """True when the action is ``alert`` and duplicates were found."""
        return self.action is DuplicateAction.ALERT and bool(self.matches)

    @property
    def duplicate_ids(self) -> tuple[str, ...]:
        """The ids of the duplicates found, best first."""
        return tuple(_other(m, self.record_id) for m in self.matches)

    def describe(self) -> str:
        """The duplicates in one line: their ids, the fields that agreed, rule and score.

        >>> pair = DuplicatePair(left_id="l1", right_id="l2", score=1.0, rule_id="lead-email",
        ...     fields=(FieldMatch(field="email", method=MatchMethod.NORMALISED,
        ...         left="a@x.com", right="a@x.com", score=1.0, passed=True),))
        >>> DuplicateCheck(record_id="l2", action="block", matches=(pair,)).describe()
        'duplicates l1 on email (lead-email, score 1.00)'
        """
        parts = []
        for m in self.matches:
            agreed = ", ".join(f.field for f in m.fields if f.passed) or "no single field"
            parts.append(
                f"{_other(m, self.record_id)} on {agreed} ({m.rule_id}, score {m.score:.2f})"
            )
        return "duplicates " + "; ".join(parts) if parts else "no duplicates"

    def error(self, record_type: str) -> DuplicateError:
        """The :class:`DuplicateError` refusing this record."""
        err = DuplicateError(
            record_type, None, self.record_id, self.describe(), record_id=self.record_id
        )
        err.check = self
        return err


def _other(pair: DuplicatePair, record_id: str) -> str:
    return pair.right_id if pair.left_id == record_id else pair.left_id


def _optional_rules(value: Iterable[MatchRule] | MatchRule | None) -> tuple[MatchRule, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, MatchRule) else tuple(value)


@attrs.frozen(kw_only=True)
class DuplicatePolicy:
    """A duplicate rule: matches of ``min_score`` or more under ``rules`` lead to
    ``action`` (``allow``: record them, ``alert``: let the record in and report them,
    ``block``: refuse it).

    :meth:`check` returns the verdict on one record, :meth:`enforce` raises
    :class:`DuplicateError` for a block; :meth:`check_many` and :meth:`enforce_many` do a
    batch, each record also against those before it. ``import_csv(duplicates=...)`` and
    ``Router(duplicates=...)`` (lead capture and routing) call them.

    >>> from crmkit.records import Lead
    >>> policy = DuplicatePolicy(action="block", record_type="Lead")
    >>> index = DuplicateIndex(record_type="Lead").add_many([Lead(id="l1", email="a@x.com")])
    >>> policy.check(index, Lead(id="l2", email="A@X.com")).allowed
    False
    >>> policy.enforce(index, Lead(id="l2", email="A@X.com"))
    Traceback (most recent call last):
    ...
    crmkit.dedupe._jobs.DuplicateError: Lead 'l2': duplicates l1 on email (lead-email, score 1.00)
    """

    action: DuplicateAction = attrs.field(default=DuplicateAction.ALERT, converter=DuplicateAction)
    record_type: str | None = None
    rules: tuple[MatchRule, ...] | None = attrs.field(default=None, converter=_optional_rules)
    min_score: float = 0.0

    def index(self, source: Any, record_type: str | None = None) -> DuplicateIndex:
        """A :class:`DuplicateIndex` of ``source`` (a store, repository, records or
        columns) under this policy's rules (the defaults of ``record_type`` without)."""
        kind = self.record_type or record_type
        if kind is not None and self.rules is not None and self.rules[0].record_type != kind:
            raise ValidationError(
                "DuplicatePolicy",
                "rules",
                [r.id for r in self.rules],
                f"compare {self.rules[0].record_type} records, not {kind}",
            )
        return DuplicateIndex(self.rules, record_type=kind).add_many(source)

    def check(self, source: Any, record: Any) -> DuplicateCheck:
        """The verdict on ``record`` against ``source`` (an index, store or records); an
        index answers with the rules it was built with."""
        if isinstance(source, DuplicateIndex):
            matches = source.find(record)
        else:
            matches = self.index(source, type(record).__name__).find(record)
        kept = tuple(m for m in matches if m.score >= self.min_score)
        return DuplicateCheck(record_id=record.id, action=self.action, matches=kept)

    def check_many(self, source: Any, records: Sequence[Any]) -> list[DuplicateCheck]:
        """The verdicts on a batch in order: each record against ``source`` (an index, or
        a store, repository or records to index) and the records before it in the batch.
        An ``allow`` policy checks nothing.

        >>> from crmkit.records import Lead
        >>> batch = [Lead(id="l2", email="b@x.com"), Lead(id="l3", email="B@x.com")]
        >>> [c.duplicate_ids for c in DuplicatePolicy(action="alert").check_many([], batch)]
        [(), ('l2',)]
        """
        if self.action is DuplicateAction.ALLOW or not records:
            return [
                DuplicateCheck(record_id=r.id, action=self.action, matches=()) for r in records
            ]
        kind = type(records[0]).__name__
        stored = source if isinstance(source, DuplicateIndex) else self.index(source, kind)
        earlier = DuplicateIndex(stored.rules, window=stored._window)
        out = []
        for record in records:
            best: dict[str, DuplicatePair] = {}
            for pair in [*stored.find(record), *earlier.find(record)]:
                other = _other(pair, record.id)
                if pair.score >= self.min_score and (
                    other not in best or best[other].score < pair.score
                ):
                    best[other] = pair
            matches = sorted(best.values(), key=lambda p: (-p.score, p.left_id, p.right_id))
            out.append(
                DuplicateCheck(record_id=record.id, action=self.action, matches=tuple(matches))
            )
            earlier.add(record)
        return out

    def enforce(self, source: Any, record: Any) -> DuplicateCheck:
        """:meth:`check`, raising :class:`DuplicateError` when the record is blocked."""
        verdict = self.check(source, record)
        if not verdict.allowed:
            raise verdict.error(type(record).__name__)
        return verdict

    def enforce_many(self, source: Any, records: Sequence[Any]) -> list[DuplicateCheck]:
        """:meth:`check_many`, raising :class:`DuplicateBatchError` (every refused
        record, by its index in the batch) when any record is blocked."""
        verdicts = self.check_many(source, records)
        blocked = [
            (i, v.error(type(records[i]).__name__))
            for i, v in enumerate(verdicts)
            if not v.allowed
        ]
        if blocked:
            raise DuplicateBatchError(type(records[0]).__name__, blocked)
        return verdicts
