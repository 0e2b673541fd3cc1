"""marshmallow schemas of swap requests: the proposal, list arguments and the request as shown."""

from __future__ import annotations

from typing import TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import Instant
from core.pagination import PageArgs
from core.validators import id_field
from shifts.schemas import AssignmentSchema
from shifts.swaps.models import SwapStatus
from volunteers.schemas import short_text


class SwapProposalSchema(ma.Schema):
    assignment_id = id_field(
        required=True,
        metadata={"description": "Your assigned place (primary or backup) to hand over"},
    )
    to_volunteer_id = id_field(
        required=True,
        metadata={
            "description": "The volunteer who takes your place: an active volunteer of your "
            "community; anyone else answers as an id that does not exist"
        },
    )
    to_assignment_id = id_field(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "For an exchange: that volunteer's assigned place you take in return; "
            "omit to simply hand your place over"
        },
    )
    message = short_text(500, allow_none=True, load_default=None)


class SwapProposalInput(TypedDict):
    """What :class:`SwapProposalSchema` loads."""

    assignment_id: int
    to_volunteer_id: int
    to_assignment_id: int | None  # defaulted by the schema
    message: str | None  # defaulted by the schema


class MySwapsQueryArgs(PageArgs):
    box = fields.String(
        validate=validate.OneOf(["sent", "received"]),
        metadata={
            "description": "Only the requests I sent, or only those sent to me; both if omitted"
        },
    )
    status = fields.String(validate=validate.OneOf([status.value for status in SwapStatus]))


class AwaitingApprovalQueryArgs(PageArgs):
    pass


_NAME_SHOWN = (
    "Null unless you may see this volunteer: managers of a shift in the request, and the "
    "volunteers of the same community"
)


class SwapRequestSchema(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(
        required=True,
        metadata={
            "enum": ["handover", "exchange"],
            "description": "handover: the other volunteer takes the place; exchange: the two "
            "volunteers trade places",
        },
    )
    status = fields.String(
        required=True, metadata={"enum": [status.value for status in SwapStatus]}
    )
    message = fields.String(required=True, allow_none=True)
    from_volunteer_id = fields.Integer(required=True, metadata={"description": "The requester"})
    from_volunteer_name = fields.String(
        required=True, allow_none=True, metadata={"description": _NAME_SHOWN}
    )
    to_volunteer_id = fields.Integer(required=True)
    to_volunteer_name = fields.String(
        required=True, allow_none=True, metadata={"description": _NAME_SHOWN}
    )
    from_assignment = fields.Nested(
        AssignmentSchema,
        required=True,
        metadata={"description": "The requester's place, with its shift"},
    )
    to_assignment = fields.Nested(
        AssignmentSchema,
        required=True,
        allow_none=True,
        metadata={"description": "For an exchange: the other volunteer's place, with its shift"},
    )
    decided_by = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "User who approved, rejected, declined or cancelled it"},
    )
    decision_reason = fields.String(required=True, allow_none=True)
    created_at = Instant(required=True)
    updated_at = Instant(required=True)
