"""marshmallow schemas of the calendar feed: its state, and the secret URL shown once on creation."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from core.fields import Instant, StrictBoolean


class CalendarFeedSchema(ma.Schema):
    active = StrictBoolean(required=True, metadata={"description": "A feed URL is live"})
    created_at = Instant(required=True, allow_none=True)
    last_used_at = Instant(
        required=True, allow_none=True,
        metadata={"description": "Last fetched by a calendar app (to the hour)"},
    )


class CalendarFeedCreatedSchema(CalendarFeedSchema):
    url = fields.String(
        required=True,
        metadata={"description": "The secret feed URL; shown only now. Anyone holding it sees my shifts"},
    )
    webcal_url = fields.String(
        required=True, metadata={"description": "The same URL with the webcal: scheme, for one-tap subscribing"}
    )
