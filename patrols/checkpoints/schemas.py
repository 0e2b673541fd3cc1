"""marshmallow schemas of checkpoints, scans and the patrol summary (visited and missed checkpoints).

Times come in as ISO 8601 instants with an offset (the device's clock) and go out in UTC
(``core.fields.Instant``). Coordinates are WGS84 degrees.
"""

from __future__ import annotations

from typing import TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import Instant, QueryBoolean, StrictBoolean
from core.pagination import PageArgs
from core.validators import Text
from patrols.schemas import DeviceTime, accuracy, latitude, longitude


class CheckpointCreateSchema(ma.Schema):
    name = Text(required=True, validate=validate.Length(max=100))
    lat = latitude(required=True)
    lon = longitude(required=True)


class CheckpointCreateInput(TypedDict):
    """What :class:`CheckpointCreateSchema` loads."""

    name: str
    lat: float
    lon: float


class CheckpointQueryArgs(PageArgs):
    include_inactive = QueryBoolean(load_default=False)


class CheckpointSchema(ma.Schema):
    id = fields.Integer(required=True)
    grid_id = fields.Integer(required=True)
    name = fields.String(required=True)
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)
    active = StrictBoolean(required=True)
    qr_version = fields.Integer(required=True)
    qr_payload = fields.String(
        required=True, allow_none=True,
        metadata={"description": "Text to print as the QR code (SW1.<id>.<version>.<mac>); null once deactivated"},
    )
    created_at = Instant(required=True)
    deactivated_at = Instant(required=True, allow_none=True)


class ScanInSchema(ma.Schema):
    client_id = fields.UUID(
        required=True, metadata={"description": "Generated on the phone for this scan; the same id again is a replay"}
    )
    payload = fields.String(
        required=True, validate=validate.Length(min=1, max=100), metadata={"description": "The scanned QR text"}
    )
    lat = latitude(required=True)
    lon = longitude(required=True)
    accuracy_m = accuracy(load_default=None, allow_none=True)
    device_time = DeviceTime(required=True, metadata={"description": "The phone's clock at the scan, with offset"})


class ScanSchema(ma.Schema):
    id = fields.Integer(required=True)
    client_id = fields.String(required=True)
    assignment_id = fields.Integer(required=True)
    patrol_id = fields.Integer(required=True)
    checkpoint_id = fields.Integer(required=True)
    checkpoint_name = fields.String(required=True)
    device_time = Instant(required=True)
    received_at = Instant(required=True)
    lat = fields.Float(
        required=True, allow_none=True,
        metadata={"description": "Null once the patrol's positions are purged (PRESENCE_POSITION_RETENTION_DAYS)"},
    )
    lon = fields.Float(required=True, allow_none=True)
    accuracy_m = fields.Float(required=True, allow_none=True)
    distance_m = fields.Float(required=True, metadata={"description": "Metres from the checkpoint"})
    flags = fields.List(
        fields.String(), required=True, metadata={"description": "far_from_checkpoint; empty when plausible"}
    )


class VisitedCheckpointSchema(ma.Schema):
    checkpoint_id = fields.Integer(required=True)
    name = fields.String(required=True)
    first_scanned_at = Instant(required=True)
    scans = fields.Integer(required=True)
    flagged = StrictBoolean(required=True, metadata={"description": "A scan of it carries a flag"})


class MissedCheckpointSchema(ma.Schema):
    checkpoint_id = fields.Integer(required=True)
    name = fields.String(required=True)


class PatrolSummarySchema(ma.Schema):
    assignment_id = fields.Integer(required=True)
    patrol_id = fields.Integer(required=True, allow_none=True)
    shift_id = fields.Integer(required=True)
    grid_id = fields.Integer(required=True)
    presence_status = fields.String(required=True, allow_none=True)
    served_minutes = fields.Integer(required=True, allow_none=True)
    distance_m = fields.Float(required=True)
    track_point_count = fields.Integer(required=True)
    visited = fields.List(fields.Nested(VisitedCheckpointSchema), required=True)
    missed = fields.List(
        fields.Nested(MissedCheckpointSchema), required=True,
        metadata={"description": "Active checkpoints of the grid not scanned on this patrol"},
    )
