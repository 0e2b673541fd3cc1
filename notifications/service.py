"""Notifications: writing them (``notify``), the inbox and push devices (settings: ``settings.py``).

Services only flush; the request or task commits. :func:`notify` (one kind to many users) and
:func:`write` (many items; the listeners call it when the transaction commits) run inside the
transaction of the change that causes a notification: the rows are the inbox and the push outbox
at once, and :func:`notifications.outbox.wake_sender` asks for delivery after the commit. If the
change rolls back, the rows (and the wake-up) go with it.

Devices: one row per push token (``token_hash`` is unique), so a token that comes back under another
user *moves*: the row's ``user_id`` changes and ``registered_at`` restarts. The previous user's
pushes are never sent to it afterwards, because delivery reads a user's devices when it sends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from accounts.models import User
from core import i18n
from core.db import utcnow
from core.errors import NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from notifications import outbox, texts
from notifications.models import Device, Notification, NotificationSettings, PushStatus
from notifications.quiet_hours import parse_hhmm, push_due_at

#: Ids per IN list and rows per INSERT (well under SQLite's and PostgreSQL's parameter limits).
CHUNK = 1000
#: A user's active devices beyond this many (least recently refreshed first) are retired, so a
#: buggy or hostile client cannot make one notification fan out to thousands of tokens.
MAX_ACTIVE_DEVICES = 10

i18n.register_titles(
    {
        "device_not_found": ("设备不存在", "Device not found"),
        "notification_not_found": ("通知不存在", "Notification not found"),
    }
)
i18n.register_messages(
    {
        "Device not found.": "设备不存在。",
        "Notification not found.": "通知不存在。",
    }
)


# --- writing notifications -------------------------------------------------------------------


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


def default_quiet_hours() -> tuple[int, int]:
    """(start, end) in minutes after local midnight, from QUIET_HOURS_START/END."""
    return parse_hhmm(current_app.config["QUIET_HOURS_START"]), parse_hhmm(current_app.config["QUIET_HOURS_END"])


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


def dialect_insert(table: sa.Table) -> Any:
    """PostgreSQL's or SQLite's INSERT (both have ON CONFLICT, which plain ``sa.insert`` lacks)."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


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
    written = _insert_rows(rows)
    if written:
        outbox.wake_sender()  # last: it only schedules work for after the commit
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
    "ON CONFLICT (user_id, dedupe_key) DO NOTHING RETURNING id"
)
_JSON_COLUMNS = ("data", "push_device_ids")


def _insert_rows(rows: list[dict[str, Any]]) -> int:
    """Insert notification rows, skipping (user, dedupe key) pairs that exist; returns how many."""
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
    statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["user_id", "dedupe_key"])
    for first in range(0, len(rows), CHUNK):
        written += len(db.session.execute(statement.returning(table.c.id), rows[first : first + CHUNK]).all())
    return written


# --- the inbox -------------------------------------------------------------------------------


def list_inbox(user_id: int, *, unread_only: bool, limit: int, cursor: str | None) -> dict[str, Any]:
    """The user's notifications, newest first."""
    stmt = sa.select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return paginate(stmt, [Notification.id], limit=limit, cursor=cursor, descending=True)


def unread_count(user_id: int) -> int:
    unread = sa.select(sa.func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    return db.session.scalar(unread) or 0


def own_notification(user_id: int, notification_id: int) -> Notification:
    """The user's own notification; another user's is simply not found (never revealed)."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.user_id != user_id:
        raise NotFound("Notification not found.", code="notification_not_found")
    return notification


def mark_read(user_id: int, notification_id: int, now: datetime | None = None) -> Notification:
    """Mark one read; reading it again keeps the first time."""
    notification = own_notification(user_id, notification_id)
    db.session.execute(
        sa.update(Notification)
        .where(Notification.id == notification.id, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(notification)
    return notification


def mark_all_read(user_id: int, up_to_id: int | None = None, now: datetime | None = None) -> int:
    """Mark every unread one read (only ids up to ``up_to_id`` if given); returns how many."""
    stmt = sa.update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if up_to_id is not None:
        stmt = stmt.where(Notification.id <= up_to_id)
    stmt = stmt.values(read_at=now or utcnow()).execution_options(synchronize_session=False)
    return db.session.execute(stmt).rowcount


# --- devices ---------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register_device(user_id: int, data: dict[str, Any], now: datetime | None = None) -> tuple[Device, bool]:
    """Register the phone's token for ``user_id``, or refresh it; returns (device, new for this user).

    One statement (an upsert on the token's hash), so two registrations of one token at once
    cannot both insert: the later one wins the token.
    """
    token = data["token"]
    limit = current_app.config["DEVICE_TOKEN_MAX_LENGTH"]
    if len(token) > limit:
        raise ValidationFailed(errors={"token": [f"Longer than maximum length {limit}."]})
    now = now or utcnow()
    table = Device.__table__
    stmt = dialect_insert(table).values(
        user_id=user_id, token=token, token_hash=token_hash(token), platform=data["platform"],
        channel=data["channel"], app_version=data.get("app_version"), locale=data.get("locale"),
        active=True, registered_at=now, refreshed_at=now,
    )
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["token_hash"],
        set_={
            "user_id": new.user_id, "platform": new.platform, "channel": new.channel,
            "app_version": new.app_version, "locale": new.locale, "active": True,
            "refreshed_at": new.refreshed_at, "deactivated_at": None, "deactivation_reason": None,
            # A token that moved from another user is a new registration for this one.
            "registered_at": sa.case(
                (table.c.user_id == new.user_id, table.c.registered_at), else_=new.registered_at
            ),
        },
    ).returning(table.c.id, table.c.registered_at)
    row = db.session.execute(stmt).one()
    _retire_extra_devices(user_id, now)
    device = db.session.get(Device, row.id, populate_existing=True)
    return device, row.registered_at == now


def _retire_extra_devices(user_id: int, now: datetime) -> None:
    kept = (
        sa.select(Device.id)
        .where(Device.user_id == user_id, Device.active.is_(True))
        .order_by(Device.refreshed_at.desc(), Device.id.desc())
        .limit(MAX_ACTIVE_DEVICES)
    )
    db.session.execute(
        sa.update(Device)
        .where(Device.user_id == user_id, Device.active.is_(True), Device.id.not_in(kept.scalar_subquery()))
        .values(active=False, deactivated_at=now, deactivation_reason="superseded")
        .execution_options(synchronize_session=False)
    )


def list_devices(user_id: int, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """The user's active devices, most recently registered first."""
    stmt = sa.select(Device).where(Device.user_id == user_id, Device.active.is_(True))
    return paginate(stmt, [Device.id], limit=limit, cursor=cursor, descending=True)


def remove_device(user_id: int, device_id: int, now: datetime | None = None) -> None:
    """Stop pushing to one of the user's devices (again is a no-op); another's is not found."""
    device = db.session.get(Device, device_id)
    if device is None or device.user_id != user_id:
        raise NotFound("Device not found.", code="device_not_found")
    _deactivate(sa.and_(Device.id == device.id), "logout", now)


def unregister_token(user_id: int, token: str, now: datetime | None = None) -> bool:
    """Stop pushing to this token if it is the user's and active; False otherwise (never says whose)."""
    return _deactivate(
        sa.and_(Device.token_hash == token_hash(token), Device.user_id == user_id), "logout", now
    ) == 1


def deactivate_user_devices(user_id: int, reason: str, now: datetime | None = None) -> int:
    """Stop pushing to every device of the user (e.g. their last login ended); returns how many."""
    return _deactivate(Device.user_id == user_id, reason, now)


def _deactivate(condition: sa.ColumnElement[bool], reason: str, now: datetime | None) -> int:
    result = db.session.execute(
        sa.update(Device)
        .where(condition, Device.active.is_(True))
        .values(active=False, deactivated_at=now or utcnow(), deactivation_reason=reason[:32])
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
