"""The public surface is decided, not accidental: pin each public module's ``__all__``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

PUBLIC = {
    "crmkit": [
        "Account", "AccountType", "Activity", "ActivityKind", "AlreadyExists", "BatchError",
        "Cadence", "Campaign", "CampaignMember", "CampaignStatus", "Clock", "ConflictError",
        "Contact", "CriteriaError", "CrmError", "DealRegistration", "Direction", "Enrollment",
        "EnrollmentStatus", "F", "FixedClock", "HierarchyChange", "HierarchyCycleError",
        "Inquiry", "InquiryStatus", "Lead", "LeadStatus", "LifecycleChange", "MemberStatus",
        "MemoryStore", "NotFittedError", "NotFound", "Opportunity", "OpportunityStatus",
        "OwnershipChange", "Partner", "PostgresStore", "RegistrationStatus", "Reminder",
        "ReminderStatus", "Rep", "RoutingRule", "SQLiteStore", "StageChange", "StorageError",
        "Store", "SystemClock", "TargetKind", "Team", "Territory", "TerritoryModel",
        "TerritoryModelState", "ValidationError", "__version__", "acting_as", "bind",
        "declare_custom_field", "parse", "record_types", "register_record", "unregister_record",
    ],
    "crmkit.registry": [
        "CustomField", "custom_fields", "declare_custom_field", "is_custom", "record_types",
        "references_to", "register_record", "table_of", "undeclare_custom_field",
        "unregister_record",
    ],
    "crmkit.fields": [
        "Scalar", "choice", "custom", "day", "flag", "integer", "money", "moment", "number",
        "record_id", "reference", "tags", "text", "version", "zone",
    ],
    "crmkit.events": [
        "ChangeEvent", "Consumer", "DomainEvent", "Event", "acting_as", "current_actor", "emit",
        "emit_many", "enabled", "read", "subscribe", "trim",
    ],
    "crmkit.errors": [
        "AlreadyExists", "BatchError", "ConflictError", "CriteriaError", "CrmError",
        "HierarchyCycleError", "MissingDependencyError", "NotFittedError", "NotFound",
        "StatementTimeout", "StorageError", "StorageUnavailable", "TransactionConflict",
        "ValidationError",
    ],
    "crmkit.records": [
        "Account", "AccountType", "Activity", "ActivityKind", "Cadence", "Campaign",
        "CampaignMember", "CampaignStatus", "Contact", "DealRegistration", "Direction",
        "Enrollment", "EnrollmentStatus", "HierarchyChange", "Inquiry", "InquiryStatus", "Lead",
        "LeadStatus", "LifecycleChange", "MemberStatus", "Merge", "Opportunity",
        "OpportunityStatus", "OwnershipChange", "Partner", "RECORD_TYPES", "Record",
        "RegistrationStatus", "Reminder", "ReminderStatus", "Rep", "RoutingRule", "StageChange",
        "TargetKind", "Team", "Territory", "TerritoryModel", "TerritoryModelState",
    ],
    "crmkit.criteria": [
        "OPERATORS", "AllOf", "AnyOf", "BoundCriteria", "Condition", "Criteria", "F", "Field",
        "Not", "bind", "parse",
    ],
    "crmkit.codec": ["from_dict", "from_json", "make_converter", "to_dict", "to_json"],
    "crmkit.clock": ["Clock", "FixedClock", "SystemClock"],
    "crmkit.store": [
        "CriteriaLike", "MemoryRepository", "MemoryStore", "PostgresStore", "Repository",
        "RepositoryAccess", "SQLiteStore", "Store", "run_transaction",
    ],
    "crmkit.store.postgres": ["PostgresRepository", "PostgresStore"],
    "crmkit.store.memory": ["MemoryRepository", "MemoryStore"],
    "crmkit.store.sqlite": ["SQLiteRepository", "SQLiteStore"],
    "crmkit.testing": ["StoreContract", "build", "strategies"],
    "crmkit.testing.builders": ["DEFAULT_TIME", "build"],
    "crmkit.testing.contract": ["StoreContract"],
    "crmkit.testing.plugin": ["crmkit_clock", "crmkit_store"],
    "crmkit.testing.strategies": [
        "CUSTOM_KEYS", "SMALL_IDS", "TIME_ZONES", "accounts", "activities", "aware_datetimes",
        "cadences", "campaign_members", "campaigns", "contacts", "criteria_for",
        "custom_fields", "deal_registrations", "enrollments", "hierarchy_changes", "ids",
        "inquiries", "leads", "lifecycle_changes", "merges", "money", "opportunities",
        "ownership_changes", "partners", "records", "reminders", "reps", "routing_rules",
        "stage_changes", "teams", "territories", "territory_models", "texts",
    ],
    "crmkit.dask": [
        "RouterRecipe", "assign_territories", "engagement_scores", "fit_scores",
        "pipeline_summary", "priority_scores", "rollup", "route", "segment_by_quantiles",
    ],
    "crmkit.datasets": ["AS_OF", "SIZES", "STAGES", "Dataset", "SizeSpec", "generate", "load"],
    "crmkit.cli": ["main"],
    "crmkit.dedupe": [
        "DEFAULT_RULES", "FREE_MAIL", "MERGEABLE", "NORMALISERS", "REFERENCES", "AccountMatch",
        "AccountMatcher", "Conversion", "DuplicateAction", "DuplicateBatchError", "DuplicateCheck",
        "DuplicateError",
        "DuplicateIndex", "DuplicatePair", "DuplicatePolicy", "DuplicateReport", "FieldMatch",
        "GeneratedContacts", "MatchField", "MatchMethod", "MatchRule", "SurvivorRule",
        "canonical_first_name", "convert_lead", "domain_of", "find_duplicate_pairs",
        "find_duplicates", "generate_duplicates", "match_accounts", "merge", "normalise_company",
        "normalise_email", "normalise_person_name", "normalise_phone", "normalise_text",
        "pair_quality", "phone_key", "phonetic_key", "rank_records", "registrable_domain",
        "rules_from_data", "strip_accents", "unmerge",
    ],
    # the engines
    "crmkit.campaigns": [
        "AddResult", "MODELS", "SyncResult", "account_engagement", "add_members", "attribution",
        "attribution_from_columns", "coverage", "credits", "minor_digits", "performance",
        "plot_performance", "section", "set_status", "sync_targets", "to_decimal",
        "touch_credits",
    ],
    "crmkit.partners": [
        "Conflict", "Registered", "approve", "conflicts", "expire", "performance", "register",
        "reject", "route_leads",
    ],
    "crmkit.activities": [
        "REF_KINDS", "TimelinePage", "activity_counts", "last_touch", "log", "log_many",
        "timeline", "timeline_page",
    ],
    "crmkit.reminders": [
        "BusinessCalendar", "CadenceEvent", "Completion", "ReminderEvent", "ReminderState",
        "STATE_DOC", "alert_at", "cadence_tick", "cancel", "check_steps", "complete",
        "country_holidays", "due", "effective_due", "enroll", "follow_up", "localize",
        "next_due", "occurrences", "overdue", "pause", "plan", "resume", "schedule",
        "schedule_many", "snooze", "stale_work", "state_of", "tick", "unenroll", "upcoming",
    ],
    "crmkit.hierarchy": [
        "AccountHierarchy", "FamilySummary", "FamilyView", "HOWS", "IntegrityReport", "Merged",
        "Problem", "Reparented", "RollupResult", "Whitespace", "activity_counts", "ancestors",
        "children", "depth", "descendants", "draw", "family", "family_summary",
        "hierarchy_history",
        "largest_families", "members", "merge_under", "open_pipeline", "parent", "path_to_root",
        "reparent", "rollup", "rollup_field", "rollup_related", "roots", "siblings", "to_dot",
        "to_mermaid", "ultimate_parent", "view", "whitespace", "won_revenue",
    ],
    "crmkit.ownership": [
        "CASCADES", "Move", "ReassignmentPlan", "ownership_history", "plan_departure",
        "reassign",
    ],
    "crmkit.lifecycle": [
        "DEFAULT_LIFECYCLE", "LifecycleModel", "history", "move", "time_in_stage",
    ],
    "crmkit.scoring": [
        "BacktestResult", "FeatureEncoder", "FitModel", "LogisticLeadScorer",
        "LogisticRegression", "ModelState", "NaiveBayesLeadScorer", "PointsRule", "RuleGroup",
        "ScoreResult", "Segments", "average_ranks", "backtest", "brier_score",
        "calibration_bins", "engagement_scores", "fit_engagement_matrix", "fit_scores",
        "lift_table", "model_from_dict", "model_from_json", "model_to_dict", "model_to_json",
        "normalise", "percentiles", "priority_scores", "ranks", "roc_auc",
        "segment_by_criteria", "segment_by_quantiles", "tiers", "training_data",
    ],
    "crmkit.routing": [
        "BalancePlan", "Dropped", "Escalation", "Move", "RealignmentDiff", "Reason", "Router",
        "RoutingBatch", "RoutingDecision", "RoutingStatus", "RuleSet", "STRATEGIES", "Schedule",
        "Target", "TerritoryAssignment", "TerritoryIndex", "activate_model", "active_model",
        "apply_realignment",
        "assign_columns", "assign_territories", "email_domain", "imbalance", "load_rules",
        "normalise_company", "realignment_diff", "rules_from_data", "suggest_balance",
    ],
    "crmkit.pipeline": [
        "DEFAULT_PIPELINE", "DEFAULT_STAGE_MAP", "ForecastCategory", "Pipeline", "PipelineData",
        "SalesExportReport", "Snapshot", "SnapshotDiff", "Stage", "Table", "UnmatchedProduct",
        "average_deal_size", "close_lost",
        "close_won", "diff", "forecast", "import_sales_export", "load", "move", "open_pipeline",
        "plot_forecast", "plot_funnel", "plot_win_rate", "rotting", "sales_cycle", "snapshot",
        "stage_conversion", "summary", "time_in_stage", "velocity", "weighted_pipeline",
        "win_loss", "win_rate", "won_revenue",
    ],
    "crmkit.io": [
        "DuplicateRow", "ImportFailed", "ImportReport", "RowError", "export_csv", "import_csv",
    ],
}  # fmt: skip


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 "isort-style" order: CONSTANTS, then Classes, then everything else."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize(
    "module_name",
    sorted(PUBLIC),
)
def test_all_is_sorted(module_name: str) -> None:
    names = list(importlib.import_module(module_name).__all__)
    assert names in (sorted(names), sorted(names, key=_isort_key))


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_every_public_name_resolves(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{module_name}.{name}"


def test_top_level_names_are_the_real_objects() -> None:
    import crmkit
    from crmkit.store.memory import MemoryStore
    from crmkit.store.postgres import PostgresStore
    from crmkit.store.sqlite import SQLiteStore

    assert crmkit.MemoryStore is MemoryStore
    assert crmkit.SQLiteStore is SQLiteStore
    assert crmkit.PostgresStore is PostgresStore
    assert isinstance(crmkit.__version__, str)
    with pytest.raises(AttributeError):
        crmkit.not_a_name  # noqa: B018


HEAVY = [
    "pandas",
    "matplotlib",
    "crmkit.store.sqlite",
    "sqlite3",
    "crmkit.store.postgres",
    "psycopg",
    "psycopg_pool",
    "hypothesis",
    "pytest",
    "tqdm",
    "sklearn",
    "crmkit.testing.contract",
    "crmkit.testing.strategies",
]


def _loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_import_crmkit_imports_nothing_heavy() -> None:
    loaded = _loaded_after("import crmkit")
    assert "crmkit" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_import_crmkit_testing_stays_light() -> None:
    loaded = _loaded_after("import crmkit.testing")
    assert "crmkit.testing" in loaded
    assert not loaded & {"hypothesis", "pytest", "crmkit.testing.contract"}
