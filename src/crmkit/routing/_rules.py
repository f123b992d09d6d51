"""Rule sets: ordered rules, first match wins; compiled once to an index (one record)
and to progressive numpy masks (a batch)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from crmkit._schema import schema_of
from crmkit.codec import from_dict
from crmkit.criteria import AllOf, BoundCriteria, Condition, _Leaf, _Node, bind, parse
from crmkit.errors import CrmError, ValidationError
from crmkit.records import Lead, RoutingRule

Array = np.ndarray[Any, Any]


def load_rules(path: str | Path, *, rule_set: str | None = None) -> list[RoutingRule]:
    """Read routing rules from a ``.toml`` or ``.json`` file.

    The file holds a list of rules (``[[rules]]`` tables in TOML, a ``rules`` array or a
    bare list in JSON); each entry has the fields of :class:`~crmkit.records.RoutingRule`.
    A missing ``position`` is the entry's place in the file (times 10) and ``rule_set``
    overrides the set every rule belongs to.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> rules = [{"id": "de", "target_kind": "team", "target_id": "dach",
    ...           "criteria": {"field": "country", "op": "==", "value": "DE"}},
    ...          {"id": "rest", "target_id": "unrouted"}]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "rules.json"
    ...     _ = path.write_text(json.dumps({"rules": rules}))
    ...     loaded = load_rules(path, rule_set="web")
    >>> [(r.id, r.rule_set, r.position, str(r.target_kind), r.target_id) for r in loaded]
    [('de', 'web', 0, 'team', 'dach'), ('rest', 'web', 10, 'queue', 'unrouted')]
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise ValidationError("RoutingRule", None, str(path), f"cannot be read: {err}") from err
    try:
        if file.suffix.lower() == ".toml":
            import tomllib

            data: Any = tomllib.loads(raw.decode("utf-8"))
        elif file.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            raise ValidationError("RoutingRule", None, str(path), "must be a .toml or .json file")
    except (ValueError, UnicodeDecodeError) as err:
        if isinstance(err, CrmError):
            raise
        raise ValidationError("RoutingRule", None, str(path), f"is not valid: {err}") from err
    return rules_from_data(data, rule_set=rule_set)


def rules_from_data(data: Any, *, rule_set: str | None = None) -> list[RoutingRule]:
    """Rules from already-parsed TOML/JSON data (see :func:`load_rules`).

    Examples
    --------
    >>> data = [{"id": "big", "target_id": "enterprise", "position": 5,
    ...          "criteria": {"field": "employees", "op": ">=", "value": 1000}},
    ...         {"id": "rest", "target_id": "unrouted"}]
    >>> [(r.id, r.position, r.rule_set) for r in rules_from_data(data)]
    [('big', 5, 'default'), ('rest', 10, 'default')]
    >>> rules_from_data({"rules": data}, rule_set="web")[1].rule_set
    'web'
    """
    entries = data.get("rules") if isinstance(data, Mapping) else data
    if not isinstance(entries, list):
        raise ValidationError(
            "RoutingRule", None, data, "expected a list of rules (a 'rules' array)"
        )
    rules = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ValidationError("RoutingRule", None, entry, f"rule #{index} must be a table")
        item = dict(entry)
        item.setdefault("position", index * 10)
        if rule_set is not None:
            item["rule_set"] = rule_set
        rules.append(from_dict(RoutingRule, item))
    return rules


def rule_is_live(rule: RoutingRule, now: datetime) -> bool:
    """Active, and ``starts_at <= now < ends_at`` where those are set."""
    if not rule.active:
        return False
    if rule.starts_at is not None and now < rule.starts_at:
        return False
    return rule.ends_at is None or now < rule.ends_at


def _index_conditions(criteria: Any, record_type: type[Any]) -> dict[str, tuple[str, ...]]:
    """Top-level ``field == v`` / ``field in [...]`` conditions on text fields."""
    node = parse(criteria)
    items = node.items if isinstance(node, AllOf) else (node,)
    schema = schema_of(record_type)
    found: dict[str, tuple[str, ...]] = {}
    for item in items:
        if not isinstance(item, Condition) or item.op not in ("==", "in"):
            continue
        if item.field.startswith("custom.") or item.field in found:
            continue
        info = schema.field(item.field)
        if info.kind not in ("text", "enum"):
            continue
        values = item.value if isinstance(item.value, tuple) else (item.value,)
        if all(isinstance(v, str) for v in values):
            found[item.field] = tuple(values)
    return found


class RuleSet:
    """The rules of one set, sorted by ``position`` (then id), compiled once.

    >>> from crmkit import F, RoutingRule
    >>> rules = RuleSet([
    ...     RoutingRule(id="de", position=1, criteria=(F.country == "DE").to_dict(),
    ...                 target_kind="team", target_id="dach"),
    ...     RoutingRule(id="big", position=2, criteria=(F.employees >= 1000).to_dict(),
    ...                 target_kind="queue", target_id="enterprise"),
    ... ])
    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> rules.first_match(Lead(id="l", country="DE", employees=5000), now).id
    'de'
    >>> rules.first_match(Lead(id="l", country="FR"), now) is None
    True
    """

    def __init__(self, rules: Iterable[RoutingRule], *, record_type: type[Any] = Lead) -> None:
        self.record_type = record_type
        ordered = sorted(rules, key=lambda r: (r.position, r.id))
        for rule in ordered:
            if not isinstance(rule, RoutingRule):
                raise ValidationError(
                    "RoutingRule", None, rule, "rule sets hold RoutingRule records"
                )
            if rule.applies_to != record_type.__name__:
                raise ValidationError(
                    "RoutingRule",
                    "applies_to",
                    rule.applies_to,
                    f"this rule set routes {record_type.__name__} records",
                    record_id=rule.id,
                )
        self.rules: tuple[RoutingRule, ...] = tuple(ordered)
        self.bound: tuple[BoundCriteria, ...] = tuple(
            bind(r.criteria, record_type) for r in ordered
        )
        self._tests = tuple(b.matches for b in self.bound)
        self._fields: frozenset[str] | None = None
        self._windows = tuple(
            (r.starts_at, r.ends_at) if (r.starts_at or r.ends_at) else None for r in ordered
        )
        self._live = tuple(i for i, r in enumerate(ordered) if r.active)
        # index: the most common top-level equality field among live rules
        conditions = {i: _index_conditions(ordered[i].criteria, record_type) for i in self._live}
        fields = Counter(f for c in conditions.values() for f in c)
        best = sorted(fields.items(), key=lambda kv: (-kv[1], kv[0]))
        self.index_field: str | None = best[0][0] if best else None
        field = self.index_field
        unindexed = [i for i in self._live if field not in conditions[i]]
        by_value: dict[str, list[int]] = {}
        for i in self._live:
            if field is not None and field in conditions[i]:
                for value in set(conditions[i][field]):
                    by_value.setdefault(value, []).append(i)
        self._unindexed = tuple(unindexed)
        self._plans = {
            i: _plan(self.bound[i], field, conditions[i].get(field) if field else None)
            for i in self._live
        }
        self._by_value = {
            v: tuple(sorted(set(hits) | set(unindexed))) for v, hits in by_value.items()
        }

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"<RuleSet {self.record_type.__name__}: {len(self.rules)} rules>"

    @property
    def fields(self) -> frozenset[str]:
        """Every field the rules read."""
        if self._fields is None:
            out: set[str] = set()
            for b in self.bound:
                out |= b.fields
            self._fields = frozenset(out)
        return self._fields

    def _candidates(self, record: Any) -> tuple[int, ...]:
        if self.index_field is None:
            return self._unindexed
        value = getattr(record, self.index_field)
        if value is None:
            return self._unindexed
        return self._by_value.get(
            str(value.value if hasattr(value, "value") else value), self._unindexed
        )

    def first_match_index(self, record: Any, now: datetime) -> int:
        """Position in ``rules`` of the first live rule that matches, or -1."""
        tests, windows = self._tests, self._windows
        for i in self._candidates(record):
            window = windows[i]
            if window is not None:
                start, end = window
                if (start is not None and now < start) or (end is not None and now >= end):
                    continue
            if tests[i](record):
                return i
        return -1

    def first_match(self, record: Any, now: datetime) -> RoutingRule | None:
        """The first live rule that matches ``record`` at ``now``, or ``None``."""
        i = self.first_match_index(record, now)
        return None if i < 0 else self.rules[i]

    def first_match_columns(self, columns: Mapping[str, Array], now: datetime) -> Array:
        """Index of the first matching live rule per row (-1: none).

        Text columns are factorised once (see :mod:`crmkit._codes`) and every text test
        is decided per distinct value, then gathered per row as integer codes. Rows are
        sorted once by the index field (the equality field most rules test), so a rule
        that names its values only looks at those rows; every rule's mask covers only the
        rows no earlier rule took.
        """
        from crmkit._codes import CodedColumns

        n = _length(columns)
        result = np.full(n, -1, dtype=np.int64)
        live = [i for i in self._live if rule_is_live(self.rules[i], now)]
        if n == 0 or not live:
            return result
        view = CodedColumns(columns, n)
        field = self.index_field
        order: Array | None = None
        bounds: Array | None = None
        index_codes = None
        if field is not None and field in columns:
            index_codes = view.text(field)
            order = np.argsort(index_codes.codes, kind="stable")
            bounds = np.searchsorted(
                index_codes.codes[order], np.arange(index_codes.values.size + 1)
            )
            view = view.reorder(order)
        small = np.int16 if len(self.rules) < np.iinfo(np.int16).max else np.int32
        none = len(self.rules)
        best = np.full(n, none, dtype=small)
        for i in live:
            values, root = self._plans[i]
            if values is None or bounds is None or index_codes is None:
                root = self.bound[i]._root
                spans = [(0, n)]
            else:
                spans = []
                for value in dict.fromkeys(values):
                    code = index_codes.code_of(value)
                    if code >= 0:
                        spans.append((int(bounds[code]), int(bounds[code + 1])))
            for lo, hi in spans:
                if hi <= lo:
                    continue
                segment = best[lo:hi]
                free = segment == none
                view.narrow(root, slice(lo, hi), free)
                segment[free] = i
        found = np.where(best == none, -1, best).astype(np.int64)
        if order is None:
            return found
        result[order] = found
        return result


def _plan(
    bound: BoundCriteria, field: str | None, values: tuple[str, ...] | None
) -> tuple[tuple[str, ...] | None, _Leaf | _Node]:
    """``(index values, the rest of the criteria)``: a rule whose top level tests the
    index field with ``==``/``in`` only looks at the rows holding those values, so that
    test is dropped from what is evaluated."""
    root = bound._root
    if field is None or values is None:
        return None, root
    items = root.items if isinstance(root, _Node) and root.kind == "all" else (root,)
    for k, item in enumerate(items):
        if (
            isinstance(item, _Leaf)
            and item.field == field
            and item.op in ("==", "in")
            and not item.negate
            and (item.value if isinstance(item.value, tuple) else (item.value,)) == values
        ):
            rest = items[:k] + items[k + 1 :]
            return values, rest[0] if len(rest) == 1 else _Node("all", rest)
    return None, root


def _length(columns: Mapping[str, Array]) -> int:
    lengths = {len(c) for c in columns.values()}
    if len(lengths) > 1:
        raise ValidationError("RuleSet", None, sorted(lengths), "columns differ in length")
    return lengths.pop() if lengths else 0


def rules_of(store: Any, rule_set: str, record_type: type[Any]) -> list[RoutingRule]:
    """The stored rules of a set that apply to ``record_type``."""
    found: list[RoutingRule] = store.routing_rules.query(
        {
            "all": [
                {"field": "rule_set", "op": "==", "value": rule_set},
                {"field": "applies_to", "op": "==", "value": record_type.__name__},
            ]
        }
    )
    return found


def needed_fields(rules: RuleSet, extra: Sequence[str]) -> list[str]:
    return sorted(set(rules.fields) | set(extra))
