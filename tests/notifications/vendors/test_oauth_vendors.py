"""What Huawei and Honor share, tested once for each: their provider (``OneContentPerCall``: an
OAuth access token, then one call per notification, ten side by side) against each local server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.db import utcnow
from notifications.delivery.push import Outcome, PushMessage, providers
from notifications.delivery.service import deliver_due
from notifications.models import PushStatus
from tests.notifications.vendors.conftest import make_recipient, notify_now, pending_due, register, serve, status
from tests.push_servers.base import EXPIRED, OK, UNAVAILABLE, OAuthVendor, rate_limited


@pytest.fixture(params=["hms", "honor"])
def channel(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(channel: str, app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthVendor]:
    yield from serve(channel, app, monkeypatch)


def test_threads_sending_at_once_share_one_token_fetch(app: Flask, channel: str, server: OAuthVendor) -> None:
    provider = providers(app)[channel]
    start = threading.Barrier(8)
    results: list[Outcome] = []

    def send(number: int) -> None:
        message = PushMessage(f"t-{number}", "标题", "内容", {"type": "broadcast", "notification_id": str(number)})
        start.wait()
        with app.app_context():
            results.extend(r.outcome for r in provider.send([message]))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [Outcome.OK] * 8
    assert server.token_fetches == 1


def test_a_token_expiring_mid_batch_is_refreshed_and_only_the_unaccepted_are_sent_again(
    client: FlaskClient, channel: str, server: OAuthVendor
) -> None:
    users = [make_recipient() for _ in range(4)]
    tokens = [register(client, user, channel) for user in users]
    notes = [notify_now(user) for user in users]
    server.script(tokens[2], EXPIRED)  # the third call of the batch finds its access token expired

    deliver_due(now=utcnow())

    assert [status(note) for note in notes] == [PushStatus.SENT] * 4
    assert server.delivered_tokens() == dict.fromkeys(tokens, 1)  # the others were not sent again
    assert server.token_fetches == 2


def test_a_rate_limit_is_retried_after_the_wait_the_vendor_names(client: FlaskClient, channel: str, server: OAuthVendor) -> None:
    user = make_recipient()
    token = register(client, user, channel)
    server.script(token, rate_limited(120))
    note = notify_now(user)
    now = utcnow()

    deliver_due(now=now)

    assert status(note) == PushStatus.PENDING
    due = pending_due()
    assert due is not None and due >= now + timedelta(seconds=120)
    assert deliver_due(now=due - timedelta(seconds=1)).claimed == 0
    deliver_due(now=due)
    assert status(note) == PushStatus.SENT and server.delivered(token) == 1


@pytest.mark.parametrize("outage", ["refusing-connections", "answering-500"])
def test_everything_is_delivered_once_the_service_is_back(
    client: FlaskClient, channel: str, server: OAuthVendor, outage: str
) -> None:
    users = [make_recipient() for _ in range(5)]
    tokens = [register(client, user, channel) for user in users]
    notes = [notify_now(user, urgent=n % 2 == 0) for n, user in enumerate(users)]
    if outage == "refusing-connections":
        server.go_down()
    else:
        server.default = UNAVAILABLE
    clock = utcnow()
    for _ in range(3):
        assert deliver_due(now=clock).sent == 0
        clock = pending_due() or clock
    assert not server.delivered_tokens()

    server.come_up()
    server.default = OK
    runs = 0
    while (due := pending_due()) is not None:
        deliver_due(now=max(clock, due))
        runs += 1
        assert runs < 10
    assert [status(note) for note in notes] == [PushStatus.SENT] * 5
    assert server.delivered_tokens() == dict.fromkeys(tokens, 1)
