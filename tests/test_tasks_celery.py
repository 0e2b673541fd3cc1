"""Background tasks (core/tasks.py): in-process without a broker, a real worker on RabbitMQ, beat.

Each task's end is its one commit point: what it flushed is committed when it returns and rolled
back when it raises, both when it runs in-process (the embedded default) and in a real worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from celery import Celery
from flask import Flask
from kombu.exceptions import OperationalError

from app import PACKAGES
from core.config import build_config
from core.db import utcnow
from core.extensions import db
from core.idempotency import IdempotencyRecord
from core.tasks import (
    ShouwangCelery,
    beat_schedule,
    celery_settings,
    enqueue_after_commit,
    init_celery,
    ping,
)
from grids.models import AreaLevel
from tests import factories
from tests.celery_probe_tasks import ProbeFailure, record_kind, record_kind_then_fail
from volunteers.models import VolunteerKind

ROOT = Path(__file__).resolve().parent.parent
BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
WORKER_START_AND_RUN_SECONDS = 60


@pytest.fixture(scope="module")
def tasks_app(app: Flask) -> ShouwangCelery:
    """The shared Celery app bound to the test app: no broker configured, so tasks run in-process."""
    return init_celery(app, task_modules=["tests.celery_probe_tasks"])


def kind_exists(code: str) -> bool:
    return db.session.scalar(sa.select(sa.func.count()).where(VolunteerKind.code == code)) == 1


def unique_code(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


# --- in-process (the embedded default) -------------------------------------------------------


def test_without_a_broker_tasks_run_in_process(tasks_app: ShouwangCelery) -> None:
    assert tasks_app.conf.task_always_eager is True
    assert ping.delay().get(timeout=1) == "pong"


def test_in_process_task_commits_what_it_wrote(tasks_app: ShouwangCelery) -> None:
    code = unique_code("eager-ok")

    result = record_kind.delay(code)

    assert result.successful(), result.traceback
    # The task ran in its own session; had it not committed, removing that session would have
    # discarded the row.
    assert kind_exists(code)


def test_in_process_task_that_fails_leaves_nothing_behind(tasks_app: ShouwangCelery) -> None:
    code = unique_code("eager-fail")

    result = record_kind_then_fail.delay(code)

    assert result.failed()
    assert isinstance(result.result, ProbeFailure)
    assert not kind_exists(code)


def test_enqueued_task_runs_only_after_the_commit(tasks_app: ShouwangCelery) -> None:
    code = unique_code("after-commit")

    enqueue_after_commit(record_kind, code)
    assert not kind_exists(code), "nothing may run before the enqueuing transaction commits"
    db.session.commit()

    assert kind_exists(code)


def test_enqueued_task_is_dropped_when_the_transaction_rolls_back(tasks_app: ShouwangCelery) -> None:
    code = unique_code("rolled-back")

    enqueue_after_commit(record_kind, code)
    db.session.rollback()
    db.session.commit()

    assert not kind_exists(code)


def test_a_released_savepoint_does_not_send(tasks_app: ShouwangCelery) -> None:
    code = unique_code("savepoint")

    with db.session.begin_nested():
        enqueue_after_commit(record_kind, code)
    assert not kind_exists(code), "the outer transaction may still roll back"
    db.session.commit()

    assert kind_exists(code)


# --- a real worker on the real broker ----------------------------------------------------------


@pytest.fixture
def broker_queue(tmp_path: Path) -> Iterator[tuple[Celery, str]]:
    """A producer on the real broker and a queue of this run's own, deleted afterwards.

    A broker that cannot be reached fails the test: CI starts RabbitMQ.
    """
    queue = f"shouwang-test-{uuid.uuid4().hex}"
    producer = Celery("test-producer", set_as_current=False)
    producer.conf.update(
        celery_settings({"CELERY_BROKER_URL": BROKER_URL, "CELERY_QUEUE": queue}, str(tmp_path))
    )
    try:
        with producer.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
    except OperationalError as error:
        pytest.fail(f"the broker at {BROKER_URL} is unreachable ({error}); start RabbitMQ")
    try:
        yield producer, queue
    finally:
        with producer.connection_for_write() as connection:
            channel = connection.default_channel
            channel.queue_delete(queue)
            channel.exchange_delete(queue)
        producer.close()


def worker_name(queue: str) -> str:
    return f"{queue}@test"


def start_worker(
    app: Flask, queue: str, tmp_path: Path, settings: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    """A real worker process on the queue, with the app's database and any more ``settings``."""
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_QUEUE": queue,
        # The test's own database: a file for SQLite, which both processes open.
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "INSTANCE_PATH": str(tmp_path / "instance"),
        **(settings or {}),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "worker", "worker",
        "--pool", "solo", "--loglevel", "INFO", "--queues", queue,
        "--hostname", worker_name(queue), "--include", "tests.celery_probe_tasks",
        "--without-heartbeat", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, log_path


def stop_worker(producer: Celery, queue: str, process: subprocess.Popen[bytes]) -> int:
    """Warm shutdown by remote control: SIGTERM would wait out the idle worker's event-loop poll."""
    try:
        producer.control.shutdown(destination=[worker_name(queue)])
        return process.wait(timeout=20)
    finally:
        if process.poll() is None:  # never leave a worker behind, whatever went wrong
            process.kill()
            process.wait()


def committed_kind_exists(app: Flask, code: str) -> bool:
    with app.app_context():  # a fresh session, so each poll sees the worker's latest commit
        return kind_exists(code)


@pytest.mark.committing
def test_worker_on_the_broker_commits_success_and_rolls_back_failure(
    app: Flask, broker_queue: tuple[Celery, str], tmp_path: Path
) -> None:
    producer, queue = broker_queue
    failing, succeeding = unique_code("worker-fail"), unique_code("worker-ok")
    # One solo worker consumes its queue in order: once the second task's row is committed, the
    # first task has finished too.
    producer.send_task("tests.record_kind_then_fail", args=[failing])
    producer.send_task("tests.record_kind", args=[succeeding])

    process, log_path = start_worker(app, queue, tmp_path)
    try:
        deadline = time.monotonic() + WORKER_START_AND_RUN_SECONDS
        while not committed_kind_exists(app, succeeding):
            assert process.poll() is None, "worker exited:\n" + log_path.read_text()
            assert time.monotonic() < deadline, "task not done in time:\n" + log_path.read_text()
            time.sleep(0.1)
    finally:
        exit_code = stop_worker(producer, queue, process)

    log = log_path.read_text()
    assert not committed_kind_exists(app, failing), log
    assert "ProbeFailure" in log, log  # the failing task did run, and failed
    assert exit_code == 0, log


@pytest.mark.committing
def test_a_ready_worker_runs_its_tasks_on_a_frozen_heap(
    app: Flask, broker_queue: tuple[Celery, str], tmp_path: Path
) -> None:
    """Full garbage collections would otherwise walk the whole loaded app, stalling every thread
    (the outbox's sender among them)."""
    producer, queue = broker_queue
    code = unique_code("heap")
    process, log_path = start_worker(app, queue, tmp_path)
    try:
        deadline = time.monotonic() + WORKER_START_AND_RUN_SECONDS
        while " ready." not in log_path.read_text():
            assert process.poll() is None, "worker exited:\n" + log_path.read_text()
            assert time.monotonic() < deadline, "worker not ready in time:\n" + log_path.read_text()
            time.sleep(0.1)
        producer.send_task("tests.record_heap_state", args=[code])
        while not (committed_kind_exists(app, f"{code}-frozen") or committed_kind_exists(app, f"{code}-loose")):
            assert process.poll() is None, "worker exited:\n" + log_path.read_text()
            assert time.monotonic() < deadline, "task not done in time:\n" + log_path.read_text()
            time.sleep(0.1)
    finally:
        stop_worker(producer, queue, process)
    assert committed_kind_exists(app, f"{code}-frozen"), log_path.read_text()


# --- beat ---------------------------------------------------------------------------------------


def test_series_are_topped_up_hourly_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERIES_TOP_UP_MINUTES", raising=False)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    config = build_config(str(tmp_path), packages=PACKAGES)

    assert config["SERIES_TOP_UP_MINUTES"] == 60
    assert config["CELERY_BROKER_URL"] is None  # embedded default: no broker, no beat needed


def test_beat_schedules_the_top_up_at_the_configured_interval(
    app: Flask, tasks_app: ShouwangCelery
) -> None:
    # create_app imported shifts.series.tasks, whose top-up task registered itself as periodic.
    entry = tasks_app.conf.beat_schedule["shifts.top_up_series"]
    assert entry == {
        "task": "shifts.top_up_series",
        "schedule": timedelta(minutes=app.config["SERIES_TOP_UP_MINUTES"]),
        # Missed runs expire rather than pile up while workers are down.
        "options": {"expires": app.config["SERIES_TOP_UP_MINUTES"] * 60.0},
    }
    assert "shifts.top_up_series" in tasks_app.tasks
    assert tasks_app.tasks["shifts.top_up_series"].acks_late is True

    every_quarter = beat_schedule({**app.config, "SERIES_TOP_UP_MINUTES": 15})
    assert every_quarter["shifts.top_up_series"]["schedule"] == timedelta(minutes=15)


def test_a_non_positive_interval_is_refused(app: Flask) -> None:
    with pytest.raises(ValueError, match="SERIES_TOP_UP_MINUTES"):
        beat_schedule({**app.config, "SERIES_TOP_UP_MINUTES": 0})


def test_broker_setting_decides_between_in_process_and_worker(tmp_path: Path) -> None:
    embedded = celery_settings({}, str(tmp_path))
    production = celery_settings({"CELERY_BROKER_URL": BROKER_URL, "CELERY_QUEUE": "q"}, str(tmp_path))

    assert embedded["task_always_eager"] is True
    assert production["task_always_eager"] is False
    assert production["broker_url"] == BROKER_URL
    assert production["task_default_queue"] == "q"
    assert production["beat_schedule_filename"] == f"{tmp_path}/celerybeat-schedule"


def test_cli_runs_every_periodic_task_once(app: Flask, tasks_app: ShouwangCelery) -> None:
    result = app.test_cli_runner().invoke(args=["tasks", "run-periodic"])

    assert result.exit_code == 0, result.output
    assert "shifts.top_up_series: " in result.output


def test_beat_purges_old_idempotency_records(app: Flask, tasks_app: ShouwangCelery) -> None:
    entry = tasks_app.conf.beat_schedule["core.purge_idempotency_records"]
    assert entry["schedule"] == timedelta(minutes=app.config["IDEMPOTENCY_PURGE_MINUTES"])
    user = factories.make_user("volunteer", factories.make_area(AreaLevel.CITY))
    ttl = timedelta(hours=app.config["IDEMPOTENCY_TTL_HOURS"])
    for key, age in (("old", ttl + timedelta(minutes=1)), ("fresh", ttl - timedelta(minutes=1))):
        db.session.add(IdempotencyRecord(
            user_id=user.id, key=key, method="POST", path="/x", request_hash="0" * 64,
            status_code=201, response_body="{}", content_type="application/json",
            created_at=utcnow() - age,
        ))
    db.session.flush()

    result = tasks_app.tasks["core.purge_idempotency_records"].apply()

    assert result.successful() and result.result == 1
    left = db.session.scalars(sa.select(IdempotencyRecord.key).where(IdempotencyRecord.user_id == user.id))
    assert list(left) == ["fresh"]
