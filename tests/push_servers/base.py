"""What every local push server shares (FCM in tests/fcm_server.py and the vendors here): a threaded
HTTP/1.1 server on 127.0.0.1 without Nagle's delay, start/stop, faults, replies scripted per device
token, what was delivered per token, access tokens issued and expired, and an optional latency.

A server subclasses :class:`FakeServer` and writes only its protocol: :meth:`FakeServer.route`
(its paths, auth check, body parsing, result and error codes). What a test or benchmark can do with
any of them::

    server = FakeHuawei(latency_ms=20).start()     # every send/auth call answered 20 ms late
    server.script("token-1", INVALID)              # the next send naming it: the vendor's "invalid"
    server.script("token-2", rate_limited(30), OK) # "too fast" (with this wait, where the vendor gives one), then ok
    server.default = QUOTA                         # every unscripted token: the vendor's daily cap
    server.script("token-3", EXPIRED)              # that call's access token refused, as if it ran out just then
    server.token_lifetime = 2.0; server.expire_tokens()
    server.go_down(); server.come_up()             # refuse connections (open ones dropped), then serve again
    server.stall(after=5); server.wait_stalled(1); server.release(drop=True)
    server.delivered("token-1"), server.delivered_tokens(), server.sent_to("token-1"), server.token_fetches
    server.proxied["push.example:80"]             # calls it took as an HTTP proxy for that host

:class:`Reply` is the vendor-neutral script of the vendor servers (each words it its own way);
FCM and MiPush script their own literal answers (status and code) through the same machinery.

Plain library code (no pytest), so ``bench/`` imports it too, or runs a server in a process of its
own (tests/push_servers/serve.py).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class Reply:
    """One scripted answer for one device token, in vendor-neutral words."""

    kind: str  # ok | invalid | quota | rate_limit | unavailable | expired
    wait: int | None = None  # rate_limit: the wait the vendor names (Retry-After), where it names one


OK = Reply("ok")
INVALID = Reply("invalid")  # the token is dead
QUOTA = Reply("quota")  # the app's daily cap is reached
UNAVAILABLE = Reply("unavailable")  # 5xx
EXPIRED = Reply("expired")  # this call's access token is refused, as if it expired just then
#: Replies that answer a whole request (not one token of it).
REQUEST_LEVEL = ("expired", "unavailable", "rate_limit", "quota")


def rate_limited(wait: int | None = 30) -> Reply:
    return Reply("rate_limit", wait)


@dataclass(frozen=True)
class Answer:
    """What the server answers one request: a status and a JSON body (``None``: drop the connection)."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


ReplyT = TypeVar("ReplyT")


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # listen backlog: firebase-admin's send_each connects up to 500 times at once; the default 5
    # loses some of them to refused connections
    request_queue_size = 1024

    def __init__(self, fake: FakeServer[Any], address: tuple[str, int]) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up (or a killed worker) is no news here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the senders' pooled sessions reuse connections
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the client's
    # delayed ACK (40 ms a call on Linux), and every single-message call takes that long.
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

    def do_GET(self) -> None:
        """``/stats`` (and ``/reset``, then the stats) for a benchmark running the server apart."""
        fake = self.server.fake
        if self.path == "/reset":
            fake.reset()
        if self.path in ("/stats", "/reset"):
            self._write(Answer(200, fake.stats()))
        else:
            self._write(fake.not_found())

    def do_POST(self) -> None:
        fake = self.server.fake
        if fake.is_down:
            self.close_connection = True  # down: no answer (new connections are refused)
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path
        if path.startswith("http://"):  # absolute form: asked as an HTTP proxy for that host
            target = urlsplit(path)
            with fake._lock:
                fake.proxied[target.netloc] += 1
            path = target.path + (f"?{target.query}" if target.query else "")
        answer = fake.route(path, CaseInsensitiveDict(self.headers.items()), raw)
        if answer is not None:
            fake.delay()  # this thread only: the other connections are answered meanwhile
        if answer is None or fake.is_down:  # dropped, or went down while this request was held back
            self.close_connection = True
            return
        self._write(answer)

    def _write(self, answer: Answer) -> None:
        data = json.dumps(answer.body, ensure_ascii=False).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (answer.headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FakeServer(Generic[ReplyT]):
    """A push service on 127.0.0.1 (see the module docstring); thread-safe.

    ``latency_ms``: every answered call (send, auth, probe) waits this long before its answer, as a
    vendor a network away would; ``record``: keep what was delivered (benchmarks keep counts only);
    ``stall_limit``: a held request is answered after this long at most.
    """

    name = "push"

    def __init__(
        self, port: int = 0, *, default: ReplyT, record: bool = True, stall_limit: float = 60.0,
        latency_ms: float = 0.0, token_lifetime: float = 3600.0,
    ) -> None:  # fmt: skip
        self.port = port
        self.default = default  # the reply for tokens with nothing scripted
        self.record = record
        self.stall_limit = stall_limit
        self.latency_ms = latency_ms
        self.token_lifetime = token_lifetime  # seconds an access token issued from now on lives
        self.token_fetches = 0  # access tokens issued
        self.auth_refusals = 0  # auth calls refused (wrong credentials or signature)
        self.token_refusals = 0  # send calls refused for their access token
        self.send_requests = 0  # send calls that reached the server
        self.hits: Counter[str] = Counter()  # sends naming each token, answered or not
        self.proxied: Counter[str] = Counter()  # calls received as a proxy, by the host they were for
        self.delivered_counts: Counter[str] = Counter()
        self.deliveries: list[tuple[str, Any]] = []  # (token, message as sent) of each delivery
        self._issued: dict[str, float] = {}  # access token -> monotonic expiry
        self._scripts: dict[str, list[ReplyT]] = {}
        self._lock = threading.Lock()
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

    # --- what a server writes ------------------------------------------------------------------

    def route(self, path: str, headers: Mapping[str, str], raw: bytes) -> Answer | None:
        """The answer to one POST (``None``: drop the connection unanswered)."""
        raise NotImplementedError

    def not_found(self) -> Answer:
        return Answer(404, {"error": "no such path"})

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeServer[ReplyT]:
        self._http = _HttpServer(self, ("127.0.0.1", self.port))
        self.port = self._http.server_address[1]  # kept across go_down()/come_up()
        self._thread = threading.Thread(
            target=self._http.serve_forever, args=(0.05,), name=f"fake-{self.name}-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release(drop=True)
        self._close_listener()
        self._close_connections()

    def __enter__(self) -> FakeServer[ReplyT]:
        return self.start() if self._http is None else self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        """Hold send answers back until :meth:`release` (or ``stall_limit``): the next ``after``
        requests are still answered, then ``count`` (default: all until the release) are held."""
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

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused from now on (as at the end of its lifetime)."""
        with self._lock:
            self._issued.clear()

    # --- scripting and results -----------------------------------------------------------------

    def script(self, token: str, *replies: ReplyT) -> None:
        """The next sends naming ``token`` get these replies in order; then ``default``."""
        with self._lock:
            self._scripts.setdefault(token, []).extend(replies)

    def delivered(self, token: str) -> int:
        with self._lock:
            return self.delivered_counts[token]

    def delivered_tokens(self) -> Counter[str]:
        with self._lock:
            return +self.delivered_counts

    def sent_to(self, token: str) -> list[Any]:
        """The messages delivered to ``token``, as sent."""
        with self._lock:
            return [message for to, message in self.deliveries if to == token]

    def stats(self) -> dict[str, Any]:
        """Totals (also served as ``GET /stats`` to a process that runs the server apart)."""
        with self._lock:
            return {"delivered": dict(self.delivered_counts), "token_fetches": self.token_fetches,
                    "send_requests": self.send_requests, "received": sum(self.hits.values())}  # fmt: skip

    def reset(self) -> None:
        """Forget what was sent (a benchmark's next phase sends everything again); scripts too."""
        with self._lock:
            self.hits.clear()
            self.proxied.clear()
            self.delivered_counts.clear()
            self.deliveries.clear()
            self._scripts.clear()
            self.send_requests = 0

    # --- used by the servers' routes ------------------------------------------------------------

    def delay(self) -> None:
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)

    def issue_token(self) -> str:
        value = secrets.token_urlsafe(24)
        with self._lock:
            self._issued[value] = time.monotonic() + self.token_lifetime
            self.token_fetches += 1
        return value

    def token_valid(self, value: str | None) -> bool:
        """Whether a send's access token is live; a refusal is counted in ``token_refusals``."""
        with self._lock:
            valid = time.monotonic() < self._issued.get(value or "", 0.0)
            if not valid:
                self.token_refusals += 1
            return valid

    def revoke(self, value: str | None) -> None:
        with self._lock:
            self._issued.pop(value or "", None)

    def refuse_auth(self) -> None:
        with self._lock:
            self.auth_refusals += 1

    def next_reply(self, token: str) -> ReplyT:
        """The reply for one send naming ``token`` (its script's next, or ``default``)."""
        with self._lock:
            self.hits[token] += 1
            script = self._scripts.get(token)
            return script.pop(0) if script else self.default

    def peek_reply(self, token: str) -> ReplyT:
        with self._lock:
            script = self._scripts.get(token)
            return script[0] if script else self.default

    def count_delivered(self, token: str, message: Any) -> None:
        with self._lock:
            self.delivered_counts[token] += 1
            if self.record:
                self.deliveries.append((token, message))

    def hold(self) -> bool:
        """Hold this send while stalled; False when its connection is to be dropped unanswered."""
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
                pass  # already gone


class OAuthVendor(FakeServer[Reply]):
    """Huawei and Honor: an OAuth 2.0 client-credentials token endpoint, then one send path where
    a call names up to 1000 tokens. A vendor writes its paths, :meth:`check_send` and :meth:`answer`."""

    auth_path = "/token"

    def __init__(
        self, port: int = 0, *, client_id: str = "client-1", client_secret: str = "secret-1", app_id: str = "app-1",
        **options: Any,
    ) -> None:  # fmt: skip
        super().__init__(port, default=OK, **options)
        self.client_id, self.client_secret, self.app_id = client_id, client_secret, app_id
        self.probes = 0  # dry runs (validate_only) answered

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}{self.auth_path}"

    def is_send_path(self, path: str) -> bool:
        raise NotImplementedError

    def check_send(self, path: str, headers: Mapping[str, str], body: Any) -> tuple[list[str], bool] | Answer:
        """The request's device tokens and whether it is a dry run, or the vendor's refusal."""
        raise NotImplementedError

    def answer(self, tokens: list[str], invalid: list[str], reply: Reply) -> Answer:
        """The vendor's words for ``reply`` (request level) or for a send with ``invalid`` tokens."""
        raise NotImplementedError

    def route(self, path: str, headers: Mapping[str, str], raw: bytes) -> Answer | None:
        if path == self.auth_path:
            return self._auth(raw)
        if self.is_send_path(path):
            return self._send(path, headers, raw)
        return self.not_found()

    def _auth(self, raw: bytes) -> Answer:
        form = {name: values[0] for name, values in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type", "error_description": "grant_type"})
        if not secrets.compare_digest(form.get("client_id", ""), self.client_id) or not secrets.compare_digest(
            form.get("client_secret", ""), self.client_secret
        ):
            self.refuse_auth()
            return Answer(400, {"error": "invalid_client", "error_description": "bad client credentials"})
        value = self.issue_token()
        return Answer(200, {"access_token": value, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def _send(self, path: str, headers: Mapping[str, str], raw: bytes) -> Answer | None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not self.token_valid(headers.get("Authorization", "").removeprefix("Bearer ")):
            return self.answer([], [], EXPIRED)
        checked = self.check_send(path, headers, body)
        if isinstance(checked, Answer):
            return checked
        tokens, dry_run = checked
        if dry_run:
            with self._lock:
                self.probes += 1
            return self.answer(tokens, [], self.default if self.default.kind in REQUEST_LEVEL else OK)
        replies = [self.next_reply(token) for token in tokens]
        if not self.hold():
            return None
        whole = next((r for r in replies if r.kind in REQUEST_LEVEL), None)
        if whole is not None:
            # "expired" refuses this call only (its token ran out just then; calls of the same batch
            # made side by side may still have passed): expire_tokens() ends every token at once.
            return self.answer(tokens, [], whole)
        invalid = [t for t, r in zip(tokens, replies, strict=True) if r.kind == "invalid"]
        for token in tokens:
            if token not in invalid:
                self.count_delivered(token, body)
        return self.answer(tokens, invalid, OK)
