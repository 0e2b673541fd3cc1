"""The inbox, quiet hours and city reminder settings through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from accounts.models import User
from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from notifications import service, settings
from notifications.models import CityReminderSettings, Notification, NotificationSettings
from tests import factories
from tests.conftest import Tree
from tests.problems import EN, assert_problem

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def send(user: User, n: int, **kwargs: Any) -> None:
    """``n`` broadcast-style notifications to ``user``, oldest first."""
    for i in range(n):
        service.notify([user.id], "broadcast", {"title": f"标题{i}", "body": f"内容{i}"}, {"n": i}, **kwargs)


def rows_of(user: User) -> list[Notification]:
    return list(db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)))


@pytest.fixture
def user(tree: Tree) -> User:
    return factories.make_volunteer(tree.grid_a).user


@pytest.fixture
def headers(user: User) -> dict[str, str]:
    return factories.headers_for(user)


# --- the inbox -----------------------------------------------------------------------------------


def test_the_inbox_lists_newest_first_with_cursor_pages(client, user, headers) -> None:
    send(user, 5)
    first = client.get(f"{API}/me/notifications?limit=3", headers=headers)
    assert first.status_code == 200, first.get_json()
    page = first.get_json()
    assert [item["title"] for item in page["items"]] == ["标题4", "标题3", "标题2"]
    item = page["items"][0]
    assert set(item) == {"id", "kind", "title", "body", "data", "urgent", "created_at", "read_at", "push_status", "pushed_at"}
    assert item["kind"] == "broadcast" and item["body"] == "内容4"
    assert item["data"] == {"type": "broadcast", "n": "4"}
    assert item["urgent"] is False and item["read_at"] is None
    assert item["push_status"] in {"pending", "sent", "failed", "no_device"}
    rest = client.get(f"{API}/me/notifications?limit=3&cursor={page['next_cursor']}", headers=headers).get_json()
    assert [item["title"] for item in rest["items"]] == ["标题1", "标题0"] and rest["next_cursor"] is None


def test_each_user_sees_only_their_own(client, tree, user, headers) -> None:
    other = factories.make_volunteer(tree.grid_a).user
    send(user, 1)
    send(other, 2)
    assert len(client.get(f"{API}/me/notifications", headers=headers).get_json()["items"]) == 1
    assert client.get(f"{API}/me/notifications/unread-count", headers=headers).get_json() == {"unread": 1}


def test_marking_one_read_and_the_unread_filter(client, user, headers) -> None:
    send(user, 3)
    oldest, middle, newest = rows_of(user)
    assert client.get(f"{API}/me/notifications/unread-count", headers=headers).get_json() == {"unread": 3}

    marked = client.post(f"{API}/me/notifications/{middle.id}/read", headers=headers)
    assert marked.status_code == 200, marked.get_json()
    first_read_at = marked.get_json()["read_at"]
    assert first_read_at is not None
    again = client.post(f"{API}/me/notifications/{middle.id}/read", headers=headers).get_json()
    assert again["read_at"] == first_read_at  # the first time is kept

    assert client.get(f"{API}/me/notifications/unread-count", headers=headers).get_json() == {"unread": 2}
    unread = client.get(f"{API}/me/notifications?unread_only=true", headers=headers).get_json()
    assert [item["id"] for item in unread["items"]] == [newest.id, oldest.id]
    everything = client.get(f"{API}/me/notifications?unread_only=false", headers=headers).get_json()
    assert len(everything["items"]) == 3


def test_another_users_notification_is_not_found_and_stays_unread(client, tree, user) -> None:
    send(user, 1)
    [mine] = rows_of(user)
    stranger = factories.headers_for(factories.make_volunteer(tree.grid_a).user, **EN)

    assert_problem(client.post(f"{API}/me/notifications/{mine.id}/read", headers=stranger), 404, "notification_not_found")
    assert_problem(client.post(f"{API}/me/notifications/{mine.id + 999}/read", headers=stranger), 404, "notification_not_found")
    assert_problem(client.post(f"{API}/me/notifications/99999999999/read", headers=stranger), 404, "not_found")
    assert client.post(f"{API}/me/notifications/read-all", json={}, headers=stranger).get_json() == {"marked": 0}
    db.session.refresh(mine)
    assert mine.read_at is None


def test_read_all_marks_everything_or_up_to_the_newest_seen(client, tree, user, headers) -> None:
    send(user, 3)
    oldest, middle, newest = rows_of(user)
    other = factories.make_volunteer(tree.grid_a).user
    send(other, 1)

    up_to = client.post(f"{API}/me/notifications/read-all", json={"up_to_id": middle.id}, headers=headers)
    assert up_to.status_code == 200, up_to.get_json()
    assert up_to.get_json() == {"marked": 2}
    assert [row.read_at is not None for row in rows_of(user)] == [True, True, False]

    # No body at all is "everything".
    assert client.post(f"{API}/me/notifications/read-all", headers=headers).get_json() == {"marked": 1}
    assert client.get(f"{API}/me/notifications/unread-count", headers=headers).get_json() == {"unread": 0}
    assert rows_of(other)[0].read_at is None


@pytest.mark.parametrize(
    "query, field",
    [("limit=0", "limit"), ("limit=101", "limit"), ("cursor=nonsense", "cursor"), ("unread_only=perhaps", "unread_only")],
)
def test_bad_inbox_queries_are_refused(client, headers, query, field) -> None:
    problem = assert_problem(client.get(f"{API}/me/notifications?{query}", headers=headers), 422, "validation_failed")
    assert field in problem["errors"]


def test_read_all_refuses_a_bad_bound_and_marks_nothing(client, user, headers) -> None:
    send(user, 1)
    for bound in (0, -1, "x", 2**40):
        response = client.post(f"{API}/me/notifications/read-all", json={"up_to_id": bound}, headers=headers)
        assert_problem(response, 422, "validation_failed")
    assert rows_of(user)[0].read_at is None


def test_the_inbox_needs_a_login(client) -> None:
    for path in ("/me/notifications", "/me/notifications/unread-count", "/me/notification-settings"):
        assert_problem(client.get(API + path), 401, "unauthorized")
    assert_problem(client.post(f"{API}/me/notifications/read-all"), 401, "unauthorized")


def test_notify_is_once_per_user_and_dedupe_key(user, tree) -> None:
    other = factories.make_volunteer(tree.grid_a).user
    assert service.notify([user.id, other.id, user.id], "volunteer_approved", {}, {"volunteer_id": 1}, dedupe_key="k") == 2
    assert service.notify([user.id, other.id], "volunteer_approved", {}, {"volunteer_id": 1}, dedupe_key="k") == 0
    assert service.notify([user.id], "volunteer_approved", {}, {"volunteer_id": 1}) == 1  # no key: again
    assert len(rows_of(user)) == 2 and len(rows_of(other)) == 1


def test_deactivated_accounts_get_nothing(user) -> None:
    user.is_active = False
    db.session.flush()
    assert service.notify([user.id, 10**6], "volunteer_approved", {}, {}) == 0
    assert rows_of(user) == []


# --- quiet hours settings -----------------------------------------------------------------------


def test_quiet_hours_default_then_set_then_shown(client, app, user, headers) -> None:
    default = client.get(f"{API}/me/notification-settings", headers=headers).get_json()
    assert default == {
        "quiet_hours_enabled": True, "quiet_start": app.config["QUIET_HOURS_START"],
        "quiet_end": app.config["QUIET_HOURS_END"], "timezone": "Asia/Shanghai",
        "is_default": True, "updated_at": None,
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
    night_grid = factories.make_area(AreaLevel.GRID, tree.community_a, boundary=factories.square(109.86, 40.65), timezone=zone)
    volunteer = factories.make_volunteer(night_grid)

    assign(client, organiser, factories.make_shift(tree.grid_a, starts_in=timedelta(days=2)), volunteer)

    [row] = rows_of(volunteer.user)
    local = row.push_due_at.astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (7, 0)  # QUIET_HOURS_END, there
    assert timedelta(hours=3) < row.push_due_at - row.created_at <= timedelta(hours=5)


def test_quiet_hours_switched_off_or_a_shift_too_soon_push_at_once(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    zone = _zone_where_it_is_now_2am()
    night_grid = factories.make_area(AreaLevel.GRID, tree.community_a, boundary=factories.square(109.86, 40.65), timezone=zone)
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
    assert service.due_at_for_users([user.id, 10**6], now, False) == {user.id: datetime(2026, 11, 25, 23, 0, tzinfo=UTC)}
    assert service.due_at_for_users([user.id], now, True) == {user.id: now}


# --- city reminder settings ---------------------------------------------------------------------


def reminder_url(area: Any) -> str:
    return f"{API}/areas/{area.id}/reminder-settings"


def test_a_city_admin_sets_the_reminders_and_managers_of_the_city_read_them(client, app, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    default = client.get(reminder_url(tree.city), headers=factories.headers_for(admin)).get_json()
    assert default == {
        "area_id": tree.city.id, "offsets_minutes": sorted(app.config["REMINDER_OFFSETS_MINUTES"], reverse=True),
        "is_default": True, "updated_by": None, "updated_at": None,
    }

    put = client.put(reminder_url(tree.city), json={"offsets_minutes": [60, 2880, 15]}, headers=factories.headers_for(admin))
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["offsets_minutes"] == [2880, 60, 15]
    assert put.get_json()["is_default"] is False and put.get_json()["updated_by"] == admin.id
    assert db.session.get(CityReminderSettings, tree.city.id).offsets_minutes == [2880, 60, 15]
    assert settings.reminder_offsets(tree.city.id) == [2880, 60, 15]
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "notifications.reminder_settings")).one()
    assert entry.before == {"offsets_minutes": [1440, 60]} and entry.after == {"offsets_minutes": [2880, 60, 15]}

    for reader in (
        factories.make_user("organiser", tree.community_a),
        factories.make_user("staff", tree.district_a),
        factories.make_user("staff", tree.city),
    ):
        shown = client.get(reminder_url(tree.city), headers=factories.headers_for(reader))
        assert shown.status_code == 200 and shown.get_json()["offsets_minutes"] == [2880, 60, 15]

    city_staff = factories.make_user("staff", tree.city)
    again = client.put(reminder_url(tree.city), json={"offsets_minutes": [30]}, headers=factories.headers_for(city_staff))
    assert again.status_code == 200 and again.get_json()["offsets_minutes"] == [30]


@pytest.mark.parametrize(
    "offsets",
    [[], [60, 1440, 30, 15, 5], [4], [10081], [60, 60], ["60"], [60.5], [True], None, "60", [-60]],
)
def test_bad_reminder_offsets_are_refused_and_nothing_is_saved(client, tree, offsets) -> None:
    admin = factories.make_user("admin", tree.city)
    response = client.put(reminder_url(tree.city), json={"offsets_minutes": offsets}, headers=factories.headers_for(admin, **EN))
    problem = assert_problem(response, 422, "validation_failed")
    assert "offsets_minutes" in problem["errors"]
    assert db.session.get(CityReminderSettings, tree.city.id) is None


def test_reminder_settings_refusals(client, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    other_city = factories.make_area(AreaLevel.CITY, name="乌海市")
    other_admin = factories.make_user("admin", other_city)
    body = {"offsets_minutes": [120]}
    as_ = factories.headers_for

    assert_problem(client.put(reminder_url(tree.district_a), json=body, headers=as_(admin)), 404, "not_a_city")
    assert_problem(client.get(reminder_url(tree.grid_a), headers=as_(admin)), 404, "not_a_city")
    assert_problem(client.get(f"{API}/areas/99999999/reminder-settings", headers=as_(admin)), 404, "area_not_found")
    assert_problem(client.put(reminder_url(tree.city), json=body, headers=as_(other_admin)), 403, "out_of_scope")
    assert_problem(client.get(reminder_url(tree.city), headers=as_(other_admin)), 403, "out_of_scope")
    district_staff = factories.make_user("staff", tree.district_a)
    assert_problem(client.put(reminder_url(tree.city), json=body, headers=as_(district_staff)), 403, "out_of_scope")
    organiser = factories.make_user("organiser", tree.community_a)
    assert_problem(client.put(reminder_url(tree.city), json=body, headers=as_(organiser)), 403, "forbidden")
    volunteer = factories.make_volunteer(tree.grid_a).user
    assert_problem(client.get(reminder_url(tree.city), headers=as_(volunteer)), 403, "forbidden")
    assert_problem(client.put(reminder_url(tree.city), json=body), 401, "unauthorized")
    assert db.session.get(CityReminderSettings, tree.city.id) is None
