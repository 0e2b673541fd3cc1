"""A local HTTP server on 127.0.0.1 that speaks Xiaomi MiPush's server API, for tests and benchmarks.

The provider (notifications/delivery/vendors/xiaomi.py) is pointed at it by ``XIAOMI_ENDPOINT``::

    server = FakeMiPush(secret="s3cret", package="org.shouwang.app").start()
    server.script("regid-1", INVALID)                 # listed in data.bad_regids of its next call
    server.script("regid-2", QUOTA, OK)               # code 200001 (daily cap), then accepted
    server.script("regid-3", rate_limited(7))         # code 10027 with Retry-After: 7
    server.default = UNAVAILABLE                       # HTTP 503 for unscripted regids
    server.go_down(); server.come_up()                 # refuse connections, then serve again
    server.stall(after=2); server.wait_stalled(1); server.release(drop=True)
    server.delivered("regid-1"), server.calls, server.forms, server.auth_refusals
    server.post_receipts(url, {msg_id: {"param": ..., "type": 1, "targets": "regid-1"}})

MiPush has no token step: every call must carry ``Authorization: key=<AppSecret>``; a wrong key is
answered ``{"result":"error","code":21301}`` (``auth_refusals`` counts them; ``token_fetches`` stays 0).
``POST /v3/message/regid`` takes a form; a call is answered by its regids' scripts: any call-level
reply (quota, rate limit, 5xx, …) of one regid answers the whole call, as MiPush does for a request;
``INVALID`` regids are listed in ``data.bad_regids`` and the others are delivered.
``POST /v1/validation/regids`` answers ``ok`` (the provider's probe) unless the default is a 5xx.
Plain library code (no pytest), so ``bench/`` imports it too.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from tests.push_servers.base import Answer, FakeServer

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


class FakeMiPush(FakeServer[Reply]):
    """MiPush's send API on 127.0.0.1, scriptable per regid; thread-safe."""

    name = "mipush"

    def __init__(
        self, port: int = 0, *, secret: str = "mi-secret", package: str = "org.shouwang.app", **options: Any
    ) -> None:
        super().__init__(port, default=OK, **options)
        self.secret = secret
        self.package = package
        self.probes = 0
        self.calls = 0  # send calls answered
        self.forms: list[dict[str, str]] = []  # forms of the calls that delivered something

    def not_found(self) -> Answer:
        return Answer(404, {"result": "error", "code": 404, "reason": "no such path"})

    def stats(self) -> dict[str, Any]:
        with self._lock:
            calls = self.calls
        return {**super().stats(), "calls": calls}

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.calls = self.auth_refusals = self.probes = 0
            self.forms.clear()
            self.default = OK

    def post_receipts(self, url: str, items: dict[str, dict[str, Any]]) -> requests.Response:
        """Post receipts as MiPush does (see :func:`receipt_form`) to ``url``."""
        return requests.post(url, data=receipt_form(items), timeout=10)

    def route(self, path: str, headers: Mapping[str, str], raw: bytes) -> Answer | None:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode(), keep_blank_values=True).items()}
        if headers.get("Authorization") != f"key={self.secret}":
            self.refuse_auth()
            return Answer(200, {"result": "error", "code": 21301, "reason": "认证失败", "description": "认证失败"})
        if path == "/v1/validation/regids":
            with self._lock:
                self.probes += 1
            return Answer(self.default.status, {"result": "ok", "code": 0, "data": {}})  # a 5xx default: down
        if path != "/v3/message/regid":
            return self.not_found()
        missing = [name for name in REQUIRED if not form.get(name)]
        if missing or form["restricted_package_name"] != self.package:
            return _refusal(BAD_PAYLOAD, f"bad or missing: {missing or ['restricted_package_name']}")
        regids = form["registration_id"].split(",")
        if len(regids) > 1000:
            return _refusal(Reply(code=10018, reason="请求长度超过限制"))
        replies = [self.next_reply(regid) for regid in regids]
        if not self.hold():
            return None
        with self._lock:
            self.calls += 1
            number = self.calls
        # a call-level reply of one regid answers the whole call, as MiPush does for a request
        failing = next((r for r in replies if r.status != 200 or r.code != 0), None)
        if failing is not None:
            return _refusal(failing)
        bad = [regid for regid, reply in zip(regids, replies, strict=True) if reply.bad]
        for regid in regids:
            if regid not in bad:
                self.count_delivered(regid, form)
        if self.record:
            with self._lock:
                self.forms.append(form)
        return Answer(200, {
            "result": "ok", "code": 0, "trace_id": f"Xm{number}", "description": "成功",
            "data": {"id": f"msg{number}", **({"bad_regids": ",".join(bad)} if bad else {})},
            "info": f"Received push messages for {len(regids)} REGID",
        })  # fmt: skip


def _refusal(reply: Reply, reason: str = "") -> Answer:
    headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
    return Answer(
        reply.status, {"result": "error", "code": reply.code or reply.status, "reason": reason or reply.reason}, headers
    )
