"""What the production server (gunicorn) imposes: login limits shared by every worker, the
registration limit from the environment, and a request line no cursor of ours can push over.

The gunicorn tests start real gunicorn processes on loopback (one SQLite file made for them);
the shared-counter test uses the local Redis (``TEST_REDIS_URL``) under a key prefix of its own.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from app import PACKAGES
from core.config import build_config, refuse_per_process_limits
from core.pagination import MAX_CURSOR_LENGTH, encode_cursor

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
#: gunicorn's limit_request_line default: longer request lines get its own HTML 414.
GUNICORN_REQUEST_LINE_LIMIT = 4094
START_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with the schema, for the gunicorn processes of this module."""
    folder = tmp_path_factory.mktemp("gunicorn")
    url = f"sqlite:///{folder}/serve.db"
    code = "from app import create_app\nfrom core.extensions import db\nwith create_app().app_context(): db.create_all()\n"
    env = {**os.environ, "DATABASE_URL": url, "INSTANCE_PATH": str(folder)}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)
    return url


class Gunicorn:
    def __init__(self, database: str, instance: Path, workers: int, **env: str) -> None:
        self.port = free_port()
        self.log = instance / f"gunicorn-{self.port}.log"
        environment = {**os.environ, "DATABASE_URL": database, "INSTANCE_PATH": str(instance), **env}
        for name in ("REDIS_URL", "RATELIMIT_ALLOW_PER_PROCESS"):
            if name not in env:
                environment.pop(name, None)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
                 "app:create_app()"],
                cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)  # a new one each time:
        try:  # requests then spread over the workers
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def serve(database: str, tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    started: list[Gunicorn] = []

    def start(workers: int = 2, **env: str) -> Gunicorn:
        server = Gunicorn(database, tmp_path, workers, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_gunicorn_refuses_to_start_with_login_limits_in_each_workers_memory(serve: Callable[..., Gunicorn]) -> None:
    server = serve(workers=2)
    assert server.process.wait(START_SECONDS) != 0
    log = server.log.read_text()
    assert "REDIS_URL" in log and "RATELIMIT_ALLOW_PER_PROCESS" in log


def test_gunicorn_starts_with_per_process_limits_when_asked_to(serve: Callable[..., Gunicorn]) -> None:
    server = serve(workers=1, RATELIMIT_ALLOW_PER_PROCESS="1")
    server.wait_until_serving()


def test_gunicorn_workers_share_the_login_limit_through_redis(serve: Callable[..., Gunicorn]) -> None:
    prefix = f"shouwang-test-{uuid.uuid4().hex[:12]}"
    store = redis.Redis.from_url(REDIS_URL)
    server = serve(workers=2, REDIS_URL=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix, LOGIN_LIMIT_PER_PHONE="5 per minute")
    try:
        server.wait_until_serving()
        wrong = {"phone": "13800138999", "password": "wrong-password"}
        codes = [server.request("POST", "/api/v1/auth/login", wrong)[0] for _ in range(12)]
    finally:
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)
        store.close()
    # 12 wrong passwords, 2 workers: 5 password checks, whichever worker answered (issue 12: 9).
    assert codes == [401] * 5 + [429] * 7


def test_the_check_applies_only_under_gunicorn_without_redis(tmp_path: Path) -> None:
    config = build_config(str(tmp_path), {"SECRET_KEY": "x", "JWT_SECRET_KEY": "y", "PII_ENCRYPTION_KEY": "z",
                                          "PII_HASH_KEY": "w"}, packages=PACKAGES)
    gunicorn = {"SERVER_SOFTWARE": "gunicorn/23.0.0"}
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        refuse_per_process_limits(config, gunicorn)
    refuse_per_process_limits(config, {})  # flask run (make run), the CLI, workers
    refuse_per_process_limits({**config, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"}, gunicorn)
    refuse_per_process_limits({**config, "RATELIMIT_ALLOW_PER_PROCESS": True}, gunicorn)
    refuse_per_process_limits({**config, "TESTING": True}, gunicorn)


def test_the_registration_limit_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"SECRET_KEY": "x", "JWT_SECRET_KEY": "y", "PII_ENCRYPTION_KEY": "z", "PII_HASH_KEY": "w"}
    monkeypatch.delenv("REGISTRATION_LIMIT_PER_ADDRESS", raising=False)
    assert build_config(str(tmp_path), secrets, packages=PACKAGES)["REGISTRATION_LIMIT_PER_ADDRESS"] == "20 per hour"
    monkeypatch.setenv("REGISTRATION_LIMIT_PER_ADDRESS", "3 per hour")
    assert build_config(str(tmp_path), secrets, packages=PACKAGES)["REGISTRATION_LIMIT_PER_ADDRESS"] == "3 per hour"


# --- the request line -------------------------------------------------------------------------------


def test_no_cursor_we_emit_comes_near_the_request_line_limit(client: FlaskClient) -> None:
    """The longest cursor any list can make (every sort key at its largest: a timestamp with
    microseconds and an offset, a 64-bit id), on the longest list path with every query parameter
    at its longest documented value, stays far below gunicorn's limit."""
    latest = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC).isoformat()
    longest = encode_cursor([2**63 - 1, latest, 2**63 - 1])  # distance, start, id: the most keys a list has
    assert len(longest) == 102 <= MAX_CURSOR_LENGTH
    with pytest.raises(ValueError, match="cursor"):
        encode_cursor(["a name is no sort key" * 5])

    spec = client.get("/api/openapi.json").get_json()
    request_lines = []
    for template, item in spec["paths"].items():
        operation = item.get("get") or {}
        parameters = operation.get("parameters", []) + item.get("parameters", [])
        if not any(p["name"] == "cursor" for p in parameters if p.get("in") == "query"):
            continue
        path = re.sub(r"\{[^}]+\}", str(2**31 - 1), template)
        query = [
            f"{parameter['name']}={longest if parameter['name'] == 'cursor' else value}"
            for parameter in parameters
            if parameter.get("in") == "query"
            for value in _longest_values(parameter.get("schema", {}))
        ]
        request_lines.append(f"GET {path}?{'&'.join(query)} HTTP/1.1")
    assert len(request_lines) >= 20
    worst = max(request_lines, key=len)
    # Even with every filter at its longest there is room to spare; the cursor is a small part.
    assert len(worst) < GUNICORN_REQUEST_LINE_LIMIT * 3 // 4, worst


def _longest_values(schema: dict) -> list[str]:
    """The longest value(s) a documented query parameter takes, as sent (percent-encoded)."""
    if schema.get("type") == "array":
        return _longest_values(schema.get("items", {})) * int(schema["maxItems"])
    if "enum" in schema:
        return [max((str(value) for value in schema["enum"]), key=len)]
    if schema.get("format") == "date-time":
        return ["9999-12-31T23:59:59.999999%2B14:00"]
    if schema.get("format") == "date":
        return ["9999-12-31"]
    if schema.get("type") == "string":
        return ["%E4%B8%9C" * int(schema["maxLength"])]  # a CJK character is 9 bytes percent-encoded
    if schema.get("type") == "boolean":
        return ["false"]
    return ["-180.00000000000003" if schema.get("type") == "number" else str(2**31 - 1)]
