"""crmkit: the domain core of a CRM as an embeddable Python library.

Importing crmkit does no work: no store is opened, nothing is configured, and the
engines (stores, scoring, hierarchy ...) are imported only when you use them.

>>> import crmkit
>>> acme = crmkit.Account(id="acc-1", name="Acme", country="US")
>>> store = crmkit.MemoryStore()
>>> store.accounts.add(acme).version
1
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crmkit.clock import Clock, FixedClock, SystemClock
from crmkit.criteria import F, bind, parse
from crmkit.errors import (
    AlreadyExists,
    BatchError,
    ConflictError,
    CriteriaError,
    CrmError,
    HierarchyCycleError,
    NotFittedError,
    NotFound,
    StorageError,
    ValidationError,
)
from crmkit.records import (
    Account,
    AccountType,
    Activity,
    ActivityKind,
    Cadence,
    Campaign,
    CampaignMember,
    CampaignStatus,
    Contact,
    DealRegistration,
    Direction,
    Enrollment,
    EnrollmentStatus,
    HierarchyChange,
    Inquiry,
    InquiryStatus,
    Lead,
    LeadStatus,
    LifecycleChange,
    MemberStatus,
    Opportunity,
    OpportunityStatus,
    OwnershipChange,
    Partner,
    RegistrationStatus,
    Reminder,
    ReminderStatus,
    Rep,
    RoutingRule,
    StageChange,
    TargetKind,
    Team,
    Territory,
    TerritoryModel,
    TerritoryModelState,
)
from crmkit.registry import (
    declare_custom_field,
    record_types,
    register_record,
    unregister_record,
)

if TYPE_CHECKING:
    from crmkit.events import acting_as
    from crmkit.store import MemoryStore, PostgresStore, SQLiteStore, Store

__version__ = "0.1.0"

# A library logs and leaves handling to the application (see docs/logging.md).
logging.getLogger("crmkit").addHandler(logging.NullHandler())

__all__ = [
    "Account",
    "AccountType",
    "Activity",
    "ActivityKind",
    "AlreadyExists",
    "BatchError",
    "Cadence",
    "Campaign",
    "CampaignMember",
    "CampaignStatus",
    "Clock",
    "ConflictError",
    "Contact",
    "CriteriaError",
    "CrmError",
    "DealRegistration",
    "Direction",
    "Enrollment",
    "EnrollmentStatus",
    "F",
    "FixedClock",
    "HierarchyChange",
    "HierarchyCycleError",
    "Inquiry",
    "InquiryStatus",
    "Lead",
    "LeadStatus",
    "LifecycleChange",
    "MemberStatus",
    "MemoryStore",
    "NotFittedError",
    "NotFound",
    "Opportunity",
    "OpportunityStatus",
    "OwnershipChange",
    "Partner",
    "PostgresStore",
    "RegistrationStatus",
    "Reminder",
    "ReminderStatus",
    "Rep",
    "RoutingRule",
    "SQLiteStore",
    "StageChange",
    "StorageError",
    "Store",
    "SystemClock",
    "TargetKind",
    "Team",
    "Territory",
    "TerritoryModel",
    "TerritoryModelState",
    "ValidationError",
    "__version__",
    "acting_as",
    "bind",
    "declare_custom_field",
    "parse",
    "record_types",
    "register_record",
    "unregister_record",
]

_LAZY = {
    "acting_as": "crmkit.events",
    "MemoryStore": "crmkit.store",
    "PostgresStore": "crmkit.store",
    "SQLiteStore": "crmkit.store",
    "Store": "crmkit.store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crmkit' has no attribute {name!r}")
