"""The caller's place, read and locked for a phone's event: the assignment with its shift and grid
as plain values, and the patrol an event's ``client_id`` already went into (``service``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute

from core.auth import Caller
from core.errors import Conflict
from core.extensions import db
from grids.models import Area
from patrols.models import Patrol
from patrols.presence.rules import PhoneEvent
from shifts import rules
from shifts.models import Assignment, AssignmentStatus, Shift, ShiftStatus
from shifts.service import assignment_not_found, own_assignment_select
from volunteers.models import Volunteer

#: An ended place still takes a check-in when it ended as a no-show: the phone may have been offline.
_CHECK_IN_STATUSES = (AssignmentStatus.ASSIGNED, AssignmentStatus.ABSENT)


@dataclass(frozen=True, slots=True)
class PlaceGrid:
    """The shift's grid as the geofence reads it (``rules.GridShape``)."""

    id: int
    version: int
    updated_at: datetime
    boundary: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PlaceShift:
    """The place's shift as the rules read it (``rules.ShiftTimes``)."""

    id: int
    status: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    grid: PlaceGrid


@dataclass(frozen=True, slots=True)
class Place:
    """The caller's assignment with its shift, as read under the schedule lock: plain values (no
    entities in the session: the phone's hottest write reads them once and writes by statement)."""

    id: int
    volunteer_id: int
    status: str
    shift: PlaceShift


def _ensure_takes_events(place: Place) -> None:
    if place.shift.status != ShiftStatus.SCHEDULED:
        raise Conflict("The shift has been cancelled.", code="shift_cancelled")
    if place.status not in _CHECK_IN_STATUSES:
        raise Conflict("This place has already ended.", code="assignment_not_live")


def client_id_reused() -> Conflict:
    return Conflict("This client_id was already used for another event.", code="client_id_reused")


def _own_read_and_lock(dialect_name: str) -> sa.Select:
    """The caller's assignment with its shift and grid, the patrol ``:client_id`` went into, and the
    volunteer's schedule lock: one statement (bind ``assignment_id``, ``user_id``, ``client_id``).

    On PostgreSQL the lock comes from a subquery in the FROM clause, taken while the rows are read
    (the caller's own volunteer: the only one whose assignment matches), and the assignment and
    shift rows are then locked ``FOR SHARE``. The statement's snapshot predates the lock, but a row
    locked after a holder of the lock updated and committed it is read again in its newest version
    (READ COMMITTED), so what comes back is what the lock protects, without a second statement to
    read it under the lock (``tests/patrols/test_presence_races.py``). Two traps, both measured by
    that test: in the select list the lock comes too late (PostgreSQL computes the select list after
    locking the rows), and ``FOR KEY SHARE`` keeps the old version of a row whose key did not
    change. Shared locks do not block each other, so check-ins of one shift never wait for each
    other; and none is held while waiting for the schedule lock, so a holder that updates these rows
    never waits for us. SQLite needs none of it: ``BEGIN IMMEDIATE`` serialises every writer.

    Columns, not entities (read into a :class:`Place`): table columns throughout, so the
    statement runs as plain Core on the session's connection.
    """
    patrols, assignments, shifts, areas = (
        Patrol.__table__, Assignment.__table__, Shift.__table__, Area.__table__
    )
    used = (
        sa.select(patrols.c.id)
        .where(
            sa.or_(
                patrols.c.check_in_client_id == sa.bindparam("client_id"),
                patrols.c.check_out_client_id == sa.bindparam("client_id"),
            )
        )
        .scalar_subquery()
    )
    statement = (
        own_assignment_select(
            assignments.c.id, assignments.c.volunteer_id, assignments.c.status,
            shifts.c.id, shifts.c.status, shifts.c.starts_at, shifts.c.ends_at, shifts.c.timezone,
            areas.c.id, areas.c.version, areas.c.updated_at, areas.c.boundary, used,
        )
        .join(shifts, shifts.c.id == assignments.c.shift_id)
        .join(areas, areas.c.id == shifts.c.grid_id)
    )
    if dialect_name == "postgresql":
        owner = Volunteer.__table__.alias("schedule_owner")
        lock = (
            sa.select(rules.schedule_lock_column(owner.c.id, dialect_name).label("taken"))
            .where(owner.c.user_id == sa.bindparam("user_id"))
            .subquery("schedule_lock")
        )
        statement = statement.join(lock, sa.true()).with_for_update(read=True, of=[assignments, shifts])
    return statement


_OWN_READ_AND_LOCK = {name: _own_read_and_lock(name) for name in ("postgresql", "sqlite")}


def _replayed(patrol_id: int, assignment_id: int, client_id: str, column: QueryableAttribute[str | None]) -> Patrol:
    """The patrol a client UUID already went into, as it is now; a UUID used elsewhere is 409."""
    patrol = db.session.get(Patrol, patrol_id, populate_existing=True)
    if patrol is None or patrol.assignment_id != assignment_id or getattr(patrol, column.key) != client_id:
        raise client_id_reused()
    return patrol


def take_event(
    caller: Caller, assignment_id: int, event: PhoneEvent, column: QueryableAttribute[str | None]
) -> tuple[Place, Patrol | None]:
    """The caller's assignment, locked and read, and the patrol this ``client_id`` already went
    into (None: a new event, which the place takes).

    The lock serialises check-in, check-out, the no-show task (which marks absent only under it)
    and shift changes, since presence depends on all of them.
    """
    connection = db.session.connection()
    row = connection.execute(
        _OWN_READ_AND_LOCK[connection.dialect.name],
        {"assignment_id": assignment_id, "user_id": caller.user_id, "client_id": event.client_id},
    ).first()
    if row is None:
        raise assignment_not_found()
    (place_id, volunteer_id, status, shift_id, shift_status, starts_at, ends_at, timezone,
     grid_id, version, updated_at, boundary, used_by) = row
    grid = PlaceGrid(grid_id, version, updated_at, boundary)
    place = Place(place_id, volunteer_id, status, PlaceShift(shift_id, shift_status, starts_at, ends_at, timezone, grid))
    if used_by is not None:
        return place, _replayed(used_by, assignment_id, event.client_id, column)
    _ensure_takes_events(place)
    return place, None
