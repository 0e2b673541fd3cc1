"""marshmallow schemas of participation reports: query arguments and the report."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import current_app
from marshmallow import fields, validate

from core import i18n
from core.fields import Instant
from core.validators import id_field
from reports.periods import PeriodArgsSchema, PeriodKind, SeriesStep, resolve
from reports.settings import SERIES_MAX_POINTS

_UTC = ZoneInfo("UTC")
SERIES_TOO_LONG = i18n.N_("Too many points for this series: ask for series=week or a shorter period.")
i18n.register_messages(SERIES_TOO_LONG)


class AreaParticipationArgs(PeriodArgsSchema):
    area_id = id_field(strict=False, required=True, metadata={"description": "The area reported on (in my subtree)"})
    series = fields.String(
        validate=validate.OneOf([step.value for step in SeriesStep]),
        metadata={"description": "Also a time series of the flows, per day or per Monday-to-Sunday week"},
    )

    @ma.validates_schema
    def _series_length(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("series") != SeriesStep.DAY:
            return
        if data.get("from_date") is None and data.get("period") is None:
            return  # the period's own check names what is missing
        try:
            days = resolve(data, _UTC).days  # a period's length is the same in every zone
        except (KeyError, ValueError):
            return  # a malformed period: its own check says so
        if days > current_app.config[SERIES_MAX_POINTS]:
            raise ma.ValidationError({"series": [SERIES_TOO_LONG]})


class MyParticipationArgs(PeriodArgsSchema):
    pass




class ReportPeriodSchema(ma.Schema):
    label = fields.String(required=True, metadata={"example": "2026-11"})
    kind = fields.String(required=True, validate=validate.OneOf([kind.value for kind in PeriodKind]))
    from_date = fields.Date(required=True, data_key="from", attribute="from")
    to_date = fields.Date(required=True, data_key="to", attribute="to", metadata={"description": "Inclusive"})
    starts_at = Instant(required=True, metadata={"description": "First instant (UTC)"})
    ends_at = Instant(required=True, metadata={"description": "First instant after (exclusive)"})
    time_zone = fields.String(required=True)


_VOLUNTEER_COUNTS = ("registered", "approved", "newly_approved", "suspended_closed", "active")


class VolunteerCountsSchema(ma.Schema):
    registered = fields.Integer(required=True, metadata={"description": "Registered in the period"})
    approved = fields.Integer(required=True, metadata={"description": "Active at the end of the period"})
    newly_approved = fields.Integer(required=True, metadata={"description": "Approved (pending → active) in the period"})
    suspended_closed = fields.Integer(required=True, metadata={"description": "Suspended or retired at the end"})
    active = fields.Integer(required=True, metadata={"description": "Served at least one shift in the period"})


class VolunteerFiguresSchema(VolunteerCountsSchema):
    by_kind = fields.Dict(
        keys=fields.String(), values=fields.Nested(VolunteerCountsSchema), required=True,
        metadata={"description": "The same counts per volunteer kind code"},
    )


class ShiftFiguresSchema(ma.Schema):
    planned = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)
    places_planned = fields.Integer(required=True)
    places_filled = fields.Integer(required=True)
    fill_rate = fields.Float(required=True, allow_none=True)


class PresenceFiguresSchema(ma.Schema):
    assignments = fields.Integer(required=True)
    served = fields.Integer(required=True)
    no_shows = fields.Integer(required=True)
    late_withdrawals = fields.Integer(required=True)
    in_review = fields.Integer(required=True)
    attendance_rate = fields.Float(required=True, allow_none=True, metadata={"description": "served ÷ assignments"})
    served_minutes = fields.Integer(required=True)
    served_hours = fields.Float(required=True)
    manual_minutes = fields.Integer(required=True, metadata={"description": "Entered by hand, not in served"})
    manual_hours = fields.Float(required=True)


class ReportFiguresSchema(ma.Schema):
    filed = fields.Integer(required=True)
    by_level = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    taken_up = fields.Integer(required=True)
    resolved = fields.Integer(required=True)
    median_minutes_to_take_up = fields.Float(required=True, allow_none=True)
    median_minutes_to_resolve = fields.Float(required=True, allow_none=True)


class StarLevelsSchema(ma.Schema):
    star_1 = fields.Integer(required=True)
    star_2 = fields.Integer(required=True)
    star_3 = fields.Integer(required=True)
    star_4 = fields.Integer(required=True)
    star_5 = fields.Integer(required=True)


class PointFiguresSchema(ma.Schema):
    awarded = fields.Integer(required=True)
    reversed = fields.Integer(required=True)
    redeemed = fields.Integer(required=True)
    expired = fields.Integer(required=True)
    adjusted = fields.Integer(required=True)
    badges = fields.Dict(
        keys=fields.String(), values=fields.Integer(), required=True,
        metadata={"description": "Badges earned in the period, per badge code (star levels included)"},
    )
    star_levels = fields.Nested(
        StarLevelsSchema, required=True,
        metadata={"description": "Volunteers reaching each star level (100, 300, 600, 1000, 1500 service hours) in the period"},
    )


class ParticipationFlowsSchema(ma.Schema):
    shifts = fields.Nested(ShiftFiguresSchema, required=True, allow_none=True)
    presence = fields.Nested(PresenceFiguresSchema, required=True)
    reports = fields.Nested(ReportFiguresSchema, required=True)
    points = fields.Nested(PointFiguresSchema, required=True)


class ParticipationFiguresSchema(ParticipationFlowsSchema):
    volunteers = fields.Nested(VolunteerFiguresSchema, required=True)


class ReportAreaSchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    level = fields.String(required=True)


class ParticipationChildSchema(ReportAreaSchema):
    at_home = fields.Boolean(metadata={"description": "A volunteer: at home in the grid"})
    figures = fields.Nested(ParticipationFiguresSchema, required=True)


class ParticipationSeriesPointSchema(ParticipationFlowsSchema):
    label = fields.String(required=True, metadata={"example": "2026-W45"})
    from_date = fields.Date(required=True, data_key="from", attribute="from")
    to_date = fields.Date(required=True, data_key="to", attribute="to")


class AreaParticipationSchema(ma.Schema):
    area = fields.Nested(ReportAreaSchema, required=True)
    period = fields.Nested(ReportPeriodSchema, required=True)
    as_of = Instant(required=True, metadata={"description": "When the figures were computed"})
    figures = fields.Nested(ParticipationFiguresSchema, required=True)
    children_level = fields.String(required=True)
    children = fields.List(fields.Nested(ParticipationChildSchema), required=True)
    series = fields.List(fields.Nested(ParticipationSeriesPointSchema), required=True, allow_none=True)


class MyParticipationSchema(ma.Schema):
    period = fields.Nested(ReportPeriodSchema, required=True)
    as_of = Instant(required=True)
    presence = fields.Nested(PresenceFiguresSchema, required=True)
    points = fields.Nested(PointFiguresSchema, required=True)
