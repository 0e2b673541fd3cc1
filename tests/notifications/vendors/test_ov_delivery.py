"""OPPO and vivo alike (each test runs for both): the auth token's cache and refresh, the vendors'
faults (rate limit, daily cap, 5xx, outage), and receipts through ``POST /push-receipts/{channel}``."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from notifications.delivery.models import PushReceipt
from notifications.delivery.push import Outcome, PushMessage, providers
from notifications.delivery.service import deliver_due
from notifications.delivery.vendors.ov_shared import RESET_MARGIN_SECONDS
from notifications.models import Notification, PushStatus, PushWait
from tests.notifications.vendors.conftest import API, Vendor, deliver, device, make_recipient, register, statuses, write
from tests.push_servers.base import INVALID, OK, QUOTA, UNAVAILABLE, rate_limited


def fresh(note: Notification) -> Notification:
    db.session.expire_all()
    return db.session.get(Notification, note.id)


def test_the_token_is_fetched_once_and_reused_by_later_runs(vendor: Vendor, client: FlaskClient) -> None:
    user = make_recipient()
    token = register(client, user, vendor.channel)
    for _ in range(3):
        write(user)
        assert deliver().sent == 1
    assert vendor.server.token_fetches == 1 and vendor.server.delivered(token) == 3


def test_a_token_is_refreshed_ahead_of_its_expiry(vendor: Vendor, client: FlaskClient) -> None:
    # A lifetime within the refresh margin (5 minutes): every use is already "about to expire".
    vendor.configure(**{f"{vendor.channel.upper()}_TOKEN_LIFETIME_SECONDS": 300})
    user = make_recipient()
    register(client, user, vendor.channel)
    for _ in range(2):
        write(user)
        assert deliver().sent == 1
    assert vendor.server.token_fetches == 2  # fetched anew before use, never refused


def test_a_token_the_vendor_expired_is_replaced_once_and_the_batch_sent(vendor: Vendor, client: FlaskClient) -> None:
    user = make_recipient()
    token = register(client, user, vendor.channel)
    write(user)
    deliver()
    vendor.server.expire_tokens()  # its 24 hours are over on the vendor's side
    write(user)
    assert deliver().sent == 1
    assert vendor.server.token_fetches == 2 and vendor.server.delivered(token) == 2


def test_threads_sending_at_once_share_one_token_fetch(vendor: Vendor, app: Flask, client: FlaskClient) -> None:
    tokens = [register(client, make_recipient(), vendor.channel) for _ in range(8)]
    provider = providers()[vendor.channel]
    start = threading.Barrier(len(tokens))
    results: list[Outcome] = []

    def send(token: str) -> None:
        with app.app_context():
            start.wait()
            message = PushMessage(
                token=token, title="集合", body="今晚巡逻", data={"type": "broadcast", "notification_id": "1"}
            )
            results.extend(result.outcome for result in provider.send([message]))

    threads = [threading.Thread(target=send, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [Outcome.OK] * len(tokens)
    assert vendor.server.token_fetches == 1


def test_a_rate_limit_holds_the_row_for_the_wait_then_sends_it(vendor: Vendor, client: FlaskClient) -> None:
    user = make_recipient()
    token = register(client, user, vendor.channel)
    vendor.server.script(token, rate_limited(45))
    note = write(user, urgent=True)
    now = utcnow()
    assert deliver_due(now=now).retrying == 1
    row = fresh(note)
    expected_wait = 45 if vendor.channel == "oppo" else 30  # vivo names no wait: ours
    assert row.push_wait == PushWait.RETRY_AFTER
    assert row.push_due_at >= now + timedelta(seconds=expected_wait)
    assert deliver_due(now=row.push_due_at).sent == 1
    assert vendor.server.delivered(token) == 1


def test_the_daily_cap_holds_messages_until_the_vendors_midnight(vendor: Vendor, client: FlaskClient) -> None:
    users = [make_recipient() for _ in range(3)]
    tokens = [register(client, user, vendor.channel) for user in users]
    vendor.server.default = QUOTA
    provider = providers()[vendor.channel]
    messages = [
        PushMessage(token=t, title="集合", body="今晚巡逻", data={"type": "broadcast", "notification_id": "1"})
        for t in tokens
    ]
    results = provider.send(messages)
    assert [r.outcome for r in results] == [Outcome.QUOTA] * 3
    assert all(RESET_MARGIN_SECONDS < (r.retry_after or 0) <= 86400 + RESET_MARGIN_SECONDS for r in results)
    assert vendor.server.send_requests == 1  # OPPO: one batch call; vivo: no more calls that day


def test_quota_rows_stay_in_the_inbox_and_go_after_the_reset_urgent_first(vendor: Vendor, client: FlaskClient) -> None:
    user = make_recipient()
    token = register(client, user, vendor.channel)
    plain, urgent = write(user), write(user, urgent=True)
    vendor.server.default = QUOTA
    now = utcnow()
    deliver_due(now=now)
    rows = [fresh(plain), fresh(urgent)]
    assert all(row.push_status == PushStatus.PENDING and row.push_wait == PushWait.QUOTA for row in rows)
    assert all(row.push_due_at > now for row in rows)
    vendor.server.default = OK
    deliver_due(now=max(row.push_due_at for row in rows))
    sent = vendor.server.sent_to(token)
    assert statuses() == {PushStatus.SENT: 2} and len(sent) == 2
    first = sent[0].get("clientCustomMap") or {}
    assert vendor.channel == "oppo" or first.get("notification_id") == str(urgent.id)


def test_a_5xx_is_retried_and_the_message_goes_once_the_vendor_answers(vendor: Vendor, client: FlaskClient) -> None:
    user = make_recipient()
    token = register(client, user, vendor.channel)
    vendor.server.script(token, UNAVAILABLE)
    note = write(user)
    assert deliver().retrying == 1
    assert deliver_due(now=fresh(note).push_due_at).sent == 1
    assert vendor.server.delivered(token) == 1


def test_everything_is_delivered_once_the_vendor_is_back(vendor: Vendor, client: FlaskClient) -> None:
    users = [make_recipient() for _ in range(6)]
    tokens = [register(client, user, vendor.channel) for user in users]
    notes = [write(user, urgent=index % 2 == 0) for index, user in enumerate(users) for _ in range(2)]
    vendor.server.go_down()
    clock = utcnow()
    for _ in range(3):
        stats = deliver_due(now=clock)
        assert stats.sent == 0 and stats.retrying == stats.claimed > 0
        clock = max(fresh(note).push_due_at for note in notes)
    vendor.server.come_up()
    while statuses().get(PushStatus.PENDING):
        clock = max(clock, min(fresh(n).push_due_at for n in notes if fresh(n).push_status == PushStatus.PENDING))
        deliver_due(now=clock)
    assert statuses() == {PushStatus.SENT: 12}
    assert all(vendor.server.delivered(token) == 2 for token in tokens)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 12  # no inbox row twice


# --- receipts ------------------------------------------------------------------------------------


def _receipt_setup(vendor: Vendor, client: FlaskClient) -> tuple[Notification, str]:
    vendor.configure(OPPO_RECEIPT_URL="https://sw.example/api/v1/push-receipts/oppo", VIVO_RECEIPT_ID="1234")
    user = make_recipient()
    token = register(client, user, vendor.channel)
    note = write(user)
    assert deliver().sent == 1
    return note, token


def recorded() -> list[PushReceipt]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(PushReceipt)))


def test_a_genuine_receipt_is_recorded_once(vendor: Vendor, client: FlaskClient) -> None:
    note, token = _receipt_setup(vendor, client)
    body = vendor.server.receipt_body(token)
    answer = client.post(f"{API}/push-receipts/{vendor.channel}", json=body)
    assert answer.status_code == 200 and answer.get_json() == {"received": 1, "recorded": 1}
    assert client.post(f"{API}/push-receipts/{vendor.channel}", json=body).get_json()["recorded"] == 0
    [receipt] = recorded()
    assert (receipt.notification_id, receipt.channel, receipt.delivered) == (note.id, vendor.channel, True)
    assert receipt.device_id is not None


def test_an_oppo_invalid_regid_receipt_is_recorded_as_failed(oppo: Vendor, client: FlaskClient) -> None:
    note, token = _receipt_setup(oppo, client)
    answer = client.post(f"{API}/push-receipts/oppo", json=oppo.server.receipt_body(token, "regid_invalid"))
    assert answer.status_code == 200
    [receipt] = recorded()
    assert (receipt.notification_id, receipt.delivered, receipt.status) == (note.id, False, "regid_invalid")


@pytest.mark.parametrize(("param", "status", "code"), [
    ("", 401, "receipt_unsigned"),
    (None, 401, "receipt_unsigned"),
    ("forged", 403, "receipt_forged"),
    ("{id}.0123456789abcdef0123456789abcdef", 403, "receipt_forged"),
])  # fmt: skip
def test_an_unsigned_or_forged_receipt_changes_nothing(
    vendor: Vendor, client: FlaskClient, param: str | None, status: int, code: str
) -> None:
    note, token = _receipt_setup(vendor, client)
    genuine = vendor.server.receipt_body(token)
    forged = vendor.server.receipt_body(token, param="" if param is None else param.format(id=note.id))
    if param is None:  # no parameter at all
        for item in forged if isinstance(forged, list) else forged.values():
            item.pop("param")
    body = genuine + forged if isinstance(genuine, list) else {**genuine, **forged}  # one bad item spoils all
    answer = client.post(f"{API}/push-receipts/{vendor.channel}", json=body)
    assert answer.status_code == status and answer.get_json()["code"] == code
    assert recorded() == []


def test_a_body_that_is_not_the_vendors_is_422(vendor: Vendor, client: FlaskClient) -> None:
    wrong = {"a": 1} if vendor.channel == "oppo" else [1, 2]
    assert client.post(f"{API}/push-receipts/{vendor.channel}", json=wrong).status_code == 422
    assert recorded() == []


WRONG_SECRET = {"oppo": "OPPO_MASTER_SECRET", "vivo": "VIVO_APP_SECRET"}


def test_a_wrong_secret_sends_nothing_and_keeps_the_rows(vendor: Vendor, client: FlaskClient) -> None:
    vendor.configure(**{WRONG_SECRET[vendor.channel]: "not-the-secret"})
    user = make_recipient()
    register(client, user, vendor.channel)
    write(user)
    stats = deliver()
    assert (stats.sent, stats.retrying) == (0, 1)
    assert vendor.server.auth_refusals == 1 and vendor.server.token_fetches == 0
    assert statuses() == {PushStatus.PENDING: 1}


def test_an_invalid_registration_id_deactivates_only_that_device(vendor: Vendor, client: FlaskClient) -> None:
    user = make_recipient()
    dead, alive = register(client, user, vendor.channel), register(client, user, vendor.channel)
    vendor.server.script(dead, INVALID)
    write(user)
    assert deliver().sent == 1
    assert device(dead).active is False and device(alive).active is True
    assert vendor.server.delivered(alive) == 1
