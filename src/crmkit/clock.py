"""Clocks: crmkit never reads the wall clock behind your back; you inject one.

>>> from datetime import datetime, timedelta, timezone
>>> clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
>>> clock.now().isoformat()
'2026-01-05T09:00:00+00:00'
>>> clock.advance(hours=2).isoformat()
'2026-01-05T11:00:00+00:00'
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from crmkit.errors import ValidationError

__all__ = ["Clock", "FixedClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything with a ``now()`` returning a timezone-aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that only moves when told to: for tests and reproducible runs."""

    def __init__(self, now: datetime) -> None:
        self._now = _aware(now)

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> datetime:
        """Jump to ``now`` and return it."""
        self._now = _aware(now)
        return self._now

    def advance(
        self,
        delta: timedelta | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
    ) -> datetime:
        """Move forward by ``delta`` (or the keyword amounts) and return the new time."""
        step = (delta or timedelta()) + timedelta(
            days=days, hours=hours, minutes=minutes, seconds=seconds
        )
        self._now = self._now + step
        return self._now

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()!r})"


def _aware(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            "FixedClock", "now", value, "must be a timezone-aware datetime (add tzinfo=...)"
        )
    return value
