"""End to end: an assignment made through the API becomes an inbox item and a push delivered by a
real Celery worker on the real broker (RabbitMQ at 127.0.0.1:5672 in CI), through firebase-admin,
to the local FCM server.

The web side (this test's app) is switched from in-process tasks to the broker for the test, so the
request's commit enqueues ``notifications.deliver_due`` (notifications.delivery.tasks.wake_sender) on a queue of this
run's own; a ``celery -A worker worker`` subprocess consumes it.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import kombu.pools
import pytest
import sqlalchemy as sa
from celery import Celery
from flask import Flask
from flask.testing import FlaskClient
from kombu.exceptions import OperationalError

from core.extensions import db
from core.tasks import celery, celery_settings, init_celery
from notifications.models import Notification, PushStatus
from tests import factories
from tests.fcm_server import FakeFcm
from tests.notifications.test_delivery import PROJECT, fcm  # noqa: F401  (fixture)
from tests.test_tasks_celery import start_worker as start_celery_worker
from tests.test_tasks_celery import stop_worker as stop_celery_worker

pytestmark = pytest.mark.committing

ROOT = Path(__file__).resolve().parents[2]  # the repository
BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
API = "/api/v1"
WORKER_START_AND_RUN_SECONDS = 60


@pytest.fixture
def queue(app: Flask, tmp_path: Path) -> Iterator[str]:
    """This app enqueues on the real broker, to a queue of its own (deleted afterwards)."""
    name = f"shouwang-notifications-test-{uuid.uuid4().hex}"
    saved = {key: app.config.get(key) for key in ("CELERY_BROKER_URL", "CELERY_QUEUE")}
    app.config.update(CELERY_BROKER_URL=BROKER_URL, CELERY_QUEUE=name)
    init_celery(app)
    forget_broker_connections()
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
    except OperationalError as error:
        _restore(app, saved)
        pytest.fail(f"the broker at {BROKER_URL} is unreachable ({error}); start RabbitMQ")
    try:
        yield name
    finally:
        with celery.connection_for_write() as connection:
            connection.default_channel.queue_delete(name)
            connection.default_channel.exchange_delete(name)
        _restore(app, saved)


def _restore(app: Flask, saved: dict[str, str | None]) -> None:
    app.config.update(saved)
    init_celery(app)  # back to in-process tasks for the rest of the session
    forget_broker_connections()


def forget_broker_connections() -> None:
    """Make the shared Celery app connect to the broker now configured.

    Celery keeps the connection and producer pools it made on first use (also in-process, where it
    takes a producer too), and kombu keeps pools per broker URL: close and forget both, as Celery
    does in a forked child.
    """
    kombu.pools.reset()
    celery._pool = None
    celery.amqp._producer_pool = None


def start_worker(app: Flask, fcm: FakeFcm, queue: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A real worker that pushes to the local FCM server."""
    return start_celery_worker(
        app,
        queue,
        tmp_path,
        {
            "FIREBASE_CREDENTIALS": app.config["FIREBASE_CREDENTIALS"],
            "FIREBASE_PROJECT_ID": PROJECT,
            "FCM_ENDPOINT": fcm.base_url,
        },
    )


def stop_worker(queue: str, process: subprocess.Popen[bytes]) -> int:
    producer = Celery("test-control", set_as_current=False)
    producer.conf.update(celery_settings({"CELERY_BROKER_URL": BROKER_URL, "CELERY_QUEUE": queue}, "/tmp"))
    try:
        return stop_celery_worker(producer, queue, process)
    finally:
        producer.close()


def test_an_assignment_becomes_an_inbox_item_and_a_push_delivered_by_a_worker(
    app: Flask, client: FlaskClient, fcm: FakeFcm, queue: str, tmp_path: Path
) -> None:
    with app.app_context():
        _city, _district, _subdistrict, community, grid = factories.make_branch()
        shift_id = factories.make_shift(grid, starts_in=timedelta(days=2)).id
        volunteer = factories.make_volunteer(grid)
        volunteer_id, user_id = volunteer.id, volunteer.user_id
        phone = factories.headers_for(volunteer.user)
        organiser = factories.headers_for(factories.make_user("organiser", community))
        db.session.commit()
        db.session.remove()
    token = f"e2e-{uuid.uuid4().hex}"

    # The volunteer's phone registers for pushes, and quiet hours are off (the test may run at night).
    response = client.post(f"{API}/me/devices", json={"token": token, "platform": "android"}, headers=phone)
    assert response.status_code == 201, response.get_json()
    device_id = response.get_json()["id"]
    quiet = {"quiet_hours_enabled": False, "quiet_start": "22:00", "quiet_end": "07:00"}
    assert client.put(f"{API}/me/notification-settings", json=quiet, headers=phone).status_code == 200

    worker, log_path = start_worker(app, fcm, queue, tmp_path)
    try:
        response = client.post(
            f"{API}/shifts/{shift_id}/assign", json={"volunteer_id": volunteer_id}, headers=organiser
        )
        assert response.status_code == 201, response.get_json()
        assignment_id = response.get_json()["id"]

        deadline = time.monotonic() + WORKER_START_AND_RUN_SECONDS
        while push_status(app, user_id) != PushStatus.SENT:
            assert worker.poll() is None, "worker exited:\n" + log_path.read_text()
            assert time.monotonic() < deadline, "no push in time:\n" + log_path.read_text()
            time.sleep(0.1)
    finally:
        exit_code = stop_worker(queue, worker)

    log = log_path.read_text()
    assert "notifications.deliver_due" in log and "succeeded" in log, log
    assert exit_code == 0, log
    # The push reached the phone's token once, with the deep link.
    assert fcm.delivered(token) == 1
    (message,) = fcm.messages
    assert message["data"]["type"] == "assignment_created"
    assert message["data"]["assignment_id"] == str(assignment_id)
    assert message["data"]["shift_id"] == str(shift_id)
    # And the inbox has it, once, marked as pushed.
    inbox = client.get(f"{API}/me/notifications", headers=phone).get_json()["items"]
    assert [(item["kind"], item["push_status"]) for item in inbox] == [("assignment_created", "sent")]
    assert message["data"]["notification_id"] == str(inbox[0]["id"])
    with app.app_context():
        row = db.session.get(Notification, inbox[0]["id"])
        assert row.push_device_ids == [device_id]


def push_status(app: Flask, user_id: int) -> str | None:
    with app.app_context():  # a fresh session: each poll sees the worker's latest commit
        return db.session.scalar(sa.select(Notification.push_status).where(Notification.user_id == user_id))
