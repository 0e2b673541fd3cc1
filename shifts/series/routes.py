"""HTTP layer of weekly repeating series: parse, authorise, call the service, serialise.

The routes belong to the API's "shift-planning" section, the blueprint of ``shifts/planning/routes.py``:
one-off shifts and the series they repeat are planned in one place. ``shifts.init_app`` imports this
module before it registers that blueprint.
"""

from __future__ import annotations

from typing import Any

from core.auth import MANAGERS, auth_required, current_caller
from core.errors import error_docs
from core.pagination import page_schema
from shifts.planning.routes import blp
from shifts.series import edits
from shifts.series.schemas import (
    SeriesCancelInput,
    SeriesCancelSchema,
    SeriesChangeSchema,
    SeriesCreateInput,
    SeriesCreateSchema,
    SeriesListArgs,
    SeriesUpdateInput,
    SeriesUpdateSchema,
    ShiftSeriesDetailSchema,
    ShiftSeriesSchema,
)
from shifts.series.service import create_series, get_series, list_series, series_view

_errors = error_docs(blp)


def _change_view(outcome: edits.Outcome) -> dict[str, Any]:
    return {
        "series": series_view(outcome.series, with_upcoming=True),
        "previous_series": series_view(outcome.previous) if outcome.previous else None,
        "changed_shift_ids": outcome.changed,
        "cancelled_shift_ids": outcome.cancelled,
        "created_shift_ids": outcome.created,
    }


@blp.route("/shift-series", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(SeriesCreateSchema)
@blp.response(201, ShiftSeriesDetailSchema)
@_errors(401, 403)
def create_shift_series(data: SeriesCreateInput) -> Any:
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
def update_shift_series(data: SeriesUpdateInput, series_id: int) -> Any:
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
    return _change_view(edits.edit_series(current_caller(), series_id, data))


@blp.route("/shift-series/<int:series_id>/cancel", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(SeriesCancelSchema)
@blp.response(200, SeriesChangeSchema)
@_errors(401, 403, 404, 409)
def cancel_shift_series(data: SeriesCancelInput, series_id: int) -> Any:
    """Cancel a repeating shift: all occurrences still to come, or this and following

    The rule ends just before the occurrence (`following`) or the next one (`all`), and every
    shift of the series from there that has not started is cancelled as by POST
    /shifts/{id}/cancel, detached ones included. 409 series_ended when nothing is left to cancel.
    """
    return _change_view(edits.cancel_series(current_caller(), series_id, data))
