"""Delivery receipts through the API: a handler registered for a test channel proves the frame
(verify before anything, record once, unknown ids ignored, the inbox shows it); the vendors'
own handlers are tested with their fake servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Request

from accounts.models import User
from core.errors import Forbidden, Unauthorized, ValidationFailed
from core.extensions import db
from notifications import service
from notifications.delivery import vendors
from notifications.delivery.models import PushReceipt
from notifications.delivery.receipts import Receipt, signed_reference, verified_reference
from notifications.models import Notification
from tests.problems import assert_problem

API = "/api/v1"
CHANNEL = "testvendor"
SECRET = "s3cret"


class SharedSecretReceipts:
    """A vendor that proves itself with a header secret and echoes our signed references."""

    def verify(self, request: Request) -> None:
        given = request.headers.get("X-Secret")
        if given is None:
            raise Unauthorized("Sign in first.", code="receipt_unsigned")
        if given != SECRET:
            raise Forbidden("You may not do this.", code="receipt_forged")

    def parse(self, request: Request) -> list[Receipt]:
        body = request.get_json(silent=True)
        if not isinstance(body, list):
            raise ValidationFailed(errors={"json": ["Not a list of receipts."]})
        receipts = []
        for item in body:
            notification_id = verified_reference(CHANNEL, item.get("param"))
            if notification_id is None:
                continue  # not a reference of ours: ignored
            receipts.append(Receipt(notification_id, item.get("token"), item["ok"], item["status"]))
        return receipts


@pytest.fixture(autouse=True)
def handler() -> Iterator[None]:
    vendors.register_receipt_handler(CHANNEL, SharedSecretReceipts())
    yield
    vendors.register_receipt_handler(CHANNEL, None)


def notify(user: User) -> int:
    service.notify([user.id], "broadcast", {"title": "集合", "body": "今晚巡逻"}, {})
    db.session.commit()
    return db.session.scalars(sa.select(Notification.id).where(Notification.user_id == user.id)).all()[-1]


def register(client: Any, headers: dict[str, str], token: str) -> None:
    body = {"token": token, "platform": "android", "channel": "mi"}
    assert client.post(f"{API}/me/devices", json=body, headers=headers).status_code in (200, 201)


def post(client: Any, items: list[dict[str, Any]], secret: str | None = SECRET, channel: str = CHANNEL) -> Any:
    headers = {} if secret is None else {"X-Secret": secret}
    return client.post(f"{API}/push-receipts/{channel}", json=items, headers=headers)


def receipts() -> list[PushReceipt]:
    return list(db.session.scalars(sa.select(PushReceipt).order_by(PushReceipt.id)))


def test_receipts_are_recorded_once_and_shown_in_the_inbox(client, user, headers) -> None:
    register(client, headers, "phone-a")
    register(client, headers, "phone-b")
    nid = notify(user)
    ref = signed_reference(CHANNEL, nid)
    items = [
        {"param": ref, "token": "phone-a", "ok": True, "status": "push_arrive"},
        {"param": ref, "token": "phone-b", "ok": False, "status": "regid_invalid"},
        {"param": ref, "token": None, "ok": True, "status": "push_arrive"},
    ]
    first = post(client, items)
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {"received": 3, "recorded": 3}
    # The vendor posts the same again (as they do when unsure we got it): nothing new.
    again = post(client, items)
    assert again.status_code == 200 and again.get_json() == {"received": 3, "recorded": 0}
    recorded = receipts()
    assert len(recorded) == 3
    by_status = {(r.device_id is not None, r.status): r for r in recorded}
    assert by_status[(True, "push_arrive")].delivered is True and by_status[(True, "push_arrive")].channel == CHANNEL
    assert by_status[(True, "regid_invalid")].delivered is False
    assert by_status[(False, "push_arrive")].device_id is None
    [item] = client.get(f"{API}/me/notifications", headers=headers).get_json()["items"]
    assert item["delivery"] == {"delivered": 2, "failed": 1}


def test_a_notification_without_receipts_shows_no_delivery(client, user, headers) -> None:
    notify(user)
    [item] = client.get(f"{API}/me/notifications", headers=headers).get_json()["items"]
    assert item["delivery"] is None


def test_unknown_notifications_and_foreign_references_are_ignored_not_errors(client, user) -> None:
    nid = notify(user)
    items = [
        {"param": signed_reference(CHANNEL, nid + 1000), "token": None, "ok": True, "status": "arrived"},
        {"param": f"{nid}.forgedmac", "token": None, "ok": True, "status": "arrived"},
        {"param": signed_reference("othervendor", nid), "token": None, "ok": True, "status": "arrived"},
    ]
    response = post(client, items)
    assert response.status_code == 200 and response.get_json() == {"received": 1, "recorded": 0}
    assert receipts() == []
    assert verified_reference(CHANNEL, signed_reference(CHANNEL, nid)) == nid


@pytest.mark.parametrize(
    ("secret", "status", "code"), [(None, 401, "receipt_unsigned"), ("wrong", 403, "receipt_forged")]
)
def test_unsigned_or_forged_receipts_change_nothing(client, user, secret, status, code) -> None:
    nid = notify(user)
    items = [{"param": signed_reference(CHANNEL, nid), "token": None, "ok": True, "status": "arrived"}]
    assert_problem(post(client, items, secret=secret), status, code)
    assert receipts() == []


def test_a_channel_without_receipts_is_not_found(client) -> None:
    for channel in ("fcm", "nosuch", "testvendor2", "honor"):
        if channel in vendors.receipt_handlers():
            continue
        assert_problem(post(client, [], channel=channel), 404, "receipt_channel_not_found")


def test_a_body_that_is_not_the_vendors_is_422(client) -> None:
    response = client.post(f"{API}/push-receipts/{CHANNEL}", json={"no": "list"}, headers={"X-Secret": SECRET})
    assert_problem(response, 422, "validation_failed")
    assert receipts() == []


def test_receipts_are_rate_limited_per_address(client, app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "PUSH_RECEIPT_LIMIT_PER_ADDRESS", "2 per hour")
    assert post(client, []).status_code == 200
    assert post(client, [], secret="wrong").status_code == 403  # refused ones count too
    assert_problem(post(client, []), 429, "too_many_requests")
