"""Grid coverage: for every grid of an area and a period, how much patrol was expected, staffed and
served, where nobody came, how it compares with the period before, and which grids lack stewards.

All figures are person-minutes (integers, exact; hours are minutes / 60):

- ``planned_minutes``: places planned × length of each shift scheduled in the period (cancelled
  shifts left out); a shift belongs to the period its start falls in, in the grid's time zone;
- ``target_minutes``: the grid's weekly patrol target (``grids`` quota) × the period's days / 7,
  rounded to the nearest minute (the target as set now: targets keep no history);
- ``expected_minutes``: the larger of the two, ``expected_basis`` saying which (``shifts``,
  ``target``, or ``none`` when both are 0);
- ``staffed_minutes``: places held by primaries (the shift's headcount after withdrawals, no-shows
  and promotions) × length;
- ``served_minutes``: the patrols' served minutes whose presence counts (verified or approved; a
  presence rejected or still in review serves nothing);
- ``coverage_pct``: served ÷ expected, null when nothing was expected.

Grids are ranked weakest first: every grid without a scheduled shift (worst), then by coverage,
then by served minutes. Uncovered windows are the shifts of the period that have ended with no
minute served, and the local days up to yesterday that no served shift touched. The quota section
lists grids whose *active* volunteers of a kind (homed in the grid, now) are below their quota.

Totals are sums of the grids (expected minutes too), so grids add up to the area. Each query is one SQL aggregate over the
grids of the area sharing a time zone (usually all of them), so a period's bounds are each grid's
own local midnights.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import orm

from core.auth import Caller
from core.extensions import db
from core.timeutil import zone
from grids.models import Area, AreaLevel, GridPatrolTarget, GridQuota
from grids.queries import in_subtree, referenced_area
from patrols.models import COUNTED_PRESENCE, Patrol
from reports.periods import Period, resolve
from reports.replica import figures_as_of
from reports.sql import in_period, whole_minutes_between
from shifts.models import Shift, ShiftStatus
from volunteers.models import Volunteer, VolunteerKind, VolunteerStatus

#: Uncovered shifts listed per grid (the count is always complete), earliest first.
UNCOVERED_SHIFTS_SHOWN = 50


# ----------------------------------------------------------------------------------- the figures


@dataclass
class Figures:
    """One grid's (or the area's) figures for one period. A grid's ``expected_minutes`` is the
    larger of planned and target (:meth:`settle`); an area's is the sum of its grids'."""

    shift_count: int = 0
    planned_minutes: int = 0
    target_minutes: int = 0
    expected_minutes: int = 0
    staffed_minutes: int = 0
    served_minutes: int = 0

    def settle(self) -> Figures:
        self.expected_minutes = max(self.planned_minutes, self.target_minutes)
        return self

    @property
    def expected_basis(self) -> str:
        if self.expected_minutes == 0:
            return "none"
        return "shifts" if self.planned_minutes >= self.target_minutes else "target"

    @property
    def coverage_pct(self) -> float | None:
        return percentage(self.served_minutes, self.expected_minutes)

    def add(self, other: Figures) -> None:
        for item in dataclasses.fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def view(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "coverage_pct": self.coverage_pct}

    def grid_view(self) -> dict[str, Any]:
        return {**self.view(), "expected_basis": self.expected_basis}


def percentage(part: int, whole: int) -> float | None:
    return round(part * 100 / whole, 1) if whole else None


def change(now: float | None, before: float | None) -> float | None:
    """Percentage points gained since the previous period (null when either is unknown)."""
    return None if now is None or before is None else round(now - before, 1)


def target_for(weekly_minutes: int, days: int) -> int:
    """``weekly_minutes`` × ``days`` / 7, rounded half up, in integers."""
    return (2 * weekly_minutes * days + 7) // 14


@dataclass
class GridCoverage:
    grid: Area
    weekly_target_minutes: int | None
    now: Figures = field(default_factory=Figures)
    before: Figures = field(default_factory=Figures)
    uncovered_shifts: list[dict[str, Any]] = field(default_factory=list)
    uncovered_shift_count: int = 0
    days_without_patrol: list[dict[str, date]] = field(default_factory=list)
    days_without_patrol_count: int = 0

    def rank_key(self) -> tuple[bool, float, int, int]:
        return (self.now.shift_count > 0, self.now.coverage_pct or 0.0, self.now.served_minutes, self.grid.id)


# ------------------------------------------------------------------------------------ the queries


def _grid_filter(root_path: str, timezone: str) -> list[sa.ColumnElement[bool]]:
    return [Area.level == AreaLevel.GRID.value, in_subtree(Area.path, root_path), Area.timezone == timezone]


def _shift_figures(root_path: str, period: Period) -> dict[int, Figures]:
    """Planned and staffed minutes and the shift count of each grid (one aggregate)."""
    length = whole_minutes_between(Shift.starts_at, Shift.ends_at)
    stmt = (
        sa.select(
            Shift.grid_id,
            sa.func.count(Shift.id),
            sa.func.sum(Shift.max_headcount * length),
            sa.func.sum(Shift.primary_count * length),
        )
        .join(Area, Area.id == Shift.grid_id)
        .where(*_scheduled_in(root_path, period))
        .group_by(Shift.grid_id)
    )
    return {
        grid_id: Figures(shift_count=count, planned_minutes=int(planned or 0), staffed_minutes=int(staffed or 0))
        for grid_id, count, planned, staffed in db.session.execute(stmt)
    }


def _scheduled_in(root_path: str, period: Period) -> list[sa.ColumnElement[bool]]:
    """Scheduled shifts of the grids in the period's zone under ``root_path``, by their start."""
    return [
        *_grid_filter(root_path, period.zone.key),
        Shift.status == ShiftStatus.SCHEDULED.value,
        in_period(Shift.starts_at, period),
    ]


def _counted(patrol: type[Patrol] = Patrol) -> list[sa.ColumnElement[bool]]:
    return [
        patrol.presence_status.in_([status.value for status in COUNTED_PRESENCE]),
        patrol.served_minutes > 0,
    ]


def _served_minutes(root_path: str, period: Period) -> dict[int, int]:
    """Served minutes of counted presence on each grid's scheduled shifts of the period."""
    stmt = (
        sa.select(Shift.grid_id, sa.func.sum(Patrol.served_minutes))
        .join(Shift, Shift.id == Patrol.shift_id)
        .join(Area, Area.id == Shift.grid_id)
        .where(*_scheduled_in(root_path, period), *_counted())
        .group_by(Shift.grid_id)
    )
    return {grid_id: int(served or 0) for grid_id, served in db.session.execute(stmt)}


def _served_exists() -> sa.Exists:
    return sa.exists().where(Patrol.shift_id == Shift.id, *_counted())


def _uncovered_shifts(root_path: str, period: Period, as_of: datetime) -> sa.Result[Any]:
    """Shifts of the period that have ended with no minute served, by grid and start."""
    return db.session.execute(
        sa.select(Shift.id, Shift.grid_id, Shift.starts_at, Shift.ends_at)
        .join(Area, Area.id == Shift.grid_id)
        .where(*_scheduled_in(root_path, period), Shift.ends_at <= as_of, ~_served_exists())
        .order_by(Shift.grid_id, Shift.starts_at, Shift.id)
    )


def _served_windows(root_path: str, period: Period) -> sa.Result[Any]:
    """The windows of served shifts touching the period (one crossing midnight into it too)."""
    return db.session.execute(
        sa.select(Shift.grid_id, Shift.starts_at, Shift.ends_at)
        .join(Area, Area.id == Shift.grid_id)
        .where(
            *_grid_filter(root_path, period.zone.key),
            Shift.status == ShiftStatus.SCHEDULED.value,
            Shift.starts_at < period.ends_at,
            Shift.ends_at > period.starts_at,
            _served_exists(),
        )
        .distinct()
    )


# ------------------------------------------------------------------------------------ the report


def _day_ranges(days: Iterable[date]) -> list[dict[str, date]]:
    """Consecutive dates as ``{"first", "last"}`` ranges."""
    ranges: list[dict[str, date]] = []
    for day in sorted(days):
        if ranges and ranges[-1]["last"] + timedelta(days=1) == day:
            ranges[-1]["last"] = day
        else:
            ranges.append({"first": day, "last": day})
    return ranges


def _fill_zone(grids: dict[int, GridCoverage], root_path: str, period: Period, previous: Period,
               as_of: datetime) -> None:
    """The figures of the grids of one time zone (``period.zone``)."""
    for when, is_current in ((period, True), (previous, False)):
        shifts = _shift_figures(root_path, when)
        served = _served_minutes(root_path, when)
        for grid_id, coverage in grids.items():
            figures = shifts.get(grid_id, Figures())
            figures.served_minutes = served.get(grid_id, 0)
            if coverage.weekly_target_minutes is not None:
                figures.target_minutes = target_for(coverage.weekly_target_minutes, when.days)
            figures.settle()
            if is_current:
                coverage.now = figures
            else:
                coverage.before = figures

    for shift_id, grid_id, starts_at, ends_at in _uncovered_shifts(root_path, period, as_of):
        coverage = grids[grid_id]
        coverage.uncovered_shift_count += 1
        if len(coverage.uncovered_shifts) < UNCOVERED_SHIFTS_SHOWN:
            coverage.uncovered_shifts.append(
                {
                    "shift_id": shift_id,
                    "starts_at": starts_at,
                    "ends_at": ends_at,
                    "starts_local": starts_at.astimezone(period.zone).replace(tzinfo=None),
                }
            )

    # Days: from the first of the period to yesterday (today is not over), in the grid's zone.
    last_day = min(period.last, as_of.astimezone(period.zone).date() - timedelta(days=1))
    patrolled: dict[int, set[date]] = defaultdict(set)
    for grid_id, starts_at, ends_at in _served_windows(root_path, period):
        day = starts_at.astimezone(period.zone).date()
        final = (ends_at - timedelta(microseconds=1)).astimezone(period.zone).date()
        while day <= final:
            patrolled[grid_id].add(day)
            day += timedelta(days=1)
    elapsed = [period.first + timedelta(days=n) for n in range((last_day - period.first).days + 1)]
    for grid_id, coverage in grids.items():
        empty = [day for day in elapsed if day not in patrolled[grid_id]]
        coverage.days_without_patrol_count = len(empty)
        coverage.days_without_patrol = _day_ranges(empty)


def _below_quota(root_path: str) -> list[dict[str, Any]]:
    """Grids whose active volunteers of a kind (homed there, now) are fewer than their quota."""
    active = sa.func.count(Volunteer.id)
    stmt = (
        sa.select(GridQuota.grid_id, Area.name, GridQuota.kind_code, GridQuota.min_active, active)
        .join(Area, Area.id == GridQuota.grid_id)
        .join(VolunteerKind, VolunteerKind.code == GridQuota.kind_code)
        .outerjoin(
            Volunteer,
            sa.and_(
                Volunteer.home_grid_id == GridQuota.grid_id,
                Volunteer.kind_id == VolunteerKind.id,
                Volunteer.status == VolunteerStatus.ACTIVE.value,
            ),
        )
        .where(in_subtree(Area.path, root_path))
        .group_by(GridQuota.grid_id, Area.name, GridQuota.kind_code, GridQuota.min_active)
        .having(active < GridQuota.min_active)
        .order_by((GridQuota.min_active - active).desc(), GridQuota.grid_id, GridQuota.kind_code)
    )
    return [
        {
            "grid_id": grid_id,
            "grid_name": name,
            "kind": kind,
            "min_active": minimum,
            "active": count,
            "missing": minimum - count,
        }
        for grid_id, name, kind, minimum, count in db.session.execute(stmt)
    ]


def _period_view(period: Period) -> dict[str, Any]:
    return {
        "kind": period.kind.value,
        "label": period.label,
        "first": period.first,
        "last": period.last,
        "days": period.days,
        "starts_at": period.starts_at,
        "ends_at": period.ends_at,
    }


def area_coverage(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """The coverage report of ``args["area_id"]`` for the period ``args`` name (read in the area's
    zone): 422 ``area_id`` if unknown, 403 ``out_of_scope`` outside the caller's subtree, before
    anything is computed."""
    area = referenced_area(args["area_id"], "area_id")
    caller.ensure_scope(area.path)
    return coverage_report(area, resolve(args, zone(area.timezone)))


def coverage_report(area: Area, period: Period, as_of: datetime | None = None) -> dict[str, Any]:
    """``CoverageReportSchema`` of every grid under ``area`` for ``period`` (read in the area's zone;
    each grid's bounds in its own)."""
    as_of = as_of or figures_as_of()
    previous = period.previous()
    grid_rows = db.session.execute(
        sa.select(Area, GridPatrolTarget.weekly_target_minutes)
        .options(orm.defer(Area.boundary), orm.lazyload(Area.parent))
        .outerjoin(GridPatrolTarget, GridPatrolTarget.grid_id == Area.id)
        .where(Area.level == AreaLevel.GRID.value, in_subtree(Area.path, area.path))
        .order_by(Area.id)
    ).all()
    by_zone: dict[str, dict[int, GridCoverage]] = defaultdict(dict)
    for grid, weekly in grid_rows:
        by_zone[grid.timezone][grid.id] = GridCoverage(grid, weekly)
    for timezone, grids in by_zone.items():
        zone = ZoneInfo(timezone)
        _fill_zone(
            grids,
            area.path,
            dataclasses.replace(period, zone=zone),
            dataclasses.replace(previous, zone=zone),
            as_of,
        )

    ranked = sorted((coverage for grids in by_zone.values() for coverage in grids.values()),
                    key=GridCoverage.rank_key)
    total_now, total_before = Figures(), Figures()
    views = []
    for rank, coverage in enumerate(ranked, start=1):
        total_now.add(coverage.now)
        total_before.add(coverage.before)
        views.append(
            {
                "rank": rank,
                "grid_id": coverage.grid.id,
                "grid_name": coverage.grid.name,
                "grid_code": coverage.grid.code,
                "path": coverage.grid.path,
                "timezone": coverage.grid.timezone,
                "weekly_target_minutes": coverage.weekly_target_minutes,
                **coverage.now.grid_view(),
                "previous": coverage.before.grid_view(),
                "coverage_change": change(coverage.now.coverage_pct, coverage.before.coverage_pct),
                "uncovered_shift_count": coverage.uncovered_shift_count,
                "uncovered_shifts": coverage.uncovered_shifts,
                "days_without_patrol_count": coverage.days_without_patrol_count,
                "days_without_patrol": coverage.days_without_patrol,
            }
        )
    return {
        "as_of": as_of,
        "area": {"id": area.id, "name": area.name, "level": area.level, "timezone": area.timezone},
        "period": _period_view(period),
        "previous_period": _period_view(previous),
        "totals": {
            "grid_count": len(views),
            "grids_without_shifts": sum(1 for coverage in ranked if coverage.now.shift_count == 0),
            **total_now.view(),
            "previous": total_before.view(),
            "coverage_change": change(total_now.coverage_pct, total_before.coverage_pct),
        },
        "grids": views,
        "below_quota": _below_quota(area.path),
    }
