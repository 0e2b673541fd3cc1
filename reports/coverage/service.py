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
own local midnights. The additive figures (shift count, planned, staffed and served minutes) are
defined once, in :mod:`reports.coverage.figures`, and read from the daily roll-ups for settled
days (:mod:`reports.rollups.coverage`); the lists (uncovered shifts, days without patrol, quotas)
are live. :func:`coverage_figures` is the figures and the ranking alone (the console's overview);
:func:`coverage_report` adds the lists to it.
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
from patrols.models import Patrol
from reports.coverage.figures import Figures, change, counted, grid_filter, scheduled_in, target_for
from reports.periods import Period, resolve
from reports.replica import figures_as_of
from reports.rollups.coverage import coverage_by_grid
from shifts.models import Shift, ShiftStatus
from volunteers.models import Volunteer, VolunteerKind, VolunteerStatus

#: Uncovered shifts listed per grid (the count is always complete), earliest first.
UNCOVERED_SHIFTS_SHOWN = 50


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


def _served_exists() -> sa.Exists:
    return sa.exists().where(Patrol.shift_id == Shift.id, *counted())


def _uncovered_shifts(root_path: str, period: Period, as_of: datetime,
                      grid_ids: list[int] | None = None) -> sa.Result[Any]:
    """Shifts of the period that have ended with no minute served, by grid and start (of
    ``grid_ids`` only, when given)."""
    only = [] if grid_ids is None else [Shift.grid_id.in_(grid_ids)]
    return db.session.execute(
        sa.select(Shift.id, Shift.grid_id, Shift.starts_at, Shift.ends_at)
        .join(Area, Area.id == Shift.grid_id)
        .where(*scheduled_in(root_path, period), *only, Shift.ends_at <= as_of, ~_served_exists())
        .order_by(Shift.grid_id, Shift.starts_at, Shift.id)
    )


def _served_windows(root_path: str, period: Period) -> sa.Result[Any]:
    """The windows of served shifts touching the period (one crossing midnight into it too)."""
    return db.session.execute(
        sa.select(Shift.grid_id, Shift.starts_at, Shift.ends_at)
        .join(Area, Area.id == Shift.grid_id)
        .where(
            *grid_filter(root_path, period.zone.key),
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


def _fill_figures(grids: dict[int, GridCoverage], root_path: str, period: Period, previous: Period,
                  as_of: datetime) -> None:
    """The figures, now and before, of the grids of one time zone (``period.zone``): additive
    sums from the roll-ups and the live tail (:func:`coverage_by_grid`), then each grid's target."""
    for when, is_current in ((period, True), (previous, False)):
        sums = coverage_by_grid(root_path, when, as_of)
        for grid_id, coverage in grids.items():
            figures = Figures(**sums.get(grid_id, {}))
            if coverage.weekly_target_minutes is not None:
                figures.target_minutes = target_for(coverage.weekly_target_minutes, when.days)
            figures.settle()
            if is_current:
                coverage.now = figures
            else:
                coverage.before = figures


def _uncovered(root_path: str, period: Period, as_of: datetime,
               grid_ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """Each grid's ``uncovered_shift_count`` and first ``UNCOVERED_SHIFTS_SHOWN`` shifts (of
    ``grid_ids`` only, when given), for the grids that have any."""
    result: dict[int, dict[str, Any]] = {}
    for shift_id, grid_id, starts_at, ends_at in _uncovered_shifts(root_path, period, as_of, grid_ids):
        uncovered = result.setdefault(grid_id, {"uncovered_shift_count": 0, "uncovered_shifts": []})
        uncovered["uncovered_shift_count"] += 1
        if len(uncovered["uncovered_shifts"]) < UNCOVERED_SHIFTS_SHOWN:
            uncovered["uncovered_shifts"].append(
                {
                    "shift_id": shift_id,
                    "starts_at": starts_at,
                    "ends_at": ends_at,
                    "starts_local": starts_at.astimezone(period.zone).replace(tzinfo=None),
                }
            )
    return result


def _fill_windows(views: dict[int, dict[str, Any]], root_path: str, period: Period, as_of: datetime) -> None:
    """The uncovered shifts and days without patrol of the grid views of one time zone."""
    uncovered = _uncovered(root_path, period, as_of)
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
    for grid_id, view in views.items():
        view.update(uncovered.get(grid_id, {"uncovered_shift_count": 0, "uncovered_shifts": []}))
        empty = [day for day in elapsed if day not in patrolled[grid_id]]
        view["days_without_patrol_count"] = len(empty)
        view["days_without_patrol"] = _day_ranges(empty)


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


def area_coverage_figures(caller: Caller, args: dict[str, Any], uncovered_for: int = 0) -> dict[str, Any]:
    """:func:`coverage_figures` of ``args["area_id"]``, refused as :func:`area_coverage` refuses."""
    area = referenced_area(args["area_id"], "area_id")
    caller.ensure_scope(area.path)
    return coverage_figures(area, resolve(args, zone(area.timezone)), uncovered_for=uncovered_for)


def _zoned(period: Period, timezone: str) -> Period:
    return dataclasses.replace(period, zone=ZoneInfo(timezone))


def coverage_figures(area: Area, period: Period, as_of: datetime | None = None,
                     uncovered_for: int = 0) -> dict[str, Any]:
    """The coverage report's figures without its lists: every grid under ``area`` ranked weakest
    first with its figures now and before, and the totals (read in the area's zone; each grid's
    bounds in its own). The ``uncovered_for`` weakest grids also get their
    ``uncovered_shift_count`` (a page showing a few grids need not count them for all)."""
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
        _fill_figures(grids, area.path, _zoned(period, timezone), _zoned(previous, timezone), as_of)

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
            }
        )
    for timezone, shown in _by_zone(views[:uncovered_for]).items():
        counts = _uncovered(area.path, _zoned(period, timezone), as_of, sorted(shown))
        for grid_id, view in shown.items():
            view["uncovered_shift_count"] = counts.get(grid_id, {}).get("uncovered_shift_count", 0)
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
    }


def _by_zone(views: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    result: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for view in views:
        result[view["timezone"]][view["grid_id"]] = view
    return result


def coverage_report(area: Area, period: Period, as_of: datetime | None = None) -> dict[str, Any]:
    """``CoverageReportSchema`` of every grid under ``area`` for ``period``: the figures
    (:func:`coverage_figures`) with each grid's uncovered shifts and days without patrol, and the
    grids below their quotas."""
    report = coverage_figures(area, period, as_of)
    for timezone, views in _by_zone(report["grids"]).items():
        _fill_windows(views, area.path, _zoned(period, timezone), report["as_of"])
    report["below_quota"] = _below_quota(area.path)
    return report
