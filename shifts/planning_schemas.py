"""marshmallow schemas of planning: one-off shifts and weekly series (input, output, query arguments).

A shift is returned as ``shifts.schemas.ShiftSchema``. Instants (``starts_at``, ``from_occurrence``)
carry an offset; a series' clock (``start_time``, ``rrule``'s UNTIL) is wall-clock time in its
``timezone``. Unknown fields are refused (422). Limits that depend on configuration
(SHIFT_MAX_HEADCOUNT, SHIFT_MAX_HOURS) and on other rows (volunteer kinds) are checked by the
service, with the same field-by-field errors.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import Instant, LocalDateTimeText, UpdateSchema
from core.pagination import PageArgs
from core.validators import Text, TimeZoneName, id_field
from shifts.models import SeriesStatus
from shifts.schemas import ShiftSchema
from volunteers.schemas import LocalTime, kind_code_field, short_text

SMALLINT_MAX = 32767
MAX_REQUIRED_KINDS = 20
FIRST_YEAR, LAST_YEAR = 2000, 2099
SCOPES = ("all", "following")

i18n.register_messages(
    {
        "Must be a date between 2000 and 2099.": "日期必须在 2000 年到 2099 年之间。",
        "Give end_time or duration_minutes.": "请提供 end_time 或 duration_minutes。",
        "Give end_time or duration_minutes, not both.": "end_time 和 duration_minutes 只能二选一。",
        "Required with scope following.": "scope 为 following 时必填。",
        "Only with scope following.": "仅在 scope 为 following 时使用。",
    }
)


class PlanningDateTime(Instant):
    """An instant with an offset, in the years we plan."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            years=(FIRST_YEAR, LAST_YEAR), years_message="Must be a date between {low} and {high}.", **kwargs
        )


def _headcount(minimum: int, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=SMALLINT_MAX), **kwargs)


class RequiredKindSchema(ma.Schema):
    kind = kind_code_field(
        required=True, metadata={"description": "Code of a volunteer kind", "example": "volunteer_police"}
    )
    minimum = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=SMALLINT_MAX),
        metadata={"description": "At most max_headcount"},
    )


def _required_kinds(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.Nested(RequiredKindSchema), validate=validate.Length(max=MAX_REQUIRED_KINDS),
        metadata={"description": "Each kind once; the minimums add up to at most max_headcount"},
        **kwargs,
    )


class _TemplateFields(ma.Schema):
    """What a shift and a series have in common; optional here, required where a schema says so."""

    title = short_text(100)
    instructions = Text(allow_blank=True, allow_none=True, validate=validate.Length(max=2000))
    meeting_point = short_text(200, allow_none=True)
    min_headcount = _headcount(0)
    max_headcount = _headcount(1, metadata={"description": "At most SHIFT_MAX_HEADCOUNT (100)"})
    backup_slots = _headcount(0, metadata={"description": "A/B posts: backup places (AB岗)"})
    required_kinds = _required_kinds()


class _TemplateCreateFields(_TemplateFields):
    title = short_text(100, required=True)
    instructions = Text(
        allow_blank=True, allow_none=True, validate=validate.Length(max=2000), load_default=None
    )
    meeting_point = short_text(200, allow_none=True, load_default=None)
    min_headcount = _headcount(0, load_default=1)
    max_headcount = _headcount(1, required=True)
    backup_slots = _headcount(0, load_default=0)
    required_kinds = _required_kinds(load_default=list)


# --- one-off shifts ----------------------------------------------------------------------------------


class ShiftCreateSchema(_TemplateCreateFields):
    grid_id = id_field(required=True)
    timezone = TimeZoneName(
        metadata={"description": "The shift's local clock (default: the grid's), for its local dates, "
                  "texts and calendar entries", "example": "Asia/Shanghai"}
    )
    starts_at = PlanningDateTime(required=True)
    ends_at = PlanningDateTime(required=True)


class ShiftUpdateSchema(_TemplateFields, UpdateSchema):
    starts_at = PlanningDateTime(metadata={"description": "Moving only the start keeps the duration"})
    ends_at = PlanningDateTime()


class CancelSchema(ma.Schema):
    reason = short_text(500, required=True)


# --- series --------------------------------------------------------------------------------------------


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


class SeriesCreateSchema(_TemplateCreateFields, _Timing):
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


class SeriesUpdateSchema(_TemplateFields, _Timing, _ScopeFields, UpdateSchema):
    not_changes = ("scope", "from_occurrence", "reason")
    reason = short_text(
        500, allow_none=True,
        metadata={"description": "Told to volunteers of occurrences the new rule drops"},
    )

    @ma.validates_schema
    def _changes(self, data: dict[str, Any], **_: Any) -> None:
        _check_one_end(data, required=False)


class SeriesCancelSchema(_ScopeFields):
    reason = short_text(500, required=True)


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
