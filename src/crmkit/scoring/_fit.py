"""Fit scoring: points rules written in the criteria language, in groups with caps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from crmkit._schema import record_type_named
from crmkit.criteria import BoundCriteria, Criteria, bind, parse
from crmkit.errors import CriteriaError, ValidationError
from crmkit.scoring._inputs import Array, as_columns, text
from crmkit.scoring._result import ScoreResult


def _criteria_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Criteria):
        return value.to_dict()
    return parse(value).to_dict()


def _finite(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValidationError(
            type(inst).__name__, attribute.name, value, "must be a finite number"
        )


@attrs.frozen(kw_only=True)
class PointsRule:
    """``points`` for every record matching ``criteria`` (builder or dict form).

    >>> from crmkit import F
    >>> PointsRule(name="big", criteria=F.employees >= 1000, points=30).criteria
    {'field': 'employees', 'op': '>=', 'value': 1000}
    """

    name: str
    criteria: Mapping[str, Any] = attrs.field(converter=_criteria_dict)
    points: float = attrs.field(validator=_finite, converter=float)
    group: str | None = None


@attrs.frozen(kw_only=True)
class RuleGroup:
    """A group of rules whose total is capped at ``cap`` (and floored at ``floor``)."""

    name: str
    cap: float | None = attrs.field(default=None, validator=_finite)
    floor: float | None = attrs.field(default=None, validator=_finite)


def _rules(value: Iterable[PointsRule]) -> tuple[PointsRule, ...]:
    rules = tuple(value)
    for rule in rules:
        if not isinstance(rule, PointsRule):
            raise ValidationError("FitModel", "rules", rule, "must hold PointsRule records")
    return rules


def _groups(value: Iterable[RuleGroup]) -> tuple[RuleGroup, ...]:
    groups = tuple(value)
    for group in groups:
        if not isinstance(group, RuleGroup):
            raise ValidationError("FitModel", "groups", group, "must hold RuleGroup records")
    return groups


@attrs.frozen(kw_only=True)
class FitModel:
    """Points rules and their groups, for one record type; serialises through the codec.

    A record's fit score is the sum over groups of the group's points (the sum of its
    matching rules' points, clipped to ``[floor, cap]``); rules without a group are summed
    as they are. When a group is clipped, each rule's contribution is scaled by the same
    factor, so contributions still add up to the score.

    >>> from crmkit import F
    >>> model = FitModel(rules=(
    ...     PointsRule(name="enterprise", criteria=F.employees >= 1000, points=30, group="size"),
    ...     PointsRule(name="mid-market", criteria=F.employees >= 200, points=20, group="size"),
    ...     PointsRule(name="target country", criteria=F.country.isin(["US", "CA"]), points=25),
    ... ), groups=(RuleGroup(name="size", cap=40),))
    >>> import numpy as np
    >>> cols = {"id": np.array(["a", "b"]), "employees": np.array([5000.0, 50.0]),
    ...         "country": np.array(["US", "FR"])}
    >>> r = fit_scores(cols, model)
    >>> r.values.tolist()
    [65.0, 0.0]
    >>> r.factors("a")
    ['target country +25', 'enterprise +24', 'mid-market +16']
    """

    rules: tuple[PointsRule, ...] = attrs.field(converter=_rules)
    groups: tuple[RuleGroup, ...] = attrs.field(default=(), converter=_groups)
    record_type: str = "Account"

    def __attrs_post_init__(self) -> None:
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValidationError("FitModel", "groups", names, "group names must be unique")
        rule_names = [r.name for r in self.rules]
        if len(set(rule_names)) != len(rule_names):
            raise ValidationError("FitModel", "rules", rule_names, "rule names must be unique")
        for rule in self.rules:
            if rule.group is not None and rule.group not in names:
                raise ValidationError(
                    "FitModel",
                    "rules",
                    rule.name,
                    f"names group {rule.group!r}, which is not one of {names}",
                )
            try:
                self.bound(rule)
            except CriteriaError as err:
                raise CriteriaError(f"fit rule {rule.name!r}: {err}") from err

    def bound(self, rule: PointsRule) -> BoundCriteria:
        """The criteria of ``rule`` bound to this model's record type."""
        return bind(rule.criteria, record_type_named(self.record_type))

    @property
    def fields(self) -> list[str]:
        """Every field the rules read."""
        return sorted({f for rule in self.rules for f in self.bound(rule).fields})


def fit_scores(source: Any, model: FitModel, *, ids: Any = None) -> ScoreResult:
    """Fit score of each record: a store, a dict of columns or a DataFrame.

    Given a store, the columns are read from the repository of ``model.record_type``.
    Contributions (one per rule) always come with the result.

    Examples
    --------
    >>> from crmkit import Account, F, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add_many([
    ...     Account(id="a", name="A", employees=5000, country="US"),
    ...     Account(id="b", name="B", employees=50, country="FR"),
    ...     Account(id="c", name="C", employees=2000, country="FR")])
    >>> model = FitModel(rules=(
    ...     PointsRule(name="enterprise", criteria=F.employees >= 1000, points=30),
    ...     PointsRule(name="US", criteria=F.country == "US", points=10)))
    >>> r = fit_scores(store, model)
    >>> r.ids.tolist(), r.values.tolist()
    (['a', 'b', 'c'], [40.0, 0.0, 30.0])
    >>> r.factors("a")
    ['enterprise +30', 'US +10']
    """
    record_type = record_type_named(model.record_type)
    if hasattr(source, "repository") and hasattr(source, "transaction"):
        cols = source.repository(record_type).columns(["id", *model.fields])
    else:
        cols = as_columns(source, "fit_scores")
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise ValidationError("fit_scores", None, sorted(lengths), "columns differ in length")
    n = lengths.pop() if lengths else 0
    if ids is not None:
        record_ids: Array = np.asarray(ids)
    elif "id" in cols:
        record_ids = text(cols["id"])
    else:
        record_ids = np.arange(n)
    if len(record_ids) != n:
        raise ValidationError("fit_scores", "ids", len(record_ids), f"need {n} ids")
    points = np.zeros((n, len(model.rules)))
    for j, rule in enumerate(model.rules):
        points[:, j] = np.where(model.bound(rule).mask(cols), rule.points, 0.0)
    for group in model.groups:
        members = [j for j, rule in enumerate(model.rules) if rule.group == group.name]
        if not members:
            continue
        total = points[:, members].sum(axis=1)
        clipped = total
        if group.cap is not None:
            clipped = np.minimum(clipped, group.cap)
        if group.floor is not None:
            clipped = np.maximum(clipped, group.floor)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scale = np.where(total != 0, clipped / total, 1.0)
        points[:, members] *= scale[:, None]
        # a floor above zero with nothing matched cannot be split across rules: the first
        # rule of the group carries it
        lift = clipped - points[:, members].sum(axis=1)
        points[:, members[0]] += np.where(np.abs(lift) > 0, lift, 0.0)
    return ScoreResult(
        ids=record_ids,
        values=points.sum(axis=1),
        contributions=points,
        feature_names=tuple(rule.name for rule in model.rules),
        name="fit",
    )
