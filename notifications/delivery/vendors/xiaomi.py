"""Xiaomi MiPush (channel ``mi``): the provider and its receipts (docs/push-vendors.md, "Xiaomi MiPush").

- Auth: none to fetch. Every call carries the console's AppSecret as ``Authorization: key=<secret>``,
  so the token cache holds that fixed value forever, and a refused key (21301, 22000–22022) is a
  configuration error: the pushes are retried later, no device is ever deactivated for it.
- Send: ``POST /v3/message/regid``, a form (not JSON) sending one message to up to 1,000 regids.
  Our messages each carry their own ``notification_id``, so one call carries one notification to
  all of its recipient's Xiaomi devices: a batch is grouped by content, one call per group.
  ``data.bad_regids`` lists the regids of a call that are dead; the rest were accepted.
- Message: title (< 50 chars) and ``description`` (< 128), our data as the URL-encoded JSON
  ``payload``, ``time_to_live`` in ms, the private-class channel from the category table as
  ``extra.channel_id`` (``<channel>:<template>`` adds the template MiPush requires of private
  messages since 2026-06, filled with the title and body), urgent ones with every alert
  (``notify_type=-1``) and shown in the foreground, and the signed reference as
  ``extra.callback.param`` when receipts are configured.
- Receipts: MiPush signs nothing. A receipt is a form whose ``data`` holds JSON keyed by message id,
  each item echoing our ``callback.param``; every item's reference must verify (403 otherwise),
  and ``?key=`` must match ``XIAOMI_RECEIPT_KEY`` when it is set (401 missing, 403 wrong).
"""

from __future__ import annotations

import hmac
import json
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests
from flask import Request, current_app

from core import i18n
from core.errors import Forbidden, Unauthorized, ValidationFailed
from notifications.delivery.categories import DEFAULTS, SERVICE_KINDS, category
from notifications.delivery.push import Outcome, PushMessage, PushProvider, SendResult
from notifications.delivery.receipts import Receipt, signed_reference, verified_reference
from notifications.delivery.vendors.base import NEVER, AccessToken, VendorProvider
from notifications.devices.models import PushChannel

log = logging.getLogger(__name__)

CHANNEL = PushChannel.MI
SEND_PATH = "/v3/message/regid"
PROBE_PATH = "/v1/validation/regids"
#: Regids per /v3/message/regid call (the limit clients quote; UNCONFIRMED in Xiaomi's own text).
MAX_REGIDS = 1000
TITLE_LIMIT = 49  # "under 50 characters"
BODY_LIMIT = 127  # "under 128 characters"
#: MiPush's day (UNCONFIRMED: Beijing time is the likely reading); the outbox holds quota rows till then.
RESET_ZONE = ZoneInfo("Asia/Shanghai")

# The private-class (私信) channels a deployment creates (docs/deploy.md); every current kind is a
# service message. Urgent kinds get a channel of their own, so phones can ring louder for them.
SERVICE_CHANNEL = "shouwang_work"
URGENT_CHANNEL = "shouwang_urgent"
_URGENT_KINDS = {"sos_alert", "sos_escalated", "absence_alert", "report_alert"}
DEFAULTS[CHANNEL] = {
    **{kind: URGENT_CHANNEL if kind in _URGENT_KINDS else SERVICE_CHANNEL for kind in SERVICE_KINDS},
    # A kind nobody mapped yet goes out as a public (公信) message, never borrowing the service class.
    "default": "shouwang_public",
}

# MiPush codes (docs/push-vendors.md §4): what each means for the outbox.
_AUTH = {21301, *range(22000, 22009), 22020, 22021, 22022, 10004, 10005, 10013, 10014, 10026}
_RATE = {10022, 10023, 10024, 10027, 10028, 200002}
_BUSY = {-1, 10001, 10002, 10003, 10009, 10010, 10011, 22101, 22102}
_QUOTA = 200001
_ALL_INVALID = 20301
_INVALID_DEVICE = 10029


class XiaomiProvider(VendorProvider):
    channel: str = CHANNEL
    max_batch = MAX_REGIDS

    def __init__(self, config: Mapping[str, Any], http_timeout: float) -> None:
        self.secret: str = config["XIAOMI_APP_SECRET"]
        self.package: str = config["XIAOMI_PACKAGE"]
        self.ttl_ms = int(config["XIAOMI_TTL_SECONDS"]) * 1000
        self.intent_uri: str | None = config.get("XIAOMI_INTENT_URI")
        self.callback_url: str | None = config.get("XIAOMI_CALLBACK_URL")
        self.callback_type = int(config["XIAOMI_CALLBACK_TYPE"])
        self.concurrency = max(1, int(config["XIAOMI_CONCURRENCY"]))
        super().__init__(config["XIAOMI_ENDPOINT"], http_timeout, pool_size=self.concurrency + 2)

    def fetch_token(self) -> AccessToken:
        return AccessToken(f"key={self.secret}", NEVER)  # a fixed secret: never fetched, never expires

    def send_batch(self, token: str, batch: Sequence[PushMessage]) -> list[SendResult]:
        groups: dict[str, list[int]] = {}
        for position, message in enumerate(batch):
            groups.setdefault(_content_key(message), []).append(position)
        # Forms are built here (the category table reads the app's config); only the calls go to
        # the pool: one call per notification, XIAOMI_CONCURRENCY of them at a time.
        calls = [(positions, self.form([batch[i] for i in positions])) for positions in groups.values()]
        if len(calls) > 1 and self.concurrency > 1:
            answers = list(self.calls_pool(self.concurrency).map(lambda call: self._post(token, call[1]), calls))
        else:
            answers = [self._post(token, form) for _, form in calls]
        results: list[SendResult | None] = [None] * len(batch)
        for (positions, _), answer in zip(calls, answers, strict=True):
            group = [batch[i] for i in positions]
            for position, result in zip(positions, _results(answer, group), strict=True):
                results[position] = result
        return [result or SendResult(Outcome.RETRY, error="not answered") for result in results]

    def _post(self, token: str, form: dict[str, str]) -> _Answer:
        """One call; what went wrong in it stays its own (the other calls of the batch stand)."""
        try:
            response = self.session.post(
                f"{self.base_url}{SEND_PATH}", data=form, timeout=self.http_timeout, headers={"Authorization": token}
            )
            if response.status_code >= 500 or response.status_code == 429:
                return _Answer(None, response.headers, f"HTTP {response.status_code}")
            body = response.json()
            if not isinstance(body, dict):
                raise ValueError("MiPush answered something other than a JSON object")
            return _Answer(body, response.headers, None)
        except (requests.RequestException, ValueError) as error:
            # Down, timed out, or an answer we cannot read: the outbox tries again later.
            return _Answer(None, {}, f"{type(error).__name__}: {error}"[:200])

    def form(self, group: Sequence[PushMessage]) -> dict[str, str]:
        """The /v3/message/regid form for messages that differ only in their regid."""
        first = group[0]
        kind = first.data.get("type", "")
        form = {
            "registration_id": ",".join(message.token for message in group),
            "restricted_package_name": self.package,
            "pass_through": "0",
            "title": _clip(first.title, TITLE_LIMIT),
            "description": _clip(first.body, BODY_LIMIT),
            "payload": urllib.parse.quote(json.dumps(first.data, ensure_ascii=False, sort_keys=True)),
            "notify_type": "-1" if first.urgent else "3",  # urgent: sound, vibration and lights
            "notify_id": str(int(first.data.get("notification_id", "0") or 0) % 2147483647),
            "time_to_live": str(self.ttl_ms),
            "extra.notify_effect": "2" if self.intent_uri else "1",
            "extra.notify_foreground": "1",
        }
        if self.intent_uri:
            form["extra.intent_uri"] = self.intent_uri
        value = category(CHANNEL, kind)
        if value:
            channel_id, _, template = value.partition(":")
            form["extra.channel_id"] = channel_id
            if template:
                form["extra.template_id"] = template
                form["extra.template_param"] = json.dumps(
                    {"title": form["title"], "body": form["description"]}, ensure_ascii=False
                )
        if self.callback_url and first.data.get("notification_id", "").isdigit():
            form["extra.callback"] = self.callback_url
            form["extra.callback.param"] = signed_reference(CHANNEL, int(first.data["notification_id"]))
            form["extra.callback.type"] = str(self.callback_type)
        return form

    def probe(self) -> bool:
        """MiPush has no dry run: ask it to validate a regid nobody has; any answer means it is up."""
        try:
            self.session.post(
                f"{self.base_url}{PROBE_PATH}", data={"registration_ids": "shouwang-outage-probe"},
                headers={"Authorization": self.tokens.get()}, timeout=self.http_timeout,
            )  # fmt: skip
        except Exception:
            return False
        return True


@dataclass(frozen=True)
class _Answer:
    body: Mapping[str, Any] | None  # None: no answer to read (the error says why)
    headers: Mapping[str, str]
    error: str | None


def _results(answer: _Answer, group: Sequence[PushMessage]) -> list[SendResult]:
    if answer.body is None:
        return [SendResult(Outcome.RETRY, retry_after=_retry_after(answer.headers), error=answer.error)] * len(group)
    headers = answer.headers
    answer_body = answer.body
    code = _int(answer_body.get("code"), -1)
    reason = f"{code}: {answer_body.get('reason') or answer_body.get('description') or ''}"[:200]
    if code == 0 and answer_body.get("result", "ok") == "ok":
        data = answer_body.get("data") if isinstance(answer_body.get("data"), dict) else {}
        bad = {regid for regid in str((data or {}).get("bad_regids") or "").split(",") if regid}
        return [
            SendResult(Outcome.INVALID_TOKEN, error="bad regid") if m.token in bad else SendResult(Outcome.OK)
            for m in group
        ]
    if code in (_ALL_INVALID, _INVALID_DEVICE):
        # A group is one notification to one person's phones; MiPush names no survivor, so all are dead.
        return [SendResult(Outcome.INVALID_TOKEN, error=reason)] * len(group)
    if code == _QUOTA:
        return [SendResult(Outcome.QUOTA, retry_after=until_reset(RESET_ZONE), error=reason)] * len(group)
    if code in _RATE:
        return [SendResult(Outcome.RETRY, retry_after=_retry_after(headers), error=reason)] * len(group)
    if code in _AUTH:
        log.error("MiPush refused our credentials (%s): check XIAOMI_APP_SECRET and XIAOMI_PACKAGE", reason)
        return [SendResult(Outcome.RETRY, error=reason)] * len(group)
    if code in _BUSY:
        return [SendResult(Outcome.RETRY, error=reason)] * len(group)
    return [SendResult(Outcome.PERMANENT, error=reason)] * len(group)  # a payload MiPush will never take


def until_reset(zone: ZoneInfo, now: datetime | None = None) -> float:
    """Seconds to the next midnight in ``zone`` (MiPush's daily counters restart then)."""
    local = (now or datetime.now(UTC)).astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), zone)
    return max(1.0, (midnight - local).total_seconds())


def _content_key(message: PushMessage) -> str:
    return json.dumps([message.title, message.body, message.data, message.urgent], sort_keys=True)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


def build(config: Mapping[str, Any], http_timeout: float) -> PushProvider | None:
    if not config.get("XIAOMI_APP_SECRET"):
        return None
    if not config.get("XIAOMI_PACKAGE"):
        raise ValueError("XIAOMI_APP_SECRET needs XIAOMI_PACKAGE (the app's package name)")
    return XiaomiProvider(config, http_timeout)


# --- receipts ---------------------------------------------------------------------------------------

_UNSIGNED = i18n.N_("This receipt carries no proof that it comes from the push service.")
_FORGED = i18n.N_("This receipt's proof does not match.")
_NOT_RECEIPTS = i18n.N_("Not MiPush receipts.")
i18n.register_titles(
    i18n.title("receipt_unsigned", "Receipt without proof"), i18n.title("receipt_forged", "Receipt not genuine")
)
i18n.register_messages(_UNSIGNED, _FORGED, _NOT_RECEIPTS)

#: ``callback.type`` of an item → the status recorded (1 and 3 are deliveries, the rest failures).
STATUSES = {
    "1": "delivered", "2": "clicked", "3": "delivered", "16": "invalid_target", "32": "push_disabled",
    "64": "filtered", "128": "daily_cap", "1024": "expired",
}  # fmt: skip
DELIVERED = {"delivered", "clicked"}
#: Type 16, the target is invalid (bad regid, app uninstalled or not registered, offline > 90 days):
#: the device is deactivated. 32 (the app called disablePush) the app may undo: the device is kept.
DEAD = {"invalid_target"}


class XiaomiReceipts:
    """MiPush posts ``data=<JSON>`` (form): ``{msgId: {"param", "type", "targets", "timestamp"}}``."""

    def verify(self, request: Request) -> None:
        key = current_app.config.get("XIAOMI_RECEIPT_KEY")
        if key:
            given = request.args.get("key")
            if not given:
                raise Unauthorized(_UNSIGNED, code="receipt_unsigned")
            if not hmac.compare_digest(given.encode(), key.encode()):
                raise Forbidden(_FORGED, code="receipt_forged")
        items = _items(request)
        if not items:  # nothing signed by us to go on
            raise Unauthorized(_UNSIGNED, code="receipt_unsigned")
        if any(verified_reference(CHANNEL, item.get("param")) is None for item in items.values()):
            raise Forbidden(_FORGED, code="receipt_forged")

    def parse(self, request: Request) -> list[Receipt]:
        items = _items(request)
        if items is None:
            raise ValidationFailed(errors={"data": [_NOT_RECEIPTS]})
        receipts: list[Receipt] = []
        for item in items.values():
            notification_id = verified_reference(CHANNEL, item.get("param"))
            if notification_id is None:  # verify() refused these already
                continue
            kind = str(item.get("type", ""))
            status = STATUSES.get(kind, f"type_{kind}"[:32])
            at = _when(item.get("timestamp"))
            targets: list[str | None] = [t for t in str(item.get("targets") or "").split(",") if t] or [None]
            receipts.extend(
                Receipt(notification_id, target, status in DELIVERED, status, at, status in DEAD) for target in targets
            )
        return receipts


def _items(request: Request) -> dict[str, dict[str, Any]] | None:
    raw = request.form.get("data")
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not all(isinstance(item, dict) for item in parsed.values()):
        return None
    return parsed


def _when(value: Any) -> datetime | None:
    millis = _int(value, -1)
    return datetime.fromtimestamp(millis / 1000, UTC) if millis >= 0 else None


RECEIPTS = XiaomiReceipts()
