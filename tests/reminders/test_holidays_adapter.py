"""country_holidays: the optional adapter for the ``holidays`` package.

Expectations are written by hand (fixed-date holidays, the US "observed" rule, Easter from
the Gregorian computus), never read back from the package or from crmkit.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import CrmError, MissingDependencyError, ValidationError
from crmkit.reminders import BusinessCalendar, country_holidays

NEW_YORK = ZoneInfo("America/New_York")
NINE_TO_FIVE = {d: (time(9), time(17)) for d in range(5)}


def _package() -> None:
    pytest.importorskip("holidays")


def _observed(day: date) -> date:
    """US federal rule: a Saturday holiday is observed on Friday, a Sunday one on Monday."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous "Meeus/Jones/Butcher" computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month = (h + m - 7 * n + 114) // 31
    return date(year, month, (h + m - 7 * n + 114) % 31 + 1)


# -- without the package ----------------------------------------------------------------


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "holidays", None)  # makes `import holidays` fail
    with pytest.raises(MissingDependencyError) as caught:
        country_holidays("US", 2026)
    assert caught.value.package == "holidays"
    assert caught.value.extra == "holidays"
    assert "pip install 'crmkit[holidays]'" in str(caught.value)
    assert "country_holidays()" in str(caught.value)
    assert isinstance(caught.value, ImportError)  # `except ImportError` still works


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"country": 5, "years": 2026}, "country", 5),
        ({"country": "  ", "years": 2026}, "country", "  "),
        ({"country": "US", "years": 2026, "subdiv": 7}, "subdiv", 7),
        ({"country": "US", "years": []}, "years", []),
        ({"country": "US", "years": "2026"}, "years", "2026"),
        ({"country": "US", "years": True}, "years", True),
        ({"country": "US", "years": [2026, 0]}, "years", 0),
        ({"country": "US", "years": 2026.0}, "years", 2026.0),
    ],
)
def test_bad_arguments_are_refused_before_the_import(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], field: str, value: object
) -> None:
    monkeypatch.setitem(sys.modules, "holidays", None)  # the arguments are checked first
    with pytest.raises(ValidationError) as caught:
        country_holidays(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert caught.value.value == value
    assert repr(value) in str(caught.value)


# -- with the package ----------------------------------------------------------------------


@settings(max_examples=40)
@given(year=st.integers(1978, 2099))  # Veterans Day is back on Nov 11 from 1978
def test_us_fixed_date_holidays_and_their_observed_days(year: int) -> None:
    _package()
    days = country_holidays("US", year)
    for month, day in [(1, 1), (7, 4), (11, 11), (12, 25)]:
        assert date(year, month, day) in days
    for month, day in [(7, 4), (12, 25)]:
        assert _observed(date(year, month, day)) in days
    assert all(isinstance(d, date) and not isinstance(d, datetime) for d in days)
    assert all(abs(d.year - year) <= 1 for d in days)


@settings(max_examples=30)
@given(year=st.integers(1990, 2099))
def test_france_fixed_dates_and_easter_monday(year: int) -> None:
    _package()
    days = country_holidays("FR", year)
    for month, day in [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]:
        assert date(year, month, day) in days
    easter = _easter(year)
    assert easter + timedelta(days=1) in days  # Easter Monday
    assert easter + timedelta(days=39) in days  # Ascension
    assert date(year, 12, 26) not in days  # no Boxing Day outside Alsace-Moselle
    assert date(year, 7, 13) not in days  # France does not move holidays


def test_several_years_are_the_union_of_single_years() -> None:
    _package()
    assert country_holidays("FR", range(2025, 2028)) == (
        country_holidays("FR", 2025) | country_holidays("FR", 2026) | country_holidays("FR", 2027)
    )
    assert country_holidays("FR", [2027, 2025, 2027]) == (
        country_holidays("FR", 2025) | country_holidays("FR", 2027)
    )


def test_country_code_is_case_insensitive_and_subdivisions_add_days() -> None:
    _package()
    assert country_holidays("us", 2026) == country_holidays("US", 2026)
    california = country_holidays("US", 2026, subdiv="CA")
    assert date(2026, 3, 31) in california  # Cesar Chavez Day, a California holiday
    assert date(2026, 3, 31) not in country_holidays("US", 2026)
    assert date(2026, 12, 25) in california


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"country": "XX"}, "country", "XX"),
        ({"country": "Narnia"}, "country", "Narnia"),
        ({"country": "US", "subdiv": "ZZ"}, "subdiv", "ZZ"),
        ({"country": "FR", "subdiv": "Texas"}, "subdiv", "Texas"),
    ],
)
def test_unknown_codes_raise_a_validation_error_not_the_package_error(
    kwargs: dict[str, str], field: str, value: str
) -> None:
    _package()
    with pytest.raises(CrmError) as caught:
        country_holidays(years=2026, **kwargs)
    assert isinstance(caught.value, ValidationError)
    assert not isinstance(caught.value, NotImplementedError)
    assert caught.value.field == field
    assert caught.value.value == value
    assert repr(value) in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


# -- in a business calendar -------------------------------------------------------------


def _ny(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=NEW_YORK)


def test_business_time_skips_independence_day_and_christmas() -> None:
    _package()
    cal = BusinessCalendar("America/New_York", NINE_TO_FIVE, country_holidays("US", 2026))
    # July 4 2026 is a Saturday: observed Friday July 3. Thursday 16:00 + 2h -> Monday 10:00.
    assert not cal.is_open(_ny(2026, 7, 3, 12))
    assert cal.add_business_time(_ny(2026, 7, 2, 16), hours=2) == _ny(2026, 7, 6, 10)
    assert cal.add_business_time(_ny(2026, 7, 2, 16), days=1) == _ny(2026, 7, 6, 16)
    # Christmas 2026 is a Friday, in EST (UTC-5) rather than July's EDT (UTC-4).
    assert cal.add_business_time(_ny(2026, 12, 24, 16), hours=2) == _ny(2026, 12, 28, 10)
    assert cal.add_business_time(_ny(2026, 12, 24, 16), hours=2).utcoffset() == timedelta(0)
    assert cal.add_business_time(_ny(2026, 12, 24, 16), hours=2).hour == 15  # 10:00 EST
    assert cal.business_time_between(_ny(2026, 7, 2, 9), _ny(2026, 7, 6, 17)) == timedelta(
        hours=16
    )
    assert cal.next_open(_ny(2026, 7, 3, 8)) == _ny(2026, 7, 6, 9)
    # The same calendar without holidays: Friday is a normal day.
    plain = BusinessCalendar("America/New_York", NINE_TO_FIVE)
    assert plain.add_business_time(_ny(2026, 7, 2, 16), hours=2) == _ny(2026, 7, 3, 10)


@settings(max_examples=40)
@given(
    start=st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 20)),
    minutes=st.integers(1, 40 * 60),
)
def test_added_business_time_never_ends_on_a_holiday(start: datetime, minutes: int) -> None:
    _package()
    days = country_holidays("US", [2026, 2027])
    cal = BusinessCalendar("America/New_York", NINE_TO_FIVE, days)
    begin = start.replace(tzinfo=UTC)
    end = cal.add_business_time(begin, hours=minutes / 60)
    local = end.astimezone(NEW_YORK)
    assert local.date() not in days
    assert local.weekday() < 5
    assert time(9) < local.time() <= time(17)
    assert cal.business_time_between(begin, end) == timedelta(minutes=minutes)
