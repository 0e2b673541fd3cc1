"""marshmallow schemas of check-in, check-out and presence review (in and out).

Times come in as ISO 8601 instants with an offset (the device's clock) and go out in UTC
(``core.fields.Instant``). Coordinates are WGS84 degrees.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import Instant, StrictBoolean
from core.pagination import PageArgs
from patrols.schemas import DeviceTime, accuracy, latitude, longitude
from volunteers.schemas import ReasonOptionalSchema, ReasonRequiredSchema

PRESENCE_STATUSES = ["verified", "needs_review", "approved", "rejected"]
FLAGS_DESCRIPTION = (
    "Why presence needs review: outside_grid, poor_accuracy, clock_skew, device_time_future, "
    "mock_location, marked_absent, no_boundary; empty when verified"
)


class PresenceEventSchema(ma.Schema):
    client_id = fields.UUID(
        required=True,
        metadata={"description": "Generated on the phone for this event; the same id again is a replay"},
    )
    lat = latitude(required=True)
    lon = longitude(required=True)
    accuracy_m = accuracy(required=True)
    device_time = DeviceTime(
        required=True, metadata={"description": "The phone's clock when it happened, with offset"}
    )
    mock_location = StrictBoolean(
        load_default=False, metadata={"description": "The phone reports a mock-location provider"}
    )


class CheckInSchema(PresenceEventSchema):
    checkpoint_payload = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={
            "description": "A checkpoint's QR payload scanned at check-in: recorded as a scan (with "
            "this client_id) with the check-in's position and time; a forged or revoked payload is "
            "422 qr_invalid and nothing is recorded"
        },
    )


class PresenceEventRecordSchema(ma.Schema):
    client_id = fields.String(
        required=True, allow_none=True, metadata={"description": "Null for an automatic close"}
    )
    device_time = Instant(required=True, allow_none=True)
    received_at = Instant(
        required=True, allow_none=True, metadata={"description": "Our receipt time"}
    )
    lat = fields.Float(
        required=True, allow_none=True,
        metadata={"description": "Null for an automatic close, and once positions are purged (`positions_purged_at`)"},
    )
    lon = fields.Float(required=True, allow_none=True)
    accuracy_m = fields.Float(required=True, allow_none=True)
    flags = fields.List(fields.String(), required=True, metadata={"description": FLAGS_DESCRIPTION})


class PresenceReviewRecordSchema(ma.Schema):
    reviewed_by = fields.Integer(required=True, allow_none=True)
    reviewed_at = Instant(required=True)
    reason = fields.String(required=True, allow_none=True)


class PatrolPresenceSchema(ma.Schema):
    id = fields.Integer(required=True)
    assignment_id = fields.Integer(required=True)
    shift_id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    timezone = fields.String(required=True, metadata={"description": "The shift's local clock"})
    presence_status = fields.String(
        required=True, allow_none=True,
        metadata={"enum": PRESENCE_STATUSES, "description": "Null until the check-in arrives"},
    )
    counts = StrictBoolean(required=True, metadata={"description": "Presence is verified or approved"})
    check_in = fields.Nested(PresenceEventRecordSchema, required=True, allow_none=True)
    check_out = fields.Nested(
        PresenceEventRecordSchema, required=True, allow_none=True,
        metadata={"description": "Null until the phone checks out or the patrol is closed automatically"},
    )
    auto_closed = StrictBoolean(
        required=True, metadata={"description": "Closed at the end plus grace because no check-out came"}
    )
    late_minutes = fields.Integer(required=True, allow_none=True)
    served_minutes = fields.Integer(
        required=True, allow_none=True,
        metadata={"description": "Set once both ends are known and presence counts"},
    )
    review = fields.Nested(PresenceReviewRecordSchema, required=True, allow_none=True)
    distance_m = fields.Float(required=True)
    track_point_count = fields.Integer(required=True)
    positions_purged_at = Instant(
        required=True, allow_none=True,
        metadata={
            "description": "When the precise check-in/out and scan positions were cleared "
            "(PRESENCE_POSITION_RETENTION_DAYS after the shift, once presence is decided); flags, status and minutes stay"
        },
    )


class PresenceReviewQueryArgs(PageArgs):
    status = fields.String(
        load_default="needs_review", validate=validate.OneOf(PRESENCE_STATUSES),
        metadata={"description": "Presence status to list (default needs_review)"},
    )


class PresenceApproveSchema(ReasonOptionalSchema):
    pass


class PresenceRejectSchema(ReasonRequiredSchema):
    pass
