"""The coverage map page: ``reports.coverage.service.area_coverage`` for the caller (403 out_of_scope
outside their subtree, as the API), drawn over the grids' stored boundaries."""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from console.coverage_map.schemas import CoverageQuery
from console.coverage_map.service import hours, map_data
from console.participation.schemas import PERIOD_KINDS, load_query, period_query
from console.participation.service import breadcrumbs
from console.signin import signed_in
from console.web import gettext, render
from core.auth import Caller
from core.i18n import N_
from grids.queries import get_area, grid_boundaries
from reports.coverage.service import area_coverage
from reports.replica import reading_reports

bp = Blueprint("coverage_map", __name__, url_prefix="/coverage_map")
NAV_ITEM = ("console.coverage_map.page", N_("Coverage map"))


@bp.get("/")
@signed_in
def page(caller: Caller) -> Response:
    args = load_query(CoverageQuery(), request.args, caller)
    with reading_reports():
        report = area_coverage(caller, args)  # 403 out_of_scope before anything is computed
        path = get_area(report["area"]["id"]).path
        boundaries = grid_boundaries(path)
        crumbs = breadcrumbs(caller, path)
    keep = period_query(args)
    data = map_data(report, boundaries, lambda grid_id: url_for("console.participation.page", area=grid_id, **keep))
    data["labels"] = {
        "coverage": gettext("Coverage"), "served": gettext("Served hours"), "expected": gettext("Expected hours"),
        "no_data": gettext("nothing expected"),
    }
    totals = report["totals"]
    return render(
        "console/coverage_map/page.html", report=report, data=data, crumbs=crumbs, keep=keep,
        picker={"kinds": PERIOD_KINDS, **keep}, area_id=report["area"]["id"], totals=totals,
        hours=hours, drawn=len(data["grids"]),
    )
