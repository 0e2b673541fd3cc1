"""The provider calls of a delivery run, made on a thread of their own (see
:mod:`notifications.delivery.service` for the whole run).

While a chunk's calls are out, the run's own thread records the previous chunk's answers and claims
the next batch: the database work is done in the time the push service takes to answer, instead of
after it (a run is as fast as the slower of the two, not their sum). Only HTTP happens on the
sender's thread; the database stays with the run's thread and its session.

The two threads share one interpreter lock. A thread whose answer has come waits for the lock
until the holder lets go of it: at the holder's next wait for I/O, or after the interpreter's
switch interval (CPython's default: 5 ms). The run's thread works in stretches of a few
milliseconds (a batch's rows, messages and outcomes), so a provider whose calls go out one after
another (vivo: one message a call, a call at a time) waited out such a stretch for most calls and
lost as much as the two threads had gained. While such a provider's calls are out the switch
interval is shortened (:func:`prompt_handover`), so the sender takes the lock soon after each
answer. Not for providers that make many calls at once (FCM's ``send_each`` one thread a message):
their threads already keep the lock busy, and switching more often only costs them.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from prometheus_client import Counter

from notifications.delivery.outcomes import Push
from notifications.delivery.push import Outcome, PushMessage, PushProvider, SendResult

log = logging.getLogger(__name__)

PUSH_OUTCOMES = Counter(
    "shouwang_push_outcomes", "Pushes answered by the push service, by channel and outcome "
    "(ok, invalid_token, retry, permanent)", ["channel", "outcome"],
)  # fmt: skip

#: Chunks handed to the sender ahead of the one whose answers the run waits for: enough that the
#: sender never waits for the database, few enough that a killed worker leaves little unrecorded.
AHEAD = 2

#: The switch interval while calls go out one at a time (seconds; CPython's default is 0.005).
PROMPT_SWITCH_INTERVAL = 0.0005


@dataclass
class Chunk:
    """One provider call's worth of pushes (at most ``PUSH_BATCH_SIZE``, one channel)."""

    provider: PushProvider
    pushes: list[Push]
    fits: int  # how many of them the channel's daily cap let through (reserved before sending)
    now: datetime
    claim: str


class Sender:
    """The provider calls of a run, made one chunk after another on a thread of their own."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-sender")
        self._queue: deque[tuple[Chunk, Future[list[SendResult]]]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, chunk: Chunk) -> None:
        self._queue.append((chunk, self._pool.submit(self._call, chunk)))

    def next(self) -> tuple[Chunk, list[SendResult]]:
        """The oldest chunk and its answers (waits for them)."""
        chunk, answered = self._queue.popleft()
        return chunk, answered.result()

    def _call(self, chunk: Chunk) -> list[SendResult]:
        if not chunk.fits:
            return []
        messages = [push.message for push in chunk.pushes[: chunk.fits]]
        with self._app.app_context():  # the providers read settings (categories, receipt keys)
            if not chunk.provider.calls_one_at_a_time:
                return send(chunk.provider, messages)
            with prompt_handover():
                return send(chunk.provider, messages)

    def close(self) -> None:
        # Chunks not sent yet stay claimed: their rows come back when the lease ends.
        self._pool.shutdown(wait=True, cancel_futures=True)


_handover_lock = threading.Lock()
_handover_users = 0
_handover_saved = 0.0


@contextmanager
def prompt_handover() -> Iterator[None]:
    """The interpreter's switch interval at most :data:`PROMPT_SWITCH_INTERVAL` while inside.

    It is the process's, so runs on several threads share it: the first to enter shortens it, the
    last to leave puts back what it was."""
    global _handover_users, _handover_saved
    with _handover_lock:
        if _handover_users == 0:
            _handover_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_handover_saved, PROMPT_SWITCH_INTERVAL))
        _handover_users += 1
    try:
        yield
    finally:
        with _handover_lock:
            _handover_users -= 1
            if _handover_users == 0:
                sys.setswitchinterval(_handover_saved)


def send(provider: PushProvider, messages: Sequence[PushMessage]) -> list[SendResult]:
    try:
        results = provider.send(messages)
    except Exception as error:  # a provider bug must not strand the claimed rows until the lease ends
        log.exception("push provider %s failed", provider.channel)
        results = [SendResult(Outcome.RETRY, error=f"{type(error).__name__}: {error}"[:200])] * len(messages)
    if len(results) != len(messages):
        raise RuntimeError(f"provider {provider.channel} answered {len(results)} of {len(messages)} messages")
    for result in results:
        PUSH_OUTCOMES.labels(provider.channel, str(result.outcome)).inc()
    return results
