"""RRULE recurrence expanded in wall-clock time (python-dateutil), then localised.

A rule is expanded over *naive* wall-clock times in the reminder's zone, so "every day at
09:00" stays at 09:00 across DST changes. Each wall time becomes an instant with
:func:`~crmkit.reminders._calendar.localize`: a time in a DST gap moves forward by the gap,
a repeated (folded) time takes its first occurrence. The next occurrence is always computed
from the rule's nominal wall times, so one shifted occurrence never drags the series.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmkit.errors import ValidationError
from crmkit.reminders._calendar import localize

__all__ = ["next_wall", "occurrences", "parse_rule"]


def parse_rule(text: str, start: datetime, *, record_id: str | None = None) -> Any:
    """``text`` (``"FREQ=WEEKLY;BYDAY=MO"``, optionally prefixed ``RRULE:``) as a dateutil
    rule starting at the naive wall time ``start``; a bad rule is a ``ValidationError``."""
    from dateutil.rrule import rrulestr

    if not isinstance(text, str) or not text.strip():
        raise ValidationError("Reminder", "rrule", text, "must be an RRULE string")
    body = text.strip()
    if "DTSTART" in body.upper():
        raise ValidationError(
            "Reminder",
            "rrule",
            text,
            "must not carry DTSTART: the reminder's due time is the start",
            record_id=record_id,
        )
    try:
        return rrulestr(body, dtstart=start.replace(tzinfo=None))
    except (ValueError, TypeError) as err:
        raise ValidationError(
            "Reminder",
            "rrule",
            text,
            f"is not a valid RRULE ({err}); write e.g. 'FREQ=WEEKLY;BYDAY=MO,WE'",
            record_id=record_id,
        ) from None


def next_wall(text: str, start: datetime, after: datetime) -> datetime | None:
    """The first nominal wall time of the rule strictly after the wall time ``after``."""
    rule = parse_rule(text, start)
    found: datetime | None = rule.after(after.replace(tzinfo=None), inc=False)
    return found


def occurrences(text: str, start: datetime, timezone: str, *, count: int = 10) -> list[datetime]:
    """The first ``count`` occurrences from the naive wall time ``start`` as UTC instants.

    Examples
    --------
    >>> nine = datetime(2026, 3, 6, 9, 0)   # daily 09:00 New York across the DST change
    >>> [d.strftime("%d %H:%M") for d in occurrences("FREQ=DAILY", nine,
    ...                                                 "America/New_York", count=4)]
    ['06 14:00', '07 14:00', '08 13:00', '09 13:00']
    """
    rule = parse_rule(text, start)
    result: list[datetime] = []
    for wall in rule:
        if len(result) >= count:
            break
        result.append(localize(wall, timezone))
    return result
