"""Quiet hours: when a non-urgent push may go out, in the user's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from notifications.quiet_hours import in_quiet_hours, parse_hhmm, push_due_at

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = (22 * 60, 7 * 60)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "now, expected",
    [
        ("2026-11-25T13:59:00", "2026-11-25T13:59:00"),  # 21:59 local: not quiet yet
        ("2026-11-25T14:00:00", "2026-11-25T23:00:00"),  # 22:00 local: held until 07:00 next day
        ("2026-11-25T16:30:00", "2026-11-25T23:00:00"),  # 00:30 local: held until 07:00 that day
        ("2026-11-25T22:59:00", "2026-11-25T23:00:00"),  # 06:59 local
        ("2026-11-25T23:00:00", "2026-11-25T23:00:00"),  # 07:00 local: free again
    ],
)
def test_non_urgent_pushes_wait_for_the_end_of_quiet_hours(now: str, expected: str) -> None:
    assert push_due_at(utc(now), SHANGHAI, *NIGHT, urgent=False) == utc(expected)


def test_urgent_or_disabled_go_at_once() -> None:
    at_midnight = utc("2026-11-25T16:00:00")
    assert push_due_at(at_midnight, SHANGHAI, *NIGHT, urgent=True) == at_midnight
    assert push_due_at(at_midnight, SHANGHAI, *NIGHT, urgent=False, enabled=False) == at_midnight


def test_quiet_hours_within_one_day_and_empty() -> None:
    assert in_quiet_hours(13 * 60, 12 * 60, 14 * 60) and not in_quiet_hours(14 * 60, 12 * 60, 14 * 60)
    assert not any(in_quiet_hours(minute, 600, 600) for minute in range(0, 1440, 30))
    lunch = push_due_at(utc("2026-11-25T04:30:00"), SHANGHAI, 12 * 60, 14 * 60, urgent=False)
    assert lunch == utc("2026-11-25T06:00:00")


def test_wall_clock_end_across_a_daylight_saving_change() -> None:
    # New York falls back on 2026-11-01: 07:00 local is 12:00 UTC that day (EST), 11:00 the day before.
    new_york = ZoneInfo("America/New_York")
    assert push_due_at(utc("2026-11-01T04:00:00"), new_york, *NIGHT, urgent=False) == utc("2026-11-01T12:00:00")
    assert push_due_at(utc("2026-10-31T04:00:00"), new_york, *NIGHT, urgent=False) == utc("2026-10-31T11:00:00")


@pytest.mark.parametrize("text, minutes", [("00:00", 0), ("07:30", 450), ("23:59", 1439)])
def test_parse_hhmm(text: str, minutes: int) -> None:
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize("text", ["24:00", "7:30", "07:30:00", "ab:cd", ""])
def test_parse_hhmm_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(text)
