"""marshmallow schemas of leaderboards and the opt-out."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import FullMatch, StrictBoolean
from core.validators import id_field

_MONTH = re.compile(r"20[0-9][0-9]-(0[1-9]|1[0-2])")
_YEAR = re.compile(r"20[0-9][0-9]")
#: Either form; which one is right depends on ``period`` (checked with the schema).
VALUE_PATTERN = r"^20[0-9][0-9](-(0[1-9]|1[0-2]))?$"
MONTH_FORMAT = i18n.N_("Use YYYY-MM for a month (2000-01 to 2099-12).")
YEAR_FORMAT = i18n.N_("Use YYYY for a year (2000 to 2099).")
VALUE_FORMAT = i18n.N_("Use YYYY-MM for a month or YYYY for a year (2000 to 2099).")

i18n.register_messages(MONTH_FORMAT, YEAR_FORMAT, VALUE_FORMAT)


class LeaderboardArgs(ma.Schema):
    area_id = id_field(
        strict=False,
        metadata={"description": "The area whose volunteers are ranked (default: my home grid, or my area)"},
    )
    by = fields.String(
        load_default="volunteer",
        validate=validate.OneOf(["volunteer", "grid", "community", "district"]),
        metadata={"description": "Rank volunteers, or the areas of this level below `area_id`"},
    )
    period = fields.String(required=True, validate=validate.OneOf(["month", "year"]))
    value = fields.String(
        validate=FullMatch(VALUE_PATTERN, error=VALUE_FORMAT),
        metadata={
            "description": "With period=month a month YYYY-MM (2000-01 to 2099-12), with period=year a "
            "year YYYY (2000 to 2099); the other form is 422. Default: the current one",
            "example": "2026-11",
        },
    )
    metric = fields.String(required=True, validate=validate.OneOf(["hours", "points"]))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))

    @ma.validates_schema
    def _value(self, data: dict[str, Any], **_: Any) -> None:
        value = data.get("value")
        if value is None:
            return
        if data.get("period") == "month" and not _MONTH.fullmatch(value):
            raise ma.ValidationError(MONTH_FORMAT, field_name="value")
        if data.get("period") == "year" and not _YEAR.fullmatch(value):
            raise ma.ValidationError(YEAR_FORMAT, field_name="value")


class _AreaRef(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    level = fields.String(required=True)


class LeaderboardRowSchema(ma.Schema):
    rank = fields.Integer(required=True, metadata={"description": "Equal values share a rank (1, 2, 2, 4)"})
    volunteer_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null for an area, or a volunteer who opted out"}
    )
    area_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "The ranked area (by grid, community or district)"}
    )
    name = fields.String(required=True, metadata={"description": "匿名志愿者 for a volunteer who opted out"})
    grid_name = fields.String(required=True, allow_none=True, metadata={"description": "A volunteer's home grid"})
    anonymous = StrictBoolean(required=True)
    hours = fields.Float(required=True)
    points = fields.Integer(required=True)


class _MineSchema(ma.Schema):
    rank = fields.Integer(required=True, allow_none=True, metadata={"description": "null when my value is 0"})
    hours = fields.Float(required=True)
    points = fields.Integer(required=True)


class LeaderboardSchema(ma.Schema):
    area = fields.Nested(_AreaRef, required=True)
    by = fields.String(required=True)
    period = fields.String(required=True)
    value = fields.String(required=True)
    metric = fields.String(required=True)
    ranked = fields.Integer(required=True, metadata={"description": "How many have a non-zero value"})
    items = fields.List(fields.Nested(LeaderboardRowSchema), required=True)
    me = fields.Nested(
        _MineSchema, required=True, allow_none=True, metadata={"description": "A volunteer's own place (by volunteer)"}
    )


class PreferenceSchema(ma.Schema):
    opt_out = StrictBoolean(
        required=True, metadata={"description": "Not shown by name on leaderboards (still counted)"}
    )
