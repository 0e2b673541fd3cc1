"""Raising an SOS: who may reach one, where it is located, who is alerted at once. No HTTP here.

The responders' steps (acknowledge, cancel, close) and the phone's positions are in
``patrols.sos.responding``; the escalation in ``patrols.sos.escalation``; the views and lists in
``patrols.sos.views``.

Raising is written in the request's own transaction: the alert, its ``raised`` and ``alerted``
events, its recipients and the ``sos_alerted`` signal (whose listener writes the urgent pushes to
the outbox) commit together or not at all. Phones retry, so the client UUID is a unique column:
the same UUID again is the same SOS. A volunteer holds at most one live SOS; the partial unique
index ``uq_sos_alerts_one_live`` decides when two arrive at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import orm
from sqlalchemy.exc import IntegrityError

from accounts.coverage import covering
from accounts.models import User
from core import audit, geo, i18n
from core.auth import Caller, Role
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound
from core.extensions import db
from grids.models import Area
from grids.paths import city_path
from grids.queries import locate_grid
from patrols.models import Patrol
from patrols.sos import signals
from patrols.sos.models import LIVE_SOS, SosAlert, SosEvent, SosEventKind, SosLevel, SosRecipient, SosStatus
from patrols.tracks.models import TrackPoint
from shifts.models import Assignment, AssignmentStatus, Shift, ShiftStatus
from volunteers.models import Volunteer, VolunteerStatus
from volunteers.service import own_volunteer

SOS_NOT_FOUND = i18n.N_("SOS not found.")
#: A nearby volunteer's position is their latest track point this recent, else their check-in's.
RECENT_TRACK = timedelta(minutes=30)

i18n.register_titles(
    i18n.title("sos_not_found", "SOS not found"),
    i18n.title("sos_already_live", "An SOS is already open"),
    i18n.title("sos_not_live", "The SOS has ended"),
)
i18n.register_messages(
    SOS_NOT_FOUND,
    i18n.N_("Only active volunteers can raise an SOS."),
    i18n.N_("You already have an open SOS; send its positions or cancel it."),
    i18n.N_("The SOS has already ended."),
    i18n.N_("This client id belongs to another record."),
)


# --- access --------------------------------------------------------------------------------------


def sos_not_found() -> NotFound:
    """The answer for an SOS id that does not exist, and for one the caller may not reach."""
    return NotFound(SOS_NOT_FOUND, code="sos_not_found")


def sos_not_live() -> Conflict:
    return Conflict("The SOS has already ended.", code="sos_not_live")


def get_sos(sos_id: int, *, reload: bool = False) -> SosAlert:
    sos = db.session.get(SosAlert, sos_id, populate_existing=reload)
    if sos is None:
        raise sos_not_found()
    return sos


def raiser_user_id(sos: SosAlert) -> int:
    return db.session.execute(sa.select(Volunteer.user_id).where(Volunteer.id == sos.volunteer_id)).scalar_one()


def is_recipient(sos_id: int, user_id: int) -> bool:
    return bool(
        db.session.scalar(
            sa.select(sa.exists().where(SosRecipient.sos_id == sos_id, SosRecipient.user_id == user_id))
        )
    )


def manages(caller: Caller, sos: SosAlert) -> bool:
    """Organisers, staff and admins whose subtree holds the SOS's grid (whole path segments)."""
    return caller.is_manager and caller.in_scope(sos.area_path)


def own_sos(caller: Caller, sos_id: int) -> SosAlert:
    """The caller's own SOS; anyone else's is not found, as if it did not exist."""
    sos = get_sos(sos_id)
    if raiser_user_id(sos) != caller.user_id:
        raise sos_not_found()
    return sos


def sos_for(caller: Caller, sos_id: int) -> SosAlert:
    """An SOS the caller may read: their own, one in a manager's subtree, or one they were alerted
    to. Any other is not found, exactly as an id that does not exist."""
    sos = get_sos(sos_id)
    if manages(caller, sos) or is_recipient(sos.id, caller.user_id) or raiser_user_id(sos) == caller.user_id:
        return sos
    raise sos_not_found()


# --- where it is ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    grid: Area
    located_by: str  # shift | position | home_grid
    assignment_id: int | None = None


def _open_patrol() -> tuple[sa.ColumnElement[bool], ...]:
    """Checked in, not checked out, not closed by the task: the predicate of ``ix_patrols_open``
    (``patrols/models.py``), spelled as it is, so the planner may read that index."""
    return (
        Patrol.check_in_client_id.is_not(None),
        Patrol.check_out_client_id.is_(None),
        Patrol.auto_closed.is_(False),
    )


def _duty_assignment(volunteer_id: int, now: datetime) -> Assignment | None:
    """The place the volunteer is on duty for: checked in and not out, else an assigned shift
    under way now. Checked-in first, then the latest start.

    Two reads, each of a few rows whatever the volunteer's history: the patrols open now
    (``ix_patrols_open``, partial), then the places under way by their copies of the shifts'
    times (the range "ends after now" of ``(volunteer_id, shift_ends_at)``, migration 0022). Only
    the places they select are joined to their shifts (the status).
    """
    # All of them (a volunteer has one or two), the latest picked here: an ORDER BY with LIMIT 1
    # would tempt the planner to walk the volunteer's places backwards by start, looking for one.
    checked_in = db.session.scalars(
        sa.select(Assignment)
        .join(Patrol, Patrol.assignment_id == Assignment.id)
        .join(Shift, Shift.id == Assignment.shift_id)
        .where(
            Patrol.volunteer_id == volunteer_id,
            *_open_patrol(),
            Assignment.volunteer_id == volunteer_id,
            Assignment.status.in_((AssignmentStatus.ASSIGNED, AssignmentStatus.ABSENT)),
            Shift.status == ShiftStatus.SCHEDULED,
        )
    ).all()
    if checked_in:
        return max(checked_in, key=_latest_first)
    under_way = db.session.scalars(
        sa.select(Assignment)
        .join(Shift, Shift.id == Assignment.shift_id)
        .where(
            Assignment.volunteer_id == volunteer_id,
            Assignment.shift_ends_at > now,
            Assignment.shift_starts_at <= now,
            Assignment.status == AssignmentStatus.ASSIGNED,
            Shift.status == ShiftStatus.SCHEDULED,
        )
    ).all()
    return max(under_way, key=_latest_first, default=None)


def _latest_first(assignment: Assignment) -> tuple[datetime, int]:
    assert assignment.shift_starts_at is not None  # set by the database on insert (0022)
    return assignment.shift_starts_at, assignment.id


def locate(volunteer: Volunteer, lat: float, lon: float, now: datetime) -> Place:
    """Where help is needed: the grid of the shift the volunteer is on; else the grid of their home
    city that holds the position; else their home grid. Never refused for the position."""
    assignment = _duty_assignment(volunteer.id, now)
    if assignment is not None:
        return Place(assignment.shift.grid, "shift", assignment.id)
    home = volunteer.home_grid
    try:
        grid = locate_grid(lon, lat).grid
    except NotFound:
        grid = None
    if grid is not None and grid.path.startswith(city_path(home.path)):
        return Place(grid, "position")
    return Place(home, "home_grid")


# --- who is alerted ------------------------------------------------------------------------------


def volunteers_on_duty_near(lat: float, lon: float, radius_m: float, now: datetime, *, besides: int) -> list[int]:
    """User ids of volunteers on duty (checked in, not out, shift under way) within ``radius_m``,
    by their latest track point of the last RECENT_TRACK, else their check-in position; never
    ``besides`` (a volunteer id: the raiser).

    The patrols open now are read first, alone (``ix_patrols_open``, partial: a few rows however
    many patrols lie behind); the rest is read for those ids only. In one statement the planner
    cannot know how few they are (forgotten check-outs make "not checked out" common, and it does
    not know that "closed by the task" goes with them), and reads the shifts not ended, the whole
    horizon of the city, to join them by hash.
    """
    open_now = db.session.scalars(
        sa.select(Patrol.id).where(*_open_patrol(), Patrol.volunteer_id != besides)
    ).all()
    if not open_now:
        return []
    latest = (
        sa.select(TrackPoint.patrol_id, sa.func.max(TrackPoint.device_at).label("at"))
        .where(TrackPoint.patrol_id.in_(open_now), TrackPoint.device_at >= now - RECENT_TRACK)
        .group_by(TrackPoint.patrol_id)
        .subquery()
    )
    point = orm.aliased(TrackPoint)
    at_lat = sa.func.coalesce(point.lat, Patrol.check_in_lat)
    at_lon = sa.func.coalesce(point.lon, Patrol.check_in_lon)
    min_lon, min_lat, max_lon, max_lat = geo.box_around(lon, lat, radius_m)
    rows = db.session.execute(
        sa.select(Volunteer.user_id, at_lat, at_lon)
        .select_from(Patrol)
        .join(Shift, Shift.id == Patrol.shift_id)
        .join(Volunteer, Volunteer.id == Patrol.volunteer_id)
        .join(User, User.id == Volunteer.user_id)
        .outerjoin(latest, latest.c.patrol_id == Patrol.id)
        .outerjoin(point, sa.and_(point.patrol_id == Patrol.id, point.device_at == latest.c.at))
        .where(
            Patrol.id.in_(open_now),
            *_open_patrol(),
            Shift.status == ShiftStatus.SCHEDULED,
            Shift.starts_at <= now,
            Shift.ends_at > now,
            Patrol.volunteer_id != besides,
            User.is_active.is_(True),
            # The box narrows in SQL; the great circle decides below.
            at_lat.between(min_lat, max_lat),
            at_lon.between(min_lon, max_lon),
        )
        .order_by(Volunteer.user_id)
    ).tuples()
    return list(
        dict.fromkeys(user_id for user_id, at, on in rows if geo.haversine_m(lat, lon, at, on) <= radius_m)
    )


def _first_recipients(sos: SosAlert, raiser_id: int, now: datetime) -> dict[int, str]:
    """User id → reason: the grid's organisers (its staff when none), the volunteers on duty nearby."""
    cover = covering([sos.grid_id]).get(sos.grid_id)
    found: dict[int, str] = {}
    if cover is not None:
        reason = "organiser" if cover.role == Role.ORGANISER else "staff"
        found.update({user_id: reason for user_id in cover.user_ids})
    assert sos.lat is not None and sos.lon is not None  # just raised: never purged yet
    radius = current_app.config["SOS_RADIUS_M"]
    for user_id in volunteers_on_duty_near(sos.lat, sos.lon, radius, now, besides=sos.volunteer_id):
        found.setdefault(user_id, "nearby")
    found.pop(raiser_id, None)
    return found


def add_event(sos: SosAlert, kind: SosEventKind, actor_id: int | None, at: datetime, **values: Any) -> SosEvent:
    event = SosEvent(sos_id=sos.id, kind=kind, actor_id=actor_id, at=at, data=values.pop("data", {}), **values)
    db.session.add(event)
    return event


def record_step(caller: Caller | None, action: str, sos: SosAlert, **after: Any) -> None:
    """The audit entry of a step (no positions: the audit log is read more widely than the SOS)."""
    audit.record(
        caller, f"sos.{action}", target_type="sos", target_id=sos.id, area_path=sos.area_path,
        after={"status": sos.status, "level": sos.level, **after},
    )


# --- raising -------------------------------------------------------------------------------------


def _by_client_id(client_id: str) -> SosAlert | None:
    return db.session.scalar(
        sa.select(SosAlert).where(SosAlert.client_id == client_id).execution_options(populate_existing=True)
    )


def _live_of(volunteer_id: int) -> SosAlert | None:
    return db.session.scalar(
        sa.select(SosAlert).where(SosAlert.volunteer_id == volunteer_id, SosAlert.status.in_(LIVE_SOS))
    )


def _replay(existing: SosAlert, volunteer: Volunteer) -> SosAlert:
    if existing.volunteer_id != volunteer.id:
        raise Conflict("This client id belongs to another record.", code="client_id_taken")
    return existing


def _already_live() -> Conflict:
    return Conflict("You already have an open SOS; send its positions or cancel it.", code="sos_already_live")


def raise_sos(caller: Caller, data: dict[str, Any]) -> tuple[SosAlert, bool]:
    """Raise an SOS, or return the one raised under ``client_id`` (``created`` False)."""
    volunteer = own_volunteer(caller)
    client_id = str(data["client_id"])
    existing = _by_client_id(client_id)
    if existing is not None:
        return _replay(existing, volunteer), False
    if volunteer.status != VolunteerStatus.ACTIVE:
        raise Forbidden("Only active volunteers can raise an SOS.", code="volunteer_not_active")
    if _live_of(volunteer.id) is not None:
        raise _already_live()
    now = utcnow()
    place = locate(volunteer, data["lat"], data["lon"], now)
    sos = SosAlert(
        volunteer_id=volunteer.id, client_id=client_id, device_at=data["device_time"], received_at=now,
        lat=data["lat"], lon=data["lon"], accuracy_m=data["accuracy_m"], note=data.get("note"),
        assignment_id=place.assignment_id, grid_id=place.grid.id, area_path=place.grid.path,
        located_by=place.located_by, status=SosStatus.OPEN, level=SosLevel.COMMUNITY,
        escalate_at=now + timedelta(minutes=current_app.config["SOS_ACK_MINUTES"]),
        created_at=now, updated_at=now,
    )
    try:
        # A savepoint: the same UUID, or another live SOS of this volunteer, committed meanwhile.
        with db.session.begin_nested():
            db.session.add(sos)
            db.session.flush()
    except IntegrityError:
        existing = _by_client_id(client_id)
        if existing is not None:
            return _replay(existing, volunteer), False
        if _live_of(volunteer.id) is not None:
            raise _already_live() from None
        raise
    add_event(
        sos, SosEventKind.RAISED, caller.user_id, now, level=SosLevel.COMMUNITY, note=sos.note,
        data={"located_by": place.located_by, "mock_location": bool(data.get("mock_location"))},
    )
    recipients = _first_recipients(sos, caller.user_id, now)
    db.session.add_all(
        SosRecipient(sos_id=sos.id, user_id=user_id, reason=reason, level=SosLevel.COMMUNITY, alerted_at=now)
        for user_id, reason in recipients.items()
    )
    add_event(
        sos, SosEventKind.ALERTED, None, now, level=SosLevel.COMMUNITY,
        data={"user_ids": list(recipients), "reasons": {str(user_id): why for user_id, why in recipients.items()}},
    )
    db.session.flush()
    record_step(caller, "raised", sos, located_by=place.located_by, grid_id=sos.grid_id, recipients=len(recipients))
    signals.sos_alerted.send(
        signals.SENDER,
        **signals.SosAlerted(
            sos_id=sos.id, volunteer_id=volunteer.id, grid_id=sos.grid_id, level=SosLevel.COMMUNITY,
            user_ids=list(recipients), lat=data["lat"], lon=data["lon"], accuracy_m=sos.accuracy_m, note=sos.note,
        ),
    )
    return sos, True
