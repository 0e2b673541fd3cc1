"""HTTP layer of shift planning (one-off shifts, repeating series, edits and cancellation): parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, auth_required, current_caller
from core.errors import error_docs
from core.pagination import page_schema
from shifts import planning, series_edits
from shifts.planning_schemas import (
    CancelSchema,
    SeriesCancelSchema,
    SeriesChangeSchema,
    SeriesCreateSchema,
    SeriesListArgs,
    SeriesUpdateSchema,
    ShiftCreateSchema,
    ShiftSeriesDetailSchema,
    ShiftSeriesSchema,
    ShiftUpdateSchema,
)
from shifts.schemas import ShiftSchema
from shifts.series import create_series, get_series, list_series, series_view
from shifts.service import get_managed_shift, get_shift_for, shift_view

blp = Blueprint("shift-planning", __name__, url_prefix="/api/v1", description="Planning shifts: one-off shifts, weekly repeating series, editing and cancelling one, this-and-following or all occurrences")


_errors = error_docs(blp)


def _change_view(outcome: series_edits.Outcome) -> dict[str, Any]:
    return {
        "series": series_view(outcome.series, with_upcoming=True),
        "previous_series": series_view(outcome.previous) if outcome.previous else None,
        "changed_shift_ids": outcome.changed,
        "cancelled_shift_ids": outcome.cancelled,
        "created_shift_ids": outcome.created,
    }


# --- one-off shifts ----------------------------------------------------------------------------------


@blp.route("/shifts", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(ShiftCreateSchema)
@blp.response(201, ShiftSchema)
@_errors(401, 403)
def create_shift(data: dict[str, Any]) -> Any:
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
def update_shift(data: dict[str, Any], shift_id: int) -> Any:
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


# --- series --------------------------------------------------------------------------------------------


@blp.route("/shift-series", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(SeriesCreateSchema)
@blp.response(201, ShiftSeriesDetailSchema)
@_errors(401, 403)
def create_shift_series(data: dict[str, Any]) -> Any:
    """Plan a weekly repeating shift

    From `starts_on` at `start_time` (wall-clock time in the grid's zone or `timezone`), lasting
    `duration_minutes` or until `end_time` (the next day if not after the start), repeating by
    `rrule` (FREQ=WEEKLY with BYDAY, INTERVAL 1–52, and UNTIL or COUNT or neither: without them the
    series runs until cancelled). Occurrences become shifts up to SERIES_HORIZON_DAYS ahead at once,
    and a periodic task keeps them topped up. 422: a malformed or unsupported rule, more than
    SERIES_MAX_OCCURRENCES occurrences, no occurrence still to come, `starts_on` in the past, an
    occurrence longer than SHIFT_MAX_HOURS, and the shift rules of POST /shifts. A grid outside your
    area is 403 out_of_scope.
    """
    return series_view(create_series(current_caller(), data), with_upcoming=True)


@blp.route("/shift-series", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(SeriesListArgs, location="query")
@blp.response(200, page_schema(ShiftSeriesSchema))
@_errors(401, 403)
def list_shift_series(args: dict[str, Any]) -> Any:
    """List repeating shifts

    Series of grids in your area (or under `under`, which must be in it: else 403), by id.
    """
    return list_series(current_caller(), args)


@blp.route("/shift-series/<int:series_id>", methods=["GET"])
@auth_required(*MANAGERS)
@blp.response(200, ShiftSeriesDetailSchema)
@_errors(401, 403, 404)
def get_shift_series(series_id: int) -> Any:
    """One repeating shift, with its shifts not yet over."""
    return series_view(get_series(current_caller(), series_id), with_upcoming=True)


@blp.route("/shift-series/<int:series_id>", methods=["PATCH"])
@auth_required(*MANAGERS)
@blp.arguments(SeriesUpdateSchema)
@blp.response(200, SeriesChangeSchema)
@_errors(401, 403, 404, 409)
def update_shift_series(data: dict[str, Any], series_id: int) -> Any:
    """Edit a repeating shift: all occurrences still to come, or this and following

    `scope` all changes the series in place from its next occurrence; `following` splits it at
    `from_occurrence` (a shift's `occurrence`): the series ends just before it and a new series,
    returned as `series`, carries the change. Shifts not started and not detached are updated (or
    cancelled, with `reason`, where the new rule has no occurrence on their date) with the refusals
    of PATCH /shifts/{id}, which then apply to the whole change: 409 headcount_below_assigned,
    backup_slots_below_assigned, shift_overlap, rest_too_short. Past, started and detached shifts
    are left as they are. 409 series_ended when nothing is left to change; 422 for a bad rule or an
    occurrence that is not one of the series or has started.
    """
    return _change_view(series_edits.edit_series(current_caller(), series_id, data))


@blp.route("/shift-series/<int:series_id>/cancel", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(SeriesCancelSchema)
@blp.response(200, SeriesChangeSchema)
@_errors(401, 403, 404, 409)
def cancel_shift_series(data: dict[str, Any], series_id: int) -> Any:
    """Cancel a repeating shift: all occurrences still to come, or this and following

    The rule ends just before the occurrence (`following`) or the next one (`all`), and every
    shift of the series from there that has not started is cancelled as by POST
    /shifts/{id}/cancel, detached ones included. 409 series_ended when nothing is left to cancel.
    """
    return _change_view(series_edits.cancel_series(current_caller(), series_id, data))
