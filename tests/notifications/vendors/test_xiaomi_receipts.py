"""MiPush's delivery receipts through ``POST /api/v1/push-receipts/mi``: genuine ones recorded,
forged or unsigned ones refused with nothing recorded."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from notifications.delivery.models import PushReceipt
from notifications.delivery.receipts import signed_reference
from notifications.delivery.service import deliver_due
from tests.notifications.test_delivery import make_notification, make_recipient
from tests.notifications.vendors.test_xiaomi import register
from tests.problems import assert_problem
from tests.push_servers.xiaomi import FakeMiPush, receipt_form, receipt_items

# --- receipts ---------------------------------------------------------------------------------------------


RECEIPTS_URL = "/api/v1/push-receipts/mi"


def recorded() -> list[tuple[int, int | None, bool, str]]:
    db.session.expire_all()
    rows = db.session.scalars(sa.select(PushReceipt).order_by(PushReceipt.id))
    return [(r.notification_id, r.device_id, r.delivered, r.status) for r in rows]


def test_receipts_mipush_posts_for_what_it_sent_are_recorded(client: FlaskClient, mi: FakeMiPush) -> None:
    now = utcnow()
    user = make_recipient()
    phone, old = register(client, user), register(client, user)
    note = make_notification(user, now)
    deliver_due(now=now)
    [form] = mi.forms

    delivered = client.post(RECEIPTS_URL, data=receipt_form(receipt_items([form], 1, [phone.token])))
    invalid = client.post(RECEIPTS_URL, data=receipt_form(receipt_items([form], 16, [old.token])))

    assert delivered.status_code == invalid.status_code == 200, delivered.get_json()
    assert delivered.get_json() == {"received": 1, "recorded": 1}
    assert recorded() == [(note.id, phone.id, True, "delivered"), (note.id, old.id, False, "invalid_target")]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 401, "receipt_unsigned"),
        ({"data": "not json"}, 401, "receipt_unsigned"),
        ({"data": "{}"}, 401, "receipt_unsigned"),
        ("forged", 403, "receipt_forged"),
        ("unsigned", 403, "receipt_forged"),
        ("another channel's", 403, "receipt_forged"),
        ("one of two forged", 403, "receipt_forged"),
    ],
)
def test_a_forged_or_unsigned_receipt_is_refused_and_nothing_recorded(
    client: FlaskClient, mi: FakeMiPush, body: object, status: int, code: str
) -> None:
    now = utcnow()
    user = make_recipient()
    register(client, user)
    note = make_notification(user, now)
    deliver_due(now=now)
    genuine = signed_reference("mi", note.id)
    params = {
        "forged": [f"{note.id}.{'0' * 32}"], "unsigned": [str(note.id)],
        "another channel's": [signed_reference("hms", note.id)], "one of two forged": [genuine, f"{note.id}.{'f' * 32}"],
    }  # fmt: skip
    if isinstance(body, str):
        items = {f"m{i}": {"param": p, "type": 1, "targets": "x"} for i, p in enumerate(params[body])}
        body = receipt_form(items)

    response = client.post(RECEIPTS_URL, data=body)

    assert_problem(response, status, code)
    assert recorded() == []


def test_with_a_receipt_key_the_url_must_carry_it(
    app: Flask, client: FlaskClient, mi: FakeMiPush, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "XIAOMI_RECEIPT_KEY", "k3y")
    now = utcnow()
    user = make_recipient()
    register(client, user)
    make_notification(user, now)
    deliver_due(now=now)
    body = receipt_form(receipt_items(mi.forms, 1))

    assert_problem(client.post(RECEIPTS_URL, data=body), 401, "receipt_unsigned")
    assert_problem(client.post(f"{RECEIPTS_URL}?key=nope", data=body), 403, "receipt_forged")
    assert recorded() == []
    assert client.post(f"{RECEIPTS_URL}?key=k3y", data=body).status_code == 200
    assert len(recorded()) == 1
