"""What every vendor push provider shares: one pooled HTTP session, an access-token cache shared by
a worker's threads, batching, and the one retry after an expired token.

A vendor provider subclasses :class:`VendorProvider` and writes three things: how to get a token
(:meth:`fetch_token`; vendors without one, like Xiaomi's ``key=`` header, return a fixed value that
never expires), how to send one batch with a token (:meth:`send_batch`, one :class:`SendResult`
per message, in order), and how to build a probe. Everything the outbox relies on stays here:

- ``send`` never raises for what the service refused: a network error or a 5xx becomes
  ``Outcome.RETRY`` for the batch (the outbox backs off, and counts a batch where all failed as an
  outage), a vendor's daily cap ``Outcome.QUOTA`` (held until the reset, not lost).
- The token is fetched once per process and refreshed ``REFRESH_MARGIN`` before it expires, under
  a lock: one refresh at a time, the other threads wait and use the new token.
- A batch answered "token expired" (:class:`TokenExpired` raised by ``send_batch``) gets a new
  token at once and is sent again, once; only the messages the vendor had not accepted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
import requests.adapters
from urllib3.util import Retry

from notifications.delivery.push import Outcome, PushMessage, SendResult, read_environment_once

log = logging.getLogger(__name__)

#: A token is refreshed this long before the expiry the vendor gave.
REFRESH_MARGIN_SECONDS = 300.0
#: A token that never expires (vendors whose calls carry a fixed secret).
NEVER = float("inf")


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # time.monotonic() seconds; NEVER for a fixed secret


class TokenExpired(Exception):
    """Raised by ``send_batch`` when the vendor says the access token is no longer valid.

    ``accepted`` holds the positions of the batch the vendor did accept before it said so (if its
    answer tells), so the resend skips them.
    """

    def __init__(self, accepted: Sequence[int] = ()) -> None:
        super().__init__("access token expired")
        self.accepted = tuple(accepted)


class TokenCache:
    """One access token per provider and process, shared by threads, refreshed one at a time."""

    def __init__(self, fetch: Callable[[], AccessToken], margin: float = REFRESH_MARGIN_SECONDS) -> None:
        self._fetch = fetch
        self._margin = margin
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self.refreshes = 0  # how many times the vendor was asked (tests and metrics)

    def get(self) -> str:
        token = self._token
        if token is not None and time.monotonic() < token.expires_at - self._margin:
            return token.value
        with self._lock:
            token = self._token  # another thread may have refreshed it while this one waited
            if token is None or time.monotonic() >= token.expires_at - self._margin:
                token = self._fetch()
                self.refreshes += 1
                self._token = token
            return token.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (the vendor refused it); a token another thread fetched meanwhile stays."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None


def pooled_session(base_url: str, pool_size: int) -> requests.Session:
    """A session whose connections to ``base_url`` are reused from one batch to the next. Only a
    broken connection is retried at once; the outbox retries everything else, later."""
    session = requests.Session()
    # Read once here, not by every call: a one-message call spent about a tenth of its time on it.
    read_environment_once(session, base_url)
    retry = Retry(
        total=None, connect=1, read=1, status=0, other=0, redirect=0,
        allowed_methods=None, raise_on_status=False, respect_retry_after_header=False,
    )  # fmt: skip
    session.mount(
        base_url.rstrip("/"),
        requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=retry),
    )
    return session


class VendorProvider:
    """Base of the vendor providers (see the module docstring). Subclasses set ``channel`` and
    ``max_batch`` and implement :meth:`fetch_token`, :meth:`send_batch` and :meth:`probe`."""

    channel: str = ""
    max_batch: int = 1

    def __init__(self, base_url: str, http_timeout: float, pool_size: int = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.http_timeout = http_timeout
        self.session = pooled_session(self.base_url, pool_size)
        self.tokens = TokenCache(self.fetch_token)
        self._side_by_side: ThreadPoolExecutor | None = None
        self._calls_lock = threading.Lock()

    # --- what a vendor writes -------------------------------------------------------------------

    def fetch_token(self) -> AccessToken:
        raise NotImplementedError

    def send_batch(self, token: str, batch: Sequence[PushMessage]) -> list[SendResult]:
        """Send at most ``max_batch`` messages; one result per message, in order. Raise
        :class:`TokenExpired` when the vendor refuses the token; raise ``requests`` errors as they come."""
        raise NotImplementedError

    def probe(self) -> bool:
        """Whether the service answers at all, without delivering anything."""
        raise NotImplementedError

    # --- the rest is common -----------------------------------------------------------------------

    def send(self, messages: Sequence[PushMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for start in range(0, len(messages), self.max_batch):
            results.extend(self._send_with_token(messages[start : start + self.max_batch]))
        return results

    def _send_with_token(self, batch: Sequence[PushMessage]) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(batch)
        pending = list(range(len(batch)))
        for attempt in range(2):
            try:
                token = self.tokens.get()
                answered = self.send_batch(token, [batch[i] for i in pending])
            except TokenExpired as expired:
                self.tokens.invalidate(token)
                accepted = set(expired.accepted)
                for position in accepted:
                    results[pending[position]] = SendResult(Outcome.OK)
                pending = [index for position, index in enumerate(pending) if position not in accepted]
                if attempt == 0:
                    continue
                answered = [SendResult(Outcome.RETRY, error="access token refused twice")] * len(pending)
            except (requests.RequestException, ValueError) as error:
                # Down, timed out, or an answer we cannot read: the outbox tries again later.
                answered = [SendResult(Outcome.RETRY, error=f"{type(error).__name__}: {error}"[:200])] * len(pending)
            for index, result in zip(pending, answered, strict=True):
                results[index] = result
            break
        return [result if result is not None else SendResult(Outcome.RETRY, error="not answered") for result in results]

    def calls_pool(self, size: int) -> ThreadPoolExecutor:
        """Threads for the calls a batch makes side by side, started on first use (a provider
        that only ever sends one call at a time starts none) and stopped by :meth:`close`."""
        with self._calls_lock:
            if self._side_by_side is None:
                self._side_by_side = ThreadPoolExecutor(size, thread_name_prefix=f"push-{self.channel}")
            return self._side_by_side

    def close(self) -> None:
        with self._calls_lock:
            calls, self._side_by_side = self._side_by_side, None
        if calls is not None:
            calls.shutdown(wait=True)
        self.session.close()
