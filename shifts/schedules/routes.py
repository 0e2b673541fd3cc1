"""HTTP layer of schedules and coverage: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.dumping import compile_dumper, json_response
from core.pagination import page_schema
from core.transactions import reads_only
from grids.service import get_area
from shifts.schedules import coverage, mine
from shifts.schedules import service as schedules
from shifts.schedules.schemas import (
    AreaScheduleArgs,
    CoverageGapArgs,
    CoverageGapSchema,
    MyShiftArgs,
    OpenShiftArgs,
    OpenShiftSchema,
    RosterArgs,
)
from shifts.schemas import AssignmentSchema, ShiftSchema
from shifts.service import get_managed_shift
from volunteers.service import own_volunteer, own_volunteer_id

#: The phone's schedule, a hot read (issue 19): its arguments' schema built once (given a class,
#: webargs builds one, every field bound afresh, per request), its answer dumped by a compiled plan.
MY_SHIFT_ARGS = MyShiftArgs()
MY_SHIFTS_PAGE = page_schema(AssignmentSchema)
_dump_my_shifts = compile_dumper(MY_SHIFTS_PAGE())

blp = Blueprint("shift-schedules", __name__, url_prefix="/api/v1", description="Schedules: my shifts, open shifts near me, a grid's or community's schedule, coverage gaps")


@blp.route("/shifts/open", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(OpenShiftArgs, location="query")
@blp.response(200, page_schema(OpenShiftSchema))
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def list_open_shifts(args: dict[str, Any]) -> Any:
    """Open shifts near me

    Scheduled shifts in my home city that have not started and still have a free primary or backup
    (B post) place; with include_full=true also full ones, whose waitlist I may join. near=home_grid
    (default) or community are ordered by start; near=point (lat, lon, radius_km up to 20, default 5)
    is ordered by distance from the point to the grid's boundary (0 inside it), then start. from/to
    are local dates in my home grid's time zone. Shifts I already have a place on are included, with
    my_place set. Other roles are 403 forbidden; a user without a volunteer profile is 404
    volunteer_not_found; bad or missing point arguments are 422.
    """
    return schedules.open_shifts(own_volunteer(current_caller()), args)


@blp.route("/me/shifts", methods=["GET"])
@reads_only
@auth_required(Role.VOLUNTEER)
@blp.arguments(MY_SHIFT_ARGS, location="query")
@blp.response(200, MY_SHIFTS_PAGE)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def list_my_shifts(args: dict[str, Any]) -> Any:
    """My upcoming or past shifts

    My places on shifts, each with its shift. when=upcoming (default): shifts not yet ended where I
    am invited, assigned (primary or backup) or waitlisted, soonest first. when=past: ended shifts I
    was assigned to or marked absent on, and my late withdrawals, latest first. `status` replaces
    the default statuses. Other roles are 403 forbidden; no volunteer profile is 404.
    """
    return json_response(_dump_my_shifts, mine.my_shifts(own_volunteer_id(current_caller()), args))


@blp.route("/areas/<int:area_id>/shifts", methods=["GET"])
@auth_required(Role.VOLUNTEER, *MANAGERS)
@blp.arguments(AreaScheduleArgs, location="query")
@blp.response(200, page_schema(ShiftSchema))
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def area_schedule(args: dict[str, Any], area_id: int) -> Any:
    """Schedule of a grid, community or any area

    Shifts in the area's whole subtree starting on the local dates from..to (the area's time zone;
    default today and the six days after; at most 62 days), ordered by start. Cancelled shifts only
    with include_cancelled=true. Managers see areas in their subtree, volunteers any area in their
    home city (shifts carry counts, never names). An unknown area is 404 area_not_found, an area
    outside one's scope 403 out_of_scope, a bad range 422.
    """
    caller = current_caller()
    area = get_area(area_id)
    schedules.ensure_may_see_area(caller, area)
    return schedules.area_schedule(area, args)


@blp.route("/coverage-gaps", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(CoverageGapArgs, location="query")
@blp.response(200, page_schema(CoverageGapSchema))
@blp.alt_response(403, response="FORBIDDEN")
def list_coverage_gaps(args: dict[str, Any]) -> Any:
    """Coverage gaps

    Scheduled shifts in my area (or in area_id's subtree, inside it) that are under way or start
    within within_hours (1–168, default 24) and are below their minimum headcount
    (missing_headcount says how many primaries are missing) or miss a required volunteer kind
    (unmet_kinds, with required_kinds giving minimum and assigned), ordered by start. Backups do not
    count. area_id outside my area is 403 out_of_scope, an unknown one 422; volunteers are 403.
    """
    return coverage.coverage_gaps(current_caller(), args)


@blp.route("/shifts/<int:shift_id>/assignments", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(RosterArgs, location="query")
@blp.response(200, page_schema(AssignmentSchema))
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def shift_roster(args: dict[str, Any], shift_id: int) -> Any:
    """Roster of a shift

    Every place on the shift, live (invited, assigned, waitlisted) and ended, in the order they were
    made, with volunteer names, roles and waitlist positions; filter by status (repeatable) and
    role. Managers of the shift's grid only: volunteers are 403 forbidden; an unknown shift and one
    outside one's area are both 404 shift_not_found.
    """
    return schedules.roster(get_managed_shift(current_caller(), shift_id), args)
