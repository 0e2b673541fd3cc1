"""marshmallow schemas of balances, ledger history, badges, hand-entered hours and the invariant."""

from __future__ import annotations

from datetime import date
from typing import TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import Instant, StrictBoolean
from core.pagination import PageArgs
from core.validators import id_field
from rewards.ledger.models import LedgerReason
from volunteers.schemas import short_text

_REASONS = [reason.value for reason in LedgerReason]


class PointsQueryArgs(ma.Schema):
    expiring_within_days = fields.Integer(
        load_default=30, validate=validate.Range(min=1, max=366),
        metadata={"description": "Show unspent points lapsing within this many days (default 30)"},
    )


class ExpiringSchema(ma.Schema):
    expires_at = Instant(required=True)
    points = fields.Integer(required=True)


class PointsSummarySchema(ma.Schema):
    volunteer_id = fields.Integer(required=True)
    balance = fields.Integer(required=True, metadata={"description": "Equals the sum of the ledger entries"})
    service_minutes = fields.Integer(
        required=True, metadata={"description": "Served patrols and hand-entered hours that count (not voided)"}
    )
    service_hours = fields.Float(required=True)
    expiring_within_days = fields.Integer(required=True)
    expiring_soon_total = fields.Integer(required=True)
    expiring_soon = fields.List(
        fields.Nested(ExpiringSchema), required=True,
        metadata={"description": "Unspent points by the moment they lapse (oldest points are spent first)"},
    )


class LedgerHistoryArgs(PageArgs):
    reason = fields.List(
        fields.String(validate=validate.OneOf(_REASONS)),
        load_default=None,
        validate=validate.Length(max=len(_REASONS)),
        metadata={"description": "Only these reasons (repeat the parameter)"},
    )


class LedgerEntrySchema(ma.Schema):
    id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    amount = fields.Integer(required=True, metadata={"description": "Positive earns, negative spends or reverses"})
    reason = fields.String(required=True, metadata={"description": ", ".join(_REASONS)})
    source_type = fields.String(required=True)
    source_id = fields.String(required=True)
    rule_version = fields.Integer(required=True, allow_none=True)
    reverses_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "The entry this one compensates"}
    )
    note = fields.String(required=True, allow_none=True)
    expires_at = Instant(required=True, allow_none=True)
    created_at = Instant(required=True)


class BadgeSchema(ma.Schema):
    badge = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    earned_at = Instant(required=True)
    details = fields.Dict(required=True)


class BadgeListSchema(ma.Schema):
    items = fields.List(fields.Nested(BadgeSchema), required=True)


class ServiceHoursCreateSchema(ma.Schema):
    volunteer_id = id_field(required=True)
    served_on = fields.Date(
        required=True, metadata={"description": "The local day served (volunteer's home grid's time zone); not in the future"}
    )
    minutes = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=1440))
    note = short_text(500, required=True, metadata={"description": "What the service was"})


class ServiceHoursCreateInput(TypedDict):
    """What :class:`ServiceHoursCreateSchema` loads."""

    volunteer_id: int
    served_on: date
    minutes: int
    note: str


class ServiceHoursSchema(ma.Schema):
    id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    source_type = fields.String(required=True)
    minutes = fields.Integer(required=True)
    served_on = fields.Date(required=True)
    grid_id = fields.Integer(required=True, allow_none=True)
    note = fields.String(required=True, allow_none=True)
    created_by = fields.Integer(required=True, allow_none=True)
    created_at = Instant(required=True)
    points_awarded = fields.Integer(required=True)
    ledger_entry_id = fields.Integer(required=True, allow_none=True)


class MismatchSchema(ma.Schema):
    volunteer_id = fields.Integer(required=True)
    balance = fields.Integer(required=True)
    ledger_sum = fields.Integer(required=True)


class InvariantSchema(ma.Schema):
    ok = StrictBoolean(required=True)
    checked_at = Instant(required=True)
    mismatches = fields.List(fields.Nested(MismatchSchema), required=True)
