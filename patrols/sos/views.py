"""The SOS as shown: to its volunteer, in the responders' list, and in full to a responder; the lists.

Positions are sensitive personal information (PIPL art. 28): the responders' list carries none, and
every read of the full SOS by someone other than its volunteer is logged
(``patrols.privacy.service.record_location_read``) in the reading request's transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from accounts.models import User
from core.auth import Caller
from core.db import utcnow
from core.errors import ValidationFailed
from core.extensions import db
from core.pagination import INVALID_CURSOR, decode_cursor, encode_cursor, paginate
from grids.models import Area
from grids.queries import in_subtree, scope_root
from patrols.privacy.service import SOS_READ, record_location_read
from patrols.sos.models import LIVE_SOS, SosAlert, SosEvent, SosEventKind, SosPosition, SosRecipient, SosStatus
from patrols.sos.service import own_sos, raiser_user_id, sos_for
from volunteers.models import Volunteer
from volunteers.service import own_volunteer

# --- pieces --------------------------------------------------------------------------------------


def _events(sos_id: int) -> list[SosEvent]:
    return list(db.session.scalars(sa.select(SosEvent).where(SosEvent.sos_id == sos_id).order_by(SosEvent.at, SosEvent.id)))


def _event_view(event: SosEvent) -> dict[str, Any]:
    return {
        "id": event.id, "kind": event.kind, "at": event.at, "actor_id": event.actor_id,
        "level": event.level, "response": event.response, "note": event.note,
    }


def _acknowledgements(events: list[SosEvent]) -> list[dict[str, Any]]:
    """Who answered, in order: name, role, response, time."""
    answered = [event for event in events if event.kind == SosEventKind.ACKNOWLEDGED]
    ids = {event.actor_id for event in answered if event.actor_id is not None}
    people = {
        row.id: row
        for row in db.session.execute(sa.select(User.id, User.display_name, User.role).where(User.id.in_(sorted(ids))))
    } if ids else {}
    views = []
    for event in answered:
        person = people.get(event.actor_id) if event.actor_id is not None else None
        views.append({
            "user_id": event.actor_id,
            "name": person.display_name if person else None,
            "role": person.role if person else None,
            "response": event.response,
            "note": event.note,
            "at": event.at,
        })
    return views


def _base_view(sos: SosAlert) -> dict[str, Any]:
    return {
        "id": sos.id, "status": sos.status, "level": sos.level, "grid_id": sos.grid_id,
        "grid_name": _grid_name(sos.grid_id), "located_by": sos.located_by, "note": sos.note,
        "device_time": sos.device_at, "received_at": sos.received_at, "acknowledged_at": sos.acknowledged_at,
        "ended_at": sos.ended_at, "end_note": sos.end_note,
    }


def _grid_name(grid_id: int) -> str:
    return db.session.execute(sa.select(Area.name).where(Area.id == grid_id)).scalar_one()


def false_alarms(volunteer_ids: list[int]) -> dict[int, int]:
    """Volunteer id → their SOS cancelled (false alarms) in the last SOS_FALSE_ALARM_DAYS."""
    if not volunteer_ids:
        return {}
    since = utcnow() - timedelta(days=current_app.config["SOS_FALSE_ALARM_DAYS"])
    rows = db.session.execute(
        sa.select(SosAlert.volunteer_id, sa.func.count())
        .where(
            SosAlert.volunteer_id.in_(sorted(set(volunteer_ids))),
            SosAlert.status == SosStatus.CANCELLED,
            SosAlert.ended_at >= since,
        )
        .group_by(SosAlert.volunteer_id)
    ).tuples()
    return dict(rows.all())


def _positions(sos: SosAlert) -> list[dict[str, Any]]:
    """The alert's position, then the positions sent while it was open, in device-time order."""
    found = []
    if sos.lat is not None and sos.lon is not None:
        found.append({"lat": sos.lat, "lon": sos.lon, "accuracy_m": sos.accuracy_m, "time": sos.device_at, "source": "alert"})
    rows = db.session.scalars(sa.select(SosPosition).where(SosPosition.sos_id == sos.id).order_by(SosPosition.device_at))
    found += [
        {"lat": row.lat, "lon": row.lon, "accuracy_m": row.accuracy_m, "time": row.device_at, "source": "update"}
        for row in rows
    ]
    return sorted(found, key=lambda position: position["time"])


# --- the volunteer's own -------------------------------------------------------------------------


def my_view(sos: SosAlert) -> dict[str, Any]:
    events = _events(sos.id)
    return _base_view(sos) | {
        "client_id": sos.client_id, "lat": sos.lat, "lon": sos.lon, "accuracy_m": sos.accuracy_m,
        "acknowledgements": _acknowledgements(events), "events": [_event_view(event) for event in events],
    }


def my_sos(caller: Caller, sos_id: int) -> dict[str, Any]:
    return my_view(own_sos(caller, sos_id))


def my_list(caller: Caller, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """The caller's own SOS, newest first."""
    volunteer = own_volunteer(caller)
    stmt = sa.select(SosAlert).where(SosAlert.volunteer_id == volunteer.id)
    page = paginate(stmt, [SosAlert.id], limit=limit, cursor=cursor, descending=True)
    return {"items": [_base_view(sos) for sos in page["items"]], "next_cursor": page["next_cursor"]}


# --- responders ----------------------------------------------------------------------------------


def _list_item(sos: SosAlert, volunteer: Volunteer, alarms: int) -> dict[str, Any]:
    return _base_view(sos) | {
        "volunteer_id": sos.volunteer_id, "volunteer_name": volunteer.real_name,
        "false_alarms": alarms, "escalate_at": sos.escalate_at,
    }


def detail_for(caller: Caller, sos: SosAlert) -> dict[str, Any]:
    """The full SOS for a responder (or its volunteer); a read by anyone else is logged."""
    volunteer = db.session.get_one(Volunteer, sos.volunteer_id)
    if volunteer.user_id != caller.user_id:
        record_location_read(caller, sos.volunteer_id, SOS_READ, sos.area_path, sos_id=sos.id)
    events = _events(sos.id)
    recipients = db.session.scalar(sa.select(sa.func.count()).where(SosRecipient.sos_id == sos.id)) or 0
    return _list_item(sos, volunteer, false_alarms([sos.volunteer_id]).get(sos.volunteer_id, 0)) | {
        "volunteer_phone": volunteer.user.phone,
        "assignment_id": sos.assignment_id,
        "positions": _positions(sos),
        "positions_purged": sos.positions_purged_at is not None,
        "recipients_count": recipients,
        "acknowledgements": _acknowledgements(events),
        "events": [_event_view(event) for event in events],
    }


def responder_sos(caller: Caller, sos_id: int) -> dict[str, Any]:
    return detail_for(caller, sos_for(caller, sos_id))


def _live_rank() -> sa.ColumnElement[int]:
    return sa.case((SosAlert.status.in_(LIVE_SOS), 0), else_=1)


def responder_list(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """SOS in the caller's subtree (or ``area_id``'s): live first, then newest first."""
    root = scope_root(caller, args.get("area_id"))
    rank = _live_rank()
    stmt = sa.select(SosAlert, rank).where(in_subtree(SosAlert.area_path, root))
    if args.get("status"):
        stmt = stmt.where(SosAlert.status.in_(args["status"]))
    if args.get("cursor"):
        after_rank, after_id = _cursor(args["cursor"])
        stmt = stmt.where(sa.or_(rank > after_rank, sa.and_(rank == after_rank, SosAlert.id < after_id)))
    limit = args["limit"]
    rows = db.session.execute(stmt.order_by(rank, SosAlert.id.desc()).limit(limit + 1)).tuples().all()
    page = rows[:limit]
    volunteers = {
        volunteer.id: volunteer
        for volunteer in db.session.scalars(
            sa.select(Volunteer).where(Volunteer.id.in_(sorted({sos.volunteer_id for sos, _ in page})))
        )
    } if page else {}
    alarms = false_alarms(list(volunteers))
    items = [_list_item(sos, volunteers[sos.volunteer_id], alarms.get(sos.volunteer_id, 0)) for sos, _ in page]
    next_cursor = encode_cursor([page[-1][1], page[-1][0].id]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def _cursor(cursor: str) -> tuple[int, int]:
    values = decode_cursor(cursor, 2)
    if not all(type(value) is int and 0 <= value < 2**63 for value in values):
        raise ValidationFailed(errors={"cursor": [INVALID_CURSOR]})
    return values[0], values[1]


def is_raiser(caller: Caller, sos: SosAlert) -> bool:
    return raiser_user_id(sos) == caller.user_id
