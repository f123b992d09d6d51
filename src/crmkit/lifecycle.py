"""Account lifecycle: configurable stages, allowed transitions, history and time in stage.

The default model follows a customer from first contact to renewal::

    prospect -> onboarding -> active <-> renewal
        any of onboarding, active, renewal -> churned -> prospect (win-back)

A move updates ``Account.lifecycle_stage`` (optimistic version check) and writes a
:class:`~crmkit.records.LifecycleChange` in one transaction. An invalid transition raises
:class:`~crmkit.errors.ValidationError` naming the account, the from and the to stage.

>>> from datetime import datetime, timedelta, timezone
>>> from crmkit import Account, MemoryStore
>>> store = MemoryStore()
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> _ = store.accounts.add(Account(id="acme", name="Acme", created_at=t0))
>>> _ = move(store, "acme", "onboarding", at=t0 + timedelta(days=10), reason="signed")
>>> _ = move(store, "acme", "active", at=t0 + timedelta(days=40))
>>> [c.to_stage for c in history(store, "acme")]
['onboarding', 'active']
>>> time_in_stage(store, "acme", now=t0 + timedelta(days=50))["onboarding"].days
30
>>> move(store, "acme", "prospect", at=t0 + timedelta(days=60))
Traceback (most recent call last):
...
crmkit.errors.ValidationError: Account 'acme' field 'lifecycle_stage' = 'prospect': cannot move
from 'active' to 'prospect'; allowed from 'active': renewal, churned
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from crmkit.errors import ValidationError
from crmkit.events import emit
from crmkit.records import LifecycleChange
from crmkit.store._base import run_transaction

if TYPE_CHECKING:
    from crmkit.store import Store

__all__ = ["DEFAULT_LIFECYCLE", "LifecycleModel", "history", "move", "time_in_stage"]


def _stage_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _freeze(value: Mapping[str, Iterable[str]]) -> Mapping[str, frozenset[str]]:
    return {str(k): frozenset(v) for k, v in value.items()}


@attrs.frozen
class LifecycleModel:
    """Stages in their natural order, and which moves between them are allowed.

    ``transitions`` maps a stage to the stages it may move to; with ``forward_only``
    only moves to a later stage (in ``stages`` order) are allowed, even if listed.
    ``initial`` is the stage of a new account.

    >>> model = LifecycleModel(stages=("trial", "paid", "gone"),
    ...                        transitions={"trial": ["paid", "gone"], "paid": ["gone"]},
    ...                        initial="trial")
    >>> model.allowed("trial", "paid"), model.allowed("gone", "trial")
    (True, False)
    """

    stages: tuple[str, ...] = attrs.field(converter=_stage_tuple)
    transitions: Mapping[str, frozenset[str]] = attrs.field(converter=_freeze)
    initial: str = "prospect"
    forward_only: bool = False

    def __attrs_post_init__(self) -> None:
        if len(set(self.stages)) != len(self.stages) or not self.stages:
            raise ValidationError(
                "LifecycleModel", "stages", self.stages, "must be unique, non-empty names"
            )
        known = set(self.stages)
        if self.initial not in known:
            raise ValidationError(
                "LifecycleModel", "initial", self.initial, "must be one of the stages"
            )
        for source, targets in self.transitions.items():
            for stage in (source, *sorted(targets)):
                if stage not in known:
                    raise ValidationError(
                        "LifecycleModel",
                        "transitions",
                        stage,
                        f"is not a stage; stages: {', '.join(self.stages)}",
                    )

    def targets(self, stage: str) -> list[str]:
        """The stages ``stage`` may move to, in stage order."""
        listed = self.transitions.get(stage, frozenset())
        start = self.stages.index(stage) if stage in self.stages else -1
        return [
            s
            for k, s in enumerate(self.stages)
            if s in listed and (not self.forward_only or k > start)
        ]

    def allowed(self, from_stage: str, to_stage: str) -> bool:
        """Whether ``from_stage -> to_stage`` is a valid move."""
        return to_stage in self.targets(from_stage)

    def with_forward_only(self, forward_only: bool = True) -> LifecycleModel:
        """The same model, forward only (or not)."""
        return attrs.evolve(self, forward_only=forward_only)


DEFAULT_LIFECYCLE = LifecycleModel(
    stages=("prospect", "onboarding", "active", "renewal", "churned"),
    transitions={
        "prospect": ["onboarding"],
        "onboarding": ["active", "churned"],
        "active": ["renewal", "churned"],
        "renewal": ["active", "churned"],
        "churned": ["prospect"],
    },
)
"""The default lifecycle: prospect, onboarding, active, renewal, churned (win-back to
prospect)."""


def _check_at(at: object, account_id: str) -> None:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValidationError(
            "LifecycleChange", "at", at, "must be a timezone-aware datetime", record_id=account_id
        )


def history(store: Store, account_id: str) -> list[LifecycleChange]:
    """The lifecycle changes of one account, oldest first.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add(Account(id="acme", name="Acme"))
    >>> _ = move(store, "acme", "onboarding", at=datetime(2026, 1, 5, tzinfo=timezone.utc))
    >>> _ = move(store, "acme", "active", at=datetime(2026, 2, 1, tzinfo=timezone.utc))
    >>> [(c.from_stage, c.to_stage) for c in history(store, "acme")]
    [('prospect', 'onboarding'), ('onboarding', 'active')]
    """
    return store.lifecycle_changes.query(
        {"field": "account_id", "op": "==", "value": account_id}, order_by="at"
    )


def move(
    store: Store,
    account_id: str,
    to_stage: str,
    *,
    at: datetime,
    reason: str | None = None,
    changed_by: str | None = None,
    model: LifecycleModel = DEFAULT_LIFECYCLE,
    expected_version: int | None = None,
) -> LifecycleChange:
    """Move an account to ``to_stage`` and record the change; returns the change.

    Refused (:class:`~crmkit.errors.ValidationError`) when the model does not allow the
    move or when ``at`` is earlier than the account's last lifecycle change. The checks
    and the writes share one transaction (:func:`crmkit.store.run_transaction`; each
    attempt reads afresh, so it is retried on a transaction conflict).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> _ = store.accounts.add(Account(id="acme", name="Acme"))
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> move(store, "acme", "onboarding", at=at, reason="signed").to_stage
    'onboarding'
    >>> store.accounts.get("acme").lifecycle_stage
    'onboarding'
    >>> move(store, "acme", "renewal", at=at)
    Traceback (most recent call last):
    ...
    crmkit.errors.ValidationError: Account 'acme' field 'lifecycle_stage' = 'renewal': ...
    """
    _check_at(at, account_id)
    return run_transaction(
        store,
        lambda: _move(
            store, account_id, to_stage, at, reason, changed_by, model, expected_version
        ),
    )


def _move(
    store: Store,
    account_id: str,
    to_stage: str,
    at: datetime,
    reason: str | None,
    changed_by: str | None,
    model: LifecycleModel,
    expected_version: int | None,
) -> LifecycleChange:
    account = store.accounts.get(account_id)
    from_stage = account.lifecycle_stage
    if to_stage not in model.stages:
        raise ValidationError(
            "Account",
            "lifecycle_stage",
            to_stage,
            f"unknown stage; stages: {', '.join(model.stages)}",
            record_id=account_id,
        )
    if not model.allowed(from_stage, to_stage):
        options = ", ".join(model.targets(from_stage)) or "none"
        why = "" if from_stage in model.stages else " (not a stage of this model)"
        raise ValidationError(
            "Account",
            "lifecycle_stage",
            to_stage,
            f"cannot move from {from_stage!r}{why} to {to_stage!r}; "
            f"allowed from {from_stage!r}: {options}",
            record_id=account_id,
        )
    past = history(store, account_id)
    if past and at < past[-1].at:
        raise ValidationError(
            "LifecycleChange",
            "at",
            at.isoformat(),
            f"is before the last change ({past[-1].at.isoformat()}); history must stay "
            "in time order",
            record_id=account_id,
        )
    version = account.version if expected_version is None else expected_version
    stored = store.accounts.update(
        attrs.evolve(account, lifecycle_stage=to_stage), expected_version=version
    )
    change_id = f"{account_id}:lifecycle:{stored.version:04d}"
    if change_id in store.lifecycle_changes:
        change_id += f":{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S%f')}"
    change = store.lifecycle_changes.add(
        LifecycleChange(
            id=change_id,
            account_id=account_id,
            from_stage=from_stage,
            to_stage=to_stage,
            at=at,
            reason=reason,
            changed_by=changed_by,
        )
    )
    emit(
        store,
        "account.lifecycle_changed",
        subject=account_id,
        payload={"from_stage": from_stage, "to_stage": to_stage, "at": at, "reason": reason},
    )
    return change


def time_in_stage(store: Store, account_id: str, *, now: datetime) -> dict[str, timedelta]:
    """Total time the account spent in each stage up to ``now``.

    The first stage counts from ``Account.created_at`` (left out when unknown); the
    current stage counts until ``now``. A stage visited twice adds up.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from crmkit import Account, MemoryStore
    >>> store = MemoryStore()
    >>> day = lambda d: datetime(2026, 1, d, tzinfo=timezone.utc)
    >>> _ = store.accounts.add(Account(id="acme", name="Acme", created_at=day(1)))
    >>> _ = move(store, "acme", "onboarding", at=day(11))
    >>> {stage: spent.days for stage, spent in time_in_stage(store, "acme", now=day(31)).items()}
    {'prospect': 10, 'onboarding': 20}
    """
    _check_at(now, account_id)
    account = store.accounts.get(account_id)
    changes = history(store, account_id)
    first = changes[0].from_stage if changes else account.lifecycle_stage
    spans: list[tuple[str | None, datetime | None]] = [(first, account.created_at)]
    spans += [(c.to_stage, c.at) for c in changes]
    ends = [c.at for c in changes] + [now]
    out: dict[str, timedelta] = {}
    for (stage, start), end in zip(spans, ends, strict=True):
        if stage is None or start is None:
            continue
        out[stage] = out.get(stage, timedelta()) + max(end - start, timedelta())
    return out
