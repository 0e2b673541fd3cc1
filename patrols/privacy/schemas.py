"""marshmallow schemas of the location consent, the deletion of one's track and the access log."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from core.fields import Instant, StrictBoolean
from core.pagination import PageArgs
from core.validators import Text, id_field

# --- consent -----------------------------------------------------------------------------------


class LocationConsentGrantSchema(ma.Schema):
    version = Text(
        required=True,
        validate=ma.validate.Length(max=32),
        metadata={"description": "The location terms agreed to: must be the current `LOCATION_TERMS_VERSION`"},
    )


class LocationConsentRecordSchema(ma.Schema):
    version = fields.String(required=True)
    granted_at = Instant(required=True)
    withdrawn_at = Instant(required=True, allow_none=True, metadata={"description": "Null while in force"})


class LocationConsentStateSchema(ma.Schema):
    granted = StrictBoolean(required=True, metadata={"description": "A consent is in force: track uploads are accepted"})
    version = fields.String(required=True, allow_none=True, metadata={"description": "Terms of the consent in force"})
    granted_at = Instant(required=True, allow_none=True)
    current_version = fields.String(required=True, metadata={"description": "The current location terms"})
    up_to_date = StrictBoolean(
        required=True, metadata={"description": "The consent in force is to the current terms (else ask again)"}
    )
    history = fields.List(
        fields.Nested(LocationConsentRecordSchema), required=True,
        metadata={"description": "Every grant, newest first, with its withdrawal"},
    )


# --- deleting one's track ----------------------------------------------------------------------


class TrackPointsDeletedSchema(ma.Schema):
    deleted = fields.Integer(required=True, metadata={"description": "Track points deleted now (0 on a repeat)"})
    deleted_at = Instant(required=True)


# --- access log --------------------------------------------------------------------------------


class LocationAccessQuerySchema(PageArgs):
    volunteer_id = id_field(strict=False, metadata={"description": "Whose positions were read"})
    actor_id = id_field(strict=False, metadata={"description": "Who read them (user id)"})
    since = Instant(metadata={"description": "Reads at or after this instant"})
    until = Instant(metadata={"description": "Reads before this instant"})


class LocationReaderSchema(ma.Schema):
    user_id = fields.Integer(required=True, allow_none=True)
    role = fields.String(required=True, allow_none=True)
    name = fields.String(required=True, allow_none=True)


class LocationSubjectSchema(ma.Schema):
    volunteer_id = fields.Integer(required=True)
    name = fields.String(required=True, allow_none=True)


class LocationAccessSchema(ma.Schema):
    id = fields.Integer(required=True)
    at = Instant(required=True)
    action = fields.String(
        required=True, metadata={"enum": ["track_read", "sos_read"], "description": "What was read"}
    )
    reader = fields.Nested(LocationReaderSchema, required=True)
    volunteer = fields.Nested(LocationSubjectSchema, required=True, metadata={"description": "Whose positions"})
    what = fields.Dict(
        required=True, metadata={"description": "The record read: `assignment_id` of a track, `sos_id` of an SOS"}
    )
    area_path = fields.String(required=True, metadata={"description": "The area that gave the reader reach"})
