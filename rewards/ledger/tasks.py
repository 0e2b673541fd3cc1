"""Background work of the ledger: points lapsing (beat runs it every REWARDS_TASKS_MINUTES).

An earning's points lapse at its ``expires_at`` (the rule's "end of year Y + expiry_years"). What
lapses is only what is still unspent of that earning under the ledger's FIFO model
(``ledger.unspent``: spending takes the oldest points first; a reversal or an expiry takes from its
own entry). Each lapse is an ``expiry`` debit with source (``entry``, the earning's id), so running
the task twice — or two workers at once — writes it once; each volunteer is settled under their
balance-row lock, so a redemption at the same moment is either counted before (less lapses) or sees
the lower balance after. An earning with nothing left writes nothing and is looked at again only
while it lapsed within ``EXPIRY_LOOKBACK`` (bounded work; a longer outage is settled by
``expire_points(since=...)``).

It commits per batch of volunteers, like patrols' tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from core.db import utcnow
from core.extensions import db
from core.tasks import celery, periodic
from core.transactions import commit_batch
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, LedgerReason
from rewards.settings import TASKS_INTERVAL

BATCH = 200
#: Earnings lapsed longer ago than this are not looked at again (see the module docstring).
EXPIRY_LOOKBACK = timedelta(days=31)


def _due_credits(now: datetime, since: datetime) -> tuple[Any, tuple[Any, ...]]:
    """Earnings lapsed in (since, now] without their expiry entry yet."""
    expired = orm.aliased(LedgerEntry)
    lapse = sa.select(LedgerEntry.id).where(
        LedgerEntry.source_type == "entry",
        LedgerEntry.source_id == sa.cast(expired.id, sa.String),
        LedgerEntry.reason == LedgerReason.EXPIRY,
    )
    return expired, (
        expired.amount > 0,
        expired.expires_at.is_not(None),
        expired.expires_at <= now,
        expired.expires_at > since,
        ~sa.exists(lapse),
    )


def expire_volunteer(volunteer_id: int, now: datetime, since: datetime) -> int:
    """Write the lapse of each due earning of one volunteer; returns the points lapsed."""
    ledger.lock_balance(volunteer_id)
    entries = ledger.movements(volunteer_id)
    left = ledger.unspent(entries)
    lapsed = 0
    for entry in entries:
        if entry.amount <= 0 or entry.expires_at is None or not since < entry.expires_at <= now:
            continue
        amount = left.get(entry.id, 0)
        if amount <= 0:
            continue
        written = ledger.append(
            volunteer_id, -amount, LedgerReason.EXPIRY, "entry", entry.id,
            note=f"{amount} unspent of {entry.amount} lapsed",
        )
        if written is not None:
            lapsed += amount
    return lapsed


def expire_points(now: datetime | None = None, *, since: datetime | None = None, batch_size: int = BATCH) -> int:
    """Lapse the unspent points of every earning past its expiry; returns the points lapsed."""
    now = now or utcnow()
    since = since or now - EXPIRY_LOOKBACK
    total = 0
    after_id = 0
    while True:
        expired, due = _due_credits(now, since)
        volunteer_ids = db.session.scalars(
            sa.select(expired.volunteer_id)
            .where(*due, expired.volunteer_id > after_id)
            .group_by(expired.volunteer_id)
            .order_by(expired.volunteer_id)
            .limit(batch_size)
        ).all()
        for volunteer_id in volunteer_ids:
            total += expire_volunteer(volunteer_id, now, since)
        commit_batch()
        if len(volunteer_ids) < batch_size:
            return total
        after_id = volunteer_ids[-1]



@periodic(TASKS_INTERVAL)
@celery.task(name="rewards.expire_points")
def expire_points_task() -> int:
    """Lapse unspent points past their expiry date; returns the points lapsed."""
    return expire_points()
