"""A real delivery process killed in the middle of a Huawei batch: nothing lost, no inbox row twice.

Huawei's provider makes one call per notification, ten side by side: of the second batch the server
answers five calls and holds the other five while the process is killed.
"""

from __future__ import annotations

import hashlib
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
from notifications.delivery.service import deliver_due
from notifications.devices.models import Device
from notifications.models import Notification, PushStatus
from tests.notifications.test_delivery import make_notification, make_recipient
from tests.notifications.test_delivery_faults import claimed_and_sent, statuses, wait_until
from tests.notifications.vendors.huawei_honor_support import hms  # noqa: F401 (fixture)
from tests.push_servers.huawei import FakeHuawei

ROOT = Path(__file__).resolve().parents[3]


def hms_device(user_id: int, token: str) -> None:
    now = utcnow()
    db.session.add(Device(
        user_id=user_id, token=token, token_hash=hashlib.sha256(token.encode()).hexdigest(), platform="android",
        channel="hms", active=True, registered_at=now, refreshed_at=now,
    ))  # fmt: skip


@pytest.mark.committing
def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_no_inbox_row(
    app: Flask, hms: FakeHuawei, tmp_path: Path
) -> None:
    now = utcnow()
    with app.app_context():
        users = [make_recipient() for _ in range(40)]
        tokens = [f"hms-{user.id}" for user in users]
        for user, token in zip(users, tokens, strict=True):
            hms_device(user.id, token)
            make_notification(user, now)
        db.session.commit()
        assert statuses() == {PushStatus.PENDING: 40}

    # Batches of 10 rows: the first is answered and recorded; of the second, 5 calls are answered
    # and 5 held at the server while the worker waits for them — then it is killed.
    hms.stall(after=15)
    worker = start_delivery_process(app, hms, now, tmp_path, batch_size=10)
    try:
        assert hms.wait_stalled(5, timeout=60), (tmp_path / "worker.log").read_text()
        # The first batch recorded, the third claimed behind the held one (the run claims ahead).
        assert wait_until(lambda: claimed_and_sent(app) == (20, 10)), (tmp_path / "worker.log").read_text()
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(30) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    hms.release(drop=True)  # the held answers never reach the dead worker

    with app.app_context():
        assert statuses() == {PushStatus.SENT: 10, PushStatus.PENDING: 30}
        stats = deliver_due(now=now + timedelta(minutes=1))  # the rows nobody had claimed
        assert (stats.claimed, stats.sent) == (10, 10)
        lease = timedelta(seconds=app.config["PUSH_LEASE_SECONDS"])
        stats = deliver_due(now=now + lease)  # the dead worker's batches, once its lease is over
        assert (stats.claimed, stats.sent) == (20, 20)
        assert statuses() == {PushStatus.SENT: 40}
        per_user = Counter(db.session.scalars(sa.select(Notification.user_id)).all())
        assert set(per_user.values()) == {1}  # 40 inbox rows: none lost, none doubled

    delivered = hms.delivered_tokens()
    assert set(delivered) == set(tokens)
    # At least once: the 5 answered before the worker died went again; nothing else twice.
    assert sorted(Counter(delivered.values()).items()) == [(1, 35), (2, 5)]


def start_delivery_process(
    app: Flask, hms: FakeHuawei, now: datetime, tmp_path: Path, *, batch_size: int
) -> subprocess.Popen[bytes]:
    """A separate process running deliver_due on the test's database, as a worker does."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"},
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "HMS_CLIENT_ID": app.config["HMS_CLIENT_ID"],
        "HMS_CLIENT_SECRET": app.config["HMS_CLIENT_SECRET"],
        "HMS_ENDPOINT": hms.base_url,
        "HMS_AUTH_URL": hms.auth_url,
        "PUSH_BATCH_SIZE": str(batch_size),
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
