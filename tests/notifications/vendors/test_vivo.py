"""vivo Push (channel ``vivo``) through the outbox, against tests/push_servers/vivo.py: the message
on the wire, the signed auth, what vivo's answers do to rows and devices, and its receipts."""

from __future__ import annotations

import json
import threading

from flask import Flask
from flask.testing import FlaskClient

from notifications.delivery import receipts
from notifications.delivery.push import Outcome, PushMessage, providers
from tests.notifications.vendors.conftest import Vendor, deliver, make_recipient, register, write
from tests.push_servers.base import EXPIRED

DEEP_LINK = "intent://notification#Intent;scheme=shouwang;launchFlags=0x4000000;end"


def test_the_message_on_the_wire(vivo: Vendor, client: FlaskClient) -> None:
    vivo.configure(VIVO_DEEP_LINK=DEEP_LINK, VIVO_RECEIPT_ID="1234")
    user = make_recipient()
    token = register(client, user, "vivo")
    plain = write(user, kind="shift_reminder")
    urgent = write(user, urgent=True, kind="sos_alert")
    assert deliver().sent == 2

    sent = {m["clientCustomMap"]["notification_id"]: m for m in vivo.server.sent_to(token)}
    first, second = sent[str(plain.id)], sent[str(urgent.id)]
    assert first["appId"] == vivo.server.app_id and first["regId"] == token
    assert (first["title"], first["content"]) == (plain.title, plain.body)
    assert first["clientCustomMap"] == {"type": "shift_reminder", "notification_id": str(plain.id), "broadcast_id": "7"}
    assert (first["classification"], first["category"]) == (second["classification"], second["category"]) == (1, "TODO")
    assert (first["skipType"], first["skipContent"]) == (4, DEEP_LINK)
    assert first["timeToLive"] == 86400 and first["pushMode"] == 0 and first["notifyType"] == 4
    assert first["requestId"].startswith(f"{plain.id}-") and len(first["requestId"]) <= 64
    assert first["extra"]["callback.id"] == "1234"
    assert receipts.verified_reference("vivo", first["extra"]["callback.param"]) == plain.id


def test_a_new_kind_goes_as_an_operation_message_until_someone_decides(vivo: Vendor, client: FlaskClient) -> None:
    vivo.configure(PUSH_CATEGORIES=json.dumps({"vivo": {"broadcast": "MARKETING"}}))
    user = make_recipient()
    token = register(client, user, "vivo")
    write(user)
    deliver()
    sent = vivo.server.sent_to(token)[0]
    assert (sent["classification"], sent["category"], sent["skipType"]) == (0, "MARKETING", 1)
    assert "extra" not in sent and "skipContent" not in sent


def test_texts_longer_than_vivo_allows_are_cut_not_refused(vivo: Vendor, client: FlaskClient) -> None:
    user = make_recipient()
    token = register(client, user, "vivo")
    write(user, title="巡" * 30, body="逻" * 80)
    assert deliver().sent == 1
    sent = vivo.server.sent_to(token)[0]
    assert sent["title"] == "巡" * 19 + "…" and sent["content"] == "逻" * 49 + "…"


def test_a_token_expiring_mid_batch_resends_only_what_vivo_had_not_accepted(vivo: Vendor, client: FlaskClient) -> None:
    vivo.configure(VIVO_CONCURRENCY=1)  # one call after another: which calls the old token reached is exact
    users = [make_recipient() for _ in range(5)]
    tokens = [register(client, user, "vivo") for user in users]
    for user in users:
        write(user)
    vivo.server.script(tokens[2], EXPIRED)
    stats = deliver()
    assert stats.sent == 5
    assert vivo.server.token_fetches == 2
    assert all(vivo.server.delivered(token) == 1 for token in tokens)  # the first two were not sent again
    assert sum(vivo.server.hits.values()) == 6  # five, and the one refused with the old token


def test_a_batch_goes_out_vivo_concurrency_calls_at_a_time(vivo: Vendor, app: Flask, client: FlaskClient) -> None:
    vivo.configure(VIVO_CONCURRENCY=4)
    tokens = [register(client, make_recipient(), "vivo") for _ in range(10)]
    messages = [
        PushMessage(token=token, title="集合", body="今晚巡逻", data={"type": "broadcast", "notification_id": str(n)})
        for n, token in enumerate(tokens)
    ]
    provider = providers()["vivo"]
    outcomes: list[Outcome] = []

    def send() -> None:
        with app.app_context():
            outcomes.extend(result.outcome for result in provider.send(messages))

    vivo.server.stall(after=1)  # the batch's first call is answered; every later one is held
    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert vivo.server.wait_stalled(4)
        assert not vivo.server.wait_stalled(5, timeout=0.5)  # never more than VIVO_CONCURRENCY at once
    finally:
        vivo.server.release()
        sender.join()
    assert outcomes == [Outcome.OK] * len(tokens)
    assert all(vivo.server.delivered(token) == 1 for token in tokens)


def test_a_token_expiring_while_calls_are_in_flight_delivers_each_message_once(
    vivo: Vendor, client: FlaskClient
) -> None:
    vivo.configure(VIVO_CONCURRENCY=4)
    users = [make_recipient() for _ in range(12)]
    tokens = [register(client, user, "vivo") for user in users]
    for user in users:
        write(user)
    vivo.server.script(tokens[6], EXPIRED)
    assert deliver().sent == 12
    assert vivo.server.token_fetches == 2  # one refresh, however many calls the old token was refused on
    assert all(vivo.server.delivered(token) == 1 for token in tokens)
    # each call in flight when the token went may have been refused and sent again; no more than those
    assert 12 < sum(vivo.server.hits.values()) <= 12 + 4
