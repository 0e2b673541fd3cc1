"""A local server that speaks OPPO Push's HTTP API (docs/push-vendors.md, "OPPO Push").

- ``POST /server/v1/auth`` (form ``app_key``, ``timestamp``, ``sign``): checks the AppKey, the
  timestamp (±10 minutes) and ``sign = sha256_hex(app_key + timestamp + master_secret)`` exactly as
  OPPO does; answers ``{"code": 0, "data": {"auth_token", "create_time"}}`` or a refusal code.
- ``POST /server/v1/message/notification/unicast_batch`` (form ``auth_token``, ``messages``): checks
  the token (code 11 when unknown or expired) and each message's required fields (code 41), then
  answers per target: ``{"messageId", "registrationId"}`` or with ``errorCode`` 10000 (invalid
  regid). Faults that OPPO reports for the whole call (code 33 daily cap, 13 rate limited with a
  Retry-After header when a wait is scripted, HTTP 500, 11 token expired) answer the whole batch.
- OPPO pushes one ``app_message_id`` to one target once: a repeat is answered like a success and
  counted in ``deduplicated``, not delivered again.
- A stall holds a batch's answer after the batch was taken (its messages count as delivered).
- :meth:`FakeOppo.receipt_body` / :meth:`FakeOppo.post_receipts`: the JSON array OPPO posts to a
  message's ``call_back_url``, echoing its ``call_back_parameter``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import requests

from tests.push_servers.base import OK, REQUEST_LEVEL, Answer, FakeServer, Reply

AUTH_PATH = "/server/v1/auth"
BATCH_PATH = "/server/v1/message/notification/unicast_batch"
REQUIRED = ("title", "content")


class FakeOppo(FakeServer[Reply]):
    name = "oppo"

    def __init__(
        self, port: int = 0, *, app_key: str = "oppo-key", master_secret: str = "oppo-master", **options: Any
    ) -> None:
        options.setdefault("token_lifetime", 86400.0)
        super().__init__(port, default=OK, **options)
        self.app_key = app_key
        self.master_secret = master_secret
        self.deduplicated = 0
        self._sent_ids: set[tuple[str, str]] = set()
        self._numbers = itertools.count(1)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._sent_ids.clear()  # each benchmark phase sends the same notifications anew

    def route(self, path: str, headers: Mapping[str, str], raw: bytes) -> Answer | None:
        form = {key: values[0] for key, values in parse_qs(raw.decode(), keep_blank_values=True).items()}
        if path == AUTH_PATH:
            return self._auth(form)
        if path == BATCH_PATH:
            return self._batch(form)
        return Answer(404, {"code": 12, "message": "Http action not found"})

    def _auth(self, form: dict[str, str]) -> Answer:
        key, stamp, sign = form.get("app_key", ""), form.get("timestamp", ""), form.get("sign", "")
        if key != self.app_key:
            return self._refuse_auth(14, "Invalid AppKey")
        if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > 600_000:
            return self._refuse_auth(17, "Invalid Timestamp")
        expected = hashlib.sha256(f"{key}{stamp}{self.master_secret}".encode()).hexdigest()
        if sign != expected:
            return self._refuse_auth(15, "Invalid Signature")
        token = self.issue_token()
        return Answer(
            200,
            {"code": 0, "message": "success", "data": {"auth_token": token, "create_time": int(time.time() * 1000)}},
        )

    def _refuse_auth(self, code: int, message: str) -> Answer:
        self.refuse_auth()
        return Answer(200, {"code": code, "message": message})

    def _batch(self, form: dict[str, str]) -> Answer | None:
        answer = self._take_batch(form)
        # Held (and maybe dropped) after OPPO took the batch: a sender that dies meanwhile never
        # learns that its messages went out.
        return answer if self.hold() else None

    def _take_batch(self, form: dict[str, str]) -> Answer:
        token = form.get("auth_token")
        if not token:
            return Answer(200, {"code": 29, "message": "Missing auth token"})
        if not self.token_valid(token):
            return Answer(200, {"code": 11, "message": "Invalid AuthToken"})
        try:
            messages = json.loads(form.get("messages", ""))
        except ValueError:
            return Answer(200, {"code": 41, "message": "Invalid arguments: messages"})
        if (
            not isinstance(messages, list)
            or not 1 <= len(messages) <= 1000
            or not all(_well_formed(m) for m in messages)
        ):
            return Answer(200, {"code": 41, "message": "Invalid arguments"})
        targets = [m["target_value"] for m in messages]
        # Faults OPPO answers for the whole call: the first scripted one among the targets decides.
        for target in targets:
            reply = self.peek_reply(target)
            if reply.kind in REQUEST_LEVEL:
                self.next_reply(target)
                return _whole(reply, token, self)
        items = []
        for message in messages:
            target = message["target_value"]
            reply = self.next_reply(target)
            number = next(self._numbers)
            if reply.kind == "invalid":
                items.append(
                    {
                        "messageId": f"app-1-1-{number}",
                        "registrationId": target,
                        "errorCode": 10000,
                        "errorMessage": "Invalid RegistrationId",
                    }
                )
                continue
            key = (str(message["notification"].get("app_message_id", "")), target)
            with self._lock:
                repeat = bool(key[0]) and key in self._sent_ids
                self._sent_ids.add(key)
                if repeat:
                    self.deduplicated += 1
            if not repeat:
                self.count_delivered(target, message)
            items.append({"messageId": f"app-1-1-{number}", "registrationId": target})
        return Answer(200, {"code": 0, "message": "", "data": items})

    # --- receipts ------------------------------------------------------------------------------

    def receipt_body(
        self, target: str, event: str = "push_arrive", *, param: str | None = None
    ) -> list[dict[str, Any]]:
        """What OPPO posts to the call_back_url of the last message delivered to ``target``."""
        sent = self.sent_to(target)[-1]["notification"]
        return [{
            "messageId": "app-1-1-0", "appId": "app", "taskId": "app-1-1-0", "registrationIds": target,
            "eventTime": str(int(time.time() * 1000)), "eventType": event,
            "param": sent.get("call_back_parameter") if param is None else param,
        }]  # fmt: skip

    def post_receipts(self, url: str, body: list[dict[str, Any]]) -> requests.Response:
        return requests.post(url, json=body, timeout=10)


def _well_formed(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("target_type") != 2 or not message.get("target_value"):
        return False
    notification = message.get("notification")
    if not isinstance(notification, dict) or not all(notification.get(f) for f in REQUIRED):
        return False
    if len(notification["title"]) > 50 or len(notification["content"]) > 128:
        return False
    if "notify_level" in notification and not notification.get("category"):
        return False  # "使用notify_level参数时，category参数必传"
    parameters = notification.get("action_parameters")
    return parameters is None or (isinstance(parameters, str) and len(parameters) <= 4000)


def _whole(fault: Reply, token: str, server: FakeOppo) -> Answer:
    if fault.kind == "expired":
        server.revoke(token)
        return Answer(200, {"code": 11, "message": "Invalid AuthToken"})
    if fault.kind == "quota":
        return Answer(200, {"code": 33, "message": "The number of messages exceeds the daily limit"})
    if fault.kind == "rate_limit":
        headers = {"Retry-After": str(fault.wait)} if fault.wait is not None else {}
        return Answer(200, {"code": 13, "message": "App Call Limited"}, headers)
    return Answer(500, {"code": -1, "message": "Service Currently Unavailable"})
