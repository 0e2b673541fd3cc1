"""HTTP layer of the coverage report."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, auth_required, current_caller
from core.errors import error_docs
from reports.coverage import service
from reports.coverage.schemas import CoverageArgsSchema, CoverageReportSchema
from reports.replica import reading_reports

blp = Blueprint(
    "reports-coverage",
    __name__,
    url_prefix="/api/v1",
    description="Grid coverage: patrol expected, staffed and served per grid, uncovered windows, steward quotas",
)
_errors = error_docs(blp)


@blp.route("/reports/coverage", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(CoverageArgsSchema, location="query")
@blp.response(200, CoverageReportSchema)
@_errors(401, 403, 422, 503)
@reading_reports()
def get_coverage_report(args: dict[str, Any]) -> Any:
    """Coverage of every grid of an area for a period

    For each grid under `area_id` (a grid with no shift is listed, ranked worst): person-minutes
    planned (places × length of the shifts scheduled), the weekly target × weeks, the larger of the
    two as `expected_minutes` (`expected_basis` says which), staffed (places filled × length) and
    served (verified or approved presence); coverage % (served ÷ expected), the shifts that ended
    with nobody served and the days without patrol, and the change against the previous period.
    Also every grid with fewer active volunteers of a kind than its quota. The period is read in
    the area's time zone, each grid's bounds in its own. Organisers, staff and admins for areas in
    their subtree (403 out_of_scope elsewhere, with nothing computed).
    """
    return service.area_coverage(current_caller(), args)
