"""marshmallow schemas of report exports: each report's own arguments and the format; export jobs."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import Instant
from reports.coverage.schemas import CoverageArgsSchema
from reports.exports.base import ExportFormat
from reports.exports.models import ExportStatus
from reports.exports.service import ReportKind
from reports.participation.schemas import AreaParticipationArgs

SERIES_ONLY_PARTICIPATION = i18n.N_("Only the participation report has a series.")
i18n.register_messages(SERIES_ONLY_PARTICIPATION)
_FORMATS = [export_format.value for export_format in ExportFormat]


class ExportFormatArgs(ma.Schema):
    export_format = fields.String(
        data_key="format",
        validate=validate.OneOf(_FORMATS),
        metadata={
            "description": "xlsx or csv; without it, the Accept header chooses (text/csv for CSV), else xlsx",
        },
    )


class ParticipationExportArgs(AreaParticipationArgs, ExportFormatArgs):
    pass


class CoverageExportArgs(CoverageArgsSchema, ExportFormatArgs):
    pass


class ExportJobCreateSchema(AreaParticipationArgs):
    """The report, the format and the report's own arguments (those of its GET export)."""

    report = fields.String(
        required=True,
        validate=validate.OneOf([kind.value for kind in ReportKind]),
        metadata={"description": "Which report: participation or coverage"},
    )
    export_format = fields.String(
        data_key="format",
        load_default=ExportFormat.XLSX.value,
        validate=validate.OneOf(_FORMATS),
        metadata={"description": "xlsx (the default) or csv"},
    )

    @ma.validates_schema
    def _series_of_participation(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("report") == ReportKind.COVERAGE and data.get("series") is not None:
            raise ma.ValidationError({"series": [SERIES_ONLY_PARTICIPATION]})


class ExportJobSchema(ma.Schema):
    id = fields.Integer(required=True)
    report = fields.String(required=True, metadata={"enum": [kind.value for kind in ReportKind]})
    format = fields.String(required=True, metadata={"enum": _FORMATS})
    language = fields.String(required=True, metadata={"description": "Of the headers (the request's Accept-Language)"})
    area_id = fields.Integer(required=True)
    args = fields.Dict(
        required=True,
        metadata={"description": "The report's arguments, the period made explicit (a month left out: the one then under way)"},
    )
    status = fields.String(required=True, metadata={"enum": [status.value for status in ExportStatus]})
    row_count = fields.Integer(required=True, allow_none=True, metadata={"description": "Rows below the headers, when done"})
    size_bytes = fields.Integer(required=True, allow_none=True)
    error_code = fields.String(
        required=True, allow_none=True, metadata={"description": "Why it failed (a problem code), when failed"}
    )
    created_at = Instant(required=True)
    started_at = Instant(required=True, allow_none=True)
    finished_at = Instant(required=True, allow_none=True)
    expires_at = Instant(required=True, metadata={"description": "The job and its file are deleted then"})
    download_url = fields.String(
        required=True, allow_none=True, metadata={"description": "Where to GET the file, once done"}
    )
