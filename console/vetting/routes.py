"""The vetting queue (/console/vetting/): pending volunteers of the caller's area, oldest first.

The list is ``volunteers.service.list_volunteers`` with ``status=pending`` (ordered by id, which is
the order of registration), so scope and masking are the API's: an organiser sees national ID
numbers masked exactly as ``GET /api/v1/volunteers`` shows them. Approve and reject load the API's
schemas and call ``get_in_scope`` then ``change_status`` as ``volunteers/routes.py`` does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import marshmallow as ma
from flask import Blueprint, Response, flash, redirect, request, url_for
from werkzeug.datastructures import MultiDict

from console.signin import signed_in
from console.vetting.schemas import VettingArgs, describe_refusal, load_form, load_query
from console.web import console_language, gettext, render
from core.auth import Caller
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from core.i18n import N_
from core.timeutil import zone
from volunteers import service
from volunteers.models import VolunteerStatus
from volunteers.schemas import ApproveSchema, ReasonRequiredSchema

bp = Blueprint("vetting", __name__, url_prefix="/vetting")
NAV_ITEM = ("console.vetting.page", N_("Vetting"))


@bp.get("/")
@signed_in
def page(caller: Caller) -> Response:
    return _queue(caller, load_query(VettingArgs(), request.args))


@bp.post("/<int:volunteer_id>/approve")
@signed_in
def approve(caller: Caller, volunteer_id: int) -> Response:
    return _decide(caller, volunteer_id, "approve", ApproveSchema())


@bp.post("/<int:volunteer_id>/reject")
@signed_in
def reject(caller: Caller, volunteer_id: int) -> Response:
    return _decide(caller, volunteer_id, "reject", ReasonRequiredSchema())


def _decide(caller: Caller, volunteer_id: int, action: str, schema: ma.Schema) -> Response:
    """As the API: the form first (422), then the volunteer in reach (404 as a missing id), then
    the transition (409 when no longer pending). A refusal shows the queue again, unchanged."""
    back = load_query(VettingArgs(), _page_of_form())
    try:
        data = load_form(schema, request.form)
        volunteer = service.get_in_scope(caller, volunteer_id)
        if action == "approve":
            changes = {"certificate_no": data["certificate_no"], "armband_no": data.get("armband_no")}
        else:
            changes = {"reason": data["reason"]}
        service.change_status(caller, volunteer, action, **changes)
    except (ValidationFailed, Conflict) as error:
        db.session.rollback()  # nothing the refused step may have flushed is shown, nor kept
        refusal = {**describe_refusal(error, console_language()), "volunteer_id": volunteer_id, "action": action}
        return _queue(caller, back, refusal=refusal)
    if action == "approve":
        flash(gettext("Approved %(name)s.", name=volunteer.real_name), "ok")
    else:
        flash(gettext("Rejected %(name)s.", name=volunteer.real_name), "ok")
    target = url_for(".page", cursor=back.get("cursor") or None, limit=back["limit"] if request.form.get("limit") else None)
    return cast(Response, redirect(target, code=303))


def _page_of_form() -> MultiDict[str, str]:
    """The queue page the form was sent from (its hidden ``cursor`` and ``limit``), to go back to."""
    return MultiDict({key: request.form.get(key, "") for key in ("cursor", "limit")})


def _queue(caller: Caller, args: dict[str, Any], refusal: dict[str, Any] | None = None) -> Response:
    page = service.list_volunteers(
        caller, {"status": VolunteerStatus.PENDING.value, "limit": args["limit"], "cursor": args.get("cursor")}
    )
    language = console_language()
    rows = [_row(volunteer, language) for volunteer in page["items"]]
    return render(
        "console/vetting/page.html", status=refusal["status"] if refusal else 200, rows=rows,
        cursor=args.get("cursor") or "", limit=args["limit"], next_cursor=page["next_cursor"], refusal=refusal,
        # The page size only when one was chosen, so that the forms bring the caller back to a plain URL.
        kept_limit=args["limit"] if request.values.get("limit") else "",
    )


def _row(volunteer: dict[str, Any], language: str) -> dict[str, Any]:
    """A volunteer of ``service.view_for`` (masked for organisers) with names and a local time."""
    kind, grid = volunteer["kind"], volunteer["home_grid"]
    return {
        **volunteer,
        "kind_name": kind.name_zh if language == "zh" else kind.name_en,
        "grid_name": grid.name,
        "registered_at": local_time(volunteer["created_at"], grid.timezone),
    }


def local_time(moment: datetime, timezone: str) -> str:
    """A UTC instant as the wall-clock time of the area it belongs to (minutes)."""
    return str(moment.astimezone(zone(timezone)).strftime("%Y-%m-%d %H:%M"))
