"""A real delivery process killed in the middle of an OPPO or vivo batch: nothing is lost, no inbox
row is doubled (the pattern of tests/notifications/test_delivery_faults.py)."""

from __future__ import annotations

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
from notifications.devices.service import token_hash
from notifications.models import Notification, PushStatus
from tests.notifications.test_delivery import make_notification
from tests.notifications.test_delivery_faults import kill_while_held, start_delivery_process
from tests.notifications.vendors.conftest import Vendor, make_recipient, new_token, settings_for, statuses


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

    # Batches of 10 rows: the first is answered and recorded; of the second, OPPO takes the batch
    # (its answer is held), vivo answers 5 single sends and holds the 6th; then the worker is killed.
    vendor.server.stall(after=1 if vendor.channel == "oppo" else 15)
    worker = start_delivery_process(app, settings_for(vendor.channel, vendor.server), now, tmp_path, batch_size=10)
    kill_while_held(worker, vendor.server, 1, tmp_path)

    with app.app_context():
        assert statuses() == {PushStatus.SENT: 10, PushStatus.PENDING: 30}
        assert deliver_due(now=now + timedelta(minutes=1)).sent == 20
        lease = timedelta(seconds=app.config["PUSH_LEASE_SECONDS"])
        assert deliver_due(now=now + lease).sent == 10  # the dead worker's batch, taken over
        assert statuses() == {PushStatus.SENT: 40}
        per_user = Counter(db.session.scalars(sa.select(Notification.user_id)).all())
        assert set(per_user.values()) == {1}  # none lost, none doubled

    delivered = vendor.server.delivered_tokens()
    assert set(delivered) == set(tokens)
    if vendor.channel == "oppo":
        # the resend of the batch OPPO had taken is dropped by app_message_id: every phone once
        assert set(delivered.values()) == {1} and vendor.server.deduplicated == 10
    else:
        # at least once: the 5 vivo answered while the worker died were pushed again
        assert sorted(Counter(delivered.values()).items()) == [(1, 35), (2, 5)]
