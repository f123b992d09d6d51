"""The pytest plugin crmkit registers (entry point ``pytest11``): opt-in fixtures.

``crmkit_store`` is a fresh :class:`~crmkit.store.MemoryStore` per test and
``crmkit_clock`` a :class:`~crmkit.clock.FixedClock` at 2026-01-05 09:00 UTC (a Monday).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crmkit.clock import FixedClock
from crmkit.store.memory import MemoryStore

__all__ = ["crmkit_clock", "crmkit_store"]


@pytest.fixture
def crmkit_store() -> MemoryStore:
    """A fresh, empty MemoryStore."""
    return MemoryStore()


@pytest.fixture
def crmkit_clock() -> FixedClock:
    """A FixedClock at Monday 2026-01-05 09:00 UTC; advance it with ``.advance(hours=1)``."""
    return FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
