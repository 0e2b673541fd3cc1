"""Honor Push (channel ``honor``) through the outbox, against tests/push_servers/honor.py."""

from __future__ import annotations

import json

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from core.db import utcnow
from core.errors import Forbidden, Unauthorized
from notifications.delivery import receipts
from notifications.delivery.service import deliver_due
from notifications.delivery.vendors import honor as honor_vendor
from notifications.models import PushStatus
from tests.notifications.vendors.conftest import device, register, status
from tests.notifications.vendors.conftest import make_recipient as volunteer
from tests.notifications.vendors.conftest import notify_now as notify
from tests.push_servers.base import INVALID
from tests.push_servers.honor import FakeHonor


def test_the_message_on_the_wire(client: FlaskClient, honor: FakeHonor) -> None:
    user = volunteer()
    token = register(client, user, "honor")
    note = notify(user, title="集合", body="七点到岗", urgent=True)

    deliver_due(now=utcnow())

    assert status(note) == PushStatus.SENT
    (sent,) = honor.sent_to(token)
    assert "message" not in sent and sent["token"] == [token]
    assert json.loads(sent["data"]) == {"type": "broadcast", "broadcast_id": "7", "notification_id": str(note.id)}
    android = sent["android"]
    assert (android["ttl"], android["targetUserType"]) == ("86400s", 0)
    assert android["notification"]["importance"] == "NORMAL"  # service (and Honor's highest)
    assert android["notification"]["title"] == "集合" and android["notification"]["body"] == "七点到岗"
    assert f"notifications/{note.id}#Intent" in android["notification"]["clickAction"]["intent"]
    assert receipts.verified_reference("honor", android["biTag"]) == note.id


def test_a_kind_nobody_classified_goes_as_marketing(
    client: FlaskClient, app: Flask, honor: FakeHonor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PUSH_CATEGORIES", json.dumps({"honor": {"broadcast": "LOW"}}))
    user = volunteer()
    token = register(client, user, "honor")
    notify(user)

    deliver_due(now=utcnow())

    assert honor.sent_to(token)[0]["android"]["notification"]["importance"] == "LOW"


def test_a_token_close_to_its_expiry_is_refreshed_before_it_is_refused(client: FlaskClient, honor: FakeHonor) -> None:
    users = [volunteer() for _ in range(3)]
    for user in users:
        register(client, user, "honor")
        notify(user)
    deliver_due(now=utcnow())
    assert honor.token_fetches == 1  # one token for the whole batch

    honor.token_lifetime = 100
    honor.expire_tokens()  # the next token is short-lived: refreshed at each use, never refused
    for user in users:
        notify(user)
        deliver_due(now=utcnow())
    assert honor.token_fetches == 4 and honor.token_refusals == 1


def test_an_expired_device_token_deactivates_its_device(client: FlaskClient, honor: FakeHonor) -> None:
    user = volunteer()
    dead, alive = register(client, user, "honor"), register(client, user, "honor")
    honor.script(dead, INVALID)  # listed in data.expireTokens
    note = notify(user)

    deliver_due(now=utcnow())

    assert status(note) == PushStatus.SENT
    assert device(dead).active is False and device(alive).active is True


# --- receipts (unconfirmed protocol: refused unless HONOR_RECEIPTS) ---------------------------------


def check(app: Flask, statuses: object) -> list[receipts.Receipt]:
    body = json.dumps({"statuses": statuses})
    with app.test_request_context(
        "/api/v1/push-receipts/honor", method="POST", data=body, content_type="application/json"
    ):
        honor_vendor.RECEIPTS.verify(request)  # type: ignore[union-attr]
        return honor_vendor.RECEIPTS.parse(request)  # type: ignore[union-attr]


def test_receipts_are_refused_while_honor_receipts_is_off(app: Flask) -> None:
    with app.app_context():
        items = [{"biTag": receipts.signed_reference("honor", 5), "status": 0}]
    with pytest.raises(Unauthorized):
        check(app, items)


def test_with_honor_receipts_on_a_receipt_carrying_our_reference_is_read(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "HONOR_RECEIPTS", True)
    with app.app_context():
        items = [{"biTag": receipts.signed_reference("honor", 5), "token": "t", "status": 0},
                 {"biTag": receipts.signed_reference("honor", 6), "token": "u", "status": 2}]  # fmt: skip
    found = check(app, items)
    assert [(r.notification_id, r.delivered) for r in found] == [(5, True), (6, False)]


@pytest.mark.parametrize("forgery", ["bare-id", "other-channel", "one-bad-item", "no-items"])
def test_with_honor_receipts_on_a_forged_reference_is_refused(
    app: Flask, monkeypatch: pytest.MonkeyPatch, forgery: str
) -> None:
    monkeypatch.setitem(app.config, "HONOR_RECEIPTS", True)
    with app.app_context():
        good = {"biTag": receipts.signed_reference("honor", 5), "status": 0}
        items = {
            "bare-id": [{"biTag": "5", "status": 0}],
            "other-channel": [{"biTag": receipts.signed_reference("hms", 5), "status": 0}],
            "one-bad-item": [good, {"biTag": "6.0000", "status": 0}],
            "no-items": [],
        }[forgery]
    with pytest.raises(Forbidden):
        check(app, items)
