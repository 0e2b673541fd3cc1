"""A local server that speaks vivo Push's HTTP API (docs/push-vendors.md, "vivo Push").

- ``POST /message/auth`` (JSON ``appId``, ``appKey``, ``timestamp``, ``sign``): checks them, the
  timestamp (±10 minutes) and ``sign = md5_hex(appId + appKey + timestamp + appSecret)`` as vivo
  does; answers ``{"result": 0, "authToken"}`` or a refusal (10200…).
- ``POST /message/send`` (header ``authToken``, JSON body): checks the token (10000 when unknown or
  expired), the body's ``appId`` (10094) and required fields with vivo's limits (validation codes),
  then answers ``{"result": 0, "taskId"}``, or 10302 with ``invalidUser``, 10070 (daily total), 10072
  (too fast), HTTP 500.
- :meth:`FakeVivo.receipt_body` / :meth:`FakeVivo.post_receipts`: the object keyed by task id vivo
  posts to the registered receipt URL, echoing ``extra["callback.param"]``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Mapping
from typing import Any

import requests

from tests.push_servers.base import OK, Answer, FakeServer, Reply

AUTH_PATH = "/message/auth"
SEND_PATH = "/message/send"
SYSTEM = {"IM", "ACCOUNT", "TODO", "DEVICE_REMINDER", "ORDER", "SUBSCRIPTION"}
OPERATION = {"NEWS", "CONTENT", "MARKETING", "SOCIAL"}


def _width(text: str) -> int:
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


class FakeVivo(FakeServer[Reply]):
    name = "vivo"

    def __init__(
        self,
        port: int = 0,
        *,
        app_id: int = 10004,
        app_key: str = "vivo-key",
        app_secret: str = "vivo-secret",
        **options: Any,
    ) -> None:
        options.setdefault("token_lifetime", 86400.0)
        super().__init__(port, default=OK, **options)
        self.app_id, self.app_key, self.app_secret = app_id, app_key, app_secret
        self._tasks = itertools.count(121397329)

    def route(self, path: str, headers: Mapping[str, str], raw: bytes) -> Answer | None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return Answer(200, {"result": 10050, "desc": "参数错误"})
        if path == AUTH_PATH:
            return self._auth(body)
        if path == SEND_PATH:
            return self._send(headers.get("authToken"), body)
        return Answer(404, {"result": 404, "desc": "not found"})

    def _auth(self, body: dict[str, Any]) -> Answer:
        app_id, key, stamp, sign = body.get("appId"), body.get("appKey"), body.get("timestamp"), body.get("sign")
        refusal = None
        if not app_id:
            refusal = (10200, "appId不能为空")
        elif not key:
            refusal = (10201, "appKey不能为空")
        elif app_id != self.app_id or key != self.app_key:
            refusal = (10202, "appId或appKey不合法")
        elif not isinstance(stamp, int) or abs(stamp - time.time() * 1000) > 600_000:
            refusal = (10203, "timestamp不合法")
        elif sign != hashlib.md5(f"{app_id}{key}{stamp}{self.app_secret}".encode()).hexdigest():
            refusal = (10204, "sign不合法")
        if refusal:
            self.refuse_auth()
            return Answer(200, {"result": refusal[0], "desc": refusal[1]})
        return Answer(200, {"result": 0, "desc": "请求成功", "authToken": self.issue_token()})

    def _send(self, token: str | None, body: dict[str, Any]) -> Answer | None:
        if not self.hold():
            return None
        if not self.token_valid(token):
            return Answer(200, {"result": 10000, "desc": "authToken不合法或已过期"})
        if body.get("appId") != self.app_id:
            return Answer(200, {"result": 10094, "desc": "appId与authToken不一致"})
        invalid = _validate(body)
        if invalid:
            return Answer(200, {"result": invalid[0], "desc": invalid[1]})
        target = body["regId"]
        fault = self.next_reply(target)
        if fault.kind == "ok":
            self.count_delivered(target, body)
            return Answer(200, {"result": 0, "desc": "请求成功", "taskId": str(next(self._tasks))})
        if fault.kind == "invalid":
            return Answer(200, {"result": 10302, "desc": "regId不合法", "invalidUser": {"status": 1, "userid": target}})
        if fault.kind == "quota":
            return Answer(200, {"result": 10070, "desc": "发送总量超出限制"})
        if fault.kind == "rate_limit":
            return Answer(200, {"result": 10072, "desc": "发送速度过快"})
        if fault.kind == "expired":
            self.revoke(token)
            return Answer(200, {"result": 10000, "desc": "authToken不合法或已过期"})
        return Answer(500, "Internet server error!")

    # --- receipts ------------------------------------------------------------------------------

    def receipt_body(self, target: str, ack_type: str = "0", *, param: str | None = None) -> dict[str, Any]:
        """What vivo posts to the registered receipt URL for the last message delivered to ``target``."""
        sent = self.sent_to(target)[-1]
        echoed = (sent.get("extra") or {}).get("callback.param") if param is None else param
        return {
            str(next(self._tasks)): {
                "param": echoed,
                "targets": target,
                "ackTime": int(time.time() * 1000),
                "ackType": ack_type,
            }
        }

    def post_receipts(self, url: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(url, json=body, timeout=10)


def _validate(body: dict[str, Any]) -> tuple[int, str] | None:
    """vivo's checks of a single send (its SDK's Validation and the doc's limits)."""
    if not body.get("regId"):
        return 10050, "regId不能为空"
    if body.get("notifyType") not in (1, 2, 3, 4):
        return 10054, "notifyType不合法"
    title, content = body.get("title") or "", body.get("content") or ""
    if not title or _width(title) > 40:
        return 10055, "title不能为空或超长"
    if not content or _width(content) > 100:
        return 10056, "content不能为空或超长"
    ttl = body.get("timeToLive")
    if ttl is not None and not (isinstance(ttl, int) and 60 <= ttl <= 604800):
        return 10058, "timeToLive不合法"
    if body.get("skipType") not in (1, 2, 3, 4) or (body["skipType"] in (2, 3, 4) and not body.get("skipContent")):
        return 10059, "skipType或skipContent不合法"
    custom = body.get("clientCustomMap") or {}
    if not isinstance(custom, dict) or len(custom) > 10 or sum(len(k) + len(str(v)) for k, v in custom.items()) > 1024:
        return 10061, "clientCustomMap不合法"
    request_id = body.get("requestId")
    if not request_id or len(request_id) > 64:
        return 10305, "requestId不合法"
    classification, category = body.get("classification"), body.get("category")
    if classification not in (None, 0, 1):
        return 11000, "消息类型错误"
    if category is not None:
        if category not in SYSTEM | OPERATION:
            return 10096, "category不合法"
        if classification is not None and (classification == 1) != (category in SYSTEM):
            return 10097, "category与classification不一致"
    return None
