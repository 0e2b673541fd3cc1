"""The outbox's rows in the database: claiming due rows with a lease, and writing what a run made of
them (see :mod:`notifications.delivery.service` for the whole run, and the module docstring there
for why the claim and the writes are shaped as they are)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.extensions import db
from notifications.delivery.outcomes import Row, Writes
from notifications.devices.service import deactivate_dead_tokens
from notifications.models import Notification, PushStatus

_notifications = Notification.__table__


def claim_due(now: datetime, limit: int, claim: str, lease: timedelta) -> list[Row]:
    """Claim at most ``limit`` due rows for ``claim`` until ``now + lease``; the caller commits."""
    rows = [
        Row(
            id=r.id,
            user_id=r.user_id,
            kind=r.kind,
            title=r.title,
            body=r.body,
            data=r.data or {},
            urgent=bool(r.urgent),
            attempts=r.push_attempts,
            due_at=r.push_due_at,
            reached=list(r.push_device_ids or []),
            created_at=r.created_at,
        )
        for r in db.session.execute(claim_statement(now, limit, claim, lease)).all()
    ]
    rows.sort(key=lambda row: (row.due_at, not row.urgent, row.id))
    return rows


def claim_statement(now: datetime, limit: int, claim: str, lease: timedelta) -> sa.Update:
    """The claim's one statement (its query plan is tested: each partition by its index)."""
    t = _notifications
    claimable = sa.and_(
        t.c.push_status == PushStatus.PENDING,
        t.c.push_due_at <= now,
        sa.or_(t.c.push_claimed_until.is_(None), t.c.push_claimed_until <= now),
    )
    due = (
        # With created_at, so the UPDATE probes only each row's own month (PostgreSQL partitions
        # the table by it; matching id alone probes every month's primary key per row).
        sa.select(t.c.id, t.c.created_at)
        .where(claimable)
        # Urgent first among rows due together (a quota's reset releases many at once); the
        # index ix_notifications_push_due has this order, so the claim stops after its batch.
        .order_by(t.c.push_due_at, t.c.urgent.desc(), t.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders nothing and has one writer
        # Evaluated once. As a plain IN (subquery) PostgreSQL may rescan it for each row it
        # updates, and each rescan skips the rows this very statement has just updated and takes
        # the next ones: the LIMIT stopped holding and a run claimed every due row.
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    statement = (
        t.update()
        # Not the conditions again: the CTE's rows stay locked until the commit, so none changed
        # in between, and repeating them made PostgreSQL (with a freshly filled table's stale
        # statistics) scan every due row for each claimed one, 40× slower than this index lookup.
        .where(sa.tuple_(t.c.id, t.c.created_at).in_(sa.select(due.c.id, due.c.created_at)))
        .values(
            push_claim=claim,
            push_claimed_until=now + lease,
            # A lease that ran out means a run died while sending this row: that was a try too, so
            # a row that kills its workers is given up after PUSH_MAX_ATTEMPTS, not sent for ever.
            push_attempts=t.c.push_attempts + sa.case((t.c.push_claim.is_not(None), 1), else_=0),
        )
        .returning(
            t.c.id,
            t.c.user_id,
            t.c.kind,
            t.c.title,
            t.c.body,
            t.c.data,
            t.c.urgent,
            t.c.push_attempts,
            t.c.push_due_at,
            t.c.push_device_ids,
            t.c.created_at,
        )
    )
    return statement


_FINISH = (
    _notifications.update()
    .where(
        _notifications.c.id == sa.bindparam("row_id"),
        _notifications.c.created_at == sa.bindparam("row_created_at"),  # its month only (PostgreSQL)
        _notifications.c.push_claim == sa.bindparam("claim"),
    )
    .values(
        push_status=sa.bindparam("status"),
        push_due_at=sa.bindparam("due_at"),
        push_attempts=sa.bindparam("attempts"),
        push_device_ids=sa.bindparam("device_ids"),
        push_error=sa.bindparam("error"),
        push_wait=sa.bindparam("wait"),
        pushed_at=sa.bindparam("pushed_at"),
        push_claim=None,
        push_claimed_until=None,
    )
)

# PostgreSQL: every row of a provider call in one statement, its values as one JSON document
# (json.dumps is C; psycopg adapts eight parallel arrays of 500 values in Python, at a cost as
# large as the statement's). Hundreds of single-row UPDATEs (even pipelined) cost the run's thread
# more than the push service takes to answer them.
_FINISH_ALL_POSTGRESQL = sa.text("""
    UPDATE notifications AS n
    SET push_status = f.status, push_due_at = f.due_at, push_attempts = f.attempts,
        push_device_ids = f.device_ids, push_error = f.error, push_wait = f.wait,
        pushed_at = f.pushed_at, push_claim = NULL, push_claimed_until = NULL
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS f(
        id bigint, created_at timestamptz, status text, due_at timestamptz, attempts integer, device_ids jsonb, error text,
        wait text, pushed_at timestamptz
    )
    WHERE n.id = f.id AND n.created_at = f.created_at AND n.push_claim = :claim
""")


def _finish(rows: list[dict[str, Any]], claim: str) -> None:
    """Each row's new state. Guarded by the claim: if our lease ran out and another run took a
    row, this changes nothing for it."""
    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(_FINISH, [{**row, "claim": claim} for row in rows])  # SQLite: no round trips
        return
    document = [
        {
            "id": row["row_id"], "created_at": row["row_created_at"].isoformat(), "status": row["status"], "due_at": row["due_at"].isoformat(),
            "attempts": row["attempts"], "device_ids": row["device_ids"], "error": row["error"],
            "wait": row["wait"], "pushed_at": row["pushed_at"].isoformat() if row["pushed_at"] else None,
        }
        for row in rows
    ]  # fmt: skip
    db.session.execute(_FINISH_ALL_POSTGRESQL, {"rows": json.dumps(document), "claim": claim})


def write(writes: Writes, claim: str, now: datetime) -> None:
    """The rows' new states (guarded by the claim) and the dead tokens; the caller commits."""
    if writes.rows:
        _finish(writes.rows, claim)
    # A dead token is dead whoever holds the row, so this is not guarded by the claim.
    deactivate_dead_tokens(writes.dead_devices, "unregistered", now)
