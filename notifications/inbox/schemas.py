"""marshmallow schemas of the inbox: list arguments, a notification as shown, read marks."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from core.fields import Instant, QueryBoolean, StrictBoolean
from core.pagination import PageArgs
from core.validators import id_field
from notifications.models import PushStatus


class InboxArgs(PageArgs):
    unread_only = QueryBoolean(load_default=False)


class PushDeliverySchema(ma.Schema):
    delivered = fields.Integer(required=True, metadata={"description": "Phones a vendor said it reached"})
    failed = fields.Integer(required=True, metadata={"description": "Phones a vendor said it did not reach"})


class NotificationSchema(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    data = fields.Dict(
        keys=fields.String(), values=fields.String(), required=True,
        metadata={"description": "Deep link for the app: `type` (the kind) and ids, as strings"},
    )
    urgent = StrictBoolean(required=True)
    created_at = Instant(required=True)
    read_at = Instant(required=True, allow_none=True)
    push_status = fields.String(
        required=True,
        metadata={"enum": [s.value for s in PushStatus], "description": "pending (also while "
                  "quiet hours hold it back), sent, failed (after retries), no_device"},
    )
    pushed_at = Instant(required=True, allow_none=True)
    delivery = fields.Nested(
        PushDeliverySchema, required=True, allow_none=True,
        metadata={"description": "What the push vendors' delivery receipts said (null: none came)"},
    )


class UnreadCountSchema(ma.Schema):
    unread = fields.Integer(required=True)


class ReadAllSchema(ma.Schema):
    up_to_id = id_field(
        load_default=None, allow_none=True,
        metadata={"description": "Only notifications up to this id (the newest one the user saw)"},
    )


class ReadAllResultSchema(ma.Schema):
    marked = fields.Integer(required=True)
