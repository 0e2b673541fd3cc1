"""A local HTTP server on 127.0.0.1 that speaks the FCM HTTP v1 send API, for tests and benchmarks.

The real firebase-admin code is pointed at it by configuration (``FCM_ENDPOINT``, see
notifications/delivery/push.py), so nothing of ours is mocked::

    server = FakeFcm().start()                      # port 0: the system picks a free one
    server.script("tok-1", UNREGISTERED)            # the next send to tok-1 answers 404 UNREGISTERED
    server.script("tok-2", quota_exceeded(120), OK) # 429 with Retry-After: 120, then success
    server.default = UNAVAILABLE                    # every unscripted token answers 503
    server.go_down(); server.come_up()              # refuse connections (and drop open ones), then serve again
    server.stall(after=15); server.wait_stalled(5)   # hold answers back (kill a worker meanwhile),
    server.release(drop=True)                        # then hang up on them
    server.delivered("tok-1"), server.hits["tok-1"], server.messages
    server.probes                                   # dry runs (validate_only) by status: delivered to nobody
    server.stop()

``POST /v1/projects/{project}/messages:send`` answers ``{"name": "projects/{project}/messages/N"}`` or
an error in the FCM v1 shape, which firebase-admin turns into its per-message exceptions
(``UnregisteredError``, ``QuotaExceededError``, ``UnavailableError``, …). ``send_each`` opens one
thread and connection per message, so the server is threaded, keeps connections alive (HTTP/1.1)
and listens with a backlog of 1024: with the default of 5 a 500-message batch loses some messages to
refused connections.

Plain library code (no pytest), so ``bench/`` can import it as well, or run it in a process of its
own: ``python -m tests.fcm_server --port 0`` prints its base URL; ``GET /stats`` gives the totals.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True)
class Reply:
    """One answer to one send: 200, or an FCM v1 error."""

    status: int = 200
    rpc_status: str = ""  # google.rpc status, e.g. NOT_FOUND
    fcm_code: str = ""  # FcmError errorCode, e.g. UNREGISTERED
    message: str = ""
    retry_after: int | None = None  # seconds, sent as the Retry-After header
    token_violation: bool = False  # a BadRequest field violation on message.token

    def body(self, project: str, number: int) -> dict[str, Any]:
        if self.status == 200:
            return {"name": f"projects/{project}/messages/{number}"}
        details: list[dict[str, Any]] = []
        if self.fcm_code:
            details.append({"@type": FCM_ERROR_TYPE, "errorCode": self.fcm_code})
        if self.token_violation:
            details.append({
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}],
            })  # fmt: skip
        return {"error": {"code": self.status, "message": self.message, "status": self.rpc_status, "details": details}}


OK = Reply()
UNREGISTERED = Reply(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
# What FCM answers for a malformed registration token.
INVALID_TOKEN = Reply(
    400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
    "The registration token is not a valid FCM registration token", token_violation=True,
)  # fmt: skip
# A payload FCM refuses (not the token's fault), e.g. data too large.
INVALID_PAYLOAD = Reply(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Message is too big")
UNAVAILABLE = Reply(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
INTERNAL = Reply(500, "INTERNAL", "INTERNAL", "Internal error encountered.")


def quota_exceeded(retry_after: int | None = 60) -> Reply:
    return Reply(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded.", retry_after=retry_after)


QUOTA_EXCEEDED = quota_exceeded()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen backlog: a send_each batch connects up to 500 times at once

    def __init__(self, fake: FakeFcm, address: tuple[str, int]) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up (or a killed worker) is no news here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: firebase-admin's connection pool reuses connections
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != "/stats":
            self._answer(404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}})
            return
        self._answer(200, self.server.fake.stats())

    def do_POST(self) -> None:
        fake = self.server.fake
        if fake.is_down:
            # Down: drop the connection without an answer (new connections are refused).
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        parts = self.path.split("/")
        if len(parts) != 5 or parts[1] != "v1" or parts[2] != "projects" or parts[4] != "messages:send":
            self._answer(404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}})
            return
        project = parts[3]
        if self.headers.get("Authorization") != f"Bearer {fake.access_token}":
            self._answer(401, {"error": {"code": 401, "message": "bad credentials", "status": "UNAUTHENTICATED"}})
            return
        message = payload.get("message") or {}
        token = message.get("token") or message.get("fid") or ""
        if payload.get("validate_only"):
            # A dry run: answered as the default reply says, delivered to nobody, counted apart.
            reply = fake._probed()
            self._answer(reply.status, reply.body(project, 0))
            return
        reply = fake._reply_for(token, message)
        if reply is None or fake.is_down:  # dropped, or went down while this request was held back
            self.close_connection = True
            return
        number = fake._answered(token, message, reply)
        headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
        self._answer(reply.status, reply.body(project, number), headers)

    def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FakeFcm:
    """The FCM v1 send endpoint on 127.0.0.1, scriptable per token; thread-safe."""

    def __init__(
        self, port: int = 0, *, access_token: str = "test-token", record: bool = True, stall_limit: float = 60.0
    ) -> None:
        self.port = port
        self.access_token = access_token  # requests must carry "Authorization: Bearer <this>"
        self.record = record  # keep every answered message (benchmarks may keep counts only)
        self.stall_limit = stall_limit  # a stalled request answers after this long at most
        self.default = OK  # the reply for tokens with nothing scripted
        self.hits: Counter[str] = Counter()  # requests received per token, answered or not
        self.replies: Counter[tuple[str, int]] = Counter()  # (token, status) answered
        self.messages: list[dict[str, Any]] = []  # successfully "delivered" messages, in order
        self.probes: Counter[int] = Counter()  # dry runs (validate_only) answered, by status
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._count = 0
        self._down = False
        self._released = threading.Event()
        self._released.set()
        self._pass_before_hold = 0  # while stalling: requests still answered before holding starts
        self._hold_left: int | None = None  # while stalling: requests still to hold (None: all)
        self._stalled = 0
        self._drop_held = False
        self._stalled_changed = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeFcm:
        self._http = _HttpServer(self, ("127.0.0.1", self.port))
        self.port = self._http.server_address[1]  # keep the port across go_down()/come_up()
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), name=f"fake-fcm-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release(drop=True)
        self._close_listener()
        self._close_connections()

    def __enter__(self) -> FakeFcm:
        return self.start() if self._http is None else self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """What ``FCM_ENDPOINT`` takes."""
        return f"http://127.0.0.1:{self.port}"

    def send_url(self, project: str) -> str:
        return f"{self.base_url}/v1/projects/{project}/messages:send"

    # --- faults ----------------------------------------------------------------------------------

    @property
    def is_down(self) -> bool:
        return self._down

    def go_down(self) -> None:
        """Refuse new connections and drop open ones, until :meth:`come_up`."""
        self._down = True
        self._close_listener()
        self._close_connections()

    def come_up(self) -> None:
        self._down = False
        if self._http is None:
            self.start()

    def stall(self, *, after: int = 0, count: int | None = None) -> None:
        """Hold answers back until :meth:`release` (or ``stall_limit``).

        The next ``after`` requests are still answered; then ``count`` requests (default: all
        until the release) are held.
        """
        with self._lock:
            self._pass_before_hold, self._hold_left = after, count
            self._drop_held = False
            self._released.clear()

    def release(self, *, drop: bool = False) -> None:
        """Answer the held requests; ``drop``: close their connections instead (their client is gone)."""
        self._drop_held = drop
        self._released.set()

    def wait_stalled(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until at least ``count`` requests are being held back."""
        with self._stalled_changed:
            return self._stalled_changed.wait_for(lambda: self._stalled >= count, timeout)

    # --- scripting and results ----------------------------------------------------------------

    def script(self, token: str, *replies: Reply) -> None:
        """The next sends to ``token`` get these replies in order; then ``default``."""
        with self._lock:
            self._scripts.setdefault(token, []).extend(replies)

    def delivered(self, token: str) -> int:
        """How many messages to ``token`` were answered with success."""
        with self._lock:
            return self.replies[(token, 200)]

    def delivered_tokens(self) -> Counter[str]:
        with self._lock:
            return Counter({token: n for (token, status), n in self.replies.items() if status == 200})

    def stats(self) -> dict[str, Any]:
        """Totals (also served as ``GET /stats`` to a process that runs the server separately)."""
        with self._lock:
            answered: Counter[int] = Counter()
            for (_, status), n in self.replies.items():
                answered[status] += n
            return {"received": sum(self.hits.values()), "answered": {str(k): v for k, v in answered.items()},
                    "delivered": answered[200], "tokens": len(self.hits)}

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()
            self.replies.clear()
            self.messages.clear()
            self.probes.clear()
            self._scripts.clear()
            self.default = OK

    # --- used by the handler -------------------------------------------------------------------

    def _reply_for(self, token: str, message: dict[str, Any]) -> Reply | None:
        with self._lock:
            self.hits[token] += 1
            script = self._scripts.get(token)
            reply = script.pop(0) if script else self.default
            hold = False
            if not self._released.is_set():
                if self._pass_before_hold > 0:
                    self._pass_before_hold -= 1
                elif self._hold_left is None or self._hold_left > 0:
                    hold = True
                    if self._hold_left is not None:
                        self._hold_left -= 1
        if hold:
            with self._stalled_changed:
                self._stalled += 1
                self._stalled_changed.notify_all()
            try:
                self._released.wait(self.stall_limit)
            finally:
                with self._stalled_changed:
                    self._stalled -= 1
            if self._drop_held:
                return None
        return reply

    def _probed(self) -> Reply:
        with self._lock:
            self.probes[self.default.status] += 1
            return self.default

    def _answered(self, token: str, message: dict[str, Any], reply: Reply) -> int:
        with self._lock:
            self._count += 1
            self.replies[(token, reply.status)] += 1
            if self.record and reply.status == 200:
                self.messages.append(message)
            return self._count

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _close_listener(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone


def main() -> None:
    """``python -m tests.fcm_server --port 8123``: serve until interrupted (benchmarks may run the
    server in a process of its own, so it does not share the sender's interpreter)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--access-token", default="test-token")
    args = parser.parse_args()
    server = FakeFcm(args.port, access_token=args.access_token, record=False).start()
    print(server.base_url, flush=True)  # the caller reads the URL (port 0: the one picked)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
