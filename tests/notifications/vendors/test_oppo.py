"""OPPO Push (channel ``oppo``) through the outbox, against tests/push_servers/oppo.py: the message
on the wire, the signed auth, what OPPO's answers do to rows and devices, and its receipts."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from notifications.delivery import receipts
from notifications.delivery.push import PushMessage, providers
from tests.notifications.vendors.conftest import Vendor, deliver, make_recipient, register, write
from tests.push_servers.base import EXPIRED

DEEP_LINK = "intent://notification#Intent;scheme=shouwang;launchFlags=0x4000000;end"


def test_the_message_on_the_wire(oppo: Vendor, client: FlaskClient) -> None:
    oppo.configure(
        OPPO_DEEP_LINK=DEEP_LINK,
        OPPO_CHANNEL_ID="service",
        OPPO_URGENT_NOTIFY_LEVEL=16,
        OPPO_RECEIPT_URL="https://sw.example/api/v1/push-receipts/oppo",
    )
    user = make_recipient()
    token = register(client, user, "oppo")
    plain = write(user, kind="shift_reminder", title="巡逻提醒", body="明晚七点")
    urgent = write(user, urgent=True, kind="sos_alert", title="紧急求助", body="附近有人求助")
    assert deliver().sent == 2

    sent = {
        json.loads(m["notification"]["action_parameters"])["notification_id"]: m for m in oppo.server.sent_to(token)
    }
    first, second = sent[str(plain.id)]["notification"], sent[str(urgent.id)]["notification"]
    assert (first["title"], first["content"]) == (plain.title, plain.body)
    assert json.loads(first["action_parameters"]) == {
        "type": "shift_reminder",
        "broadcast_id": "7",
        "notification_id": str(plain.id),
    }
    assert first["category"] == second["category"] == "TODO"
    assert (first["notify_level"], second["notify_level"]) == (2, 16)
    assert (first["click_action_type"], first["click_action_url"]) == (5, DEEP_LINK)
    assert first["channel_id"] == "service"
    assert first["app_message_id"] == str(plain.id)
    assert first["off_line"] is True and first["off_line_ttl"] == 86400
    assert receipts.verified_reference("oppo", first["call_back_parameter"]) == plain.id
    assert first["call_back_url"] == "https://sw.example/api/v1/push-receipts/oppo"


def test_without_a_deep_link_or_receipt_url_the_app_opens_and_no_callback_is_asked(
    oppo: Vendor, client: FlaskClient
) -> None:
    user = make_recipient()
    token = register(client, user, "oppo")
    write(user)
    deliver()
    notification = oppo.server.sent_to(token)[0]["notification"]
    assert notification["click_action_type"] == 0
    assert "click_action_url" not in notification and "call_back_url" not in notification


def test_a_deployment_category_replaces_the_table(oppo: Vendor, client: FlaskClient) -> None:
    oppo.configure(PUSH_CATEGORIES=json.dumps({"oppo": {"broadcast": "IM"}}))
    user = make_recipient()
    token = register(client, user, "oppo")
    write(user)
    deliver()
    assert oppo.server.sent_to(token)[0]["notification"]["category"] == "IM"


def test_an_expired_token_refuses_the_whole_batch_which_is_sent_again_once(oppo: Vendor, client: FlaskClient) -> None:
    users = [make_recipient() for _ in range(4)]
    tokens = [register(client, user, "oppo") for user in users]
    for user in users:
        write(user)
    oppo.server.script(tokens[2], EXPIRED)
    stats = deliver()
    assert stats.sent == 4
    assert oppo.server.token_fetches == 2  # one refresh after OPPO's code 11
    assert all(oppo.server.delivered(token) == 1 for token in tokens)


def test_a_resend_of_the_same_notification_reaches_the_phone_once(oppo: Vendor, client: FlaskClient) -> None:
    """app_message_id: OPPO drops a second push of one notification to one target."""
    user = make_recipient()
    token = register(client, user, "oppo")
    note = write(user)
    deliver()
    # the resend a worker makes of a batch whose answer it never recorded (it died), by hand
    again = PushMessage(
        token=token,
        title="今晚巡逻",
        body="请按时到达集合点",
        data={"type": "broadcast", "notification_id": str(note.id)},
    )
    assert providers()["oppo"].send([again])[0].outcome == "ok"
    assert oppo.server.delivered(token) == 1 and oppo.server.deduplicated == 1
