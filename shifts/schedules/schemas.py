"""marshmallow schemas of schedules: query arguments, and the extra fields of their items.

Shifts and assignments themselves are shown with ``shifts.schemas``; these add what one view needs
(distance and the caller's own place for open shifts, the shortfall for coverage gaps). Dates in
``from``/``to`` are local calendar dates, both inclusive.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import QueryBoolean, StrictBoolean
from core.pagination import PageArgs
from core.validators import id_field
from shifts.models import AssignmentRole, AssignmentStatus
from shifts.schemas import ShiftSchema

#: Longest date range of one schedule or open-shift query (inclusive days).
MAX_RANGE_DAYS = 62
MAX_RADIUS_KM = 20.0
DEFAULT_RADIUS_KM = 5.0
MAX_WITHIN_HOURS = 168

NEAR_HOME_GRID = "home_grid"
NEAR_COMMUNITY = "community"
NEAR_POINT = "point"

TO_BEFORE_FROM = i18n.N_("Must not be before from.")
RANGE_TOO_LONG = f"The range may span at most {MAX_RANGE_DAYS} days."
NEEDS_POINT = i18n.N_("Required when near is point.")
ONLY_WITH_POINT = i18n.N_("Only with near=point.")

i18n.register_messages(TO_BEFORE_FROM, NEEDS_POINT, ONLY_WITH_POINT)
i18n.register_patterns({r"^The range may span at most (\d+) days\.$": i18n.N_("The range may span at most {0} days.")})

_STATUSES = [status.value for status in AssignmentStatus]


def _check_range(data: dict[str, Any]) -> None:
    start, end = data.get("from_date"), data.get("to_date")
    if start is None or end is None:
        return
    if end < start:
        raise ma.ValidationError({"to": [TO_BEFORE_FROM]})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ma.ValidationError({"to": [RANGE_TOO_LONG]})


def _from_field(description: str) -> fields.Date:
    return fields.Date(data_key="from", metadata={"description": description})


def _to_field(description: str) -> fields.Date:
    return fields.Date(data_key="to", metadata={"description": description})


# ----------------------------------------------------------------------------------- arguments


class OpenShiftArgs(PageArgs):
    near = fields.String(
        load_default=NEAR_HOME_GRID,
        validate=validate.OneOf([NEAR_HOME_GRID, NEAR_COMMUNITY, NEAR_POINT]),
        metadata={
            "description": "home_grid: my home grid; community: every grid of my home grid's "
            "community; point: grids within radius_km of lat/lon (distance to the grid's boundary, "
            "0 inside it), in my home city"
        },
    )
    lat = fields.Float(validate=validate.Range(min=-90, max=90), metadata={"description": "With near=point"})
    lon = fields.Float(validate=validate.Range(min=-180, max=180), metadata={"description": "With near=point"})
    radius_km = fields.Float(
        validate=validate.Range(min=0, max=MAX_RADIUS_KM),
        metadata={"description": f"With near=point; default {DEFAULT_RADIUS_KM}. 0: only the grid the point lies in"},
    )
    from_date = _from_field("First local date (home grid's time zone) a shift may start on")
    to_date = _to_field(f"Last local date a shift may start on; at most {MAX_RANGE_DAYS} days after from")
    include_full = QueryBoolean(
        load_default=False,
        metadata={"description": "Also shifts with no free place (to join the waitlist)"},
    )

    @ma.validates_schema
    def _point_and_range(self, data: dict[str, Any], **_: Any) -> None:
        _check_range(data)
        point_fields = ("lat", "lon", "radius_km")
        if data["near"] == NEAR_POINT:
            missing = {name: [NEEDS_POINT] for name in ("lat", "lon") if name not in data}
            if missing:
                raise ma.ValidationError(missing)
        elif any(name in data for name in point_fields):
            raise ma.ValidationError(
                {name: [ONLY_WITH_POINT] for name in point_fields if name in data}
            )


class MyShiftArgs(PageArgs):
    when = fields.String(
        load_default="upcoming",
        validate=validate.OneOf(["upcoming", "past"]),
        metadata={
            "description": "upcoming: shifts not yet ended, soonest first; past: ended shifts, "
            "latest first"
        },
    )
    status = fields.List(
        fields.String(validate=validate.OneOf(_STATUSES)),
        validate=validate.Length(min=1, max=len(_STATUSES)),
        metadata={
            "description": "Only these assignment statuses. Default: invited, assigned, waitlisted "
            "(upcoming); assigned, absent and late withdrawals (past)"
        },
    )


class AreaScheduleArgs(PageArgs):
    from_date = _from_field("First local date (the area's time zone); default today")
    to_date = _to_field(
        f"Last local date; default a week from `from`; at most {MAX_RANGE_DAYS} days in all"
    )
    include_cancelled = QueryBoolean(load_default=False)

    @ma.validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        _check_range(data)


class CoverageGapArgs(PageArgs):
    within_hours = fields.Integer(
        load_default=24,
        validate=validate.Range(min=1, max=MAX_WITHIN_HOURS),
        metadata={"description": "Shifts starting within this many hours (and those under way)"},
    )
    area_id = id_field(
        strict=False,
        metadata={"description": "Only this area's subtree (inside yours); default your whole area"},
    )


class RosterArgs(PageArgs):
    status = fields.List(
        fields.String(validate=validate.OneOf(_STATUSES)),
        validate=validate.Length(min=1, max=len(_STATUSES)),
        metadata={"description": "Only these statuses; default all, live and ended"},
    )
    role = fields.String(validate=validate.OneOf([role.value for role in AssignmentRole]))


# -------------------------------------------------------------------------------------- output


class OwnPlaceSchema(ma.Schema):
    id = fields.Integer(required=True, metadata={"description": "The assignment id"})
    status = fields.String(required=True, metadata={"enum": ["invited", "assigned", "waitlisted"]})
    role = fields.String(required=True, metadata={"enum": ["primary", "backup"]})


class OpenShiftSchema(ShiftSchema):
    open_backup_places = fields.Integer(
        required=True, metadata={"description": "Backup (B post) places still free"}
    )
    distance_km = fields.Float(
        required=True, allow_none=True,
        metadata={"description": "From the point to the grid's boundary (0 inside); null unless near=point"},
    )
    my_place = fields.Nested(
        OwnPlaceSchema, required=True, allow_none=True,
        metadata={"description": "My live place on the shift, if I have one"},
    )


class CoverageGapSchema(ShiftSchema):
    missing_headcount = fields.Integer(
        required=True, metadata={"description": "Primaries missing to reach min_headcount (0 if reached)"}
    )
    in_progress = StrictBoolean(required=True, metadata={"description": "Already started"})
