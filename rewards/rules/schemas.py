"""marshmallow schemas of point rules: a new version in, versions out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.db import utcnow
from core.fields import Instant, StrictBoolean
from core.pagination import PageArgs
from patrols.reports.models import ReportLevel

#: Furthest ahead a version may be scheduled; later is a typo, not a plan.
MAX_SCHEDULE_AHEAD = timedelta(days=3 * 366)
_LEVELS = [level.value for level in ReportLevel]

STREAK_BONUS_NEEDS_DAYS = i18n.N_("A streak bonus needs streak_days.")
TOO_FAR_AHEAD = i18n.N_("At most three years ahead.")
i18n.register_messages(STREAK_BONUS_NEEDS_DAYS, TOO_FAR_AHEAD)


def _count(low: int, high: int, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=low, max=high), **kwargs)


#: Points per confirmed report, one optional field per level: a schema, so that the document lists
#: the keys (and refuses others) as the server does.
ReportBonusSchema = ma.Schema.from_dict({level: _count(0, 10_000) for level in _LEVELS}, name="ReportBonusSchema")


class PointRuleCreateSchema(ma.Schema):
    effective_from = Instant(
        required=True,
        metadata={"description": "From when this version applies; not before the latest version, nor "
                  "before points already given in the city, nor more than three years ahead"},
    )
    points_per_hour = _count(0, 1000, required=True, metadata={"description": "Points per served hour"})
    rounding_minutes = _count(
        1, 240, load_default=15,
        metadata={"description": "Served time counts in whole units of this many minutes, rounded down"},
    )
    report_bonus = fields.Nested(
        ReportBonusSchema,
        load_default=dict,
        metadata={"description": "Points per confirmed report by level, e.g. {\"red\": 20, \"green\": 2}; "
                  "a level left out earns nothing"},
    )
    daily_cap = _count(
        1, 100_000, load_default=None, allow_none=True,
        metadata={"description": "Most points from served time (shifts and hand-entered hours) per "
                  "volunteer and local day; null: no cap. Bonuses are outside the cap"},
    )
    streak_days = _count(
        2, 366, load_default=None, allow_none=True,
        metadata={"description": "Consecutive local days with a served shift that earn streak_bonus"},
    )
    streak_bonus = _count(0, 100_000, load_default=0)
    expiry_years = _count(
        0, 10, load_default=None, allow_none=True,
        metadata={"description": "Points earned in year Y lapse at the end of year Y + expiry_years "
                  "(1: the end of the following year); null: never"},
    )
    manual_hours_earn_points = StrictBoolean(
        load_default=False, metadata={"description": "Whether hours entered by an organiser earn points"}
    )

    @ma.validates("effective_from")
    def _not_too_far(self, value: Any, **_: Any) -> None:
        if value > utcnow() + MAX_SCHEDULE_AHEAD:
            raise ma.ValidationError(TOO_FAR_AHEAD)

    @ma.validates_schema
    def _streak(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("streak_bonus") and not data.get("streak_days"):
            raise ma.ValidationError(STREAK_BONUS_NEEDS_DAYS, "streak_days")


class PointRuleCreateInput(TypedDict):
    """What :class:`PointRuleCreateSchema` loads."""

    effective_from: datetime
    points_per_hour: int
    rounding_minutes: int  # defaulted by the schema
    report_bonus: dict[str, int]  # defaulted by the schema
    daily_cap: int | None  # defaulted by the schema
    streak_days: int | None  # defaulted by the schema
    streak_bonus: int  # defaulted by the schema
    expiry_years: int | None  # defaulted by the schema
    manual_hours_earn_points: bool  # defaulted by the schema


class PointRuleSchema(ma.Schema):
    id = fields.Integer(required=True)
    city_id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    effective_from = Instant(required=True)
    points_per_hour = fields.Integer(required=True)
    rounding_minutes = fields.Integer(required=True)
    report_bonus = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    daily_cap = fields.Integer(required=True, allow_none=True)
    streak_days = fields.Integer(required=True, allow_none=True)
    streak_bonus = fields.Integer(required=True)
    expiry_years = fields.Integer(required=True, allow_none=True)
    manual_hours_earn_points = StrictBoolean(required=True)
    created_by = fields.Integer(required=True, allow_none=True)
    created_at = Instant(required=True)


class PointRuleHistoryArgs(PageArgs):
    pass
