"""The participation page: the report of ``reports.participation.service.area_report`` for the
caller, drilled down by area to a grid's volunteers and to one volunteer, with the exports of
``reports.exports`` as downloads (the API's very files)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request, url_for

from console.participation.schemas import PERIOD_KINDS, ParticipationQuery, load_query, period_query
from console.participation.service import breadcrumbs, home_grid_of, volunteer_row
from console.signin import signed_in
from console.web import console_language, render
from core.auth import Caller
from core.i18n import N_
from grids.queries import get_area
from reports.exports.routes import export_response
from reports.exports.service import ReportKind
from reports.participation.service import area_report
from reports.replica import reading_reports

bp = Blueprint("participation", __name__, url_prefix="/participation")
NAV_ITEM = ("console.participation.page", N_("Participation"))

#: The table's columns: a label, where the figure is in a row's figures, how it is shown.
COLUMNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (N_("Volunteers approved"), ("volunteers", "approved"), "count"),
    (N_("Active volunteers"), ("volunteers", "active"), "count"),
    (N_("Shifts planned"), ("shifts", "planned"), "count"),
    (N_("Fill rate"), ("shifts", "fill_rate"), "rate"),
    (N_("Assignments"), ("presence", "assignments"), "count"),
    (N_("Served"), ("presence", "served"), "count"),
    (N_("No-shows"), ("presence", "no_shows"), "count"),
    (N_("Attendance rate"), ("presence", "attendance_rate"), "rate"),
    (N_("Served hours"), ("presence", "served_hours"), "hours"),
    (N_("Reports filed"), ("reports", "filed"), "count"),
    (N_("Points awarded"), ("points", "awarded"), "count"),
)
#: The figures of one volunteer's page, by section.
VOLUNTEER_SECTIONS: tuple[tuple[str, tuple[tuple[str, tuple[str, ...], str], ...]], ...] = (
    (N_("Presence"), (
        (N_("Assignments"), ("presence", "assignments"), "count"),
        (N_("Served"), ("presence", "served"), "count"),
        (N_("No-shows"), ("presence", "no_shows"), "count"),
        (N_("Late withdrawals"), ("presence", "late_withdrawals"), "count"),
        (N_("Presences in review"), ("presence", "in_review"), "count"),
        (N_("Attendance rate"), ("presence", "attendance_rate"), "rate"),
        (N_("Served hours"), ("presence", "served_hours"), "hours"),
        (N_("Hours entered by hand"), ("presence", "manual_hours"), "hours"),
    )),
    (N_("Reports"), (
        (N_("Reports filed"), ("reports", "filed"), "count"),
        (N_("Red reports"), ("reports", "by_level", "red"), "count"),
        (N_("Orange reports"), ("reports", "by_level", "orange"), "count"),
        (N_("Yellow reports"), ("reports", "by_level", "yellow"), "count"),
        (N_("Green reports"), ("reports", "by_level", "green"), "count"),
        (N_("Reports taken up"), ("reports", "taken_up"), "count"),
        (N_("Reports resolved"), ("reports", "resolved"), "count"),
    )),
    (N_("Points"), (
        (N_("Points awarded"), ("points", "awarded"), "count"),
        (N_("Points reversed"), ("points", "reversed"), "count"),
        (N_("Points redeemed"), ("points", "redeemed"), "count"),
        (N_("Points expired"), ("points", "expired"), "count"),
        (N_("Points adjusted"), ("points", "adjusted"), "count"),
    )),
)


def figure_at(figures: Mapping[str, Any] | None, path: tuple[str, ...]) -> Any:
    """The figure at ``path``, or None where the row has no such section (a volunteer's shifts)."""
    value: Any = figures
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def shown(value: Any, kind: str) -> str:
    """A figure as the table shows it (the raw figure goes in the cell's ``data-value``)."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "hours":
        return f"{value:.1f}"
    return str(value)


def cells(figures: Mapping[str, Any] | None, columns: tuple[tuple[str, tuple[str, ...], str], ...] = COLUMNS) -> list[dict[str, Any]]:
    result = []
    for label, path, kind in columns:
        value = figure_at(figures, path)
        result.append({"label": label, "key": ".".join(path), "value": value, "text": shown(value, kind)})
    return result


def _picker(args: Mapping[str, Any]) -> dict[str, Any]:
    """What the period picker shows as chosen."""
    chosen = period_query(args)
    return {"kinds": PERIOD_KINDS, **chosen}


@bp.get("/")
@signed_in
def page(caller: Caller) -> Response:
    args = load_query(ParticipationQuery(), request.args, caller)
    with reading_reports():
        report = area_report(caller, args)  # 403 out_of_scope outside the caller's subtree
        crumbs = breadcrumbs(caller, get_area(report["area"]["id"]).path)
    keep = period_query(args)
    rows = []
    for child in report["children"]:
        if child["level"] == "volunteer":
            link = url_for(".volunteer", volunteer_id=child["id"], area=report["area"]["id"], **keep)
        else:
            link = url_for(".page", area=child["id"], **keep)
        rows.append({**child, "url": link, "cells": cells(child["figures"])})
    downloads = {
        export_format: url_for(".download", export_format=export_format, area=report["area"]["id"], **keep)
        for export_format in ("xlsx", "csv")
    }
    return render(
        "console/participation/page.html", report=report, crumbs=crumbs, rows=rows, totals=cells(report["figures"]),
        columns=COLUMNS, picker=_picker(args), area_id=report["area"]["id"], downloads=downloads, keep=keep,
    )


@bp.get("/volunteers/<int:volunteer_id>")
@signed_in
def volunteer(caller: Caller, volunteer_id: int) -> Response:
    """One volunteer's figures: their row of the grid's report (the API has no per-volunteer report
    for managers). Without ``area``, their home grid; a volunteer out of reach is the 404 of a
    volunteer id that does not exist."""
    args = load_query(ParticipationQuery(), request.args, caller)
    with reading_reports():
        if "area" not in request.args:
            args["area_id"] = home_grid_of(caller, volunteer_id)
        report = area_report(caller, args)
        row = volunteer_row(report, volunteer_id)
        crumbs = breadcrumbs(caller, get_area(report["area"]["id"]).path)
    keep = period_query(args)
    sections = [(title, cells(row["figures"], figures)) for title, figures in VOLUNTEER_SECTIONS]
    return render(
        "console/participation/volunteer.html", report=report, row=row, crumbs=crumbs, sections=sections,
        picker=_picker(args), area_id=report["area"]["id"], keep=keep, volunteer_id=volunteer_id,
    )


@bp.get("/export.<any(xlsx, csv):export_format>")
@signed_in
def download(caller: Caller, export_format: str) -> Response:
    """The API's export of the same report (``GET /api/v1/reports/participation/export``): the same
    service, caller and arguments, so the same file and Content-Disposition; headed in the
    console's language."""
    args = load_query(ParticipationQuery(), request.args, caller)
    args["export_format"] = export_format
    with reading_reports():
        return export_response(ReportKind.PARTICIPATION, caller, args, console_language())
