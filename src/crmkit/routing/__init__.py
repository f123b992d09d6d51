"""Lead and inquiry routing, and territories.

Rules are records (:class:`~crmkit.records.RoutingRule`) tried in order, first match wins;
team targets draw a rep from a pool by a strategy (round robin, load balanced, weighted,
with attribute matching); every decision says why, and nothing is ever dropped.
"""

from __future__ import annotations

from crmkit.routing._bulk import RoutingBatch
from crmkit.routing._pools import STRATEGIES
from crmkit.routing._router import Escalation, Router, email_domain, normalise_company
from crmkit.routing._rules import RuleSet, load_rules, rules_from_data
from crmkit.routing._territories import (
    BalancePlan,
    Move,
    RealignmentDiff,
    TerritoryAssignment,
    TerritoryIndex,
    activate_model,
    active_model,
    apply_realignment,
    assign_columns,
    assign_territories,
    imbalance,
    realignment_diff,
    suggest_balance,
)
from crmkit.routing._types import (
    Dropped,
    Reason,
    RoutingDecision,
    RoutingStatus,
    Schedule,
    Target,
)

__all__ = [
    "STRATEGIES",
    "BalancePlan",
    "Dropped",
    "Escalation",
    "Move",
    "RealignmentDiff",
    "Reason",
    "Router",
    "RoutingBatch",
    "RoutingDecision",
    "RoutingStatus",
    "RuleSet",
    "Schedule",
    "Target",
    "TerritoryAssignment",
    "TerritoryIndex",
    "activate_model",
    "active_model",
    "apply_realignment",
    "assign_columns",
    "assign_territories",
    "email_domain",
    "imbalance",
    "load_rules",
    "normalise_company",
    "realignment_diff",
    "rules_from_data",
    "suggest_balance",
]
