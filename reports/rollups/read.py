"""Participation flows of an area read from the roll-ups, with the live queries for what they
cannot answer.

An area's figures by child or by series bucket come from three parts, summed:

1. **the roll-ups** for the *settled* days of the period (every shift starting on them has ended
   by ``as_of``: the day's end plus ``SHIFT_MAX_HOURS``) and the grids whose zone is the period's
   (a roll-up day is a day of its grid's own zone);
2. **the live queries** over the same settled days for the grids of another zone, when the area
   has any;
3. **the live queries** over the days not settled yet (today and yesterday, typically).

Counts and minutes add up across the parts; rates are computed from the sums and medians come
from their own live query over the whole period, exactly as the live report does. "Active"
volunteers come from the served days of each volunteer's month (bits of the period's days) for
volunteers at home in the period's zone, live for the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import orm

from core.extensions import db
from grids.models import Area, AreaLevel
from grids.queries import in_subtree
from reports.participation.figures import (
    LEVELS,
    _presence_figures,
    _shift_figures,
    date_bucket,
    points_section,
    presence_section,
    reports_section,
    shifts_section,
    star_levels,
)
from reports.participation.grouping import Grouping
from reports.participation.medians import NO_MEDIANS, WHOLE, report_medians
from reports.participation.subsets import served_volunteers
from reports.periods import Period, PeriodKind
from reports.rollups.models import SECTION_COLUMNS, GridDay, GridDayBadge, VolunteerMonth
from reports.sql import child_in_path
from volunteers.models import Volunteer

Flows = dict[str, dict[Any, dict[str, Any]]]
_REPORT_COUNTS = ("filed", "taken_up", "resolved")


def settled_until(period: Period, as_of: datetime) -> date:
    """The last local date of the period's zone whose shifts have all ended by ``as_of``."""
    longest = timedelta(hours=current_app.config["SHIFT_MAX_HOURS"])
    return (as_of - longest).astimezone(period.zone).date() - timedelta(days=1)


def _part(period: Period, first: date, last: date) -> Period | None:
    first, last = max(first, period.first), min(last, period.last)
    return Period(PeriodKind.RANGE, first, last, period.zone) if first <= last else None


def flows(
    period: Period, by: Grouping, as_of: datetime, *, with_medians: bool = True
) -> tuple[Flows, dict[str, float | None] | None]:
    """The shifts, presence, reports and points sections of ``by`` (an area's children or series)
    in the live sections' shape, keyed as they key them; and for children, the medians of the
    whole area's reports (from the same pass as the children's). ``with_medians=False``: the reports
    without their medians of time to take up and to resolve (the costly part: they are not sums)."""
    assert by.area is not None and by.volunteer_id is None
    settled = settled_until(period, as_of)
    rolled, tail = _part(period, period.first, settled), _part(period, settled + timedelta(days=1), period.last)
    zone_name = period.zone.key
    parts: list[Flows] = []
    if rolled is not None:
        parts.append(_from_rollups(rolled, by, zone_name))
        if _has_other_zone(by.area, zone_name):
            parts.append(_live(rolled, Grouping(by.area, by.mode, by.buckets, other_zone=zone_name), as_of))
    if tail is not None:
        parts.append(_live(tail, by, as_of))
    merged = _merge(parts)
    if not with_medians:
        return merged, None
    medians = report_medians(period, by, with_whole=by.mode == "children")
    for key, figures in merged["reports"].items():
        figures.update(medians.get(key, NO_MEDIANS))
    return merged, (medians.get(WHOLE, NO_MEDIANS) if by.mode == "children" else None)


def _has_other_zone(area: Area, zone_name: str) -> bool:
    return db.session.scalar(
        sa.select(Area.id)
        .where(Area.level == AreaLevel.GRID, Area.timezone != zone_name, in_subtree(Area.path, area.path))
        .limit(1)
    ) is not None


def _live(period: Period, by: Grouping, as_of: datetime) -> Flows:
    return {
        "shifts": shifts_section(period, by),
        "presence": presence_section(period, by, as_of),
        "reports": reports_section(period, by, with_medians=False),
        "points": points_section(period, by),
    }


def _key(by: Grouping, path: Any, day: Any) -> sa.ColumnElement[Any]:
    assert by.area is not None
    if by.mode == "children":
        return child_in_path(path, sa.literal(len(by.area.path), sa.Integer()))
    if by.mode == "series":
        return date_bucket(day, by.buckets)
    return sa.literal(0)


def _from_rollups(period: Period, by: Grouping, zone_name: str) -> Flows:
    assert by.area is not None
    grid = orm.aliased(Area)
    # Participation's own sections only: the coverage columns are the coverage report's to read.
    names = [name for section, columns in SECTION_COLUMNS.items() if section != "coverage" for name in columns]
    key = _key(by, grid.path, GridDay.day)
    where = (
        GridDay.day >= period.first,
        GridDay.day <= period.last,
        in_subtree(grid.path, by.area.path),
        grid.timezone == zone_name,
    )
    rows = db.session.execute(
        sa.select(key.label("key"), *(sa.func.sum(getattr(GridDay, name)).label(name) for name in names))
        .select_from(GridDay)
        .join(grid, grid.id == GridDay.grid_id)
        .where(*where)
        .group_by(key)
    ).mappings()
    badge_key = _key(by, grid.path, GridDayBadge.day)
    badges: dict[Any, dict[str, int]] = defaultdict(dict)
    for badge_row in db.session.execute(
        sa.select(badge_key.label("key"), GridDayBadge.badge, sa.func.sum(GridDayBadge.earned).label("n"))
        .select_from(GridDayBadge)
        .join(grid, grid.id == GridDayBadge.grid_id)
        .where(
            GridDayBadge.day >= period.first,
            GridDayBadge.day <= period.last,
            in_subtree(grid.path, by.area.path),
            grid.timezone == zone_name,
        )
        .group_by(badge_key, GridDayBadge.badge)
    ):
        badges[badge_row.key][badge_row.badge] = int(badge_row.n)
    result: Flows = {"shifts": {}, "presence": {}, "reports": {}, "points": {}}
    for row in rows:
        sums = {name: int(row[name] or 0) for name in names}
        k = row["key"]
        result["shifts"][k] = _shift_figures(sums)
        result["presence"][k] = _presence_figures(sums, sums["manual_minutes"])
        result["reports"][k] = {
            **{name: sums[name] for name in _REPORT_COUNTS},
            "by_level": {level: sums[level] for level in LEVELS},
        }
        result["points"][k] = _points(sums, badges.pop(k, {}))
    for k, earned in badges.items():  # badges on a day with no other figure
        result["points"][k] = _points({}, earned)
    return result


def _points(sums: dict[str, int], badges: dict[str, int]) -> dict[str, Any]:
    return {
        **{name: sums.get(name, 0) for name in SECTION_COLUMNS["points"]},
        "badges": badges,
        "star_levels": star_levels(badges),
    }


def _merge(parts: Iterable[Flows]) -> Flows:
    shifts: dict[Any, dict[str, int]] = defaultdict(dict)
    presence: dict[Any, dict[str, int]] = defaultdict(dict)
    reports: dict[Any, dict[str, Any]] = {}
    points: dict[Any, dict[str, Any]] = {}
    for part in parts:
        for k, figures in part["shifts"].items():
            _add(shifts[k], figures, SECTION_COLUMNS["shifts"])
        for k, figures in part["presence"].items():
            _add(presence[k], figures, SECTION_COLUMNS["presence"] + SECTION_COLUMNS["manual"])
        for k, figures in part["reports"].items():
            into = reports.setdefault(k, {**dict.fromkeys(_REPORT_COUNTS, 0), "by_level": dict.fromkeys(LEVELS, 0)})
            _add(into, figures, _REPORT_COUNTS)
            _add(into["by_level"], figures["by_level"], LEVELS)
        for k, figures in part["points"].items():
            into = points.setdefault(k, {**dict.fromkeys(SECTION_COLUMNS["points"], 0), "badges": {}})
            _add(into, figures, SECTION_COLUMNS["points"])
            _add(into["badges"], figures["badges"], figures["badges"])
    for figures in points.values():
        figures["star_levels"] = star_levels(figures["badges"])
    return {
        "shifts": {k: _shift_figures(v) for k, v in shifts.items()},
        "presence": {k: _presence_figures(v, v.get("manual_minutes", 0)) for k, v in presence.items()},
        "reports": reports,
        "points": points,
    }


def _add(into: dict[str, Any], other: dict[str, Any], names: Iterable[str]) -> None:
    for name in names:
        into[name] = into.get(name, 0) + other.get(name, 0)


# --------------------------------------------------------------------------------------- active


def active_volunteers(period: Period, area: Area) -> sa.Subquery:
    """The volunteers at home under ``area`` who served a shift starting in the period (a
    ``volunteer_id`` column, once each): from their months' served days when at home in the
    period's zone, live otherwise."""
    zone_name = period.zone.key
    home = orm.aliased(Area)
    months = period_months(period.first, period.last)
    mask = sa.case(
        *((VolunteerMonth.month == month, bits) for month, bits in months.items()),
        else_=0,
    )
    from_rollups = (
        sa.select(VolunteerMonth.volunteer_id)
        .join(Volunteer, Volunteer.id == VolunteerMonth.volunteer_id)
        .join(home, home.id == Volunteer.home_grid_id)
        .where(
            VolunteerMonth.month.in_(list(months)),
            VolunteerMonth.served_days.op("&")(mask) != 0,
            in_subtree(home.path, area.path),
            home.timezone == zone_name,
        )
        .group_by(VolunteerMonth.volunteer_id)
    )
    if not _has_other_zone(area, zone_name):
        return from_rollups.subquery()
    live = served_volunteers(period, area.path, other_zone=zone_name)
    return sa.union(from_rollups, sa.select(live.c.volunteer_id)).subquery()


def period_months(first: date, last: date) -> dict[date, int]:
    """Each month from ``first`` to ``last`` → the bits of its days inside them."""
    result: dict[date, int] = {}
    month = first.replace(day=1)
    while month <= last:
        next_month = (month + timedelta(days=32)).replace(day=1)
        low = first.day if month == first.replace(day=1) else 1
        high = last.day if next_month > last else (next_month - timedelta(days=1)).day
        result[month] = sum(1 << (day - 1) for day in range(low, high + 1))
        month = next_month
    return result
