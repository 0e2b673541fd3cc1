"""A local HTTP server on 127.0.0.1 that speaks Xiaomi MiPush's server API, for tests and benchmarks.

The provider (notifications/delivery/vendors/xiaomi.py) is pointed at it by ``XIAOMI_ENDPOINT``::

    server = FakeMiPush(secret="s3cret", package="org.shouwang.app").start()
    server.script("regid-1", INVALID)                 # listed in data.bad_regids of its next call
    server.script("regid-2", QUOTA, OK)               # code 200001 (daily cap), then accepted
    server.script("regid-3", rate_limited(7))         # code 10027 with Retry-After: 7
    server.default = UNAVAILABLE                       # HTTP 503 for unscripted regids
    server.go_down(); server.come_up()                 # refuse connections, then serve again
    server.stall(after=2); server.wait_stalled(1); server.release(drop=True)
    server.delivered("regid-1"), server.calls, server.forms, server.auth_failures
    server.post_receipts(url, {msg_id: {"param": ..., "type": 1, "targets": "regid-1"}})

MiPush has no token step: every call must carry ``Authorization: key=<AppSecret>``; a wrong key is
answered ``{"result":"error","code":21301}`` (``auth_failures`` counts them; ``token_fetches`` stays 0).
``POST /v3/message/regid`` takes a form; a call is answered by its regids' scripts: any call-level
reply (quota, rate limit, 5xx, …) of one regid answers the whole call, as MiPush does for a request;
``INVALID`` regids are listed in ``data.bad_regids`` and the others are delivered.
``POST /v1/validation/regids`` answers ``ok`` (the provider's probe) unless the default is a 5xx.
Plain library code (no pytest), so ``bench/`` imports it too.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

REQUIRED = ("registration_id", "restricted_package_name", "title", "description", "pass_through", "payload")


@dataclass(frozen=True)
class Reply:
    status: int = 200
    code: int = 0
    reason: str = ""
    retry_after: int | None = None
    bad: bool = False  # the regid is dead: listed in bad_regids, the call still succeeds


OK = Reply()
INVALID = Reply(bad=True)
ALL_INVALID = Reply(code=20301, reason="all regids invalid")
QUOTA = Reply(code=200001, reason="日超频约束")
AUTH_FAILED = Reply(code=21301, reason="认证失败")
BAD_PAYLOAD = Reply(code=10017, reason="参数值非法")
UNAVAILABLE = Reply(status=503, reason="service unavailable")


def rate_limited(retry_after: int | None = None) -> Reply:
    return Reply(code=10027, reason="app api call frequency over limit", retry_after=retry_after)


def receipt_form(items: dict[str, dict[str, Any]]) -> dict[str, str]:
    """MiPush's receipt body: a form whose ``data`` is JSON keyed by message id, each item with the
    message's ``param`` (our ``extra.callback.param``), ``type``, ``targets`` (regids) and ``timestamp``."""
    return {"data": json.dumps(items, ensure_ascii=False)}


def receipt_items(forms: list[dict[str, str]], kind: int, regids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Receipts of ``kind`` for messages sent (their forms), as MiPush would post them."""
    return {
        f"msg{n}": {"param": form["extra.callback.param"], "type": kind, "timestamp": 1765000000000,
                    "targets": ",".join(regids if regids is not None else form["registration_id"].split(","))}
        for n, form in enumerate(forms)
    }  # fmt: skip


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, fake: FakeMiPush, address: tuple[str, int]) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up (or a killed worker) is no news here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms wait between them
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        """``/stats`` (totals) and ``/reset`` for a benchmark running the server in another process."""
        fake = self.server.fake
        if self.path == "/reset":
            fake.reset()
        if self.path not in ("/stats", "/reset"):
            self._answer(404, {"result": "error", "code": 404, "reason": "no such path"})
            return
        self._answer(200, fake.stats())

    def do_POST(self) -> None:
        fake = self.server.fake
        if fake.is_down:
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
        if self.headers.get("Authorization") != f"key={fake.secret}":
            with fake._lock:
                fake.auth_failures += 1
            self._answer(200, {"result": "error", "code": 21301, "reason": "认证失败", "description": "认证失败"})
            return
        if self.path == "/v1/validation/regids":
            with fake._lock:
                fake.probes += 1
            reply = fake.default if fake.default.status != 200 else OK
            self._answer(reply.status, {"result": "ok", "code": 0, "data": {}})
            return
        if self.path != "/v3/message/regid":
            self._answer(404, {"result": "error", "code": 404, "reason": "no such path"})
            return
        missing = [name for name in REQUIRED if not form.get(name)]
        if missing or form["restricted_package_name"] != fake.package:
            self._reply(BAD_PAYLOAD, f"bad or missing: {missing or ['restricted_package_name']}")
            return
        regids = form["registration_id"].split(",")
        if len(regids) > 1000:
            self._reply(Reply(code=10018, reason="请求长度超过限制"))
            return
        answer = fake._call(regids, form)
        if answer is None or fake.is_down:
            self.close_connection = True
            return
        reply, bad = answer
        if reply.status != 200 or reply.code != 0:
            self._reply(reply)
            return
        self._answer(200, {
            "result": "ok", "code": 0, "trace_id": f"Xm{fake.calls}", "description": "成功",
            "data": {"id": f"msg{fake.calls}", **({"bad_regids": ",".join(bad)} if bad else {})},
            "info": f"Received push messages for {len(regids)} REGID",
        })  # fmt: skip

    def _reply(self, reply: Reply, reason: str = "") -> None:
        headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
        body = {"result": "error", "code": reply.code or reply.status, "reason": reason or reply.reason}
        self._answer(reply.status, body, headers)

    def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FakeMiPush:
    """MiPush's send API on 127.0.0.1, scriptable per regid; thread-safe."""

    def __init__(self, port: int = 0, *, secret: str = "mi-secret", package: str = "org.shouwang.app",
                 record: bool = True, stall_limit: float = 60.0) -> None:  # fmt: skip
        self.port = port
        self.secret = secret
        self.package = package
        self.record = record
        self.stall_limit = stall_limit
        self.default = OK
        self.token_fetches = 0  # MiPush has no token step: stays 0
        self.auth_failures = 0
        self.probes = 0
        self.calls = 0  # send calls answered
        self.hits: Counter[str] = Counter()
        self.delivered_count: Counter[str] = Counter()
        self.forms: list[dict[str, str]] = []  # forms of the calls that delivered something
        self._ids = itertools.count(1)
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._down = False
        self._released = threading.Event()
        self._released.set()
        self._pass_before_hold = 0
        self._stalled = 0
        self._drop_held = False
        self._stalled_changed = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeMiPush:
        self._http = _HttpServer(self, ("127.0.0.1", self.port))
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release(drop=True)
        self._close_listener()
        self._close_connections()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- faults -------------------------------------------------------------------------------------

    @property
    def is_down(self) -> bool:
        return self._down

    def go_down(self) -> None:
        self._down = True
        self._close_listener()
        self._close_connections()

    def come_up(self) -> None:
        self._down = False
        if self._http is None:
            self.start()

    def stall(self, *, after: int = 0) -> None:
        """Answer ``after`` more calls, then hold every call until :meth:`release`."""
        with self._lock:
            self._pass_before_hold, self._drop_held = after, False
            self._released.clear()

    def release(self, *, drop: bool = False) -> None:
        self._drop_held = drop
        self._released.set()

    def wait_stalled(self, count: int, timeout: float = 30.0) -> bool:
        with self._stalled_changed:
            return self._stalled_changed.wait_for(lambda: self._stalled >= count, timeout)

    # --- scripting and results ---------------------------------------------------------------------

    def script(self, regid: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts.setdefault(regid, []).extend(replies)

    def delivered(self, regid: str) -> int:
        with self._lock:
            return self.delivered_count[regid]

    def delivered_tokens(self) -> Counter[str]:
        with self._lock:
            return +self.delivered_count

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": self.calls, "delivered": sum(self.delivered_count.values()),
                    "regids": len(self.delivered_count), "twice": sum(1 for n in self.delivered_count.values() if n > 1),
                    "auth_failures": self.auth_failures}  # fmt: skip

    def reset(self) -> None:
        with self._lock:
            self.calls = self.auth_failures = self.probes = 0
            self.hits.clear()
            self.delivered_count.clear()
            self.forms.clear()
            self._scripts.clear()
            self.default = OK

    def post_receipts(self, url: str, items: dict[str, dict[str, Any]]) -> requests.Response:
        """Post receipts as MiPush does (see :func:`receipt_form`) to ``url``."""
        return requests.post(url, data=receipt_form(items), timeout=10)

    # --- used by the handler ----------------------------------------------------------------------

    def _call(self, regids: list[str], form: dict[str, str]) -> tuple[Reply, list[str]] | None:
        with self._lock:
            replies = []
            for regid in regids:
                self.hits[regid] += 1
                script = self._scripts.get(regid)
                replies.append(script.pop(0) if script else self.default)
            hold = not self._released.is_set() and self._pass_before_hold <= 0
            if not self._released.is_set() and self._pass_before_hold > 0:
                self._pass_before_hold -= 1
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
        failing = next((r for r in replies if r.status != 200 or r.code != 0), None)
        with self._lock:
            self.calls += 1
            if failing is not None:
                return failing, []
            bad = [regid for regid, reply in zip(regids, replies, strict=True) if reply.bad]
            for regid in regids:
                if regid not in bad:
                    self.delivered_count[regid] += 1
            if self.record:
                self.forms.append(form)
            return OK, bad

    def _track(self, connection: socket.socket, opened: bool) -> None:
        with self._lock:
            (self._connections.add if opened else self._connections.discard)(connection)

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


def main() -> None:
    """``python -m tests.push_servers.xiaomi --port 0``: serve until interrupted; prints the base URL."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", default="mi-secret")
    parser.add_argument("--package", default="org.shouwang.app")
    args = parser.parse_args()
    server = FakeMiPush(args.port, secret=args.secret, package=args.package, record=False).start()
    print(server.base_url, flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
