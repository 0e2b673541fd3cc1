"""GET /metrics (core/metrics.py): who may scrape it, and that the series move with real work.

Each test reads the metrics before and after what it does and asserts the difference, so the
counts other tests left in this process do not matter. The last test starts real gunicorn with
two workers and ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py) and checks that a scrape adds up
both workers' counts.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from core.db import utcnow
from core.tasks import ping
from tests import factories
from tests.fcm_server import UNREGISTERED, FakeFcm
from tests.notifications.test_delivery import fcm, make_device, make_notification, make_recipient  # noqa: F401
from tests.test_serving_limits import free_port

ROOT = Path(__file__).resolve().parent.parent
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Series:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: FlaskClient) -> Series:
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    return parse(response.get_data(as_text=True))


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


# --- who may scrape -------------------------------------------------------------------------------


def test_metrics_answer_loopback_clients(client: FlaskClient) -> None:
    response = client.get("/metrics")  # the test client connects from 127.0.0.1

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "# TYPE shouwang_http_requests_total counter" in response.get_data(as_text=True)


def test_metrics_are_absent_for_other_clients_and_what_a_proxy_forwards(client: FlaskClient) -> None:
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    forwarded = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    unknown = client.get("/no-such-path")

    for refused in (remote, forwarded):
        assert refused.status_code == 404
        # Exactly what a path that does not exist answers: nothing tells the endpoint is there.
        assert refused.get_json() == unknown.get_json()


def test_metrics_token_opens_it_to_remote_scrapers(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-secret-1")

    good = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"}, environ_base=remote)
    wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-2"}, environ_base=remote)
    bare = client.get("/metrics", environ_base=remote)

    assert good.status_code == 200
    assert "shouwang_http_requests_total" in good.get_data(as_text=True)
    assert (wrong.status_code, bare.status_code) == (404, 404)


# --- the series -----------------------------------------------------------------------------------


def test_requests_are_counted_by_route_rule_method_and_status(client: FlaskClient, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    headers = factories.headers_for(volunteer.user)
    before = scrape(client)

    assert client.get("/no-such-path/12345").status_code == 404
    assert client.get("/no-such-path/67890").status_code == 404
    assert client.get(f"/api/v1/areas/{tree.grid_a.id}", headers=headers).status_code == 200
    assert client.get("/api/v1/areas/999999", headers=headers).status_code == 404  # same rule, another status
    after = scrape(client)

    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "shouwang_http_requests_total", **unmatched) - value(
        before, "shouwang_http_requests_total", **unmatched
    ) == 2
    area = {"method": "GET", "route": "/api/v1/areas/<int:area_id>", "status": "200"}
    assert value(after, "shouwang_http_requests_total", **area) - value(before, "shouwang_http_requests_total", **area) == 1
    missing = {**area, "status": "404"}
    assert value(after, "shouwang_http_requests_total", **missing) - value(
        before, "shouwang_http_requests_total", **missing
    ) == 1
    count = {"method": "GET", "route": "/api/v1/areas/<int:area_id>"}
    assert value(after, "shouwang_http_request_duration_seconds_count", **count) - value(
        before, "shouwang_http_request_duration_seconds_count", **count
    ) == 2
    # The rule labels the series, never the raw path.
    assert not any("12345" in str(labels) for _, labels in after)


def test_pool_use_is_reported(client: FlaskClient) -> None:
    series = scrape(client)

    names = {name for name, _ in series}
    assert {"shouwang_db_pool_checked_out", "shouwang_db_pool_size", "shouwang_db_pool_overflow"} <= names
    assert value(series, "shouwang_db_pool_checked_out") >= 1  # the scrape's own connection, at least


def test_outbox_backlog_counts_a_due_notification_and_its_age(client: FlaskClient) -> None:
    before = scrape(client)
    make_notification(make_recipient(), utcnow() - timedelta(hours=2))
    make_notification(make_recipient(), utcnow() + timedelta(hours=2))  # not due yet: not counted

    after = scrape(client)

    assert value(after, "shouwang_outbox_due") - value(before, "shouwang_outbox_due") == 1
    assert value(after, "shouwang_outbox_oldest_due_age_seconds") >= 2 * 3600


def test_push_outcomes_are_counted_by_channel_and_outcome(client: FlaskClient, fcm: FakeFcm) -> None:
    from notifications.delivery.service import deliver_due

    user = make_recipient()
    alive, dead = make_device(user), make_device(user)
    fcm.script(dead.token, UNREGISTERED)
    make_notification(user, utcnow())
    before = scrape(client)

    deliver_due(now=utcnow())
    after = scrape(client)

    def moved(outcome: str) -> float:
        labels = {"channel": "fcm", "outcome": outcome}
        return value(after, "shouwang_push_outcomes_total", **labels) - value(
            before, "shouwang_push_outcomes_total", **labels
        )

    assert (moved("ok"), moved("invalid_token"), moved("retry")) == (1, 1, 0)
    assert fcm.delivered(alive.token) == 1


def test_task_outcomes_of_the_in_process_runner_are_counted(client: FlaskClient) -> None:
    from tests.celery_probe_tasks import record_kind_then_fail

    before = scrape(client)
    ping.delay()
    record_kind_then_fail.delay("metrics-probe")  # fails on purpose; the caller is not failed
    after = scrape(client)

    def moved(task: str, state: str) -> float:
        labels = {"task": task, "state": state}
        return value(after, "shouwang_celery_tasks_total", **labels) - value(
            before, "shouwang_celery_tasks_total", **labels
        )

    assert moved("core.ping", "success") == 1
    assert moved("tests.record_kind_then_fail", "failure") == 1
    assert moved("core.ping", "failure") == 0


# --- two gunicorn workers, one answer -------------------------------------------------------------


@pytest.fixture
def gunicorn_two_workers(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Real gunicorn, as `make serve` starts it (gunicorn.conf.py), on a SQLite file of its own."""
    database = f"sqlite:///{tmp_path}/serve.db"
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {
        **os.environ, "DATABASE_URL": database, "INSTANCE_PATH": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "RATELIMIT_ALLOW_PER_PROCESS": "1",
    }  # fmt: skip
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "-c", "from app import create_app\nfrom core.extensions import db\n"
         "with create_app().app_context(): db.create_all()\n"],
        cwd=ROOT, env=env, check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--workers", "2",
             "--bind", f"127.0.0.1:{port}", "app:create_app()"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield port, log_path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # a new one each time:
    try:  # requests then spread over the workers
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def access_log_pids(log_path: Path, path: str) -> set[int]:
    """The processes whose access log lines (JSON, with their pid) answered ``path``."""
    pids = set()
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger") == "shouwang.access" and entry.get("path") == path:
                pids.add(entry["pid"])
    return pids


def test_gunicorn_workers_counts_add_up_in_one_scrape(gunicorn_two_workers: tuple[int, Path]) -> None:
    port, log_path = gunicorn_two_workers
    deadline = time.monotonic() + 60
    while True:
        try:
            if get(port, "/healthz")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)

    # Until both workers have answered (bounded): each keeps its own count in its own file. Four at
    # a time, so a busy worker leaves the next to the other; for up to a minute, since on a loaded
    # machine the second worker may still be loading the app while the first answers hundreds.
    sent = 0
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(4) as pool:
        while len(access_log_pids(log_path, "/no-such-path")) < 2 and time.monotonic() < deadline:
            statuses = list(pool.map(lambda _: get(port, "/no-such-path")[0], range(8)))
            assert statuses == [404] * 8
            sent += 8
    assert len(access_log_pids(log_path, "/no-such-path")) == 2, log_path.read_text()

    status, text = get(port, "/metrics")
    assert status == 200, log_path.read_text()
    series = parse(text)
    assert value(series, "shouwang_http_requests_total", method="GET", route="unmatched", status="404") == sent
    assert value(series, "shouwang_db_pool_size") >= 1
