"""The console as `make run` serves it: `flask prepare-demo`, then `flask run`, in processes of their
own, on a database of their own (a SQLite file, or a PostgreSQL database made beside the test one when
TEST_DATABASE_URL is PostgreSQL), with the demo city. Browser tests sign in with the demo logins.

Its own processes and database keep it apart from the suite's per-test transactions: the browser's
requests commit for real, as a user's would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


@dataclass(frozen=True)
class Site:
    base_url: str
    instance: Path
    database_url: str
    logins: dict[str, dict[str, str]]

    def url(self, path: str) -> str:
        return self.base_url + path

    def sql(self, statement: str, **parameters: Any) -> list[Any]:
        """Rows of a query on the site's database (what a page showed, checked at the source)."""
        engine = sa.create_engine(_driver_url(self.database_url))
        try:
            with engine.begin() as connection:
                result = connection.execute(sa.text(statement), parameters)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()


def _driver_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _database(tmp: Path) -> Iterator[str]:
    test_url = os.environ.get("TEST_DATABASE_URL", "")
    if not test_url.startswith("postgres"):
        yield f"sqlite:///{tmp / 'console.db'}"
        return
    base = sa.engine.make_url(_driver_url(test_url))
    name = f"{base.database}_console_{os.getpid()}"
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).set(drivername="postgresql").render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _environment(instance: Path, database_url: str, extra: dict[str, str]) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "REDIS_", "CELERY_"))}
    environ.update({
        "FLASK_APP": "app:create_app", "INSTANCE_PATH": str(instance), "DATABASE_URL": database_url,
        # Cheap password hashing, as in the rest of the suite.
        "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8",
        "PYTHONUNBUFFERED": "1",
    })
    environ.update(extra)
    return environ


@contextmanager
def console_site(tmp: Path, extra_environment: dict[str, str] | None = None) -> Iterator[Site]:
    """The demo site on a free loopback port, until the block ends."""
    instance = tmp / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    with _database(tmp) as database_url:
        environ = _environment(instance, database_url, extra_environment or {})
        prepared = subprocess.run([FLASK, "prepare-demo"], cwd=ROOT, env=environ, capture_output=True, text=True,
                                  timeout=600)
        assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]
        port = _free_port()
        log = (tmp / "server.log").open("w")
        server = subprocess.Popen(
            [FLASK, "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger"],
            cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(base_url, server, tmp / "server.log")
            logins = json.loads((instance / "demo_logins.json").read_text())
            yield Site(base_url=base_url, instance=instance, database_url=database_url, logins=logins)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()


def _wait_until_serving(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # the server is still starting: a wait for a process, not for an outcome
    raise AssertionError("the console site did not start: " + log.read_text()[-3000:])
