"""Shift reminders: before each assigned shift (by default 24 h and 1 h), each sent once.

Who: every place in status ``assigned`` on a scheduled shift, primary *and* backup: a backup (AB岗)
must be ready to step in at the start, so they are reminded like the primaries. Invited, waitlisted and ended places (withdrawn, removed, cancelled, swapped, absent) get
none, nor do places on cancelled shifts or of deactivated users.

When: a city's offsets (``CityReminderSettings``, else REMINDER_OFFSETS_MINUTES). The offset ``o``
is due once ``now >= starts_at - o`` and while the shift has not begun. Only the nearest due
offset is written: a place taken 30 minutes before the start gets the 1 h reminder, not the 24 h
one as well, and a scheduler that was down for a day does not fire both at once. So offset ``o``
covers the shifts starting in ``(now + next smaller offset, now + o]``, and each run is one
SELECT per (offset list, offset) over the shifts index, however many volunteers the city has.

Once: the dedupe key ``reminder:<assignment>:<offset>`` is unique per user: the rows go in through
``service.insert_rows``, which takes each key in ``notification_dedupe`` first (``ON CONFLICT DO
NOTHING``), so a second run, or two runs at once, write nothing more (on PostgreSQL the second
insert waits for the first transaction and then skips).

Quiet hours: a reminder is not urgent and waits for the end of the recipient's quiet hours
(``service.due_at_for_users``), but a reminder held past the start is useless: when the quiet
hours end only at or after the shift's start, it goes at once, marked urgent (high priority), as
the volunteer has to be up for the shift anyway. The text says the time really left when the push
goes out ("in 15 hours" for a 24 h reminder held until 07:00).

A shift moved after its reminder went out is not reminded again for that offset (the key is per
place and offset); the volunteer hears of the move through ``assignment_changed``.

A city's own offsets (set by its staff and admins) are the end of this module; services only flush.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from accounts.models import User
from core import audit, i18n
from core.auth import Caller
from core.db import dialect_insert, utcnow
from core.errors import OutOfScope
from core.extensions import db
from grids.models import Area
from grids.queries import get_city
from notifications import service, texts
from notifications.delivery.tasks import wake_sender
from notifications.models import NotificationDedupe, PushStatus
from notifications.reminders.models import CityReminderSettings
from shifts.models import Assignment, AssignmentStatus, Shift, ShiftStatus
from volunteers.models import Volunteer

KIND = "shift_reminder"
#: Reminders written per INSERT and users per quiet-hours lookup.
CHUNK = 1000
#: A reminder this many minutes late (scheduler interval, a slow run) still says its offset.
LAG_MINUTES = 5

_grid = aliased(Area, name="grid")

i18n.register_messages(i18n.N_("Reminder settings exist for cities only."))


def dedupe_key(assignment_id: int, offset_minutes: int) -> str:
    return f"reminder:{assignment_id}:{offset_minutes}"


def schedule_due_reminders(now: datetime | None = None) -> int:
    """Write every reminder due at ``now`` that is not written yet; returns how many were written.

    Flushes only (the task commits); wakes the sender after the commit if it wrote any.
    """
    now = now or utcnow()
    written = 0
    for offsets, cities in _offset_groups():
        ordered = sorted({int(offset) for offset in offsets if int(offset) > 0}, reverse=True)
        for index, offset in enumerate(ordered):
            nearer = ordered[index + 1] if index + 1 < len(ordered) else 0
            written += _remind(now, offset, nearer, cities)
    if written:
        wake_sender()
    return written


def _offset_groups() -> list[tuple[tuple[int, ...], sa.ColumnElement[bool]]]:
    """(offsets, condition on the shift's grid) per distinct offset list: cities with their own
    settings, and every other city under the configured default. The city of a grid is the first
    segment of its materialised path."""
    custom: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for city_id, offsets in db.session.execute(
        sa.select(CityReminderSettings.area_id, CityReminderSettings.offsets_minutes)
    ).tuples():
        custom[tuple(offsets or ())].append(f"/{city_id}/")
    default = tuple(current_app.config["REMINDER_OFFSETS_MINUTES"])
    own_prefixes = [prefix for prefixes in custom.values() for prefix in prefixes]
    groups = [(default, sa.not_(_under_any(own_prefixes)) if own_prefixes else sa.true())]
    groups += [(offsets, _under_any(prefixes)) for offsets, prefixes in custom.items()]
    return groups


def _under_any(prefixes: list[str]) -> sa.ColumnElement[bool]:
    return sa.or_(*(_grid.path.startswith(prefix, autoescape=True) for prefix in prefixes))


def _remind(now: datetime, offset: int, nearer: int, cities: sa.ColumnElement[bool]) -> int:
    """Write offset ``offset``'s reminders for the shifts starting in (now + nearer, now + offset]."""
    key = sa.literal("reminder:") + sa.cast(Assignment.id, sa.String) + sa.literal(f":{offset}")
    already = sa.exists().where(NotificationDedupe.user_id == User.id, NotificationDedupe.dedupe_key == key)
    candidates = (
        sa.select(
            Assignment.id.label("assignment_id"), Assignment.role, Shift.id.label("shift_id"),
            Shift.title, Shift.starts_at, Shift.timezone, _grid.name.label("grid_name"),
            User.id.label("user_id"), User.locale,
        )
        .select_from(Assignment)
        .join(Shift, Shift.id == Assignment.shift_id)
        .join(_grid, _grid.id == Shift.grid_id)
        .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
        .join(User, User.id == Volunteer.user_id)
        .where(
            Shift.starts_at > now + timedelta(minutes=nearer),
            Shift.starts_at <= now + timedelta(minutes=offset),
            Shift.status == ShiftStatus.SCHEDULED,
            Assignment.status == AssignmentStatus.ASSIGNED,
            User.is_active.is_(True),
            cities,
            ~already,
        )
        # One order in every run: two runs at once wait on each other's keys instead of deadlocking.
        .order_by(Assignment.id)
    )
    written = 0
    for chunk in _chunks(db.session.execute(candidates).all()):
        written += _write(now, offset, chunk)
    return written


def _chunks(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for first in range(0, len(rows), CHUNK):
        yield rows[first : first + CHUNK]


def _write(now: datetime, offset: int, rows: Sequence[Any]) -> int:
    due_at = service.due_at_for_users([row.user_id for row in rows], now, False)
    rendered: dict[tuple[int, str, str, int], tuple[str, str]] = {}
    values = []
    for row in rows:
        if row.user_id not in due_at:
            continue  # deactivated meanwhile
        due = due_at[row.user_id]
        late = due >= row.starts_at  # quiet hours end too late for this shift: now, and urgent
        push_at = now if late else due
        language = texts.language_of(row.locale)
        lead = shown_lead(offset, row.starts_at - push_at)
        text_key = (row.shift_id, row.role, language, lead)
        if text_key not in rendered:
            rendered[text_key] = texts.render(KIND, language, {
                "shift_title": row.title, "grid_name": row.grid_name, "starts_at": row.starts_at,
                "timezone": row.timezone, "role": row.role, "minutes_before": lead,
            })
        title, body = rendered[text_key]
        values.append({
            "user_id": row.user_id, "kind": KIND, "title": title, "body": body,
            "data": {
                "type": KIND, "shift_id": str(row.shift_id), "assignment_id": str(row.assignment_id),
                "minutes_before": str(offset),
            },
            "urgent": late, "dedupe_key": dedupe_key(row.assignment_id, offset), "broadcast_id": None, "created_at": now,
            "push_status": PushStatus.PENDING.value, "push_due_at": push_at,
            "push_attempts": 0, "push_device_ids": [],
        })
    if not values:
        return 0
    return service.insert_rows(values)


def shown_lead(offset: int, until_start: timedelta) -> int:
    """Minutes to the start as the text says it when the push goes out.

    The offset itself when the push goes on time (within a few minutes of scheduler lag); else the
    real time left (a place taken late, or a push held by quiet hours), in whole hours from two
    hours on, so the text reads "in 3 hours" rather than "in 187 minutes".
    """
    minutes = max(int(until_start.total_seconds() // 60), 1)
    if offset - LAG_MINUTES <= minutes <= offset:
        return offset
    if minutes >= 120:
        return round(minutes / 60) * 60
    return minutes


# --- a city's reminder settings -------------------------------------------------------------


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
