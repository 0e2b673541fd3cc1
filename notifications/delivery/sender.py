"""The provider calls of a delivery run, made on a thread of their own (see
:mod:`notifications.delivery.service` for the whole run).

While a chunk's calls are out, the run's own thread records the previous chunk's answers and claims
the next batch: the database work is done in the time the push service takes to answer, instead of
after it (a run is as fast as the slower of the two, not their sum). Only HTTP happens on the
sender's thread; the database stays with the run's thread and its session.

"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
        with self._app.app_context():  # the providers read settings (categories, receipt keys)
            return send(chunk.provider, [push.message for push in chunk.pushes[: chunk.fits]])

    def close(self) -> None:
        # Chunks not sent yet stay claimed: their rows come back when the lease ends.
        self._pool.shutdown(wait=True, cancel_futures=True)


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
