"""marshmallow schemas of a city's reminder settings."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import Instant, StrictBoolean

#: Reminders from 5 minutes up to a week before a shift, at most four per city.
REMINDER_MIN_MINUTES = 5
REMINDER_MAX_MINUTES = 7 * 24 * 60
REMINDER_MAX_COUNT = 4

_DISTINCT_TEXT = i18n.N_("Each offset may appear only once.")

i18n.register_messages(_DISTINCT_TEXT)


def _distinct(values: list[int]) -> None:
    if len(set(values)) != len(values):
        raise ma.ValidationError(_DISTINCT_TEXT)


class ReminderSettingsUpdateSchema(ma.Schema):
    offsets_minutes = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=REMINDER_MIN_MINUTES, max=REMINDER_MAX_MINUTES)),
        required=True,
        validate=[validate.Length(min=1, max=REMINDER_MAX_COUNT), _distinct],
        metadata={"description": "Minutes before each assigned shift a reminder goes out, e.g. "
                  "[1440, 60]", "uniqueItems": True},
    )


class ReminderSettingsSchema(ma.Schema):
    area_id = fields.Integer(required=True)
    offsets_minutes = fields.List(fields.Integer(), required=True)
    is_default = StrictBoolean(required=True, metadata={"description": "true: REMINDER_OFFSETS_MINUTES"})
    updated_by = fields.Integer(required=True, allow_none=True)
    updated_at = Instant(required=True, allow_none=True)
