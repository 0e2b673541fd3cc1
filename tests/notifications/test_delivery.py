"""Delivering the outbox (notifications/delivery/) through the real firebase-admin code.

firebase-admin sends to tests/fcm_server.py on 127.0.0.1, chosen by configuration (FCM_ENDPOINT,
FIREBASE_CREDENTIALS=static-token:…): nothing of ours is mocked. The clock is passed in (``now``),
so retries and leases are tested without waiting. The other notification test modules import the
fixtures and helpers defined here.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from notifications.delivery.outcomes import retry_delay
from notifications.delivery.push import STATIC_TOKEN_PREFIX, close_providers
from notifications.delivery.service import deliver_batch, deliver_due
from notifications.devices.models import Device
from notifications.models import Notification, PushStatus
from tests import factories, races
from tests.fcm_server import (
    INTERNAL,
    INVALID_PAYLOAD,
    INVALID_TOKEN,
    OK,
    UNAVAILABLE,
    UNREGISTERED,
    FakeFcm,
    quota_exceeded,
)

PROJECT = "shouwang-test"
_tokens = itertools.count(1)


@pytest.fixture
def fcm(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFcm]:
    """A local FCM server, and the app configured to push to it through firebase-admin."""
    server = FakeFcm(access_token="test-token").start()
    monkeypatch.setitem(app.config, "FIREBASE_CREDENTIALS", f"{STATIC_TOKEN_PREFIX}test-token")
    monkeypatch.setitem(app.config, "FIREBASE_PROJECT_ID", PROJECT)
    monkeypatch.setitem(app.config, "FCM_ENDPOINT", server.base_url)
    try:
        yield server
    finally:
        server.stop()
        close_providers(app)


# --- test data ------------------------------------------------------------------------------------


def make_recipient() -> User:
    return factories.make_user("volunteer", factories.make_area(AreaLevel.CITY))


def make_device(
    user: User, *, token: str | None = None, refreshed_at: datetime | None = None, active: bool = True
) -> Device:
    token = token or f"tok-{next(_tokens)}-{user.id}"
    when = refreshed_at or utcnow()
    device = Device(
        user_id=user.id, token=token, token_hash=hashlib.sha256(token.encode()).hexdigest(),
        platform="android", channel="fcm", active=active, registered_at=when, refreshed_at=when,
    )  # fmt: skip
    db.session.add(device)
    db.session.flush()
    return device


def make_notification(
    user: User, due_at: datetime, *, urgent: bool = False, kind: str = "assignment_created", **data: Any
) -> Notification:
    notification = Notification(
        user_id=user.id, kind=kind, title="新的排班", body="您被安排在明晚的巡逻", urgent=urgent,
        data={"type": kind, **data}, push_due_at=due_at, push_status=PushStatus.PENDING,
        push_attempts=0, push_device_ids=[],
    )  # fmt: skip
    db.session.add(notification)
    db.session.flush()
    return notification


def fresh(model: type, ident: int) -> Any:
    """The row as committed now (not the session's cached copy)."""
    db.session.expire_all()
    return db.session.get(model, ident)


def pending_count() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).where(Notification.push_status == PushStatus.PENDING))


# --- one send ---------------------------------------------------------------------------------------


def test_a_due_notification_is_pushed_to_every_device_of_its_user(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    phone, tablet = make_device(user), make_device(user)
    note = make_notification(user, now, assignment_id="17", shift_id="5")

    stats = deliver_due(now=now)

    assert (stats.claimed, stats.messages, stats.sent) == (1, 2, 1)
    row = fresh(Notification, note.id)
    assert row.push_status == PushStatus.SENT
    assert row.pushed_at == now
    assert sorted(row.push_device_ids) == sorted([phone.id, tablet.id])
    assert (row.push_claim, row.push_claimed_until, row.push_attempts) == (None, None, 0)
    assert fcm.delivered(phone.token) == fcm.delivered(tablet.token) == 1
    sent = next(m for m in fcm.messages if m["token"] == phone.token)
    assert sent["notification"] == {"title": "新的排班", "body": "您被安排在明晚的巡逻"}
    assert sent["data"] == {
        "type": "assignment_created", "assignment_id": "17", "shift_id": "5", "notification_id": str(note.id)
    }  # fmt: skip
    assert sent["android"]["priority"] == "normal"
    assert sent["apns"]["headers"]["apns-priority"] == "5"


def test_an_urgent_notification_goes_out_with_high_priority(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    make_notification(user, now, urgent=True, kind="absence_alert", shift_id="3")

    deliver_due(now=now)

    (sent,) = [m for m in fcm.messages if m["token"] == device.token]
    assert sent["android"]["priority"] == "high"
    assert sent["apns"]["headers"]["apns-priority"] == "10"
    assert sent["data"]["type"] == "absence_alert"


def test_a_notification_not_yet_due_waits(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    note = make_notification(user, now + timedelta(hours=8))  # held back by quiet hours

    assert deliver_due(now=now).claimed == 0
    assert fresh(Notification, note.id).push_status == PushStatus.PENDING
    assert fcm.hits[device.token] == 0

    deliver_due(now=now + timedelta(hours=8))
    assert fresh(Notification, note.id).push_status == PushStatus.SENT
    assert fcm.delivered(device.token) == 1


def test_a_sent_notification_is_not_sent_again(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    make_notification(user, now)

    deliver_due(now=now)
    again = deliver_due(now=now + timedelta(minutes=5))

    assert again.claimed == 0
    assert fcm.hits[device.token] == 1


# --- devices ----------------------------------------------------------------------------------------


def test_without_a_usable_device_the_notification_is_inbox_only(fcm: FakeFcm) -> None:
    now = utcnow()
    nobody, gone, logged_out = make_recipient(), make_recipient(), make_recipient()
    stale = make_device(gone, refreshed_at=now - timedelta(days=61))  # the app stopped refreshing it
    inactive = make_device(logged_out, active=False)
    notes = [make_notification(user, now) for user in (nobody, gone, logged_out)]

    stats = deliver_due(now=now)

    assert (stats.claimed, stats.no_device, stats.messages) == (3, 3, 0)
    assert {fresh(Notification, n.id).push_status for n in notes} == {PushStatus.NO_DEVICE}
    assert fcm.hits[stale.token] == fcm.hits[inactive.token] == 0
    assert fresh(Device, stale.id).active is True  # skipped, not deactivated: the app may come back


def test_a_stale_device_is_skipped_and_the_fresh_one_reached(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    stale = make_device(user, refreshed_at=now - timedelta(days=60, minutes=1))
    fresh_device = make_device(user, refreshed_at=now - timedelta(days=59))
    note = make_notification(user, now)

    deliver_due(now=now)

    assert fresh(Notification, note.id).push_device_ids == [fresh_device.id]
    assert fcm.hits[stale.token] == 0


@pytest.mark.parametrize("dead", [UNREGISTERED, INVALID_TOKEN], ids=["unregistered", "invalid-token"])
def test_a_dead_token_deactivates_its_device(fcm: FakeFcm, dead: Any) -> None:
    now = utcnow()
    user = make_recipient()
    old_phone, new_phone = make_device(user), make_device(user)
    fcm.script(old_phone.token, dead)
    note = make_notification(user, now)

    stats = deliver_due(now=now)

    assert stats.deactivated == 1
    device = fresh(Device, old_phone.id)
    assert (device.active, device.deactivation_reason, device.deactivated_at) == (False, "unregistered", now)
    assert fresh(Device, new_phone.id).active is True
    row = fresh(Notification, note.id)
    assert (row.push_status, row.push_device_ids) == (PushStatus.SENT, [new_phone.id])

    make_notification(user, now, kind="shift_cancelled")
    deliver_due(now=now)
    assert fcm.hits[old_phone.token] == 1  # never tried again


def test_when_the_only_device_is_dead_the_notification_has_no_device(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    fcm.script(device.token, UNREGISTERED)
    note = make_notification(user, now)

    deliver_due(now=now)

    assert fresh(Notification, note.id).push_status == PushStatus.NO_DEVICE
    assert fresh(Device, device.id).active is False


def test_a_refused_payload_fails_without_retry_and_keeps_the_device(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    fcm.script(device.token, INVALID_PAYLOAD)
    note = make_notification(user, now)

    stats = deliver_due(now=now)

    assert stats.failed == 1
    row = fresh(Notification, note.id)
    assert row.push_status == PushStatus.FAILED
    assert "INVALID_ARGUMENT" in row.push_error
    assert fresh(Device, device.id).active is True
    assert deliver_due(now=now + timedelta(days=1)).claimed == 0


# --- retries ----------------------------------------------------------------------------------------


def test_quota_exceeded_waits_for_retry_after(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    fcm.script(device.token, quota_exceeded(retry_after=900))  # far longer than the first backoff
    note = make_notification(user, now)

    stats = deliver_due(now=now)

    assert stats.retrying == 1
    row = fresh(Notification, note.id)
    assert (row.push_status, row.push_attempts) == (PushStatus.PENDING, 1)
    assert row.push_due_at == now + timedelta(seconds=900)
    assert "QUOTA_EXCEEDED" in row.push_error or "RESOURCE_EXHAUSTED" in row.push_error
    assert row.push_claim is None

    assert deliver_due(now=now + timedelta(seconds=899)).claimed == 0
    assert fcm.hits[device.token] == 1

    deliver_due(now=now + timedelta(seconds=900))
    row = fresh(Notification, note.id)
    assert (row.push_status, row.push_attempts) == (PushStatus.SENT, 1)
    assert fcm.delivered(device.token) == 1


@pytest.mark.parametrize("transient", [UNAVAILABLE, INTERNAL], ids=["unavailable", "internal"])
def test_a_transient_error_is_retried_after_a_backoff(app: Flask, fcm: FakeFcm, transient: Any) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    fcm.script(device.token, transient)
    note = make_notification(user, now)

    deliver_due(now=now)

    row = fresh(Notification, note.id)
    base = app.config["PUSH_RETRY_BASE_SECONDS"]
    assert row.push_status == PushStatus.PENDING
    assert now + timedelta(seconds=base / 2) <= row.push_due_at <= now + timedelta(seconds=base)
    deliver_due(now=row.push_due_at)
    assert fresh(Notification, note.id).push_status == PushStatus.SENT
    # firebase-admin's own client did not retry behind the outbox's back: one hit per try.
    assert fcm.hits[device.token] == 2


def test_backoff_doubles_up_to_the_cap_and_then_the_notification_fails(app: Flask, fcm: FakeFcm) -> None:
    base, ceiling = app.config["PUSH_RETRY_BASE_SECONDS"], app.config["PUSH_RETRY_MAX_SECONDS"]
    max_attempts = app.config["PUSH_MAX_ATTEMPTS"]
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    fcm.default = UNAVAILABLE
    note = make_notification(user, now)

    clock = now
    for attempt in range(max_attempts - 1):
        deliver_due(now=clock)
        row = fresh(Notification, note.id)
        assert (row.push_status, row.push_attempts) == (PushStatus.PENDING, attempt + 1)
        longest = min(ceiling, base * 2**attempt)
        assert clock + timedelta(seconds=longest / 2) <= row.push_due_at <= clock + timedelta(seconds=longest)
        clock = row.push_due_at
    deliver_due(now=clock)

    row = fresh(Notification, note.id)
    assert (row.push_status, row.push_attempts) == (PushStatus.FAILED, max_attempts)
    assert "UNAVAILABLE" in row.push_error
    assert row.read_at is None  # still in the inbox, unread
    assert fcm.hits[device.token] == max_attempts
    assert deliver_due(now=clock + timedelta(days=7)).claimed == 0


def test_backoff_bounds_grow_and_are_capped(app: Flask) -> None:
    config = {**app.config, "PUSH_RETRY_BASE_SECONDS": 30, "PUSH_RETRY_MAX_SECONDS": 3600}
    for attempts, longest in [(0, 30), (1, 60), (4, 480), (7, 3600), (40, 3600)]:
        delays = [retry_delay(attempts, None, config).total_seconds() for _ in range(50)]
        assert all(longest / 2 <= d <= longest for d in delays), (attempts, delays)
    assert retry_delay(0, 7200, config) == timedelta(seconds=7200)  # Retry-After wins when longer
    assert retry_delay(3, 1, config) >= timedelta(seconds=120)  # and not when shorter


def test_a_retry_goes_only_to_the_devices_not_reached(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    reached, busy = make_device(user), make_device(user)
    fcm.script(busy.token, quota_exceeded(retry_after=60))
    note = make_notification(user, now)

    deliver_due(now=now)
    row = fresh(Notification, note.id)
    assert (row.push_status, row.push_device_ids) == (PushStatus.PENDING, [reached.id])

    deliver_due(now=row.push_due_at)
    row = fresh(Notification, note.id)
    assert (row.push_status, sorted(row.push_device_ids)) == (PushStatus.SENT, sorted([reached.id, busy.id]))
    assert fcm.hits[reached.token] == 1
    assert fcm.delivered(busy.token) == 1


def test_after_the_last_try_a_notification_reached_on_one_device_counts_as_sent(
    app: Flask, fcm: FakeFcm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PUSH_MAX_ATTEMPTS", 2)
    now = utcnow()
    user = make_recipient()
    reached, broken = make_device(user), make_device(user)
    fcm.script(broken.token, UNAVAILABLE, UNAVAILABLE)
    note = make_notification(user, now)

    deliver_due(now=now)
    deliver_due(now=fresh(Notification, note.id).push_due_at)

    row = fresh(Notification, note.id)
    assert (row.push_status, row.push_attempts, row.push_device_ids) == (PushStatus.SENT, 2, [reached.id])
    assert "UNAVAILABLE" in row.push_error
    assert fresh(Device, broken.id).active is True


# --- batches and leases -------------------------------------------------------------------------------


def test_more_than_500_pushes_are_split_into_batches(fcm: FakeFcm) -> None:
    """firebase-admin's send_each refuses more than 500 messages: all 1,100 arriving proves the split."""
    now = utcnow()
    user = make_recipient()
    devices = [make_device(user) for _ in range(550)]
    second = make_recipient()
    more = [make_device(second) for _ in range(550)]
    notes = [make_notification(user, now), make_notification(second, now)]

    stats = deliver_due(now=now)

    assert (stats.claimed, stats.messages, stats.sent) == (2, 1100, 2)
    assert fcm.delivered_tokens() == {d.token: 1 for d in devices + more}
    assert len(fresh(Notification, notes[0].id).push_device_ids) == 550


def test_a_run_claims_batch_after_batch_until_nothing_is_due(fcm: FakeFcm) -> None:
    now = utcnow()
    users = [make_recipient() for _ in range(5)]
    devices = [make_device(user) for user in users]
    for user in users:
        make_notification(user, now)

    first = deliver_batch(now, limit=2)
    assert (first.claimed, first.sent, pending_count()) == (2, 2, 3)  # a claim takes no more than its limit
    stats = deliver_due(now=now, limit=2)
    stats.add(first)

    assert (stats.claimed, stats.sent) == (5, 5)
    assert fcm.delivered_tokens() == {d.token: 1 for d in devices}


def test_a_row_under_another_runs_live_lease_is_left_alone(fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    note = make_notification(user, now - timedelta(minutes=10))
    note.push_claim, note.push_claimed_until = "another-run", now + timedelta(minutes=1)
    db.session.flush()

    assert deliver_due(now=now).claimed == 0
    assert fcm.hits[device.token] == 0

    # That run died: once its lease ends the row is taken over, and the lost try is counted.
    deliver_due(now=now + timedelta(minutes=1))
    row = fresh(Notification, note.id)
    assert (row.push_status, row.push_attempts, row.push_claim) == (PushStatus.SENT, 1, None)
    assert fcm.delivered(device.token) == 1


def test_a_row_whose_runs_keep_dying_is_given_up(app: Flask, fcm: FakeFcm) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    note = make_notification(user, now - timedelta(hours=1))
    note.push_attempts = app.config["PUSH_MAX_ATTEMPTS"] - 1
    note.push_claim, note.push_claimed_until = "dead-run", now - timedelta(seconds=1)
    db.session.flush()

    assert deliver_due(now=now).failed == 1

    row = fresh(Notification, note.id)
    assert row.push_status == PushStatus.FAILED
    assert "worker was lost" in row.push_error
    assert fcm.hits[device.token] == 0


# --- the embedded default -------------------------------------------------------------------------------


def test_without_credentials_pushes_are_recorded_to_a_file(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "pushes.jsonl"
    monkeypatch.setitem(app.config, "FIREBASE_CREDENTIALS", None)
    monkeypatch.setitem(app.config, "PUSH_RECORD_PATH", str(record))
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    note = make_notification(user, now, urgent=True, shift_id="9")

    deliver_due(now=now)

    (line,) = [json.loads(text) for text in record.read_text(encoding="utf-8").splitlines()]
    assert line["channel"] == "fcm" and line["token"] == device.token
    assert (line["title"], line["urgent"]) == ("新的排班", True)
    assert line["data"] == {"type": "assignment_created", "shift_id": "9", "notification_id": str(note.id)}
    assert fresh(Notification, note.id).push_status == PushStatus.SENT
    close_providers(app)


def test_a_static_token_without_a_project_is_a_configuration_error(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "FIREBASE_CREDENTIALS", f"{STATIC_TOKEN_PREFIX}x")
    monkeypatch.setitem(app.config, "FIREBASE_PROJECT_ID", None)
    now = utcnow()
    make_notification(make_recipient(), now)

    with pytest.raises(ValueError, match="FIREBASE_PROJECT_ID"):
        deliver_due(now=now)
    close_providers(app)


def test_unreadable_credentials_fail_the_run_before_it_claims_anything(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "FIREBASE_CREDENTIALS", str(tmp_path / "missing-service-account.json"))
    now = utcnow()
    note = make_notification(make_recipient(), now)

    with pytest.raises((OSError, ValueError)):
        deliver_due(now=now)

    row = fresh(Notification, note.id)
    assert (row.push_status, row.push_attempts, row.push_claim) == (PushStatus.PENDING, 0, None)
    close_providers(app)


# --- concurrent runs (committed data, real threads) ------------------------------------------------------


def run_in_thread(
    app: Flask, now: datetime, errors: list[BaseException], start: threading.Barrier | None = None, **kwargs: Any
) -> threading.Thread:
    def work() -> None:
        try:
            with app.app_context():
                if start is not None:
                    start.wait()
                deliver_due(now=now, **kwargs)
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.mark.committing
def test_two_concurrent_runs_never_send_the_same_row(app: Flask, fcm: FakeFcm) -> None:
    now = utcnow()
    with app.app_context():
        users = [make_recipient() for _ in range(120)]
        tokens = [make_device(user).token for user in users]
        for user in users:
            make_notification(user, now)
        db.session.commit()

    errors: list[BaseException] = []
    start = races.barrier(3)
    threads = [run_in_thread(app, now, errors, start, limit=7) for _ in range(3)]
    races.join_all(threads)

    assert not errors, errors
    assert fcm.hits == {token: 1 for token in tokens}
    with app.app_context():
        statuses = db.session.scalars(sa.select(Notification.push_status)).all()
    assert statuses == [PushStatus.SENT] * 120


@pytest.mark.committing
def test_a_run_whose_lease_ran_out_does_not_overwrite_the_run_that_took_over(app: Flask, fcm: FakeFcm) -> None:
    now = utcnow()
    with app.app_context():
        user = make_recipient()
        device = make_device(user)
        device_id, token = device.id, device.token
        note_id = make_notification(user, now).id
        db.session.commit()
    lease = timedelta(seconds=app.config["PUSH_LEASE_SECONDS"])
    # The slow run's push is held at the server, and then told to retry; the run that takes over
    # after the lease gets through.
    fcm.script(token, INTERNAL, OK)
    fcm.stall(count=1)

    errors: list[BaseException] = []
    slow = run_in_thread(app, now, errors)
    assert fcm.wait_stalled(1)
    with app.app_context():
        assert deliver_due(now=now + lease).sent == 1
    fcm.release()
    races.join_all([slow])

    assert not errors, errors
    with app.app_context():
        row = fresh(Notification, note_id)
        assert (row.push_status, row.push_device_ids, row.push_claim) == (PushStatus.SENT, [device_id], None)
        assert row.push_error is None
    assert fcm.hits[token] == 2
