"""HTTP layer of participation reports."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, Role, auth_required, current_caller
from reports.participation import service
from reports.participation.schemas import (
    AreaParticipationArgs,
    AreaParticipationSchema,
    MyParticipationArgs,
    MyParticipationSchema,
)
from reports.replica import reading_reports

blp = Blueprint(
    "reports-participation",
    __name__,
    url_prefix="/api/v1",
    description="Participation reports: volunteers, shifts, presence, incident reports and points of an area",
)


@blp.route("/reports/participation", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(AreaParticipationArgs, location="query")
@blp.response(200, AreaParticipationSchema)
@blp.alt_response(503, response="SERVICE_UNAVAILABLE")
@reading_reports()
def get_area_participation(args: dict[str, Any]) -> Any:
    """An area's participation in a period

    Volunteers, shifts, presence, incident reports and points of `area_id` (inside my subtree, else
    403 out_of_scope) for a `period` (month `2026-11`, quarter `2026-Q4`, year `2026`) or `from`/`to`
    dates, read in the area's time zone; with the same figures for each child area one level down
    (a grid's: its volunteers), and with `series=day|week` a time series. `as_of` is when the
    figures were computed. Which rows each figure counts: README "Endpoints (reports)". 422: a
    malformed, inverted or over-three-year period, an unknown area.
    """
    return service.area_report(current_caller(), args)


@blp.route("/me/participation", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(MyParticipationArgs, location="query")
@blp.response(200, MyParticipationSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(503, response="SERVICE_UNAVAILABLE")
@reading_reports()
def get_my_participation(args: dict[str, Any]) -> Any:
    """My participation in a period

    My assignments, served shifts and hours, attendance and points in a period read in my home
    grid's time zone.
    """
    return service.my_report(current_caller(), args)
