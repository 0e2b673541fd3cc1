"""The figures of a participation report, section by section, as grouped SQL aggregates; which rows
each figure counts is said in :mod:`reports.participation.service`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from core.extensions import db
from grids.models import Area
from patrols.models import COUNTED_PRESENCE, Patrol, PresenceStatus
from patrols.reports.models import Report, ReportLevel
from reports.participation.grouping import Grouping
from reports.participation.medians import NO_MEDIANS, medians_of, reports_query
from reports.participation.subsets import HELD_PLACE, held_places, last_status, served_volunteers
from reports.periods import Bucket, Period
from reports.sql import count_if, grid_series_key, grouped, hours, in_period, rate, sum_if
from rewards.awarding.models import ServiceRecord
from rewards.badges.models import VolunteerBadge
from rewards.badges.service import STAR_HOURS
from rewards.ledger.models import LedgerEntry, LedgerReason
from shifts.models import Assignment, AssignmentRole, AssignmentStatus, Shift, ShiftStatus
from volunteers.models import StatusChange, Volunteer, VolunteerKind, VolunteerStatus

#: Ledger reasons that earn points.
EARNING = (LedgerReason.SERVED_SHIFT, LedgerReason.MANUAL_HOURS, LedgerReason.REPORT_BONUS, LedgerReason.STREAK_BONUS)
LEVELS = tuple(level.value for level in ReportLevel)


# ------------------------------------------------------------------------------------- sections


def volunteers_section(
    period: Period, by: Grouping, kinds: list[str], served: sa.Subquery | None = None
) -> dict[Any, dict[str, Any]]:
    """``served``: the volunteers active in the period (a ``volunteer_id`` column), when the caller
    has them from elsewhere (the roll-ups); by default :func:`served_volunteers`."""
    root = by.area.path if by.area is not None else "/"
    last = last_status(period, root)
    served = served_volunteers(period, root) if served is None else served
    status_at_end = last.c.to_status
    newly_approved = Volunteer.id.in_(  # a few rows, hashed
        sa.select(StatusChange.volunteer_id).where(
            StatusChange.from_status == VolunteerStatus.PENDING,
            StatusChange.to_status == VolunteerStatus.ACTIVE,
            in_period(StatusChange.at, period),
        )
    )
    home = orm.aliased(Area)
    stmt = (
        sa.select(Volunteer.id)
        .join(home, home.id == Volunteer.home_grid_id)
        .join(VolunteerKind, VolunteerKind.id == Volunteer.kind_id)
        .outerjoin(last, last.c.volunteer_id == Volunteer.id)
        .outerjoin(served, served.c.volunteer_id == Volunteer.id)
        .where(Volunteer.created_at < period.ends_at)
    )
    stmt, key = by.apply(stmt, home.path, Volunteer.id, Volunteer.created_at)
    kind = VolunteerKind.code
    rows = db.session.execute(
        stmt.with_only_columns(
            key.label("key"),
            kind.label("kind"),
            count_if(in_period(Volunteer.created_at, period)).label("registered"),
            count_if(status_at_end == VolunteerStatus.ACTIVE).label("approved"),
            count_if(newly_approved).label("newly_approved"),
            count_if(status_at_end.in_([VolunteerStatus.SUSPENDED, VolunteerStatus.RETIRED])).label("suspended_closed"),
            count_if(served.c.volunteer_id.is_not(None)).label("active"),
        ).group_by(key, kind)
    ).mappings()
    names = ("registered", "approved", "newly_approved", "suspended_closed", "active")
    result: dict[Any, dict[str, Any]] = {}
    for row in rows:  # one row per (group, kind): a handful, never one per volunteer
        figures = result.setdefault(row["key"], empty_volunteers(kinds))
        for name in names:
            figures[name] += row[name]
            figures["by_kind"][row["kind"]][name] = row[name]
    return result


def empty_volunteers(kinds: list[str]) -> dict[str, Any]:
    names = ("registered", "approved", "newly_approved", "suspended_closed", "active")
    return {**dict.fromkeys(names, 0), "by_kind": {code: dict.fromkeys(names, 0) for code in kinds}}


def shifts_section(period: Period, by: Grouping) -> dict[Any, dict[str, Any]]:
    held = held_places(period, by.area.path if by.area is not None else "/")
    filled = sa.func.coalesce(held.c.filled, 0)
    capped = sa.case((filled > Shift.max_headcount, Shift.max_headcount), else_=filled)
    grid = orm.aliased(Area)
    planned = Shift.status != ShiftStatus.CANCELLED
    stmt = (
        sa.select(Shift.id)
        .join(grid, grid.id == Shift.grid_id)
        .outerjoin(held, held.c.shift_id == Shift.id)
        .where(in_period(Shift.starts_at, period))
    )
    stmt, key = by.apply(stmt, grid.path, sa.null(), Shift.starts_at)
    rows = grouped(
        stmt,
        key,
        count_if(planned).label("planned"),
        count_if(sa.not_(planned)).label("cancelled"),
        sum_if(planned, Shift.max_headcount).label("places_planned"),
        sum_if(planned, capped).label("places_filled"),
    )
    return {k: _shift_figures(row) for k, row in rows.items()}


def _shift_figures(row: dict[str, Any]) -> dict[str, Any]:
    figures = {name: int(row.get(name) or 0) for name in ("planned", "cancelled", "places_planned", "places_filled")}
    return {**figures, "fill_rate": rate(figures["places_filled"], figures["places_planned"])}


def presence_section(period: Period, by: Grouping, as_of: datetime) -> dict[Any, dict[str, Any]]:
    grid = orm.aliased(Area)
    held = sa.and_(Assignment.role == AssignmentRole.PRIMARY, Assignment.status.in_(HELD_PLACE))
    served = sa.and_(held, Patrol.presence_status.in_(COUNTED_PRESENCE), Patrol.served_minutes.is_not(None))
    stmt = (
        sa.select(Assignment.id)
        .join(Shift, Shift.id == Assignment.shift_id)
        .join(grid, grid.id == Shift.grid_id)
        .outerjoin(Patrol, Patrol.assignment_id == Assignment.id)
        .where(in_period(Shift.starts_at, period), Shift.status != ShiftStatus.CANCELLED, Shift.ends_at <= as_of)
    )
    stmt, key = by.apply(stmt, grid.path, Assignment.volunteer_id, Shift.starts_at)
    rows = grouped(
        stmt,
        key,
        count_if(held).label("assignments"),
        count_if(served).label("served"),
        count_if(Assignment.status == AssignmentStatus.ABSENT).label("no_shows"),
        count_if(
            sa.and_(Assignment.status == AssignmentStatus.WITHDRAWN, Assignment.late_withdrawal.is_(True))
        ).label("late_withdrawals"),
        sum_if(served, Patrol.served_minutes).label("served_minutes"),
        count_if(sa.and_(held, Patrol.presence_status == PresenceStatus.NEEDS_REVIEW)).label("in_review"),
    )
    manual = _manual_minutes(period, by)
    return {k: _presence_figures(rows.get(k, {}), manual.get(k, 0)) for k in rows.keys() | manual.keys()}


def _manual_minutes(period: Period, by: Grouping) -> dict[Any, int]:
    grid = orm.aliased(Area)
    stmt = (
        sa.select(ServiceRecord.id)
        .join(grid, grid.id == ServiceRecord.grid_id)
        .where(
            ServiceRecord.source_type == "manual",
            ServiceRecord.voided_at.is_(None),
            ServiceRecord.served_on >= period.first,
            ServiceRecord.served_on <= period.last,
        )
    )
    # Records carry a local date, not an instant: the series buckets them by date.
    stmt, key = by.apply(stmt, grid.path, ServiceRecord.volunteer_id, sa.null())
    if by.mode == "series" and by.volunteer_id is None:
        key = date_bucket(ServiceRecord.served_on, by.buckets)
    elif by.mode == "grid_series":
        key = grid_series_key(grid.path, date_bucket(ServiceRecord.served_on, by.buckets))
    rows = grouped(stmt, key, sa.func.sum(ServiceRecord.minutes).label("minutes"))
    return {k: int(row["minutes"] or 0) for k, row in rows.items()}


def date_bucket(column: Any, buckets: list[Bucket]) -> sa.ColumnElement[int]:
    """The bucket a local date (``served_on``, a roll-up's day) falls in."""
    if len(buckets) == 1:
        return sa.literal(0)
    return sa.case(
        *((column <= bucket.last, index) for index, bucket in enumerate(buckets)),
        else_=len(buckets) - 1,
    )


def _presence_figures(row: dict[str, Any], manual_minutes: int) -> dict[str, Any]:
    counts = {
        name: int(row.get(name) or 0)
        for name in ("assignments", "served", "no_shows", "late_withdrawals", "in_review")
    }
    return {
        **counts,
        "attendance_rate": rate(counts["served"], counts["assignments"]),
        "served_minutes": int(row.get("served_minutes") or 0),
        "served_hours": hours(row.get("served_minutes")),
        "manual_minutes": manual_minutes,
        "manual_hours": hours(manual_minutes),
    }


def reports_section(period: Period, by: Grouping, with_medians: bool = True) -> dict[Any, dict[str, Any]]:
    stmt, key, taken_up_at = reports_query(period, by)
    rows = grouped(
        stmt,
        key,
        sa.func.count(Report.id).label("filed"),
        *(count_if(Report.level == level).label(level) for level in LEVELS),
        count_if(taken_up_at.is_not(None)).label("taken_up"),
        count_if(Report.resolved_at.is_not(None)).label("resolved"),
    )
    medians = medians_of(stmt, key, taken_up_at) if with_medians else {}
    return {
        k: {
            "filed": int(row["filed"]),
            "by_level": {level: int(row[level]) for level in LEVELS},
            "taken_up": int(row["taken_up"]),
            "resolved": int(row["resolved"]),
            **medians.get(k, NO_MEDIANS),
        }
        for k, row in rows.items()
    }


def points_section(period: Period, by: Grouping) -> dict[Any, dict[str, Any]]:
    home = orm.aliased(Area)
    stmt = (
        sa.select(LedgerEntry.id)
        .join(Volunteer, Volunteer.id == LedgerEntry.volunteer_id)
        .join(home, home.id == Volunteer.home_grid_id)
        .where(in_period(LedgerEntry.created_at, period))
    )
    stmt, key = by.apply(stmt, home.path, LedgerEntry.volunteer_id, LedgerEntry.created_at)
    reason = LedgerEntry.reason
    rows = grouped(
        stmt,
        key,
        sum_if(reason.in_(EARNING), LedgerEntry.amount).label("awarded"),
        sum_if(reason == LedgerReason.REVERSAL, -LedgerEntry.amount).label("reversed"),
        sum_if(
            reason.in_([LedgerReason.REDEMPTION, LedgerReason.REDEMPTION_REFUND]), -LedgerEntry.amount
        ).label("redeemed"),
        sum_if(reason == LedgerReason.EXPIRY, -LedgerEntry.amount).label("expired"),
        sum_if(reason == LedgerReason.ADJUSTMENT, LedgerEntry.amount).label("adjusted"),
    )
    badges = _badges(period, by)
    return {
        k: {
            **{name: int(rows.get(k, {}).get(name) or 0) for name in ("awarded", "reversed", "redeemed", "expired", "adjusted")},
            "badges": badges.get(k, {}),
            "star_levels": star_levels(badges.get(k, {})),
        }
        for k in rows.keys() | badges.keys()
    }


def star_levels(badges: dict[str, int]) -> dict[str, int]:
    """Volunteers reaching each star level in the period, every level listed: a star is a badge
    granted once per volunteer, so its count in ``badges`` is the number of volunteers reaching it."""
    return {star: badges.get(star, 0) for star in STAR_HOURS}


def _badges(period: Period, by: Grouping) -> dict[Any, dict[str, int]]:
    home = orm.aliased(Area)
    stmt = (
        sa.select(VolunteerBadge.id)
        .join(Volunteer, Volunteer.id == VolunteerBadge.volunteer_id)
        .join(home, home.id == Volunteer.home_grid_id)
        .where(in_period(VolunteerBadge.earned_at, period))
    )
    stmt, key = by.apply(stmt, home.path, VolunteerBadge.volunteer_id, VolunteerBadge.earned_at)
    rows = db.session.execute(
        stmt.with_only_columns(key.label("key"), VolunteerBadge.badge, sa.func.count().label("n")).group_by(
            key, VolunteerBadge.badge
        )
    ).all()
    result: dict[Any, dict[str, int]] = {}
    for row in rows:  # one row per (group, badge)
        result.setdefault(row.key, {})[row.badge] = int(row.n)
    return result


# --------------------------------------------------------------------------------------- report

EMPTY_SHIFTS = _shift_figures({})
EMPTY_PRESENCE = _presence_figures({}, 0)
EMPTY_REPORTS: dict[str, Any] = {
    "filed": 0, "by_level": dict.fromkeys(LEVELS, 0), "taken_up": 0, "resolved": 0, **NO_MEDIANS
}
EMPTY_POINTS: dict[str, Any] = {
    **dict.fromkeys(("awarded", "reversed", "redeemed", "expired", "adjusted"), 0),
    "badges": {},
    "star_levels": star_levels({}),
}

