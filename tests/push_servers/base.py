"""What the local vendor push servers share: a threaded HTTP server on 127.0.0.1 (port 0) with an
OAuth token endpoint and a send endpoint, scripting per device token, outages and stalls.

A vendor module (huawei.py, honor.py) subclasses :class:`FakeVendor` and writes its paths, how it
checks a send request, and how it words each answer. Replies a test can script per token:
``OK``, ``INVALID`` (the token is dead), ``QUOTA`` (daily cap), ``rate_limited(wait)``,
``UNAVAILABLE`` (5xx), ``EXPIRED`` (this call's access token is refused, as if it expired just then).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Reply:
    kind: str  # ok | invalid | quota | rate_limit | unavailable | expired
    wait: int | None = None  # rate_limit: the Retry-After seconds


OK = Reply("ok")
INVALID = Reply("invalid")
QUOTA = Reply("quota")
UNAVAILABLE = Reply("unavailable")
EXPIRED = Reply("expired")
#: Replies that answer the whole request (not one token of it).
REQUEST_LEVEL = ("expired", "unavailable", "rate_limit", "quota")


def rate_limited(wait: int | None = 30) -> Reply:
    return Reply("rate_limit", wait)


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, fake: FakeVendor, address: tuple[str, int]) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up (or a killed worker) is no news here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the providers' pooled sessions reuse connections
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms wait for an ACK
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

    def do_POST(self) -> None:
        fake = self.server.fake
        if fake.is_down:
            self.close_connection = True
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer: Answer | None
        if self.path == fake.auth_path:
            answer = fake._auth(parse_qs(raw.decode()))
        elif fake.is_send_path(self.path):
            answer = fake._send(self.path, dict(self.headers.items()), raw)
        else:
            answer = Answer(404, {"error": "no such path"})
        if answer is None or fake.is_down:  # dropped, or went down while held back
            self.close_connection = True
            return
        data = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (answer.headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FakeVendor:
    """A vendor's auth and send endpoints on 127.0.0.1, scriptable per token; thread-safe."""

    auth_path = "/token"

    def __init__(
        self, *, client_id: str = "client-1", client_secret: str = "secret-1", app_id: str = "app-1",
        token_lifetime: int = 3600, record: bool = True, stall_limit: float = 60.0,
    ) -> None:  # fmt: skip
        self.client_id, self.client_secret, self.app_id = client_id, client_secret, app_id
        self.token_lifetime = token_lifetime  # seconds an issued access token lives (tests shorten it)
        self.record = record  # keep every delivered message (benchmarks keep counts only)
        self.stall_limit = stall_limit
        self.port = 0
        self.default = OK
        self.token_fetches = 0  # access tokens issued
        self.auth_refusals = 0  # sends refused for their access token
        self.hits: Counter[str] = Counter()  # requests naming each device token
        self.delivered_counts: Counter[str] = Counter()
        self.messages: list[tuple[Any, str]] = []  # (body, token) of each delivered message
        self.probes = 0
        self._issued: dict[str, float] = {}  # access token -> monotonic expiry
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._down = False
        self._released = threading.Event()
        self._released.set()
        self._pass_before_hold = 0
        self._hold_left: int | None = None
        self._stalled = 0
        self._drop_held = False
        self._stalled_changed = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # --- what a vendor writes ------------------------------------------------------------------

    def is_send_path(self, path: str) -> bool:
        raise NotImplementedError

    def check_send(self, path: str, headers: dict[str, str], body: Any) -> tuple[list[str], bool] | Answer:
        """The request's device tokens and whether it is a dry run, or the vendor's refusal."""
        raise NotImplementedError

    def answer(self, tokens: list[str], invalid: list[str], reply: Reply) -> Answer:
        """The vendor's words for ``reply`` (request level) or for a send with ``invalid`` tokens."""
        raise NotImplementedError

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeVendor:
        self._http = _HttpServer(self, ("127.0.0.1", self.port))
        self.port = self._http.server_address[1]  # kept across go_down()/come_up()
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release(drop=True)
        self._close_listener()
        self._close_connections()

    def __enter__(self) -> FakeVendor:
        return self.start() if self._http is None else self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}{self.auth_path}"

    # --- faults --------------------------------------------------------------------------------

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
        """Hold send answers back until :meth:`release`: ``after`` requests pass first, then ``count``
        (default: all) are held."""
        with self._lock:
            self._pass_before_hold, self._hold_left = after, count
            self._drop_held = False
            self._released.clear()

    def release(self, *, drop: bool = False) -> None:
        self._drop_held = drop
        self._released.set()

    def wait_stalled(self, count: int, timeout: float = 30.0) -> bool:
        with self._stalled_changed:
            return self._stalled_changed.wait_for(lambda: self._stalled >= count, timeout)

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working now (as if its hour ran out)."""
        with self._lock:
            self._issued.clear()

    # --- scripting and results -----------------------------------------------------------------

    def script(self, token: str, *replies: Reply) -> None:
        """The next sends naming ``token`` get these replies in order; then ``default``."""
        with self._lock:
            self._scripts.setdefault(token, []).extend(replies)

    def delivered(self, token: str) -> int:
        with self._lock:
            return self.delivered_counts[token]

    def delivered_tokens(self) -> Counter[str]:
        with self._lock:
            return +self.delivered_counts

    def sent_to(self, token: str) -> list[dict[str, Any]]:
        """The bodies of the messages delivered to ``token``."""
        with self._lock:
            return [body for body, to in self.messages if to == token]

    # --- used by the handler -------------------------------------------------------------------

    def _auth(self, form: dict[str, list[str]]) -> Answer:
        def one(name: str) -> str:
            return (form.get(name) or [""])[0]

        if one("grant_type") != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type", "error_description": "grant_type"})
        if not secrets.compare_digest(one("client_id"), self.client_id) or not secrets.compare_digest(
            one("client_secret"), self.client_secret
        ):
            return Answer(400, {"error": "invalid_client", "error_description": "bad client credentials"})
        value = secrets.token_urlsafe(24)
        with self._lock:
            self.token_fetches += 1
            self._issued[value] = time.monotonic() + self.token_lifetime
        return Answer(200, {"access_token": value, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def token_valid(self, headers: dict[str, str]) -> bool:
        value = headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            valid = time.monotonic() < self._issued.get(value, 0.0)
            if not valid:
                self.auth_refusals += 1
            return valid

    def _send(self, path: str, headers: dict[str, str], raw: bytes) -> Answer | None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not self.token_valid(headers):
            return self.answer([], [], EXPIRED)
        checked = self.check_send(path, headers, body)
        if isinstance(checked, Answer):
            return checked
        tokens, dry_run = checked
        if dry_run:
            with self._lock:
                self.probes += 1
            return self.answer(tokens, [], self.default if self.default.kind in REQUEST_LEVEL else OK)
        with self._lock:
            replies = []
            for token in tokens:
                self.hits[token] += 1
                script = self._scripts.get(token)
                replies.append(script.pop(0) if script else self.default)
        if not self._hold():
            return None
        whole = next((r for r in replies if r.kind in REQUEST_LEVEL), None)
        if whole is not None:
            # "expired" refuses this call only (its token ran out just then; calls of the same batch
            # made side by side may still have passed): expire_tokens() ends every token at once.
            return self.answer(tokens, [], whole)
        invalid = [t for t, r in zip(tokens, replies, strict=True) if r.kind == "invalid"]
        with self._lock:
            for token in tokens:
                if token not in invalid:
                    self.delivered_counts[token] += 1
                    if self.record:
                        self.messages.append((body, token))
        return self.answer(tokens, invalid, OK)

    def _hold(self) -> bool:
        """Hold this request while stalled; False when its connection is to be dropped."""
        with self._lock:
            hold = False
            if not self._released.is_set():
                if self._pass_before_hold > 0:
                    self._pass_before_hold -= 1
                elif self._hold_left is None or self._hold_left > 0:
                    hold = True
                    if self._hold_left is not None:
                        self._hold_left -= 1
        if not hold:
            return True
        with self._stalled_changed:
            self._stalled += 1
            self._stalled_changed.notify_all()
        try:
            self._released.wait(self.stall_limit)
        finally:
            with self._stalled_changed:
                self._stalled -= 1
        return not self._drop_held

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
                pass
