"""A roll-up's figures computed afresh from the lower tables, through the live report sections
(one definition of every figure): for one grid's days, or for the days of many grids of one time
zone at once (what :func:`reports.rollups.service.recompute` writes, and what the check compares)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.extensions import db
from core.timeutil import zone
from grids.models import Area
from grids.paths import common_ancestor
from reports.coverage.figures import FIGURE_NAMES, coverage_section
from reports.participation.figures import (
    LEVELS,
    Grouping,
    points_section,
    presence_section,
    reports_section,
    shifts_section,
)
from reports.periods import Period, PeriodKind, SeriesStep
from reports.rollups.models import SECTION_COLUMNS
from reports.sql import split_grid_series_key

#: Presence of a roll-up counts every shift of the day, ended or not (a report reads a day from
#: the roll-ups only once all of its shifts have ended).
EVERY_SHIFT = datetime(2200, 1, 1, tzinfo=UTC)
#: At most this many days in one series query (its CASE is a binary search over their bounds).
_SPAN_DAYS = 400

#: Grids whose series are computed together: at most this many, and this many grid days (grids ×
#: the days of the series) in one batch.
GRID_BATCH = 500
BATCH_GRID_DAYS = 40_000

GridDayKey = tuple[int, date]


def grids_per_batch(days: int) -> int:
    """How many grids' series of ``days`` days go in one batch."""
    return max(1, min(GRID_BATCH, BATCH_GRID_DAYS // max(days, 1)))


def grid_day_figures(grid: Area, first: date, last: date, sections: Iterable[str]) -> dict[date, dict[str, Any]]:
    """A grid's roll-up figures (``SECTION_COLUMNS`` names, plus ``badges``) for every day from
    ``first`` to ``last`` (its own zone) that has any, from the live report queries."""
    return {day: figures for (_, day), figures in grids_day_figures([grid], first, last, sections).items()}


def grids_day_figures(
    grids: Sequence[Area], first: date, last: date, sections: Iterable[str]
) -> dict[GridDayKey, dict[str, Any]]:
    """:func:`grid_day_figures` of several grids of one time zone at once, by (grid id, day)."""
    wanted = set(sections)
    ids = {grid.path: grid.id for grid in grids}
    paths = tuple(ids)
    root = _common_ancestor(grids)
    result: dict[GridDayKey, dict[str, Any]] = defaultdict(dict)

    def keyed(rows: dict[str, Any], buckets: list[Any]) -> Iterator[tuple[GridDayKey, Any]]:
        for key, row in rows.items():
            path, index = split_grid_series_key(key)
            yield (ids[path], buckets[index].first), row

    start = first
    while start <= last:
        end = min(last, start + timedelta(days=_SPAN_DAYS - 1))
        period = Period(PeriodKind.RANGE, start, end, zone(grids[0].timezone))
        buckets = period.buckets(SeriesStep.DAY)
        by = Grouping(root, "grid_series", buckets, grids=paths)
        if "shifts" in wanted:
            for key, row in keyed(shifts_section(period, by), buckets):
                result[key].update({name: row[name] for name in SECTION_COLUMNS["shifts"]})
        if wanted & {"presence", "manual"}:
            names = SECTION_COLUMNS["presence"] + SECTION_COLUMNS["manual"]
            for key, row in keyed(presence_section(period, by, EVERY_SHIFT), buckets):
                result[key].update({name: row[name] for name in names})
        if "reports" in wanted:
            for key, row in keyed(reports_section(period, by, with_medians=False), buckets):
                figures = {level: row["by_level"][level] for level in LEVELS}
                figures.update(filed=row["filed"], taken_up=row["taken_up"], resolved=row["resolved"])
                result[key].update(figures)
        if "points" in wanted:
            for key, row in keyed(points_section(period, by), buckets):
                figures = {name: row[name] for name in SECTION_COLUMNS["points"]}
                result[key].update(figures, badges=row["badges"])
        if "coverage" in wanted:
            covered = coverage_section(root.path if root is not None else "/", period, buckets, grids=paths)
            for key, row in keyed(covered, buckets):
                result[key].update(zip(SECTION_COLUMNS["coverage"], (row[n] for n in FIGURE_NAMES), strict=True))
        start = end + timedelta(days=1)
    return result


def _common_ancestor(grids: Sequence[Area]) -> Area | None:
    """The lowest area holding every one of ``grids`` (the grid itself when there is one): the
    subtree the sections' inner queries are kept to."""
    if len(grids) == 1:
        return grids[0]
    path = common_ancestor([grid.path for grid in grids])
    return None if path is None else db.session.scalar(sa.select(Area).where(Area.path == path))


GridDays = tuple[Area, dict[date, set[str]]]


def grid_batches(items: list[GridDays]) -> Iterator[list[GridDays]]:
    """The grids to recompute together: one time zone (a series' days are its local days), at most
    ``GRID_BATCH`` of them, and at most ``BATCH_GRID_DAYS`` grid days in their series (the batch's
    grids × the days from its first to its last: one grid's far-off day widens every grid's
    series). A transaction that touched hundreds of grids (an auto-fill applied, a volunteer's
    history recounted) then costs a few queries per section, not a few per grid."""
    by_zone: dict[str, list[GridDays]] = defaultdict(list)
    for grid, days in items:
        by_zone[grid.timezone].append((grid, days))
    for group in by_zone.values():
        group.sort(key=lambda item: (min(item[1]), item[0].id))
        batch: list[GridDays] = []
        first = last = date.min
        for grid, days in group:
            if batch:
                span = (max(last, max(days)) - first).days + 1
                if len(batch) >= GRID_BATCH or (len(batch) + 1) * span > BATCH_GRID_DAYS:
                    yield batch
                    batch = []
            if not batch:
                first, last = min(days), max(days)
            batch.append((grid, days))
            last = max(last, max(days))
        if batch:
            yield batch
