"""Badges: milestones granted once, when earned, with a ``badge_earned`` signal.

- ``first_patrol``: the first served patrol (a service record from a patrol).
- ``star_1`` … ``star_5``: 100, 300, 600, 1000 and 1500 service hours — the star levels of the
  national volunteer service record system (全国志愿服务信息系统, 星级志愿者: 一星 100 小时 … 五星
  1500 小时). Served patrols and hours entered by an organiser both count; voided service does not.
- ``reports_10``: ten confirmed reports (see ``awarding.REPORT_CONFIRMED``).
- ``month_without_absence``: a calendar month with at least one served patrol and no absence
  (evaluated after the month by ``tasks.grant_months_without_absence``).

A badge is never taken back: a later voided patrol leaves a star already earned (the moment it
was earned stays true). Granting is ``INSERT … ON CONFLICT DO NOTHING`` on (volunteer, badge), so
two events racing to grant the same badge grant it once and signal once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from core.db import insert_on_conflict, utcnow
from core.extensions import db
from core.timeutil import zone
from patrols.models import Patrol
from patrols.reports.models import Report, ReportStatus
from rewards import signals
from rewards.awarding.models import ServiceRecord
from rewards.badges.models import VolunteerBadge
from shifts.models import Assignment, AssignmentStatus, Shift

#: code → (Chinese name, English name)
BADGES: dict[str, tuple[str, str]] = {
    "first_patrol": ("首次巡逻", "First patrol"),
    "star_1": ("一星志愿者", "One-star volunteer (100 hours)"),
    "star_2": ("二星志愿者", "Two-star volunteer (300 hours)"),
    "star_3": ("三星志愿者", "Three-star volunteer (600 hours)"),
    "star_4": ("四星志愿者", "Four-star volunteer (1000 hours)"),
    "star_5": ("五星志愿者", "Five-star volunteer (1500 hours)"),
    "reports_10": ("十次有效上报", "Ten confirmed reports"),
    "month_without_absence": ("全勤月", "A month without absence"),
}
#: Service hours of each star level.
STAR_HOURS = {"star_1": 100, "star_2": 300, "star_3": 600, "star_4": 1000, "star_5": 1500}
REPORTS_FOR_BADGE = 10
#: Report statuses that mean an organiser confirmed it (everything past ``open``).
CONFIRMED_REPORT_STATUSES = tuple(status.value for status in ReportStatus if status != ReportStatus.OPEN)

_GRANT = sa.select(VolunteerBadge).from_statement(
    insert_on_conflict(
        VolunteerBadge.__table__,
        ["volunteer_id", "badge", "earned_at", "details"],
        ["volunteer_id", "badge"],
        returning=[column.name for column in VolunteerBadge.__table__.columns],
    )
).execution_options(populate_existing=True)


def grant(volunteer_id: int, badge: str, details: dict[str, Any] | None = None) -> VolunteerBadge | None:
    """Grant ``badge`` unless the volunteer has it; sends ``badge_earned`` only when granted now."""
    if badge not in BADGES:
        raise ValueError(f"unknown badge {badge!r}")
    earned_at = utcnow()
    row = db.session.scalar(
        _GRANT,
        {"volunteer_id": volunteer_id, "badge": badge, "earned_at": earned_at, "details": details or {}},
    )
    if row is not None:
        signals.badge_earned.send(
            signals.SENDER, **signals.BadgeEarned(volunteer_id=volunteer_id, badge=badge, earned_at=earned_at)
        )
    return row


def held(volunteer_id: int) -> set[str]:
    return set(db.session.scalars(sa.select(VolunteerBadge.badge).where(VolunteerBadge.volunteer_id == volunteer_id)))


def badges_of(volunteer_id: int) -> list[dict[str, Any]]:
    """The volunteer's badges, in the order earned, with their names."""
    rows = db.session.scalars(
        sa.select(VolunteerBadge)
        .where(VolunteerBadge.volunteer_id == volunteer_id)
        .order_by(VolunteerBadge.earned_at, VolunteerBadge.id)
    ).all()
    return [
        {
            "badge": row.badge,
            "name_zh": BADGES.get(row.badge, (row.badge, row.badge))[0],
            "name_en": BADGES.get(row.badge, (row.badge, row.badge))[1],
            "earned_at": row.earned_at,
            "details": row.details or {},
        }
        for row in rows
    ]


def service_minutes(volunteer_id: int) -> int:
    """All service that counts: served patrols and hand-entered hours, not voided."""
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(ServiceRecord.minutes), 0)).where(
                ServiceRecord.volunteer_id == volunteer_id, ServiceRecord.voided_at.is_(None)
            )
        )
        or 0
    )


def check_service_badges(volunteer_id: int, *, patrol: bool) -> list[str]:
    """After new service: first patrol and star levels reached. Returns the badges granted now."""
    have = held(volunteer_id)
    granted: list[str] = []
    if patrol and "first_patrol" not in have and grant(volunteer_id, "first_patrol"):
        granted.append("first_patrol")
    if all(star in have for star in STAR_HOURS):
        return granted
    minutes = service_minutes(volunteer_id)
    for star, hours in STAR_HOURS.items():
        if star not in have and minutes >= hours * 60 and grant(volunteer_id, star, {"hours": minutes // 60}):
            granted.append(star)
    return granted


def confirmed_reports(volunteer_id: int) -> int:
    return int(
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Report).where(
                Report.volunteer_id == volunteer_id, Report.status.in_(CONFIRMED_REPORT_STATUSES)
            )
        )
        or 0
    )


def check_report_badges(volunteer_id: int) -> list[str]:
    if "reports_10" in held(volunteer_id):
        return []
    count = confirmed_reports(volunteer_id)
    if count >= REPORTS_FOR_BADGE and grant(volunteer_id, "reports_10", {"reports": count}):
        return ["reports_10"]
    return []


# --- a month without absence ---------------------------------------------------------------------


def month_bounds(month: date) -> tuple[date, date]:
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following


def absent_in_month(first: date, following: date, volunteer_ids: list[int]) -> set[int]:
    """Of ``volunteer_ids``, those with an absence in the month (local dates of the shift's zone).

    An absence is a place still marked absent whose patrol never came to count: a no-show whose
    late check-in an organiser approved (a served, non-voided patrol) is not an absence.
    """
    if not volunteer_ids:
        return set()
    # Every zone's local month lies within a day of the UTC one; the local date decides below.
    start = datetime.combine(first - timedelta(days=1), time(0), tzinfo=UTC)
    end = datetime.combine(following + timedelta(days=1), time(0), tzinfo=UTC)
    counted = (
        sa.select(Patrol.id)
        .join(ServiceRecord, sa.and_(
            ServiceRecord.source_type == "patrol",
            ServiceRecord.source_id == sa.cast(Patrol.id, sa.String),
            ServiceRecord.voided_at.is_(None),
        ))
        .where(Patrol.assignment_id == Assignment.id)
    )
    rows = db.session.execute(
        sa.select(Assignment.volunteer_id, Shift.starts_at, Shift.timezone)
        .join(Shift, Shift.id == Assignment.shift_id)
        .where(
            Assignment.volunteer_id.in_(volunteer_ids),
            Assignment.status == AssignmentStatus.ABSENT,
            Shift.starts_at >= start,
            Shift.starts_at < end,
            ~sa.exists(counted),
        )
    ).all()
    return {
        volunteer_id
        for volunteer_id, starts_at, timezone in rows
        if first <= starts_at.astimezone(zone(timezone)).date() < following
    }


def served_in_month_without_badge(first: date, following: date, *, after_id: int, limit: int) -> list[int]:
    """Volunteers (by id, from ``after_id``) with a served patrol in the month and no such badge."""
    has_badge = sa.select(VolunteerBadge.id).where(
        VolunteerBadge.volunteer_id == ServiceRecord.volunteer_id,
        VolunteerBadge.badge == "month_without_absence",
    )
    return list(
        db.session.scalars(
            sa.select(ServiceRecord.volunteer_id)
            .where(
                ServiceRecord.source_type == "patrol",
                ServiceRecord.voided_at.is_(None),
                ServiceRecord.served_on >= first,
                ServiceRecord.served_on < following,
                ServiceRecord.volunteer_id > after_id,
                ~sa.exists(has_badge),
            )
            .group_by(ServiceRecord.volunteer_id)
            .order_by(ServiceRecord.volunteer_id)
            .limit(limit)
        )
    )
