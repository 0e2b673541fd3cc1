"""HTTP layer of report exports: parse, authorise and compute as the report does, then stream; and
export jobs (queue, status, download)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

from flask import Response, current_app, request, send_file, url_for
from flask_smorest import Blueprint
from marshmallow import Schema

from core import i18n
from core.auth import MANAGERS, Caller, auth_required, current_caller
from core.errors import ApiError, error_docs
from core.uploads import OCTET_STREAM
from reports.exports import jobs
from reports.exports import service as exports
from reports.exports.base import CSV_MIMETYPE, MIMETYPES, XLSX_MIMETYPE, ExportFormat, ReportExport, content_disposition
from reports.exports.models import ExportStatus, ReportExportJob
from reports.exports.schemas import CoverageExportArgs, ExportJobCreateSchema, ExportJobSchema, ParticipationExportArgs
from reports.exports.service import ReportKind
from reports.replica import reading_reports

blp = Blueprint(
    "reports-exports",
    __name__,
    url_prefix="/api/v1",
    description="Report exports: every report as an XLSX workbook or a CSV table, at once or built by a job",
)
_errors = error_docs(blp)
F = TypeVar("F", bound=Callable[..., Any])

#: The exported figures are personal data (volunteers' names): no shared cache keeps them.
EXPORT_CACHE_CONTROL = "private, no-store"
NO_ACCEPTABLE_FORMAT = i18n.N_("Ask for an XLSX workbook or a CSV table (format=xlsx or format=csv).")
i18n.register_messages(NO_ACCEPTABLE_FORMAT)
i18n.register_titles(i18n.title("not_acceptable", "No acceptable format"))


def _download_doc() -> dict[str, Any]:
    """One 200 listing each type the export may be sent as. ``application/octet-stream`` comes before
    ``text/csv``: a generated client reads the first type it knows, and it must read a workbook as
    bytes, never as text."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {XLSX_MIMETYPE: binary, OCTET_STREAM: binary, CSV_MIMETYPE: {"schema": {"type": "string"}}}
    description = "The report as a download (Content-Disposition: attachment with its file name)"
    return {"responses": {"200": {"description": description, "content": content}}}


def _sent_as(export_format: ExportFormat) -> str:
    """The format's own type, or ``application/octet-stream`` when the client prefers it."""
    own, accept = MIMETYPES[export_format], request.accept_mimetypes
    if accept and accept.best_match([own, OCTET_STREAM]) == OCTET_STREAM:
        return OCTET_STREAM
    return own


def _chosen(args: dict[str, Any]) -> ExportFormat:
    """The format: the ``format`` argument, else the Accept header."""
    requested = args.get("export_format")
    accept = request.accept_mimetypes
    if requested is not None:
        return ExportFormat(requested)
    if not accept:
        return ExportFormat.XLSX  # no Accept header: any type will do
    best = accept.best_match([XLSX_MIMETYPE, CSV_MIMETYPE, OCTET_STREAM])
    if best is None:
        raise ApiError(NO_ACCEPTABLE_FORMAT, code="not_acceptable", status=406)
    return ExportFormat.CSV if best == CSV_MIMETYPE else ExportFormat.XLSX


def _download(
    export_format: ExportFormat, names: tuple[str, str], file: str | IO[bytes] | None = None,
    chunks: Iterator[bytes] | None = None,
) -> Response:
    """A file (a path or an open file) or chunks as an attachment named ``names`` (ASCII, and in full)."""
    mimetype = _sent_as(export_format)
    if file is not None:
        response = send_file(file, mimetype=mimetype, download_name=names[0], conditional=False)
    else:
        response = current_app.response_class(chunks, mimetype=mimetype)
    if mimetype == CSV_MIMETYPE:
        response.headers["Content-Type"] = f"{CSV_MIMETYPE}; charset=utf-8; header=present"
    response.headers["Content-Disposition"] = content_disposition(*names)
    response.headers["Cache-Control"] = EXPORT_CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Vary"] = "Accept, Accept-Language"
    return response


#: The end of every report's GET export's description (the OpenAPI document's).
_LIKE_THE_REPORT = """
    Same arguments, rights and refusals as the report's JSON (an area outside my subtree 403
    out_of_scope before anything is computed; a bad period or an unknown area 422). `format=xlsx`
    (the default) or `format=csv`, or without `format` the Accept header (`text/csv`, the XLSX
    type or `application/octet-stream`); an unknown `format` is 422 validation_failed, an Accept
    header naming neither 406 not_acceptable. Headers in Chinese, in English with
    `Accept-Language: en`; frozen header row. Text that starts with =, +, -, @, tab or CR gets a
    leading single quote, so no cell runs as a formula. Large exports: POST /reports/exports.
"""


def _report_download(args_schema: type[Schema]) -> Callable[[F], F]:
    """What every report's GET export declares: managers only, the report's query arguments with
    the format, the download's types, 403, 406 and 503 (the reports replica unreachable)."""

    def decorate(view: F) -> F:
        view.__doc__ = f"{(view.__doc__ or '').rstrip()}\n{_LIKE_THE_REPORT}    "
        view = reading_reports()(view)
        view = blp.alt_response(503, response="SERVICE_UNAVAILABLE")(view)
        view = blp.alt_response(406, response="NOT_ACCEPTABLE")(view)
        view = blp.alt_response(403, response="FORBIDDEN")(view)
        view = blp.doc(**_download_doc())(view)
        view = blp.arguments(args_schema, location="query")(view)
        return auth_required(*MANAGERS)(view)

    return decorate


def _export_response(kind: ReportKind, args: dict[str, Any]) -> Response:
    return export_response(kind, current_caller(), args, i18n.current_language())


def export_response(kind: ReportKind, caller: Caller, args: dict[str, Any], language: str) -> Response:
    """The report's download for ``caller``, headed in ``language``: the very bytes and headers of
    the API's GET export, for the console's download buttons too (which pass the console's language)."""
    export_format = _chosen(args)
    export: ReportExport = exports.export_of(kind, caller, args)
    names = export.file_names(export_format, language)
    if export_format == ExportFormat.XLSX:
        return _download(export_format, names, file=exports.xlsx_file(export, language))
    return _download(export_format, names, chunks=exports.csv_stream(export, language))


@blp.route("/reports/participation/export", methods=["GET"])
@_report_download(ParticipationExportArgs)
def export_area_participation(args: dict[str, Any]) -> Any:
    """An area's participation in a period, as XLSX or CSV

    The figures of GET /reports/participation with the same arguments, as a download. XLSX: one
    sheet for the area, one for its children (its volunteers, under a grid), one for the series
    when `series` is given. CSV: UTF-8 with a byte order mark, one table whose `level` column tells
    the area's row from its children's and the series' (`day`/`week`).
    """
    return _export_response(ReportKind.PARTICIPATION, args)


@blp.route("/reports/coverage/export", methods=["GET"])
@_report_download(CoverageExportArgs)
def export_coverage(args: dict[str, Any]) -> Any:
    """Coverage of every grid of an area, as XLSX or CSV

    The figures of GET /reports/coverage with the same arguments, as a download, in hours. XLSX:
    the area's totals; the grids ranked weakest first, with the previous period and the change;
    the uncovered shifts (wall-clock times of the grid's zone); the days without patrol; the grids
    below their steward quota. CSV: UTF-8 with a byte order mark, one table of every sheet's rows,
    whose first column `part` (area, grid, uncovered_shift, days_without_patrol, below_quota)
    tells which sheet a row is of.
    """
    return _export_response(ReportKind.COVERAGE, args)


def _job_view(job: ReportExportJob) -> dict[str, Any]:
    done = job.status == ExportStatus.DONE
    return {
        **{name: getattr(job, name) for name in ExportJobSchema().fields if name != "download_url"},
        "download_url": url_for(".download_export", export_id=job.id) if done else None,
    }


@blp.route("/reports/exports", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(ExportJobCreateSchema)
@blp.response(
    202, ExportJobSchema,
    headers={"Location": {"description": "The job's status", "schema": {"type": "string"}}},
)
@_errors(403, 422)
def queue_export(args: dict[str, Any]) -> Any:
    """Build a report export in the background

    For exports too large for one request (a district's year, a grid's volunteers over months):
    `report` (participation or coverage), `format` (xlsx, the default, or csv) and the report's
    own arguments, authorised and checked as its GET export (403 out_of_scope, 422, before
    anything is queued). Answers 202 with the job (Location: its status); a task builds the file
    with my rights as they are now, headers in my Accept-Language. GET the job until `status` is
    `done` (then `download_url`) or `failed` (`error_code`). Jobs and files are deleted
    `REPORTS_EXPORT_TTL_HOURS` after they finish.
    """
    job = jobs.queue_export(current_caller(), args, i18n.current_language())
    return _job_view(job), {"Location": url_for(".get_export", export_id=job.id)}


@blp.route("/reports/exports/<int:export_id>", methods=["GET"])
@auth_required(*MANAGERS)
@blp.response(200, ExportJobSchema)
@_errors(404)
def get_export(export_id: int) -> Any:
    """An export job of mine: its status, and where to download it once done

    Someone else's job, or one expired, answers as a job that does not exist (404 export_not_found).
    """
    return _job_view(jobs.own_job(current_caller(), export_id))


@blp.route("/reports/exports/<int:export_id>/file", methods=["GET"])
@auth_required(*MANAGERS)
@blp.doc(**_download_doc())
@_errors(403, 404, 409)
def download_export(export_id: int) -> Any:
    """The file of an export job of mine

    The XLSX or CSV built by the job (as its GET export would send it). 409 export_not_ready while
    queued or running, export_failed when it failed; 403 out_of_scope when the area is no longer
    in my subtree (my rights are checked again now); 404 as for the job's status.
    """
    job, path = jobs.downloadable(current_caller(), export_id)
    names = (job.ascii_download_name or path.name, job.download_name or path.name)
    return _download(ExportFormat(job.format), names, file=str(path))
