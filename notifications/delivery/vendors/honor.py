"""Honor Push (channel ``honor``): docs/push-vendors.md "Honor Push". Much of it is unconfirmed.

- Auth: OAuth client credentials at ``HONOR_AUTH_URL`` (Honor's IAM), the same form as Huawei's.
- Send: ``POST {HONOR_ENDPOINT}/api/v1/{app id}/sendMessage`` with a ``timestamp`` header; no
  ``message`` wrapper; camelCase fields. One content to many tokens, as Huawei: a call takes the
  messages of one notification. Its largest batch is unconfirmed (``HONOR_MAX_BATCH``, 100).
- Answer: ``{"code": 80000000, "data": {"failTokens": [...], "expireTokens": [...]}}``; other codes
  are read as Huawei's (Honor's success code is the same; its table is unconfirmed).
- Receipts: their format and any signature are unconfirmed, so they are refused (401) unless
  ``HONOR_RECEIPTS`` is on; then each item's ``biTag`` must be our signed reference.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import requests
from flask import Request, current_app

from core.errors import Forbidden, Unauthorized, ValidationFailed
from notifications.delivery import categories, receipts
from notifications.delivery.push import Outcome, PushMessage, PushProvider, SendResult
from notifications.delivery.receipts import Receipt, ReceiptHandler
from notifications.delivery.vendors import huawei
from notifications.delivery.vendors.base import AccessToken, TokenExpired
from notifications.devices.models import PushChannel

CHANNEL = PushChannel.HONOR

OK_CODE = 80000000


class HonorProvider(huawei.OneContentPerCall):
    channel: str = CHANNEL

    def __init__(self, config: Mapping[str, Any], http_timeout: float) -> None:
        self.client_id = str(config["HONOR_CLIENT_ID"])
        self.secret = str(config["HONOR_CLIENT_SECRET"])
        self.app_id = str(config["HONOR_APP_ID"])
        self.auth_url = str(config["HONOR_AUTH_URL"])
        self.max_batch = max(1, min(huawei.MAX_TOKENS, int(config["HONOR_MAX_BATCH"])))
        super().__init__(str(config["HONOR_ENDPOINT"]), http_timeout)
        self.send_url = f"{self.base_url}/api/v1/{self.app_id}/sendMessage"

    def fetch_token(self) -> AccessToken:
        return huawei.oauth_token(self.session, self.auth_url, self.client_id, self.secret, self.http_timeout)

    def body(self, message: PushMessage, tokens: list[str]) -> dict[str, Any]:
        importance = categories.category(CHANNEL, message.data.get("type", "")) or "LOW"
        notification_id = message.data.get("notification_id") or ""
        android: dict[str, Any] = {
            "ttl": huawei.TTL,
            "targetUserType": 0,
            "notification": {
                "title": message.title, "body": message.body,
                # NORMAL (service) is also Honor's highest: urgent messages have nothing higher to ask for.
                "importance": importance,
                "clickAction": {"type": 1, "intent": huawei.deep_link(message)},
            },
        }  # fmt: skip
        if notification_id.isdigit():
            android["biTag"] = receipts.signed_reference(CHANNEL, int(notification_id))
            android["notification"]["notifyId"] = int(notification_id) % 2_147_483_647  # one shade entry each
        return {
            "data": json.dumps(message.data, ensure_ascii=False),
            "notification": {"title": message.title, "body": message.body},
            "android": android,
            "token": tokens,
        }

    def post(self, token: str, body: dict[str, Any], tokens: list[str]) -> list[SendResult]:
        response = self.session.post(
            self.send_url, json=body, timeout=self.http_timeout,
            headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=UTF-8",
                "timestamp": str(int(time.time() * 1000)),
            },
        )  # fmt: skip
        if response.status_code == 401:
            raise TokenExpired()
        if response.status_code in (429, 503) or response.status_code >= 500:
            wait = huawei.retry_after(response)
            return [SendResult(Outcome.RETRY, retry_after=wait, error=f"HTTP {response.status_code}")] * len(tokens)
        answer = response.json()
        try:
            code = int(str(answer.get("code")))
        except ValueError:
            code = -1
        if code == OK_CODE:
            data = answer.get("data") or {}
            expired = set(data.get("expireTokens") or [])
            failed = set(data.get("failTokens") or [])
            return [
                SendResult(Outcome.INVALID_TOKEN, error="expireTokens") if t in expired
                else SendResult(Outcome.RETRY, error="failTokens") if t in failed
                else SendResult(Outcome.OK)
                for t in tokens
            ]  # fmt: skip
        if 80200000 <= code < 80300000:  # Huawei's auth range (unconfirmed for Honor)
            raise TokenExpired()
        return huawei.classify(str(code), str(answer.get("message", "")), tokens)

    def probe(self) -> bool:
        """Honor has no dry run: the token endpoint answering (a token, or a refusal) means it is up."""
        try:
            self.tokens.get()
        except requests.HTTPError as error:
            return error.response is not None and error.response.status_code < 500
        except (requests.RequestException, ValueError, KeyError):
            return False
        return True


class HonorReceipts:
    """Refused (401) unless ``HONOR_RECEIPTS``; then Huawei-style items whose ``biTag`` must verify."""

    def verify(self, request: Request) -> None:
        if not current_app.config.get("HONOR_RECEIPTS"):
            raise Unauthorized()
        try:
            statuses = self._statuses(request)
        except ValidationFailed:
            raise Forbidden() from None
        # No vendor signature: every item must carry our signed reference, or nothing is taken.
        if not statuses or any(
            not isinstance(item, dict) or receipts.verified_reference(CHANNEL, item.get("biTag")) is None
            for item in statuses
        ):
            raise Forbidden()

    def parse(self, request: Request) -> list[Receipt]:
        return huawei.parse_statuses(CHANNEL, self._statuses(request))

    @staticmethod
    def _statuses(request: Request) -> list[Any]:
        body = request.get_json(silent=True)
        statuses = body.get("statuses") if isinstance(body, dict) else None
        if not isinstance(statuses, list):
            raise ValidationFailed()
        return statuses


RECEIPTS: ReceiptHandler | None = HonorReceipts()


def build(config: Mapping[str, Any], http_timeout: float) -> PushProvider | None:
    if not config.get("HONOR_CLIENT_ID") or not config.get("HONOR_CLIENT_SECRET") or not config.get("HONOR_APP_ID"):
        return None
    return HonorProvider(config, http_timeout)
