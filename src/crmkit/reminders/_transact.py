"""The one way the reminder engines read-modify-write the store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from crmkit.errors import ConflictError
from crmkit.store._base import Store, run_transaction

__all__ = ["transact"]

_log = logging.getLogger("crmkit.reminders")
T = TypeVar("T")
ATTEMPTS = 5  # version-check failures
RACES = 10  # lost transaction races, per run (several workers ticking one database)


def transact(store: Store, operation: Callable[[], T]) -> T:
    """:func:`~crmkit.store.run_transaction` (up to 10 attempts on a lost race), also run
    again (up to 5 times in all) when a version check fails with
    :class:`~crmkit.errors.ConflictError`.

    Only for operations that read everything they decide on inside ``operation``, so a
    second run decides afresh. Inside an outer transaction it runs once.

    >>> from crmkit.store import MemoryStore
    >>> transact(MemoryStore(), lambda: "done")
    'done'
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return run_transaction(store, operation, attempts=RACES)
        except ConflictError as err:
            if attempt == ATTEMPTS or getattr(store, "in_transaction", False):
                raise
            _log.warning(
                "reminder change failed its version check on attempt %d of %d, "
                "running it again: %s",
                attempt,
                ATTEMPTS,
                err,
                extra={"attempt": attempt, "attempts": ATTEMPTS, "error": err},
            )
    raise AssertionError("unreachable")  # pragma: no cover
