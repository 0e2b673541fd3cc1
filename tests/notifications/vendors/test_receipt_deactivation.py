"""Receipts that say a token is dead deactivate the device the push went to (issue 18), through
``POST /api/v1/push-receipts/{channel}`` in each vendor's own receipt format, after a real send to
its local server: the next broadcast skips the device; a device registered again after the send,
a forged receipt, a delivery or a failure the phone recovers from keep it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from accounts.models import User
from core.extensions import db
from notifications.delivery.models import PushReceipt
from notifications.delivery.receipts import signed_reference
from notifications.devices.models import Device
from notifications.models import Notification, PushStatus
from notifications.service import notify
from tests import factories
from tests.fcm_server import FakeFcm
from tests.notifications.test_delivery import fcm  # noqa: F401 (fixture)
from tests.notifications.vendors.conftest import deliver, make_recipient
from tests.push_servers.xiaomi import receipt_form

API = "/api/v1"
FORGED_MAC = "0" * 32


@dataclass
class Vendor:
    """One vendor's server (started by its fixture) and how it posts a receipt."""

    channel: str
    server: Any
    post: Callable[..., TestResponse]

    def sent(self, token: str) -> int:
        return len(self.server.sent_to(token))


def _reference(channel: str, note_id: int, forged: bool) -> str:
    return f"{note_id}.{FORGED_MAC}" if forged else signed_reference(channel, note_id)


def _millis() -> int:
    return int(time.time() * 1000)


def _start(name: str, request: pytest.FixtureRequest, client: FlaskClient) -> Vendor:
    """The vendor's server started, the app pointed at it, and its receipt poster: ``post(note_id,
    token, status, forged=False)``, ``token`` None for a receipt that names no target."""
    app = client.application
    monkeypatch = request.getfixturevalue("monkeypatch")
    url = f"{API}/push-receipts/{name}"
    if name == "hms":
        server = request.getfixturevalue("hms")

        def post_hms(note_id: int, token: str | None, status: Any, forged: bool = False) -> TestResponse:
            item = {"biTag": signed_reference("hms", note_id), "token": token, "status": status, "timestamp": _millis()}
            body, headers = server.receipt_request([item], **({"secret": "a guess"} if forged else {}))
            return client.post(url, data=body, headers=headers)

        return Vendor(name, server, post_hms)
    if name == "honor":
        server = request.getfixturevalue("honor")
        monkeypatch.setitem(app.config, "HONOR_RECEIPTS", True)

        def post_honor(note_id: int, token: str | None, status: Any, forged: bool = False) -> TestResponse:
            item = {"biTag": _reference("honor", note_id, forged), "token": token, "status": status}
            return client.post(url, json={"statuses": [item]})

        return Vendor(name, server, post_honor)
    if name == "mi":
        server = request.getfixturevalue("mi")

        def post_mi(note_id: int, token: str | None, status: Any, forged: bool = False) -> TestResponse:
            item = {"param": _reference("mi", note_id, forged), "type": status, "targets": token or "", "timestamp": _millis()}
            return client.post(url, data=receipt_form({"msg1": item}))

        return Vendor(name, server, post_mi)
    # OPPO and vivo, in the shapes their documents give (docs/push-vendors.md)
    fixture = request.getfixturevalue(name)
    monkeypatch.setitem(app.config, "OPPO_RECEIPT_URL", f"https://sw.example{url}")
    monkeypatch.setitem(app.config, "VIVO_RECEIPT_ID", "1234")

    def post_ov(note_id: int, token: str | None, status: Any, forged: bool = False) -> TestResponse:
        param = _reference(name, note_id, forged)
        if name == "oppo":
            item = {"messageId": "m1", "appId": "app", "taskId": "m1", "registrationIds": token or "",
                    "eventTime": str(_millis()), "eventType": status, "param": param}  # fmt: skip
            return client.post(url, json=[item])
        return client.post(url, json={"t1": {"param": param, "targets": token or "", "ackTime": _millis(), "ackType": status}})

    return Vendor(name, fixture.server, post_ov)


def register(client: FlaskClient, user: User, channel: str, token: str, installation_id: str | None = None) -> Device:
    body = {"token": token, "platform": "android", "channel": channel, "installation_id": installation_id}
    answer = client.post(f"{API}/me/devices", json=body, headers=factories.headers_for(user))
    assert answer.status_code in (200, 201), answer.get_json()
    return device(token)


def device(token: str) -> Device:
    db.session.expire_all()
    return db.session.scalars(sa.select(Device).where(Device.token == token)).one()


def broadcast(user: User) -> Notification:
    """A broadcast written as the app writes one, then delivered as the worker delivers it."""
    assert notify([user.id], "broadcast", {"title": "今晚巡逻", "body": "请按时到达集合点"}, {"broadcast_id": "7"}) == 1
    db.session.flush()
    note = db.session.scalars(
        sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id.desc())
    ).first()
    assert note is not None
    return note


def pushed(note: Notification) -> Notification:
    db.session.expire_all()
    row = db.session.get(Notification, note.id)
    assert row is not None and row.push_status == PushStatus.SENT and row.pushed_at is not None
    return row


def pushed_to(note: Notification) -> list[int]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Notification.push_device_ids).where(Notification.id == note.id)).one())


def receipts() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(PushReceipt)) or 0


# Each vendor's receipt codes that mean the token is dead (docs/push-vendors.md; Honor's taken as Huawei's).
DEAD = [("hms", 2), ("hms", 5), ("honor", 2), ("mi", 16), ("oppo", "regid_invalid")]
# A delivery, or a failure the phone recovers from without a new token: the device is kept. vivo's
# ackType values are unconfirmed, so no vivo receipt deactivates anything.
KEPT = [
    ("hms", 0), ("hms", 6), ("hms", 10), ("hms", 201), ("honor", 0), ("mi", 1), ("mi", 32), ("mi", 128),
    ("oppo", "push_arrive"), ("oppo", "user_daily_limit"), ("vivo", "0"), ("vivo", "1"), ("vivo", "2"),
]  # fmt: skip


def _token(channel: str, n: int) -> str:
    return f"R{channel:>4}{n:06d}{'x' * 12}".replace(" ", "0")  # 23 characters: fits every vendor


@pytest.mark.parametrize(("channel", "status"), DEAD, ids=[f"{c}-{s}" for c, s in DEAD])
def test_a_dead_token_receipt_deactivates_the_device_and_the_next_broadcast_skips_it(
    request: pytest.FixtureRequest, client: FlaskClient, channel: str, status: Any
) -> None:
    vendor = _start(channel, request, client)
    user = make_recipient()
    dead, other = register(client, user, channel, _token(channel, 1)), register(client, user, channel, _token(channel, 2))
    note = broadcast(user)
    deliver()
    assert sorted(pushed(note).push_device_ids) == sorted([dead.id, other.id])

    answer = vendor.post(note.id, dead.token, status)

    assert answer.status_code == 200, answer.get_json()
    gone = device(dead.token)
    assert (gone.active, gone.deactivation_reason) == (False, "receipt") and gone.deactivated_at is not None
    assert device(other.token).active is True
    # The vendor posts it again: nothing changes.
    first_deactivated_at = gone.deactivated_at
    assert vendor.post(note.id, dead.token, status).status_code == 200
    assert device(dead.token).deactivated_at == first_deactivated_at
    # The next broadcast goes to the other phone only.
    broadcast(user)
    deliver()
    assert (vendor.sent(dead.token), vendor.sent(other.token)) == (1, 2)


@pytest.mark.parametrize(("channel", "status"), DEAD, ids=[f"{c}-{s}" for c, s in DEAD])
def test_a_token_registered_again_after_the_send_is_kept(
    request: pytest.FixtureRequest, client: FlaskClient, channel: str, status: Any
) -> None:
    vendor = _start(channel, request, client)
    user = make_recipient()
    phone = register(client, user, channel, _token(channel, 3))
    note = broadcast(user)
    deliver()
    pushed(note)
    register(client, user, channel, phone.token)  # the app starts again: its token is alive

    assert vendor.post(note.id, phone.token, status).status_code == 200

    assert device(phone.token).active is True
    broadcast(user)
    deliver()
    assert vendor.sent(phone.token) == 2


@pytest.mark.parametrize("channel", ["hms", "honor", "mi", "oppo", "vivo"])
def test_a_forged_receipt_is_refused_and_the_device_kept(
    request: pytest.FixtureRequest, client: FlaskClient, channel: str
) -> None:
    vendor = _start(channel, request, client)
    user = make_recipient()
    phone = register(client, user, channel, _token(channel, 4))
    note = broadcast(user)
    deliver()
    status = dict(DEAD).get(channel, "0")

    answer = vendor.post(note.id, phone.token, status, forged=True)

    assert answer.status_code in (401, 403), answer.get_json()
    assert device(phone.token).active is True and receipts() == 0


@pytest.mark.parametrize(("channel", "status"), KEPT, ids=[f"{c}-{s}" for c, s in KEPT])
def test_a_delivery_or_a_recoverable_failure_keeps_the_device(
    request: pytest.FixtureRequest, client: FlaskClient, channel: str, status: Any
) -> None:
    vendor = _start(channel, request, client)
    user = make_recipient()
    phone = register(client, user, channel, _token(channel, 5))
    note = broadcast(user)
    deliver()

    answer = vendor.post(note.id, phone.token, status)

    assert answer.status_code == 200 and answer.get_json()["recorded"] == 1, answer.get_json()
    assert device(phone.token).active is True


@pytest.mark.parametrize(("registered_after", "active"), [(timedelta(0), False), (timedelta(microseconds=1), True)])
def test_the_guard_is_the_send_time_exactly(
    request: pytest.FixtureRequest, client: FlaskClient, registered_after: timedelta, active: bool
) -> None:
    vendor = _start("oppo", request, client)
    user = make_recipient()
    phone = register(client, user, "oppo", _token("oppo", 6))
    note = broadcast(user)
    deliver()
    pushed_at: datetime = pushed(note).pushed_at  # type: ignore[assignment]
    # As if the app had registered again exactly when the push went out, or a microsecond after.
    db.session.execute(sa.update(Device).where(Device.id == phone.id).values(refreshed_at=pushed_at + registered_after))
    db.session.commit()

    assert vendor.post(note.id, phone.token, "regid_invalid").status_code == 200

    assert device(phone.token).active is active


@pytest.mark.parametrize("channel", ["mi", "oppo"])
def test_a_receipt_naming_no_token_deactivates_only_the_one_device_it_can_mean(
    request: pytest.FixtureRequest, client: FlaskClient, channel: str
) -> None:
    vendor = _start(channel, request, client)
    status = dict(DEAD)[channel]
    alone, pair = make_recipient(), make_recipient()
    only = register(client, alone, channel, _token(channel, 7))
    first, second = register(client, pair, channel, _token(channel, 8)), register(client, pair, channel, _token(channel, 9))
    to_alone, to_pair = broadcast(alone), broadcast(pair)
    deliver()

    assert vendor.post(to_alone.id, None, status).status_code == 200
    assert vendor.post(to_pair.id, None, status).status_code == 200

    assert device(only.token).active is False
    assert (device(first.token).active, device(second.token).active) == (True, True)  # which one: unknown


def test_a_receipt_for_a_push_not_sent_or_a_device_it_did_not_go_to_keeps_the_devices(
    request: pytest.FixtureRequest, client: FlaskClient
) -> None:
    vendor = _start("mi", request, client)
    user = make_recipient()
    phone = register(client, user, "mi", _token("mi", 10))
    waiting = broadcast(user)  # written, not delivered yet: no send time to judge by
    assert vendor.post(waiting.id, phone.token, 16).status_code == 200
    assert device(phone.token).active is True

    # A phone of the user's the push never went to (not refreshed for too long), registered before
    # the send: the receipt's signed reference is the notification's, not this token's.
    stale = register(client, user, "mi", _token("mi", 11))
    stale_days = int(client.application.config["DEVICE_STALE_DAYS"]) + 1
    db.session.execute(
        sa.update(Device).where(Device.id == stale.id).values(refreshed_at=stale.refreshed_at - timedelta(days=stale_days))
    )
    db.session.commit()
    deliver()
    assert pushed_to(waiting) == [phone.id]
    assert vendor.post(waiting.id, stale.token, 16).status_code == 200
    assert (device(phone.token).active, device(stale.token).active) == (True, True)

    # Reached this phone, but the row is still pending (another phone of the user being retried):
    # when the push went out is not known, so no re-registration can be ruled out.
    db.session.execute(
        sa.update(Notification).where(Notification.id == waiting.id).values(push_status=PushStatus.PENDING, pushed_at=None)
    )
    db.session.commit()
    assert pushed_to(waiting) == [phone.id]
    assert vendor.post(waiting.id, phone.token, 16).status_code == 200
    assert device(phone.token).active is True


def test_a_receipt_on_another_channel_does_not_reach_a_device_of_this_one(
    request: pytest.FixtureRequest, client: FlaskClient
) -> None:
    hms_vendor, mi_vendor = _start("hms", request, client), _start("mi", request, client)
    user = make_recipient()
    huawei_phone = register(client, user, "hms", _token("hms", 12))
    xiaomi_phone = register(client, user, "mi", _token("mi", 12))
    note = broadcast(user)
    deliver()
    assert hms_vendor.sent(huawei_phone.token) == 1 and mi_vendor.sent(xiaomi_phone.token) == 1

    # MiPush's receipt naming the Huawei token: not a token it sent to.
    assert mi_vendor.post(note.id, huawei_phone.token, 16).status_code == 200

    assert (device(huawei_phone.token).active, device(xiaomi_phone.token).active) == (True, True)


def test_after_a_dead_token_receipt_the_phone_gets_its_next_push_through_its_other_token(
    request: pytest.FixtureRequest, client: FlaskClient, fcm: FakeFcm
) -> None:
    vendor = _start("mi", request, client)
    user = make_recipient()
    xiaomi = register(client, user, "mi", _token("mi", 13), installation_id="phone-13")
    google = register(client, user, "fcm", "fcm-token-13", installation_id="phone-13")
    note = broadcast(user)
    deliver()
    assert (vendor.sent(xiaomi.token), fcm.hits) == (1, {})  # one push per phone, the vendor's first

    assert vendor.post(note.id, xiaomi.token, 16).status_code == 200

    broadcast(user)
    deliver()
    assert (vendor.sent(xiaomi.token), fcm.hits) == (1, {google.token: 1})
