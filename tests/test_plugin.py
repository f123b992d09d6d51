"""The pytest plugin crmkit installs (entry point ``pytest11``) gives users its fixtures."""

from __future__ import annotations

import pytest

from crmkit.clock import FixedClock
from crmkit.store.memory import MemoryStore

pytest_plugins = ["pytester"]

USER_TESTS = """
from datetime import datetime, timezone

import attrs
from crmkit import Account, FixedClock, MemoryStore


def test_store_is_a_fresh_memory_store(crmkit_store):
    assert isinstance(crmkit_store, MemoryStore)
    assert len(crmkit_store.accounts) == 0
    crmkit_store.accounts.add(Account(id="a", name="Acme"))
    assert crmkit_store.accounts.get("a").version == 1


def test_each_test_gets_its_own_store(crmkit_store):
    assert "a" not in crmkit_store.accounts


def test_clock_is_fixed_monday_morning(crmkit_clock):
    assert isinstance(crmkit_clock, FixedClock)
    assert crmkit_clock.now() == datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    assert crmkit_clock.now().weekday() == 0
    crmkit_clock.advance(hours=1)
    assert crmkit_clock.now().hour == 10


def test_clock_is_fresh_per_test(crmkit_clock):
    assert crmkit_clock.now().hour == 9
"""


def test_user_suite_gets_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_fixtures_come_from_the_entry_point_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-p", "no:crmkit")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(["*fixture 'crmkit_store' not found*"])


def test_plugin_fixtures_directly(crmkit_store: MemoryStore, crmkit_clock: FixedClock) -> None:
    """This suite sees them too, since crmkit is installed."""
    assert isinstance(crmkit_store, MemoryStore)
    assert crmkit_clock.now().isoformat() == "2026-01-05T09:00:00+00:00"
