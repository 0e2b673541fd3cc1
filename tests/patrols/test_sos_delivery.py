"""An SOS's pushes with the real components: firebase-admin to the local FCM server
(tests/fcm_server.py), and a real Celery worker on RabbitMQ killed while it holds the work.

- Quiet hours hold back ordinary pushes, never an SOS: raised in the organiser's quiet hours, the
  alert is pushed at once.
- No SOS is lost when a worker dies: killed (SIGKILL) while it delivers an escalation's pushes, a
  new worker finishes the work; each escalation step happened once, every alert reached the push
  service at least once, and each inbox row exists once. And (PostgreSQL) killed in the middle of
  the escalation's transaction, waiting on a row lock the test holds: nothing of the step is left,
  and the new worker makes it once.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from core.tasks import celery
from notifications.models import Notification, PushStatus
from notifications.quiet_hours.service import push_due_at
from notifications.texts import zone
from patrols.sos.models import SosEvent, SosEventKind, SosRecipient
from tests import factories
from tests.conftest import Tree
from tests.fcm_server import FakeFcm
from tests.notifications.test_delivery import PROJECT, fcm  # noqa: F401  (fixture)
from tests.notifications.test_delivery_celery import queue, stop_worker  # noqa: F401  (fixture)
from tests.test_tasks_celery import start_worker
from volunteers.models import VolunteerKind

API = "/api/v1"
LAT, LON = 40.653, 109.845  # inside tree.grid_a


def sos_body(**extra: Any) -> dict[str, Any]:
    return {
        "client_id": str(uuid.uuid4()), "lat": LAT, "lon": LON, "accuracy_m": 9.0,
        "device_time": utcnow().isoformat(), **extra,
    }  # fmt: skip


def register_phone(client: FlaskClient, headers: dict[str, str]) -> str:
    token = f"sos-{uuid.uuid4().hex}"
    response = client.post(f"{API}/me/devices", json={"token": token, "platform": "android"}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return token


def quiet_around_now(client: FlaskClient, headers: dict[str, str]) -> None:
    """Quiet hours from an hour ago to an hour ahead, in the user's area's zone (Asia/Shanghai)."""
    local = utcnow().astimezone(zone("Asia/Shanghai"))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    body = {"quiet_hours_enabled": True, "quiet_start": f"{start:%H:%M}", "quiet_end": f"{end:%H:%M}"}
    response = client.put(f"{API}/me/notification-settings", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()


def test_an_sos_raised_in_the_organisers_quiet_hours_is_pushed_at_once(
    app: Flask, client: FlaskClient, tree: Tree, fcm: FakeFcm
) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    headers = factories.headers_for(organiser)
    token = register_phone(client, headers)
    quiet_around_now(client, headers)
    now = utcnow()
    local = now.astimezone(zone("Asia/Shanghai"))
    minute = local.hour * 60 + local.minute
    # An ordinary push written now would wait an hour, to the end of the quiet hours.
    held = push_due_at(now, zone("Asia/Shanghai"), (minute - 60) % 1440, (minute + 60) % 1440, urgent=False, enabled=True)
    assert held > now + timedelta(minutes=50)
    volunteer = factories.make_volunteer(tree.grid_a, real_name="李四")

    response = client.post(f"{API}/me/sos", json=sos_body(note="摔伤了"), headers=factories.headers_for(volunteer.user))
    assert response.status_code == 201, response.get_json()
    sos_id = response.get_json()["id"]

    # The request's commit woke the sender (in-process here): the push went through firebase-admin.
    assert fcm.delivered(token) == 1
    (message,) = fcm.messages
    assert message["data"]["type"] == "sos_alert" and message["data"]["sos_id"] == str(sos_id)
    assert (message["data"]["lat"], message["data"]["lon"], message["data"]["level"]) == (str(LAT), str(LON), "community")
    assert message["android"]["priority"] == "high"
    (item,) = client.get(f"{API}/me/notifications", headers=headers).get_json()["items"]
    assert (item["kind"], item["push_status"]) == ("sos_alert", "sent")
    assert message["data"]["notification_id"] == str(item["id"])
    assert "摔伤了" in message["notification"]["body"]


# --- a worker killed while it holds the work --------------------------------------------------------

WORKER_SECONDS = 60  # to start a worker and see the work done, at most
LEASE_SECONDS = 2  # the dead worker's claim on the rows it was pushing lapses this soon


def worker(app: Flask, fcm: FakeFcm, queue: str, where: Path, *, ack_minutes: int = 0) -> Any:
    """A real ``celery -A worker worker`` on the test's queue and database, pushing to the local FCM
    server; by default an SOS nobody answers is due to escalate again at once (SOS_ACK_MINUTES 0)."""
    where.mkdir()
    process, log = start_worker(app, queue, where, {
        "FIREBASE_CREDENTIALS": app.config["FIREBASE_CREDENTIALS"], "FIREBASE_PROJECT_ID": PROJECT,
        "FCM_ENDPOINT": fcm.base_url, "SOS_ACK_MINUTES": str(ack_minutes), "PUSH_LEASE_SECONDS": str(LEASE_SECONDS),
    })  # fmt: skip
    return process, log


def wait_for(condition: Any, process: Any, log: Path, *, beat: str | None = None) -> None:
    """Poll ``condition`` until it holds (the worker alive, within WORKER_SECONDS); ``beat``: send that
    periodic task every second meanwhile, as beat would."""
    deadline, last_beat = time.monotonic() + WORKER_SECONDS, 0.0
    while not condition():
        assert process.poll() is None, "worker exited:\n" + log.read_text()
        assert time.monotonic() < deadline, "not done in time:\n" + log.read_text()
        if beat and time.monotonic() - last_beat >= 1:
            celery.send_task(beat)
            last_beat = time.monotonic()
        time.sleep(0.1)


def committed(app: Flask, query: Any) -> list[Any]:
    with app.app_context():  # a fresh session: each poll sees the worker's latest commit
        return list(db.session.execute(query).tuples())


@pytest.mark.committing
def test_a_worker_killed_while_pushing_an_escalation_loses_nothing_and_doubles_nothing(
    app: Flask, client: FlaskClient, fcm: FakeFcm, queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "SOS_ACK_MINUTES", 0)  # due to escalate as soon as it is raised
    with app.app_context():
        city, district, _subdistrict, community, grid = factories.make_branch()
        volunteer = factories.make_volunteer(grid, real_name="李四")
        people = {
            "organiser": factories.make_user("organiser", community),
            "district": factories.make_user("staff", district),
            "city": factories.make_user("staff", city),
        }
        ids = {name: user.id for name, user in people.items()}
        phones = {name: factories.headers_for(user) for name, user in people.items()}
        raiser = factories.headers_for(volunteer.user)
        db.session.commit()
        db.session.remove()
    tokens = {name: register_phone(client, headers) for name, headers in phones.items()}
    by_token = {token: name for name, token in tokens.items()}

    # The organiser's alert is answered; the next push (the district's, after the escalation) is
    # held at the push service while the worker waits for it.
    fcm.stall(after=1)
    first, first_log = worker(app, fcm, queue, tmp_path / "first")
    try:
        response = client.post(f"{API}/me/sos", json=sos_body(note="被困电梯"), headers=raiser)
        assert response.status_code == 201, response.get_json()
        sos_id = response.get_json()["id"]
        wait_for(lambda: fcm.delivered(tokens["organiser"]) == 1, first, first_log)
        celery.send_task("patrols.escalate_sos")  # beat's run: the SOS is due
        assert fcm.wait_stalled(1, timeout=WORKER_SECONDS), first_log.read_text()
        assert [by_token[t] for t in fcm.hits if by_token[t] != "organiser"] == ["district"]
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    fcm.release(drop=True)  # the held answer never reaches the dead worker

    escalated = sa.select(SosEvent.level).where(SosEvent.sos_id == sos_id, SosEvent.kind == SosEventKind.ESCALATED)
    assert committed(app, escalated) == [("district",)]  # committed before the push was tried
    pushed = sa.select(Notification.user_id, Notification.kind, Notification.push_status)

    # A new worker; beat goes on sending the escalation and the delivery run, as it does every few seconds.
    second, second_log = worker(app, fcm, queue, tmp_path / "second")
    try:
        wait_for(lambda: committed(app, escalated) == [("district",), ("city",)], second, second_log,
                 beat="patrols.escalate_sos")
        wait_for(lambda: {status for _, _, status in committed(app, pushed)} == {PushStatus.SENT}
                 and len(committed(app, pushed)) == 3, second, second_log, beat="notifications.deliver_due")
        for _ in range(3):  # more runs of the escalation and the delivery find nothing left to do
            celery.send_task("patrols.escalate_sos")
            celery.send_task("notifications.deliver_due")
        # The one worker takes its queue in order: once this probe's row is committed, they have run.
        probe = f"sos-probe-{uuid.uuid4().hex[:12]}"
        celery.send_task("tests.record_kind", args=[probe])
        wait_for(lambda: committed(app, sa.select(VolunteerKind.code).where(VolunteerKind.code == probe)) == [(probe,)],
                 second, second_log)
    finally:
        exit_code = stop_worker(queue, second)
    assert exit_code == 0, second_log.read_text()

    # Each step once: one escalation per level, each person alerted once, one inbox row each.
    assert committed(app, escalated) == [("district",), ("city",)]
    alerted = committed(app, sa.select(SosRecipient.user_id, SosRecipient.level).where(SosRecipient.sos_id == sos_id))
    assert sorted(alerted) == sorted([(ids["organiser"], "community"), (ids["district"], "district"), (ids["city"], "city")])
    rows = committed(app, pushed)
    assert sorted((user, kind) for user, kind, _ in rows) == sorted(
        [(ids["organiser"], "sos_alert"), (ids["district"], "sos_escalated"), (ids["city"], "sos_escalated")]
    )
    # Every alert reached the push service at least once: the district's again after the kill.
    delivered = fcm.delivered_tokens()
    assert all(delivered[token] >= 1 for token in tokens.values()), delivered
    assert fcm.hits[tokens["district"]] >= 2
    assert Counter(m["data"]["type"] for m in fcm.messages) == Counter(
        {"sos_alert": delivered[tokens["organiser"]], "sos_escalated": delivered[tokens["district"]] + delivered[tokens["city"]]}
    )


#: A backend of this database waiting for a row lock while it escalates an SOS (the worker's UPDATE).
_ESCALATION_WAITING = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    " AND query ILIKE 'UPDATE sos_alerts%'"
)


def escalation_waiting(app: Flask) -> bool:
    with app.app_context(), db.engine.connect() as watcher:  # a new transaction: pg_stat_activity as of now
        return watcher.execute(_ESCALATION_WAITING).scalar() == 1


@pytest.mark.committing
@pytest.mark.postgresql  # a row lock held from the test, and pg_stat_activity to see the worker wait on it
def test_a_worker_killed_in_the_middle_of_an_escalation_leaves_nothing_half_done_and_the_redelivered_run_makes_it_once(
    app: Flask, client: FlaskClient, fcm: FakeFcm, queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "SOS_ACK_MINUTES", 0)  # the web side: due as soon as it is raised
    with app.app_context():
        _city, district, _subdistrict, community, grid = factories.make_branch()
        volunteer = factories.make_volunteer(grid, real_name="李四")
        factories.make_user("organiser", community)  # alerted first; the district's staff on escalation
        staff = factories.make_user("staff", district)
        staff_id, phone, raiser = staff.id, factories.headers_for(staff), factories.headers_for(volunteer.user)
        db.session.commit()
        db.session.remove()
    token = register_phone(client, phone)
    response = client.post(f"{API}/me/sos", json=sos_body(), headers=raiser)
    assert response.status_code == 201, response.get_json()
    sos_id = response.get_json()["id"]
    escalated = sa.select(SosEvent.level).where(SosEvent.sos_id == sos_id, SosEvent.kind == SosEventKind.ESCALATED)

    # The test holds the SOS's row: the worker's escalation (its conditional UPDATE) waits on it,
    # in the middle of its transaction, and is killed there.
    with app.app_context():
        holder = db.engine.connect()
        held = holder.begin()
        holder.execute(sa.text("SELECT id FROM sos_alerts WHERE id = :id FOR UPDATE"), {"id": sos_id})
        first, first_log = worker(app, fcm, queue, tmp_path / "first", ack_minutes=3)
        try:
            celery.send_task("patrols.escalate_sos")  # beat's run: the SOS is due
            wait_for(lambda: escalation_waiting(app), first, first_log)
            first.send_signal(signal.SIGKILL)
            assert first.wait(30) == -signal.SIGKILL
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
            held.rollback()  # the dead worker's transaction goes on, finds its client gone, rolls back
            holder.close()
    assert committed(app, escalated) == []

    # A new worker. The killed run's message comes back to it (unacknowledged when its worker died),
    # and beat goes on sending the escalation: the step is made once, whichever run comes first.
    second, second_log = worker(app, fcm, queue, tmp_path / "second", ack_minutes=3)
    try:
        wait_for(lambda: committed(app, escalated) == [("district",)], second, second_log, beat="patrols.escalate_sos")
        wait_for(lambda: fcm.delivered(token) >= 1, second, second_log, beat="notifications.deliver_due")
        for _ in range(3):  # beat's later runs: the next step is not due for SOS_ACK_MINUTES
            celery.send_task("patrols.escalate_sos")
        probe = f"sos-probe-{uuid.uuid4().hex[:12]}"
        celery.send_task("tests.record_kind", args=[probe])
        wait_for(lambda: committed(app, sa.select(VolunteerKind.code).where(VolunteerKind.code == probe)) == [(probe,)],
                 second, second_log)
    finally:
        exit_code = stop_worker(queue, second)
    assert exit_code == 0, second_log.read_text()

    assert committed(app, escalated) == [("district",)]
    staffed = sa.select(SosRecipient.user_id).where(SosRecipient.sos_id == sos_id, SosRecipient.level == "district")
    assert committed(app, staffed) == [(staff_id,)]
    rows = committed(app, sa.select(Notification.kind, Notification.push_status).where(Notification.user_id == staff_id))
    assert rows == [("sos_escalated", PushStatus.SENT)]
