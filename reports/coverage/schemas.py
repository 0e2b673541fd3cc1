"""marshmallow schemas of the coverage report: its query arguments and its answer."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from core.fields import Instant, LocalDateTimeText
from core.validators import id_field
from reports.periods import PeriodArgsSchema

_MINUTES = "person-minutes"


class CoverageArgsSchema(PeriodArgsSchema):
    area_id = id_field(
        strict=False,
        required=True,
        metadata={"description": "The area reported on (any level in your subtree): each grid under it"},
    )


class CoverageAreaSchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    level = fields.String(required=True)
    timezone = fields.String(required=True, metadata={"description": "The zone the period is read in"})


class CoveragePeriodSchema(ma.Schema):
    kind = fields.String(required=True, metadata={"enum": ["month", "quarter", "year", "range"]})
    label = fields.String(required=True, metadata={"example": "2026-11"})
    first = fields.Date(required=True, metadata={"description": "First local date"})
    last = fields.Date(required=True, metadata={"description": "Last local date, inclusive"})
    days = fields.Integer(required=True)
    starts_at = Instant(required=True, metadata={"description": "In the area's zone (each grid's own: its local midnight)"})
    ends_at = Instant(required=True, metadata={"description": "Exclusive"})


class CoverageFiguresSchema(ma.Schema):
    shift_count = fields.Integer(required=True, metadata={"description": "Scheduled shifts starting in the period"})
    planned_minutes = fields.Integer(required=True, metadata={"description": f"Places planned × shift length, {_MINUTES}"})
    target_minutes = fields.Integer(
        required=True, metadata={"description": f"Weekly target × days / 7 (0 without a target), {_MINUTES}"}
    )
    expected_minutes = fields.Integer(
        required=True,
        metadata={"description": f"A grid's: the larger of planned and target; an area's: the sum of its grids', {_MINUTES}"},
    )
    staffed_minutes = fields.Integer(required=True, metadata={"description": f"Places filled × shift length, {_MINUTES}"})
    served_minutes = fields.Integer(
        required=True, metadata={"description": f"Served by verified or approved presence, {_MINUTES}"}
    )
    coverage_pct = fields.Float(
        required=True, allow_none=True, metadata={"description": "served ÷ expected × 100; null when nothing was expected"}
    )


class GridFiguresSchema(CoverageFiguresSchema):
    expected_basis = fields.String(
        required=True,
        metadata={"enum": ["shifts", "target", "none"], "description": "Which of the two expected_minutes is"},
    )


class UncoveredShiftSchema(ma.Schema):
    shift_id = fields.Integer(required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    starts_local = LocalDateTimeText(required=True, metadata={"description": "In the grid's zone"})


class DayRangeSchema(ma.Schema):
    first = fields.Date(required=True)
    last = fields.Date(required=True)


class GridCoverageSchema(GridFiguresSchema):
    rank = fields.Integer(required=True, metadata={"description": "1: the weakest grid"})
    grid_id = fields.Integer(required=True)
    grid_name = fields.String(required=True)
    grid_code = fields.String(required=True)
    path = fields.String(required=True)
    timezone = fields.String(required=True)
    weekly_target_minutes = fields.Integer(required=True, allow_none=True)
    previous = fields.Nested(GridFiguresSchema, required=True)
    coverage_change = fields.Float(
        required=True, allow_none=True, metadata={"description": "Percentage points since the previous period"}
    )
    uncovered_shift_count = fields.Integer(
        required=True, metadata={"description": "Shifts of the period that ended with no minute served"}
    )
    uncovered_shifts = fields.List(
        fields.Nested(UncoveredShiftSchema),
        required=True,
        metadata={"description": "The first 50 of them, earliest first"},
    )
    days_without_patrol_count = fields.Integer(
        required=True, metadata={"description": "Local days of the period, up to yesterday, that no served shift touched"}
    )
    days_without_patrol = fields.List(fields.Nested(DayRangeSchema), required=True)


class CoverageTotalsSchema(CoverageFiguresSchema):
    grid_count = fields.Integer(required=True)
    grids_without_shifts = fields.Integer(required=True)
    previous = fields.Nested(CoverageFiguresSchema, required=True)
    coverage_change = fields.Float(required=True, allow_none=True)


class BelowQuotaSchema(ma.Schema):
    grid_id = fields.Integer(required=True)
    grid_name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "Code of the volunteer kind"})
    min_active = fields.Integer(required=True)
    active = fields.Integer(required=True, metadata={"description": "Active volunteers of the kind homed in the grid, now"})
    missing = fields.Integer(required=True)


class CoverageReportSchema(ma.Schema):
    as_of = Instant(required=True, metadata={"description": "When the figures were read"})
    area = fields.Nested(CoverageAreaSchema, required=True)
    period = fields.Nested(CoveragePeriodSchema, required=True)
    previous_period = fields.Nested(CoveragePeriodSchema, required=True)
    totals = fields.Nested(CoverageTotalsSchema, required=True, metadata={"description": "The sums of the grids"})
    grids = fields.List(
        fields.Nested(GridCoverageSchema), required=True, metadata={"description": "Every grid, weakest first"}
    )
    below_quota = fields.List(
        fields.Nested(BelowQuotaSchema),
        required=True,
        metadata={"description": "Grids with fewer active volunteers of a kind than their quota, most missing first"},
    )
