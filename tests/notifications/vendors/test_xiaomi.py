"""Xiaomi MiPush (channel ``mi``) through the outbox, against tests/push_servers/xiaomi.py.

Devices are registered through the API with ``channel: mi``; the provider is the real one, pointed
at the local server by XIAOMI_ENDPOINT. The clock is passed in, so retries are tested without waiting.
"""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from notifications.delivery.push import providers
from notifications.delivery.receipts import verified_reference
from notifications.delivery.service import deliver_due
from notifications.delivery.vendors import xiaomi
from notifications.devices.models import Device
from notifications.models import Notification, PushStatus, PushWait
from tests import factories
from tests.notifications.test_delivery import fresh, make_notification, make_recipient
from tests.notifications.vendors.conftest import MI_PACKAGE, MI_SECRET
from tests.push_servers.xiaomi import (
    ALL_INVALID,
    BAD_PAYLOAD,
    INVALID,
    OK,
    QUOTA,
    UNAVAILABLE,
    FakeMiPush,
    rate_limited,
)

_regids = itertools.count(1)


def register(client: FlaskClient, user: User, token: str | None = None) -> Device:
    """The phone registers its MiPush regid, as the app does."""
    token = token or f"mi-regid-{next(_regids)}-{user.id}"
    response = client.post(
        "/api/v1/me/devices", json={"token": token, "platform": "android", "channel": "mi"},
        headers=factories.headers_for(user),
    )  # fmt: skip
    assert response.status_code in (200, 201), response.get_json()
    device = db.session.scalar(sa.select(Device).where(Device.id == response.get_json()["id"]))
    assert device is not None and device.channel == "mi"
    return device


def payload(form: dict[str, str]) -> dict[str, str]:
    return json.loads(urllib.parse.unquote(form["payload"]))


# --- the message on the wire ------------------------------------------------------------------------


def test_a_notification_goes_to_mipush_as_a_private_service_message(client: FlaskClient, mi: FakeMiPush) -> None:
    now = utcnow()
    user = make_recipient()
    phone, tablet = register(client, user), register(client, user)
    note = make_notification(user, now, kind="shift_reminder", shift_id="5")

    stats = deliver_due(now=now)

    assert (stats.claimed, stats.messages, stats.sent) == (1, 2, 1)
    assert fresh(Notification, note.id).push_status == PushStatus.SENT
    assert mi.delivered(phone.token) == mi.delivered(tablet.token) == 1
    [form] = mi.forms  # one call: the same content to both regids
    assert sorted(form["registration_id"].split(",")) == sorted([phone.token, tablet.token])
    assert form["restricted_package_name"] == MI_PACKAGE and form["pass_through"] == "0"
    assert (form["title"], form["description"]) == ("新的排班", "您被安排在明晚的巡逻")
    assert payload(form) == {"type": "shift_reminder", "shift_id": "5", "notification_id": str(note.id)}
    assert form["extra.channel_id"] == xiaomi.SERVICE_CHANNEL
    assert "extra.template_id" not in form
    assert form["notify_type"] == "3" and form["notify_id"] == str(note.id)
    assert form["time_to_live"] == str(86400 * 1000)
    assert form["extra.notify_effect"] == "1"
    assert form["extra.callback"] == "https://shouwang.example/api/v1/push-receipts/mi"
    assert form["extra.callback.type"] == "1201"
    assert verified_reference("mi", form["extra.callback.param"]) == note.id
    assert len(form["extra.callback.param"].encode()) <= 64  # MiPush's limit on callback.param


def test_urgent_call_outs_ring_on_the_urgent_channel_and_long_texts_are_clipped(
    client: FlaskClient, mi: FakeMiPush
) -> None:
    now = utcnow()
    user = make_recipient()
    register(client, user)
    note = make_notification(user, now, urgent=True, kind="sos_alert")
    note.title, note.body = "紧" * 80, "急" * 300
    db.session.flush()

    deliver_due(now=now)

    [form] = mi.forms
    assert form["notify_type"] == "-1" and form["extra.notify_foreground"] == "1"
    assert form["extra.channel_id"] == xiaomi.URGENT_CHANNEL
    assert len(form["title"]) == 49 and form["title"].endswith("…")
    assert len(form["description"]) == 127


def test_a_deployment_maps_kinds_to_its_own_channel_and_template(
    app: Flask, client: FlaskClient, mi: FakeMiPush, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PUSH_CATEGORIES", json.dumps({"mi": {"shift_reminder": "108:T2001"}}))
    monkeypatch.setitem(app.config, "XIAOMI_INTENT_URI", "shouwang://inbox")
    now = utcnow()
    user = make_recipient()
    register(client, user)
    make_notification(user, now, kind="shift_reminder")
    make_notification(user, now, kind="newsletter")  # a kind nobody mapped: not a service message

    deliver_due(now=now)

    by_type = {payload(form)["type"]: form for form in mi.forms}
    reminder = by_type["shift_reminder"]
    assert (reminder["extra.channel_id"], reminder["extra.template_id"]) == ("108", "T2001")
    assert json.loads(reminder["extra.template_param"]) == {"title": "新的排班", "body": "您被安排在明晚的巡逻"}
    assert (reminder["extra.notify_effect"], reminder["extra.intent_uri"]) == ("2", "shouwang://inbox")
    assert by_type["newsletter"]["extra.channel_id"] == "shouwang_public"


def test_there_is_no_token_step_the_secret_is_read_once_for_every_thread(
    app: Flask, client: FlaskClient, mi: FakeMiPush
) -> None:
    now = utcnow()
    user = make_recipient()
    register(client, user)
    notes = [make_notification(user, now) for _ in range(8)]
    db.session.flush()
    provider = providers(app)["mi"]
    messages = [xiaomi.PushMessage(f"r{n.id}", "t", "b", {"type": "x", "notification_id": str(n.id)}) for n in notes]
    barrier = threading.Barrier(8)
    answers: list[str] = []

    def send(i: int) -> None:
        with app.app_context():  # as each of a worker's threads runs
            barrier.wait()
            answers.append(provider.send([messages[i]])[0].outcome)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["ok"] * 8
    assert isinstance(provider, xiaomi.XiaomiProvider)
    assert provider.tokens.refreshes == 1
    assert mi.token_fetches == 0 and mi.auth_refusals == 0 and mi.calls == 8


# --- answers --------------------------------------------------------------------------------------------


def test_dead_regids_deactivate_their_devices_and_the_others_get_it(client: FlaskClient, mi: FakeMiPush) -> None:
    now = utcnow()
    user, other = make_recipient(), make_recipient()
    live, dead = register(client, user), register(client, user)
    lone = register(client, other)
    mi.script(dead.token, INVALID)
    mi.script(lone.token, ALL_INVALID)
    make_notification(user, now)
    make_notification(other, now)

    stats = deliver_due(now=now)

    assert stats.deactivated == 2
    assert fresh(Device, live.id).active and not fresh(Device, dead.id).active
    assert not fresh(Device, lone.id).active
    assert mi.delivered(live.token) == 1 and mi.delivered(dead.token) == 0


def test_one_failing_call_of_a_batch_retries_only_its_own_row(client: FlaskClient, mi: FakeMiPush) -> None:
    now = utcnow()
    users = [make_recipient() for _ in range(6)]
    devices = [register(client, user) for user in users]
    notes = [make_notification(user, now) for user in users]
    mi.script(devices[2].token, UNAVAILABLE)  # calls go out several at once (XIAOMI_CONCURRENCY)

    stats = deliver_due(now=now)

    assert (stats.sent, stats.retrying) == (5, 1)
    assert fresh(Notification, notes[2].id).push_status == PushStatus.PENDING
    assert [mi.delivered(d.token) for d in devices] == [1, 1, 0, 1, 1, 1]


def test_a_refused_secret_is_a_configuration_error_never_a_dead_device(
    app: Flask, client: FlaskClient, mi: FakeMiPush, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    user = make_recipient()
    device = register(client, user)
    note = make_notification(user, now)
    monkeypatch.setitem(app.config, "XIAOMI_APP_SECRET", "wrong")

    deliver_due(now=now)

    row = fresh(Notification, note.id)
    assert row.push_status == PushStatus.PENDING and fresh(Device, device.id).active
    assert mi.auth_refusals == 1 and mi.delivered(device.token) == 0
    monkeypatch.setitem(app.config, "XIAOMI_APP_SECRET", MI_SECRET)  # the operator fixes it
    deliver_due(now=row.push_due_at)
    assert fresh(Notification, note.id).push_status == PushStatus.SENT and mi.delivered(device.token) == 1


def test_a_refused_payload_fails_the_row_without_retrying(client: FlaskClient, mi: FakeMiPush) -> None:
    now = utcnow()
    user = make_recipient()
    device = register(client, user)
    mi.script(device.token, BAD_PAYLOAD)
    note = make_notification(user, now)

    deliver_due(now=now)

    assert fresh(Notification, note.id).push_status == PushStatus.FAILED
    assert fresh(Device, device.id).active and mi.hits[device.token] == 1


def test_a_rate_limit_holds_the_row_for_the_wait_mipush_gives(client: FlaskClient, mi: FakeMiPush) -> None:
    now = utcnow()
    user = make_recipient()
    device = register(client, user)
    mi.script(device.token, rate_limited(900), OK)
    note = make_notification(user, now)

    deliver_due(now=now)

    row = fresh(Notification, note.id)
    assert row.push_status == PushStatus.PENDING and row.push_wait == PushWait.RETRY_AFTER
    assert row.push_due_at == now + timedelta(seconds=900)
    assert deliver_due(now=now + timedelta(seconds=899)).claimed == 0
    deliver_due(now=now + timedelta(seconds=900))
    assert fresh(Notification, note.id).push_status == PushStatus.SENT and mi.delivered(device.token) == 1


def test_the_daily_cap_holds_the_rest_until_the_reset_then_urgent_first(
    app: Flask, client: FlaskClient, mi: FakeMiPush, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    users = [make_recipient() for _ in range(3)]
    devices = [register(client, user) for user in users]
    mi.default = QUOTA
    plain = make_notification(users[0], now)
    urgent = make_notification(users[1], now, urgent=True, kind="sos_alert")  # written after, sent first

    deliver_due(now=now)

    held = [fresh(Notification, plain.id), fresh(Notification, urgent.id)]
    assert {(row.push_status, row.push_wait) for row in held} == {(PushStatus.PENDING, PushWait.QUOTA)}
    reset = max(row.push_due_at for row in held)
    assert reset > now
    mi.default = OK
    monkeypatch.setitem(app.config, "PUSH_DAILY_CAP_MI", 1)  # the new day has room for one: the urgent one
    deliver_due(now=reset)
    assert fresh(Notification, urgent.id).push_status == PushStatus.SENT
    assert fresh(Notification, plain.id).push_wait == PushWait.QUOTA
    assert [payload(form)["notification_id"] for form in mi.forms] == [str(urgent.id)]
    deliver_due(now=fresh(Notification, plain.id).push_due_at)  # the day after
    assert fresh(Notification, plain.id).push_status == PushStatus.SENT
    assert [mi.delivered(device.token) for device in devices] == [1, 1, 0]
