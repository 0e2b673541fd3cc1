"""Quiet hours: when a non-urgent push may go out, in the user's own time zone (no database here)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_MINUTES = 24 * 60


def parse_hhmm(value: str) -> int:
    """Minutes after midnight of "HH:MM" (00:00–23:59); ValueError otherwise."""
    parsed = time.fromisoformat(value)
    if len(value) != 5 or parsed.second or parsed.microsecond:
        raise ValueError(f"not HH:MM: {value!r}")
    return parsed.hour * 60 + parsed.minute


def in_quiet_hours(minute_of_day: int, start: int, end: int) -> bool:
    """Whether a local minute of the day falls in [start, end); start > end spans midnight."""
    if start == end:
        return False
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


def push_due_at(now: datetime, tz: ZoneInfo, start: int, end: int, *, urgent: bool, enabled: bool = True) -> datetime:
    """When a push written ``now`` may be sent: now, or (non-urgent, in quiet hours) their end.

    ``now`` is aware (UTC); the result is aware UTC. The end is the next local wall-clock ``end``
    after ``now``; on a day whose clocks change it is still that wall-clock time.
    """
    if urgent or not enabled:
        return now
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if not in_quiet_hours(minute, start, end):
        return now
    wake = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0, tzinfo=None)
    if minute >= end:
        wake += timedelta(days=1)
    return wake.replace(tzinfo=tz).astimezone(now.tzinfo)
