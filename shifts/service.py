"""Shifts: what every feature shares: lookups and scope, the caller's own assignment, common
queries, and a shift and a place as returned. No HTTP here.

Each feature is a subpackage with the rooms of a package (``routes.py``, ``schemas.py``,
``service.py``, and ``models.py``, ``tasks.py``, ``listeners.py`` where it has them): ``planning``
(one-off shifts and their edits), ``series`` (weekly repeats, series edits, the top-up task),
``filling`` (sign-up, waitlist, withdrawal, organiser assignment, invitations, absence, A/B
promotion), ``swaps``, ``schedules`` (open shifts, my shifts, an area's schedule, rosters, coverage
gaps), ``autofill`` and ``calendar`` (iCalendar feeds). Beside this module the package keeps what
they all use: ``models.py``, ``rules.py`` (what every path that places a volunteer must keep),
``schemas.py`` and ``signals.py``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, lazyload

from core import i18n
from core.auth import Caller, Role
from core.errors import NotFound
from core.extensions import db
from grids.models import Area
from grids.paths import city_path
from shifts.models import Assignment, AssignmentRole, AssignmentStatus, Shift
from shifts.series import repeats
from volunteers.models import Volunteer, VolunteerKind

i18n.register_titles(
    i18n.title("shift_not_found", "Shift not found"),
    i18n.title("assignment_not_found", "Assignment not found"),
)
i18n.register_messages(
    i18n.N_("Shift not found."),
    i18n.N_("Assignment not found."),
    i18n.N_("The shift is outside your area."),
)


def shift_not_found() -> NotFound:
    """The answer for a shift id that does not exist, and for one the caller may not reach."""
    return NotFound("Shift not found.", code="shift_not_found")


def assignment_not_found() -> NotFound:
    """The answer for an assignment id that does not exist, and for one the caller may not reach."""
    return NotFound("Assignment not found.", code="assignment_not_found")


def get_shift(shift_id: int) -> Shift:
    shift = db.session.get(Shift, shift_id)
    if shift is None:
        raise shift_not_found()
    return shift


def ensure_may_see(caller: Caller, shift: Shift) -> None:
    """Managers see shifts in their subtree; volunteers see shifts in their home city. A shift
    out of sight is not found, as if it did not exist."""
    if caller.role == Role.VOLUNTEER:
        if not shift.grid.path.startswith(city_path(caller.area_path)):
            raise shift_not_found()
        return
    caller.ensure_reach(shift.grid.path, shift_not_found)


def get_shift_for(caller: Caller, shift_id: int) -> Shift:
    shift = get_shift(shift_id)
    ensure_may_see(caller, shift)
    return shift


def get_managed_shift(caller: Caller, shift_id: int) -> Shift:
    """A shift an organiser, staff member or admin may change: inside their subtree (else not found)."""
    shift = get_shift(shift_id)
    caller.ensure_reach(shift.grid.path, shift_not_found)
    return shift


def get_assignment(assignment_id: int, shift: Shift | None = None) -> Assignment:
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None or (shift is not None and assignment.shift_id != shift.id):
        raise assignment_not_found()
    return assignment


# --- the caller's own assignment -----------------------------------------------------------------

#: An assignment with its shift and the shift's grid and nothing else. The models' default joined
#: chains (volunteer → user, kind, home grid, plus selectin skills and availability; grid → parent)
#: would cost the phone's writes more than the writes themselves; anything else loads on access.
LEAN_ASSIGNMENT = (
    lazyload("*"),
    joinedload(Assignment.shift).options(lazyload("*"), joinedload(Shift.grid).lazyload("*")),
)


def own_assignment_select(*columns: Any) -> sa.Select:
    """``columns`` of the assignment ``:assignment_id`` when the user ``:user_id`` holds it (bind
    both): the one test of "is this the caller's own assignment", for statements that read more."""
    return (
        sa.select(*columns)
        .select_from(Assignment)
        .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
        .where(Assignment.id == sa.bindparam("assignment_id"), Volunteer.user_id == sa.bindparam("user_id"))
    )


_OWN_ASSIGNMENT = own_assignment_select(Assignment)
_OWN_ASSIGNMENT_LEAN = _OWN_ASSIGNMENT.options(*LEAN_ASSIGNMENT)


def own_assignment(
    caller: Caller, assignment_id: int, *, lean: bool = False, reload: bool = False
) -> Assignment:
    """The caller's own assignment; another volunteer's is simply not found.

    ``lean`` loads it with :data:`LEAN_ASSIGNMENT` (the phone's writes are the hot path);
    ``reload`` reads it again even if this session holds it (after taking a lock).
    """
    assignment = db.session.scalar(
        _OWN_ASSIGNMENT_LEAN if lean else _OWN_ASSIGNMENT,
        {"assignment_id": assignment_id, "user_id": caller.user_id},
        execution_options={"populate_existing": reload},
    )
    if assignment is None:
        raise assignment_not_found()
    return assignment


def get_assignment_for(caller: Caller, assignment_id: int) -> Assignment:
    """Volunteers reach their own assignments; managers those on shifts in their subtree. Any
    other is not found, as if it did not exist."""
    if caller.role == Role.VOLUNTEER:
        return own_assignment(caller, assignment_id)
    assignment = get_assignment(assignment_id)
    caller.ensure_reach(assignment.shift.grid.path, assignment_not_found)
    return assignment


# --- queries -------------------------------------------------------------------------------------


def select_shifts() -> sa.Select:
    """Shifts with their grid, leaving out the grid's polygon (tens of kilobytes, never shown)."""
    return sa.select(Shift).options(joinedload(Shift.grid).defer(Area.boundary))


def select_assignments() -> sa.Select:
    """Assignments with their shift and volunteer, leaving out grid polygons."""
    return sa.select(Assignment).options(
        joinedload(Assignment.shift).joinedload(Shift.grid).defer(Area.boundary),
        joinedload(Assignment.volunteer).joinedload(Volunteer.home_grid).defer(Area.boundary),
    )


# --- views -------------------------------------------------------------------------------------


def shift_views(shifts: Sequence[Shift]) -> list[dict[str, Any]]:
    """Shifts as ``ShiftSchema`` dicts, with kind coverage and waitlist counted in two queries."""
    ids = [shift.id for shift in shifts]
    kinds_assigned = kinds_assigned_to([shift.id for shift in shifts if shift.required_kinds])
    waitlists: dict[int, int] = {}
    if ids:
        waiting = db.session.execute(
            sa.select(Assignment.shift_id, sa.func.count())
            .where(Assignment.shift_id.in_(ids), Assignment.status == AssignmentStatus.WAITLISTED)
            .group_by(Assignment.shift_id)
        )
        waitlists = dict(waiting.tuples().all())
    return [
        shift_values_view(shift, shift.grid.name, shift.grid.parent_id, kinds_assigned[shift.id], waitlists.get(shift.id, 0))
        for shift in shifts
    ]


def kinds_assigned_to(shift_ids: Sequence[int]) -> defaultdict[int, dict[str, int]]:
    """Shift id → kind code → primaries of that kind assigned; one query, none without ids. Only
    shifts that require kinds need it (most require none)."""
    kinds_assigned: defaultdict[int, dict[str, int]] = defaultdict(dict)
    if shift_ids:
        by_kind = db.session.execute(
            sa.select(Assignment.shift_id, VolunteerKind.code, sa.func.count())
            .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
            .join(VolunteerKind, VolunteerKind.id == Volunteer.kind_id)
            .where(
                Assignment.shift_id.in_(list(shift_ids)),
                Assignment.status == AssignmentStatus.ASSIGNED,
                Assignment.role == AssignmentRole.PRIMARY,
            )
            .group_by(Assignment.shift_id, VolunteerKind.code)
        )
        for shift_id, code, count in by_kind:
            kinds_assigned[shift_id][code] = count
    return kinds_assigned


def shift_view(shift: Shift) -> dict[str, Any]:
    return shift_views([shift])[0]


def kind_coverage(shift: Any, assigned_by_kind: dict[str, int]) -> list[dict[str, Any]]:
    coverage = []
    for requirement in shift.required_kinds or []:
        assigned = assigned_by_kind.get(requirement["kind"], 0)
        coverage.append(
            {
                "kind": requirement["kind"],
                "minimum": requirement["minimum"],
                "assigned": assigned,
                "met": assigned >= requirement["minimum"],
            }
        )
    return coverage


def shift_values_view(
    shift: Any, grid_name: str, community_id: int | None, assigned_by_kind: dict[str, int], waitlist_count: int
) -> dict[str, Any]:
    """A shift as a ``ShiftSchema`` dict: ``shift`` is a ``Shift`` or anything with its column
    attributes by the same names (a row read as plain values: the phone's schedule)."""
    tz = ZoneInfo(shift.timezone)
    coverage = kind_coverage(shift, assigned_by_kind)
    return {
        "id": shift.id,
        "grid_id": shift.grid_id,
        "grid_name": grid_name,
        "community_id": community_id,
        "series_id": shift.series_id,
        "occurrence": repeats.local_to_utc(shift.occurrence_local, tz) if shift.occurrence_local else None,
        "occurrence_local": shift.occurrence_local,
        "detached": shift.detached,
        "status": shift.status,
        "timezone": shift.timezone,
        "starts_at": shift.starts_at,
        "ends_at": shift.ends_at,
        "title": shift.title,
        "instructions": shift.instructions,
        "meeting_point": shift.meeting_point,
        "min_headcount": shift.min_headcount,
        "max_headcount": shift.max_headcount,
        "backup_slots": shift.backup_slots,
        "primary_count": shift.primary_count,
        "backup_count": shift.backup_count,
        "waitlist_count": waitlist_count,
        "open_places": max(shift.max_headcount - shift.primary_count, 0),
        "below_minimum": shift.primary_count < shift.min_headcount,
        "required_kinds": coverage,
        "unmet_kinds": [item["kind"] for item in coverage if not item["met"]],
        "cancelled_at": shift.cancelled_at,
        "cancel_reason": shift.cancel_reason,
    }


def waitlist_positions(shift_ids: Sequence[int]) -> dict[int, int]:
    """Assignment id → 1-based place in its shift's waitlist, for every waitlisted assignment."""
    if not shift_ids:
        return {}
    position = sa.func.row_number().over(
        partition_by=Assignment.shift_id, order_by=(Assignment.queue_seq, Assignment.id)
    )
    rows = db.session.execute(
        sa.select(Assignment.id, position).where(
            Assignment.shift_id.in_(list(set(shift_ids))),
            Assignment.status == AssignmentStatus.WAITLISTED,
        )
    )
    return dict(rows.tuples().all())


def assignment_views(
    assignments: Sequence[Assignment], *, with_shift: bool = False
) -> list[dict[str, Any]]:
    # Only a waitlisted place has a position: no query when none is waitlisted (the common page).
    positions = waitlist_positions(
        [assignment.shift_id for assignment in assignments if assignment.status == AssignmentStatus.WAITLISTED]
    )
    shifts = {}
    if with_shift:
        unique = {assignment.shift_id: assignment.shift for assignment in assignments}
        shifts = {view["id"]: view for view in shift_views(list(unique.values()))}
    views = []
    for assignment in assignments:
        view = place_values_view(
            assignment, assignment.volunteer.real_name, assignment.volunteer.kind.code, positions.get(assignment.id)
        )
        if with_shift:
            view["shift"] = shifts[assignment.shift_id]
        views.append(view)
    return views


def place_values_view(
    place: Any, volunteer_name: str | None, volunteer_kind: str, waitlist_position: int | None
) -> dict[str, Any]:
    """A place as an ``AssignmentSchema`` dict (without its shift): ``place`` is an ``Assignment``
    or anything with its column attributes by the same names (the phone's schedule reads rows)."""
    return {
        "id": place.id,
        "shift_id": place.shift_id,
        "volunteer_id": place.volunteer_id,
        "volunteer_name": volunteer_name,
        "volunteer_kind": volunteer_kind,
        "status": place.status,
        "role": place.role,
        "source": place.source,
        "waitlist_position": waitlist_position,
        "late_withdrawal": place.late_withdrawal,
        "created_at": place.created_at,
        "ended_at": place.ended_at,
        "end_reason": place.end_reason,
    }


def assignment_view(assignment: Assignment, *, with_shift: bool = False) -> dict[str, Any]:
    return assignment_views([assignment], with_shift=with_shift)[0]
