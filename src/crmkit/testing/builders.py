"""Small record builders for tests: every required field gets a sensible default.

Examples
--------
>>> from crmkit.records import Activity, Account
>>> build(Account, id="acc-1").name
'Name acc-1'
>>> build(Account, id="acc-2", name="Globex", employees=40).employees
40
>>> build(Activity).at.isoformat()
'2026-01-05T09:00:00+00:00'
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import attrs

__all__ = ["DEFAULT_TIME", "build"]

T = TypeVar("T")

DEFAULT_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""The instant required datetimes default to (a Monday, 09:00 UTC)."""

_TEXT_DEFAULTS = {
    "record_type": "Lead",
    "record_id": "lead-1",
    "account_id": "acc-1",
    "opportunity_id": "opp-1",
    "to_stage": "qualification",
    "target_id": "inbound-queue",
}


#: required fields of these kinds (in registered record types) get these values
_NUMBER_DEFAULTS: dict[str, Any] = {"int": 1, "float": 1.0, "money": 1, "bool": False}


def build(record_type: type[T], **fields: Any) -> T:
    """A valid ``record_type`` record; ``fields`` override the defaults.

    The id defaults to ``<type>-1`` (``account-1``, ``stagechange-1``); required text
    defaults to a readable value naming the id, required datetimes to
    :data:`DEFAULT_TIME` and a required enum (``Activity.kind``) to its first member.
    """
    values = dict(fields)
    values.setdefault("id", f"{record_type.__name__.lower()}-1")
    for field in attrs.fields(cast(Any, record_type)):
        if field.default is not attrs.NOTHING or field.name in values:
            continue
        kind = field.metadata.get("kind")
        if kind == "datetime":
            values[field.name] = DEFAULT_TIME
        elif kind == "enum":
            values[field.name] = next(iter(field.metadata["enum"]))
        elif kind in _NUMBER_DEFAULTS:
            values[field.name] = _NUMBER_DEFAULTS[kind]
        elif field.name in _TEXT_DEFAULTS:
            values[field.name] = _TEXT_DEFAULTS[field.name]
        else:
            values[field.name] = f"{field.name.replace('_', ' ').title()} {values['id']}"
    return record_type(**values)
