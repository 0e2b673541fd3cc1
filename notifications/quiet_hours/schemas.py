"""marshmallow schemas of quiet hours: "HH:MM" in, a user's quiet hours out."""

from __future__ import annotations

import re
from typing import Any, TypedDict

import marshmallow as ma
from marshmallow import fields

from core import i18n
from core.fields import HHMM_PATTERN, Instant, StrictBoolean
from notifications.quiet_hours.service import parse_hhmm

_HHMM_TEXT = "Use HH:MM (24-hour clock)."
_SAME_TEXT = i18n.N_("Quiet hours must end at another time than they start; turn them off instead.")

i18n.register_messages(_HHMM_TEXT, _SAME_TEXT)


class HHMM(fields.String):
    """"HH:MM" in, minutes after midnight out."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault("pattern", HHMM_PATTERN)
        super().__init__(**kwargs)

    # A String by its OpenAPI type ("HH:MM"), loaded as an int: marshmallow types String as str.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> int:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(HHMM_PATTERN, text):  # time.fromisoformat also takes "T2330"
            raise ma.ValidationError(_HHMM_TEXT)
        return parse_hhmm(text)


class QuietHoursUpdateSchema(ma.Schema):
    quiet_hours_enabled = StrictBoolean(required=True)
    quiet_start = HHMM(required=True, metadata={"example": "22:00"})
    quiet_end = HHMM(required=True, metadata={"example": "07:00"})

    @ma.validates_schema
    def _start_is_not_end(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("quiet_start") is not None and data.get("quiet_start") == data.get("quiet_end"):
            raise ma.ValidationError(_SAME_TEXT, field_name="quiet_end")


class QuietHoursUpdateInput(TypedDict):
    """What :class:`QuietHoursUpdateSchema` loads."""

    quiet_hours_enabled: bool
    quiet_start: int
    quiet_end: int


class QuietHoursSchema(ma.Schema):
    quiet_hours_enabled = StrictBoolean(required=True)
    quiet_start = fields.String(required=True, metadata={"example": "22:00"})
    quiet_end = fields.String(required=True, metadata={"example": "07:00"})
    timezone = fields.String(required=True, metadata={"description": "Your area's time zone"})
    is_default = StrictBoolean(required=True)
    updated_at = Instant(required=True, allow_none=True)
