"""The sender thread and the interpreter lock (notifications/delivery/sender.py): while a provider's
calls go out one at a time (OPPO, vivo) the switch interval is short, so the sender takes the lock
soon after each answer; FCM's many threads keep the interpreter's own; afterwards it is as before."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from core.db import utcnow
from notifications.delivery.sender import PROMPT_SWITCH_INTERVAL, prompt_handover
from notifications.delivery.service import deliver_due
from tests.fcm_server import FakeFcm
from tests.notifications.test_delivery import fcm, make_device, make_notification  # noqa: F401  (fixture)
from tests.notifications.vendors.conftest import Vendor, deliver, make_recipient, register, write


@pytest.fixture
def interval() -> Iterator[float]:
    """The interpreter's switch interval before the test (and put back after it, whatever happens)."""
    before = sys.getswitchinterval()
    yield before
    sys.setswitchinterval(before)


def intervals_seen_by(server: Any, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The switch interval at each push the server takes (it runs in this process, on its own thread)."""
    seen: list[float] = []
    count = server.count_delivered

    def counting(token: str, message: Any) -> None:
        seen.append(sys.getswitchinterval())
        count(token, message)

    monkeypatch.setattr(server, "count_delivered", counting)
    return seen


def test_calls_made_one_at_a_time_hand_the_lock_over_promptly(
    vendor: Vendor, client: FlaskClient, interval: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = intervals_seen_by(vendor.server, monkeypatch)
    user = make_recipient()
    register(client, user, vendor.channel)
    write(user)
    write(user, urgent=True)
    assert deliver().sent == 2
    assert seen == [PROMPT_SWITCH_INTERVAL] * 2
    assert sys.getswitchinterval() == interval


def test_fcm_calls_keep_the_interpreters_switch_interval(
    fcm: FakeFcm,  # noqa: F811  (fixture)
    interval: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = intervals_seen_by(fcm, monkeypatch)
    user = make_recipient()
    make_device(user)
    make_notification(user, utcnow())
    make_notification(user, utcnow())
    assert deliver_due(now=utcnow()).sent == 2
    assert seen == [interval] * 2


def test_the_interval_comes_back_when_the_last_of_overlapping_runs_leaves(interval: float) -> None:
    first, second = prompt_handover(), prompt_handover()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # runs on two threads need not end in the order they began
    assert sys.getswitchinterval() == PROMPT_SWITCH_INTERVAL
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == interval
