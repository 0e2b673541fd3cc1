"""marshmallow schemas of the hand-over export: its query arguments."""

from __future__ import annotations

from datetime import date
from typing import Any, TypedDict

import marshmallow as ma
from marshmallow import fields

from core import i18n
from core.validators import id_field
from reports.periods import check_date_years

#: The longest period one export covers: a year, leap or not (inclusive days).
MAX_PERIOD_DAYS = 366
LAST_BEFORE_FIRST = i18n.N_("Must not be before first.")
PERIOD_TOO_LONG = i18n.N_("A hand-over covers at most 366 days.")
i18n.register_messages(LAST_BEFORE_FIRST, PERIOD_TOO_LONG)


class HandoverArgs(ma.Schema):
    area_id = id_field(
        strict=False, required=True,
        metadata={"description": "The area whose recorded service is handed over (in my subtree)"},
    )
    first = fields.Date(
        required=True, validate=check_date_years,
        metadata={"description": "First local service day, inclusive (YYYY-MM-DD)"},
    )
    last = fields.Date(
        required=True, validate=check_date_years,
        metadata={"description": "Last local service day, inclusive; at most 366 days from first to last"},
    )

    @ma.validates_schema
    def _bounded_period(self, data: dict[str, Any], **_: Any) -> None:
        first, last = data.get("first"), data.get("last")
        if first is None or last is None:
            return  # the field's own error says so
        if last < first:
            raise ma.ValidationError({"last": [LAST_BEFORE_FIRST]})
        if (last - first).days + 1 > MAX_PERIOD_DAYS:
            raise ma.ValidationError({"last": [PERIOD_TOO_LONG]})


class HandoverInput(TypedDict):
    """What :class:`HandoverArgs` loads."""

    area_id: int
    first: date
    last: date
