"""A real delivery process killed in the middle of a Huawei batch: nothing lost, no inbox row twice.

Huawei's provider makes one call per notification, ten side by side: of the second batch the server
answers five calls and holds the other five while the process is killed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import timedelta
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
from tests.notifications.test_delivery_faults import kill_while_held, start_delivery_process, statuses
from tests.notifications.vendors.conftest import settings_for
from tests.push_servers.huawei import FakeHuawei


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
    worker = start_delivery_process(app, settings_for("hms", hms), now, tmp_path, batch_size=10)
    kill_while_held(worker, hms, 5, tmp_path)

    with app.app_context():
        assert statuses() == {PushStatus.SENT: 10, PushStatus.PENDING: 30}
        stats = deliver_due(now=now + timedelta(minutes=1))  # the rows nobody had claimed
        assert (stats.claimed, stats.sent) == (20, 20)
        lease = timedelta(seconds=app.config["PUSH_LEASE_SECONDS"])
        stats = deliver_due(now=now + lease)  # the dead worker's batch, once its lease is over
        assert (stats.claimed, stats.sent) == (10, 10)
        assert statuses() == {PushStatus.SENT: 40}
        per_user = Counter(db.session.scalars(sa.select(Notification.user_id)).all())
        assert set(per_user.values()) == {1}  # 40 inbox rows: none lost, none doubled

    delivered = hms.delivered_tokens()
    assert set(delivered) == set(tokens)
    # At least once: the 5 answered before the worker died went again; nothing else twice.
    assert sorted(Counter(delivered.values()).items()) == [(1, 35), (2, 5)]
