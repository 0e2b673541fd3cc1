"""marshmallow schemas of star levels, their boards, objections and decisions."""

from __future__ import annotations

from typing import TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import Instant
from core.pagination import PageArgs
from core.validators import id_field
from records.stars.models import ObjectionStatus, StarLevelStatus
from volunteers.schemas import short_text

_STATUSES = [status.value for status in StarLevelStatus]
_OUTCOMES = [ObjectionStatus.UPHELD.value, ObjectionStatus.DISMISSED.value]
REASON_MAX = 500


class StarBoardArgs(PageArgs):
    status = fields.List(
        fields.String(validate=validate.OneOf(_STATUSES)),
        load_default=None,
        validate=validate.Length(max=len(_STATUSES)),
        metadata={"description": "Only these statuses (repeat the parameter): " + ", ".join(_STATUSES)},
    )
    level = fields.Integer(load_default=None, validate=validate.Range(min=1, max=5))
    area_id = id_field(
        strict=False, load_default=None,
        metadata={"description": "Only levels publicised inside this area (inside yours; 403 outside)"},
    )


class StarLevelSchema(ma.Schema):
    id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    volunteer_name = fields.String(required=True)
    level = fields.Integer(required=True, metadata={"description": "1 … 5 (100/300/600/1000/1500 hours)"})
    status = fields.String(required=True, metadata={"description": ", ".join(_STATUSES)})
    minutes_at_proposal = fields.Integer(required=True, metadata={"description": "Counted service minutes then"})
    area_id = fields.Integer(required=True, metadata={"description": "The community it is publicised to"})
    proposed_at = Instant(required=True, metadata={"description": "Publicity starts"})
    publicity_ends_at = Instant(required=True, metadata={"description": "Publicity ends (objections until then)"})
    open_objections = fields.Integer(required=True, metadata={"description": "Undecided objections (hold it)"})
    certified_at = Instant(required=True, allow_none=True)
    rejected_at = Instant(required=True, allow_none=True)


class StarObjectionSchema(ma.Schema):
    id = fields.Integer(required=True)
    star_level_id = fields.Integer(required=True)
    lodged_by = fields.Integer(required=True, allow_none=True)
    reason = fields.String(required=True)
    lodged_at = Instant(required=True)
    status = fields.String(required=True, metadata={"description": "open, upheld, dismissed"})
    decided_by = fields.Integer(required=True, allow_none=True)
    decided_at = Instant(required=True, allow_none=True)
    decision_note = fields.String(required=True, allow_none=True)


class StarLevelDetailSchema(StarLevelSchema):
    objections = fields.List(fields.Nested(StarObjectionSchema), required=True)


class OwnStarLevelSchema(ma.Schema):
    level = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "pending while publicised, certified, rejected"})
    minutes_at_proposal = fields.Integer(required=True)
    proposed_at = Instant(required=True)
    publicity_ends_at = Instant(required=True)
    certified_at = Instant(required=True, allow_none=True)
    rejected_at = Instant(required=True, allow_none=True)


class OwnStarLevelListSchema(ma.Schema):
    items = fields.List(fields.Nested(OwnStarLevelSchema), required=True)


class PublicityItemSchema(ma.Schema):
    masked_name = fields.String(required=True, metadata={"description": "张*, 张*丰: never the full name"})
    level = fields.Integer(required=True)
    publicity_starts_at = Instant(required=True)
    publicity_ends_at = Instant(required=True)


class StarObjectionCreateSchema(ma.Schema):
    reason = short_text(REASON_MAX, required=True, metadata={"description": "Why the level should not stand"})


class StarObjectionCreateInput(TypedDict):
    reason: str


class StarDecisionSchema(ma.Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(_OUTCOMES), metadata={"description": "upheld rejects the level"})
    note = short_text(REASON_MAX, required=True, metadata={"description": "The grounds of the decision"})


class StarDecisionInput(TypedDict):
    outcome: str
    note: str
