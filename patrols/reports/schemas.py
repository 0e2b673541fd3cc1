"""marshmallow schemas of reports: filing, photo upload, workflow steps, list arguments, output."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypedDict

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from core.fields import Instant, QueryBoolean
from core.pagination import PageArgs
from core.validators import id_field
from patrols.reports.models import ReportAction, ReportCategory, ReportLevel, ReportStatus
from patrols.schemas import latitude, longitude
from volunteers.schemas import short_text

_CATEGORIES = [category.value for category in ReportCategory]
_LEVELS = [level.value for level in ReportLevel]
_STATUSES = [status.value for status in ReportStatus]


class ReportCreateSchema(ma.Schema):
    client_id = fields.UUID(
        required=True,
        metadata={"description": "Made by the phone for this report; sending it again returns the first report"},
    )
    category = fields.String(
        required=True,
        validate=validate.OneOf(_CATEGORIES),
        metadata={"description": "dispute 矛盾纠纷, safety_hazard 安全隐患, suspicious_activity, help_needed, other"},
    )
    level = fields.String(
        required=True,
        validate=validate.OneOf(_LEVELS),
        metadata={"description": "Four-colour warning 四色预警; red and orange reach the organisers at once"},
    )
    description = short_text(2000, required=True)
    lat = latitude(required=True)
    lon = longitude(required=True)
    accuracy_m = fields.Float(
        load_default=None, allow_none=True, allow_nan=False, validate=validate.Range(min=0, max=100_000)
    )
    device_time = Instant(
        required=True, metadata={"description": "When the phone recorded it (ISO 8601 with offset)"}
    )
    grid_id = id_field(
        load_default=None,
        allow_none=True,
        metadata={"description": "A grid of your city; omitted: the grid covering the position"},
    )
    assignment_id = id_field(
        load_default=None,
        allow_none=True,
        metadata={"description": "Your own assignment, when the report is made on patrol"},
    )


class ReportCreateInput(TypedDict):
    """What :class:`ReportCreateSchema` loads."""

    client_id: uuid.UUID
    category: str
    level: str
    description: str
    lat: float
    lon: float
    accuracy_m: float | None  # defaulted by the schema
    device_time: datetime
    grid_id: int | None  # defaulted by the schema
    assignment_id: int | None  # defaulted by the schema


class PhotoUploadSchema(ma.Schema):
    """multipart/form-data: the photo and the phone's id for it."""

    file = Upload(required=True, metadata={"description": "A JPEG or PNG photo"})
    client_id = fields.UUID(
        required=True,
        metadata={"description": "Made by the phone for this photo; sending it again returns the first upload"},
    )


class NoteOptionalSchema(ma.Schema):
    note = short_text(2000, load_default=None, allow_none=True)


class NoteOptionalInput(TypedDict):
    """What :class:`NoteOptionalSchema` loads."""

    note: str | None  # defaulted by the schema


class NoteRequiredSchema(ma.Schema):
    note = short_text(2000, required=True, metadata={"description": "What was done"})


class NoteRequiredInput(TypedDict):
    """What :class:`NoteRequiredSchema` loads."""

    note: str


class AssignSchema(NoteOptionalSchema):
    assignee_id = id_field(
        required=True,
        metadata={"description": "An active organiser, staff member or admin in your area whose area covers the report's grid"},
    )


class AssignInput(TypedDict):
    """What :class:`AssignSchema` loads."""

    note: str | None  # defaulted by the schema
    assignee_id: int


class _ReportFilterArgs(PageArgs):
    level = fields.List(fields.String(validate=validate.OneOf(_LEVELS)), validate=validate.Length(max=4))
    status = fields.List(fields.String(validate=validate.OneOf(_STATUSES)), validate=validate.Length(max=5))
    category = fields.List(
        fields.String(validate=validate.OneOf(_CATEGORIES)), validate=validate.Length(max=5)
    )
    received_from = Instant(metadata={"description": "Received at or after (inclusive)"})
    received_to = Instant(metadata={"description": "Received before (exclusive)"})


class ReportListArgs(_ReportFilterArgs):
    area_id = id_field(
        strict=False, metadata={"description": "Any area in your subtree (default: your own area)"}
    )
    assigned_to_me = QueryBoolean(load_default=False)


class MyReportListArgs(_ReportFilterArgs):
    pass


class ReportPhotoSchema(ma.Schema):
    id = fields.Integer(required=True)
    client_id = fields.String(required=True)
    position = fields.Integer(required=True, metadata={"description": "1 to 6, in upload order"})
    content_type = fields.String(required=True, metadata={"enum": ["image/jpeg", "image/png"]})
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    size_bytes = fields.Integer(required=True)
    url = fields.String(required=True, metadata={"description": "Where the photo is served (same auth)"})
    created_at = Instant(required=True)


class ReportEventSchema(ma.Schema):
    id = fields.Integer(required=True)
    action = fields.String(required=True, metadata={"enum": [action.value for action in ReportAction]})
    from_status = fields.String(required=True, allow_none=True, metadata={"enum": _STATUSES})
    to_status = fields.String(required=True, metadata={"enum": _STATUSES})
    actor_id = fields.Integer(required=True, allow_none=True)
    assignee_id = fields.Integer(required=True, allow_none=True)
    note = fields.String(required=True, allow_none=True)
    at = Instant(required=True)


class ReportSchema(ma.Schema):
    id = fields.Integer(required=True)
    client_id = fields.String(required=True)
    volunteer_id = fields.Integer(required=True)
    reporter_name = fields.String(required=True)
    grid_id = fields.Integer(required=True)
    grid_name = fields.String(required=True)
    assignment_id = fields.Integer(required=True, allow_none=True)
    category = fields.String(required=True, metadata={"enum": _CATEGORIES})
    level = fields.String(required=True, metadata={"enum": _LEVELS})
    status = fields.String(required=True, metadata={"enum": _STATUSES})
    description = fields.String(required=True)
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)
    accuracy_m = fields.Float(required=True, allow_none=True)
    device_time = Instant(required=True)
    received_at = Instant(required=True)
    flags = fields.List(
        fields.String(), required=True, metadata={"description": "device_time_future when the phone's clock ran ahead"}
    )
    assignee_id = fields.Integer(required=True, allow_none=True)
    escalated_to_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "The district it was escalated to"}
    )
    resolution_note = fields.String(required=True, allow_none=True)
    resolved_at = Instant(required=True, allow_none=True)
    updated_at = Instant(required=True)
    photo_count = fields.Integer(required=True)
    photos = fields.List(fields.Nested(ReportPhotoSchema), required=True)


class ReportDetailSchema(ReportSchema):
    history = fields.List(
        fields.Nested(ReportEventSchema), required=True, metadata={"description": "Every step, oldest first"}
    )
