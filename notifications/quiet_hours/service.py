"""Quiet hours: when a non-urgent push may go out, in the user's own time zone, and a user's own
quiet hours (the configured default until they set them). Services only flush.

The rule (:func:`push_due_at`) needs no database; :mod:`notifications.service` applies it to each
notification it writes, broadcasts to each combination of settings among their recipients.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from accounts.models import User
from core.db import dialect_insert, utcnow
from core.extensions import db
from grids.models import Area
from notifications.quiet_hours.models import NotificationSettings

if TYPE_CHECKING:  # the schema module imports parse_hhmm from here
    from notifications.quiet_hours.schemas import QuietHoursUpdateInput

DAY_MINUTES = 24 * 60


def parse_hhmm(value: str) -> int:
    """Minutes after midnight of "HH:MM" (00:00–23:59); ValueError otherwise."""
    parsed = time.fromisoformat(value)
    if len(value) != 5 or parsed.second or parsed.microsecond:
        raise ValueError(f"not HH:MM: {value!r}")
    return parsed.hour * 60 + parsed.minute


def in_quiet_hours(minute_of_day: int, start: int, end: int) -> bool:
    """Whether a local minute of the day falls in [start, end); start > end spans midnight."""
    if start == end:
        return False
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


def push_due_at(now: datetime, tz: ZoneInfo, start: int, end: int, *, urgent: bool, enabled: bool = True) -> datetime:
    """When a push written ``now`` may be sent: now, or (non-urgent, in quiet hours) their end.

    ``now`` is aware (UTC); the result is aware UTC. The end is the next local wall-clock ``end``
    after ``now``; on a day whose clocks change it is still that wall-clock time.
    """
    if urgent or not enabled:
        return now
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if not in_quiet_hours(minute, start, end):
        return now
    wake = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0, tzinfo=None)
    if minute >= end:
        wake += timedelta(days=1)
    return wake.replace(tzinfo=tz).astimezone(now.tzinfo)


def default_quiet_hours() -> tuple[int, int]:
    """(start, end) in minutes after local midnight, from QUIET_HOURS_START/END."""
    return parse_hhmm(current_app.config["QUIET_HOURS_START"]), parse_hhmm(current_app.config["QUIET_HOURS_END"])


# --- a user's quiet hours ---------------------------------------------------------------------


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def quiet_hours(user_id: int) -> dict[str, Any]:
    """The user's quiet hours (the configured default until they set their own) and time zone."""
    settings = db.session.get(NotificationSettings, user_id, populate_existing=True)
    start, end = default_quiet_hours()
    return {
        "quiet_hours_enabled": settings.quiet_hours_enabled if settings else True,
        "quiet_start": _hhmm(settings.quiet_start_minute if settings else start),
        "quiet_end": _hhmm(settings.quiet_end_minute if settings else end),
        "timezone": db.session.scalar(sa.select(Area.timezone).join(User).where(User.id == user_id)),
        "is_default": settings is None,
        "updated_at": settings.updated_at if settings else None,
    }


def set_quiet_hours(user_id: int, data: QuietHoursUpdateInput, now: datetime | None = None) -> dict[str, Any]:
    """Replace the user's quiet hours (``quiet_start``/``quiet_end`` in minutes); an upsert."""
    now = now or utcnow()
    values = {
        "user_id": user_id, "quiet_hours_enabled": data["quiet_hours_enabled"],
        "quiet_start_minute": data["quiet_start"], "quiet_end_minute": data["quiet_end"], "updated_at": now,
    }
    stmt = dialect_insert(NotificationSettings.__table__).values(**values)
    db.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id"], set_={k: v for k, v in values.items() if k != "user_id"}
        )
    )
    return quiet_hours(user_id)
