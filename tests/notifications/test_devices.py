"""Push devices through the API: register, refresh, move between users, remove, logout, refusals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from notifications.devices.models import Device
from notifications.devices.service import MAX_ACTIVE_DEVICES
from notifications.quiet_hours.models import NotificationSettings
from tests import factories, races
from tests.problems import EN, assert_problem

API = "/api/v1"
TOKEN = "fcm-token:APA91bH" + "x" * 140


def body(token: str = TOKEN, **overrides: Any) -> dict[str, Any]:
    return {"token": token, "platform": "android", "app_version": "2.3.1", "locale": "zh-CN", **overrides}


def register(client: Any, headers: dict[str, str], **overrides: Any) -> Any:
    return client.post(f"{API}/me/devices", json=body(**overrides), headers=headers)


def devices_of(user: User) -> list[Device]:
    return list(db.session.scalars(sa.select(Device).where(Device.user_id == user.id).order_by(Device.id)))


def all_devices() -> list[Device]:
    return list(db.session.scalars(sa.select(Device).order_by(Device.id)))


def test_registering_a_new_token_then_refreshing_it(client, user, headers) -> None:
    first = register(client, headers)
    assert first.status_code == 201, first.get_json()
    shown = first.get_json()
    assert shown["platform"] == "android" and shown["channel"] == "fcm"
    assert shown["app_version"] == "2.3.1" and shown["locale"] == "zh-CN"
    assert shown["active"] is True and shown["stale"] is False
    assert shown["token_tail"] == TOKEN[-6:] and "token" not in shown

    again = register(client, headers, app_version="2.4.0", platform="harmonyos")
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["id"] == shown["id"]
    [device] = devices_of(user)
    assert (device.app_version, device.platform, device.active) == ("2.4.0", "harmonyos", True)
    assert device.refreshed_at > device.registered_at

    listed = client.get(f"{API}/me/devices", headers=headers).get_json()
    assert [item["id"] for item in listed["items"]] == [device.id]
    assert listed["next_cursor"] is None


def test_one_user_may_have_several_devices(client, user, headers) -> None:
    for n in range(3):
        assert register(client, headers, token=f"{TOKEN}-{n}").status_code == 201
    listed = client.get(f"{API}/me/devices?limit=2", headers=headers).get_json()
    assert len(listed["items"]) == 2 and listed["next_cursor"]
    rest = client.get(f"{API}/me/devices?limit=2&cursor={listed['next_cursor']}", headers=headers).get_json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert len(devices_of(user)) == 3


def test_a_token_that_reappears_under_another_user_moves_to_that_user(client, tree, user, headers) -> None:
    assert register(client, headers).status_code == 201
    [device] = devices_of(user)
    other = factories.make_user("organiser", tree.community_a)

    moved = register(client, factories.headers_for(other))

    assert moved.status_code == 201, moved.get_json()  # new for this user
    assert moved.get_json()["id"] == device.id  # one row per token: the row moved
    assert devices_of(user) == []
    [now_theirs] = devices_of(other)
    assert now_theirs.active and now_theirs.registered_at == now_theirs.refreshed_at
    assert client.get(f"{API}/me/devices", headers=headers).get_json()["items"] == []


def test_too_many_devices_retire_the_least_recently_refreshed(client, user, headers) -> None:
    for n in range(MAX_ACTIVE_DEVICES + 1):
        assert register(client, headers, token=f"{TOKEN}-{n}").status_code == 201
    devices = devices_of(user)
    assert [d.active for d in devices] == [False] + [True] * MAX_ACTIVE_DEVICES
    assert devices[0].deactivation_reason == "superseded"
    assert len(client.get(f"{API}/me/devices", headers=headers).get_json()["items"]) == MAX_ACTIVE_DEVICES


def test_a_device_not_refreshed_for_two_months_shows_as_stale(client, app: Flask, user, headers) -> None:
    register(client, headers)
    [device] = devices_of(user)
    device.refreshed_at = utcnow() - timedelta(days=app.config["DEVICE_STALE_DAYS"] + 1)
    db.session.flush()
    [shown] = client.get(f"{API}/me/devices", headers=headers).get_json()["items"]
    assert shown["stale"] is True
    register(client, headers)  # the app starts again: fresh
    [shown] = client.get(f"{API}/me/devices", headers=headers).get_json()["items"]
    assert shown["stale"] is False


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"token": ""}, "token"),
        ({"token": "   "}, "token"),
        ({"token": "has space"}, "token"),
        ({"token": "line\nbreak"}, "token"),
        ({"token": "令牌"}, "token"),
        ({"token": None}, "token"),
        ({"token": 12345}, "token"),
        ({"platform": "windows"}, "platform"),
        ({"platform": None}, "platform"),
        ({"channel": "apns"}, "channel"),
        ({"channel": "huawei"}, "channel"),
        ({"locale": "not a locale"}, "locale"),
        ({"app_version": "v" * 33}, "app_version"),
        ({"app_version": "2.0\x00"}, "app_version"),
        ({"owner": 1}, "owner"),
    ],
)
def test_bad_registrations_are_refused_and_write_nothing(client, headers, overrides, field) -> None:
    response = register(client, {**headers, **EN}, **overrides)
    problem = assert_problem(response, 422, "validation_failed")
    assert field in problem["errors"]
    assert all_devices() == []


def test_missing_token_or_platform_is_refused(client, headers) -> None:
    for missing in ("token", "platform"):
        payload = body()
        del payload[missing]
        problem = assert_problem(
            client.post(f"{API}/me/devices", json=payload, headers=headers), 422, "validation_failed"
        )
        assert missing in problem["errors"]
    assert all_devices() == []


def test_oversized_tokens_are_refused_at_the_configured_limit(client, app: Flask, headers) -> None:
    limit = app.config["DEVICE_TOKEN_MAX_LENGTH"]
    problem = assert_problem(register(client, headers, token="t" * (limit + 1)), 422, "validation_failed")
    assert problem["errors"]["token"] == [f"长度不能超过 {limit}。"]  # Chinese by default
    assert all_devices() == []
    assert register(client, headers, token="t" * limit).status_code == 201


def test_registering_needs_a_login(client) -> None:
    assert_problem(client.post(f"{API}/me/devices", json=body()), 401, "unauthorized")
    assert_problem(client.get(f"{API}/me/devices"), 401, "unauthorized")
    assert all_devices() == []


def test_a_retried_registration_replays_and_a_reused_key_is_refused(client, user, headers) -> None:
    keyed = {**headers, "Idempotency-Key": "register-1"}
    first = register(client, keyed)
    replay = register(client, keyed)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    assert_problem(register(client, keyed, token=TOKEN + "-other"), 409, "idempotency_key_reused")
    assert len(devices_of(user)) == 1


# --- removing -----------------------------------------------------------------------------------


def test_removing_a_device_stops_its_pushes_and_again_is_fine(client, user, headers) -> None:
    device_id = register(client, headers).get_json()["id"]

    assert client.delete(f"{API}/me/devices/{device_id}", headers=headers).status_code == 204
    [device] = devices_of(user)
    assert (device.active, device.deactivation_reason) == (False, "logout") and device.deactivated_at
    assert client.get(f"{API}/me/devices", headers=headers).get_json()["items"] == []
    assert client.delete(f"{API}/me/devices/{device_id}", headers=headers).status_code == 204

    # The app starts again and registers the same token: active again.
    assert register(client, headers).status_code == 200
    assert devices_of(user)[0].active is True


def test_another_users_device_is_not_found_and_stays(client, tree, user, headers) -> None:
    device_id = register(client, headers).get_json()["id"]
    stranger = factories.headers_for(factories.make_volunteer(tree.grid_a).user, **EN)

    assert_problem(client.delete(f"{API}/me/devices/{device_id}", headers=stranger), 404, "device_not_found")
    assert_problem(client.delete(f"{API}/me/devices/{device_id + 1000}", headers=stranger), 404, "device_not_found")
    assert_problem(client.delete(f"{API}/me/devices/99999999999", headers=stranger), 404, "not_found")
    assert devices_of(user)[0].active is True


def test_unregistering_by_token_at_logout(client, tree, user, headers) -> None:
    register(client, headers)
    stranger = factories.headers_for(factories.make_volunteer(tree.grid_a).user)
    unregister = f"{API}/me/devices/unregister"

    # Someone else's token: nothing happens and nothing is revealed.
    assert client.post(unregister, json={"token": TOKEN}, headers=stranger).get_json() == {"removed": False}
    assert devices_of(user)[0].active is True

    assert client.post(unregister, json={"token": TOKEN}, headers=headers).get_json() == {"removed": True}
    assert devices_of(user)[0].active is False
    assert client.post(unregister, json={"token": TOKEN}, headers=headers).get_json() == {"removed": False}
    assert_problem(client.post(unregister, json={"token": ""}, headers=headers), 422, "validation_failed")
    assert_problem(client.post(unregister, json={}, headers=headers), 422, "validation_failed")


# --- logins ending ------------------------------------------------------------------------------


def test_the_last_login_ending_stops_every_device(client, user) -> None:
    only_login = {"Authorization": f"Bearer {factories.token_for(user)}"}
    register(client, only_login)
    register(client, only_login, token=TOKEN + "-tablet")

    assert client.post(f"{API}/auth/logout", headers=only_login).status_code == 204

    assert [(d.active, d.deactivation_reason) for d in devices_of(user)] == [(False, "logout")] * 2


def test_logging_out_on_one_device_keeps_the_others_while_a_login_lives(client, user) -> None:
    phone = {"Authorization": f"Bearer {factories.token_for(user)}"}
    desktop = {"Authorization": f"Bearer {factories.token_for(user)}"}
    register(client, phone)

    assert client.post(f"{API}/auth/logout", headers=desktop).status_code == 204
    assert devices_of(user)[0].active is True

    assert client.post(f"{API}/auth/logout", headers=phone).status_code == 204
    assert devices_of(user)[0].active is False


def test_a_password_change_ends_every_login_and_every_device(client, user) -> None:
    login = {"Authorization": f"Bearer {factories.token_for(user)}"}
    register(client, login)
    factories.token_for(user)  # another live login elsewhere
    changed = client.post(
        f"{API}/me/password",
        json={"current_password": factories.DEFAULT_PASSWORD, "new_password": "Another-2026-pw"},
        headers=login,
    )
    assert changed.status_code == 204, changed.get_json()
    assert devices_of(user)[0].active is False


# --- at the same time (real commits on separate connections) -------------------------------------


def _at_once(app: Flask, calls: list[tuple[str, str, dict[str, Any], dict[str, str]]]) -> list[int]:
    """Send each (method, path, json, headers) at once; the statuses."""
    return [response.status_code for response in races.at_once(app, calls)]


@pytest.mark.committing
def test_one_token_registered_by_two_users_at_once_ends_with_one_of_them(app: Flask) -> None:
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        users = [factories.make_user("organiser", city) for _ in range(2)]
        headers = [factories.headers_for(user) for user in users]
        user_ids = [user.id for user in users]
        db.session.commit()
        db.session.remove()

    statuses = _at_once(app, [("POST", f"{API}/me/devices", body(), headers[i % 2]) for i in range(4)])

    assert set(statuses) <= {200, 201} and 201 in statuses
    with app.app_context():
        [device] = db.session.scalars(sa.select(Device)).all()
        assert device.active and device.user_id in user_ids
        db.session.remove()


@pytest.mark.committing
def test_quiet_hours_set_twice_at_once_keep_one_of_the_two(app: Flask) -> None:
    with app.app_context():
        user = factories.make_user("organiser", factories.make_area(AreaLevel.CITY))
        headers, user_id = factories.headers_for(user), user.id
        db.session.commit()
        db.session.remove()
    choices = [{"quiet_hours_enabled": True, "quiet_start": f"2{i}:00", "quiet_end": "06:00"} for i in range(4)]

    statuses = _at_once(app, [("PUT", f"{API}/me/notification-settings", c, headers) for c in choices])

    assert statuses == [200] * 4
    with app.app_context():
        [stored] = db.session.scalars(sa.select(NotificationSettings)).all()
        assert stored.user_id == user_id and stored.quiet_start_minute in {20 * 60, 21 * 60, 22 * 60, 23 * 60}
        db.session.remove()
