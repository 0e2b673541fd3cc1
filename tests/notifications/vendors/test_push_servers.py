"""The local push servers' latency option (benchmarks model a vendor a network away with it): every
send and auth call is answered no sooner than asked (no upper bound: speed is the benchmarks' business)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from core.db import utcnow
from notifications.delivery.service import deliver_due
from notifications.models import PushStatus
from tests.notifications.vendors.conftest import make_recipient, notify_now, register, status
from tests.push_servers.huawei import FakeHuawei
from tests.push_servers.serve import SERVERS

#: A send call of each server's protocol (refused for its missing credentials: answered all the same).
SEND_PATHS = {
    "fcm": "/v1/projects/p/messages:send", "hms": "/v1/app-1/messages:send", "honor": "/api/v1/app-1/sendMessage",
    "mi": "/v3/message/regid", "oppo": "/server/v1/message/notification/unicast_batch", "vivo": "/message/send",
}  # fmt: skip
LATENCY_MS = 300


def timed_call(server: Any, path: str) -> float:
    started = time.perf_counter()
    answer = requests.post(f"{server.base_url}{path}", json={}, timeout=10)
    elapsed = time.perf_counter() - started
    assert answer.status_code < 600 and answer.json() is not None  # answered, not dropped
    return elapsed


@pytest.mark.parametrize("channel", sorted(SEND_PATHS))
def test_every_server_answers_a_send_call_no_sooner_than_its_latency(channel: str) -> None:
    assert set(SEND_PATHS) == set(SERVERS)
    with SERVERS[channel](latency_ms=LATENCY_MS) as server:
        assert timed_call(server, SEND_PATHS[channel]) >= LATENCY_MS / 1000


def test_a_delivery_waits_for_the_auth_call_and_the_send_call(client: FlaskClient, hms: FakeHuawei) -> None:
    user = make_recipient()
    register(client, user, "hms")
    note = notify_now(user)
    hms.latency_ms = LATENCY_MS
    started = time.perf_counter()
    deliver_due(now=utcnow())
    elapsed = time.perf_counter() - started
    assert status(note) == PushStatus.SENT and hms.token_fetches == 1
    assert elapsed >= 2 * LATENCY_MS / 1000  # a token fetched, then the send: each answered late
