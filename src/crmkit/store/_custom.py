"""Tables of registered record types in the SQL stores: what is stored, and what may change.

Each SQL store keeps, in its table ``crmkit_record_types``, the fields every registered
type had when its table was last created or changed. When a type is opened again with
other fields:

- a new optional field (one with a default) adds its column(s), filled with the default;
- anything else is refused with a :class:`~crmkit.errors.StorageError` naming the type
  and the field: a removed or renamed field, a changed kind, an enum that lost values,
  a field that became required, a new required field. Nothing is changed then; migrate
  the table by hand (or keep the old field, optional) and open the store again.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from crmkit._schema import FieldInfo, schema_of
from crmkit.errors import StorageError

TABLE = "crmkit_record_types"


def describe(record_type: type[Any]) -> str:
    """The fields of ``record_type`` as the JSON the stores keep."""
    return json.dumps(
        [
            {
                "name": info.name,
                "kind": info.kind,
                "required": info.required,
                "enum": None if info.enum is None else [str(m.value) for m in info.enum],
            }
            for info in schema_of(record_type).fields
        ]
    )


def added_fields(
    record_type: type[Any], stored_json: str, where: str
) -> list[tuple[FieldInfo, Any]]:
    """``[(field, default)]`` to add to the stored table of ``record_type`` so it holds
    the type as declared now; a :class:`StorageError` for an incompatible change."""
    name = record_type.__name__
    stored = {item["name"]: item for item in json.loads(stored_json)}
    now = {info.name: info for info in schema_of(record_type).fields}

    def refuse(field: str, reason: str) -> StorageError:
        return StorageError(
            f"{where}: {name}.{field} {reason}; the stored table of {name} was left as it "
            "was (only new optional fields are added by themselves: migrate the table by "
            "hand, see docs/custom-records.md)"
        )

    for field, old in stored.items():
        info = now.get(field)
        if info is None:
            raise refuse(field, f"was removed or renamed (stored as {old['kind']})")
        if info.kind != old["kind"]:
            raise refuse(field, f"changed kind from {old['kind']} to {info.kind}")
        if old["enum"] is not None and info.enum is not None:
            lost = set(old["enum"]) - {str(m.value) for m in info.enum}
            if lost:
                raise refuse(field, f"lost enum value(s) {', '.join(sorted(lost))}")
        if info.required and not old["required"]:
            raise refuse(field, "became required (stored rows may have no value)")
    added = []
    fields = attrs.fields_dict(record_type)
    for field, info in now.items():
        if field in stored:
            continue
        if info.required:
            raise refuse(field, "was added as a required field; give it a default")
        default: Any = fields[field].default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        added.append((info, default))
    return added
