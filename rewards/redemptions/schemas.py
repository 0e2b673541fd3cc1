"""marshmallow schemas of redemptions: the request, workflow steps, list arguments, output."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import Instant
from core.pagination import PageArgs
from core.validators import Text, id_field
from rewards.redemptions.models import RedemptionStatus
from volunteers.schemas import short_text

_STATUSES = [status.value for status in RedemptionStatus]
PICKUP_CODE_LENGTH = 8


class RedeemSchema(ma.Schema):
    client_id = fields.UUID(
        required=True,
        metadata={"description": "Made by the phone for this redemption; sending it again returns the first one"},
    )


class RedemptionRejectSchema(ma.Schema):
    reason = short_text(500, required=True)


class RedemptionCancelSchema(ma.Schema):
    reason = short_text(500, load_default=None, allow_none=True)


class FulfilSchema(ma.Schema):
    pickup_code = Text(
        required=True,
        validate=validate.Length(min=1, max=16),
        metadata={"description": "The code the volunteer shows at pickup (case does not matter)"},
    )


class _ListArgs(PageArgs):
    status = fields.List(fields.String(validate=validate.OneOf(_STATUSES)), validate=validate.Length(max=5))
    item_id = id_field(strict=False)


class MyRedemptionListArgs(_ListArgs):
    pass


class RedemptionListArgs(_ListArgs):
    area_id = id_field(
        strict=False, metadata={"description": "Redemptions of items of this subtree (default: your area)"}
    )
    volunteer_id = id_field(strict=False)
    pickup_code = Text(
        validate=validate.Length(min=1, max=16),
        metadata={"description": "Find the redemption a volunteer shows at pickup"},
    )


class RedemptionSchema(ma.Schema):
    id = fields.Integer(required=True)
    client_id = fields.String(required=True, allow_none=True)
    item_id = fields.Integer(required=True)
    item_name = fields.String(required=True)
    volunteer_id = fields.Integer(required=True)
    volunteer_name = fields.String(required=True)
    points = fields.Integer(required=True, metadata={"description": "Points spent (refunded if cancelled or rejected)"})
    status = fields.String(required=True, metadata={"enum": _STATUSES})
    pickup_code = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Once approved; shown to the volunteer only, who shows it at pickup"},
    )
    reason = fields.String(required=True, allow_none=True)
    decided_by = fields.Integer(required=True, allow_none=True)
    decided_at = Instant(required=True, allow_none=True)
    fulfilled_at = Instant(required=True, allow_none=True)
    created_at = Instant(required=True)
    updated_at = Instant(required=True)
