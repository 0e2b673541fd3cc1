"""The hand-written floor of push delivery: the least a durable outbox must do, in plain psycopg.

A yardstick for the vendor push benchmarks (bench/push_vendor.py), never used by the product. It
does what delivering the outbox must do and nothing more, one batch after another, the plain way
(no thread of its own, no ORM): claim a batch of due rows with a lease (``FOR UPDATE SKIP LOCKED``,
committed before sending), read the recipients' devices on the channel, send through the same
provider object ours uses (so the same HTTP calls and the same message bodies), and record every
row as sent with its device in one UPDATE, committed. It handles only what the benchmark produces
(every push accepted, one device per volunteer); what it leaves out — retries, dead tokens, daily
caps, fallbacks, outages — is what ours does beyond the floor.

Against the bare loop (the HTTP calls alone), the floor shows what durability costs; against the
floor, ours shows what our code costs beyond that work.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

CLAIM = """
    WITH due AS MATERIALIZED (
        SELECT id FROM notifications
        WHERE push_status = 'pending' AND push_due_at <= %(now)s
          AND (push_claimed_until IS NULL OR push_claimed_until <= %(now)s)
        ORDER BY push_due_at, urgent DESC, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE notifications AS n SET push_claim = %(claim)s, push_claimed_until = %(until)s
    FROM due WHERE n.id = due.id
    RETURNING n.id, n.user_id, n.kind, n.title, n.body, n.data, n.urgent
"""
DEVICES = """
    SELECT user_id, id, token FROM devices
    WHERE user_id = ANY(%(users)s) AND active AND channel = %(channel)s
"""
RECORD = """
    UPDATE notifications AS n
    SET push_status = 'sent', pushed_at = %(now)s, push_device_ids = jsonb_build_array(f.device_id),
        push_claim = NULL, push_claimed_until = NULL
    FROM unnest(%(ids)s::bigint[], %(devices)s::bigint[]) AS f(id, device_id)
    WHERE n.id = f.id AND n.push_claim = %(claim)s
"""
#: Puts the benchmark's rows back as they were seeded, so the next phase finds the same outbox.
RESET = """
    UPDATE notifications SET push_status = 'pending', push_due_at = %(now)s, push_attempts = 0,
        push_device_ids = '[]', push_error = NULL, push_wait = NULL, pushed_at = NULL,
        push_claim = NULL, push_claimed_until = NULL
    WHERE id = ANY(%(ids)s)
"""


def conninfo(database_url: str) -> str:
    """psycopg's own form of a SQLAlchemy URL."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def deliver(app: Any, channel: str, database_url: str, *, limit: int = 500, provider: Any = None) -> dict[str, Any]:
    """Deliver every due row on ``channel``; returns the messages sent and the seconds taken.
    ``provider``: instead of the channel's own (e.g. one that answers at once, to time the
    database work alone)."""
    from notifications.delivery.push import Outcome, PushMessage, close_providers, providers

    close_providers(app)  # a fresh provider, its token fetch timed, as ours is
    sent = 0
    with app.app_context(), psycopg.connect(conninfo(database_url)) as connection:
        provider = provider or providers(app)[channel]
        started = time.perf_counter()
        while True:
            now = datetime.now(UTC) + timedelta(seconds=1)
            claim = str(uuid.uuid4())
            with connection.transaction():
                rows = connection.execute(
                    CLAIM, {"now": now, "limit": limit, "claim": claim, "until": now + timedelta(minutes=5)}
                ).fetchall()
                if not rows:
                    break
                devices = {
                    user_id: (device_id, token)
                    for user_id, device_id, token in connection.execute(
                        DEVICES, {"users": [row[1] for row in rows], "channel": channel}
                    )
                }
            messages, ids, device_ids = [], [], []
            for ident, user_id, kind, title, body, data, urgent in rows:
                device_id, token = devices[user_id]
                payload = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (data or {}).items()}
                payload.setdefault("type", kind)
                payload["notification_id"] = str(ident)
                messages.append(PushMessage(token, title, body, payload, bool(urgent)))
                ids.append(ident)
                device_ids.append(device_id)
            results = provider.send(messages)
            if any(result.outcome is not Outcome.OK for result in results):
                raise RuntimeError(f"the floor handles accepted pushes only: {results[:3]}")
            with connection.transaction():
                connection.execute(RECORD, {"now": now, "ids": ids, "devices": device_ids, "claim": claim})
            sent += len(messages)
        seconds = time.perf_counter() - started
    return {"messages": sent, "seconds": round(seconds, 3), "per_second": round(sent / seconds, 1) if seconds else 0.0}


def pending(database_url: str) -> list[int]:
    """The rows a phase will deliver (to put back with :func:`reset` after it)."""
    with psycopg.connect(conninfo(database_url)) as connection:
        return [row[0] for row in connection.execute("SELECT id FROM notifications WHERE push_status = 'pending'")]


def reset(database_url: str, ids: list[int]) -> None:
    """Those rows pending again, and the table and its indexes rewritten, so the next phase starts
    on a table as fresh as the first phase had."""
    with psycopg.connect(conninfo(database_url), autocommit=True) as connection:
        connection.execute(RESET, {"now": datetime.now(UTC), "ids": ids})
        connection.execute("VACUUM FULL ANALYZE notifications")  # rewritten: as fresh as the first phase had it
