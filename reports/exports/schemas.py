"""marshmallow schemas of report exports: the report's own arguments and the format."""

from __future__ import annotations

from marshmallow import fields, validate

from reports.exports.service import ExportFormat
from reports.participation.schemas import AreaParticipationArgs


class ParticipationExportArgs(AreaParticipationArgs):
    export_format = fields.String(
        data_key="format",
        validate=validate.OneOf([export_format.value for export_format in ExportFormat]),
        metadata={
            "description": "xlsx or csv; without it, the Accept header chooses (text/csv for CSV), else xlsx",
        },
    )
