"""The errors crmkit raises.

Every error is a :class:`CrmError`. Each leaf also subclasses the builtin it
resembles, so ``except ValueError`` keeps working in code that predates crmkit.
Messages name the record type, id, field and value, and say how to fix it.

>>> from crmkit.errors import NotFound
>>> err = NotFound("Account", "acc-1")
>>> str(err)
"Account 'acc-1' not found"
>>> isinstance(err, LookupError)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmkit._repr import short_repr

__all__ = [
    "AlreadyExists",
    "BatchError",
    "ConflictError",
    "CriteriaError",
    "CrmError",
    "HierarchyCycleError",
    "MissingDependencyError",
    "NotFittedError",
    "NotFound",
    "StatementTimeout",
    "StorageError",
    "StorageUnavailable",
    "TransactionConflict",
    "ValidationError",
]


class CrmError(Exception):
    """Base class of every error crmkit raises on purpose."""


class ValidationError(CrmError, ValueError):
    """A value does not fit a record field.

    >>> err = ValidationError("Lead", "status", "hot", "must be one of new, working")
    >>> str(err)
    "Lead.status = 'hot': must be one of new, working"
    """

    def __init__(
        self,
        record: str,
        field: str | None,
        value: Any,
        reason: str,
        *,
        record_id: str | None = None,
    ) -> None:
        self.record = record
        self.field = field
        self.value = value
        self.reason = reason
        self.record_id = record_id
        super().__init__(self._message())

    def _message(self) -> str:
        # the value may be hostile (huge, deeply nested): show a bounded repr of it
        where = self.record
        if self.record_id is not None:
            where += f" {short_repr(self.record_id)}"
        if self.field is not None:
            field = self.field
            if not isinstance(field, str) or len(field) > 100:
                field = short_repr(field, 100)
            where += f".{field}" if self.record_id is None else f" field {field!r}"
            return f"{where} = {short_repr(self.value)}: {self.reason}"
        return f"{where}: {self.reason}"


class BatchError(ValidationError):
    """A batch had bad rows; nothing was written. ``errors`` lists every one.

    >>> row = ValidationError("Account", "name", "", "must not be empty")
    >>> err = BatchError("Account", [(3, row)])
    >>> err.errors[0][0]
    3
    >>> print(err)
    Account: 1 bad record(s) in batch, nothing written:
      #3: Account.name = '': must not be empty
    """

    def __init__(self, record: str, errors: Sequence[tuple[int, CrmError]]) -> None:
        self.errors = list(errors)
        lines = [f"  #{index}: {error}" for index, error in self.errors[:20]]
        if len(self.errors) > 20:
            lines.append(f"  ... and {len(self.errors) - 20} more")
        reason = f"{len(self.errors)} bad record(s) in batch, nothing written:\n" + "\n".join(
            lines
        )
        super().__init__(record, None, None, reason)


class NotFound(CrmError, LookupError):
    """No record of that type has that id."""

    def __init__(self, record: str, record_id: str) -> None:
        self.record = record
        self.record_id = record_id
        super().__init__(f"{record} {record_id!r} not found")

    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0])


class AlreadyExists(CrmError, ValueError):
    """``add`` was given an id that is already stored; use ``put`` to replace."""

    def __init__(self, record: str, record_id: str) -> None:
        self.record = record
        self.record_id = record_id
        super().__init__(
            f"{record} {record_id!r} already exists; use put() to replace it or update() to "
            "change it"
        )


class ConflictError(CrmError, RuntimeError):
    """An update was based on a stale version of the record, or (with ``condition``) a
    conditional patch found the record not matching its ``where`` criteria.

    >>> err = ConflictError("Reminder", "r1", 2, 2, condition="status == 'open'")
    >>> str(err).split(";")[0]
    "Reminder 'r1' (version 2) does not match the condition status == 'open'"
    """

    def __init__(
        self,
        record: str,
        record_id: str,
        expected: int,
        actual: int,
        *,
        condition: str | None = None,
    ) -> None:
        self.record = record
        self.record_id = record_id
        self.expected = expected
        self.actual = actual
        self.condition = condition
        if condition is not None:
            message = (
                f"{record} {record_id!r} (version {actual}) does not match the condition "
                f"{condition}; nothing was written: get() it again and decide afresh"
            )
        else:
            message = (
                f"{record} {record_id!r} is at version {actual}, not {expected}: it changed "
                "since you read it; get() it again and reapply your change"
            )
        super().__init__(message)


class CriteriaError(CrmError, ValueError):
    """Criteria name an unknown field, a bad operator, or a value of the wrong type."""


class HierarchyCycleError(ValidationError):
    """A parent link would make an account its own ancestor; ``cycle`` is the path."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        path = " -> ".join(self.cycle)
        super().__init__(
            "Account",
            "parent_id",
            self.cycle[-1] if self.cycle else None,
            f"would create a cycle: {path}",
            record_id=self.cycle[0] if self.cycle else None,
        )


class NotFittedError(CrmError, ValueError, AttributeError):
    """A model was used before ``fit``."""


class MissingDependencyError(CrmError, ImportError):
    """An optional feature needs a package that is not installed; the message says which
    extra to install."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs {package}; install it with: pip install 'crmkit[{extra}]'"
        )


class StorageError(CrmError, RuntimeError):
    """The storage backend failed (the original error is chained as ``__cause__``).

    ``retryable`` tells whether running the whole transaction again may succeed: the
    store rolled it back and nothing of it was written.
    """

    retryable = False


class StorageUnavailable(StorageError):
    """The database cannot be reached: connection refused, lost, or the server restarted.

    Whatever the open transaction held was rolled back by the server; retry later.
    Refused credentials are a plain :class:`StorageError` (retrying cannot help).
    """

    retryable = True


class TransactionConflict(StorageError):
    """Another transaction got in the way (serialization failure, deadlock, or a lock
    that did not come free in time). Nothing was written; running the whole transaction
    again is safe when the operation is idempotent (see ``crmkit.store.run_transaction``).
    """

    retryable = True


class StatementTimeout(StorageError):
    """A statement ran longer than the store's ``statement_timeout``; the transaction was
    rolled back. Narrow the query, add an index, or raise the timeout."""
