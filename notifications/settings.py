"""Notification settings: a user's quiet hours and a city's shift reminders. Services only flush."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from accounts.models import User
from core import audit, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import OutOfScope
from core.extensions import db
from grids.models import Area
from grids.queries import get_city
from notifications.models import CityReminderSettings, NotificationSettings
from notifications.service import default_quiet_hours, dialect_insert

i18n.register_messages({"Reminder settings exist for cities only.": "提醒设置仅适用于市级区域。"})


# --- quiet hours ------------------------------------------------------------------------------


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


def set_quiet_hours(user_id: int, data: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
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


# --- city reminder settings ----------------------------------------------------------------------


def reminder_city(caller: Caller, area_id: int, *, write: bool) -> Area:
    """The city whose reminder settings the caller reads or writes.

    Reading: any manager working inside the city (or above it). Writing: staff and admins whose
    area covers the whole city; district staff may not change what their city decided.
    """
    area = get_city(area_id, "Reminder settings exist for cities only.")
    inside = caller.area_path.startswith(area.path)
    if not caller.in_scope(area.path) and (write or not inside):
        raise OutOfScope("The record is outside your area.")
    return area


def reminder_offsets(city_id: int) -> list[int]:
    """Minutes before a shift its volunteers are reminded in this city (largest first)."""
    settings = db.session.get(CityReminderSettings, city_id)
    offsets = settings.offsets_minutes if settings else current_app.config["REMINDER_OFFSETS_MINUTES"]
    return sorted({int(offset) for offset in offsets}, reverse=True)


def reminder_settings(city: Area) -> dict[str, Any]:
    settings = db.session.get(CityReminderSettings, city.id, populate_existing=True)
    return {
        "area_id": city.id,
        "offsets_minutes": reminder_offsets(city.id),
        "is_default": settings is None,
        "updated_by": settings.updated_by if settings else None,
        "updated_at": settings.updated_at if settings else None,
    }


def set_reminder_settings(
    caller: Caller, city: Area, offsets: list[int], now: datetime | None = None
) -> dict[str, Any]:
    """Replace the city's reminder offsets (validated by the schema: 1–4 distinct, 5..10080)."""
    before = reminder_settings(city)
    values = {
        "offsets_minutes": sorted(set(offsets), reverse=True),
        "updated_by": caller.user_id, "updated_at": now or utcnow(),
    }
    stmt = dialect_insert(CityReminderSettings.__table__).values(area_id=city.id, **values)
    db.session.execute(stmt.on_conflict_do_update(index_elements=["area_id"], set_=values))
    audit.record(
        caller, "notifications.reminder_settings", target_type="area", target_id=city.id,
        area_path=city.path, before={"offsets_minutes": before["offsets_minutes"]},
        after={"offsets_minutes": values["offsets_minutes"]},
    )
    return reminder_settings(city)
