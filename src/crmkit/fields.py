"""The field makers crmkit's records are declared with, for your own record types.

Each maker returns an ``attrs.field`` with crmkit's converter, validator and *kind*
(``metadata["kind"]``), which criteria, stores, numpy columns, CSV import and the codec
read; a record type registered with :func:`crmkit.registry.register_record` must use
them for every field. :func:`reference` marks the id of another record, which merges
re-point and roll-ups group by.

>>> import attrs
>>> from crmkit import fields
>>> from crmkit.records import Account
>>> @attrs.frozen(kw_only=True)
... class Subscription:
...     id: str = fields.record_id()
...     account_id: str | None = fields.reference(Account)
...     plan: str = fields.text(required=True)
...     seats: int | None = fields.integer()
...     custom: dict[str, fields.Scalar] = fields.custom()
...     version: int = fields.version()
>>> Subscription(id="s1", plan="  pro ", seats=3.0).plan
'pro'
>>> Subscription(id="s1", plan="pro", seats=-1)
Traceback (most recent call last):
...
crmkit.errors.ValidationError: Subscription 's1' field 'seats' = -1: must be >= 0
"""

from __future__ import annotations

from crmkit._fields import (
    Scalar,
    choice,
    custom,
    day,
    flag,
    integer,
    moment,
    money,
    number,
    record_id,
    reference,
    tags,
    text,
    version,
    zone,
)

__all__ = [
    "Scalar",
    "choice",
    "custom",
    "day",
    "flag",
    "integer",
    "moment",
    "money",
    "number",
    "record_id",
    "reference",
    "tags",
    "text",
    "version",
    "zone",
]
