"""Writing notifications (``notify``, ``write``): what every feature that tells someone shares.

Services only flush; the request or task commits. :func:`notify` (one kind to many users) and
:func:`write` (many items; the listeners call it when the transaction commits) run inside the
transaction of the change that causes a notification: the rows are the inbox and the push outbox
at once, and :func:`notifications.delivery.tasks.wake_sender` asks for delivery after the commit.
If the change rolls back, the rows (and the wake-up) go with it. Each row's push waits for the end
of its user's quiet hours unless it is urgent (:func:`due_at_for_users`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from grids.models import Area
from notifications import texts
from notifications.delivery.tasks import wake_sender
from notifications.models import Notification, NotificationDedupe, PushStatus
from notifications.quiet_hours.models import NotificationSettings
from notifications.quiet_hours.service import default_quiet_hours, push_due_at

#: Ids per IN list and rows per INSERT (well under SQLite's and PostgreSQL's parameter limits).
CHUNK = 1000


@dataclass(frozen=True)
class Item:
    """One notification to write for one user. Items of one event share ``params`` and ``data``
    (rendered once per language)."""

    user_id: int
    kind: str
    params: dict[str, Any]
    data: dict[str, Any]
    urgent: bool = False
    dedupe_key: str | None = None
    # Quiet hours may hold a non-urgent push back, but not past this (say, shortly before a shift).
    deadline: datetime | None = None
    broadcast_id: int | None = None


Rule = tuple[str, int, int, bool]  # time zone, quiet start, quiet end, enabled


def _recipients(user_ids: Iterable[int]) -> dict[int, tuple[str, Rule]]:
    """Active users among ``user_ids``: their language and quiet-hours rule."""
    ids = sorted({int(user_id) for user_id in user_ids})
    default_start, default_end = default_quiet_hours()
    found: dict[int, tuple[str, Rule]] = {}
    for first in range(0, len(ids), CHUNK):
        rows = db.session.execute(
            sa.select(
                User.id, User.locale, Area.timezone, NotificationSettings.quiet_hours_enabled,
                NotificationSettings.quiet_start_minute, NotificationSettings.quiet_end_minute,
            )
            .join(Area, Area.id == User.area_id)
            .outerjoin(NotificationSettings, NotificationSettings.user_id == User.id)
            .where(User.id.in_(ids[first : first + CHUNK]), User.is_active.is_(True))
        )
        for row in rows:
            if row.quiet_hours_enabled is None:  # no settings row: the configured default
                rule = (row.timezone, default_start, default_end, True)
            else:
                rule = (row.timezone, row.quiet_start_minute, row.quiet_end_minute, row.quiet_hours_enabled)
            found[row.id] = (texts.language_of(row.locale), rule)
    return found


class _DueTimes:
    """push_due_at per quiet-hours rule, computed once per rule for one moment."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._held: dict[Rule, datetime] = {}

    def __call__(self, rule: Rule, urgent: bool, deadline: datetime | None = None) -> datetime:
        if urgent:
            return self.now
        if rule not in self._held:
            zone, start, end, enabled = rule
            self._held[rule] = push_due_at(self.now, texts.zone(zone), start, end, urgent=False, enabled=enabled)
        due = self._held[rule]
        return self.now if deadline is not None and due > deadline else due


def due_at_for_users(user_ids: Sequence[int], now: datetime, urgent: bool) -> dict[int, datetime]:
    """When a push written ``now`` may go to each user (their quiet hours in their area's zone).

    Users that do not exist or are deactivated are left out.
    """
    due = _DueTimes(now)
    return {user_id: due(rule, urgent) for user_id, (_, rule) in _recipients(user_ids).items()}


def notify(
    user_ids: Sequence[int],
    kind: str,
    params: dict[str, Any],
    data: dict[str, Any],
    *,
    urgent: bool = False,
    dedupe_key: str | None = None,
    now: datetime | None = None,
    deadline: datetime | None = None,
    broadcast_id: int | None = None,
) -> int:
    """Write one notification of ``kind`` per active user; returns how many rows were written.

    Title and body are rendered in each user's language (``texts.render(kind, locale, params)``);
    ``data`` is the app's deep link: ``{"type": kind}`` plus the given ids, all as strings.
    Non-urgent pushes wait for the end of the user's quiet hours, unless that would be later than
    ``deadline``. A ``dedupe_key`` makes it once per user: a second call with the same key writes
    nothing for users who already have it (``ON CONFLICT DO NOTHING``, safe under concurrency).
    """
    return write(
        [
            Item(user_id, kind, params, data, urgent, dedupe_key, deadline, broadcast_id)
            for user_id in dict.fromkeys(int(user_id) for user_id in user_ids)
        ],
        now,
    )


def write(items: Sequence[Item], now: datetime | None = None) -> int:
    """Write many notifications in a few statements (see :func:`notify`); returns rows written.

    Items for deactivated or unknown users are skipped; so is an item whose user already has its
    ``dedupe_key``. Asks for delivery after the commit when anything was written.
    """
    now = now or utcnow()
    recipients = _recipients(item.user_id for item in items)
    due = _DueTimes(now)
    rendered: dict[tuple[int, str, str], tuple[str, str]] = {}
    payloads: dict[tuple[int, str], dict[str, str]] = {}
    rows = []
    for item in items:
        if item.user_id not in recipients:
            continue
        if item.kind not in texts.KINDS:
            raise ValueError(f"unknown notification kind {item.kind!r}")
        language, rule = recipients[item.user_id]
        text_key = (id(item.params), item.kind, language)
        if text_key not in rendered:
            rendered[text_key] = texts.render(item.kind, language, item.params)
        data_key = (id(item.data), item.kind)
        if data_key not in payloads:
            data = {key: str(value) for key, value in item.data.items() if value is not None}
            payloads[data_key] = {"type": item.kind, **data}
        title, body = rendered[text_key]
        rows.append(
            {
                "user_id": item.user_id, "kind": item.kind, "title": title, "body": body,
                "data": payloads[data_key], "urgent": item.urgent, "dedupe_key": item.dedupe_key,
                "broadcast_id": item.broadcast_id, "created_at": now, "push_status": PushStatus.PENDING.value,
                "push_due_at": due(rule, item.urgent, item.deadline), "push_attempts": 0, "push_device_ids": [],
            }
        )
    written = insert_rows(rows)
    if written:
        wake_sender()  # last: it only schedules work for after the commit
    return written


# PostgreSQL: one INSERT … SELECT FROM unnest(arrays) per 5,000 rows. SQLAlchemy's multi-row
# VALUES … RETURNING makes psycopg parse a huge statement per page (seconds for thousands of
# rows), and executemany reports no row count under psycopg's pipeline.
_ARRAY_TYPES = {
    "user_id": "integer", "kind": "text", "title": "text", "body": "text", "data": "jsonb",
    "urgent": "boolean", "dedupe_key": "text", "broadcast_id": "integer", "created_at": "timestamptz",
    "push_status": "text", "push_due_at": "timestamptz", "push_attempts": "integer", "push_device_ids": "jsonb",
}
_UNNEST_INSERT = sa.text(
    f"INSERT INTO notifications ({', '.join(_ARRAY_TYPES)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{name} AS {kind}[])' for name, kind in _ARRAY_TYPES.items())}) "
    "RETURNING id"
)
_JSON_COLUMNS = ("data", "push_device_ids")
_KEY_TYPES = {"user_id": "integer", "dedupe_key": "text", "created_at": "timestamptz"}
_UNNEST_KEYS = sa.text(
    f"INSERT INTO notification_dedupe ({', '.join(_KEY_TYPES)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{name} AS {kind}[])' for name, kind in _KEY_TYPES.items())}) "
    "ON CONFLICT (user_id, dedupe_key) DO NOTHING RETURNING user_id, dedupe_key"
)


def insert_rows(rows: list[dict[str, Any]]) -> int:
    """Insert notification rows (every column of ``_ARRAY_TYPES``); a row whose (user, dedupe key)
    is taken already, by an earlier row or by another writer, is skipped. Returns how many went in.

    The keys go first into ``notification_dedupe`` (``ON CONFLICT DO NOTHING``), and only the rows
    whose key this call got go into ``notifications``: the key table is what a unique index on the
    notifications was before they were partitioned. A writer whose key another transaction holds
    uncommitted waits for it there, and writes nothing if it commits (everything if it rolls back).
    The same statements, in the same order, on both dialects."""
    accepted = _claim_keys(rows)
    rows = [row for row in rows if row["dedupe_key"] is None or accepted.pop((row["user_id"], row["dedupe_key"]), False)]
    return _insert_notifications(rows)


def _claim_keys(rows: list[dict[str, Any]]) -> dict[tuple[int, str], bool]:
    """Insert the rows' (user, dedupe key) pairs that are free; those this call got, each mapped
    to True (popped by the first row that uses it, so a pair twice in ``rows`` is written once)."""
    keys = sorted({(row["user_id"], row["dedupe_key"]): row["created_at"] for row in rows if row["dedupe_key"] is not None}.items())
    # One order (user, key) in every writer: two writers wait for each other's keys, never deadlock.
    got: dict[tuple[int, str], bool] = {}
    for first in range(0, len(keys), 5 * CHUNK):
        page = keys[first : first + 5 * CHUNK]
        values = [{"user_id": user_id, "dedupe_key": key, "created_at": at} for (user_id, key), at in page]
        if db.session.get_bind().dialect.name == "postgresql":
            arrays = {name: [value[name] for value in values] for name in _KEY_TYPES}
            result = db.session.execute(_UNNEST_KEYS, arrays).all()
        else:
            table = NotificationDedupe.__table__
            statement = (
                sqlite.insert(table)
                .on_conflict_do_nothing(index_elements=["user_id", "dedupe_key"])
                .returning(table.c.user_id, table.c.dedupe_key)
            )
            result = db.session.execute(statement, values).all()
        got.update(((user_id, key), True) for user_id, key in result)
    return got


def _insert_notifications(rows: list[dict[str, Any]]) -> int:
    written = 0
    if db.session.get_bind().dialect.name == "postgresql":
        for first in range(0, len(rows), 5 * CHUNK):
            page = rows[first : first + 5 * CHUNK]
            arrays = {
                name: [json.dumps(row[name]) if name in _JSON_COLUMNS else row[name] for row in page]
                for name in _ARRAY_TYPES
            }
            written += len(db.session.execute(_UNNEST_INSERT, arrays).all())
        return written
    table = Notification.__table__
    statement = sqlite.insert(table).returning(table.c.id)
    for first in range(0, len(rows), CHUNK):
        written += len(db.session.execute(statement, rows[first : first + CHUNK]).all())
    return written
