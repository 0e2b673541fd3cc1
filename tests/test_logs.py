"""Structured logs (core/logs.py, core/observability.py): JSON lines, each with the request id that
the response returns and the tasks it runs carry, and no personal data in any of them.

Logs are captured through the handler production uses (``core.logs.json_handler``) on a buffer,
while real requests run: login with a phone and password, registration with an ID number, a
check-in with a precise position, a device registration with a push token, and a request that
fails with an exception whose message holds personal data.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from celery import Celery
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from core import logs
from core.db import utcnow
from core.extensions import db
from core.logs import REDACTED, json_handler, redact, redact_text, request_id_context, sane_request_id
from tests import factories
from tests.conftest import RequestIsolatingClient
from tests.test_tasks_celery import (  # noqa: F401  (broker_queue is a fixture)
    WORKER_START_AND_RUN_SECONDS,
    broker_queue,
    committed_kind_exists,
    start_worker,
    stop_worker,
    unique_code,
)

API = "/api/v1"
PHONE_DIGITS = "13912345678"
PASSWORD = "Secret-Pass-2026!"
LAT, LON = 40.655123, 109.845678
DEVICE_TOKEN = "fcm-device-abc:APA91bH" + "q" * 140


@pytest.fixture
def captured_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Every line the root logger writes meanwhile, parsed (each must be one JSON object)."""
    buffer = io.StringIO()
    handler = json_handler(buffer)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict[str, Any]]:
        text = buffer.getvalue()
        return [json.loads(line) for line in text.splitlines()]  # a non-JSON line fails here

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def failing_client(app: Flask) -> FlaskClient:
    """An app like the test one, on its database, with one route that raises with personal data
    in the exception's message (a bug we have not written yet)."""
    other = create_app({key: app.config[key] for key in (
        "TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "JWT_SECRET_KEY", "PII_ENCRYPTION_KEY",
        "PII_HASH_KEY", "RATELIMIT_STORAGE_URI",
    )})  # fmt: skip

    def explode() -> None:
        raise RuntimeError(f"could not reach +86{PHONE_DIGITS} (ID {ID_NUMBER}) at {LAT},{LON} token {DEVICE_TOKEN}")

    class Opaque:  # a value the database driver cannot bind, whose repr is a password
        def __repr__(self) -> str:
            return f"<{PASSWORD}>"

    def explode_in_sql() -> None:
        # The driver refuses the parameter: SQLAlchemy's message would list the parameters.
        db.session.execute(sa.text("SELECT :secret"), {"secret": Opaque()})

    other.add_url_rule("/explode", "explode", explode)
    other.add_url_rule("/explode-in-sql", "explode_in_sql", explode_in_sql)
    other.test_client_class = RequestIsolatingClient
    return other.test_client()


ID_NUMBER = factories.national_id(sequence=417, region="150203", birth="19850612")


def test_no_personal_data_in_any_line_and_every_line_has_its_requests_id(
    client: FlaskClient, failing_client: FlaskClient, tree, captured_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    answered: dict[str, Any] = {}

    def send(name: str, response: Any) -> Any:
        answered[name] = response
        return response

    # Registration: phone, password, ID number, an emergency contact's phone.
    registration = send("register", client.post(f"{API}/volunteers/register", json={
        "real_name": "王小明", "phone": "+86 139 1234 5678", "password": PASSWORD,
        "national_id": ID_NUMBER, "kind": "volunteer_police", "home_grid_id": tree.grid_a.id,
        "emergency_contact": {"name": "王大明", "phone": "+8613700001111"}, "consent": True,
    }, headers={"X-Request-ID": "client-chosen-id.1"}))  # fmt: skip
    assert registration.status_code == 201, registration.get_json()

    # Login with the phone and password, right and wrong.
    tokens = send("login", client.post(f"{API}/auth/login", json={"phone": PHONE_DIGITS, "password": PASSWORD}))
    assert tokens.status_code == 200, tokens.get_json()
    send("bad-login", client.post(f"{API}/auth/login", json={"phone": PHONE_DIGITS, "password": PASSWORD + "x"}))
    access, refresh = tokens.get_json()["access_token"], tokens.get_json()["refresh_token"]

    # A device with a push token.
    volunteer = factories.make_volunteer(tree.grid_a)
    auth = factories.headers_for(volunteer.user)
    device = send("device", client.post(f"{API}/me/devices", headers=auth, json={
        "token": DEVICE_TOKEN, "platform": "android", "app_version": "2.3.1", "locale": "zh-CN",
    }))  # fmt: skip
    assert device.status_code in (200, 201), device.get_json()

    # A check-in at a precise position.
    shift = factories.make_shift(tree.grid_a, starts_in=-timedelta(minutes=10), hours=2)
    assignment = factories.make_assignment(shift, volunteer)
    check_in = send("check-in", client.post(f"{API}/assignments/{assignment.id}/check-in", headers=auth, json={
        "client_id": str(uuid.uuid4()), "lat": LAT, "lon": LON, "accuracy_m": 8,
        "device_time": utcnow().isoformat(),
    }))  # fmt: skip
    # An insane X-Request-ID is replaced, never echoed.
    send("junk-id", client.get("/healthz", headers={"X-Request-ID": "x" * 500}))
    failed = send("explode", failing_client.get("/explode", headers={"Authorization": f"Bearer {access}"}))
    assert failed.status_code == 500
    assert send("explode-in-sql", failing_client.get("/explode-in-sql")).status_code == 500

    lines = captured_logs()
    ids = {name: response.headers["X-Request-ID"] for name, response in answered.items()}
    assert ids["register"] == "client-chosen-id.1"
    assert ids["junk-id"] != "x" * 500 and len(set(ids.values())) == len(ids)

    # Every line is JSON (parsed above) and belongs to one of the requests.
    assert lines
    assert [line for line in lines if line.get("request_id") not in ids.values()] == []
    access_lines = {line["request_id"]: line for line in lines if line["logger"] == "shouwang.access"}
    assert set(access_lines) == set(ids.values())
    assert access_lines[ids["check-in"]]["route"] == "/api/v1/assignments/<int:assignment_id>/check-in"
    assert access_lines[ids["check-in"]]["status"] == check_in.status_code
    assert access_lines[ids["explode"]]["status"] == 500
    assert isinstance(access_lines[ids["login"]]["duration_ms"], float)
    errors = {line["request_id"]: line for line in lines if line["level"] == "ERROR"}
    assert set(errors) == {ids["explode"], ids["explode-in-sql"]}
    assert "RuntimeError" in errors[ids["explode"]]["exc_info"] and REDACTED in errors[ids["explode"]]["exc_info"]
    assert "SELECT" in errors[ids["explode-in-sql"]]["exc_info"]

    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    planted = [PHONE_DIGITS, "13700001111", PASSWORD, ID_NUMBER, str(LAT), str(LON), DEVICE_TOKEN,
               DEVICE_TOKEN[-60:], access, refresh, access.split(".")[1]]  # fmt: skip
    assert [value for value in planted if value in text] == []


def test_tasks_run_in_process_log_with_the_id_of_the_request_that_ran_them(
    client: FlaskClient, tree, captured_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    from tests.celery_probe_tasks import record_kind_then_fail

    with request_id_context("enqueuing-request-7"):
        record_kind_then_fail.delay(unique_code("logs"))  # fails on purpose: Celery logs it

    failure = [line for line in captured_logs() if "record_kind_then_fail" in line["message"]]
    assert failure and {line["request_id"] for line in failure} == {"enqueuing-request-7"}


@pytest.mark.committing
def test_a_worker_logs_a_task_with_the_id_of_the_request_that_sent_it(
    app: Flask, broker_queue: tuple[Celery, str], tmp_path: Path
) -> None:
    producer, queue = broker_queue
    code = unique_code("logs-worker")
    with request_id_context("sent-from-request-42"):
        producer.send_task("tests.record_kind", args=[code])

    process, log_path = start_worker(app, queue, tmp_path)
    try:
        deadline = time.monotonic() + WORKER_START_AND_RUN_SECONDS
        while not committed_kind_exists(app, code):
            assert process.poll() is None, "worker exited:\n" + log_path.read_text()
            assert time.monotonic() < deadline, "task not done in time:\n" + log_path.read_text()
            time.sleep(0.1)
    finally:
        stop_worker(producer, queue, process)

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    succeeded = [line for line in lines if "succeeded" in line["message"]]
    assert succeeded and succeeded[0]["request_id"] == "sent-from-request-42", log_path.read_text()


# --- the redaction and the id, as units ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("call 13912345678 now", "13912345678"), ("call +86 13912345678", "13912345678"),
        ("id 15020319850612417X here", "15020319850612417X"), ("id 150203198506124173.", "150203198506124173"),
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end", "eyJzdWIiOiIxIn0"),
        ("push tok-1:APA91bHxyz failed", "APA91bHxyz"),
        ("at 40.655123,109.845678 now", "40.655"), ("at POINT(109.8457 40.6551)", "109.8457"),
        ("where {'lat': 40.655123}", "40.655"), ("where lon=109.845678", "109.84"),
    ],
)  # fmt: skip
def test_personal_data_in_text_is_masked(text: str, secret: str) -> None:
    masked = redact_text(text)
    assert secret not in masked and REDACTED in masked
    assert masked.split()[0] == text.split()[0]  # the words around it stay


def test_numbers_that_are_not_personal_data_stay() -> None:
    for text in ("took 1234.5 ms", "order 12", "epoch 1733491200000", "shift 139"):
        assert redact_text(text) == text


def test_fields_named_like_personal_data_are_dropped_or_rounded() -> None:
    assert redact({"phone": "x", "Password": "y", "token": "z", "lat": 40.655123, "lon": "109.8"}, "extra") == {
        "phone": REDACTED, "Password": REDACTED, "token": REDACTED, "lat": 40.66, "lon": REDACTED,
    }  # fmt: skip
    assert redact(40.655123, "latitude") == 40.66
    assert redact(3, "count") == 3 and redact("order 12", "message") == "order 12"


@pytest.mark.parametrize(
    ("candidate", "kept"),
    [("abc-123_X.y:z", True), ("", False), ("x" * 129, False), ("a b", False), ("<script>", False),
     ("13912345678", False), ("-leading-dash", False), (None, False)],
)  # fmt: skip
def test_only_sane_request_ids_are_kept(candidate: str | None, kept: bool) -> None:
    assert (sane_request_id(candidate) is not None) is kept
    if kept:
        assert sane_request_id(candidate) == candidate


def test_a_new_request_id_is_never_one_the_redaction_would_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hex digits can spell a phone number (seen once in CI: a line's id masked, joining no request).
    drawn = iter(["8a0c11fd0c13912345678d78d0000000", "8a0c11fd0cabcdefabcdefd78d000000"])
    monkeypatch.setattr(logs.secrets, "token_hex", lambda _: next(drawn))
    assert redact_text("8a0c11fd0c13912345678d78d0000000") != "8a0c11fd0c13912345678d78d0000000"
    assert logs.new_request_id() == "8a0c11fd0cabcdefabcdefd78d000000"


def test_the_time_level_and_logger_fields_are_trusted_only_as_logging_writes_them() -> None:
    """Their redaction is skipped for what the logging module writes there (core/logs.py), never for
    an ``extra`` of the same name that carries what a caller sent."""
    stream = io.StringIO()
    logger = logging.getLogger("shouwang.test.trusted")
    logger.addHandler(json_handler(stream))
    logger.propagate = False
    try:
        logger.warning("plain")
        logger.warning("extras", extra={"level": "13800138000", "logger": "13800138000", "time": "13800138000"})
    finally:
        logger.handlers.clear()
    plain, extras = (json.loads(line) for line in stream.getvalue().splitlines())
    assert plain["level"] == "WARNING" and plain["logger"] == "shouwang.test.trusted"
    assert len(plain["time"]) == 24 and plain["time"][10] == "T"
    assert {extras[key] for key in ("level", "logger", "time")} == {REDACTED}, extras


def test_a_fresh_request_id_is_never_one_the_redaction_would_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hex with a run of digits that reads as a mobile number is drawn again."""
    drawn = iter(["13800138000aaaaaaaaaaaaaaaaaaaaa", "0123456789abcdef0123456789abcdef"])
    monkeypatch.setattr(logs.secrets, "token_hex", lambda _n: next(drawn))
    assert logs.new_request_id() == "0123456789abcdef0123456789abcdef"
