"""A local HTTP server on 127.0.0.1 that speaks the FCM HTTP v1 send API, for tests and benchmarks.

The real firebase-admin code is pointed at it by configuration (``FCM_ENDPOINT``, see
notifications/delivery/push.py), so nothing of ours is mocked::

    server = FakeFcm().start()                      # port 0: the system picks a free one
    server.script("tok-1", UNREGISTERED)            # the next send to tok-1 answers 404 UNREGISTERED
    server.script("tok-2", quota_exceeded(120), OK) # 429 with Retry-After: 120, then success
    server.default = UNAVAILABLE                    # every unscripted token answers 503
    server.go_down(); server.come_up()              # refuse connections (and drop open ones), then serve again
    server.stall(after=15); server.wait_stalled(5)   # hold answers back (kill a worker meanwhile),
    server.release(drop=True)                        # then hang up on them
    server.delivered("tok-1"), server.hits["tok-1"], server.messages
    server.probes                                   # dry runs (validate_only) by status: delivered to nobody
    server.stop()

``POST /v1/projects/{project}/messages:send`` answers ``{"name": "projects/{project}/messages/N"}`` or
an error in the FCM v1 shape, which firebase-admin turns into its per-message exceptions
(``UnregisteredError``, ``QuotaExceededError``, ``UnavailableError``, …). ``send_each`` opens one
thread and connection per message, so the server is threaded, keeps connections alive (HTTP/1.1)
and listens with a backlog of 1024: with the default of 5 a 500-message batch loses some messages to
refused connections.

The server scaffolding (threads, faults, stalls, latency, counts) is tests/push_servers/base.py's;
this module writes FCM's protocol. Plain library code (no pytest), so ``bench/`` can import it as
well, or run it in a process of its own: ``python -m tests.push_servers.serve fcm`` prints its base
URL; ``GET /stats`` gives the totals.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.push_servers.base import Answer, FakeServer

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True)
class Reply:
    """One answer to one send: 200, or an FCM v1 error."""

    status: int = 200
    rpc_status: str = ""  # google.rpc status, e.g. NOT_FOUND
    fcm_code: str = ""  # FcmError errorCode, e.g. UNREGISTERED
    message: str = ""
    retry_after: int | None = None  # seconds, sent as the Retry-After header
    token_violation: bool = False  # a BadRequest field violation on message.token

    def body(self, project: str, number: int) -> dict[str, Any]:
        if self.status == 200:
            return {"name": f"projects/{project}/messages/{number}"}
        details: list[dict[str, Any]] = []
        if self.fcm_code:
            details.append({"@type": FCM_ERROR_TYPE, "errorCode": self.fcm_code})
        if self.token_violation:
            details.append({
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}],
            })  # fmt: skip
        return {"error": {"code": self.status, "message": self.message, "status": self.rpc_status, "details": details}}


OK = Reply()
UNREGISTERED = Reply(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
# What FCM answers for a malformed registration token.
INVALID_TOKEN = Reply(
    400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
    "The registration token is not a valid FCM registration token", token_violation=True,
)  # fmt: skip
# A payload FCM refuses (not the token's fault), e.g. data too large.
INVALID_PAYLOAD = Reply(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Message is too big")
UNAVAILABLE = Reply(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
INTERNAL = Reply(500, "INTERNAL", "INTERNAL", "Internal error encountered.")


def quota_exceeded(retry_after: int | None = 60) -> Reply:
    return Reply(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded.", retry_after=retry_after)


QUOTA_EXCEEDED = quota_exceeded()


class FakeFcm(FakeServer[Reply]):
    """The FCM v1 send endpoint on 127.0.0.1, scriptable per token; thread-safe."""

    name = "fcm"

    def __init__(self, port: int = 0, *, access_token: str = "test-token", **options: Any) -> None:
        super().__init__(port, default=OK, **options)
        self.access_token = access_token  # requests must carry "Authorization: Bearer <this>"
        self.replies: Counter[tuple[str, int]] = Counter()  # (token, status) answered
        self.probes: Counter[int] = Counter()  # dry runs (validate_only) answered, by status
        self._count = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages answered with success, in order."""
        with self._lock:
            return [message for _, message in self.deliveries]

    def send_url(self, project: str) -> str:
        return f"{self.base_url}/v1/projects/{project}/messages:send"

    def not_found(self) -> Answer:
        return Answer(404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}})

    def stats(self) -> dict[str, Any]:
        with self._lock:
            answered: Counter[int] = Counter()
            for (_, status), n in self.replies.items():
                answered[status] += n
        return {**super().stats(), "answered": {str(k): v for k, v in answered.items()}}

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.replies.clear()
            self.probes.clear()
            self.default = OK

    def route(self, path: str, headers: Mapping[str, str], raw: bytes) -> Answer | None:
        parts = path.split("/")
        if len(parts) != 5 or parts[1] != "v1" or parts[2] != "projects" or parts[4] != "messages:send":
            return self.not_found()
        project = parts[3]
        if headers.get("Authorization") != f"Bearer {self.access_token}":
            return Answer(401, {"error": {"code": 401, "message": "bad credentials", "status": "UNAUTHENTICATED"}})
        payload = json.loads(raw or b"{}")
        message = payload.get("message") or {}
        token = message.get("token") or message.get("fid") or ""
        if payload.get("validate_only"):
            # A dry run: answered as the default reply says, delivered to nobody, counted apart.
            with self._lock:
                reply = self.default
                self.probes[reply.status] += 1
            return Answer(reply.status, reply.body(project, 0))
        reply = self.next_reply(token)
        if not self.hold():
            return None
        with self._lock:
            self._count += 1
            number = self._count
            self.replies[(token, reply.status)] += 1
        if reply.status == 200:
            self.count_delivered(token, message)
        headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
        return Answer(reply.status, reply.body(project, number), headers)
