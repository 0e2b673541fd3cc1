"""HTTP layer of report exports: parse, authorise and compute as the report does, then stream."""

from __future__ import annotations

from typing import Any

from flask import current_app, request, send_file
from flask_smorest import Blueprint

from core import i18n
from core.auth import MANAGERS, auth_required, current_caller
from core.errors import ApiError
from core.uploads import OCTET_STREAM
from reports.exports import service as exports
from reports.exports.schemas import ParticipationExportArgs
from reports.exports.service import CSV_MIMETYPE, MIMETYPES, XLSX_MIMETYPE, ExportFormat
from reports.replica import reading_reports

blp = Blueprint(
    "reports-exports",
    __name__,
    url_prefix="/api/v1",
    description="Report exports: the participation report as an XLSX workbook or a CSV table",
)

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


def _chosen(args: dict[str, Any]) -> tuple[ExportFormat, str]:
    """The format (the ``format`` argument, else the Accept header) and the type it is sent as
    (``application/octet-stream`` when the client prefers it to the format's own type)."""
    requested = args.get("export_format")
    accept = request.accept_mimetypes
    if requested is None and not accept:
        requested = ExportFormat.XLSX  # no Accept header: any type will do
    if requested is None:
        best = accept.best_match([XLSX_MIMETYPE, CSV_MIMETYPE, OCTET_STREAM])
        if best is None:
            raise ApiError(NO_ACCEPTABLE_FORMAT, code="not_acceptable", status=406)
        export_format = ExportFormat.CSV if best == CSV_MIMETYPE else ExportFormat.XLSX
    else:
        export_format = ExportFormat(requested)
    own = MIMETYPES[export_format]
    if accept and accept.best_match([own, OCTET_STREAM]) == OCTET_STREAM:
        return export_format, OCTET_STREAM
    return export_format, own


@blp.route("/reports/participation/export", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(ParticipationExportArgs, location="query")
@blp.doc(**_download_doc())
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(406, response="NOT_ACCEPTABLE")
@reading_reports()
def export_area_participation(args: dict[str, Any]) -> Any:
    """An area's participation in a period, as XLSX or CSV

    The figures of GET /reports/participation with the same arguments, rights and refusals (an area
    outside my subtree 403 out_of_scope before anything is computed; a bad period or an unknown
    area 422), as a download. `format=xlsx` (the default) or `format=csv`, or without `format` the
    Accept header (`text/csv`, the XLSX type or `application/octet-stream`); an unknown `format` is
    422 validation_failed, an Accept header naming neither 406 not_acceptable. Headers in Chinese,
    in English with `Accept-Language: en`. XLSX: one sheet for the area, one for its children (its
    volunteers, under a grid), one for the series when `series` is given; frozen header row. CSV:
    UTF-8 with a byte order mark, one table whose `level` column tells the area's row from its
    children's and the series' (`day`/`week`). Text that starts with =, +, -, @, tab or CR gets a
    leading single quote, so no cell runs as a formula.
    """
    export_format, mimetype = _chosen(args)
    export = exports.participation_export(current_caller(), args)
    language = i18n.current_language()
    ascii_name, name = export.file_names(export_format, language)
    if export_format == ExportFormat.XLSX:
        response = send_file(exports.xlsx_file(export, language), mimetype=mimetype, download_name=ascii_name)
    else:
        response = current_app.response_class(exports.csv_stream(export, language), mimetype=mimetype)
        if mimetype == CSV_MIMETYPE:
            response.headers["Content-Type"] = f"{CSV_MIMETYPE}; charset=utf-8; header=present"
    response.headers["Content-Disposition"] = exports.content_disposition(ascii_name, name)
    response.headers["Cache-Control"] = EXPORT_CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Vary"] = "Accept, Accept-Language"
    return response
