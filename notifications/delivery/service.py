"""Delivering the outbox: due notification rows become pushes, at least once, never lost.

A run claims a batch of due rows (``push_status`` pending, ``push_due_at`` reached, no live lease)
in one short transaction that stamps them with a claim id and a lease (``PUSH_LEASE_SECONDS``) and
commits, so a concurrent run passes over them: on PostgreSQL the rows are picked with ``FOR UPDATE
SKIP LOCKED``; SQLite has one writer at a time, and the claim is one ``UPDATE … RETURNING``
statement, so two runs cannot claim the same row there either. Then it sends, outside any
transaction, to each recipient's active, fresh devices not reached yet, and records each row's
outcome with an UPDATE guarded by its claim id: a run whose lease expired (and whose rows another
run took over) changes nothing. Outcomes are committed after each provider call, so a worker
killed mid-run loses at most the answers of the calls it had out; their rows come back when the
lease ends, and are sent again — a push may arrive twice (at least once), an inbox row is never
duplicated.

The calls go out on a thread of the run's own (:class:`_Sender`), a chunk or two ahead, while the
run's thread records the answers of the previous call and claims the next batch: the database
work of the outbox is done while the push service is answering, not after it.

What each answer does to a row (sent, retried, failed, a dead token) is decided in
:mod:`notifications.delivery.outcomes`.

Outages: when every push of a provider batch fails with a transient error (and no Retry-After),
the service is down rather than the messages wrong; those rows wait as ``outage``. The first
answer from the service afterwards (any push of a later batch answered, or a dry-run probe a run
with nothing due sends while rows wait on an outage) makes every outage row due at once, urgent
ones first, and the same run sends them: a backlog drains on the first run after the service is
back instead of each row's own backoff. Rows the service asked to wait (Retry-After) keep their
time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app
from prometheus_client import Counter

from core.db import rowcount, utcnow
from core.extensions import db
from core.metrics import Sample, register_gauges
from core.transactions import commit_batch
from notifications.delivery import claims, quotas, targets
from notifications.delivery.outcomes import DeliveryStats, Push, Writes, finish, max_attempts, note
from notifications.delivery.push import Outcome, PushMessage, PushProvider, RecordingProvider, SendResult, providers
from notifications.models import Notification, PushStatus, PushWait

log = logging.getLogger(__name__)

#: One run stops claiming new batches after this long (its task then asks for another run), so a
#: big backlog does not hold one worker task for ever and the batches spread over the workers.
DELIVERY_BUDGET_SECONDS = 60.0

_notifications = Notification.__table__

PUSH_OUTCOMES = Counter(
    "shouwang_push_outcomes", "Pushes answered by the push service, by channel and outcome "
    "(ok, invalid_token, retry, permanent)", ["channel", "outcome"],
)  # fmt: skip


@dataclass
class _Run:
    """What one delivery run has learnt about the push services so far."""

    recovered: bool = False  # outage rows were made due (once per run is enough)
    probed: bool = False
    made_due: bool = False  # rows were made due since the last claim: claim again


@dataclass
class _Chunk:
    """One provider call's worth of pushes (at most ``PUSH_BATCH_SIZE``, one channel)."""

    provider: PushProvider
    pushes: list[Push]
    fits: int  # how many of them the channel's daily cap let through (reserved before sending)
    now: datetime
    claim: str


#: Chunks handed to the sender ahead of the one whose answers the run waits for: enough that the
#: sender never waits for the database, few enough that a killed worker leaves little unrecorded.
_AHEAD = 2


class _Sender:
    """The provider calls of a run, made one chunk after another on a thread of their own.

    While a chunk's calls are out, the run's own thread records the previous chunk's answers and
    claims the next batch: the database work is done in the time the push service takes to
    answer, instead of after it (a run is as fast as the slower of the two, not their sum). Only
    HTTP happens on this thread; the database stays with the run's thread and its session.
    """

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-sender")
        self._queue: deque[tuple[_Chunk, Future[list[SendResult]]]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, chunk: _Chunk) -> None:
        self._queue.append((chunk, self._pool.submit(self._call, chunk)))

    def next(self) -> tuple[_Chunk, list[SendResult]]:
        """The oldest chunk and its answers (waits for them)."""
        chunk, answered = self._queue.popleft()
        return chunk, answered.result()

    def _call(self, chunk: _Chunk) -> list[SendResult]:
        if not chunk.fits:
            return []
        with self._app.app_context():  # the providers read settings (categories, receipt keys)
            return _send(chunk.provider, [push.message for push in chunk.pushes[: chunk.fits]])

    def close(self) -> None:
        # Chunks not sent yet stay claimed: their rows come back when the lease ends.
        self._pool.shutdown(wait=True, cancel_futures=True)


def deliver_due(
    now: datetime | None = None, *, limit: int | None = None, budget_seconds: float = DELIVERY_BUDGET_SECONDS
) -> DeliveryStats:
    """Deliver due rows, batch after batch, until none is left or the time budget is spent.

    Commits as it goes (claims, then outcomes per provider call), so call it as a unit of work
    of its own (a task), not inside a request's transaction. ``now`` fixes the clock (tests).
    """
    return _deliver(now, limit=limit, budget_seconds=budget_seconds, max_claims=None)


def deliver_batch(now: datetime | None = None, *, limit: int) -> DeliveryStats:
    """Claim at most ``limit`` due rows once, push them, record the outcomes."""
    return _deliver(now, limit=limit, budget_seconds=float("inf"), max_claims=1)


def _deliver(
    now: datetime | None, *, limit: int | None, budget_seconds: float, max_claims: int | None
) -> DeliveryStats:
    limit = limit or int(current_app.config["PUSH_BATCH_SIZE"])
    started = time.monotonic()
    stats = DeliveryStats()
    run = _Run()
    batches = 0  # claims made by this run
    more_due = True
    sender = _Sender(current_app._get_current_object())  # type: ignore[attr-defined]  # the proxy's own, untyped
    try:
        while True:
            while more_due and len(sender) < _AHEAD:
                if max_claims is not None and batches >= max_claims:
                    more_due = False
                elif batches and time.monotonic() - started >= budget_seconds:
                    stats.more, more_due = True, False
                else:
                    batches += 1
                    run.made_due = False
                    claimed, chunks = _claim_batch(now or utcnow(), limit, stats)
                    more_due = claimed == limit
                    for chunk in chunks:
                        sender.submit(chunk)
            if len(sender):
                chunk, results = sender.next()
                for later in _record(chunk, results, run, stats):
                    sender.submit(later)
                more_due = more_due or (run.made_due and not stats.more)
                continue
            if run.made_due and not stats.more and (max_claims is None or batches < max_claims):
                more_due = True
                continue
            if (
                max_claims is None
                and not stats.claimed
                and not run.probed
                and _probe_after_outage(now or utcnow(), run, stats)
            ):
                more_due = True
                continue
            return stats
    finally:
        sender.close()


def _claim_batch(now: datetime, limit: int, stats: DeliveryStats) -> tuple[int, list[_Chunk]]:
    """Claim at most ``limit`` due rows and make them into provider chunks (their caps reserved);
    rows with nothing to send are settled at once. Returns how many rows were claimed."""
    config = current_app.config
    by_channel = providers()
    claim = str(uuid.uuid4())
    rows = claims.claim_due(now, limit, claim, timedelta(seconds=int(config["PUSH_LEASE_SECONDS"])))
    stats.claimed += len(rows)
    if not rows:
        commit_batch()
        return 0, []

    writes = Writes()
    pushes: list[tuple[str, Push]] = []
    devices = targets.usable_devices(
        {row.user_id for row in rows}, now - timedelta(days=int(config["DEVICE_STALE_DAYS"])), by_channel
    )
    ranks = targets.preference(config)
    for row in rows:
        if row.attempts >= max_attempts(row.urgent, config):
            # Its earlier runs died while sending (each lost lease counts as a try): give up.
            row.permanent_error = "delivery interrupted: the worker was lost while sending"
            finish(row, now, writes, stats, config)
            continue
        phones = targets.phones(row, devices.get(row.user_id, []), ranks)
        row.waiting = len(phones)
        if not phones:
            finish(row, now, writes, stats, config)
        for first, *fallbacks in phones:
            push = Push(row, first.id, first.refreshed_at, targets.message(row, first.token), fallbacks)
            pushes.append((first.channel, push))
    claims.write(writes, claim, now)
    chunks = _chunks(pushes, by_channel, now, claim)
    # One commit before anything goes out: the lease (other runs now pass these rows over), the
    # settled rows, and the caps' reservations (taken last, so their rows are locked only briefly).
    commit_batch()
    return len(rows), chunks


def _chunks(
    pushes: list[tuple[str, Push]], by_channel: Mapping[str, PushProvider], now: datetime, claim: str
) -> list[_Chunk]:
    """Provider calls for ``pushes``: per channel, urgent first (what still fits under a daily cap
    goes to them), at most ``PUSH_BATCH_SIZE`` each, with what the cap lets through reserved."""
    config = current_app.config
    batch_size = int(config["PUSH_BATCH_SIZE"])
    chunks = []
    for channel in sorted({channel for channel, _ in pushes}):
        of_channel = sorted((push for c, push in pushes if c == channel), key=lambda push: not push.row.urgent)
        for start in range(0, len(of_channel), batch_size):
            part = of_channel[start : start + batch_size]
            # The reservation counts for every worker at once (committed by the caller).
            fits = quotas.reserve(channel, len(part), now, config)
            chunks.append(_Chunk(by_channel[channel], part, fits, now, claim))
    return chunks


def _record(chunk: _Chunk, results: list[SendResult], run: _Run, stats: DeliveryStats) -> list[_Chunk]:
    """Record a chunk's answers; returns the chunks to the next tokens of phones whose token
    turned out dead (their caps reserved)."""
    config = current_app.config
    channel, now = chunk.provider.channel, chunk.now
    stats.messages += len(results)
    answered = any(result.outcome is not Outcome.RETRY for result in results)
    down = bool(results) and not answered and any(result.retry_after is None for result in results)
    if any(result.outcome is Outcome.QUOTA for result in results):
        quotas.exhaust(channel, now, config)  # the vendor's word: nothing more today
    results = results + [SendResult(Outcome.QUOTA, error="daily cap reached")] * (len(chunk.pushes) - chunk.fits)
    reset_at = quotas.next_reset(now, config)
    writes = Writes()
    later: list[tuple[str, Push]] = []
    for push, result in zip(chunk.pushes, results, strict=True):
        # An urgent row (an SOS, a call-out) does not wait out a push service that cannot take it
        # now: the phone's next token is tried at once, and only its answer counts for the row.
        passed_on = bool(push.fallbacks) and push.row.urgent and result.outcome is Outcome.RETRY
        if not passed_on:
            note(push, result, writes, down=down, reset_at=reset_at)
        if push.fallbacks and (passed_on or result.outcome is Outcome.INVALID_TOKEN):
            # The same row goes to the phone's next token (this run); the row still waits for it.
            nxt, *rest = push.fallbacks
            message = targets.message(push.row, nxt.token)
            later.append((nxt.channel, Push(push.row, nxt.id, nxt.refreshed_at, message, rest)))
            continue
        push.row.waiting -= 1
        if push.row.waiting == 0:
            finish(push.row, now, writes, stats, config)
    stats.deactivated += len(writes.dead_devices)
    claims.write(writes, chunk.claim, now)
    chunks = _chunks(later, providers(), now, chunk.claim) if later else []
    commit_batch()
    if answered and not run.recovered:
        recovered = _recover_from_outage(now, run)
        stats.recovered += recovered
        run.made_due = run.made_due or recovered > 0
    return chunks


# --- outages ----------------------------------------------------------------------------------------


def _recover_from_outage(now: datetime, run: _Run) -> int:
    """The service answered: every row an outage held back is due now (urgent ones first, in the
    order they were written). Returns how many; committed, so any worker may take them."""
    t = _notifications
    run.recovered = True
    result = db.session.execute(
        t.update()
        .where(
            t.c.push_status == PushStatus.PENDING,
            t.c.push_wait == PushWait.OUTAGE,
            t.c.push_due_at > now,
            t.c.push_claim.is_(None),
        )
        .values(
            push_due_at=sa.case(
                (sa.and_(t.c.urgent, t.c.created_at < now), t.c.created_at),
                else_=sa.literal(now, t.c.push_due_at.type),
            ),
            push_wait=None,
        )
        .execution_options(synchronize_session=False)
    )
    commit_batch()
    recovered = rowcount(result)
    if recovered:
        log.info("push service answering again: %d held-back notifications due now", recovered)
    return recovered


def _probe_after_outage(now: datetime, run: _Run, stats: DeliveryStats) -> bool:
    """Nothing was due: if rows wait on an outage, ask each push service whether it is back (a
    dry run, delivered to nobody) and, if one answers, make them due. True if it did."""
    run.probed = True
    t = _notifications
    waiting = db.session.scalar(
        sa.select(t.c.id).where(t.c.push_status == PushStatus.PENDING, t.c.push_wait == PushWait.OUTAGE).limit(1)
    )
    commit_batch()
    if waiting is None:
        return False
    stats.probes += 1
    # Not the recording providers (channels without credentials): they never go down, so their
    # "yes" says nothing about the service the rows wait for.
    senders = [p for p in providers().values() if not isinstance(p, RecordingProvider)]
    if not any(provider.probe() for provider in senders):
        return False
    recovered = _recover_from_outage(now, run)
    stats.recovered += recovered
    return recovered > 0


def _outbox_samples() -> list[Sample]:
    """For /metrics, from the database (the same whichever process answers)."""
    t, now = _notifications, utcnow()
    pending = t.c.push_status == PushStatus.PENDING
    overdue = db.session.scalar(
        sa.select(sa.func.count()).where(pending, t.c.push_due_at < now - timedelta(seconds=60))
    )
    outage = db.session.scalar(sa.select(sa.func.count()).where(pending, t.c.push_wait == PushWait.OUTAGE))
    due, oldest = db.session.execute(
        sa.select(sa.func.count(), sa.func.min(t.c.push_due_at)).where(pending, t.c.push_due_at <= now)
    ).one()
    oldest_age = max((now - _as_utc(oldest)).total_seconds(), 0.0) if oldest is not None else 0.0
    return [
        Sample("shouwang_push_overdue", "Pushes due more than a minute ago and not sent yet", overdue or 0),
        Sample("shouwang_push_waiting_on_outage", "Pushes held back by a push-service outage", outage or 0),
        Sample("shouwang_outbox_due", "Notifications whose push is due now and not sent yet (the backlog)", due or 0),
        Sample(
            "shouwang_outbox_oldest_due_age_seconds",
            "How long the oldest due, unsent push has been due (0: none due)",
            oldest_age,
        ),
    ]


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored in UTC); PostgreSQL aware ones.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


register_gauges(_outbox_samples)


def _send(provider: PushProvider, messages: Sequence[PushMessage]) -> list[SendResult]:
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
