"""A local Huawei Push Kit v1 server: OAuth token endpoint, ``/v1/<app id>/messages:send``, and
signed receipts posted the way Huawei posts them (docs/push-vendors.md "Huawei Push Kit").

What it checks as Huawei does: client credentials on the token form; ``Authorization: Bearer``
with a live token (401 + ``80200003`` otherwise); the app id in the path; ``message.token`` 1..1000;
the ``data`` a string; the body ≤ 4096 bytes without the tokens. Answers: ``80000000``, partial
``80100000`` with ``illegal_tokens``, all invalid ``80300007``, 5xx ``81000001``, 503 flow control
(with ``Retry-After`` when scripted with a wait). Huawei has no quota answer (over-cap messages are
accepted and dropped, receipt status 102): a scripted ``QUOTA`` is answered as flow control (503).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import requests

from notifications.delivery.vendors.huawei import callback_signature
from tests.push_servers.base import OK, Answer, OAuthVendor, Reply

__all__ = ["FakeHuawei"]


class FakeHuawei(OAuthVendor):
    auth_path = "/oauth2/v3/token"

    def __init__(
        self, port: int = 0, *, receipt_username: str = "receipts", receipt_secret: str = "receipt-secret", **options: Any
    ) -> None:
        super().__init__(port, **options)
        self.receipt_username, self.receipt_secret = receipt_username, receipt_secret

    def is_send_path(self, path: str) -> bool:
        return path.startswith("/v1/") and path.endswith("/messages:send")

    def check_send(self, path: str, headers: Mapping[str, str], body: Any) -> tuple[list[str], bool] | Answer:
        if path != f"/v1/{self.app_id}/messages:send":
            return Answer(
                200,
                {"code": "80300002", "msg": "The current app does not have the permission to send", "requestId": "r"},
            )
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("data", ""), str):
            return Answer(400, {"code": "80100003", "msg": "Illegal message structure", "requestId": "r"})
        tokens = message.get("token")
        if not isinstance(tokens, list) or not 1 <= len(tokens) <= 1000:
            return Answer(400, {"code": "80300010", "msg": "The number of tokens exceeds the limit", "requestId": "r"})
        without_tokens = json.dumps({**body, "message": {**message, "token": []}}, ensure_ascii=False).encode()
        if len(without_tokens) > 4096:
            return Answer(400, {"code": "80300008", "msg": "The message body size exceeds the limit", "requestId": "r"})
        note = (message.get("android") or {}).get("notification") or {}
        if not note.get("title") or not note.get("body"):
            return Answer(400, {"code": "80100001", "msg": "Some request parameters are incorrect", "requestId": "r"})
        return [str(t) for t in tokens], bool(body.get("validate_only"))

    def answer(self, tokens: list[str], invalid: list[str], reply: Reply) -> Answer:
        if reply.kind == "expired":
            return Answer(401, {"code": "80200003", "msg": "OAuth token expired", "requestId": "r"})
        if reply.kind == "unavailable":
            return Answer(500, {"code": "81000001", "msg": "System inner error", "requestId": "r"})
        if reply.kind in ("rate_limit", "quota"):
            headers = {"Retry-After": str(reply.wait)} if reply.wait is not None else None
            return Answer(503, {"code": "81000001", "msg": "traffic control", "requestId": "r"}, headers)
        if tokens and len(invalid) == len(tokens):
            return Answer(200, {"code": "80300007", "msg": "All the tokens are invalid", "requestId": "r"})
        if invalid:
            detail = {"success": len(tokens) - len(invalid), "failure": len(invalid), "illegal_tokens": invalid}
            return Answer(200, {"code": "80100000", "msg": json.dumps(detail), "requestId": "r"})
        assert reply == OK
        return Answer(200, {"code": "80000000", "msg": "Success", "requestId": "r"})

    def receipt_request(
        self, statuses: list[dict[str, Any]], *, secret: str | None = None, username: str | None = None,
        signed: bool = True, timestamp_ms: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:  # fmt: skip
        """The body and headers of a receipt post: ``{"statuses": [...]}`` with ``X-HUAWEI-CALLBACK-ID``
        as Huawei signs it (``secret``/``username`` replace the configured ones: a forger's)."""
        headers = {"Content-Type": "application/json"}
        if signed:
            stamp, nonce = str(timestamp_ms or int(time.time() * 1000)), str(uuid.uuid4())
            value = callback_signature(secret or self.receipt_secret, stamp, nonce, username or self.receipt_username)
            headers["X-HUAWEI-CALLBACK-ID"] = f"timestamp={stamp}; nonce={nonce}; value={value}"
        return json.dumps({"statuses": statuses}).encode(), headers

    def post_receipts(self, url: str, statuses: list[dict[str, Any]], **signing: Any) -> requests.Response:
        """Post receipts to ``url`` the way Huawei does (see :meth:`receipt_request`)."""
        body, headers = self.receipt_request(statuses, **signing)
        return requests.post(url, data=body, headers=headers, timeout=10)
