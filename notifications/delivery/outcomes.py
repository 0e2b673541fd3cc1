"""What a delivery run makes of the push services' answers: each row's new state, and retries.

Per device: accepted → remembered in ``push_device_ids`` (a retry goes only to the others); dead
token (UNREGISTERED, invalid) → the device is deactivated; a daily cap reached (``Outcome.QUOTA``,
the vendor's or ours) → the row waits for the cap's reset, no try counted; unavailable/internal/network →
the row is retried after exponential backoff with jitter, or the Retry-After asked for if longer;
after ``PUSH_MAX_ATTEMPTS`` tries it is failed (and stays in the inbox). A row whose recipient has
no usable device is ``no_device``: the inbox is the record, the push only the doorbell. Urgent rows
back off on a short schedule of their own (``PUSH_URGENT_RETRY_*``) with more tries
(``PUSH_URGENT_MAX_ATTEMPTS``). No database here: :mod:`notifications.delivery.claims` claims the
rows and writes what this module decides.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from notifications.delivery.push import Outcome, PushMessage, SendResult
from notifications.models import PushStatus, PushWait

#: Retry-After is honoured up to this long; a longer one is taken as a day.
MAX_RETRY_AFTER_SECONDS = 24 * 3600
_JITTER = random.Random()


@dataclass
class DeliveryStats:
    claimed: int = 0  # rows taken
    messages: int = 0  # pushes handed to a provider
    sent: int = 0  # rows marked sent
    retrying: int = 0  # rows put back for a later try
    failed: int = 0  # rows given up
    no_device: int = 0  # rows whose recipient had no usable device
    deactivated: int = 0  # devices whose token the service declared dead
    recovered: int = 0  # rows an outage held back, made due when the service answered again
    held: int = 0  # rows a daily cap held until its reset
    probes: int = 0  # dry-run sends to learn whether a service that was down is back
    more: bool = False  # stopped by the time budget with rows possibly still due

    def add(self, other: DeliveryStats) -> None:
        for name, value in asdict(other).items():
            if name != "more":
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Row:
    """A claimed notification while its pushes are out."""

    id: int
    user_id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    urgent: bool
    attempts: int
    due_at: datetime
    reached: list[int]
    # The partition key (PostgreSQL): the writes find the row in its own month only.
    created_at: datetime
    waiting: int = 0  # pushes not answered yet
    retry: bool = False
    retry_after: float | None = None
    error: str | None = None
    permanent_error: str | None = None
    asked_to_wait: bool = False  # a Retry-After came with a failure
    in_outage: bool = False  # a failure came in a batch where every push failed
    quota_until: datetime | None = None  # a daily cap held a push: the cap's next reset


@dataclass
class Push:
    row: Row
    device_id: int
    refreshed_at: datetime
    message: PushMessage
    # The phone's other tokens, in the order to try them if this one turns out dead.
    fallbacks: list[Any] = field(default_factory=list)


@dataclass
class Writes:
    rows: list[dict[str, Any]] = field(default_factory=list)
    dead_devices: dict[int, datetime] = field(default_factory=dict)


def retry_delay(
    attempts_before: int, retry_after: float | None, config: Mapping[str, Any], *, urgent: bool = False
) -> timedelta:
    """Exponential backoff with jitter (half to full of base·2^attempts, capped), or Retry-After if
    longer; urgent rows on their own, shorter schedule."""
    prefix = "PUSH_URGENT_RETRY" if urgent else "PUSH_RETRY"
    base = float(config[f"{prefix}_BASE_SECONDS"])
    ceiling = float(config[f"{prefix}_MAX_SECONDS"])
    seconds = min(ceiling, base * 2 ** min(attempts_before, 32)) * _JITTER.uniform(0.5, 1.0)
    if retry_after is not None:
        seconds = max(seconds, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return timedelta(seconds=seconds)


def max_attempts(urgent: bool, config: Mapping[str, Any]) -> int:
    """Tries before a row is failed: urgent rows retry sooner, so they get more tries."""
    return int(config["PUSH_URGENT_MAX_ATTEMPTS" if urgent else "PUSH_MAX_ATTEMPTS"])


def note(push: Push, result: SendResult, writes: Writes, *, down: bool, reset_at: datetime | None = None) -> None:
    """``reset_at``: the next reset of the push's channel's daily cap (for ``Outcome.QUOTA``)."""
    row = push.row
    if result.outcome is Outcome.QUOTA:
        assert reset_at is not None, "a quota answer needs its channel's reset"
        row.quota_until = max(row.quota_until or reset_at, reset_at)
        row.error = result.error or "daily quota reached"
    elif result.outcome is Outcome.OK:
        row.reached.append(push.device_id)
    elif result.outcome is Outcome.INVALID_TOKEN:
        writes.dead_devices[push.device_id] = push.refreshed_at
    elif result.outcome is Outcome.RETRY:
        row.retry = True
        row.error = result.error
        row.in_outage = row.in_outage or down
        if result.retry_after is not None:
            row.asked_to_wait = True
            row.retry_after = max(row.retry_after or 0.0, result.retry_after)
    else:
        row.permanent_error = result.error


def finish(row: Row, now: datetime, writes: Writes, stats: DeliveryStats, config: Mapping[str, Any]) -> None:
    """The row's new state once every push of this run is answered."""
    status, due_at, attempts, pushed_at, wait = PushStatus.PENDING, row.due_at, row.attempts, None, None
    error = row.error or row.permanent_error
    if row.retry and row.attempts + 1 < max_attempts(row.urgent, config):
        attempts = row.attempts + 1
        due_at = now + retry_delay(row.attempts, row.retry_after, config, urgent=row.urgent)
        wait = (
            PushWait.RETRY_AFTER if row.asked_to_wait else PushWait.OUTAGE if row.in_outage else PushWait.BACKOFF
        )
        stats.retrying += 1
    elif row.quota_until is not None:
        # Held by a daily cap: no try counted, never failed for it; due at the reset (urgent
        # first then, by the claim's order). Devices already reached are kept, as for a retry.
        due_at, wait = row.quota_until, PushWait.QUOTA
        stats.held += 1
    elif row.reached:
        # Accepted for at least one device (any device still failing after the last try is given up).
        status, pushed_at = PushStatus.SENT, now
        attempts = row.attempts + (1 if row.retry else 0)
        stats.sent += 1
    elif row.retry or row.permanent_error:
        status, attempts = PushStatus.FAILED, row.attempts + (1 if row.retry else 0)
        stats.failed += 1
    else:
        status = PushStatus.NO_DEVICE  # none, or every one of them turned out dead
        stats.no_device += 1
    writes.rows.append({
        "row_id": row.id, "row_created_at": row.created_at, "status": status, "due_at": due_at, "attempts": attempts,
        "device_ids": row.reached, "error": error[:200] if error else None, "pushed_at": pushed_at,
        "wait": wait,
    })  # fmt: skip
