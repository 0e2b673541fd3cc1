"""Xiaomi MiPush (channel ``mi``) under faults: MiPush down for a while (a worker killed mid-batch:
test_worker_killed.py)."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from notifications.delivery.service import deliver_due
from notifications.models import Notification, PushStatus
from tests.notifications.test_delivery import make_notification, make_recipient
from tests.notifications.test_delivery_faults import statuses
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
