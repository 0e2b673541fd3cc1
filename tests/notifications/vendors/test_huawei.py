"""Huawei Push Kit (channel ``hms``) through the outbox, against tests/push_servers/huawei.py.

A phone registers its Huawei token through the API, the app writes notifications, delivery runs as
the worker runs it (``deliver_due``); the fake server checks the OAuth token, the body and answers
in Huawei's words.
"""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from core.db import utcnow
from core.errors import Forbidden, Unauthorized
from core.extensions import db
from notifications.delivery import receipts
from notifications.delivery.models import PushReceipt
from notifications.delivery.push import providers
from notifications.delivery.service import deliver_due
from notifications.delivery.vendors import huawei
from notifications.models import PushStatus
from tests.notifications.vendors.conftest import device, register, status
from tests.notifications.vendors.conftest import make_recipient as volunteer
from tests.notifications.vendors.conftest import notify_now as notify
from tests.push_servers.base import INVALID
from tests.push_servers.huawei import FakeHuawei


def test_the_message_on_the_wire(client: FlaskClient, hms: FakeHuawei) -> None:
    user = volunteer()
    token = register(client, user, "hms")
    note = notify(user, title="集合", body="七点到岗")

    deliver_due(now=utcnow())

    assert status(note) == PushStatus.SENT
    (sent,) = hms.sent_to(token)
    message = sent["message"]
    assert sent["validate_only"] is False and message["token"] == [token]
    assert json.loads(message["data"]) == {"type": "broadcast", "broadcast_id": "7", "notification_id": str(note.id)}
    android = message["android"]
    assert (android["category"], android["urgency"], android["ttl"]) == ("WORK", "NORMAL", "86400s")
    assert android["notification"]["title"] == "集合" and android["notification"]["body"] == "七点到岗"
    assert android["notification"]["importance"] == "NORMAL"
    click = android["notification"]["click_action"]
    assert click["type"] == 1 and f"notifications/{note.id}#Intent" in click["intent"]
    assert receipts.verified_reference("hms", android["bi_tag"]) == note.id


def test_an_urgent_message_goes_at_high_urgency(client: FlaskClient, hms: FakeHuawei) -> None:
    user = volunteer()
    token = register(client, user, "hms")
    notify(user, urgent=True)

    deliver_due(now=utcnow())

    (sent,) = hms.sent_to(token)
    assert sent["message"]["android"]["urgency"] == "HIGH"


def test_the_category_table_is_overridden_per_deployment(
    client: FlaskClient, app: Flask, hms: FakeHuawei, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PUSH_CATEGORIES", json.dumps({"hms": {"broadcast": "MARKETING"}}))
    user = volunteer()
    token = register(client, user, "hms")
    notify(user)

    deliver_due(now=utcnow())

    (sent,) = hms.sent_to(token)
    assert sent["message"]["android"]["category"] == "MARKETING"
    assert sent["message"]["android"]["notification"]["importance"] == "LOW"


def test_the_access_token_is_fetched_once_and_reused(client: FlaskClient, hms: FakeHuawei) -> None:
    users = [volunteer() for _ in range(3)]
    tokens = [register(client, user, "hms") for user in users]
    for user in users:
        notify(user)
        deliver_due(now=utcnow())

    assert hms.delivered_tokens() == dict.fromkeys(tokens, 1)
    assert hms.token_fetches == 1


def test_a_token_close_to_its_expiry_is_refreshed_before_it_is_refused(client: FlaskClient, hms: FakeHuawei) -> None:
    hms.token_lifetime = 200  # inside the refresh margin (300 s): each use finds it about to expire
    users = [volunteer() for _ in range(3)]
    for user in users:
        register(client, user, "hms")
        notify(user)
        deliver_due(now=utcnow())

    assert hms.token_fetches == 3
    assert hms.token_refusals == 0  # never sent with a token the server had let expire


def test_an_invalid_token_deactivates_its_device_and_the_other_is_reached(client: FlaskClient, hms: FakeHuawei) -> None:
    user = volunteer()
    dead, alive = register(client, user, "hms"), register(client, user, "hms")
    hms.script(dead, INVALID)  # partial success: 80100000 with illegal_tokens
    note = notify(user)

    deliver_due(now=utcnow())

    assert status(note) == PushStatus.SENT
    assert device(dead).active is False and device(alive).active is True
    assert hms.delivered(alive) == 1 and hms.delivered(dead) == 0


def test_all_tokens_invalid_deactivates_the_device(client: FlaskClient, hms: FakeHuawei) -> None:
    user = volunteer()
    dead = register(client, user, "hms")
    hms.script(dead, INVALID)  # 80300007
    notify(user)

    deliver_due(now=utcnow())

    assert device(dead).active is False


def test_a_probe_checks_without_delivering(app: Flask, hms: FakeHuawei) -> None:
    with app.app_context():
        provider = providers(app)["hms"]
        assert provider.probe() is True
        hms.go_down()
        assert provider.probe() is False
    assert hms.probes == 1 and not hms.delivered_tokens()


# --- receipts (the handler the receipts endpoint calls) -------------------------------------------


def check(app: Flask, body: bytes, headers: dict[str, str]) -> list[receipts.Receipt]:
    with app.test_request_context("/api/v1/push-receipts/hms", method="POST", data=body, headers=headers):
        from flask import request

        huawei.RECEIPTS.verify(request)  # type: ignore[union-attr]
        return huawei.RECEIPTS.parse(request)  # type: ignore[union-attr]


def test_a_genuine_receipt_is_read(app: Flask, hms: FakeHuawei) -> None:
    with app.app_context():
        delivered = receipts.signed_reference("hms", 41)
        failed = receipts.signed_reference("hms", 42)
    body, headers = hms.receipt_request(
        [{"biTag": delivered, "token": "t1", "status": 0, "timestamp": 1489993883189},
         {"biTag": failed, "token": "t2", "status": 5}, {"biTag": "41", "token": "t3", "status": 0}]
    )  # fmt: skip

    found = check(app, body, headers)

    assert [(r.notification_id, r.token, r.delivered, r.status) for r in found] == [
        (41, "t1", True, "0"),
        (42, "t2", False, "5"),
    ]  # fmt: skip  (an item naming no signed reference of ours is left out)


@pytest.mark.parametrize("forgery", ["unsigned", "wrong-secret", "other-user", "stale"])
def test_a_forged_or_unsigned_receipt_is_refused(app: Flask, hms: FakeHuawei, forgery: str) -> None:
    with app.app_context():
        items = [{"biTag": receipts.signed_reference("hms", 41), "token": "t1", "status": 0}]
    signing: dict[str, object] = {
        "unsigned": {"signed": False}, "wrong-secret": {"secret": "guess"}, "other-user": {"username": "mallory"},
        "stale": {"timestamp_ms": int((time.time() - 3600) * 1000)},
    }[forgery]  # fmt: skip
    body, headers = hms.receipt_request(items, **signing)  # type: ignore[arg-type]

    with pytest.raises(Unauthorized if forgery == "unsigned" else Forbidden):
        check(app, body, headers)


def test_without_a_receipt_secret_receipts_are_refused(
    app: Flask, hms: FakeHuawei, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "HMS_RECEIPT_SECRET", None)
    body, headers = hms.receipt_request([{"biTag": "1.x", "status": 0}])
    with pytest.raises(Unauthorized):
        check(app, body, headers)


# --- receipts through the endpoint ------------------------------------------------------------------


def receipt_rows() -> list[tuple[int, str | None, str]]:
    db.session.expire_all()
    rows = db.session.scalars(sa.select(PushReceipt).order_by(PushReceipt.id)).all()
    return [(r.notification_id, r.channel, str(r.status)) for r in rows]


def test_a_genuine_receipt_is_recorded_through_the_endpoint(client: FlaskClient, hms: FakeHuawei) -> None:
    user = volunteer()
    token = register(client, user, "hms")
    note = notify(user)
    deliver_due(now=utcnow())
    (sent,) = hms.sent_to(token)
    body, headers = hms.receipt_request([{"biTag": sent["message"]["android"]["bi_tag"], "token": token, "status": 0}])

    answer = client.post("/api/v1/push-receipts/hms", data=body, headers=headers)

    assert answer.status_code < 300, answer.get_json()
    assert [(n, c) for n, c, _ in receipt_rows()] == [(note.id, "hms")]


@pytest.mark.parametrize("forgery", ["unsigned", "wrong-secret"])
def test_a_forged_receipt_is_refused_by_the_endpoint_and_records_nothing(
    client: FlaskClient, hms: FakeHuawei, forgery: str
) -> None:
    user = volunteer()
    token = register(client, user, "hms")
    note = notify(user)
    with client.application.app_context():
        reference = receipts.signed_reference("hms", note.id)
    signing = {"signed": False} if forgery == "unsigned" else {"secret": "guess"}
    body, headers = hms.receipt_request([{"biTag": reference, "token": token, "status": 0}], **signing)  # type: ignore[arg-type]

    answer = client.post("/api/v1/push-receipts/hms", data=body, headers=headers)

    assert answer.status_code == (401 if forgery == "unsigned" else 403)
    assert receipt_rows() == []
