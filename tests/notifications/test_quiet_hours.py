"""Quiet hours: when a non-urgent push may go out, in the user's own time zone; a user's own quiet
hours through the API, and notifications written while they hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from notifications import service
from notifications.quiet_hours.models import NotificationSettings
from notifications.quiet_hours.service import in_quiet_hours, parse_hhmm, push_due_at
from tests import factories
from tests.notifications.test_inbox import API, rows_of
from tests.problems import EN, assert_problem

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


# --- quiet hours settings -----------------------------------------------------------------------


def test_quiet_hours_default_then_set_then_shown(client, app, user, headers) -> None:
    default = client.get(f"{API}/me/notification-settings", headers=headers).get_json()
    assert default == {
        "quiet_hours_enabled": True,
        "quiet_start": app.config["QUIET_HOURS_START"],
        "quiet_end": app.config["QUIET_HOURS_END"],
        "timezone": "Asia/Shanghai",
        "is_default": True,
        "updated_at": None,
    }
    changed = client.put(
        f"{API}/me/notification-settings",
        json={"quiet_hours_enabled": True, "quiet_start": "23:30", "quiet_end": "06:15"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.get_json()
    shown = client.get(f"{API}/me/notification-settings", headers=headers).get_json()
    assert (shown["quiet_start"], shown["quiet_end"], shown["is_default"]) == ("23:30", "06:15", False)
    stored = db.session.get(NotificationSettings, user.id)
    assert (stored.quiet_start_minute, stored.quiet_end_minute) == (23 * 60 + 30, 6 * 60 + 15)

    off = client.put(
        f"{API}/me/notification-settings",
        json={"quiet_hours_enabled": False, "quiet_start": "22:00", "quiet_end": "07:00"},
        headers=headers,
    ).get_json()
    assert off["quiet_hours_enabled"] is False


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"quiet_start": "24:00"}, "quiet_start"),
        ({"quiet_start": "7:00"}, "quiet_start"),
        ({"quiet_start": "07:00:00"}, "quiet_start"),
        ({"quiet_end": "noon"}, "quiet_end"),
        ({"quiet_end": 700}, "quiet_end"),
        ({"quiet_start": "07:00", "quiet_end": "07:00"}, "quiet_end"),
        ({"quiet_hours_enabled": "sometimes"}, "quiet_hours_enabled"),
        ({"quiet_hours_enabled": None}, "quiet_hours_enabled"),
        ({"volume": 3}, "volume"),
    ],
)
def test_bad_quiet_hours_are_refused_and_nothing_is_saved(client, user, headers, payload, field) -> None:
    body = {"quiet_hours_enabled": True, "quiet_start": "22:00", "quiet_end": "07:00", **payload}
    response = client.put(f"{API}/me/notification-settings", json=body, headers={**headers, **EN})
    problem = assert_problem(response, 422, "validation_failed")
    assert field in problem["errors"]
    assert db.session.get(NotificationSettings, user.id) is None


def test_quiet_hours_need_every_field(client, user, headers) -> None:
    response = client.put(f"{API}/me/notification-settings", json={"quiet_hours_enabled": False}, headers=headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert {"quiet_start", "quiet_end"} <= set(problem["errors"])


# --- quiet hours applied ------------------------------------------------------------------------


def _window_around_now(zone: ZoneInfo) -> tuple[str, str, datetime]:
    """Quiet hours from an hour ago to two hours ahead (local), and the UTC time they end."""
    local = utcnow().astimezone(zone)
    end = (local + timedelta(hours=2)).replace(second=0, microsecond=0)
    return (local - timedelta(hours=1)).strftime("%H:%M"), end.strftime("%H:%M"), end.astimezone(UTC)


def _zone_where_it_is_now_2am() -> str:
    offset = (2 - utcnow().hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}"  # Etc/GMT-8 is UTC+8


def assign(client: Any, organiser: User, shift: Any, volunteer: Any) -> Any:
    response = client.post(
        f"{API}/shifts/{shift.id}/assign", json={"volunteer_id": volunteer.id}, headers=factories.headers_for(organiser)
    )
    assert response.status_code == 201, response.get_json()
    return response


def test_a_non_urgent_push_waits_for_the_end_of_the_users_quiet_hours(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    volunteer = factories.make_volunteer(tree.grid_a)
    start, end, ends_utc = _window_around_now(SHANGHAI)
    put = client.put(
        f"{API}/me/notification-settings",
        json={"quiet_hours_enabled": True, "quiet_start": start, "quiet_end": end},
        headers=factories.headers_for(volunteer.user),
    )
    assert put.status_code == 200, put.get_json()

    assign(client, organiser, factories.make_shift(tree.grid_a, starts_in=timedelta(days=2)), volunteer)

    [row] = rows_of(volunteer.user)
    assert row.push_due_at == ends_utc and row.urgent is False
    # The inbox has it at once all the same.
    inbox = client.get(f"{API}/me/notifications", headers=factories.headers_for(volunteer.user)).get_json()
    assert [item["kind"] for item in inbox["items"]] == ["assignment_created"]


def test_default_quiet_hours_are_read_in_the_users_area_time_zone(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    zone = _zone_where_it_is_now_2am()
    night_grid = factories.make_area(
        AreaLevel.GRID, tree.community_a, boundary=factories.square(109.86, 40.65), timezone=zone
    )
    volunteer = factories.make_volunteer(night_grid)

    assign(client, organiser, factories.make_shift(tree.grid_a, starts_in=timedelta(days=2)), volunteer)

    [row] = rows_of(volunteer.user)
    local = row.push_due_at.astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (7, 0)  # QUIET_HOURS_END, there
    assert timedelta(hours=3) < row.push_due_at - row.created_at <= timedelta(hours=5)


def test_quiet_hours_switched_off_or_a_shift_too_soon_push_at_once(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    zone = _zone_where_it_is_now_2am()
    night_grid = factories.make_area(
        AreaLevel.GRID, tree.community_a, boundary=factories.square(109.86, 40.65), timezone=zone
    )
    relaxed, pressed = factories.make_volunteer(night_grid), factories.make_volunteer(night_grid)
    client.put(
        f"{API}/me/notification-settings",
        json={"quiet_hours_enabled": False, "quiet_start": "22:00", "quiet_end": "07:00"},
        headers=factories.headers_for(relaxed.user),
    )
    assign(client, organiser, factories.make_shift(tree.grid_a, starts_in=timedelta(days=2)), relaxed)
    # Held until 07:00 the push would come after the shift began: it goes now.
    assign(client, organiser, factories.make_shift(tree.grid_a, starts_in=timedelta(hours=2)), pressed)

    for volunteer in (relaxed, pressed):
        [row] = rows_of(volunteer.user)
        assert row.push_due_at == row.created_at


def test_due_at_for_users_leaves_out_unknown_users(user) -> None:
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    assert service.due_at_for_users([user.id, 10**6], now, False) == {
        user.id: datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    }
    assert service.due_at_for_users([user.id], now, True) == {user.id: now}
