"""Huawei Push Kit (channel ``hms``): server API v1, docs/push-vendors.md "Huawei Push Kit".

- Auth: OAuth 2.0 client credentials (``HMS_AUTH_URL``, form body), a Bearer token of about an hour,
  cached by the base class and refreshed ahead of expiry.
- Send: ``POST {HMS_ENDPOINT}/v1/{app id}/messages:send``, one content to up to 1,000 tokens. Our
  messages carry their own ``notification_id``, so a call takes the messages of one notification
  (the devices of its user); a batch of several notifications is several calls on one connection.
- Receipts: JSON ``{"statuses": [...]}`` signed with ``X-HUAWEI-CALLBACK-ID`` (HMAC-SHA256 of
  timestamp + nonce + user name with the callback secret); ``biTag`` carries our signed reference.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Request, current_app

from core.errors import Forbidden, Unauthorized, ValidationFailed
from notifications.delivery import categories, receipts
from notifications.delivery.push import Outcome, PushMessage, PushProvider, SendResult
from notifications.delivery.receipts import Receipt, ReceiptHandler
from notifications.delivery.vendors.base import AccessToken, TokenExpired, VendorProvider
from notifications.devices.models import PushChannel

CHANNEL = PushChannel.HMS

OK_CODE = "80000000"
PARTIAL_CODE = "80100000"
TOKEN_CODES = {"80200001", "80200003"}  # OAuth error / token expired: a new token, one resend
ALL_INVALID_CODE = "80300007"
RETRY_CODES = {"80100017", "80300002", "80600003", "81000001"}  # concurrency, config, OAuth service, internal
MAX_TOKENS = 1000
TTL = "86400s"
#: Receipt statuses that mean the message reached the phone; the rest are failures (docs table).
DELIVERED_STATUSES = {0}
PENDING_STATUSES = {27, 51}  # cached on the phone, not final: recorded as nothing yet
#: The token is dead: 2 app uninstalled, 5 token no longer valid (data cleared, reinstalled,
#: deleteToken). Huawei also advises to stop on 6 (notifications off), 10 (offline 30 days) and
#: 201 (held: uninstalled *or* notifications off), but those a phone recovers from without a new
#: token, so they are recorded as failed and the device is kept.
DEAD_STATUSES = {2, 5}


def retry_after(response: requests.Response) -> float | None:
    value = (response.headers.get("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


def oauth_token(session: requests.Session, url: str, client_id: str, secret: str, timeout: float) -> AccessToken:
    """OAuth 2.0 client credentials (Huawei's and Honor's token endpoints speak the same form)."""
    response = session.post(
        url, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}, timeout=timeout
    )
    response.raise_for_status()  # refused credentials: the batch is retried later (and logged)
    body = response.json()
    return AccessToken(str(body["access_token"]), time.monotonic() + float(body.get("expires_in", 3600)))


def content_groups(batch: Sequence[PushMessage]) -> list[list[int]]:
    """Positions of the batch grouped by identical content (one notification to a user's devices)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for position, message in enumerate(batch):
        key = (message.title, message.body, tuple(sorted(message.data.items())), message.urgent)
        groups.setdefault(key, []).append(position)
    return list(groups.values())


def deep_link(message: PushMessage) -> str:
    """An Android intent URI opening the app's notification page (the data also rides in ``data``)."""
    return f"intent://notifications/{message.data.get('notification_id', '')}#Intent;scheme=shouwang;launchFlags=0x4000000;end"


class OneContentPerCall(VendorProvider):
    """Vendors whose call sends one content to many tokens (Huawei, Honor): a batch becomes one
    call per notification, made side by side on the pooled connections (a broadcast is thousands
    of notifications, one device each). Subclasses write :meth:`body` and :meth:`post`."""

    #: Calls in flight at once per batch (and the connection pool's size).
    parallel = 10

    def __init__(self, base_url: str, http_timeout: float) -> None:
        super().__init__(base_url, http_timeout, pool_size=self.parallel)
        self._calls = ThreadPoolExecutor(self.parallel, thread_name_prefix=f"push-{self.channel}")

    def body(self, message: PushMessage, tokens: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def post(self, token: str, body: dict[str, Any], tokens: list[str]) -> list[SendResult]:
        """One call; raise :class:`TokenExpired` when the vendor refuses the access token."""
        raise NotImplementedError

    def send_batch(self, token: str, batch: Sequence[PushMessage]) -> list[SendResult]:
        groups = content_groups(batch)
        # Bodies are built here, in the app context (categories, receipt references); only the calls go to threads.
        calls = [
            self._calls.submit(self.post, token, self.body(batch[g[0]], [batch[i].token for i in g]), [batch[i].token for i in g])
            for g in groups
        ]  # fmt: skip
        results: list[SendResult | None] = [None] * len(batch)
        expired = False
        for group, call in zip(groups, calls, strict=True):
            try:
                answered = call.result()
            except TokenExpired:
                expired = True
                continue
            except requests.RequestException as error:
                answered = [SendResult(Outcome.RETRY, error=f"{type(error).__name__}: {error}"[:200])] * len(group)
            for position, result in zip(group, answered, strict=True):
                results[position] = result
        if expired:
            # Only what the vendor took is spared the resend (a refused one is simply asked again).
            raise TokenExpired([i for i, r in enumerate(results) if r is not None and r.outcome is Outcome.OK])
        return [r if r is not None else SendResult(Outcome.RETRY, error="not answered") for r in results]

    def close(self) -> None:
        self._calls.shutdown(wait=False, cancel_futures=True)
        super().close()


class HuaweiProvider(OneContentPerCall):
    channel: str = CHANNEL
    max_batch = MAX_TOKENS

    def __init__(self, config: Mapping[str, Any], http_timeout: float) -> None:
        self.client_id = str(config["HMS_CLIENT_ID"])
        self.secret = str(config["HMS_CLIENT_SECRET"])
        self.app_id = str(config.get("HMS_APP_ID") or self.client_id)
        self.auth_url = str(config["HMS_AUTH_URL"])
        super().__init__(str(config["HMS_ENDPOINT"]), http_timeout)
        self.send_url = f"{self.base_url}/v1/{self.app_id}/messages:send"

    def fetch_token(self) -> AccessToken:
        return oauth_token(self.session, self.auth_url, self.client_id, self.secret, self.http_timeout)

    def body(self, message: PushMessage, tokens: list[str], validate_only: bool = False) -> dict[str, Any]:
        kind = message.data.get("type", "")
        category = categories.category(CHANNEL, kind) or "MARKETING"
        notification_id = message.data.get("notification_id")
        android: dict[str, Any] = {
            "category": category,
            "urgency": "HIGH" if message.urgent else "NORMAL",
            "ttl": TTL,
            "notification": {
                "title": message.title, "body": message.body,
                "importance": "LOW" if category == "MARKETING" else "NORMAL",
                "click_action": {"type": 1, "intent": deep_link(message)},
            },
        }  # fmt: skip
        if notification_id and notification_id.isdigit():
            android["bi_tag"] = receipts.signed_reference(CHANNEL, int(notification_id))
        return {
            "validate_only": validate_only,
            "message": {"data": json.dumps(message.data, ensure_ascii=False), "android": android, "token": tokens},
        }

    def post(self, token: str, body: dict[str, Any], tokens: list[str]) -> list[SendResult]:
        response = self.session.post(
            self.send_url, json=body, timeout=self.http_timeout,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json;charset=UTF-8"},
        )  # fmt: skip
        if response.status_code == 401:
            raise TokenExpired()
        if response.status_code in (429, 503) or response.status_code >= 500:  # 503: Huawei's flow control
            wait = retry_after(response)
            return [SendResult(Outcome.RETRY, retry_after=wait, error=f"HTTP {response.status_code}")] * len(tokens)
        answer = response.json()
        code = str(answer.get("code", ""))
        if code in TOKEN_CODES:
            raise TokenExpired()
        return classify(code, str(answer.get("msg", "")), tokens)

    def probe(self) -> bool:
        """A ``validate_only`` send (Huawei checks it, delivers nothing); any answer but an outage counts."""
        message = PushMessage(token="shouwang-outage-probe", title="probe", body="probe", data={"type": "probe"})
        try:
            response = self.session.post(
                self.send_url, json=self.body(message, [message.token], validate_only=True), timeout=self.http_timeout,
                headers={"Authorization": f"Bearer {self.tokens.get()}"},
            )  # fmt: skip
        except (requests.RequestException, ValueError):
            return False
        return response.status_code < 500


def classify(code: str, msg: str, tokens: list[str]) -> list[SendResult]:
    """Huawei's answer code (HTTP 200 carries business errors too) → one result per token."""
    if code == OK_CODE:
        return [SendResult(Outcome.OK)] * len(tokens)
    if code == PARTIAL_CODE:
        illegal = illegal_tokens(msg)
        return [SendResult(Outcome.INVALID_TOKEN, error=code) if t in illegal else SendResult(Outcome.OK) for t in tokens]
    if code == ALL_INVALID_CODE:
        return [SendResult(Outcome.INVALID_TOKEN, error=code)] * len(tokens)
    if code in RETRY_CODES:
        return [SendResult(Outcome.RETRY, error=f"{code} {msg}"[:200])] * len(tokens)
    # 80100001/3/4/13/16, 80300008, 80300010 and anything unknown: the message itself is refused.
    return [SendResult(Outcome.PERMANENT, error=f"{code} {msg}"[:200])] * len(tokens)


def illegal_tokens(msg: str) -> set[str]:
    """The failed tokens of a partial success: v1's ``illegal_tokens`` list, or v3's
    ``illegalTokens`` object keyed by reason (which v1 sends is unconfirmed: both are read)."""
    try:
        parsed = json.loads(msg)
    except ValueError:
        return set()
    if not isinstance(parsed, dict):
        return set()
    found: set[str] = set(parsed.get("illegal_tokens") or [])
    by_reason = parsed.get("illegalTokens") or {}
    if isinstance(by_reason, dict):
        for listed in by_reason.values():
            found.update(listed or [])
    elif isinstance(by_reason, list):
        found.update(by_reason)
    return found


# --- receipts ---------------------------------------------------------------------------------


def callback_signature(secret: str, timestamp: str, nonce: str, username: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}{nonce}{username}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class HuaweiReceipts:
    """Huawei's receipt callback: ``X-HUAWEI-CALLBACK-ID: timestamp=…;nonce=…;value=…``."""

    def verify(self, request: Request) -> None:
        config = current_app.config
        username, secret = config.get("HMS_RECEIPT_USERNAME"), config.get("HMS_RECEIPT_SECRET")
        header = request.headers.get("X-HUAWEI-CALLBACK-ID", "")
        fields = dict(part.strip().split("=", 1) for part in header.split(";") if "=" in part)
        if not username or not secret or not {"timestamp", "nonce", "value"} <= fields.keys():
            raise Unauthorized()
        expected = callback_signature(secret, fields["timestamp"], fields["nonce"], username)
        if not hmac.compare_digest(expected.encode(), fields["value"].encode()):
            raise Forbidden()
        # Huawei documents no replay window; a signature far from now is refused (our choice).
        if not fields["timestamp"].isdigit() or abs(time.time() - int(fields["timestamp"]) / 1000) > int(
            config["HMS_RECEIPT_MAX_AGE_SECONDS"]
        ):
            raise Forbidden()

    def parse(self, request: Request) -> list[Receipt]:
        body = request.get_json(silent=True)
        statuses = body.get("statuses") if isinstance(body, dict) else None
        if not isinstance(statuses, list):
            raise ValidationFailed()
        return parse_statuses(CHANNEL, statuses)


def parse_statuses(channel: str, statuses: list[Any]) -> list[Receipt]:
    """Huawei-style receipt items; an item whose ``biTag`` is not our signed reference names no
    notification of ours and is left out. Honor's items are read the same way, its statuses
    (dead tokens included) taken as Huawei's: UNCONFIRMED, hence ``HONOR_RECEIPTS``."""
    found: list[Receipt] = []
    for item in statuses:
        if not isinstance(item, dict) or not isinstance(item.get("status"), int):
            raise ValidationFailed()
        notification_id = receipts.verified_reference(channel, item.get("biTag"))
        if notification_id is None or item["status"] in PENDING_STATUSES:
            continue
        stamp = item.get("timestamp")
        at = datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int) else None
        token = item.get("token") if isinstance(item.get("token"), str) else None
        code = item["status"]
        found.append(Receipt(notification_id, token, code in DELIVERED_STATUSES, str(code), at, code in DEAD_STATUSES))
    return found


RECEIPTS: ReceiptHandler | None = HuaweiReceipts()


def build(config: Mapping[str, Any], http_timeout: float) -> PushProvider | None:
    if not config.get("HMS_CLIENT_ID") or not config.get("HMS_CLIENT_SECRET"):
        return None
    return HuaweiProvider(config, http_timeout)
