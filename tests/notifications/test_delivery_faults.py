"""Faults: the push service down for a while, and a worker killed in the middle of a batch.

Outbox guarantee under test: every committed notification is pushed at least once, and the inbox
(one row per notification and user) is never duplicated, whatever happens to the push service or
to the worker sending it. And after an outage the backlog goes out on the first delivery run that
finds the service back (issue 12 measured a 156 s drain after a one-minute outage, the longest
message waiting 212 s; here, in test time, the drain is the wait for the next beat run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from notifications.delivery.outcomes import max_attempts, retry_delay
from notifications.delivery.service import deliver_due
from notifications.models import Notification, PushStatus, PushWait
from tests.fcm_server import OK, UNAVAILABLE, FakeFcm, quota_exceeded
from tests.notifications.test_delivery import (
    PROJECT,
    fcm,  # noqa: F401  (fixture)
    make_device,
    make_notification,
    make_recipient,
)
from tests.push_servers.base import FakeServer

ROOT = Path(__file__).resolve().parents[2]  # the repository


def statuses() -> Counter[str]:
    db.session.expire_all()
    return Counter(db.session.scalars(sa.select(Notification.push_status)).all())


def next_due() -> datetime | None:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.max(Notification.push_due_at)).where(Notification.push_status == PushStatus.PENDING)
    )


@pytest.mark.parametrize("outage", ["refusing-connections", "answering-503"])
def test_every_message_is_delivered_once_the_push_service_is_back(fcm: FakeFcm, outage: str) -> None:
    now = utcnow()
    users = [make_recipient() for _ in range(15)]
    tokens = [make_device(user).token for user in users for _ in range(2)]
    for user in users:
        make_notification(user, now)
        make_notification(user, now + timedelta(minutes=3), kind="shift_reminder")
    if outage == "refusing-connections":
        fcm.go_down()
    else:
        fcm.default = UNAVAILABLE

    clock = now
    for _ in range(3):  # beat keeps trying while the service is down
        stats = deliver_due(now=clock)
        assert stats.sent == 0 and stats.retrying == stats.claimed > 0
        clock = next_due()
    assert statuses() == {PushStatus.PENDING: 30}
    assert not fcm.delivered_tokens()

    fcm.come_up()
    fcm.default = OK
    runs = 0
    while (due := next_due()) is not None:
        deliver_due(now=max(clock, due))
        runs += 1
        assert runs < 10, statuses()

    assert statuses() == {PushStatus.SENT: 30}
    # Each of the 30 notifications reached both of its user's phones, each exactly once.
    assert fcm.delivered_tokens() == {token: 2 for token in tokens}


@pytest.mark.parametrize("outage", ["refusing-connections", "answering-503"])
def test_after_a_minute_long_outage_the_backlog_goes_on_the_first_run_that_finds_the_service_back(
    app: Flask, fcm: FakeFcm, outage: str
) -> None:
    """Driven second by second in test time: a notification every 5 s during a one-minute outage
    (every third urgent, each write waking a delivery run), beat's run every PUSH_DELIVERY_SECONDS;
    the service comes back at 63 s, between two beat runs."""
    beat = app.config["PUSH_DELIVERY_SECONDS"]
    assert beat == 10
    start, back_at = utcnow(), 63
    users = [make_recipient() for _ in range(12)]
    tokens = {user.id: make_device(user).token for user in users}
    written: dict[int, tuple[int, bool]] = {}  # notification id -> (second written, urgent)
    if outage == "refusing-connections":
        fcm.go_down()
    else:
        fcm.default = UNAVAILABLE

    first_run_after_recovery = None
    for second in range(0, 181):
        now = start + timedelta(seconds=second)
        if second == back_at:
            fcm.come_up()
            fcm.default = OK
        runs = 0
        if second % 5 == 0 and second < 60:
            user = users[second // 5]
            note = make_notification(user, now, urgent=second % 15 == 0, kind="broadcast")
            written[note.id] = (second, note.urgent)
            runs += 1  # the write's wake-up
        if second % beat == 0:
            runs += 1
        for _ in range(runs):
            deliver_due(now=now)
        if runs and second >= back_at and first_run_after_recovery is None:
            first_run_after_recovery = second
            sent = {n.id: n for n in db.session.scalars(sa.select(Notification)) if n.push_status == PushStatus.SENT}
            # Urgent call-outs went on that first run, whatever their own backoff said.
            assert {i for i, (_, urgent) in written.items() if urgent} <= set(sent)

    assert first_run_after_recovery == 70
    db.session.expire_all()
    rows = db.session.scalars(sa.select(Notification)).all()
    assert {row.push_status for row in rows} == {PushStatus.SENT}
    pushed = {row.id: (row.pushed_at - start).total_seconds() for row in rows}
    drain = max(pushed.values()) - back_at
    longest_wait = max(pushed[i] - second for i, (second, _) in written.items())
    assert drain == first_run_after_recovery - back_at == 7  # the wait for the next beat run
    assert longest_wait == 70  # the first message, written as the outage began
    # Every message reached its phone exactly once; dry-run probes delivered nothing.
    assert fcm.delivered_tokens() == {token: 1 for token in tokens.values()}


def test_urgent_pushes_back_off_on_their_own_short_schedule_with_more_tries(app: Flask) -> None:
    config = app.config
    assert (config["PUSH_URGENT_RETRY_BASE_SECONDS"], config["PUSH_URGENT_RETRY_MAX_SECONDS"]) == (5, 60)
    for attempts, longest in [(0, 5), (1, 10), (3, 40), (4, 60), (12, 60)]:
        delays = [retry_delay(attempts, None, config, urgent=True).total_seconds() for _ in range(50)]
        assert all(longest / 2 <= d <= longest for d in delays), (attempts, delays)
    assert retry_delay(0, 120, config, urgent=True).total_seconds() == 120  # Retry-After still wins
    assert max_attempts(True, config) == 16 > max_attempts(False, config) == 8


def test_a_run_with_nothing_due_probes_a_service_that_was_down_and_sends_the_backlog(
    client: FlaskClient, fcm: FakeFcm
) -> None:
    now = utcnow()
    user = make_recipient()
    device = make_device(user)
    note = make_notification(user, now)
    fcm.go_down()
    assert deliver_due(now=now).retrying == 1
    db.session.expire_all()
    # Its backoff (15–30 s, jittered) is not over at 5 s nor at 10 s.
    assert (note.push_wait, note.push_due_at >= now + timedelta(seconds=15)) == (PushWait.OUTAGE, True)

    still_down = deliver_due(now=now + timedelta(seconds=5))  # nothing due: a probe, refused
    assert (still_down.claimed, still_down.probes, still_down.recovered) == (0, 1, 0)
    assert sum(fcm.probes.values()) == 0  # the connection was refused
    assert "shouwang_push_waiting_on_outage 1.0\n" in client.get("/metrics").get_data(as_text=True)

    fcm.come_up()
    back = deliver_due(now=now + timedelta(seconds=10))
    assert (back.probes, back.recovered, back.claimed, back.sent) == (1, 1, 1, 1)
    assert fcm.probes == {200: 1} and fcm.delivered(device.token) == 1
    assert deliver_due(now=now + timedelta(seconds=30)).probes == 0  # nothing waits on an outage now
    assert "shouwang_push_waiting_on_outage 0.0\n" in client.get("/metrics").get_data(as_text=True)


def test_rows_the_service_asked_to_wait_keep_their_time_when_an_outage_ends(fcm: FakeFcm) -> None:
    now = utcnow()
    throttled_user, held_user, fresh_user = make_recipient(), make_recipient(), make_recipient()
    throttled, held, fresh = make_device(throttled_user), make_device(held_user), make_device(fresh_user)
    fcm.script(throttled.token, quota_exceeded(retry_after=900))
    waits = make_notification(throttled_user, now)
    assert deliver_due(now=now).retrying == 1
    fcm.default = UNAVAILABLE
    outage = make_notification(held_user, now)
    assert deliver_due(now=now).retrying == 1
    db.session.expire_all()
    assert (waits.push_wait, outage.push_wait) == (PushWait.RETRY_AFTER, PushWait.OUTAGE)

    fcm.default = OK
    make_notification(fresh_user, now + timedelta(seconds=5))
    stats = deliver_due(now=now + timedelta(seconds=5))  # a new message goes through: the service is back
    assert (stats.recovered, stats.sent) == (1, 2)
    assert fcm.delivered(held.token) == fcm.delivered(fresh.token) == 1
    db.session.expire_all()
    assert waits.push_status == PushStatus.PENDING and waits.push_due_at == now + timedelta(seconds=900)
    assert fcm.hits[throttled.token] == 1


@pytest.mark.committing
def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_no_inbox_row(
    app: Flask, fcm: FakeFcm, tmp_path: Path
) -> None:
    now = utcnow()
    with app.app_context():
        users = [make_recipient() for _ in range(40)]
        tokens = [make_device(user).token for user in users]
        for user in users:
            make_notification(user, now)
        db.session.commit()
        assert statuses() == {PushStatus.PENDING: 40}

    # Batches of 10 rows; the worker claims a batch ahead of the one whose answers it waits for.
    # The first batch is answered and recorded; of the second, 5 are answered and 5 held at the
    # server while the worker waits for them, with the third claimed behind it — then it is killed.
    fcm.stall(after=15)
    settings = {
        "FIREBASE_CREDENTIALS": app.config["FIREBASE_CREDENTIALS"],
        "FIREBASE_PROJECT_ID": PROJECT,
        "FCM_ENDPOINT": fcm.base_url,
    }
    worker = start_delivery_process(app, settings, now, tmp_path, batch_size=10)
    kill_while_held(worker, fcm, 5, tmp_path, then=lambda: claimed_and_sent(app) == (20, 10))

    with app.app_context():
        assert statuses() == {PushStatus.SENT: 10, PushStatus.PENDING: 30}
        # The rows it had not claimed yet go out with the next run; the dead worker's lease holds
        # its second and third batches back for a while...
        stats = deliver_due(now=now + timedelta(minutes=1))
        assert (stats.claimed, stats.sent) == (10, 10)
        assert statuses() == {PushStatus.SENT: 20, PushStatus.PENDING: 20}
        # ...then a run takes them over and delivers every one.
        lease = timedelta(seconds=app.config["PUSH_LEASE_SECONDS"])
        stats = deliver_due(now=now + lease)
        assert (stats.claimed, stats.sent) == (20, 20)

        assert statuses() == {PushStatus.SENT: 40}  # still 40 inbox rows: none lost, none doubled
        per_user = Counter(db.session.scalars(sa.select(Notification.user_id)).all())
        assert set(per_user.values()) == {1}

    delivered = fcm.delivered_tokens()
    assert set(delivered) == set(tokens)  # nobody missed
    # At least once: the 5 answered while the worker died were pushed again; nothing else twice.
    assert sorted(Counter(delivered.values()).items()) == [(1, 35), (2, 5)]


def claimed_and_sent(app: Flask) -> tuple[int, int]:
    """Rows still held under a run's claim, and rows sent: in one statement, so from one snapshot
    (two reads could see the first batch still claimed and then already sent)."""
    with app.app_context():
        t = Notification.__table__
        held, sent = db.session.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(sa.case((t.c.push_claim.is_not(None), 1), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(sa.case((t.c.push_status == PushStatus.SENT, 1), else_=0)), 0),
            )
        ).one()
        db.session.rollback()
    return int(held), int(sent)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def start_delivery_process(
    app: Flask, settings: Mapping[str, str], now: datetime, tmp_path: Path, *, batch_size: int
) -> subprocess.Popen[bytes]:
    """A real separate process running deliver_due on the test's database, as a worker would;
    ``settings``: the environment that points its push provider at the test's server."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"},
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PUSH_BATCH_SIZE": str(batch_size),
        **settings,
    }
    code = (
        "import sys\n"
        "from datetime import datetime\n"
        "from app import create_app\n"
        "from notifications.delivery.service import deliver_due\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    print(deliver_due(now=datetime.fromisoformat(sys.argv[1])), flush=True)\n"
    )
    with (tmp_path / "worker.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-c", code, now.isoformat()], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def kill_while_held(
    worker: subprocess.Popen[bytes],
    server: FakeServer[Any],
    held: int,
    tmp_path: Path,
    *,
    then: Callable[[], bool] | None = None,
) -> None:
    """Kill ``worker`` (SIGKILL) once ``server`` holds ``held`` of its calls (see ``stall``) and
    ``then`` holds (e.g. the batch claimed ahead is claimed); the held answers are then dropped:
    they never reach the dead worker."""
    try:
        assert server.wait_stalled(held, timeout=60), (tmp_path / "worker.log").read_text()
        if then is not None:
            assert wait_until(then), (tmp_path / "worker.log").read_text()
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(30) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    server.release(drop=True)
