"""Broadcasts: an organiser's or staff member's call-out to the active volunteers of a subtree.

One broadcast writes one notification per recipient in a single ``INSERT … SELECT`` (a city's
100,000 volunteers are one statement, not 100,000), in the same transaction as the broadcast row;
the sender then delivers them from the outbox after the commit.

Quiet hours without a row per recipient in Python: the recipients' distinct (time zone, quiet-hours
settings) combinations are few, so each combination's due time is computed here with
:func:`notifications.quiet_hours.service.push_due_at` and the insert picks it with a ``CASE``. The rule is
the one :func:`notifications.service.due_at_for_users` applies row by row: the user's own settings
row, else the configured default (QUIET_HOURS_START/END), in the time zone of the user's area.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from accounts.models import User
from core import i18n
from core.auth import Caller
from core.db import UTCDateTime, rowcount, utcnow
from core.errors import NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from grids.queries import in_subtree, referenced_area
from notifications.broadcasts.models import Broadcast
from notifications.broadcasts.schemas import BroadcastCreateInput
from notifications.delivery.tasks import wake_sender
from notifications.devices.models import Device
from notifications.models import Notification, PushStatus
from notifications.quiet_hours.models import NotificationSettings
from notifications.quiet_hours.service import parse_hhmm, push_due_at
from volunteers.models import Volunteer, VolunteerKind, VolunteerStatus

KIND = "broadcast"
UNKNOWN_KIND = "Unknown volunteer kind."

i18n.register_titles(i18n.title("broadcast_not_found", "Broadcast not found"))
i18n.register_messages(i18n.N_("Broadcast not found."))

_notifications = Notification.__table__
#: The area whose time zone a recipient's quiet hours are read in (for a volunteer, the home grid).
_user_area = aliased(Area, name="user_area")
_home = aliased(Area, name="home_grid")


# ------------------------------------------------------------------------------ sending


def send(caller: Caller, data: BroadcastCreateInput, now: datetime | None = None) -> tuple[Broadcast, dict[str, int]]:
    """Write the broadcast and one notification per recipient; returns it and who was reached.

    Refusals (nothing written): 422 for an unknown area or kind, 403 out_of_scope for an area
    outside the caller's.
    """
    now = now or utcnow()
    area = referenced_area(data["area_id"], "area_id")
    kinds = data.get("kinds")
    kind_ids = _kind_ids(kinds) if kinds is not None else None
    kinds = list(dict.fromkeys(kinds)) if kinds is not None else None
    caller.ensure_scope(area.path)

    broadcast = Broadcast(
        sender_id=caller.user_id, area_id=area.id, kinds=kinds, title=data["title"], body=data["body"],
        urgent=bool(data["urgent"]), recipient_count=0, created_at=now,
    )
    db.session.add(broadcast)
    db.session.flush()

    recipients = _recipients(area.path, kind_ids)
    due = _push_due_expression(recipients, now, urgent=broadcast.urgent)
    payload = {"type": KIND, "broadcast_id": str(broadcast.id)}
    rows = recipients.with_only_columns(
        User.id,
        sa.literal(KIND, sa.String),
        sa.literal(broadcast.title, sa.String),
        sa.literal(broadcast.body, sa.String),
        sa.literal(payload, _notifications.c.data.type),
        sa.literal(broadcast.urgent, sa.Boolean),
        sa.literal(broadcast.id, sa.Integer),
        sa.literal(now, UTCDateTime),
        sa.literal(PushStatus.PENDING.value, sa.String),
        due,
        sa.literal(0, sa.Integer),
        sa.literal([], _notifications.c.push_device_ids.type),
    )
    written = rowcount(db.session.execute(
        sa.insert(_notifications).from_select(
            [
                "user_id", "kind", "title", "body", "data", "urgent", "broadcast_id", "created_at",
                "push_status", "push_due_at", "push_attempts", "push_device_ids",
            ],
            rows,
        ).execution_options(preserve_rowcount=True)  # kept only for UPDATE/DELETE otherwise (psycopg: -1)
    ))
    broadcast.recipient_count = written
    db.session.flush()
    if written:
        wake_sender()
    return broadcast, reached(broadcast, now)


def _kind_ids(codes: Sequence[str]) -> list[int]:
    """The ids of these kind codes; unknown ones are 422, by their position in the request."""
    found = dict(
        db.session.execute(sa.select(VolunteerKind.code, VolunteerKind.id).where(VolunteerKind.code.in_(codes)))
        .tuples()
        .all()
    )
    unknown = [index for index, code in enumerate(codes) if code not in found]
    if unknown:
        raise ValidationFailed(errors={"kinds": {index: [UNKNOWN_KIND] for index in unknown}})
    return sorted({found[code] for code in codes})


def _recipients(area_path: str, kind_ids: list[int] | None) -> sa.Select:
    """Users of the active volunteers homed in the subtree (of these kinds), with their quiet hours."""
    stmt = (
        sa.select(User.id)
        .select_from(Volunteer)
        .join(User, User.id == Volunteer.user_id)
        .join(_home, _home.id == Volunteer.home_grid_id)
        .join(_user_area, _user_area.id == User.area_id)
        .outerjoin(NotificationSettings, NotificationSettings.user_id == User.id)
        .where(
            Volunteer.status == VolunteerStatus.ACTIVE,
            User.is_active.is_(True),
            in_subtree(_home.path, area_path),
        )
    )
    if kind_ids is not None:
        stmt = stmt.where(Volunteer.kind_id.in_(kind_ids))
    return stmt


def _push_due_expression(recipients: sa.Select, now: datetime, *, urgent: bool) -> sa.ColumnElement[Any]:
    """Each recipient's push_due_at: now, or the end of their quiet hours (see the module docstring)."""
    at_once = sa.literal(now, UTCDateTime)
    if urgent:
        return at_once
    combinations = db.session.execute(
        recipients.with_only_columns(
            _user_area.timezone,
            NotificationSettings.quiet_hours_enabled,
            NotificationSettings.quiet_start_minute,
            NotificationSettings.quiet_end_minute,
        ).distinct()
    ).all()
    config = current_app.config
    default_start, default_end = parse_hhmm(config["QUIET_HOURS_START"]), parse_hhmm(config["QUIET_HOURS_END"])
    held: dict[datetime, list[sa.ColumnElement[bool]]] = {}
    for timezone, enabled, start, end in combinations:
        own: sa.ColumnElement[bool]
        if enabled is None:  # no settings row: the configured default
            own = NotificationSettings.user_id.is_(None)
            enabled, start, end = True, default_start, default_end
        else:
            own = sa.and_(
                NotificationSettings.quiet_hours_enabled.is_(enabled),
                NotificationSettings.quiet_start_minute == start,
                NotificationSettings.quiet_end_minute == end,
            )
        due = push_due_at(now, _zone(timezone), start, end, urgent=False, enabled=enabled)
        if due != now:
            held.setdefault(due, []).append(sa.and_(_user_area.timezone == timezone, own))
    if not held:
        return at_once
    return sa.case(
        *[(sa.or_(*conditions), sa.literal(due, UTCDateTime)) for due, conditions in held.items()],
        else_=at_once,
    )


def _zone(name: str) -> ZoneInfo:
    """An area's zone; a broken name falls back to the default zone, as the service does."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(current_app.config.get("DEFAULT_TIMEZONE") or "Asia/Shanghai")


# ------------------------------------------------------------------------------ reading


def reached(broadcast: Broadcast, now: datetime | None = None) -> dict[str, int]:
    """Recipients written to, and how many of them have an active device refreshed recently."""
    now = now or utcnow()
    fresh_since = now - timedelta(days=current_app.config["DEVICE_STALE_DAYS"])
    has_device = (
        sa.exists()
        .where(Device.user_id == Notification.user_id, Device.active.is_(True), Device.refreshed_at >= fresh_since)
    )
    with_device = db.session.scalar(
        sa.select(sa.func.count()).select_from(Notification).where(Notification.broadcast_id == broadcast.id, has_device)
    )
    return {"recipients": broadcast.recipient_count, "with_device": int(with_device or 0)}


def delivery(broadcast: Broadcast) -> dict[str, int]:
    """How far the push of a broadcast has got: notifications by push status."""
    counts = {status.value: 0 for status in PushStatus}
    rows = db.session.execute(
        sa.select(Notification.push_status, sa.func.count())
        .where(Notification.broadcast_id == broadcast.id)
        .group_by(Notification.push_status)
    ).tuples()
    for status, count in rows:
        counts[status] = int(count)
    return counts


def broadcast_not_found() -> NotFound:
    """The answer for a broadcast id that does not exist, and for one the caller may not reach."""
    return NotFound("Broadcast not found.", code="broadcast_not_found")


def get_for(caller: Caller, broadcast_id: int) -> Broadcast:
    """A broadcast to an area in the caller's scope; any other is 404 broadcast_not_found, as if
    it did not exist."""
    broadcast = db.session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise broadcast_not_found()
    caller.ensure_reach(db.session.get_one(Area, broadcast.area_id).path, broadcast_not_found)
    return broadcast


def list_for(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Broadcasts to areas in the caller's scope (inside ``area_id`` if given), newest first."""
    stmt = sa.select(Broadcast).join(Area, Area.id == Broadcast.area_id).where(in_subtree(Area.path, caller.area_path))
    if args.get("area_id") is not None:
        area = referenced_area(args["area_id"], "area_id")
        caller.ensure_scope(area.path)
        stmt = stmt.where(in_subtree(Area.path, area.path))
    page = paginate(stmt, [Broadcast.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)
    page["items"] = views(page["items"])
    return page


def views(broadcasts: list[Broadcast]) -> list[dict[str, Any]]:
    """Broadcasts as ``BroadcastSchema`` dicts."""
    area_ids = {broadcast.area_id for broadcast in broadcasts}
    areas = {
        row.id: row
        for row in db.session.execute(sa.select(Area.id, Area.name).where(Area.id.in_(area_ids)))
    } if area_ids else {}
    shown = []
    for broadcast in broadcasts:
        area = areas[broadcast.area_id]
        shown.append({
            "id": broadcast.id,
            "area_id": broadcast.area_id,
            "area_name": area.name,
            "sender_id": broadcast.sender_id,
            "kinds": broadcast.kinds,
            "title": broadcast.title,
            "body": broadcast.body,
            "urgent": broadcast.urgent,
            "recipient_count": broadcast.recipient_count,
            "created_at": broadcast.created_at,
        })
    return shown


def view(broadcast: Broadcast, **extra: Any) -> dict[str, Any]:
    return {**views([broadcast])[0], **extra}
