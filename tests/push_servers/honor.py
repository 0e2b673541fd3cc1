"""A local Honor Push server: OAuth token endpoint (Honor's IAM), ``/api/v1/<appId>/sendMessage``,
and receipts (docs/push-vendors.md "Honor Push"; much of Honor's protocol is unconfirmed).

What it checks: client credentials on the token form; ``Authorization: Bearer`` with a live token
(401 otherwise); the ``timestamp`` header; the app id in the path; no ``message`` wrapper; ``token``
1..1000; ``data`` a string; ``android.notification`` with title, body and importance. Answers:
``{"code": 80000000, "data": {"expireTokens": [...], "failTokens": []}}``; 5xx; 503 for rate limit
and quota (Honor's words for them are unconfirmed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests

from tests.push_servers.base import Answer, OAuthVendor, Reply

__all__ = ["FakeHonor"]


class FakeHonor(OAuthVendor):
    auth_path = "/auth/token"

    def is_send_path(self, path: str) -> bool:
        return path.startswith("/api/v1/") and path.endswith("/sendMessage")

    def check_send(self, path: str, headers: Mapping[str, str], body: Any) -> tuple[list[str], bool] | Answer:
        if path != f"/api/v1/{self.app_id}/sendMessage":
            return Answer(200, {"code": 80300002, "message": "no permission"})
        if not str(headers.get("timestamp", "")).isdigit():
            return Answer(400, {"code": 80100001, "message": "timestamp header missing"})
        if not isinstance(body, dict) or "message" in body or not isinstance(body.get("data", ""), str):
            return Answer(400, {"code": 80100003, "message": "Illegal message structure"})
        tokens = body.get("token")
        if not isinstance(tokens, list) or not 1 <= len(tokens) <= 1000:
            return Answer(400, {"code": 80300010, "message": "token count"})
        note = (body.get("android") or {}).get("notification") or {}
        if not note.get("title") or not note.get("body") or note.get("importance") not in ("NORMAL", "LOW"):
            return Answer(400, {"code": 80100001, "message": "Some request parameters are incorrect"})
        return [str(t) for t in tokens], False

    def answer(self, tokens: list[str], invalid: list[str], reply: Reply) -> Answer:
        if reply.kind == "expired":
            return Answer(401, {"code": 80200003, "message": "token expired"})
        if reply.kind == "unavailable":
            return Answer(500, {"code": 81000001, "message": "internal error"})
        if reply.kind in ("rate_limit", "quota"):
            headers = {"Retry-After": str(reply.wait)} if reply.wait is not None else None
            return Answer(503, {"code": 81000001, "message": "flow control"}, headers)
        data = {"sendResult": True, "requestId": "r", "failTokens": [], "expireTokens": invalid}
        return Answer(200, {"code": 80000000, "message": "success", "data": data})

    def post_receipts(self, url: str, statuses: list[dict[str, Any]]) -> requests.Response:
        """Post ``{"statuses": [...]}`` (Huawei's shape: Honor's is unconfirmed) with no signature."""
        return requests.post(
            url, data=json.dumps({"statuses": statuses}), headers={"Content-Type": "application/json"}, timeout=10
        )
