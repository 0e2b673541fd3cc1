"""gunicorn for a benchmark run: a free loopback port, started as ``bench/run.sh`` starts it, ready
when ``/readyz`` answers, stopped (``bench/checkin.py`` and the other benchmarks that serve the app)."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(server: subprocess.Popen, port: int, seconds: float = 30) -> None:
    """Until gunicorn on ``port`` answers ``/readyz`` 200; exits if it dies or takes longer than ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited early (see its log)")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn not ready on port {port} after {seconds:g}s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def start_server(app: str, port: int, workers: int, threads: int, log: Any) -> subprocess.Popen:
    """gunicorn as bench/run.sh starts it (the repository's gunicorn.conf.py is read from the root).

    Only the floor finds its module in bench/, whose notifications.py would hide our package.
    """
    path = ["--pythonpath", str(HERE)] if app.startswith("checkin_floor") else []
    return subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "-w", str(workers), "--threads", str(threads),
         "-b", f"127.0.0.1:{port}", *path, "--log-level", "warning", app],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
