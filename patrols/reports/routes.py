"""HTTP layer of reports: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.idempotency import idempotent
from core.pagination import page_schema
from core.uploads import image_download_doc, image_response, upload_body_limit
from patrols.reports import service as reports
from patrols.reports import workflow
from patrols.reports.schemas import (
    AssignInput,
    AssignSchema,
    MyReportListArgs,
    NoteOptionalInput,
    NoteOptionalSchema,
    NoteRequiredInput,
    NoteRequiredSchema,
    PhotoUploadSchema,
    ReportCreateInput,
    ReportCreateSchema,
    ReportDetailSchema,
    ReportListArgs,
    ReportPhotoSchema,
    ReportSchema,
)


class _MultipartParser(FlaskParser):
    def load_files(self, req: Any, schema: Any) -> Any:
        """A multipart body's form fields and files together, so one schema documents both
        (flask-smorest documents a single request body per operation)."""
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)


class _ReportsBlueprint(Blueprint):
    ARGUMENTS_PARSER = _MultipartParser()


blp = _ReportsBlueprint("patrol-reports", __name__, url_prefix="/api/v1", description="Reports (事件上报) with the four-colour warning, photos, and their workflow")

#: Photos are personal data: only the caller's own cache may keep them.
PHOTO_CACHE_CONTROL = "private, max-age=3600"


def _photo_url(report_id: int, photo_id: int) -> str:
    return url_for("patrol-reports.get_report_photo", report_id=report_id, photo_id=photo_id)


def _detail(report: Any) -> dict[str, Any]:
    return reports.report_view(report, _photo_url, with_history=True)


@blp.route("/reports", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(ReportCreateSchema)
@blp.response(201, ReportDetailSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def file_report(data: ReportCreateInput) -> Any:
    """File a report (事件上报)

    During or outside a shift: category, four-colour level, description, position, device time and
    a `client_id` made by the phone. Sending the same `client_id` again returns the first report
    (201, unchanged) however often the phone retries. The grid is `grid_id` (a grid of my city)
    or else the grid covering the position, or else my assignment's grid. Every report sends
    `report_filed`; red and orange ones are for the grid's organisers at once. Photos follow
    one by one with `POST /reports/{id}/photos`. Refusals: 403 volunteer_not_active; 404
    assignment_not_found (not my assignment), volunteer_not_found; 409 client_id_taken (another
    volunteer's id); 422 coordinates out of range, a grid outside my city or no grid here.
    """
    report, _created = reports.file_report(current_caller(), data)
    return _detail(report)


@blp.route("/reports/<int:report_id>/photos", methods=["POST"])
# Outermost: the idempotency key's fingerprint reads the body, which must be allowed to be large.
@upload_body_limit("REPORT_PHOTO_MAX_BYTES")
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(PhotoUploadSchema, location="files")
@blp.response(201, ReportPhotoSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
@blp.alt_response(503, response="SERVICE_UNAVAILABLE")
def upload_report_photo(data: dict[str, Any], report_id: int) -> Any:
    """Add a photo to my report

    multipart/form-data with `client_id` (a UUID made by the phone for this photo) and `file`: one
    photo per request, so on a weak network each is retried on its own; the same `client_id` again
    returns the first upload (201). JPEG or PNG only, judged by content (415
    unsupported_photo_type); at most REPORT_PHOTO_MAX_BYTES (413 photo_too_large); a broken
    image or too many pixels is 422 photo_unreadable; a seventh photo 409 too_many_photos.
    The photo is re-encoded, so EXIF (GPS, device) and other metadata are dropped. Another
    volunteer's report is 404 report_not_found; 503 photo_storage_unavailable when the store
    cannot be reached (retry).
    """
    photo, _created = reports.add_photo(current_caller(), report_id, str(data["client_id"]), data["file"])
    return reports.photo_view(photo, _photo_url)


@blp.route("/reports/<int:report_id>/photos/<int:photo_id>", methods=["GET"])
@auth_required()
@blp.doc(**image_download_doc("The stored photo (JPEG or PNG, as its `content_type` says), without metadata"))
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_report_photo(report_id: int, photo_id: int) -> Any:
    """A report's photo

    The reporter, and organisers, staff and admins whose area covers the report's grid; anyone else
    404 report_not_found, as an unknown id; an unknown photo 404 photo_not_found.
    """
    photo, data = reports.get_photo_for(current_caller(), report_id, photo_id)
    return image_response(data, photo.content_type, PHOTO_CACHE_CONTROL)


@blp.route("/reports/mine", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(MyReportListArgs, location="query")
@blp.response(200, page_schema(ReportSchema))
@blp.alt_response(404, response="NOT_FOUND")
def list_my_reports(args: dict[str, Any]) -> Any:
    """My reports

    Newest first, with their status; filter by `level`, `status`, `category` (each repeatable)
    and the receipt time range. The history of one report: `GET /reports/{id}`.
    """
    page = workflow.list_mine(current_caller(), args)
    return {**page, "items": [reports.report_view(report, _photo_url) for report in page["items"]]}


@blp.route("/reports", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(ReportListArgs, location="query")
@blp.response(200, page_schema(ReportSchema))
@blp.alt_response(403, response="FORBIDDEN")
def list_reports(args: dict[str, Any]) -> Any:
    """Reports in my area

    Reports in the grids of `area_id`'s subtree (default: my whole area), newest first; filter by
    `level`, `status`, `category` (each repeatable), receipt time range, or `assigned_to_me`.
    An area outside mine is 403 out_of_scope; an unknown one 422.
    """
    page = workflow.list_reports(current_caller(), args)
    return {**page, "items": [reports.report_view(report, _photo_url) for report in page["items"]]}


@blp.route("/reports/<int:report_id>", methods=["GET"])
@auth_required()
@blp.response(200, ReportDetailSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_report(report_id: int) -> Any:
    """One report, with its photos and history

    The reporter sees their own; organisers, staff and admins those in grids of their area. Any
    other is 404 report_not_found, the answer for an id that does not exist.
    """
    return _detail(reports.get_report_for(current_caller(), report_id))


@blp.route("/reports/<int:report_id>/acknowledge", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(NoteOptionalSchema)
@blp.response(200, ReportDetailSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def acknowledge_report(data: NoteOptionalInput, report_id: int) -> Any:
    """Acknowledge a report

    open → acknowledged, with an optional note; kept in the history and signalled.
    Refusals: 403 report_escalated (escalated to a district I do not cover and not assigned to
    me); 404 report_not_found (also a report in a grid outside my area); 409
    invalid_report_transition.
    """
    return _detail(workflow.acknowledge(current_caller(), report_id, data))


@blp.route("/reports/<int:report_id>/assign", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(AssignSchema)
@blp.response(200, ReportDetailSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def assign_report(data: AssignInput, report_id: int) -> Any:
    """Assign a report

    Any unresolved report → assigned to `assignee_id`: an active organiser, staff member or
    admin inside my area whose area covers the report's grid (else 422). Reassigning is allowed.
    Refusals: 403 report_escalated (escalated to a district I do not cover and not assigned to
    me); 404 report_not_found (also a report in a grid outside my area); 409
    invalid_report_transition.
    """
    return _detail(workflow.assign(current_caller(), report_id, data))


@blp.route("/reports/<int:report_id>/escalate", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(NoteOptionalSchema)
@blp.response(200, ReportDetailSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def escalate_report(data: NoteOptionalInput, report_id: int) -> Any:
    """Escalate a report to the district

    open, acknowledged or assigned → escalated to the district above the grid; from then on only
    callers covering that district, or the person it is later assigned to, act on it.
    Refusals: 403 report_escalated (escalated to a district I do not cover and not assigned to
    me); 404 report_not_found (also a report in a grid outside my area); 409
    invalid_report_transition.
    """
    return _detail(workflow.escalate(current_caller(), report_id, data))


@blp.route("/reports/<int:report_id>/resolve", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(NoteRequiredSchema)
@blp.response(200, ReportDetailSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def resolve_report(data: NoteRequiredInput, report_id: int) -> Any:
    """Resolve a report

    Any unresolved report → resolved, with a required note (the outcome). Final.
    Refusals: 403 report_escalated (escalated to a district I do not cover and not assigned to
    me); 404 report_not_found (also a report in a grid outside my area); 409
    invalid_report_transition.
    """
    return _detail(workflow.resolve(current_caller(), report_id, data))
