"""marshmallow schemas shared across the shifts package: a shift and an assignment as returned.

Each feature keeps its own input schemas in its ``schemas.py`` (``shifts/planning/schemas.py``,
``shifts/series/schemas.py``, ...); everything a client receives about a shift or a place on it
comes from here.
Instants are ISO 8601 in UTC (``core.fields.Instant``); ``timezone`` is the shift's local clock.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from core.fields import Instant, LocalDateTimeText, StrictBoolean


class KindCoverageSchema(ma.Schema):
    kind = fields.String(required=True, metadata={"description": "Volunteer kind code"})
    minimum = fields.Integer(required=True)
    assigned = fields.Integer(
        required=True, metadata={"description": "Primaries of this kind now assigned"}
    )
    met = StrictBoolean(required=True)


class ShiftSchema(ma.Schema):
    id = fields.Integer(required=True)
    grid_id = fields.Integer(required=True)
    grid_name = fields.String(required=True)
    community_id = fields.Integer(required=True, allow_none=True)
    series_id = fields.Integer(required=True, allow_none=True)
    occurrence = Instant(
        required=True, allow_none=True,
        metadata={"description": "The series occurrence this shift stands for (its original start, kept "
                  "when the shift is moved; `from_occurrence` of series edits); null for a one-off shift"},
    )
    occurrence_local = LocalDateTimeText(
        required=True, allow_none=True, metadata={"description": "`occurrence` on the shift's clock (`timezone`)"}
    )
    detached = StrictBoolean(required=True, metadata={"description": "Edited apart from its series"})
    status = fields.String(required=True, metadata={"enum": ["scheduled", "cancelled"]})
    timezone = fields.String(required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    title = fields.String(required=True)
    instructions = fields.String(required=True, allow_none=True)
    meeting_point = fields.String(required=True, allow_none=True)
    min_headcount = fields.Integer(required=True)
    max_headcount = fields.Integer(required=True)
    backup_slots = fields.Integer(required=True)
    primary_count = fields.Integer(required=True)
    backup_count = fields.Integer(required=True)
    waitlist_count = fields.Integer(required=True)
    open_places = fields.Integer(required=True, metadata={"description": "Primary places still free"})
    below_minimum = StrictBoolean(required=True)
    required_kinds = fields.List(fields.Nested(KindCoverageSchema), required=True)
    unmet_kinds = fields.List(fields.String(), required=True)
    cancelled_at = Instant(required=True, allow_none=True)
    cancel_reason = fields.String(required=True, allow_none=True)


class AssignmentSchema(ma.Schema):
    id = fields.Integer(required=True)
    shift_id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    volunteer_name = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Null where you may not see the volunteer (another's place in a swap)"},
    )
    volunteer_kind = fields.String(required=True)
    status = fields.String(
        required=True,
        metadata={
            "enum": [
                "invited", "assigned", "waitlisted", "declined", "withdrawn", "removed",
                "cancelled", "swapped", "absent",
            ]
        },
    )
    role = fields.String(required=True, metadata={"enum": ["primary", "backup"]})
    source = fields.String(required=True)
    waitlist_position = fields.Integer(
        required=True, allow_none=True,
        metadata={"description": "1 for the next to be promoted; null unless waitlisted"},
    )
    late_withdrawal = StrictBoolean(required=True)
    created_at = Instant(required=True)
    ended_at = Instant(required=True, allow_none=True)
    end_reason = fields.String(required=True, allow_none=True)
    shift = fields.Nested(ShiftSchema, required=False)
