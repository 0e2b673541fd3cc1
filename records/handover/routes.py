"""HTTP layer of the hand-over export: parse, authorise, write the workbook, send it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any

from flask import Response, current_app, request
from flask_smorest import Blueprint

from core import i18n
from core.auth import OFFICIALS, auth_required, current_caller
from core.errors import error_docs
from core.uploads import OCTET_STREAM
from records.handover import service
from records.handover.schemas import HandoverArgs, HandoverInput
from reports.exports.base import XLSX_MIMETYPE, content_disposition

blp = Blueprint(
    "records-handover",
    __name__,
    url_prefix="/api/v1",
    description="Hand-over to the national volunteer system: an area's volunteers and service records as XLSX",
)
_errors = error_docs(blp)

#: Full ID numbers: no shared cache keeps them.
CACHE_CONTROL = "private, no-store"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
#: Bytes of the workbook sent at a time.
CHUNK_BYTES = 64 * 1024


@blp.route("/records/handover", methods=["GET"])
@auth_required(*OFFICIALS)
@blp.arguments(HandoverArgs, location="query")
@blp.doc(
    responses={
        "200": {
            "description": "The workbook (Content-Disposition: attachment with its file name)",
            "content": {XLSX_MIMETYPE: _BINARY, OCTET_STREAM: _BINARY},
        }
    }
)
@_errors(401, 403, 422)
def handover_export(args: HandoverInput) -> Any:
    """An area's volunteers and their service records in a period, for the national volunteer system

    XLSX with two sheets. 志愿者 (Volunteers): each volunteer with service that counts, recorded on
    a grid of the area between `first` and `last` (local days, inclusive): volunteer number, name,
    ID type, full ID number, mobile, kind, registration date, hours and records in the period.
    服务记录 (Service records): each such record: volunteer number, name, ID number, date, the
    shift's start and end (local; blank for hours entered by hand), hours (two decimals), content
    (the shift's title or the organiser's note), place (community and grid), how it was recorded,
    the recording organisation (the grid's community) and its code, the record's number. Voided
    records are left out; a correction's new record is in. Headers in Chinese, in English with
    `Accept-Language: en`; text starting with =, +, -, @, tab or CR gets a leading single quote.

    Full ID numbers, so staff and admins only (organisers 403 forbidden); an area outside my
    subtree 403 out_of_scope; an unknown area, a bad date, `last` before `first` or more than
    366 days 422. Every export is in the audit log (`records.handover_export`: who, the area,
    the period and the volunteers exported).
    """
    caller, language = current_caller(), i18n.current_language()
    handover = service.prepare(caller, args)
    file = service.xlsx_file(caller, handover, language)
    ascii_name, name = handover.file_names(language)
    return _download(file, ascii_name, name)


def _download(file: IO[bytes], ascii_name: str, name: str) -> Response:
    """The workbook as an attachment; as ``application/octet-stream`` when the client prefers it."""
    accept = request.accept_mimetypes
    preferred = accept.best_match([XLSX_MIMETYPE, OCTET_STREAM]) if accept else XLSX_MIMETYPE
    mimetype = OCTET_STREAM if preferred == OCTET_STREAM else XLSX_MIMETYPE
    size = os.fstat(file.fileno()).st_size
    response = current_app.response_class(_chunks_then_close(file), mimetype=mimetype)
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = content_disposition(ascii_name, name)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Vary"] = "Accept, Accept-Language"
    return response


def _chunks_then_close(file: IO[bytes]) -> Iterator[bytes]:
    """The file's bytes, closing it once read, or when the server (or a client that never reads
    the body) drops the response: the temporary file is never left to the garbage collector."""
    try:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk
    finally:
        file.close()
