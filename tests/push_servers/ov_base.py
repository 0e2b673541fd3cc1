"""What the fake OPPO and vivo servers share: a threaded HTTP server on 127.0.0.1, tokens it issues
and checks, per-target scripts, outages and stalls, and the counters tests assert on.

A vendor server subclasses :class:`FakeVendor` and writes :meth:`~FakeVendor.route` (its paths and
formats) and how a :class:`Fault` looks in its answers. Scripting is vendor-neutral::

    server.script("regid-1", INVALID)              # the next send to it: the vendor's "invalid target"
    server.script("regid-2", rate_limited(30), OK) # "too fast" (with this wait, where the vendor gives one), then ok
    server.default = QUOTA                         # every unscripted target: the vendor's daily cap
    server.script("regid-3", TOKEN_EXPIRED)        # the request carrying it: "auth token invalid"
    server.token_lifetime = 2.0; server.expire_tokens()
    server.go_down(); server.come_up(); server.stall(); server.wait_stalled(1); server.release(drop=True)
    server.delivered("regid-1"), server.token_fetches, server.messages

Plain library code (no pytest), so ``bench/`` can import it as well.
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


@dataclass(frozen=True)
class Fault:
    """One scripted answer for one target: ``ok``, ``invalid``, ``quota``, ``rate`` (with ``wait``),
    ``5xx`` or ``expired`` (the request's auth token is refused)."""

    kind: str
    wait: int | None = None


OK = Fault("ok")
INVALID = Fault("invalid")
QUOTA = Fault("quota")
SERVER_ERROR = Fault("5xx")
TOKEN_EXPIRED = Fault("expired")


def rate_limited(wait: int | None = None) -> Fault:
    return Fault("rate", wait)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, fake: FakeVendor, address: tuple[str, int]) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up (or a killed worker) is no news here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the provider's pooled session reuses connections
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the client's
    # delayed ACK (40 ms a call on Linux), and every single-message vendor call takes that long.
    disable_nagle_algorithm = True
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
        answer = fake.route(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
        if answer is None or fake.is_down:  # dropped, or went down while this request was held back
            self.close_connection = True
            return
        data = json.dumps(answer.body, ensure_ascii=False).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FakeVendor:
    """Base of the fake vendor servers (see the module docstring); thread-safe."""

    name = "vendor"

    def __init__(self, port: int = 0, *, token_lifetime: float = 86400.0, record: bool = True, stall_limit: float = 60.0) -> None:
        self.port = port
        self.token_lifetime = token_lifetime  # seconds an issued auth token is accepted
        self.record = record
        self.stall_limit = stall_limit
        self.default = OK
        self.token_fetches = 0  # successful auth calls
        self.auth_refusals = 0
        self.send_requests = 0  # send calls that reached the handler
        self.hits: Counter[str] = Counter()  # messages received per target
        self.answered: Counter[tuple[str, str]] = Counter()  # (target, fault kind) answered
        self.messages: list[dict[str, Any]] = []  # the messages delivered, as sent
        self._tokens: dict[str, float] = {}  # issued token → monotonic expiry
        self._scripts: dict[str, list[Fault]] = {}
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

    # --- what a vendor writes --------------------------------------------------------------------

    def route(self, path: str, headers: dict[str, str], raw: bytes) -> Answer | None:
        raise NotImplementedError

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeVendor:
        self._http = _HttpServer(self, ("127.0.0.1", self.port))
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release(drop=True)
        self._close_listener()
        self._close_connections()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        """Hold send requests back until :meth:`release`: the next ``after`` pass, then ``count`` (all) wait."""
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
        """Every token issued so far is refused from now on (as at the end of its lifetime)."""
        with self._lock:
            self._tokens.clear()

    # --- scripting and results ----------------------------------------------------------------

    def script(self, target: str, *faults: Fault) -> None:
        with self._lock:
            self._scripts.setdefault(target, []).extend(faults)

    def delivered(self, target: str) -> int:
        with self._lock:
            return self.answered[(target, "ok")]

    def delivered_targets(self) -> Counter[str]:
        with self._lock:
            return Counter({target: n for (target, kind), n in self.answered.items() if kind == "ok"})

    def sent_to(self, target: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m.get("_target") == target]

    # --- used by the vendors' routes ------------------------------------------------------------

    def issue_token(self) -> str:
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
            self.token_fetches += 1
        return token

    def token_valid(self, token: str | None) -> bool:
        with self._lock:
            expiry = self._tokens.get(token or "")
            return expiry is not None and time.monotonic() < expiry

    def revoke(self, token: str | None) -> None:
        with self._lock:
            self._tokens.pop(token or "", None)

    def next_fault(self, target: str) -> Fault:
        with self._lock:
            self.hits[target] += 1
            script = self._scripts.get(target)
            return script.pop(0) if script else self.default

    def peek_fault(self, target: str) -> Fault:
        with self._lock:
            script = self._scripts.get(target)
            return script[0] if script else self.default

    def note(self, target: str, fault: Fault, message: dict[str, Any]) -> None:
        with self._lock:
            self.answered[(target, fault.kind)] += 1
            if self.record and fault.kind == "ok":
                self.messages.append({**message, "_target": target})

    def hold(self) -> bool:
        """Hold this send request while stalled; False when it is to be dropped instead of answered."""
        with self._lock:
            self.send_requests += 1
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

    # --- connections -----------------------------------------------------------------------------

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
