"""Report triage (/console/triage/): the reports of the caller's area, red and orange first, and
one report (/console/triage/<id>) with its history, photos and handling.

Every read and every step is the API's service call with the caller (``patrols/reports/routes.py``):
``list_reports``, ``get_report_for``, ``get_photo_for`` and the workflow's ``acknowledge``,
``assign``, ``escalate`` and ``resolve``, each with the API's schema. A report out of reach is the
404 page of a missing id; whatever the workflow refuses shows on the report's page, nothing changed.
"""

from __future__ import annotations

from typing import Any, cast

import marshmallow as ma
from flask import Blueprint, Response, flash, redirect, request, url_for

from console.signin import signed_in
from console.triage import service
from console.triage.schemas import AssignFormSchema, TriageArgs
from console.vetting.schemas import describe_refusal, load_form, load_query
from console.web import console_language, gettext, render
from core.auth import Caller
from core.errors import ApiError
from core.extensions import db
from core.i18n import N_
from core.uploads import image_response
from patrols.reports import service as reports
from patrols.reports import workflow
from patrols.reports.models import ReportLevel, ReportStatus
from patrols.reports.routes import PHOTO_CACHE_CONTROL
from patrols.reports.schemas import NoteOptionalSchema, NoteRequiredSchema

bp = Blueprint("triage", __name__, url_prefix="/triage")
NAV_ITEM = ("console.triage.page", N_("Report triage"))

#: Each step: the API's body schema and the workflow function its endpoint calls.
_STEPS: dict[str, tuple[type[ma.Schema], Any]] = {
    "acknowledge": (NoteOptionalSchema, workflow.acknowledge),
    "assign": (AssignFormSchema, workflow.assign),
    "escalate": (NoteOptionalSchema, workflow.escalate),
    "resolve": (NoteRequiredSchema, workflow.resolve),
}
_DONE = {
    "acknowledge": N_("Report acknowledged."), "assign": N_("Report assigned."),
    "escalate": N_("Report escalated to the district."), "resolve": N_("Report resolved."),
}


def _photo_url(report_id: int, photo_id: int) -> str:
    return url_for("console.triage.photo", report_id=report_id, photo_id=photo_id)


def _labels() -> dict[str, Any]:
    return {
        "level_labels": service.LEVEL_LABELS, "status_labels": service.STATUS_LABELS,
        "category_labels": service.CATEGORY_LABELS, "action_labels": service.ACTION_LABELS,
    }


@bp.get("/")
@signed_in
def page(caller: Caller) -> Response:
    args = load_query(TriageArgs(), request.args)
    queue = service.queue(caller, args, _photo_url)
    # The filters the page was opened with, kept on the next page's link.
    kept: dict[str, Any] = {key: request.args.getlist(key) for key in ("status", "level", "category", "area_id", "limit")
                            if request.args.get(key)}
    following = url_for(".page", **kept, **{k: v for k, v in queue["next"].items() if v}) if queue["next"] else None
    return render(
        "console/triage/page.html", reports=queue["items"], next_url=following,
        first_url=url_for(".page", **kept) if args.get("cursor") or args["group"] != "urgent" else None,
        levels=[level.value for level in ReportLevel], statuses=[status.value for status in ReportStatus],
        chosen_level=request.args.get("level", ""), chosen_status=request.args.get("status", ""),
        **_labels(),
    )


@bp.get("/<int:report_id>")
@signed_in
def report(caller: Caller, report_id: int) -> Response:
    return _report_page(caller, report_id)


@bp.get("/<int:report_id>/photos/<int:photo_id>")
@signed_in
def photo(caller: Caller, report_id: int, photo_id: int) -> Response:
    """The photo as ``GET /api/v1/reports/{id}/photos/{photo_id}`` serves it (404 out of reach)."""
    found, data = reports.get_photo_for(caller, report_id, photo_id)
    return image_response(data, found.content_type, PHOTO_CACHE_CONTROL)


@bp.post("/<int:report_id>/<any(acknowledge, assign, escalate, resolve):step>")
@signed_in
def act(caller: Caller, report_id: int, step: str) -> Response:
    """As the API: the form through the endpoint's schema (422), then the workflow's step (404
    out of reach, 403 escalated elsewhere, 409 from the wrong status, 422 a refused assignee)."""
    schema, perform = _STEPS[step]
    try:
        perform(caller, report_id, load_form(schema(), request.form))
    except ApiError as error:
        if error.status == 404:
            raise  # the page of a missing id, whatever else is wrong
        db.session.rollback()  # the report as it was, shown with the refusal
        refusal = {**describe_refusal(error, console_language()), "step": step}
        return _report_page(caller, report_id, refusal)
    flash(gettext(_DONE[step]), "ok")
    return cast(Response, redirect(url_for(".report", report_id=report_id), code=303))


def _report_page(caller: Caller, report_id: int, refusal: dict[str, Any] | None = None) -> Response:
    shown = service.report_page(caller, report_id, _photo_url)
    return render("console/triage/report.html", status=refusal["status"] if refusal else 200,
                  report=shown, refusal=refusal, **_labels())
