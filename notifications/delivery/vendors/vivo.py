"""vivo Push (channel ``vivo``): signed auth, one ``/message/send`` per message, receipts.

Protocol (docs/push-vendors.md, "vivo Push"):

- Auth: ``POST /message/auth`` (JSON: ``appId``, ``appKey``, ``timestamp`` in ms,
  ``sign = md5_hex(appId + appKey + timestamp + appSecret)``) → ``authToken``, valid 24 h, several
  live at once; it goes in the ``authToken`` header of every call, and every body names ``appId``.
- Send: ``POST /message/send``, one message per call. vivo's list push sends one identical payload
  to 2..1,000 targets, and each of our messages carries its own ``notification_id``, so it does not
  suit us. A provider batch is therefore a run of single sends on pooled connections: the first
  alone, then ``VIVO_CONCURRENCY`` at a time (vivo's app-wide rate is thousands a second; one call
  after another to a vendor 30 ms away would be about 30).
- Codes (``result``): 0 ok (``invalidUser`` names a dead target); 10302 invalid regId; 10070 daily
  total reached (vivo asks not to call again that day); 10072 too fast; 10000 token invalid
  (UNCONFIRMED); 10094 app mismatch and the validation codes refuse the message or our configuration.
- Class: ``classification`` 1 (系统消息) with a system ``category``; vivo has no priority field
  (``notifyType`` only matters on Android ≤ 8), so urgent messages differ only by their category.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
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

CHANNEL = PushChannel.VIVO
AUTH_PATH = "/message/auth"
SEND_PATH = "/message/send"
#: Single sends per provider batch (see the module docstring): as many as the outbox hands over.
MAX_BATCH = 500
#: vivo gives no wait with "too fast"; back off this long.
RATE_LIMIT_WAIT_SECONDS = 30.0
#: The categories of vivo's 系统消息 class (classification 1); the others are 运营消息 (0).
SYSTEM_CATEGORIES = frozenset({"IM", "ACCOUNT", "TODO", "DEVICE_REMINDER", "ORDER", "SUBSCRIPTION"})
#: clientCustomMap holds at most 10 pairs.
MAX_CUSTOM_PAIRS = 10

OK = 0
TOKEN_INVALID = 10000
DAILY_LIMIT, LIST_DAILY_LIMIT = 10070, 10252
TOO_FAST = 10072
INVALID_REGID = 10302
#: ``invalidUser.status``: 1 no such user, 2 uninstalled or notifications off, 3 offline 90 days.
DEAD_STATUSES = {1, 2, 3}

i18n.register_messages(i18n.N_("This is not a vivo receipt."))


class AuthRefused(ValueError):
    """vivo refused our credentials: a configuration fault; the messages are retried later."""


def sign(app_id: str, app_key: str, timestamp: str, app_secret: str) -> str:
    # MD5 is vivo's rule for this signature, not a choice of ours for security.
    return hashlib.md5(f"{app_id}{app_key}{timestamp}{app_secret}".encode()).hexdigest()


class _Sends:
    """One provider batch of single sends, shared by the threads making them: the answers so far,
    the next message to send, and what stops the rest (the rest then gets that answer, unsent)."""

    def __init__(self, size: int) -> None:
        self.results: list[SendResult | None] = [None] * size
        self.rest: SendResult | None = None
        self.token_refused = False
        self._next = 0
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self.rest is not None or self.token_refused

    def take(self) -> int | None:
        """The position of the next message to send; None when none is left or the batch stopped."""
        with self._lock:
            if self.stopped or self._next >= len(self.results):
                return None
            self._next += 1
            return self._next - 1

    def answer(self, position: int, result: SendResult, *, stop: bool = False) -> None:
        with self._lock:
            self.results[position] = result
            if stop and self.rest is None:
                self.rest = result

    def refuse_token(self) -> None:
        with self._lock:
            self.token_refused = True

    def answered(self) -> list[SendResult]:
        unsent = self.rest or SendResult(Outcome.RETRY, error="vivo: not sent")
        return [result if result is not None else unsent for result in self.results]


class VivoProvider(VendorProvider):
    channel: str = CHANNEL
    max_batch = MAX_BATCH

    def __init__(self, config: Mapping[str, Any], http_timeout: float) -> None:
        self.app_id = int(str(config["VIVO_APP_ID"]).strip())
        self.app_key = str(config["VIVO_APP_KEY"]).strip()
        self.app_secret = str(config["VIVO_APP_SECRET"]).strip()
        base = config.get("VIVO_ENDPOINT") or "https://api-push.vivo.com.cn"
        self.auth_url = config.get("VIVO_AUTH_URL") or f"{base.rstrip('/')}{AUTH_PATH}"
        self.token_lifetime = float(config["VIVO_TOKEN_LIFETIME_SECONDS"])
        self.ttl = max(60, min(int(config["VIVO_TTL_SECONDS"]), 86400))
        self.deep_link = config.get("VIVO_DEEP_LINK")
        self.receipt_id = config.get("VIVO_RECEIPT_ID")
        self.push_mode = int(config["VIVO_PUSH_MODE"])
        self.concurrency = max(1, int(config["VIVO_CONCURRENCY"]))
        super().__init__(base, http_timeout, pool_size=max(10, self.concurrency + 2))
        if not self.auth_url.startswith(self.base_url):
            self.session.mount(self.auth_url, self.session.get_adapter(self.base_url))

    def fetch_token(self) -> AccessToken:
        timestamp = str(int(time.time() * 1000))
        started = time.monotonic()
        answer = self.session.post(
            self.auth_url,
            json={
                "appId": self.app_id, "appKey": self.app_key, "timestamp": int(timestamp),
                "sign": sign(str(self.app_id), self.app_key, timestamp, self.app_secret),
            },
            timeout=self.http_timeout,
        )  # fmt: skip
        answer.raise_for_status()
        body = answer.json()
        if body.get("result") != OK or not body.get("authToken"):
            log.error("vivo push: auth refused: %s %s", body.get("result"), body.get("desc"))
            raise AuthRefused(f"vivo auth refused: {body.get('result')} {body.get('desc')}")
        return AccessToken(str(body["authToken"]), started + self.token_lifetime)

    def message(self, message: PushMessage) -> dict[str, Any]:
        """The ``/message/send`` body for one push (docs/push-vendors.md, vivo's fields)."""
        category = categories.category(CHANNEL, message.data.get("type", "")) or "MARKETING"
        notification_id = message.data.get("notification_id", "")
        custom = dict(sorted(message.data.items(), key=lambda pair: pair[0] not in ("type", "notification_id")))
        body: dict[str, Any] = {
            "appId": self.app_id,
            "regId": message.token,
            "notifyType": 4,  # sound and vibration (Android ≤ 8; later the phone's channel decides)
            "title": fit(message.title, 40, wide_counts_two=True),
            "content": fit(message.body, 100, wide_counts_two=True),
            "timeToLive": self.ttl,
            "skipType": 4 if self.deep_link else 1,
            "networkType": -1,
            "classification": 1 if category in SYSTEM_CATEGORIES else 0,
            "category": category,
            "clientCustomMap": dict(list(custom.items())[:MAX_CUSTOM_PAIRS]),
            # the same for a resend of this notification to this phone (vivo may drop the repeat)
            "requestId": f"{notification_id}-{hashlib.sha256(message.token.encode()).hexdigest()[:32]}",
            "pushMode": self.push_mode,
        }
        if self.deep_link:
            body["skipContent"] = self.deep_link
        if self.receipt_id and notification_id.isdigit():
            body["extra"] = {
                "callback.id": self.receipt_id,
                "callback.param": receipts.signed_reference(CHANNEL, int(notification_id)),
            }
        return body

    def send_batch(self, token: str, batch: Sequence[PushMessage]) -> list[SendResult]:
        # Bodies are built here (the category table reads the app's config); only calls go to the pool.
        bodies = [self.message(message) for message in batch]
        sends = _Sends(len(batch))
        # The first call goes alone: when vivo will take nothing (the day's total reached, "too
        # fast", the token refused, vivo down), that costs one call rather than a wave of them.
        self._drain(token, bodies, sends, first_only=True)
        if len(batch) > 1 and not sends.stopped:
            helpers = min(self.concurrency, len(batch) - 1)
            if helpers > 1:
                for running in [
                    self.calls_pool(self.concurrency).submit(self._drain, token, bodies, sends) for _ in range(helpers)
                ]:
                    running.result()
            else:
                self._drain(token, bodies, sends)
        if sends.token_refused:
            accepted = [
                i for i, result in enumerate(sends.results) if result is not None and result.outcome is Outcome.OK
            ]
            raise TokenExpired(accepted=accepted)
        return sends.answered()

    def _drain(self, token: str, bodies: Sequence[dict[str, Any]], sends: _Sends, *, first_only: bool = False) -> None:
        """Send the batch's next bodies, one call at a time, until none is left or one stops the batch."""
        while (position := sends.take()) is not None:
            try:
                answer = self.session.post(
                    f"{self.base_url}{SEND_PATH}", json=bodies[position],
                    headers={"authToken": token}, timeout=self.http_timeout,
                )  # fmt: skip
                if answer.status_code >= 500:
                    raise requests.HTTPError(f"HTTP {answer.status_code}", response=answer)
                body = answer.json()
                if not isinstance(body, dict):
                    raise ValueError("vivo answered something other than a JSON object")
            except (requests.RequestException, ValueError) as error:
                # down or unreadable: the rest of the batch waits too, rather than a timeout each
                sends.answer(
                    position, SendResult(Outcome.RETRY, error=f"vivo: {type(error).__name__}: {error}"[:200]), stop=True
                )
            else:
                code = body.get("result")
                if code == TOKEN_INVALID:
                    sends.refuse_token()
                else:
                    result = _result(code, body)
                    # vivo asks for no more calls today (or for now): the rest waits without asking
                    stop = result.outcome is Outcome.QUOTA or (
                        result.outcome is Outcome.RETRY and bool(result.retry_after)
                    )
                    sends.answer(position, result, stop=stop)
            if first_only:
                return

    def probe(self) -> bool:
        """An auth call with no credentials: any answer from vivo means it is up; it delivers nothing."""
        try:
            answer = self.session.post(self.auth_url, json={}, timeout=self.http_timeout)
        except requests.RequestException:
            return False
        return answer.status_code < 500


def _result(code: Any, body: Mapping[str, Any]) -> SendResult:
    """What one ``/message/send`` answer means for the outbox (docs/push-vendors.md, the codes table)."""
    error = f"vivo {code}: {body.get('desc')}"[:200]
    if code == OK:
        invalid = body.get("invalidUser") or {}
        if isinstance(invalid, dict) and invalid.get("status") in DEAD_STATUSES:
            return SendResult(Outcome.INVALID_TOKEN, error=f"vivo invalidUser {invalid.get('status')}")
        if isinstance(invalid, dict) and invalid.get("status") == 4:
            return SendResult(Outcome.PERMANENT, error="vivo: not a test device (VIVO_PUSH_MODE=1)")
        return SendResult(Outcome.OK)
    if code == INVALID_REGID:
        return SendResult(Outcome.INVALID_TOKEN, error=error)
    if code in (DAILY_LIMIT, LIST_DAILY_LIMIT):
        return SendResult(Outcome.QUOTA, retry_after=seconds_to_reset(), error=error)
    if code == TOO_FAST:
        return SendResult(Outcome.RETRY, retry_after=RATE_LIMIT_WAIT_SECONDS, error=error)
    if isinstance(code, int) and 10200 <= code < 10300:
        return SendResult(Outcome.RETRY, error=error)  # auth parameters: our configuration, being fixed
    return SendResult(Outcome.PERMANENT, error=error)


class VivoReceipts:
    """vivo posts a JSON object keyed by task id; each entry echoes our ``callback.param``."""

    def verify(self, request: Request) -> None:
        verified_ids(CHANNEL, [entry.get("param") for entry in _entries(request).values()])

    def parse(self, request: Request) -> list[Receipt]:
        found: list[Receipt] = []
        for entry in _entries(request).values():
            ident = receipts.verified_reference(CHANNEL, entry.get("param"))
            if ident is None:
                continue
            # ackType's values are unconfirmed: every receipt counts as arrived, its type kept as sent,
            # and none deactivates a device (no ackType is known to mean a dead token)
            status = f"ack:{entry.get('ackType')}"
            at = from_millis(entry.get("ackTime"))
            targets = targets_of(entry.get("targets"))
            found.extend(Receipt(ident, target, delivered=True, status=status, at=at) for target in targets)
        return found


def _entries(request: Request) -> dict[str, dict[str, Any]]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(isinstance(entry, dict) for entry in body.values()):
        raise ValidationFailed("This is not a vivo receipt.")
    return body


RECEIPTS = VivoReceipts()


def build(config: Mapping[str, Any], http_timeout: float) -> PushProvider | None:
    if not (config.get("VIVO_APP_ID") and config.get("VIVO_APP_KEY") and config.get("VIVO_APP_SECRET")):
        return None
    return VivoProvider(config, http_timeout)
