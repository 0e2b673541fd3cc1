"""A city's point rules: versions that apply from their effective date, and the rule for a moment.

Which version applies: an award uses the version in force when the rewarded thing happened —
the shift's start for a served shift (and the streak it completes), the start of the served day
for hours entered by hand, the confirmation for a report. So a patrol served offline last week and
synced today is paid by last week's rules.

Changing the rules is appending a version (the history stays as it was), with two limits that
make "a change never rewrites points already given" hold:

- ``effective_from`` may not be earlier than the newest award already made in the city (the
  latest service record or report bonus written there): every award ever made keeps being explained
  by the version that paid it. With no award yet, a version may start in the past.
- ``effective_from`` may not be earlier than the latest version's: versions take effect in the
  order they were made. An equal ``effective_from`` replaces a version scheduled for the future
  before it starts (the higher version wins a tie).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core import i18n
from core.auth import Caller, Role
from core.errors import Conflict, Forbidden, NotFound, OutOfScope, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from core.timeutil import zone
from grids.models import Area
from grids.paths import city_id
from grids.queries import get_city, in_subtree
from patrols.reports.models import Report
from rewards.awarding.models import ServiceRecord
from rewards.ledger.models import LedgerEntry, LedgerReason
from rewards.rules.models import PointRule
from rewards.rules.schemas import PointRuleCreateInput

EFFECTIVE_BEFORE_AWARDS = i18n.N_("Points were already given after this time; a new version starts later.")
EFFECTIVE_BEFORE_LATEST = i18n.N_("A version may not start before the latest version does.")

i18n.register_titles(
    i18n.title("no_point_rule", "No point rule yet"),
    i18n.title("rule_version_taken", "Point rules changed at the same time"),
)
i18n.register_messages(
    i18n.N_("Point rules exist for cities only."),
    i18n.N_("This city has no point rule yet."),
    i18n.N_("Only an admin whose area covers the city sets its point rules."),
    i18n.N_("Another version was saved at the same time; read the rules and try again."),
    EFFECTIVE_BEFORE_AWARDS,
    EFFECTIVE_BEFORE_LATEST,
)


# --- which city --------------------------------------------------------------------------------


def city_id_of(path: str) -> int:
    """The city above (or at) an area."""
    return city_id(path)


def rule_city(caller: Caller, area_id: int, *, write: bool) -> Area:
    """The city whose rules the caller reads or writes.

    Reading: anyone working or living inside the city (volunteers see how points are earned) or
    above it. Writing: admins whose area covers the whole city.
    """
    city = get_city(area_id, "Point rules exist for cities only.")
    if write:
        if caller.role != Role.ADMIN:
            raise Forbidden("Only an admin whose area covers the city sets its point rules.")
        caller.ensure_scope(city.path)
    elif not (caller.in_scope(city.path) or caller.area_path.startswith(city.path)):
        raise OutOfScope("The record is outside your area.")
    return city


# --- reading -----------------------------------------------------------------------------------


def rule_at(city_id: int, when: datetime) -> PointRule | None:
    """The version in force at ``when``: the latest to start at or before it (ties: newest)."""
    return db.session.scalar(
        sa.select(PointRule)
        .where(PointRule.city_id == city_id, PointRule.effective_from <= when)
        .order_by(PointRule.effective_from.desc(), PointRule.version.desc())
        .limit(1)
    )


def current_rule(city: Area, now: datetime) -> PointRule:
    rule = rule_at(city.id, now)
    if rule is None:
        raise NotFound("This city has no point rule yet.", code="no_point_rule")
    return rule


def history(city: Area, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """Every version of the city's rules, newest first."""
    stmt = sa.select(PointRule).where(PointRule.city_id == city.id)
    return paginate(stmt, [PointRule.version], limit=limit, cursor=cursor, descending=True)


def latest_version(city_id: int) -> PointRule | None:
    return db.session.scalar(
        sa.select(PointRule).where(PointRule.city_id == city_id).order_by(PointRule.version.desc()).limit(1)
    )


def latest_award_at(city: Area) -> datetime | None:
    """When the newest rule-based award in the city was written (None: none yet).

    Service records (served shifts with their streaks, hand-entered hours) carry the grid they
    were served in; report bonuses are found through their report's grid.
    """
    served = db.session.scalar(
        sa.select(sa.func.max(ServiceRecord.created_at))
        .select_from(ServiceRecord)
        .join(Area, Area.id == ServiceRecord.grid_id)
        .where(in_subtree(Area.path, city.path))
    )
    reported = db.session.scalar(
        sa.select(sa.func.max(LedgerEntry.created_at))
        .select_from(LedgerEntry)
        .join(Report, LedgerEntry.source_id == sa.cast(Report.id, sa.String))
        .join(Area, Area.id == Report.grid_id)
        .where(
            LedgerEntry.reason == LedgerReason.REPORT_BONUS,
            LedgerEntry.source_type == "report",
            in_subtree(Area.path, city.path),
        )
    )
    moments = [moment for moment in (served, reported) if moment is not None]
    return max(moments) if moments else None


# --- writing -----------------------------------------------------------------------------------


def create_version(caller: Caller, city: Area, data: PointRuleCreateInput) -> PointRule:
    """Append the next version of the city's rules (validated by the schema for absurd values)."""
    effective_from: datetime = data["effective_from"].astimezone(UTC)
    latest = latest_version(city.id)
    if latest is not None and effective_from < latest.effective_from:
        raise ValidationFailed(errors={"effective_from": [EFFECTIVE_BEFORE_LATEST]})
    awarded = latest_award_at(city)
    if awarded is not None and effective_from < awarded:
        raise ValidationFailed(errors={"effective_from": [EFFECTIVE_BEFORE_AWARDS]})
    rule = PointRule(
        city_id=city.id,
        version=(latest.version + 1) if latest else 1,
        effective_from=effective_from,
        points_per_hour=data["points_per_hour"],
        rounding_minutes=data["rounding_minutes"],
        report_bonus=dict(data["report_bonus"]),
        daily_cap=data["daily_cap"],
        streak_days=data["streak_days"],
        streak_bonus=data["streak_bonus"],
        expiry_years=data["expiry_years"],
        manual_hours_earn_points=data["manual_hours_earn_points"],
        created_by=caller.user_id,
    )
    try:
        # Two admins saving at once compute the same next version: the unique (city, version)
        # lets one win; the other gets a clear 409 instead of a 500, and writes nothing.
        with db.session.begin_nested():
            db.session.add(rule)
            db.session.flush()
    except IntegrityError:
        raise Conflict(
            "Another version was saved at the same time; read the rules and try again.",
            code="rule_version_taken",
        ) from None
    return rule


# --- what a rule pays --------------------------------------------------------------------------


def points_for_minutes(rule: PointRule, minutes: int) -> int:
    """Served minutes rounded down to whole rounding units, times points per hour (rounded down).

    15-minute units at 10 points an hour: 50 minutes count as 45 and earn 7 (7.5 rounded down).
    """
    counted = (max(minutes, 0) // rule.rounding_minutes) * rule.rounding_minutes
    return counted * rule.points_per_hour // 60


def expires_at(rule: PointRule, earned_at: datetime, timezone: str) -> datetime | None:
    """End of year Y + expiry_years in the city's time zone, Y the local year points were earned."""
    if rule.expiry_years is None:
        return None
    tz = zone(timezone)
    year = earned_at.astimezone(tz).year + rule.expiry_years + 1
    return datetime.combine(date(year, 1, 1), time(0), tzinfo=tz).astimezone(UTC)


def day_start(day: date, timezone: str) -> datetime:
    """The first moment of a local day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone(timezone)).astimezone(UTC)
