"""marshmallow schemas of weekly series (input, output, query arguments).

A series takes the template fields of a shift (``shifts.planning.schemas``); its clock
(``start_time``, ``rrule``'s UNTIL) is wall-clock time in its ``timezone``; ``from_occurrence`` is
an instant with an offset. Unknown fields are refused (422).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, NotRequired, Required, TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import Instant, LocalDateTimeText, UpdateSchema
from core.pagination import PageArgs
from core.validators import TimeZoneName, id_field
from shifts.models import SeriesStatus
from shifts.planning.schemas import (
    PlacedTemplateInput,
    PlanningDateTime,
    RequiredKindSchema,
    TemplateCreateFields,
    TemplateFields,
    TemplateUpdateInput,
)
from shifts.schemas import ShiftSchema
from volunteers.schemas import LocalTime, short_text

SCOPES = ("all", "following")

i18n.register_messages(
    i18n.N_("Give end_time or duration_minutes."),
    i18n.N_("Give end_time or duration_minutes, not both."),
    i18n.N_("Required with scope following."),
    i18n.N_("Only with scope following."),
)


def _rrule(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Length(min=1, max=500),
        metadata={
            "description": "RFC 5545 subset: FREQ=WEEKLY, BYDAY, INTERVAL (1–52), UNTIL or COUNT; "
            "no DTSTART. UNTIL without Z is local time; a date alone means the end of that day",
            "example": "FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20261231",
        },
        **kwargs,
    )


class _Timing(ma.Schema):
    start_time = LocalTime()
    end_time = LocalTime(metadata={"description": "At or before start_time: the next day"})
    duration_minutes = fields.Integer(strict=True, validate=validate.Range(min=1, max=24 * 60))
    rrule = _rrule()


class SeriesCreateSchema(TemplateCreateFields, _Timing):
    grid_id = id_field(required=True)
    timezone = TimeZoneName(
        metadata={"description": "Zone of the wall-clock times (default: the grid's)"}
    )
    rrule = _rrule(required=True)
    starts_on = fields.Date(
        required=True, metadata={"description": "First day the series may have an occurrence"}
    )
    start_time = LocalTime(required=True)

    @ma.validates_schema
    def _one_end(self, data: dict[str, Any], **_: Any) -> None:
        _check_one_end(data, required=True)


class SeriesCreateInput(PlacedTemplateInput):
    """What :class:`SeriesCreateSchema` loads."""

    start_time: time
    end_time: NotRequired[time]
    duration_minutes: NotRequired[int]
    rrule: str
    starts_on: date


def _check_one_end(data: dict[str, Any], *, required: bool) -> None:
    if "end_time" in data and "duration_minutes" in data:
        raise ma.ValidationError("Give end_time or duration_minutes, not both.", field_name="end_time")
    if required and "end_time" not in data and "duration_minutes" not in data:
        raise ma.ValidationError("Give end_time or duration_minutes.", field_name="duration_minutes")


class _ScopeFields(ma.Schema):
    scope = fields.String(
        required=True, validate=validate.OneOf(SCOPES),
        metadata={"description": "all: every occurrence still to come; following: from from_occurrence on"},
    )
    from_occurrence = PlanningDateTime(
        metadata={"description": "With scope following: the occurrence to start from, as a shift's "
                  "`occurrence` gives it (any offset naming the same instant)"}
    )

    @ma.validates_schema
    def _scope(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("scope") == "following" and "from_occurrence" not in data:
            raise ma.ValidationError("Required with scope following.", field_name="from_occurrence")
        if data.get("scope") == "all" and "from_occurrence" in data:
            raise ma.ValidationError("Only with scope following.", field_name="from_occurrence")


class SeriesUpdateSchema(TemplateFields, _Timing, _ScopeFields, UpdateSchema):
    not_changes = ("scope", "from_occurrence", "reason")
    reason = short_text(
        500, allow_none=True,
        metadata={"description": "Told to volunteers of occurrences the new rule drops"},
    )

    @ma.validates_schema
    def _changes(self, data: dict[str, Any], **_: Any) -> None:
        _check_one_end(data, required=False)


class SeriesUpdateInput(TemplateUpdateInput, total=False):
    """What :class:`SeriesUpdateSchema` loads."""

    scope: Required[str]
    from_occurrence: datetime
    start_time: time
    end_time: time
    duration_minutes: int
    rrule: str
    reason: str | None


class SeriesCancelSchema(_ScopeFields):
    reason = short_text(500, required=True)


class SeriesCancelInput(TypedDict):
    """What :class:`SeriesCancelSchema` loads."""

    scope: str
    from_occurrence: NotRequired[datetime]
    reason: str


class SeriesListArgs(PageArgs):
    grid_id = id_field(strict=False)
    under = id_field(strict=False, metadata={"description": "An area id: series of grids in its subtree"})
    status = fields.String(validate=validate.OneOf([status.value for status in SeriesStatus]))


# --- series output --------------------------------------------------------------------------------------


class ShiftSeriesSchema(ma.Schema):
    id = fields.Integer(required=True)
    grid_id = fields.Integer(required=True)
    grid_name = fields.String(required=True)
    status = fields.String(
        required=True, metadata={"enum": [status.value for status in SeriesStatus],
                                 "description": "ended: nothing left to make (cut short, cancelled or done)"},
    )
    timezone = fields.String(required=True)
    rrule = fields.String(required=True, metadata={"description": "Normalised; UNTIL in local time"})
    weekdays = fields.List(fields.String(), required=True)
    interval = fields.Integer(required=True)
    until = Instant(
        required=True, allow_none=True, metadata={"description": "The rule's UNTIL: no occurrence starts after it"}
    )
    until_local = LocalDateTimeText(
        required=True, allow_none=True, metadata={"description": "`until` on the series' clock (`timezone`)"}
    )
    count = fields.Integer(required=True, allow_none=True)
    first_occurrence = Instant(required=True, metadata={"description": "Start of the first occurrence"})
    first_occurrence_local = LocalDateTimeText(
        required=True, metadata={"description": "`first_occurrence` on the series' clock (`timezone`)"}
    )
    start_time = LocalTime(required=True)
    end_time = LocalTime(required=True)
    duration_minutes = fields.Integer(required=True)
    title = fields.String(required=True)
    instructions = fields.String(required=True, allow_none=True)
    meeting_point = fields.String(required=True, allow_none=True)
    min_headcount = fields.Integer(required=True)
    max_headcount = fields.Integer(required=True)
    backup_slots = fields.Integer(required=True)
    required_kinds = fields.List(fields.Nested(RequiredKindSchema), required=True)
    expanded_until = Instant(
        required=True, allow_none=True, metadata={"description": "Occurrences before this exist as shifts"}
    )
    created_by = fields.Integer(required=True, allow_none=True)
    created_at = Instant(required=True)
    updated_at = Instant(required=True)


class ShiftSeriesDetailSchema(ShiftSeriesSchema):
    upcoming_shifts = fields.List(
        fields.Nested(ShiftSchema), required=True,
        metadata={"description": "The series' shifts not yet over, by start (at most 100)"},
    )


class SeriesChangeSchema(ma.Schema):
    series = fields.Nested(
        ShiftSeriesDetailSchema, required=True,
        metadata={"description": "The series carrying the change: a new one when split"},
    )
    previous_series = fields.Nested(
        ShiftSeriesSchema, required=True, allow_none=True,
        metadata={"description": "The series cut short by a this-and-following change"},
    )
    changed_shift_ids = fields.List(fields.Integer(), required=True)
    cancelled_shift_ids = fields.List(fields.Integer(), required=True)
    created_shift_ids = fields.List(fields.Integer(), required=True)
