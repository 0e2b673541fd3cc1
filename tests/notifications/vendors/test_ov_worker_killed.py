"""A real delivery process killed in the middle of an OPPO or vivo batch: nothing is lost, no inbox
row is doubled (the pattern of tests/notifications/test_delivery_faults.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.extensions import db
from notifications.delivery.service import deliver_due
from notifications.devices.models import Device
from notifications.devices.service import token_hash
from notifications.models import Notification, PushStatus
from tests.notifications.test_delivery import make_notification
from tests.notifications.test_delivery_faults import claimed_and_sent, wait_until
from tests.notifications.vendors.conftest import Vendor, make_recipient, new_token, oppo_config, statuses, vivo_config

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.committing
def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_no_inbox_row(
    vendor: Vendor, app: Flask, tmp_path: Path
) -> None:
    now = utcnow()
    with app.app_context():
        users = [make_recipient() for _ in range(40)]
        tokens = []
        for user in users:
            token = new_token()
            tokens.append(token)
            db.session.add(Device(
                user_id=user.id, token=token, token_hash=token_hash(token), platform="android",
                channel=vendor.channel, active=True, registered_at=now, refreshed_at=now,
            ))  # fmt: skip
            make_notification(user, now)  # as the FCM test does: a commit here would wake in-process delivery
        db.session.commit()
        assert statuses() == {PushStatus.PENDING: 40}

    # Batches of 10 rows, claimed one ahead: the first is answered and recorded; of the second, OPPO takes the batch
    # (its answer is held), vivo answers 5 single sends and holds the 6th; then the worker is killed.
    vendor.server.stall(after=1 if vendor.channel == "oppo" else 15)
    config = oppo_config(vendor.server) if vendor.channel == "oppo" else vivo_config(vendor.server)
    worker = start_delivery_process(app, config, now, tmp_path, batch_size=10)
    try:
        assert vendor.server.wait_stalled(1, timeout=60), (tmp_path / "worker.log").read_text()
        # The first batch recorded, the third claimed behind the held one (the run claims ahead).
        assert wait_until(lambda: claimed_and_sent(app) == (20, 10)), (tmp_path / "worker.log").read_text()
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(30) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    vendor.server.release(drop=True)  # the held answer never reaches the dead worker

    with app.app_context():
        assert statuses() == {PushStatus.SENT: 10, PushStatus.PENDING: 30}
        assert deliver_due(now=now + timedelta(minutes=1)).sent == 10  # the rows nobody had claimed
        lease = timedelta(seconds=app.config["PUSH_LEASE_SECONDS"])
        assert deliver_due(now=now + lease).sent == 20  # the dead worker's batches, taken over
        assert statuses() == {PushStatus.SENT: 40}
        per_user = Counter(db.session.scalars(sa.select(Notification.user_id)).all())
        assert set(per_user.values()) == {1}  # none lost, none doubled

    delivered = vendor.server.delivered_targets()
    assert set(delivered) == set(tokens)
    if vendor.channel == "oppo":
        # the resend of the batch OPPO had taken is dropped by app_message_id: every phone once
        assert set(delivered.values()) == {1} and vendor.server.deduplicated == 10
    else:
        # at least once: the 5 vivo answered while the worker died were pushed again
        assert sorted(Counter(delivered.values()).items()) == [(1, 35), (2, 5)]


def start_delivery_process(
    app: Flask, config: dict[str, Any], now: datetime, tmp_path: Path, *, batch_size: int
) -> subprocess.Popen[bytes]:
    """A real separate process running deliver_due on the test's database, as a worker would."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"},
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PUSH_BATCH_SIZE": str(batch_size),
        **{name: str(value) for name, value in config.items()},
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
