"""The inbox: a user's notifications, newest first, and marking them read. Services only flush.

The rows are written by :mod:`notifications.service` (``notify``, ``write``), by reminders and by
broadcasts; each is the inbox item and the push outbox entry at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core import i18n
from core.db import rowcount, utcnow
from core.errors import NotFound
from core.extensions import db
from core.pagination import paginate
from notifications.delivery.receipt_service import delivery_of
from notifications.models import Notification

i18n.register_titles(i18n.title("notification_not_found", "Notification not found"))
i18n.register_messages(i18n.N_("Notification not found."))


def list_inbox(user_id: int, *, unread_only: bool, limit: int, cursor: str | None) -> dict[str, Any]:
    """The user's notifications, newest first."""
    stmt = sa.select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    page = paginate(stmt, [Notification.id], limit=limit, cursor=cursor, descending=True)
    with_delivery(page["items"])
    return page


def with_delivery(notifications: list[Notification]) -> list[Notification]:
    """Each with ``delivery``: the vendors' receipts summed up (None: no receipt came)."""
    found = delivery_of([n.id for n in notifications])
    for notification in notifications:
        notification.delivery = found.get(notification.id)  # type: ignore[attr-defined]
    return notifications


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
        # With created_at: on PostgreSQL only the row's own month is probed.
        .where(Notification.id == notification.id, Notification.created_at == notification.created_at, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(notification)
    return with_delivery([notification])[0]


def mark_all_read(user_id: int, up_to_id: int | None = None, now: datetime | None = None) -> int:
    """Mark every unread one read (only ids up to ``up_to_id`` if given); returns how many."""
    stmt = sa.update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if up_to_id is not None:
        stmt = stmt.where(Notification.id <= up_to_id)
    stmt = stmt.values(read_at=now or utcnow()).execution_options(synchronize_session=False)
    return rowcount(db.session.execute(stmt))
