"""Xiaomi MiPush (channel ``mi``) under faults: MiPush down for a while, a worker killed mid-batch."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from notifications.delivery.service import deliver_due
from notifications.models import Notification, PushStatus
from tests.notifications.test_delivery import make_device, make_notification, make_recipient
from tests.notifications.test_delivery_faults import kill_while_held, start_delivery_process, statuses
from tests.notifications.vendors.conftest import settings_for
from tests.notifications.vendors.test_xiaomi import register
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
    app: Flask, mi: FakeMiPush, tmp_path: Path
) -> None:
    server = mi
    now = utcnow()
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
    worker = start_delivery_process(app, settings_for("mi", server), now, tmp_path, batch_size=10)
    kill_while_held(worker, server, 1, tmp_path)
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
