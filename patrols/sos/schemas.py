"""marshmallow schemas of the SOS: raising it from the phone, its positions, the responders' steps,
list arguments, and the SOS as the volunteer and as a responder see it.

Times come in as ISO 8601 instants with an offset (the device's clock) and go out in UTC
(``core.fields.Instant``). Coordinates are WGS84 degrees.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import Instant, StrictBoolean
from core.pagination import PageArgs
from core.validators import id_field
from patrols.schemas import DeviceTime, accuracy, latitude, longitude
from patrols.sos.models import SosEventKind, SosLevel, SosResponse, SosStatus
from volunteers.schemas import short_text

_STATUSES = [status.value for status in SosStatus]
_LEVELS = [level.value for level in SosLevel]
_RESPONSES = [response.value for response in SosResponse]
_KINDS = [kind.value for kind in SosEventKind]
_LOCATED_BY = ["shift", "position", "home_grid"]

# --- in ------------------------------------------------------------------------------------------


class SosRaiseSchema(ma.Schema):
    client_id = fields.UUID(
        required=True,
        metadata={"description": "Made by the phone for this SOS; sending it again returns the same SOS"},
    )
    lat = latitude(required=True)
    lon = longitude(required=True)
    accuracy_m = accuracy(required=True)
    device_time = DeviceTime(required=True, metadata={"description": "The phone's clock when it was raised, with offset"})
    note = short_text(200, load_default=None, allow_none=True, metadata={"description": "A few words, optional"})
    mock_location = StrictBoolean(
        load_default=False, metadata={"description": "The phone reports a mock-location provider (recorded, never refused)"}
    )


class SosPositionInSchema(ma.Schema):
    lat = latitude(required=True)
    lon = longitude(required=True)
    accuracy_m = accuracy(load_default=None, allow_none=True)
    time = DeviceTime(required=True, metadata={"description": "The phone's clock at the fix; one position per time"})


class SosPositionBatchSchema(ma.Schema):
    positions = fields.List(
        fields.Nested(SosPositionInSchema),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "Up to SOS_MAX_POSITIONS (100) fixes, in any order"},
    )


class SosNoteOptionalSchema(ma.Schema):
    note = short_text(500, load_default=None, allow_none=True)


class SosNoteRequiredSchema(ma.Schema):
    note = short_text(500, required=True, metadata={"description": "What happened and what was done"})


class SosAcknowledgeSchema(ma.Schema):
    response = fields.String(
        required=True,
        validate=validate.OneOf(_RESPONSES),
        metadata={"enum": _RESPONSES, "description": "going: on my way; handled: dealt with"},
    )
    note = short_text(500, load_default=None, allow_none=True)


class MySosListArgs(PageArgs):
    pass


class SosListArgs(PageArgs):
    status = fields.List(fields.String(validate=validate.OneOf(_STATUSES)), validate=validate.Length(max=4))
    area_id = id_field(strict=False, metadata={"description": "Any area in your subtree (default: your own area)"})


# --- out -----------------------------------------------------------------------------------------


class SosAcknowledgementSchema(ma.Schema):
    user_id = fields.Integer(required=True, allow_none=True)
    name = fields.String(required=True, allow_none=True)
    role = fields.String(required=True, allow_none=True)
    response = fields.String(required=True, metadata={"enum": _RESPONSES})
    note = fields.String(required=True, allow_none=True)
    at = Instant(required=True)


class SosEventSchema(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"enum": _KINDS})
    at = Instant(required=True)
    actor_id = fields.Integer(required=True, allow_none=True, metadata={"description": "Null: the escalation task"})
    level = fields.String(required=True, allow_none=True, metadata={"enum": [*_LEVELS, None]})
    response = fields.String(required=True, allow_none=True, metadata={"enum": [*_RESPONSES, None]})
    note = fields.String(required=True, allow_none=True)


class SosPositionSchema(ma.Schema):
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)
    accuracy_m = fields.Float(required=True, allow_none=True)
    time = Instant(required=True, metadata={"description": "The phone's clock at the fix"})
    source = fields.String(required=True, metadata={"enum": ["alert", "update"]})


class _SosBaseSchema(ma.Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": _STATUSES})
    level = fields.String(required=True, metadata={"enum": _LEVELS})
    grid_id = fields.Integer(required=True)
    grid_name = fields.String(required=True)
    located_by = fields.String(required=True, metadata={"enum": _LOCATED_BY})
    note = fields.String(required=True, allow_none=True)
    device_time = Instant(required=True)
    received_at = Instant(required=True)
    acknowledged_at = Instant(required=True, allow_none=True)
    ended_at = Instant(required=True, allow_none=True)
    end_note = fields.String(required=True, allow_none=True)


class MySosSchema(_SosBaseSchema):
    """The SOS as its volunteer sees it."""

    client_id = fields.String(required=True)
    lat = fields.Float(required=True, allow_none=True, metadata={"description": "Null once purged"})
    lon = fields.Float(required=True, allow_none=True)
    accuracy_m = fields.Float(required=True, allow_none=True)
    acknowledgements = fields.List(fields.Nested(SosAcknowledgementSchema), required=True)
    events = fields.List(fields.Nested(SosEventSchema), required=True)


class MySosListItemSchema(_SosBaseSchema):
    pass


class SosListItemSchema(_SosBaseSchema):
    """An SOS in the responders' list (positions only on the single SOS, where each read is logged)."""

    volunteer_id = fields.Integer(required=True)
    volunteer_name = fields.String(required=True)
    false_alarms = fields.Integer(
        required=True, metadata={"description": "The volunteer's cancelled SOS in the last SOS_FALSE_ALARM_DAYS"}
    )
    escalate_at = Instant(required=True, allow_none=True)


class SosDetailSchema(SosListItemSchema):
    """An SOS as a responder sees it: where the volunteer is and how to call them back."""

    volunteer_phone = fields.String(required=True, metadata={"description": "To call back (E.164)"})
    assignment_id = fields.Integer(required=True, allow_none=True)
    positions = fields.List(
        fields.Nested(SosPositionSchema),
        required=True,
        metadata={"description": "The alert's position, then those sent while it was open, in time order"},
    )
    positions_purged = StrictBoolean(required=True)
    recipients_count = fields.Integer(required=True, metadata={"description": "People alerted so far"})
    acknowledgements = fields.List(fields.Nested(SosAcknowledgementSchema), required=True)
    events = fields.List(fields.Nested(SosEventSchema), required=True)


class SosPositionsResultSchema(ma.Schema):
    sos_id = fields.Integer(required=True)
    received = fields.Integer(required=True, metadata={"description": "Positions in this batch"})
    stored = fields.Integer(required=True, metadata={"description": "Positions new to the server"})
    duplicates = fields.Integer(
        required=True, metadata={"description": "Positions already stored (same device time), or repeated in the batch"}
    )
