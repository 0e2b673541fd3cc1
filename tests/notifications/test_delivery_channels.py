"""Vendor channels in the outbox: daily caps (held until the reset, urgent first then), and one
token per phone (the preferred channel's, the next one when it dies). FCM is the local fake server
(tests/fcm_server.py); the vendor channel beside it is its recording provider (no credentials)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from notifications.delivery import quotas
from notifications.delivery.push import Outcome, PushMessage, SendResult, providers
from notifications.delivery.service import deliver_due
from notifications.devices.models import Device
from notifications.models import Notification, PushStatus, PushWait
from tests import factories, races
from tests.fcm_server import UNAVAILABLE, UNREGISTERED, FakeFcm
from tests.notifications.test_delivery import (
    fcm,  # noqa: F401  (fixture)
    fresh,
    make_device,
    make_notification,
    make_recipient,
)

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def register(client: Any, user: User, token: str, channel: str, installation_id: str | None) -> int:
    body = {"token": token, "platform": "android", "channel": channel, "installation_id": installation_id}
    response = client.post(f"{API}/me/devices", json=body, headers=factories.headers_for(user))
    assert response.status_code in (200, 201), response.get_json()
    assert response.get_json()["installation_id"] == installation_id
    return int(response.get_json()["id"])


@pytest.fixture
def recorded(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the vendor channels (no credentials here) record what they would have sent."""
    path = tmp_path / "pushes.jsonl"
    monkeypatch.setitem(app.config, "PUSH_RECORD_PATH", str(path))
    return path


def recorded_pushes(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- one phone, two tokens ---------------------------------------------------------------------


def test_a_phone_with_two_tokens_gets_one_push_through_the_preferred_channel(
    client: Any, fcm: FakeFcm, recorded: Path
) -> None:
    user = make_recipient()
    vendor_id = register(client, user, "hms-token-1", "hms", "phone-1")
    register(client, user, "fcm-token-1", "fcm", "phone-1")
    old_phone = register(client, user, "fcm-token-old", "fcm", None)  # an app before installation ids
    note = make_notification(user, utcnow())

    assert deliver_due().sent == 1
    assert fcm.hits == {"fcm-token-old": 1}  # not phone-1's FCM token: its vendor token took it
    assert [(p["channel"], p["token"]) for p in recorded_pushes(recorded)] == [("hms", "hms-token-1")]
    assert sorted(fresh(Notification, note.id).push_device_ids) == sorted([vendor_id, old_phone])


def test_the_next_token_of_the_phone_gets_the_row_in_the_same_run_when_the_first_is_dead(
    app: Flask, client: Any, fcm: FakeFcm, recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PUSH_CHANNEL_PREFERENCE", "fcm,hms")
    user = make_recipient()
    fcm_id = register(client, user, "fcm-token-2", "fcm", "phone-2")
    vendor_id = register(client, user, "hms-token-2", "hms", "phone-2")
    fcm.script("fcm-token-2", UNREGISTERED)
    note = make_notification(user, utcnow())

    stats = deliver_due()
    assert (stats.sent, stats.deactivated, stats.claimed) == (1, 1, 1)
    assert fcm.hits == {"fcm-token-2": 1}
    assert [p["token"] for p in recorded_pushes(recorded)] == ["hms-token-2"]
    row = fresh(Notification, note.id)
    assert (row.push_status, row.push_device_ids) == (PushStatus.SENT, [vendor_id])
    assert fresh(Device, fcm_id).active is False
    # Next time the phone's live token is the only one tried.
    make_notification(user, utcnow())
    assert deliver_due().sent == 1 and fcm.hits == {"fcm-token-2": 1}
    assert [p["token"] for p in recorded_pushes(recorded)] == ["hms-token-2", "hms-token-2"]


@pytest.mark.parametrize("urgent", [True, False])
def test_an_urgent_row_goes_to_the_next_token_at_once_when_the_first_service_cannot_take_it(
    app: Flask, client: Any, fcm: FakeFcm, recorded: Path, monkeypatch: pytest.MonkeyPatch, urgent: bool
) -> None:
    monkeypatch.setitem(app.config, "PUSH_CHANNEL_PREFERENCE", "fcm,hms")
    user = make_recipient()
    fcm_id = register(client, user, "fcm-token-3", "fcm", "phone-3")
    vendor_id = register(client, user, "hms-token-3", "hms", "phone-3")
    fcm.script("fcm-token-3", UNAVAILABLE)
    note = make_notification(user, utcnow(), urgent=urgent)

    stats = deliver_due()
    assert fcm.hits == {"fcm-token-3": 1}
    row = fresh(Notification, note.id)
    if urgent:
        assert (stats.sent, stats.retrying) == (1, 0)
        assert [p["token"] for p in recorded_pushes(recorded)] == ["hms-token-3"]
        assert (row.push_status, row.push_device_ids, row.push_attempts) == (PushStatus.SENT, [vendor_id], 0)
    else:
        # Not urgent: it waits for the preferred service, as any row does.
        assert (stats.sent, stats.retrying) == (0, 1)
        assert recorded_pushes(recorded) == []
        assert (row.push_status, row.push_device_ids, row.push_attempts) == (PushStatus.PENDING, [], 1)
    assert fresh(Device, fcm_id).active is True  # a service that is down says nothing of the token


def test_installation_ids_are_checked_at_registration(client: Any) -> None:
    user = make_recipient()
    body = {"token": "t-1", "platform": "android", "channel": "mi", "installation_id": "with space"}
    response = client.post(f"{API}/me/devices", json=body, headers=factories.headers_for(user))
    assert response.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Device)) == 0


# --- daily caps ----------------------------------------------------------------------------------


def test_a_daily_cap_holds_the_rest_until_the_reset_and_urgent_ones_go_first(
    app: Flask, fcm: FakeFcm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PUSH_DAILY_CAP_FCM", 2)
    # 10:00 in Shanghai; the vendors' day ends at 16:00 UTC.
    now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    reset = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    users = [make_recipient() for _ in range(5)]
    tokens = [make_device(user).token for user in users]
    notes = [make_notification(user, now - timedelta(minutes=5 - i), urgent=i >= 3) for i, user in enumerate(users)]

    stats = deliver_due(now=now)
    assert (stats.sent, stats.held, stats.retrying, stats.failed) == (2, 3, 0, 0)
    assert fcm.hits == {tokens[3]: 1, tokens[4]: 1}  # the urgent ones got the day's last two
    for note in notes[:3]:
        row = fresh(Notification, note.id)
        assert (row.push_status, row.push_wait, row.push_attempts) == (PushStatus.PENDING, PushWait.QUOTA, 0)
        assert row.push_due_at.astimezone(UTC) == reset
    assert quotas.sent_today("fcm", now, app.config) == 2
    assert deliver_due(now=reset - timedelta(seconds=1)).claimed == 0  # held, not retried

    # A new urgent one written during the day waits too, and goes first after the reset.
    late = make_notification(users[0], now + timedelta(hours=1), urgent=True)
    assert deliver_due(now=now + timedelta(hours=1)).held == 1
    # The next day's two: the urgent one, then the oldest; the rest wait for the day after.
    after = deliver_due(now=reset, limit=1)
    assert (after.sent, after.held) == (2, 2)
    sent_ids = [m["data"]["notification_id"] for m in fcm.messages]
    assert sent_ids[2:] == [str(late.id), str(notes[0].id)]
    assert quotas.sent_today("fcm", reset, app.config) == 2
    assert deliver_due(now=reset + timedelta(days=1)).sent == 2
    assert fcm.delivered_tokens() == {tokens[0]: 2, **{t: 1 for t in tokens[1:]}}  # each once, none lost


def test_the_reset_is_midnight_in_the_vendors_time_zone(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    late_evening = datetime(2026, 12, 7, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    assert quotas.next_reset(late_evening, app.config) == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    assert quotas.next_reset(late_evening + timedelta(minutes=1), app.config) == datetime(
        2026, 12, 8, 16, 0, tzinfo=UTC
    )
    monkeypatch.setitem(app.config, "PUSH_QUOTA_RESET_TIMEZONE", "UTC")
    assert quotas.next_reset(late_evening, app.config) == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)


def test_a_vendors_own_quota_answer_closes_its_day(app: Flask) -> None:
    now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert quotas.reserve("vivo", 3, now, app.config) == 3
    quotas.exhaust("vivo", now, app.config)
    assert quotas.reserve("vivo", 1, now, app.config) == 0  # no cap of ours, but the vendor said so
    assert quotas.reserve("vivo", 1, now + timedelta(days=1), app.config) == 1  # the next day


@pytest.mark.committing
def test_two_workers_never_pass_a_cap_together(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    monkeypatch.setitem(app.config, "PUSH_DAILY_CAP_OPPO", 50)
    start = races.barrier(6)

    def worker() -> int:
        taken = 0
        with app.app_context():
            start.wait()
            for _ in range(10):
                taken += quotas.reserve("oppo", 7, now, app.config)
                db.session.commit()
        return taken

    taken = races.run_threads([worker] * 6)
    with app.app_context():
        assert quotas.sent_today("oppo", now, app.config) == 50
    assert sum(taken) == 50


class ScriptedVendor:
    """A provider registered for the vivo channel in a test: answers from a script, records calls."""

    channel = "vivo"

    def __init__(self, *answers: SendResult) -> None:
        self.answers = list(answers)
        self.sent: list[str] = []

    def send(self, messages: Sequence[PushMessage]) -> list[SendResult]:
        self.sent += [m.data["notification_id"] for m in messages]
        return [self.answers.pop(0) if self.answers else SendResult(Outcome.OK) for _ in messages]

    def probe(self) -> bool:
        return True

    def close(self) -> None:
        pass


def test_a_vendors_quota_answer_holds_the_row_and_stops_calling_it_until_the_reset(
    app: Flask, client: Any, fcm: FakeFcm
) -> None:
    vendor = ScriptedVendor(SendResult(Outcome.QUOTA, error="10070 发送总量超出限制"))
    built = providers(app)
    assert isinstance(built, dict)
    built["vivo"] = vendor  # registered for this test; the next config change builds them afresh
    now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    reset = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    user = make_recipient()
    register(client, user, "vivo-token-123456789012345", "vivo", None)
    first = make_notification(user, now)

    assert deliver_due(now=now).held == 1
    row = fresh(Notification, first.id)
    assert (row.push_status, row.push_wait, row.push_attempts) == (PushStatus.PENDING, PushWait.QUOTA, 0)
    assert row.push_due_at.astimezone(UTC) == reset
    second = make_notification(user, now + timedelta(hours=2), urgent=True)
    assert deliver_due(now=now + timedelta(hours=2)).held == 1
    assert vendor.sent == [str(first.id)]  # not called again the same day

    assert deliver_due(now=reset).sent == 2
    assert vendor.sent == [str(first.id), str(second.id), str(first.id)]  # urgent first after the reset
