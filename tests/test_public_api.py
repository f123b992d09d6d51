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
        "Clock", "ConflictError", "Contact", "CriteriaError", "CrmError", "Direction", "F",
        "FixedClock", "HierarchyCycleError", "Inquiry", "InquiryStatus", "Lead", "LeadStatus",
        "LifecycleChange", "MemoryStore", "NotFittedError", "NotFound", "Opportunity",
        "OpportunityStatus", "OwnershipChange", "Reminder", "ReminderStatus", "Rep",
        "RoutingRule", "SQLiteStore", "StageChange", "StorageError", "Store", "SystemClock",
        "TargetKind", "Team", "Territory", "TerritoryModel", "TerritoryModelState",
        "ValidationError", "__version__", "bind", "parse",
    ],
    "crmkit.errors": [
        "AlreadyExists", "BatchError", "ConflictError", "CriteriaError", "CrmError",
        "HierarchyCycleError", "MissingDependencyError", "NotFittedError", "NotFound",
        "StorageError", "ValidationError",
    ],
    "crmkit.records": [
        "RECORD_TYPES", "Account", "AccountType", "Activity", "ActivityKind", "Contact",
        "Direction", "Inquiry", "InquiryStatus", "Lead", "LeadStatus", "LifecycleChange",
        "Opportunity", "OpportunityStatus", "OwnershipChange", "Record", "Reminder",
        "ReminderStatus", "Rep", "RoutingRule", "StageChange", "TargetKind", "Team",
        "Territory", "TerritoryModel", "TerritoryModelState",
    ],
    "crmkit.criteria": [
        "OPERATORS", "AllOf", "AnyOf", "BoundCriteria", "Condition", "Criteria", "F", "Field",
        "Not", "bind", "parse",
    ],
    "crmkit.codec": ["from_dict", "from_json", "make_converter", "to_dict", "to_json"],
    "crmkit.clock": ["Clock", "FixedClock", "SystemClock"],
    "crmkit.store": [
        "CriteriaLike", "MemoryRepository", "MemoryStore", "Repository", "SQLiteStore", "Store",
    ],
    "crmkit.store.memory": ["MemoryRepository", "MemoryStore"],
    "crmkit.store.sqlite": ["SQLiteRepository", "SQLiteStore"],
    "crmkit.testing": ["StoreContract", "build", "strategies"],
    "crmkit.testing.builders": ["DEFAULT_TIME", "build"],
    "crmkit.testing.contract": ["StoreContract"],
    "crmkit.testing.plugin": ["crmkit_clock", "crmkit_store"],
    "crmkit.testing.strategies": [
        "CUSTOM_KEYS", "SMALL_IDS", "TIME_ZONES", "accounts", "activities", "aware_datetimes",
        "contacts", "criteria_for", "custom_fields", "ids", "inquiries", "leads",
        "lifecycle_changes", "money", "opportunities", "ownership_changes", "records",
        "reminders", "reps", "routing_rules", "stage_changes", "teams", "territories",
        "territory_models", "texts",
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
    from crmkit.store.sqlite import SQLiteStore

    assert crmkit.MemoryStore is MemoryStore
    assert crmkit.SQLiteStore is SQLiteStore
    assert isinstance(crmkit.__version__, str)
    with pytest.raises(AttributeError):
        crmkit.not_a_name  # noqa: B018


HEAVY = [
    "pandas",
    "matplotlib",
    "crmkit.store.sqlite",
    "sqlite3",
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
