"""What each record type looks like to criteria, stores, columns and CSV: one table.

The kind of every field comes from the field maker in ``_fields`` (``metadata["kind"]``),
so adding a field to a record is all it takes for it to be queryable and storable.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from crmkit.errors import CriteriaError
from crmkit.registry import STATE, record_types

#: kinds a criteria can compare, and the numpy/SQL shape they take
QUERYABLE_KINDS = frozenset({"text", "enum", "int", "float", "money", "bool", "datetime", "date"})
NUMERIC_KINDS = frozenset({"int", "float", "money"})


@attrs.frozen
class FieldInfo:
    """One field of a record type."""

    name: str
    kind: str
    enum: type[enum.Enum] | None = None
    required: bool = False


@attrs.frozen
class RecordSchema:
    """The fields of one record type, in declaration order."""

    type: type[Any]
    name: str
    fields: tuple[FieldInfo, ...]

    def field(self, name: str) -> FieldInfo:
        for info in self.fields:
            if info.name == name:
                return info
        known = ", ".join(i.name for i in self.fields if i.kind in QUERYABLE_KINDS)
        raise CriteriaError(
            f"{self.name} has no field {name!r}; known fields: {known}; "
            f"custom fields are written 'custom.{name}'"
        )


_SCHEMAS: dict[type[Any], RecordSchema] = {}


def schema_of(record_type: type[Any]) -> RecordSchema:
    """The schema of a record type."""
    cached = _SCHEMAS.get(record_type)
    if cached is not None:
        return cached
    infos = []
    for a in attrs.fields(record_type):
        kind = a.metadata.get("kind", "json")
        infos.append(
            FieldInfo(
                name=a.name,
                kind=kind,
                enum=a.metadata.get("enum"),
                required=a.default is attrs.NOTHING,
            )
        )
    schema = RecordSchema(type=record_type, name=record_type.__name__, fields=tuple(infos))
    _SCHEMAS[record_type] = schema
    return schema


def record_type_named(name: str) -> type[Any]:
    """Look a record type up by its class name (``"Account"``) or plural (``"accounts"``)."""
    types = record_types()
    for record_type in types:
        if name in (record_type.__name__, plural(record_type), record_type.__name__.lower()):
            return record_type
    known = ", ".join(plural(t) for t in types)
    raise CriteriaError(f"unknown record type {name!r}; known: {known}")


def plural(record_type: type[Any]) -> str:
    """The repository name of a record type: ``Account`` -> ``accounts`` (a registered
    type's table, see :func:`crmkit.registry.register_record`)."""
    table = STATE.tables.get(record_type)
    return _PLURALS[record_type.__name__] if table is None else table


def builtin_tables() -> frozenset[str]:
    """The table names of crmkit's own record types."""
    return frozenset(_PLURALS.values())


_PLURALS = {
    "Account": "accounts",
    "Contact": "contacts",
    "Lead": "leads",
    "Opportunity": "opportunities",
    "Activity": "activities",
    "Rep": "reps",
    "Team": "teams",
    "Territory": "territories",
    "Reminder": "reminders",
    "OwnershipChange": "ownership_changes",
    "StageChange": "stage_changes",
    "LifecycleChange": "lifecycle_changes",
    "TerritoryModel": "territory_models",
    "RoutingRule": "routing_rules",
    "Inquiry": "inquiries",
    "HierarchyChange": "hierarchy_changes",
    "Cadence": "cadences",
    "Enrollment": "enrollments",
    "Campaign": "campaigns",
    "CampaignMember": "campaign_members",
    "Partner": "partners",
    "DealRegistration": "deal_registrations",
    "Merge": "merges",
}
