"""The error tree and the clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crmkit import errors
from crmkit.clock import Clock, FixedClock, SystemClock
from crmkit.errors import (
    AlreadyExists,
    BatchError,
    ConflictError,
    CriteriaError,
    CrmError,
    HierarchyCycleError,
    MissingDependencyError,
    NotFittedError,
    NotFound,
    StatementTimeout,
    StorageError,
    StorageUnavailable,
    TransactionConflict,
    ValidationError,
)

BUILTINS = {
    ValidationError: ValueError,
    BatchError: ValueError,
    NotFound: LookupError,
    AlreadyExists: ValueError,
    ConflictError: RuntimeError,
    CriteriaError: ValueError,
    HierarchyCycleError: ValueError,
    NotFittedError: ValueError,
    MissingDependencyError: ImportError,
    StorageError: RuntimeError,
    StorageUnavailable: RuntimeError,
    StatementTimeout: RuntimeError,
    TransactionConflict: RuntimeError,
}


def test_every_public_error_is_covered() -> None:
    public = {getattr(errors, name) for name in errors.__all__}
    assert public == {CrmError, *BUILTINS}


@pytest.mark.parametrize(("error", "builtin"), BUILTINS.items(), ids=lambda e: e.__name__)
def test_each_error_is_a_crm_error_and_its_builtin(
    error: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(error, CrmError)
    assert issubclass(error, builtin)
    assert issubclass(CrmError, Exception)


def test_not_fitted_is_also_an_attribute_error() -> None:
    assert issubclass(NotFittedError, AttributeError)


def test_validation_error_names_the_parts() -> None:
    err = ValidationError("Lead", "status", "hot", "must be one of new, working", record_id="l-1")
    assert (err.record, err.field, err.value, err.record_id) == ("Lead", "status", "hot", "l-1")
    text = str(err)
    for part in ("Lead", "'l-1'", "status", "'hot'", "must be one of new, working"):
        assert part in text
    assert str(ValidationError("Lead", None, None, "broken")) == "Lead: broken"


def test_batch_error_lists_every_row() -> None:
    rows = [(i, ValidationError("Account", "name", "", f"bad {i}")) for i in range(25)]
    err = BatchError("Account", rows)
    assert [i for i, _ in err.errors] == list(range(25))
    text = str(err)
    assert "25 bad record(s)" in text
    assert "nothing written" in text
    assert "#0:" in text
    assert "#19:" in text
    assert "5 more" in text  # the message is capped; .errors is not


def test_not_found_already_exists_conflict_messages() -> None:
    missing = NotFound("Account", "acc-9")
    assert str(missing) == "Account 'acc-9' not found"
    assert (missing.record, missing.record_id) == ("Account", "acc-9")
    clash = AlreadyExists("Lead", "l-1")
    assert "Lead 'l-1' already exists" in str(clash)
    assert "put()" in str(clash)
    conflict = ConflictError("Account", "a", expected=1, actual=3)
    assert (conflict.expected, conflict.actual) == (1, 3)
    assert "version 3" in str(conflict)
    assert "not 1" in str(conflict)


def test_hierarchy_cycle_error_carries_the_path() -> None:
    err = HierarchyCycleError(["a", "b", "a"])
    assert err.cycle == ["a", "b", "a"]
    assert "a -> b -> a" in str(err)
    assert (err.record, err.field, err.record_id) == ("Account", "parent_id", "a")


def test_missing_dependency_error_says_what_to_install() -> None:
    err = MissingDependencyError("pandas", "pandas", "to_pandas()")
    assert (err.package, err.extra) == ("pandas", "pandas")
    assert "to_pandas() needs pandas" in str(err)
    assert "pip install 'crmkit[pandas]'" in str(err)


def test_storage_error_chains_the_cause() -> None:
    original = OSError("disk full")

    def write() -> None:
        try:
            raise original
        except OSError as err:
            raise StorageError("could not write") from err

    with pytest.raises(StorageError) as info:
        write()
    assert info.value.__cause__ is original


# -- clocks -------------------------------------------------------------------------------


def test_fixed_clock_stands_still_until_moved() -> None:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    clock = FixedClock(start)
    assert clock.now() == start
    assert clock.now() == start
    assert clock.advance(hours=2) == start + timedelta(hours=2)
    assert clock.advance(timedelta(days=1), minutes=30) == start + timedelta(
        days=1, hours=2, minutes=30
    )
    assert clock.now() == start + timedelta(days=1, hours=2, minutes=30)
    later = datetime(2026, 3, 1, tzinfo=ZoneInfo("Europe/Paris"))
    assert clock.set(later) == later
    assert clock.now() == later
    assert isinstance(clock, Clock)
    assert "2026-03-01" in repr(clock)


def test_fixed_clock_refuses_naive_datetimes() -> None:
    with pytest.raises(ValidationError):
        FixedClock(datetime(2026, 1, 5, 9, 0))
    clock = FixedClock(datetime(2026, 1, 5, tzinfo=UTC))
    with pytest.raises(ValidationError):
        clock.set(datetime(2026, 1, 6))
    with pytest.raises(ValidationError):
        FixedClock("2026-01-05")  # type: ignore[arg-type]
    assert clock.now() == datetime(2026, 1, 5, tzinfo=UTC)


def test_system_clock_is_aware_utc_and_moves_forward() -> None:
    clock = SystemClock()
    first = clock.now()
    second = clock.now()
    assert first.tzinfo is not None
    assert first.utcoffset() == timedelta(0)
    assert second >= first
    assert abs(first - datetime.now(UTC)) < timedelta(minutes=1)
    assert isinstance(clock, Clock)
