"""Faults: the push service down for a while, and a worker killed in the middle of a batch.

Outbox guarantee under test: every committed notification is pushed at least once, and the inbox
(one row per notification and user) is never duplicated, whatever happens to the push service or
to the worker sending it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.extensions import db
from notifications.delivery import deliver_due
from notifications.models import Notification, PushStatus
from tests.fcm_server import OK, UNAVAILABLE, FakeFcm
from tests.test_notifications_delivery import (
    PROJECT,
    fcm,  # noqa: F401  (fixture)
    make_device,
    make_notification,
    make_recipient,
)

ROOT = Path(__file__).resolve().parent.parent


def statuses() -> Counter[str]:
    db.session.expire_all()
    return Counter(db.session.scalars(sa.select(Notification.push_status)).all())


def next_due() -> datetime | None:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.max(Notification.push_due_at)).where(Notification.push_status == PushStatus.PENDING)
    )


@pytest.mark.parametrize("outage", ["refusing-connections", "answering-503"])
def test_every_message_is_delivered_once_the_push_service_is_back(fcm: FakeFcm, outage: str) -> None:  # noqa: F811
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


@pytest.mark.committing
def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_no_inbox_row(
    app: Flask, fcm: FakeFcm, tmp_path: Path  # noqa: F811
) -> None:
    now = utcnow()
    with app.app_context():
        users = [make_recipient() for _ in range(40)]
        tokens = [make_device(user).token for user in users]
        for user in users:
            make_notification(user, now)
        db.session.commit()
        assert statuses() == {PushStatus.PENDING: 40}

    # Batches of 10 rows (claimed, sent, recorded, then the next): the first is answered and
    # recorded; of the second, 5 are answered and 5 held at the server while the worker waits for
    # them — then it is killed.
    fcm.stall(after=15)
    worker = start_delivery_process(app, fcm, now, tmp_path, batch_size=10)
    try:
        assert fcm.wait_stalled(5, timeout=60), (tmp_path / "worker.log").read_text()
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(30) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    fcm.release(drop=True)  # the held answers never reach the dead worker

    with app.app_context():
        assert statuses() == {PushStatus.SENT: 10, PushStatus.PENDING: 30}
        # The rows it had not claimed yet go out with the next run; the dead worker's lease holds
        # its second batch back for a while...
        stats = deliver_due(now=now + timedelta(minutes=1))
        assert (stats.claimed, stats.sent) == (20, 20)
        assert statuses() == {PushStatus.SENT: 30, PushStatus.PENDING: 10}
        # ...then a run takes that batch over and delivers every one.
        lease = timedelta(seconds=app.config["PUSH_LEASE_SECONDS"])
        stats = deliver_due(now=now + lease)
        assert (stats.claimed, stats.sent) == (10, 10)

        assert statuses() == {PushStatus.SENT: 40}  # still 40 inbox rows: none lost, none doubled
        per_user = Counter(db.session.scalars(sa.select(Notification.user_id)).all())
        assert set(per_user.values()) == {1}

    delivered = fcm.delivered_tokens()
    assert set(delivered) == set(tokens)  # nobody missed
    # At least once: the 5 answered while the worker died were pushed again; nothing else twice.
    assert sorted(Counter(delivered.values()).items()) == [(1, 35), (2, 5)]


def start_delivery_process(
    app: Flask, fcm: FakeFcm, now: datetime, tmp_path: Path, *, batch_size: int  # noqa: F811
) -> subprocess.Popen[bytes]:
    """A real separate process running deliver_due on the test's database, as a worker would."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"},
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "FIREBASE_CREDENTIALS": app.config["FIREBASE_CREDENTIALS"],
        "FIREBASE_PROJECT_ID": PROJECT,
        "FCM_ENDPOINT": fcm.base_url,
        "PUSH_BATCH_SIZE": str(batch_size),
    }
    code = (
        "import sys\n"
        "from datetime import datetime\n"
        "from app import create_app\n"
        "from notifications.delivery import deliver_due\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    print(deliver_due(now=datetime.fromisoformat(sys.argv[1])), flush=True)\n"
    )
    with (tmp_path / "worker.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-c", code, now.isoformat()], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
