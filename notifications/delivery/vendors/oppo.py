"""OPPO Push (channel ``oppo``): signed auth, ``unicast_batch`` of distinct messages, receipts.

Protocol (docs/push-vendors.md, "OPPO Push"):

- Auth: ``POST /server/v1/auth`` (form: ``app_key``, ``timestamp`` in ms,
  ``sign = sha256_hex(app_key + timestamp + master_secret)``) → ``data.auth_token``, valid 24 h;
  it goes in the form body of every call as ``auth_token``.
- Send: ``POST /server/v1/message/notification/unicast_batch`` (form: ``auth_token``, ``messages``
  = a JSON array of up to 1,000 ``{target_type: 2, target_value: <regid>, notification: {…}}``),
  answered per target (``registrationId``, ``errorCode`` when refused). Each of our messages carries
  its own ``notification_id``, so the same-content broadcast does not suit us.
- ``app_message_id`` = our notification id: OPPO pushes one id to one target once, so a resend after
  a worker died mid-batch does not reach the phone twice.
- Codes: 0 ok; 11 token invalid/expired; 33 daily cap; 13/55/−2 rate limited; −1 unavailable;
  10000 invalid registration id; the rest refuse the message or our configuration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from flask import Request

from core import i18n
from core.errors import ValidationFailed
from notifications.delivery import categories, receipts
from notifications.delivery.push import Outcome, PushMessage, PushProvider, SendResult
from notifications.delivery.receipts import Receipt
from notifications.delivery.vendors.base import AccessToken, TokenExpired, VendorProvider
from notifications.delivery.vendors.ov_shared import fit, from_millis, seconds_to_reset, targets_of, verified_ids
from notifications.devices.models import PushChannel

log = logging.getLogger(__name__)

CHANNEL = PushChannel.OPPO
AUTH_PATH = "/server/v1/auth"
SEND_PATH = "/server/v1/message/notification/unicast_batch"
#: unicast_batch takes at most 1,000 messages (each its own target and content).
MAX_BATCH = 1000
#: A rate limit gives no wait; this long is OPPO's own advice for code 13 ("try later").
RATE_LIMIT_WAIT_SECONDS = 60.0

OK = 0
UNAVAILABLE, FLOW_CONTROL = -1, -2
TOKEN_INVALID = 11
CALLS_LIMITED, FREQUENCY_LIMITED = 13, 55
DAILY_LIMIT = 33
INVALID_REGID = 10000
_RATE_LIMITED = {FLOW_CONTROL, CALLS_LIMITED, FREQUENCY_LIMITED}
#: Unavailable, or our credentials / permissions (14–19 key, sign, timestamp; 26–30 access) being fixed.
_KEEP_FOR_LATER = {UNAVAILABLE, TOKEN_INVALID, 14, 15, 16, 17, 18, 19, 26, 27, 28, 30}


i18n.register_messages(i18n.N_("This is not an OPPO receipt."))


class AuthRefused(ValueError):
    """OPPO refused our credentials (wrong key, secret or clock): a configuration fault. The
    messages are retried later (``ValueError`` is a RETRY in the base) and the log says why."""


def sign(app_key: str, timestamp: str, master_secret: str) -> str:
    return hashlib.sha256(f"{app_key}{timestamp}{master_secret}".encode()).hexdigest()


class OppoProvider(VendorProvider):
    channel: str = CHANNEL
    max_batch = MAX_BATCH

    def __init__(self, config: Mapping[str, Any], http_timeout: float) -> None:
        self.app_key = str(config["OPPO_APP_KEY"]).strip()
        self.master_secret = str(config["OPPO_MASTER_SECRET"]).strip()
        base = config.get("OPPO_ENDPOINT") or "https://api.push.oppomobile.com"
        self.auth_url = config.get("OPPO_AUTH_URL") or f"{base.rstrip('/')}{AUTH_PATH}"
        self.token_lifetime = float(config["OPPO_TOKEN_LIFETIME_SECONDS"])
        self.channel_id = config.get("OPPO_CHANNEL_ID")
        self.notify_level = int(config["OPPO_NOTIFY_LEVEL"])
        self.urgent_notify_level = int(config["OPPO_URGENT_NOTIFY_LEVEL"])
        self.ttl = max(3600, min(int(config["OPPO_TTL_SECONDS"]), 10 * 86400))
        self.deep_link = config.get("OPPO_DEEP_LINK")
        self.receipt_url = config.get("OPPO_RECEIPT_URL")
        super().__init__(base, http_timeout, pool_size=10)
        if not self.auth_url.startswith(self.base_url):
            self.session.mount(self.auth_url, self.session.get_adapter(self.base_url))

    def fetch_token(self) -> AccessToken:
        timestamp = str(int(time.time() * 1000))
        started = time.monotonic()
        answer = self.session.post(
            self.auth_url,
            data={"app_key": self.app_key, "timestamp": timestamp, "sign": sign(self.app_key, timestamp, self.master_secret)},
            timeout=self.http_timeout,
        )
        answer.raise_for_status()
        body = answer.json()
        if body.get("code") != OK or not (body.get("data") or {}).get("auth_token"):
            log.error("oppo push: auth refused: %s %s", body.get("code"), body.get("message"))
            raise AuthRefused(f"oppo auth refused: {body.get('code')} {body.get('message')}")
        return AccessToken(str(body["data"]["auth_token"]), started + self.token_lifetime)

    def message(self, message: PushMessage) -> dict[str, Any]:
        """The unicast message for one push (docs/push-vendors.md, the ``notification`` fields)."""
        kind = message.data.get("type", "")
        notification: dict[str, Any] = {
            "title": fit(message.title, 50),
            "content": fit(message.body, 128),
            "style": 1 if len(message.body) <= 50 else 2,  # long text shows up to 128
            "click_action_type": 5 if self.deep_link else 0,
            "action_parameters": json.dumps(message.data, ensure_ascii=False),
            "app_message_id": message.data.get("notification_id", ""),
            "off_line": True,
            "off_line_ttl": self.ttl,
            "category": categories.category(CHANNEL, kind),
            "notify_level": self.urgent_notify_level if message.urgent else self.notify_level,
        }
        if self.deep_link:
            notification["click_action_url"] = self.deep_link
        if self.channel_id:
            notification["channel_id"] = self.channel_id
        if self.receipt_url and message.data.get("notification_id", "").isdigit():
            notification["call_back_url"] = self.receipt_url
            notification["call_back_parameter"] = receipts.signed_reference(CHANNEL, int(message.data["notification_id"]))
        return {"target_type": 2, "target_value": message.token, "notification": notification}

    def send_batch(self, token: str, batch: Sequence[PushMessage]) -> list[SendResult]:
        answer = self.session.post(
            f"{self.base_url}{SEND_PATH}",
            data={"auth_token": token, "messages": json.dumps([self.message(m) for m in batch], ensure_ascii=False)},
            timeout=self.http_timeout,
        )
        if answer.status_code >= 500:
            return [SendResult(Outcome.RETRY, error=f"oppo: HTTP {answer.status_code}")] * len(batch)
        body = answer.json()
        code = body.get("code")
        if code == TOKEN_INVALID:
            raise TokenExpired()
        if code != OK:
            return [_refused(code, body.get("message"), _wait(answer))] * len(batch)
        # Items name their target, in no promised order: match them up, the same token in turn.
        items: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in body.get("data") or []:
            items[str(item.get("registrationId"))].append(item)
        results = []
        for message in batch:
            answered = items.get(message.token)
            if not answered:
                results.append(SendResult(Outcome.RETRY, error="oppo: no answer for this target"))
                continue
            item = answered.pop(0)
            error = item.get("errorCode")
            results.append(SendResult(Outcome.OK) if error in (None, OK) else _refused(error, item.get("errorMessage"), None))
        return results

    def probe(self) -> bool:
        """A fresh auth call: any answer from OPPO (even a refusal) means it is up; it delivers nothing."""
        try:
            answer = self.session.post(self.auth_url, data={"app_key": self.app_key}, timeout=self.http_timeout)
        except requests.RequestException:
            return False
        return answer.status_code < 500


def _wait(answer: requests.Response) -> float | None:
    value = answer.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _refused(code: Any, text: Any, wait: float | None) -> SendResult:
    """What a refusing OPPO code means for the outbox (docs/push-vendors.md, the codes table)."""
    error = f"oppo {code}: {text}"[:200]
    if code == INVALID_REGID:
        return SendResult(Outcome.INVALID_TOKEN, error=error)
    if code == DAILY_LIMIT:
        return SendResult(Outcome.QUOTA, retry_after=seconds_to_reset(), error=error)
    if code in _RATE_LIMITED:
        return SendResult(Outcome.RETRY, retry_after=wait or RATE_LIMIT_WAIT_SECONDS, error=error)
    if code in _KEEP_FOR_LATER:
        # down, or our credentials/permissions being fixed: keep the messages for later
        return SendResult(Outcome.RETRY, retry_after=wait, error=error)
    return SendResult(Outcome.PERMANENT, error=error)


#: ``regid_invalid``: app uninstalled or deregistered, phone reflashed, or offline > 30 days: the
#: device is deactivated. ``user_daily_limit`` is the phone's daily cap, not a dead token.
DEAD_EVENTS = {"regid_invalid"}


class OppoReceipts:
    """OPPO posts a JSON array of events to ``call_back_url``; each echoes our ``call_back_parameter``."""

    def verify(self, request: Request) -> None:
        verified_ids(CHANNEL, [item.get("param") for item in _items(request)])

    def parse(self, request: Request) -> list[Receipt]:
        found: list[Receipt] = []
        for item in _items(request):
            ident = receipts.verified_reference(CHANNEL, item.get("param"))
            if ident is None:
                continue
            event = str(item.get("eventType", ""))
            at = from_millis(item.get("eventTime"))
            targets = targets_of(item.get("registrationIds"))
            for target in targets:
                found.append(
                    Receipt(ident, target, event == "push_arrive", event, at, token_dead=event in DEAD_EVENTS)
                )
        return found


def _items(request: Request) -> list[dict[str, Any]]:
    body = request.get_json(silent=True)
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise ValidationFailed("This is not an OPPO receipt.")
    return body


RECEIPTS = OppoReceipts()


def build(config: Mapping[str, Any], http_timeout: float) -> PushProvider | None:
    if not config.get("OPPO_APP_KEY") or not config.get("OPPO_MASTER_SECRET"):
        return None
    return OppoProvider(config, http_timeout)

