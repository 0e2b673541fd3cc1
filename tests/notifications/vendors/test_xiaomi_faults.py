"""Xiaomi MiPush (channel ``mi``) under faults: MiPush down for a while, a worker killed mid-batch."""

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
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from notifications.delivery.push import close_providers
from notifications.delivery.service import deliver_due
from notifications.models import Notification, PushStatus
from tests.notifications.test_delivery import make_device, make_notification, make_recipient
from tests.notifications.test_delivery_faults import ROOT, claimed_and_sent, statuses, wait_until
from tests.notifications.vendors.test_xiaomi import PACKAGE, SECRET, configure, mi, register  # noqa: F401 (fixture)
from tests.push_servers.xiaomi import OK, UNAVAILABLE, FakeMiPush


@pytest.mark.parametrize("outage", ["refusing-connections", "answering-503"])
def test_everything_is_delivered_once_mipush_is_back(client: FlaskClient, mi: FakeMiPush, outage: str) -> None:
    now = utcnow()
    users = [make_recipient() for _ in range(6)]
    devices = [register(client, user) for user in users]
    for user in users:
        make_notification(user, now)
    if outage == "refusing-connections":
        mi.go_down()
    else:
        mi.default = UNAVAILABLE

    clock = now
    for _ in range(3):
        stats = deliver_due(now=clock)
        assert stats.sent == 0 and stats.retrying == stats.claimed > 0
        clock = _next_due() or clock
    mi.come_up()
    mi.default = OK
    while (due := _next_due()) is not None:
        deliver_due(now=max(clock, due))
    assert statuses() == {PushStatus.SENT: 6}
    assert {device.token: mi.delivered(device.token) for device in devices} == {d.token: 1 for d in devices}


def _next_due() -> datetime | None:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.min(Notification.push_due_at)).where(Notification.push_status == PushStatus.PENDING)
    )


@pytest.mark.committing
def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_no_inbox_row(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeMiPush(secret=SECRET, package=PACKAGE).start()
    configure(app, monkeypatch, server)
    now = utcnow()
    try:
        with app.app_context():
            users = [make_recipient() for _ in range(40)]
            devices = [make_device(user) for user in users]
            for device in devices:
                device.channel = "mi"  # registered through the API in the tests above
            tokens = [device.token for device in devices]
            for user in users:
                make_notification(user, now)
            db.session.commit()
        server.stall(after=15)  # batch 1 (10 calls) answered, 5 of batch 2 answered, the 6th held
        worker = _start_worker(app, server, now, tmp_path)
        try:
            assert server.wait_stalled(1, timeout=60), (tmp_path / "worker.log").read_text()
            # Batch 1 recorded, and batch 3 claimed behind the held one (the run claims ahead).
            assert wait_until(lambda: claimed_and_sent(app) == (20, 10)), (tmp_path / "worker.log").read_text()
            worker.send_signal(signal.SIGKILL)
            assert worker.wait(30) == -signal.SIGKILL
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        server.release(drop=True)  # the held answer never reaches the dead worker
        with app.app_context():
            assert statuses() == {PushStatus.SENT: 10, PushStatus.PENDING: 30}
            lease = timedelta(seconds=app.config["PUSH_LEASE_SECONDS"])
            deliver_due(now=now + timedelta(minutes=1))
            deliver_due(now=now + lease)
            assert statuses() == {PushStatus.SENT: 40}
            per_user = Counter(db.session.scalars(sa.select(Notification.user_id)).all())
            assert set(per_user.values()) == {1}
        delivered = server.delivered_tokens()
        assert set(delivered) == set(tokens)
        # At least once: the 5 answered while the worker died were pushed again; nothing else twice.
        assert sorted(Counter(delivered.values()).items()) == [(1, 35), (2, 5)]
    finally:
        server.stop()
        close_providers(app)


def _start_worker(app: Flask, server: FakeMiPush, now: datetime, tmp_path: Path) -> subprocess.Popen[bytes]:
    """A real separate process running deliver_due on the test's database, as a worker would."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"},
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "XIAOMI_APP_SECRET": SECRET, "XIAOMI_PACKAGE": PACKAGE, "XIAOMI_ENDPOINT": server.base_url,
        "PUSH_BATCH_SIZE": "10",
    }  # fmt: skip
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
