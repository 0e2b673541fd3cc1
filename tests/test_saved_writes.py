"""A saved write never answers 500: the database lost during COMMIT, the broker down after it.

- The connection to PostgreSQL dies during COMMIT (a TCP proxy between the app and the server
  cuts it): the answer is 503 ``commit_outcome_unknown`` with Retry-After, whether the server
  committed or not, and the client's retry with its Idempotency-Key gets the first answer if the
  change was saved, or saves it now if it was not: once either way.
- The Celery broker refuses the enqueue that follows a commit (a port where nothing listens, then
  a proxy to the real RabbitMQ "comes back" there): the write answers 201 once, the enqueue is
  counted and owed, and once the broker takes tasks again the owed delivery run pushes every
  notification exactly once.

Both need real servers: PostgreSQL (``TEST_DATABASE_URL`` when it is one, else
``TEST_POSTGRES_URL``, default the local server) and RabbitMQ (``TEST_CELERY_BROKER_URL``).
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kombu
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm

from core.config import normalise_database_url
from core.extensions import db
from core.task_sending import resend_owed_tasks, task_send_counts, wait_until_nothing_owed
from core.tasks import celery, init_celery
from grids.models import AreaLevel
from notifications.broadcasts.models import Broadcast
from notifications.models import Notification, PushStatus
from tests import factories
from tests.fcm_server import FakeFcm
from tests.notifications.test_delivery import fcm  # noqa: F401  (fixture)
from tests.notifications.test_delivery_celery import BROKER_URL, forget_broker_connections
from tests.problems import EN, assert_problem
from tests.tcp_proxy import TcpProxy
from volunteers.models import BUILTIN_KINDS, VolunteerKind

pytestmark = pytest.mark.committing

API = "/api/v1"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_base() -> sa.URL:
    url = os.environ.get("TEST_DATABASE_URL") or ""
    return sa.make_url(normalise_database_url(url if url.startswith("postgres") else POSTGRES_URL))


@dataclass
class ProxiedDatabase:
    direct: sa.Engine  # to look at what was really saved
    proxy: TcpProxy  # what the app's connections go through


@pytest.fixture
def proxied_database(app: Flask) -> Iterator[ProxiedDatabase]:
    """A PostgreSQL database of this test's own; every request of the app reaches it through a
    proxy the test can cut (the app's session is bound to it, as conftest binds it per test)."""
    base = _postgres_base()
    name = f"{base.database}_commit_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    direct = sa.create_engine(base.set(database=name))
    proxy = TcpProxy(base.host or "127.0.0.1", base.port or 5432).start()
    proxied = sa.create_engine(base.set(database=name, host="127.0.0.1", port=proxy.port))
    original = db.session
    try:
        db.metadata.create_all(direct)
        with direct.begin() as connection:
            connection.execute(sa.insert(VolunteerKind), [{**kind, "builtin": True} for kind in BUILTIN_KINDS])
        db.session = orm.scoped_session(orm.sessionmaker(bind=proxied), scopefunc=_app_ctx_id)
        yield ProxiedDatabase(direct, proxy)
    finally:
        with app.app_context():
            db.session.remove()
        db.session = original
        proxy.stop()
        proxied.dispose()
        direct.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def broadcast_titles(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(sa.select(Broadcast.title).order_by(Broadcast.id)))


def organiser_headers(app: Flask) -> tuple[dict[str, str], int]:
    with app.app_context():
        _city, _district, _subdistrict, community, grid = factories.make_branch()
        for _ in range(3):
            factories.make_volunteer(grid)
        headers = factories.headers_for(factories.make_user("organiser", community), **EN)
        community_id = community.id
        db.session.commit()
        db.session.remove()
    return headers, community_id


def test_a_connection_lost_during_commit_is_503_and_the_retry_with_the_key_is_once(
    app: Flask, client: FlaskClient, proxied_database: ProxiedDatabase
) -> None:
    headers, area_id = organiser_headers(app)

    def send(title: str, key: str) -> Any:
        return client.post(f"{API}/broadcasts", json={"area_id": area_id, "title": title, "body": "今晚东站集合"},
                           headers={**headers, "Idempotency-Key": key})

    # The COMMIT never reaches the server: nothing was saved, and the retry saves it.
    proxied_database.proxy.cut_at_commit(after=b"INSERT INTO broadcasts", forward=False)
    lost = send("一号通知", "key-lost-commit")
    problem = assert_problem(lost, 503, "commit_outcome_unknown")
    assert lost.headers["Retry-After"] == "1"
    assert "Idempotency-Key" in problem["detail"]
    assert proxied_database.proxy.cuts == 1
    assert broadcast_titles(proxied_database.direct) == []
    retry = send("一号通知", "key-lost-commit")
    assert retry.status_code == 201, retry.get_json()
    assert "Idempotent-Replayed" not in retry.headers
    assert broadcast_titles(proxied_database.direct) == ["一号通知"]

    # The server commits but its answer is lost: the same 503, and the retry replays the first answer.
    proxied_database.proxy.cut_at_commit(after=b"INSERT INTO broadcasts", forward=True)
    lost = send("二号通知", "key-lost-answer")
    assert_problem(lost, 503, "commit_outcome_unknown")
    assert lost.headers["Retry-After"] == "1"
    assert proxied_database.proxy.cuts == 2
    assert broadcast_titles(proxied_database.direct) == ["一号通知", "二号通知"]
    retry = send("二号通知", "key-lost-answer")
    assert retry.status_code == 201, retry.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert broadcast_titles(proxied_database.direct) == ["一号通知", "二号通知"]
    with proxied_database.direct.connect() as connection:
        saved_id = connection.scalar(sa.select(Broadcast.id).where(Broadcast.title == "二号通知"))
        # Each broadcast reached its three volunteers once: no second set of inbox rows either.
        per_broadcast = connection.execute(
            sa.select(Notification.broadcast_id, sa.func.count()).group_by(Notification.broadcast_id)
        ).all()
    assert retry.get_json()["id"] == saved_id
    assert sorted(count for _, count in per_broadcast) == [3, 3]
    metrics = client.get("/metrics")
    assert metrics.mimetype == "text/plain"
    assert re.search(r'^shouwang_commit_outcome_unknown_total [1-9]', metrics.get_data(as_text=True), re.M)

    # Chinese by default, as every problem.
    proxied_database.proxy.cut_at_commit(after=b"INSERT INTO broadcasts", forward=False)
    zh = client.post(f"{API}/broadcasts", json={"area_id": area_id, "title": "三号", "body": "x"},
                     headers={key: value for key, value in headers.items() if key != "Accept-Language"})
    assert assert_problem(zh, 503, "commit_outcome_unknown")["title"] == "保存结果未知，请重试"


# --- the broker down after the commit -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=[0], ids=["resent-step-by-step"])
def broker_down(app: Flask, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """The app enqueues on a broker at a port where nothing listens (a queue of this test's own);
    the test brings "the broker" back by starting a proxy to the real RabbitMQ on that port.

    The parameter is TASK_RESEND_SECONDS: 0, no resend thread (the test drives resending step by
    step with resend_owed_tasks); otherwise the process's resend thread does it."""
    port, queue = free_port(), f"shouwang-broker-down-{uuid.uuid4().hex}"
    real = kombu.Connection(BROKER_URL)
    down_url = str(real.as_uri(include_password=True)).replace(
        f"{real.hostname}:{real.port or 5672}", f"127.0.0.1:{port}")
    saved = {key: app.config.get(key) for key in ("CELERY_BROKER_URL", "CELERY_QUEUE", "TASK_RESEND_SECONDS")}
    app.config.update(CELERY_BROKER_URL=down_url, CELERY_QUEUE=queue, TASK_RESEND_SECONDS=request.param)
    init_celery(app)
    forget_broker_connections()
    try:
        yield queue, port
    finally:
        with kombu.Connection(BROKER_URL) as connection:
            channel = connection.default_channel
            channel.queue_delete(queue)
            channel.exchange_delete(queue)
        app.config.update(saved)
        init_celery(app)
        forget_broker_connections()
        resend_owed_tasks()  # in-process again: runs (and so forgets) anything still owed
        assert wait_until_nothing_owed(timeout=30)
        real.release()


def take_messages(queue: str) -> list[str]:
    """The task names in ``queue`` on the real broker (taken off it): waits for the first (a publish
    is not confirmed, so it may still be on its way), then takes whatever else is there."""
    names = []
    with kombu.Connection(BROKER_URL) as connection:
        simple = connection.SimpleQueue(queue, no_ack=True)
        try:
            block = True
            while True:
                try:
                    message = simple.get(block=block, timeout=30 if block else None)
                except simple.Empty:
                    return names
                names.append(message.headers["task"])
                block = False
        finally:
            simple.close()


def test_with_the_broker_down_a_write_answers_201_once_and_the_owed_sweep_delivers_once(
    app: Flask, client: FlaskClient, fcm: FakeFcm, broker_down: tuple[str, int]
) -> None:
    queue, port = broker_down
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        grid = factories.make_area(AreaLevel.GRID, factories.make_area(AreaLevel.COMMUNITY, factories.make_area(
            AreaLevel.SUBDISTRICT, factories.make_area(AreaLevel.DISTRICT, city))), boundary=factories.square(109.84, 40.65))
        volunteers = [factories.make_volunteer(grid) for _ in range(3)]
        phones = [factories.headers_for(volunteer.user) for volunteer in volunteers]
        organiser = factories.headers_for(factories.make_user("organiser", city), **EN)
        city_id = city.id
        db.session.commit()
        db.session.remove()
    tokens = [f"broker-down-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
    for phone, token in zip(phones, tokens, strict=True):
        assert client.post(f"{API}/me/devices", json={"token": token, "platform": "android"},
                           headers=phone).status_code == 201
    before = task_send_counts()

    response = client.post(f"{API}/broadcasts", json={"area_id": city_id, "title": "紧急集合", "body": "东站",
                                                     "urgent": True}, headers=organiser)

    assert response.status_code == 201, response.get_json()
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Broadcast)) == 1
        assert set(db.session.scalars(sa.select(Notification.push_status))) == {PushStatus.PENDING}
    counts = task_send_counts()
    assert counts["owed"] == 1
    assert counts["failures"].get("notifications.deliver_due", 0) == before["failures"].get("notifications.deliver_due", 0) + 1
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'shouwang_task_sends_failures_total{pid="' in metrics and "shouwang_tasks_owed{" in metrics
    assert not fcm.delivered_tokens()

    assert resend_owed_tasks() == 0  # still down: still owed
    assert task_send_counts()["owed"] == 1

    broker = TcpProxy(*_rabbit_address()).start(port)
    try:
        assert resend_owed_tasks() == 1
        assert task_send_counts()["owed"] == 0
        assert take_messages(queue) == ["notifications.deliver_due"]  # the owed run, sent once
    finally:
        broker.stop()

    # What a worker does with that message: one delivery run.
    celery.tasks["notifications.deliver_due"].apply()
    with app.app_context():
        assert set(db.session.scalars(sa.select(Notification.push_status))) == {PushStatus.SENT}
    assert fcm.delivered_tokens() == {token: 1 for token in tokens}
    celery.tasks["notifications.deliver_due"].apply()  # beat's next sweep finds nothing more
    assert fcm.delivered_tokens() == {token: 1 for token in tokens}


def _rabbit_address() -> tuple[str, int]:
    url = kombu.Connection(BROKER_URL)
    try:
        return url.hostname or "127.0.0.1", int(url.port or 5672)
    finally:
        url.release()


@pytest.mark.parametrize("broker_down", [0.05], ids=["resend-thread"], indirect=True)
def test_while_the_broker_is_down_later_writes_do_not_wait_for_it_and_the_thread_resends_once(
    app: Flask, client: FlaskClient, broker_down: tuple[str, int]
) -> None:
    queue, port = broker_down
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        organiser = factories.headers_for(factories.make_user("organiser", city), **EN)
        city_id = city.id
        factories.make_volunteer(factories.make_area(AreaLevel.GRID, factories.make_area(
            AreaLevel.COMMUNITY, factories.make_area(AreaLevel.SUBDISTRICT, factories.make_area(
                AreaLevel.DISTRICT, city))), boundary=factories.square(109.84, 40.65)))
        db.session.commit()
        db.session.remove()
    before = task_send_counts()["failures"].get("notifications.deliver_due", 0)

    for title in ("一", "二", "三"):
        response = client.post(f"{API}/broadcasts", json={"area_id": city_id, "title": title, "body": "x"},
                               headers=organiser)
        assert response.status_code == 201, response.get_json()

    counts = task_send_counts()
    # Only the first write met the dead broker; the others queued behind it without trying.
    assert counts["failures"].get("notifications.deliver_due", 0) == before + 1
    assert counts["owed"] == 1  # one delivery run covers all three broadcasts
    broker = TcpProxy(*_rabbit_address()).start(port)
    try:
        assert wait_until_nothing_owed(timeout=30)
        assert take_messages(queue) == ["notifications.deliver_due"]
    finally:
        broker.stop()
