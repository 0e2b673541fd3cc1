"""marshmallow schemas of broadcasts: the call-out as sent, the list arguments and the broadcast as shown."""

from __future__ import annotations

from typing import TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import Instant, StrictBoolean
from core.pagination import PageArgs
from core.validators import id_field
from volunteers.schemas import kind_code_field, short_text

MAX_KINDS = 20
KINDS_LENGTH = i18n.N_("Give 1 to 20 kinds, or leave the list out for all.")
i18n.register_messages(KINDS_LENGTH)


class BroadcastCreateSchema(ma.Schema):
    area_id = id_field(
        required=True,
        metadata={"description": "The area (any level) whose active volunteers receive it; in your scope"},
    )
    kinds = fields.List(
        kind_code_field(),
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=MAX_KINDS, error=KINDS_LENGTH),
        metadata={"description": "Only volunteers of these kind codes; omit (or null) for every kind"},
    )
    title = short_text(100, required=True, metadata={"description": "Shown as the push title, as written"})
    body = short_text(1000, required=True, metadata={"description": "Shown as the push text, as written"})
    urgent = StrictBoolean(
        load_default=False,
        metadata={"description": "Push at once, even in the recipients' quiet hours"},
    )


class BroadcastCreateInput(TypedDict):
    """What :class:`BroadcastCreateSchema` loads."""

    area_id: int
    kinds: list[str] | None  # defaulted by the schema
    title: str
    body: str
    urgent: bool  # defaulted by the schema


class BroadcastListArgs(PageArgs):
    area_id = id_field(
        strict=False,
        metadata={"description": "Only broadcasts to this area or inside it (in your scope); all in scope if omitted"},
    )


class ReachedSchema(ma.Schema):
    recipients = fields.Integer(required=True, metadata={"description": "Active volunteers written to"})
    with_device = fields.Integer(
        required=True,
        metadata={"description": "Recipients with at least one active device refreshed within DEVICE_STALE_DAYS"},
    )


class DeliverySchema(ma.Schema):
    pending = fields.Integer(required=True, metadata={"description": "Not pushed yet (quiet hours, retrying)"})
    sent = fields.Integer(required=True)
    failed = fields.Integer(required=True, metadata={"description": "Gave up after PUSH_MAX_ATTEMPTS"})
    no_device = fields.Integer(required=True, metadata={"description": "Inbox only: no active, fresh device"})


class BroadcastSchema(ma.Schema):
    id = fields.Integer(required=True)
    area_id = fields.Integer(required=True)
    area_name = fields.String(required=True)
    sender_id = fields.Integer(required=True, allow_none=True)
    kinds = fields.List(fields.String(), required=True, allow_none=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    urgent = StrictBoolean(required=True)
    recipient_count = fields.Integer(required=True)
    created_at = Instant(required=True)


class BroadcastSentSchema(BroadcastSchema):
    reached = fields.Nested(ReachedSchema, required=True)


class BroadcastDetailSchema(BroadcastSchema):
    reached = fields.Nested(ReachedSchema, required=True)
    delivery = fields.Nested(DeliverySchema, required=True)
