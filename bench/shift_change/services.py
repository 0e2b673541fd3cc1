"""The processes of the shift-change run, each owned by the run and on loopback only.

- :class:`Postgres`: a PostgreSQL instance of its own (``initdb`` into the run's directory, its own
  port), so restarting it mid-run never disturbs the shared server at 5432 other work uses;
- :class:`RabbitMq`: a RabbitMQ node of its own (own node name, ports, Mnesia and log directories),
  so stopping it for a minute never disturbs the shared broker at 5672;
- :func:`start_gunicorn` and :func:`start_celery`: the app's web server (the repository's
  ``gunicorn.conf.py``) and its Celery worker with beat embedded, as ``make serve`` and ``make worker``;
- nginx in front of gunicorn is in ``proxy.py``;
- :class:`FcmServer`: the local FCM v1 server (``python -m tests.push_servers.serve fcm``) in a
  process of its own, read back through ``GET /stats``.

The PostgreSQL and RabbitMQ servers refuse to run as root: when the run is root, their commands run
as the ``postgres`` and ``rabbitmq`` system users, who own their directories.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
FCM_ACCESS_TOKEN = "bench-fcm-access-token"  # what the local FCM server expects as the bearer token
FCM_PROJECT = "shouwang-load"


def _as_user(user: str, command: list[str]) -> list[str]:
    """``command`` run as ``user`` when we are root (the servers refuse root), else as ourselves."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", user, "--", *command]


def _own(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        for folder, _dirs, files in os.walk(path):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            for name in files:
                os.chown(Path(folder) / name, entry.pw_uid, entry.pw_gid)


class Postgres:
    """A PostgreSQL instance in ``root``, trust authentication for ``postgres`` on 127.0.0.1:``port``."""

    def __init__(self, root: Path, port: int) -> None:
        self.base = root / "postgres"  # owned by the server's user: its data and its log
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = port

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_user("postgres", [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", *args]),
            check=True, stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        if not self.data.exists():
            self.data.mkdir(parents=True)
            _own(self.base, "postgres")
            subprocess.run(
                _as_user("postgres", [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                                      "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]),
                check=True, stdout=subprocess.DEVNULL,
            )
            # Loopback only; durable commits as production (an acknowledged check-in must survive
            # the restart); enough connections for gunicorn, Celery and the checks.
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(
                    f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.data}'\n"
                    "max_connections = 200\nshared_buffers = 256MB\nsynchronous_commit = on\nfsync = on\n"
                )
        self._ctl("start")

    def restart(self) -> float:
        """``pg_ctl restart -m fast``: connections are cut, the server is back when this returns."""
        began = time.perf_counter()
        self._ctl("restart", "-m", "fast")
        return time.perf_counter() - began

    def stop(self) -> None:
        try:
            self._ctl("stop", "-m", "fast")
        except subprocess.CalledProcessError:
            pass

    def create_database(self, name: str) -> None:
        subprocess.run(_as_user("postgres", [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                                             "-U", "postgres", name]), check=True)


class RabbitMq:
    """A RabbitMQ node of its own: node name, AMQP and distribution ports, Mnesia and logs in ``root``."""

    def __init__(self, root: Path, port: int, node: str = "shouwang-load@localhost") -> None:
        self.root = root / "rabbitmq"
        self.port = port
        self.node = node
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(port + 20000),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.root / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            # The system's rabbitmq.conf names the shared broker's port: this node has its own file.
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
        }

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, *args], env=self.env, check=check,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        if os.geteuid() == 0:
            _own(self.root, "rabbitmq")
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True)
        self.await_startup()

    def await_startup(self, seconds: float = 120) -> None:
        """``await_startup`` fails at once while the detached VM has not registered yet: ask again."""
        deadline = time.monotonic() + seconds
        while True:
            done = subprocess.run(["rabbitmqctl", "-n", self.node, "await_startup", "--timeout", "30"],
                                  env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"RabbitMQ node {self.node} did not start (logs in {self.root / 'log'})")
            time.sleep(1)

    def stop_app(self) -> None:
        """The broker goes away (connections dropped, the port refuses), the node's VM stays."""
        self._ctl("stop_app")

    def start_app(self) -> None:
        self._ctl("start_app")
        self.await_startup()

    def queue_depths(self) -> dict[str, int]:
        out = subprocess.run(["rabbitmqctl", "-n", self.node, "list_queues", "-q", "--no-table-headers",
                              "name", "messages"], env=self.env, capture_output=True, text=True)
        depths = {}
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                depths[parts[0]] = int(parts[1])
        return depths

    def stop(self) -> None:
        self._ctl("stop", check=False)


def start_gunicorn(port: int, workers: int, env: dict[str, str], log: IO[bytes],
                   unix_socket: Path | None = None) -> subprocess.Popen[bytes]:
    """The app as ``make serve`` runs it (repository's gunicorn.conf.py), in its own process group, on
    127.0.0.1:``port`` and, for nginx in front (proxy.py), on ``unix_socket`` too."""
    binds = ["-b", f"127.0.0.1:{port}", *(["-b", f"unix:{unix_socket}"] if unix_socket else [])]
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "-w", str(workers), "--threads", "1",
         *binds, "app:create_app()"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def start_celery(concurrency: int, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """The worker with beat embedded, as ``make worker`` runs it, in its own process group."""
    return subprocess.Popen(
        [str(BIN / "celery"), "-A", "worker", "worker", "--beat", "--loglevel", "WARNING",
         "--concurrency", str(concurrency)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


class FcmServer:
    """``python -m tests.push_servers.serve fcm`` in a process of its own; it serves until stdin closes."""

    def __init__(self, log: IO[bytes]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.push_servers.serve", "fcm",
             "--options", json.dumps({"access_token": FCM_ACCESS_TOKEN})],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().decode().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"the local FCM server did not start: {self.base_url!r}")

    def stats(self) -> dict[str, Any]:
        port = int(self.base_url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/stats")
        return json.loads(connection.getresponse().read())

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def app_environment(database_url: str, instance: Path, broker_url: str, fcm_url: str, redis_url: str) -> dict[str, str]:
    """What gunicorn, Celery and the in-process seed and prepare steps share (same JWT key, same DB)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": redis_url,
        "FIREBASE_CREDENTIALS": f"static-token:{FCM_ACCESS_TOKEN}",
        "FIREBASE_PROJECT_ID": FCM_PROJECT,
        "FCM_ENDPOINT": fcm_url,
        # A shift change is an evening; the default quiet hours (22:00-07:00 Asia/Shanghai) would hold
        # reminders back depending on when the run happens. Equal start and end: no quiet hours.
        "QUIET_HOURS_START": "00:00",
        "QUIET_HOURS_END": "00:00",
    }
    env.pop("RATELIMIT_ALLOW_PER_PROCESS", None)
    return env


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
