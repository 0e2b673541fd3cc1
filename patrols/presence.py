"""Check-in and check-out from the phone: geofence, plausibility flags, late minutes, served minutes.

Phones queue events offline and deliver them late, twice and out of order, so:

- each event carries a client UUID (a unique column); the same UUID again returns the patrol as it
  is, without a second effect;
- the patrol row exists from the first event, so a check-out may come before its check-in and the
  two are reconciled when the second arrives;
- an event's time is the device's clock unless that is ahead of our receipt time (then receipt):
  an offline phone's clock says when it really happened. Both are kept.

Nothing plausible is dropped: an event outside the grid, with poor accuracy, a clock far off or a
mock-location flag is recorded and waits for an organiser's review (``presence_review.py``). Only
verified or approved presence counts; served minutes are settled once, by a conditional UPDATE,
when both ends are known and presence counts, and ``shift_served`` is sent then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import shapely
import sqlalchemy as sa
from flask import current_app
from shapely.geometry import shape
from shapely.ops import nearest_points
from sqlalchemy.exc import IntegrityError

from core import i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict
from core.extensions import db
from core.geo import contains
from patrols import signals
from patrols.models import COUNTED_PRESENCE, Patrol, PresenceStatus
from patrols.service import own_assignment, patrol_for
from shifts import rules
from shifts.models import Assignment, AssignmentStatus, Shift, ShiftStatus

i18n.register_titles(
    {
        "already_checked_in": ("已签到", "Already checked in"),
        "already_checked_out": ("已签退", "Already checked out"),
        "client_id_reused": ("客户端编号已被使用", "Client id already used"),
        "outside_check_in_window": ("不在签到时间内", "Outside the check-in window"),
        "outside_check_out_window": ("不在签退时间内", "Outside the check-out window"),
        "assignment_not_live": ("排班已结束", "Assignment has ended"),
    }
)
i18n.register_messages(
    {
        "You have already checked in to this shift.": "您已签到过该班次。",
        "You have already checked out of this shift.": "您已签退过该班次。",
        "This client_id was already used for another event.": "该 client_id 已用于另一条记录。",
        "Check-in opens shortly before the start and closes at the end of the shift.": (
            "签到在班次开始前不久开放，在班次结束时关闭。"
        ),
        "Check-out is possible only once check-in has opened.": "签到开放后才能签退。",
        "This place has already ended.": "该排班已结束。",
    }
)

#: Flags that send presence to review.
OUTSIDE_GRID = "outside_grid"
POOR_ACCURACY = "poor_accuracy"
CLOCK_SKEW = "clock_skew"
DEVICE_TIME_FUTURE = "device_time_future"
MOCK_LOCATION = "mock_location"
MARKED_ABSENT = "marked_absent"
NO_BOUNDARY = "no_boundary"

#: An ended place still takes a check-in when it ended as a no-show: the phone may have been offline.
_CHECK_IN_STATUSES = (AssignmentStatus.ASSIGNED, AssignmentStatus.ABSENT)
_METRES_PER_DEGREE_LAT = 110_574.0
_METRES_PER_DEGREE_LON_AT_EQUATOR = 111_320.0


@dataclass(frozen=True)
class PhoneEvent:
    """What the phone sends for a check-in or a check-out."""

    client_id: str
    lat: float
    lon: float
    accuracy_m: float
    device_time: datetime
    mock_location: bool = False


# --- the rules ---------------------------------------------------------------------------------


def _minutes(key: str) -> timedelta:
    return timedelta(minutes=current_app.config[key])


def event_time(device_at: datetime, received_at: datetime) -> datetime:
    """When it happened: the device's clock, unless it runs ahead of our receipt."""
    return min(device_at, received_at)


def distance_to_boundary_m(boundary: dict[str, Any], lon: float, lat: float) -> float:
    """Approximate metres from the point to the nearest point of the polygon (small distances)."""
    point = shapely.Point(lon, lat)
    nearest = nearest_points(shape(boundary), point)[0]
    dx = (nearest.x - lon) * _METRES_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(lat))
    dy = (nearest.y - lat) * _METRES_PER_DEGREE_LAT
    return math.hypot(dx, dy)


def position_flags(shift: Shift, event: PhoneEvent) -> list[str]:
    """Why this position cannot be trusted on its own: empty when inside the grid and plausible."""
    flags: list[str] = []
    max_accuracy = float(current_app.config["CHECK_IN_MAX_ACCURACY_M"])
    if event.accuracy_m > max_accuracy:
        flags.append(POOR_ACCURACY)
    grid = shift.grid
    if not grid.boundary:
        flags.append(NO_BOUNDARY)
    elif not contains((grid.id, grid.version, grid.updated_at), grid.boundary, event.lon, event.lat):
        # The fix may be off by its accuracy, but we allow no more than the accuracy we trust.
        allowance = min(event.accuracy_m, max_accuracy)
        if distance_to_boundary_m(grid.boundary, event.lon, event.lat) > allowance:
            flags.append(OUTSIDE_GRID)
    if event.mock_location:
        flags.append(MOCK_LOCATION)
    return flags


def clock_flags(device_at: datetime, received_at: datetime) -> list[str]:
    if device_at - received_at > _minutes("CHECK_IN_CLOCK_SKEW_MINUTES"):
        return [DEVICE_TIME_FUTURE]
    if received_at - device_at > timedelta(hours=current_app.config["CHECK_IN_MAX_OFFLINE_HOURS"]):
        return [CLOCK_SKEW]
    return []


def check_in_opens(shift: Shift) -> datetime:
    return shift.starts_at - _minutes("CHECK_IN_OPENS_MINUTES")


def served_until(shift: Shift) -> datetime:
    """The latest instant that counts as served: the end plus the check-out grace."""
    return shift.ends_at + _minutes("CHECK_OUT_GRACE_MINUTES")


def checked_in_at(patrol: Patrol) -> datetime | None:
    if patrol.check_in_device_at is None or patrol.check_in_received_at is None:
        return None
    return event_time(patrol.check_in_device_at, patrol.check_in_received_at)


def checked_out_at(patrol: Patrol, shift: Shift) -> datetime | None:
    """A forgotten check-out closed automatically counts up to the scheduled end, not the grace."""
    if patrol.check_out_device_at is not None and patrol.check_out_received_at is not None:
        return event_time(patrol.check_out_device_at, patrol.check_out_received_at)
    if patrol.auto_closed:
        return shift.ends_at
    return None


def served_minutes(patrol: Patrol, shift: Shift) -> int | None:
    """Whole minutes between check-in and check-out, clipped to [start, end + grace]."""
    started, ended = checked_in_at(patrol), checked_out_at(patrol, shift)
    if started is None or ended is None:
        return None
    begin = max(started, shift.starts_at)
    finish = min(ended, served_until(shift))
    return max(0, int((finish - begin).total_seconds() // 60))


def late_minutes(shift: Shift, arrived: datetime) -> int:
    return max(0, int((arrived - shift.starts_at).total_seconds() // 60))


# --- recording events --------------------------------------------------------------------------


def _ensure_takes_events(assignment: Assignment) -> None:
    if assignment.shift.status != ShiftStatus.SCHEDULED:
        raise Conflict("The shift has been cancelled.", code="shift_cancelled")
    if assignment.status not in _CHECK_IN_STATUSES:
        raise Conflict("This place has already ended.", code="assignment_not_live")


def _replayed(client_id: str, assignment: Assignment, column: sa.Column) -> Patrol | None:
    """The patrol this client UUID already went into, if any; a UUID used elsewhere is 409."""
    used = db.session.scalar(
        sa.select(Patrol)
        .where(sa.or_(Patrol.check_in_client_id == client_id, Patrol.check_out_client_id == client_id))
        .execution_options(populate_existing=True)
    )
    if used is None:
        return None
    if used.assignment_id != assignment.id or getattr(used, column.key) != client_id:
        raise Conflict("This client_id was already used for another event.", code="client_id_reused")
    return used


def _conditional_update(patrol: Patrol, guard: sa.ColumnElement[bool], values: dict[str, Any]) -> bool:
    """Write ``values`` only while ``guard`` holds (the first of concurrent events wins)."""
    try:
        with db.session.begin_nested():
            result = db.session.execute(
                sa.update(Patrol)
                .where(Patrol.id == patrol.id, guard)
                .values(**values, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        # The same UUID went into another patrol at the same moment (unique column).
        raise Conflict(
            "This client_id was already used for another event.", code="client_id_reused"
        ) from None
    db.session.refresh(patrol)
    return result.rowcount == 1


def _presence_after_flags(patrol: Patrol) -> str:
    if patrol.presence_status in (PresenceStatus.APPROVED, PresenceStatus.REJECTED):
        return patrol.presence_status  # an organiser's decision stands
    flagged = bool(patrol.check_in_flags) or bool(patrol.check_out_flags)
    return PresenceStatus.NEEDS_REVIEW if flagged else PresenceStatus.VERIFIED


def _take_event(
    caller: Caller, assignment_id: int, event: PhoneEvent, column: sa.Column
) -> tuple[Assignment, Patrol | None]:
    """The caller's assignment, locked and re-read, or the patrol this ``client_id`` already went into.

    The volunteer's schedule lock serialises check-in, check-out and the no-show task (which marks
    absent only under it), since presence depends on all of them.
    """
    assignment = own_assignment(caller, assignment_id)
    replay = _replayed(event.client_id, assignment, column)
    if replay is not None:
        return assignment, replay
    rules.lock_schedules([assignment.volunteer_id])
    db.session.refresh(assignment)
    _ensure_takes_events(assignment)
    return assignment, None


def check_in(caller: Caller, assignment_id: int, event: PhoneEvent) -> Patrol:
    """Record the volunteer's check-in (or return it again for the same ``client_id``)."""
    assignment, replay = _take_event(caller, assignment_id, event, Patrol.check_in_client_id)
    if replay is not None:
        return replay
    shift = assignment.shift
    received_at = utcnow()
    arrived = event_time(event.device_time, received_at)
    if not check_in_opens(shift) <= arrived <= shift.ends_at:
        raise Conflict(
            "Check-in opens shortly before the start and closes at the end of the shift.",
            code="outside_check_in_window",
        )
    flags = position_flags(shift, event) + clock_flags(event.device_time, received_at)
    if assignment.status == AssignmentStatus.ABSENT:
        flags.append(MARKED_ABSENT)
    patrol = patrol_for(assignment)
    written = _conditional_update(
        patrol,
        Patrol.check_in_client_id.is_(None),
        {
            "check_in_client_id": event.client_id,
            "check_in_device_at": event.device_time,
            "check_in_received_at": received_at,
            "check_in_lat": event.lat,
            "check_in_lon": event.lon,
            "check_in_accuracy_m": event.accuracy_m,
            "check_in_flags": flags,
            "late_minutes": late_minutes(shift, arrived),
        },
    )
    if not written:
        if patrol.check_in_client_id == event.client_id:
            return patrol  # the same event, delivered twice at once
        raise Conflict("You have already checked in to this shift.", code="already_checked_in")
    patrol.presence_status = _presence_after_flags(patrol)
    db.session.flush()
    signals.checked_in.send(
        signals.SENDER,
        patrol_id=patrol.id,
        assignment_id=assignment.id,
        shift_id=shift.id,
        volunteer_id=assignment.volunteer_id,
        presence_status=patrol.presence_status,
        late_minutes=patrol.late_minutes,
    )
    settle(patrol)
    return patrol


def check_out(caller: Caller, assignment_id: int, event: PhoneEvent) -> Patrol:
    """Record the check-out; before the check-in, or replacing an automatic close, is fine."""
    assignment, replay = _take_event(caller, assignment_id, event, Patrol.check_out_client_id)
    if replay is not None:
        return replay
    shift = assignment.shift
    received_at = utcnow()
    left = event_time(event.device_time, received_at)
    if left < check_in_opens(shift):
        raise Conflict(
            "Check-out is possible only once check-in has opened.", code="outside_check_out_window"
        )
    flags = position_flags(shift, event) + clock_flags(event.device_time, received_at)
    patrol = patrol_for(assignment)
    written = _conditional_update(
        patrol,
        Patrol.check_out_client_id.is_(None),
        {
            "check_out_client_id": event.client_id,
            "check_out_device_at": event.device_time,
            "check_out_received_at": received_at,
            "check_out_lat": event.lat,
            "check_out_lon": event.lon,
            "check_out_accuracy_m": event.accuracy_m,
            "check_out_flags": flags,
            # The phone's own check-out replaces an automatic close that came first.
            "auto_closed": False,
        },
    )
    if not written:
        if patrol.check_out_client_id == event.client_id:
            return patrol
        raise Conflict("You have already checked out of this shift.", code="already_checked_out")
    if patrol.presence_status is not None:
        patrol.presence_status = _presence_after_flags(patrol)
    db.session.flush()
    announce_checked_out(patrol)
    settle(patrol)
    return patrol


def announce_checked_out(patrol: Patrol) -> None:
    signals.checked_out.send(
        signals.SENDER,
        patrol_id=patrol.id,
        assignment_id=patrol.assignment_id,
        shift_id=patrol.shift_id,
        volunteer_id=patrol.volunteer_id,
        auto_closed=patrol.auto_closed,
    )


def settle(patrol: Patrol) -> bool:
    """Fix the served minutes once both ends are known and presence counts; sends ``shift_served``.

    A conditional UPDATE (``served_minutes IS NULL``), so the signal goes out once, whichever of
    check-out, late check-in, approval or automatic close gets there first.
    """
    if patrol.served_minutes is not None or patrol.presence_status not in COUNTED_PRESENCE:
        return False
    minutes = served_minutes(patrol, patrol.assignment.shift)
    if minutes is None:
        return False
    result = db.session.execute(
        sa.update(Patrol)
        .where(Patrol.id == patrol.id, Patrol.served_minutes.is_(None))
        .values(served_minutes=minutes, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(patrol)
    if result.rowcount != 1:
        return False
    signals.shift_served.send(
        signals.SENDER,
        patrol_id=patrol.id,
        assignment_id=patrol.assignment_id,
        shift_id=patrol.shift_id,
        volunteer_id=patrol.volunteer_id,
        served_minutes=minutes,
    )
    return True
