"""Push providers: one sender per device push channel, behind a small interface.

The outbox (notifications/delivery/service.py) hands a provider a list of :class:`PushMessage` and gets
one :class:`SendResult` per message back; it never sees firebase-admin. Vendor channels (Huawei,
Xiaomi, OPPO, vivo) become new providers registered in :func:`_build_providers`, without touching
the outbox.

FCM goes through firebase-admin's ``messaging.send_each`` (HTTP v1), at most ``PUSH_BATCH_SIZE``
(≤ 500) messages per call. Configuration:

- ``FIREBASE_CREDENTIALS``: path of a service account JSON file. Unset: a :class:`RecordingProvider`
  appends what would have been sent to ``PUSH_RECORD_PATH`` (JSON lines) and reports success
  (the embedded default). The value ``static-token:<token>`` instead uses that fixed OAuth2 access
  token, never refreshed: for tests and benchmarks against a local FCM-speaking server
  (tests/fcm_server.py), which checks ``Authorization: Bearer <token>``. It needs
  ``FIREBASE_PROJECT_ID``.
- ``FIREBASE_PROJECT_ID``: unset, the service account's project.
- ``FCM_ENDPOINT``: base URL to send to instead of https://fcm.googleapis.com (e.g.
  ``http://127.0.0.1:8123``); firebase-admin reads no setting for it, see :func:`_point_at`.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import firebase_admin
import google.oauth2.credentials
import requests.adapters
import requests.utils
from firebase_admin import credentials, exceptions, messaging
from flask import Flask, current_app
from urllib3.util import Retry

from notifications.delivery.vendors.settings import SETTINGS as VENDOR_SETTINGS
from notifications.devices.models import PushChannel

log = logging.getLogger(__name__)

STATIC_TOKEN_PREFIX = "static-token:"
#: The token a probe is addressed to: no device has it (and a dry run delivers nothing anyway).
PROBE_TOKEN = "shouwang-outage-probe"
FCM_BASE_URL = "https://fcm.googleapis.com"
# A send must end well within the outbox lease (PUSH_LEASE_SECONDS), or another worker may take
# the row over and push it a second time.
MAX_HTTP_TIMEOUT_SECONDS = 30.0
_EXTENSION = "notifications.push"


class Outcome(StrEnum):
    OK = "ok"  # accepted by the push service
    INVALID_TOKEN = "invalid_token"  # the token is dead (unregistered, malformed): deactivate the device
    RETRY = "retry"  # quota, unavailable, internal, network: try again later
    PERMANENT = "permanent"  # this message cannot be sent (e.g. refused payload): do not retry
    QUOTA = "quota"  # the vendor's daily cap is reached: held (in the inbox) until its reset


@dataclass(frozen=True)
class PushMessage:
    token: str
    title: str
    body: str
    data: dict[str, str]  # string values only (FCM's rule); carries "type" and "notification_id"
    urgent: bool = False


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    retry_after: float | None = None  # seconds the service asked us to wait (Retry-After)
    error: str | None = None


class PushProvider(Protocol):
    """Sends messages through one push channel; one result per message, in order, never raises
    for a message the service refused (only for a bug of ours)."""

    channel: str

    def send(self, messages: Sequence[PushMessage]) -> list[SendResult]: ...

    def probe(self) -> bool:
        """Whether the service answers at all (after an outage), without delivering anything."""
        ...

    def close(self) -> None: ...


# --- the embedded default: record instead of send ---------------------------------------------


class RecordingProvider:
    """Appends each message to a JSON-lines file instead of sending it, and reports success."""

    def __init__(self, channel: str, path: str) -> None:
        self.channel = channel
        self.path = Path(path)
        self._lock = threading.Lock()  # several delivery threads may share one provider

    def send(self, messages: Sequence[PushMessage]) -> list[SendResult]:
        recorded_at = datetime.now(UTC).isoformat()
        lines = [
            json.dumps({"channel": self.channel, "recorded_at": recorded_at, **asdict(m)}, ensure_ascii=False)
            for m in messages
        ]
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.writelines(line + "\n" for line in lines)
        return [SendResult(Outcome.OK) for _ in messages]

    def probe(self) -> bool:
        return True

    def close(self) -> None:
        pass


# --- FCM through firebase-admin -----------------------------------------------------------------


class StaticTokenCredential(credentials.Base):
    """A fixed OAuth2 access token (no expiry, so never refreshed): tests and benchmarks only."""

    def __init__(self, token: str) -> None:
        self._credential = google.oauth2.credentials.Credentials(token=token)

    def get_credential(self) -> google.oauth2.credentials.Credentials:
        return self._credential


@dataclass
class FcmProvider:
    """FCM HTTP v1 through ``messaging.send_each``, on a firebase-admin App of its own, made lazily.

    Not ``send_each_async``: its httpx client sent 15-20 times fewer messages a second than
    ``send_each`` in the same process (bench/fcm_clients.py, bench/README.md, issue 19)."""

    credential: credentials.Base
    project_id: str | None
    endpoint: str | None
    batch_size: int
    http_timeout: float
    channel: str = PushChannel.FCM
    _app: firebase_admin.App | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _names = itertools.count()

    def send(self, messages: Sequence[PushMessage]) -> list[SendResult]:
        app = self._firebase_app()
        results: list[SendResult] = []
        for start in range(0, len(messages), self.batch_size):
            results.extend(self._send_batch(app, messages[start : start + self.batch_size]))
        return results

    def _send_batch(self, app: firebase_admin.App, batch: Sequence[PushMessage]) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(batch)
        built: list[messaging.Message] = []
        positions: list[int] = []
        for position, message in enumerate(batch):
            try:
                built.append(fcm_message(message))
                positions.append(position)
            except ValueError as error:  # e.g. a non-string data value: sending again cannot help
                results[position] = SendResult(Outcome.PERMANENT, error=f"invalid message: {error}")
        if built:
            try:
                responses = messaging.send_each(built, app=app).responses
            except exceptions.FirebaseError as error:  # the batch as a whole (not one message) failed
                responses = [messaging.SendResponse(None, error) for _ in built]
            for position, response in zip(positions, responses, strict=True):
                results[position] = classify(response.exception) if response.exception else SendResult(Outcome.OK)
        return [result for result in results if result is not None]

    def probe(self) -> bool:
        """A dry run (``validate_only``: FCM checks the message and delivers nothing) to a token
        that is no one's: any answer from FCM, "invalid token" included, means it is back."""
        message = PushMessage(token=PROBE_TOKEN, title="probe", body="probe", data={"type": "probe"})
        try:
            response = messaging.send_each([fcm_message(message)], dry_run=True, app=self._firebase_app()).responses[0]
        except exceptions.FirebaseError as error:
            response = messaging.SendResponse(None, error)
        except Exception:  # as in sending: a fault of ours must not fail the delivery run
            log.exception("push provider %s: probe failed", self.channel)
            return False
        return response.exception is None or classify(response.exception).outcome is not Outcome.RETRY

    def _firebase_app(self) -> firebase_admin.App:
        with self._lock:
            if self._app is None:
                options: dict[str, Any] = {"httpTimeout": self.http_timeout}
                if self.project_id:
                    options["projectId"] = self.project_id
                name = f"shouwang-{os.getpid()}-{next(self._names)}"
                app = firebase_admin.initialize_app(self.credential, options, name=name)
                _point_at(app, self.endpoint or FCM_BASE_URL, self.batch_size)
                self._app = app
            return self._app

    def close(self) -> None:
        with self._lock:
            app, self._app = self._app, None
        if app is not None:
            _delete(app)


def _credential(setting: str) -> credentials.Base:
    """Read now, so a wrong path or file fails the run before it claims any row."""
    if setting.startswith(STATIC_TOKEN_PREFIX):
        return StaticTokenCredential(setting.removeprefix(STATIC_TOKEN_PREFIX))
    return credentials.Certificate(setting)


# --- the only code that reaches into firebase-admin's private messaging service (pinned to 7.x) ---


def _point_at(app: firebase_admin.App, base_url: str, pool_size: int) -> None:
    """Endpoint and HTTP retries of the app's messaging service.

    - Endpoint: the service keeps the send URL in ``_fcm_url`` and reads no setting for it, so a
      local FCM-speaking server is configured here (``FCM_ENDPOINT``).
    - Retries: firebase-admin's HTTP client retries 500/503 four times with backoff and sleeps out
      a Retry-After inside the sending thread, holding the whole batch (and the rows' lease) for
      as long as the service asks. The outbox retries those itself, later, with backoff, jitter
      and Retry-After, so here only a broken connection (e.g. a keep-alive connection the server
      closed) is retried at once. The connection pool holds a whole batch, so connections are
      reused from one send_each to the next.
    - Environment: read once (:func:`read_environment_once`), as the vendors' sessions do.
    """
    service = messaging._get_messaging_service(app)
    base_url = base_url.rstrip("/")
    service._fcm_url = f"{base_url}/v1/projects/{service._project_id}/messages:send"
    retry = Retry(
        total=None, connect=1, read=1, status=0, other=0, redirect=0,
        allowed_methods=None, raise_on_status=False, respect_retry_after_header=False,
    )  # fmt: skip
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=retry)
    service._client.session.mount(base_url, adapter)
    read_environment_once(service._client.session, base_url)


def read_environment_once(session: requests.Session, base_url: str) -> None:
    """Proxies and CA bundle for ``base_url`` read from the environment into ``session`` now, and
    not again: with ``trust_env`` requests looks them (and .netrc) up for every call, which cost
    FCM's ``send_each`` a quarter of its messages a second on loopback (bench/fcm_clients.py).
    A proxy set in the environment (closed networks reach the push services through one) is still
    used, NO_PROXY still honoured; .netrc is not read (an entry for the push host would replace
    the Authorization header)."""
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False


def _delete(app: firebase_admin.App) -> None:
    service = messaging._get_messaging_service(app)
    firebase_admin.delete_app(app)  # closes the service's async client
    service._client.close()  # and the requests session delete_app leaves open


def fcm_message(message: PushMessage) -> messaging.Message:
    """The FCM v1 message: alert, deep-link data, high priority on Android and APNs when urgent."""
    built = messaging.Message(
        notification=messaging.Notification(title=message.title, body=message.body),
        data=message.data,
        android=messaging.AndroidConfig(priority="high" if message.urgent else "normal"),
        apns=messaging.APNSConfig(
            headers={"apns-priority": "10" if message.urgent else "5", "apns-push-type": "alert"},
            payload=messaging.APNSPayload(aps=messaging.Aps(sound="default" if message.urgent else None)),
        ),
    )
    # Devices register FCM registration tokens, which FCM v1 takes as message.token. firebase-admin
    # 7 deprecates the constructor's token= in favour of fid= (Firebase installation IDs, another
    # identifier) and warns; setting the attribute sends the same field without the warning, and
    # unlike warnings.catch_warnings it is thread-safe.
    built.token = message.token
    return built


def classify(error: BaseException) -> SendResult:
    """What one refused message means for the outbox."""
    text = f"{getattr(error, 'code', type(error).__name__)}: {error}"[:200]
    if isinstance(error, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        return SendResult(Outcome.INVALID_TOKEN, error=text)
    if isinstance(error, exceptions.InvalidArgumentError):
        if _is_token_error(error):
            return SendResult(Outcome.INVALID_TOKEN, error=text)
        return SendResult(Outcome.PERMANENT, error=text)
    # Quota, unavailable, internal, deadline, network, credentials being fixed: later may work.
    return SendResult(Outcome.RETRY, retry_after=_retry_after(error), error=text)


def _is_token_error(error: exceptions.FirebaseError) -> bool:
    """INVALID_ARGUMENT names the token as the bad field (or says so), not e.g. the payload size."""
    if "registration token" in str(error).lower():
        return True
    response = error.http_response
    try:
        details = response.json()["error"].get("details", []) if response is not None else []
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return any(
        violation.get("field") in ("message.token", "message.fid")
        for detail in details
        if isinstance(detail, dict)
        for violation in detail.get("fieldViolations", [])
        if isinstance(violation, dict)
    )


def _retry_after(error: BaseException) -> float | None:
    response = getattr(error, "http_response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- choosing providers ---------------------------------------------------------------------------

_PROVIDER_KEYS = (
    "FIREBASE_CREDENTIALS", "FIREBASE_PROJECT_ID", "FCM_ENDPOINT", "PUSH_RECORD_PATH",
    "PUSH_BATCH_SIZE", "PUSH_LEASE_SECONDS", *(setting.name for setting in VENDOR_SETTINGS),
)  # fmt: skip
_providers_lock = threading.Lock()


def providers(app: Flask | None = None) -> Mapping[str, PushProvider]:
    """The provider of each push channel for this Flask app in this process, made on first use.

    Kept per process (a forked worker must not share its parent's connections) and rebuilt when
    the configuration it was made from changes (tests point it at their own local server).
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy's own, untyped
    key = (os.getpid(), tuple(app.config.get(name) for name in _PROVIDER_KEYS))
    with _providers_lock:
        state = app.extensions.setdefault(_EXTENSION, {})
        if state.get("key") != key:
            if state.get("pid") == os.getpid():
                _close_all(state.get("providers", {}))
            state.update(key=key, pid=os.getpid(), providers=_build_providers(app.config))
        return state["providers"]


def close_providers(app: Flask) -> None:
    """Close this process's providers (their HTTP connections); the next use makes new ones."""
    with _providers_lock:
        state = app.extensions.pop(_EXTENSION, {})
        if state.get("pid") == os.getpid():
            _close_all(state.get("providers", {}))


def _close_all(built: Mapping[str, PushProvider]) -> None:
    for provider in built.values():
        provider.close()


def _build_providers(config: Mapping[str, Any]) -> dict[str, PushProvider]:
    batch_size = int(config["PUSH_BATCH_SIZE"])
    if not 1 <= batch_size <= 500:
        raise ValueError("PUSH_BATCH_SIZE must be between 1 and 500 (FCM's send_each maximum)")
    from notifications.delivery import vendors  # their modules build on this one

    timeout = min(MAX_HTTP_TIMEOUT_SECONDS, int(config["PUSH_LEASE_SECONDS"]) / 4)
    return {PushChannel.FCM: _fcm_provider(config, batch_size, timeout), **vendors.build_providers(config, timeout)}


def _fcm_provider(config: Mapping[str, Any], batch_size: int, timeout: float) -> PushProvider:
    setting = config.get("FIREBASE_CREDENTIALS")
    if not setting:
        return RecordingProvider(PushChannel.FCM, config["PUSH_RECORD_PATH"])
    if setting.startswith(STATIC_TOKEN_PREFIX) and not config.get("FIREBASE_PROJECT_ID"):
        raise ValueError(f"FIREBASE_CREDENTIALS={STATIC_TOKEN_PREFIX}… needs FIREBASE_PROJECT_ID")
    return FcmProvider(
        _credential(setting), config.get("FIREBASE_PROJECT_ID"), config.get("FCM_ENDPOINT"), batch_size, timeout
    )
