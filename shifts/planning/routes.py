"""HTTP layer of planning one-off shifts (create, edit, cancel): parse, authorise, call the service,
serialise.

The blueprint is the API's "shift-planning" section; repeating series add their routes to it
(``shifts/series/routes.py``), so one-off shifts and series stay one section of the document.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, auth_required, current_caller
from core.errors import error_docs
from shifts.planning import service as planning
from shifts.planning.schemas import (
    CancelSchema,
    ShiftCreateInput,
    ShiftCreateSchema,
    ShiftUpdateInput,
    ShiftUpdateSchema,
)
from shifts.schemas import ShiftSchema
from shifts.service import get_managed_shift, get_shift_for, shift_view

blp = Blueprint("shift-planning", __name__, url_prefix="/api/v1", description="Planning shifts: one-off shifts, weekly repeating series, editing and cancelling one, this-and-following or all occurrences")


_errors = error_docs(blp)


# --- one-off shifts ----------------------------------------------------------------------------------


@blp.route("/shifts", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(ShiftCreateSchema)
@blp.response(201, ShiftSchema)
@_errors(401, 403)
def create_shift(data: ShiftCreateInput) -> Any:
    """Plan a shift

    A one-off patrol shift in a grid of your area. `starts_at` and `ends_at` are instants with an
    offset (`2026-12-01T19:00:00+08:00`); `timezone` (default the grid's) is the shift's local
    clock. 422: a time without an offset, end not after start, longer than SHIFT_MAX_HOURS,
    start in the past or over two years ahead, unknown grid or not a grid, min_headcount above
    max_headcount, max_headcount above SHIFT_MAX_HEADCOUNT, an unknown or repeated required kind, a
    kind minimum above max_headcount, an unknown time zone. A grid outside your area is 403
    out_of_scope.
    """
    return shift_view(planning.create_shift(current_caller(), data))


@blp.route("/shifts/<int:shift_id>", methods=["GET"])
@auth_required()
@blp.response(200, ShiftSchema)
@_errors(401, 403, 404)
def get_shift(shift_id: int) -> Any:
    """One shift

    With its places, waitlist and kind coverage. Managers see shifts in their area; volunteers see
    shifts in their home city. Any other is 404 shift_not_found, as an id that does not exist.
    """
    return shift_view(get_shift_for(current_caller(), shift_id))


@blp.route("/shifts/<int:shift_id>", methods=["PATCH"])
@auth_required(*MANAGERS)
@blp.arguments(ShiftUpdateSchema)
@blp.response(200, ShiftSchema)
@_errors(401, 403, 404, 409)
def update_shift(data: ShiftUpdateInput, shift_id: int) -> Any:
    """Edit a shift

    Times, title, instructions, meeting point, headcounts, backup places and required kinds of a
    shift in your area; moving only the start keeps the duration. An occurrence of a series is
    detached from it (later series edits leave it alone). The assigned volunteers are told
    (signal shift_changed); raising max_headcount fills the new places from backups, then the
    waitlist. 409: shift_cancelled, shift_finished, shift_started (moving the start of a shift under
    way), headcount_below_assigned, backup_slots_below_assigned, shift_overlap or rest_too_short
    (an assigned volunteer's other shifts; `errors.volunteer_ids` names them). 422 as for creating.
    """
    caller = current_caller()
    return shift_view(planning.update_shift(caller, get_managed_shift(caller, shift_id), data))


@blp.route("/shifts/<int:shift_id>/cancel", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(CancelSchema)
@blp.response(200, ShiftSchema)
@_errors(401, 403, 404, 409)
def cancel_shift(data: dict[str, Any], shift_id: int) -> Any:
    """Cancel a shift

    Every invited, assigned and waitlisted volunteer's place ends as cancelled; those assigned or
    waitlisted are told once (signal shift_cancelled). Also cancels one occurrence of a series.
    409 shift_cancelled if already cancelled, shift_finished if over.
    """
    caller = current_caller()
    shift = get_managed_shift(caller, shift_id)
    return shift_view(planning.cancel_shift(caller, shift, data["reason"]))
