"""A real delivery process killed in the middle of a vendor batch: nothing is lost, no inbox row is
doubled (the pattern of tests/notifications/test_delivery_faults.py, for each vendor channel).

Batches of 10 rows, claimed one ahead: the first is answered and recorded; of the second, the
server answers part and holds the rest while the process is killed, with the third claimed behind it. Huawei and Honor make one call per notification, ten
side by side; MiPush eight side by side; vivo its first alone, then eight side by side; OPPO the whole batch in one call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
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
from tests.notifications.test_delivery_faults import claimed_and_sent, kill_while_held, start_delivery_process, statuses
from tests.notifications.vendors.conftest import make_recipient, new_token, serve, settings_for

#: Per channel: calls answered before the stall, and how many held calls show the worker is waiting.
STALLS = {"hms": (15, 5), "honor": (15, 5), "mi": (15, 1), "vivo": (15, 1), "oppo": (1, 1)}


@pytest.fixture(params=sorted(STALLS))
def channel(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(channel: str, app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from serve(channel, app, monkeypatch)


@pytest.mark.committing
def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_no_inbox_row(
    app: Flask, channel: str, server: Any, tmp_path: Path
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
                channel=channel, active=True, registered_at=now, refreshed_at=now,
            ))  # fmt: skip
            make_notification(user, now)  # as the FCM test does: a commit here would wake in-process delivery
        db.session.commit()
        assert statuses() == {PushStatus.PENDING: 40}

    answered, held = STALLS[channel]
    server.stall(after=answered)
    worker = start_delivery_process(app, settings_for(channel, server), now, tmp_path, batch_size=10)
    # The first batch recorded, the third claimed behind the held one (the run claims ahead).
    kill_while_held(worker, server, held, tmp_path, then=lambda: claimed_and_sent(app) == (20, 10))

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

    delivered = server.delivered_tokens()
    assert set(delivered) == set(tokens)
    if channel == "oppo":
        # the resend of the batch OPPO had taken is dropped by app_message_id: every phone once
        assert set(delivered.values()) == {1} and server.deduplicated == 10
    else:
        # at least once: the 5 answered before the worker died went again; nothing else twice
        assert sorted(Counter(delivered.values()).items()) == [(1, 35), (2, 5)]
