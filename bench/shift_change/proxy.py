"""nginx in front of gunicorn for the shift-change run, as production deploys it (docs/deploy.md).

gunicorn's sync workers read each request from their socket and write each answer to it
themselves: a slow client holds a worker while it sends or reads, and the worker sits idle. One
Locust process running thousands of phones is such a client (bench/README.md, "Shedding under
overload"). nginx reads each request whole before passing it on (``proxy_request_buffering``) and
takes each answer whole (``proxy_buffering``), so a worker only ever talks to nginx, over a unix
socket, at memory speed.

nginx also stamps ``X-Request-Start: t=<seconds.milliseconds>`` (``${msec}``) as it passes each
request on, which with request buffering is once the body is in, and overwrites any stamp the
client sent. The app's overload rules (core/overload.py) then read the time a request spent in
the node's listen backlog and in nothing else: not the client's sending, nor a client's clock.
The phones' own stamp (``run.py --stamp-queue-start``) is for the direct mode (``--no-proxy``).

:class:`Nginx` runs unprivileged (as ``www-data`` when the run is root), its configuration, pid
file, logs and temporary files all in its own folder of the run directory. :meth:`Nginx.preflight`
checks before the load that it stamps and buffers as configured; :func:`access_summary` reads its
access log back (the node's own latency, beside Locust's).
"""

from __future__ import annotations

import http.client
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from services import _as_user, _own

USER = "www-data"  # Debian's nginx user, when the run is root
#: Above the app's largest body (a 5 MiB photo plus its multipart envelope, core/uploads.py), so the
#: app, not nginx, refuses what is too large (with its problem+json 413).
CLIENT_MAX_BODY = "6m"
#: The access log's fields: when, status, bytes, nginx's whole time and gunicorn's part of it (s).
LOG_FORMAT = "$msec $status $request_length $bytes_sent $request_time $upstream_header_time"

CONFIG = """\
# Written by bench/shift_change/proxy.py for one run; docs/deploy.md shows the production one.
daemon off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{
    worker_connections {connections};
}}
http {{
    log_format timed '{log_format}';
    access_log {folder}/access.log timed buffer=64k flush=5s;
{temp_paths}
    keepalive_timeout 75s;
    client_max_body_size {client_max_body};
    client_body_buffer_size 64k;
    proxy_request_buffering on;
    proxy_buffering on;
    proxy_buffer_size 16k;
    proxy_buffers 16 16k;

    upstream shouwang {{
        server unix:{socket} fail_timeout=0;
        # Kept connections serve gthread workers; gunicorn's sync workers close every connection
        # after their answer (gunicorn/workers/sync.py, force_close), so nginx opens one per request.
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://shouwang;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-Start "t=${{msec}}";
            proxy_redirect off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        raise SystemExit("nginx is not installed: `make nginx` (Debian's nginx-light), or run with --no-proxy")
    return found


def _temp_paths(nginx: str, folder: Path) -> str:
    """Every temporary path compiled in, moved into ``folder`` (nginx creates them all at start)."""
    built = subprocess.run([nginx, "-V"], capture_output=True, text=True).stderr
    without = set(re.findall(r"--without-http_(\w+)_module", built))
    lines = [f"    client_body_temp_path {folder}/client_body;"]
    lines += [f"    {module}_temp_path {folder}/{module};" for module in ("proxy", "fastcgi", "uwsgi", "scgi")
              if module not in without]
    return "\n".join(lines)


class Nginx:
    """nginx on 127.0.0.1:``port`` in front of gunicorn's unix socket ``upstream``."""

    def __init__(self, root: Path, port: int, upstream: Path) -> None:
        self.folder = root / "nginx"
        self.port, self.upstream = port, upstream
        self.process: subprocess.Popen[bytes] | None = None

    def config(self, nginx: str) -> str:
        # Each proxied request holds two connections (phone, gunicorn); nginx may open as many
        # files as the run's hard limit allows (it is unprivileged).
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = 65536 if nofile == resource.RLIM_INFINITY else min(nofile, 65536)
        return CONFIG.format(folder=self.folder, nofile=nofile, connections=max(1024, nofile - 64),
                             log_format=LOG_FORMAT, temp_paths=_temp_paths(nginx, self.folder),
                             client_max_body=CLIENT_MAX_BODY, socket=self.upstream, port=self.port)

    def start(self, log: IO[bytes], seconds: float = 30) -> None:
        nginx = binary()
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(self.config(nginx))
        _own(self.folder, USER)
        command = [nginx, "-p", str(self.folder), "-c", str(conf), "-e", str(self.folder / "error.log")]
        subprocess.run(_as_user(USER, [*command, "-t", "-q"]), check=True, stdout=log, stderr=log)
        self.process = subprocess.Popen(_as_user(USER, command), stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"nginx exited early (see {self.folder / 'error.log'})")
            try:
                if _get(self.port, "/readyz", {}) == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"nginx not answering /readyz on port {self.port} after {seconds:g}s")

    def preflight(self, gunicorn_port: int, workers: int) -> dict[str, Any]:
        """Before the load, check what the run relies on; SystemExit when a check fails.

        - **nginx's stamp replaces the client's**: a request stamped 1970 by its client is shed
          (503) when sent straight to gunicorn, and not when sent through nginx. (When the app
          sheds nothing, ``REQUEST_QUEUE_TIMEOUT_SECONDS=0``, this cannot be seen and is skipped.)
        - **nginx buffers requests**: with as many clients as gunicorn has workers stalled halfway
          through their bodies, a request through nginx is still answered at once; without request
          buffering each worker would be blocked reading a stalled body.
        """
        forged = {"X-Request-Start": "t=1"}
        direct = _get(gunicorn_port, "/api/v1/me", forged)
        proxied = _get(self.port, "/api/v1/me", forged)
        if direct == 503 and proxied == 503:
            raise SystemExit("preflight: nginx passed the client's X-Request-Start on (a 1970 stamp was shed)")
        stamp = "replaced" if direct == 503 else f"not checked (the app sheds nothing: direct answer {direct})"
        stalled = [_stall(self.port) for _ in range(workers)]
        try:
            began = time.monotonic()
            try:
                status = _get(self.port, "/readyz", {}, timeout=10)
            except OSError as error:  # a timeout: the workers were held by the stalled bodies
                raise SystemExit(f"preflight: nginx does not buffer request bodies ({error!r} with "
                                 f"{workers} bodies stalled)") from error
            took = time.monotonic() - began
        finally:
            for connection in stalled:
                connection.close()
        if status != 200:
            raise SystemExit(f"preflight: /readyz through nginx answered {status} with {workers} bodies stalled")
        return {"client_stamp": stamp, "direct_answer_to_1970_stamp": direct, "proxied_answer": proxied,
                "readyz_with_stalled_bodies_ms": round(took * 1000, 1)}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            from stats import stop_group  # bench/stats.py: SIGQUIT (nginx's graceful stop), then SIGKILL

            stop_group(self.process)


def _get(port: int, path: str, headers: dict[str, str], timeout: float = 5) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Accept": "application/json", **headers})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _stall(port: int) -> socket.socket:
    """A client that sends a login's headers and the first byte of its 100-byte body, then nothing
    (the login reads its body before anything else: a worker given it would wait for the rest)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 100\r\n\r\n{")
    return connection


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def access_summary(folder: Path, since: float) -> dict[str, Any]:
    """From nginx's access log, the requests logged after ``since`` (epoch s): answers by status,
    and p50/p99 of nginx's whole time and of gunicorn's part (ms). A client that gave up before the
    answer is logged as 499."""
    path = folder / "access.log"
    statuses: dict[str, int] = {}
    total: list[float] = []
    upstream: list[float] = []
    if path.exists():
        for line in path.read_text().splitlines():
            fields = line.split(maxsplit=5)  # the last, gunicorn's time, may list tries: "0.004, 0.002"
            if len(fields) != 6 or float(fields[0]) < since:
                continue
            statuses[fields[1]] = statuses.get(fields[1], 0) + 1
            total.append(float(fields[4]) * 1000)
            # "-": nginx got no header (the client left first); "a, b": two tries; keep the last.
            last = fields[5].split(",")[-1].strip()
            if last not in ("-", ""):
                upstream.append(float(last) * 1000)

    def figures(values: list[float]) -> dict[str, float | None]:
        p50, p99 = _quantile(values, 0.5), _quantile(values, 0.99)
        return {"p50_ms": None if p50 is None else round(p50, 1), "p99_ms": None if p99 is None else round(p99, 1)}

    return {"requests": len(total), "statuses": dict(sorted(statuses.items())), "nginx": figures(total),
            "gunicorn": figures(upstream)}
