"""marshmallow schemas of auto-fill: the request (area, local date range, cap, dry run or apply)
and the plan returned."""

from __future__ import annotations

from datetime import date
from typing import Any, TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import Instant, StrictBoolean
from core.validators import id_field
from shifts.schedules.schemas import TO_BEFORE_FROM

#: The longest range one request may plan, in days (both ends included).
MAX_RANGE_DAYS = 31
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2999, 12, 31)

i18n.register_patterns({r"^At most (\d+) days\.$": i18n.N_("At most {0} days.")})

_RANKS = ["home_grid", "community", "subdistrict"]
_REASONS = [
    "no_volunteers_nearby",
    "no_volunteer_available",
    "clash_or_rest",
    "weekly_cap_reached",
    "used_elsewhere",
    "required_kind_missing",
]
_SKIP_REASONS = [
    "volunteer_not_active",
    "already_on_shift",
    "no_volunteer_available",
    "clash_or_rest",
    "weekly_cap_reached",
    "shift_full",
    "shift_cancelled",
    "shift_started",
]


def _local_date(**kwargs: Any) -> fields.Date:
    return fields.Date(
        required=True, validate=validate.Range(min=EARLIEST_DATE, max=LATEST_DATE), **kwargs
    )


class AutofillRequestSchema(ma.Schema):
    area_id = id_field(
        required=True,
        metadata={"description": "Any area in your subtree: a community, a sub-district, a grid, ..."},
    )
    day_from = _local_date(
        data_key="from", metadata={"description": "First local date (the area's time zone)"}
    )
    day_to = _local_date(
        data_key="to",
        metadata={"description": f"Last local date, included; at most {MAX_RANGE_DAYS} days after `from`"},
    )
    weekly_cap_hours = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=168),
        metadata={"description": "Most hours one volunteer may hold in a week; default AUTOFILL_WEEKLY_CAP_HOURS"},
    )
    apply = StrictBoolean(
        load_default=False, metadata={"description": "false: dry run, nothing written; true: commit the plan"}
    )
    plan_token = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=128),
        metadata={
            "description": "With apply: the dry run's plan_token; if the plan would now differ, 409 "
            "autofill_plan_changed and nothing is written"
        },
    )

    @ma.validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        first, last = data.get("day_from"), data.get("day_to")
        if first is None or last is None:
            return
        if last < first:
            raise ma.ValidationError(TO_BEFORE_FROM, field_name="to")
        if (last - first).days >= MAX_RANGE_DAYS:
            raise ma.ValidationError(f"At most {MAX_RANGE_DAYS} days.", field_name="to")


class AutofillRequestInput(TypedDict):
    """What :class:`AutofillRequestSchema` loads."""

    area_id: int
    day_from: date
    day_to: date
    weekly_cap_hours: int | None  # defaulted by the schema
    apply: bool  # defaulted by the schema
    plan_token: str | None  # defaulted by the schema


class AutofillPlaceSchema(ma.Schema):
    shift_id = fields.Integer(required=True)
    shift_starts_at = Instant(required=True)
    volunteer_id = fields.Integer(required=True)
    volunteer_name = fields.String(required=True)
    volunteer_kind = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": ["primary"]})
    rank = fields.String(
        required=True, metadata={"enum": _RANKS, "description": "Where the volunteer lives, seen from the shift"}
    )
    assignment_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Set once applied; null in a dry run"}
    )


class AutofillFunnelSchema(ma.Schema):
    nearby = fields.Integer(required=True, metadata={"description": "Active volunteers of the sub-district in your area"})
    available = fields.Integer(required=True, metadata={"description": "... whose weekly availability covers the shift"})
    clear = fields.Integer(required=True, metadata={"description": "... with no clashing shift (overlap or rest)"})
    eligible = fields.Integer(required=True, metadata={"description": "... with room under the weekly cap"})


class AutofillOpenShiftSchema(ma.Schema):
    shift_id = fields.Integer(required=True)
    shift_starts_at = Instant(required=True)
    open_places = fields.Integer(required=True, metadata={"description": "Primary places still open after the plan"})
    reason = fields.String(required=True, metadata={"enum": _REASONS})
    unmet_kinds = fields.List(fields.String(), required=True)
    candidates = fields.Nested(AutofillFunnelSchema, required=True)


class AutofillSkippedSchema(ma.Schema):
    shift_id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    reason = fields.String(required=True, metadata={"enum": _SKIP_REASONS})


class AutofillSummarySchema(ma.Schema):
    shifts = fields.Integer(required=True, metadata={"description": "Open, not started shifts in the range"})
    open_places = fields.Integer(required=True, metadata={"description": "Their open primary places before the plan"})
    planned = fields.Integer(required=True)
    left_open = fields.Integer(required=True)
    assigned = fields.Integer(required=True, metadata={"description": "Assignments written (0 in a dry run)"})
    volunteers_considered = fields.Integer(required=True)
    volunteers_planned = fields.Integer(required=True)


class AutofillSolverSchema(ma.Schema):
    method = fields.String(required=True, metadata={"enum": ["min_cost_flow", "cp_sat"]})
    status = fields.String(
        required=True,
        metadata={"enum": ["optimal", "feasible"], "description": "optimal: no plan could fill more places"},
    )
    upper_bound = fields.Integer(required=True, metadata={"description": "No plan fills more places than this"})
    seconds = fields.Float(required=True)
    rounds = fields.Integer(required=True)
    pairs = fields.Integer(required=True, metadata={"description": "Candidate (shift, volunteer) pairs"})


class AutofillResultSchema(ma.Schema):
    area_id = fields.Integer(required=True)
    day_from = fields.Date(required=True, data_key="from")
    day_to = fields.Date(required=True, data_key="to")
    timezone = fields.String(required=True, metadata={"description": "The area's time zone: the dates' zone"})
    weekly_cap_hours = fields.Integer(required=True)
    applied = StrictBoolean(required=True)
    plan_token = fields.String(required=True, metadata={"description": "Pass with apply to commit exactly this plan"})
    places = fields.List(fields.Nested(AutofillPlaceSchema), required=True)
    open_shifts = fields.List(fields.Nested(AutofillOpenShiftSchema), required=True)
    skipped = fields.List(
        fields.Nested(AutofillSkippedSchema),
        required=True,
        metadata={"description": "On apply: planned places that no longer held once locked, not written"},
    )
    summary = fields.Nested(AutofillSummarySchema, required=True)
    solver = fields.Nested(AutofillSolverSchema, required=True)
