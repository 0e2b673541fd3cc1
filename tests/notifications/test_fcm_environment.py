"""FCM's HTTP session reads the environment once (notifications/delivery/push.py,
``read_environment_once``), as the vendors' sessions do: a proxy set there still carries every push,
NO_PROXY is still honoured, and a .netrc entry for the push host does not replace the bearer token.
Reading it per call cost ``send_each`` a quarter of its throughput (bench/README.md, issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from core.db import utcnow
from notifications.delivery.service import deliver_due
from notifications.models import Notification, PushStatus
from tests.fcm_server import FakeFcm
from tests.notifications.test_delivery import (
    fcm,  # noqa: F401  (fixture)
    fresh,
    make_device,
    make_notification,
    make_recipient,
)

#: The push host as configured: not resolvable, so only a proxy can reach it.
FAR_HOST = "fcm.shouwang.invalid"


def _clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def assert_one_push_sent(fcm: FakeFcm) -> None:
    """A recipient's due notification is sent, and its one device got it once."""
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    note = make_notification(user, now)

    assert deliver_due(now=now).sent == 1
    assert fresh(Notification, note.id).push_status == PushStatus.SENT
    assert fcm.delivered(device.token) == 1


def test_a_proxy_from_the_environment_carries_every_push(
    app: Flask, fcm: FakeFcm, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", fcm.base_url)  # the local server answers as the proxy too
    monkeypatch.setitem(app.config, "FCM_ENDPOINT", f"http://{FAR_HOST}")
    now = utcnow()
    users = [make_recipient() for _ in range(3)]
    devices = [make_device(user) for user in users]
    notes = [make_notification(user, now) for user in users]

    stats = deliver_due(now=now)

    assert stats.sent == 3
    assert [fresh(Notification, note.id).push_status for note in notes] == [PushStatus.SENT] * 3
    assert all(fcm.delivered(device.token) == 1 for device in devices)
    assert fcm.proxied == {FAR_HOST: 3}


def test_a_push_host_named_in_no_proxy_is_reached_directly(
    app: Flask, fcm: FakeFcm, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert_one_push_sent(fcm)
    assert not fcm.proxied


def test_a_netrc_entry_for_the_push_host_does_not_replace_the_bearer_token(
    fcm: FakeFcm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clear_proxies(monkeypatch)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert_one_push_sent(fcm)
