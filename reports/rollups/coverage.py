"""Coverage figures of an area's grids read from the roll-ups, with the live section for what they
cannot answer (the split of :mod:`reports.rollups.read`).

The coverage report reads each time zone's grids in their own zone (a period's bounds are each
grid's own local midnights), so the grids asked for here are all of the period's zone and every
one of them can read its roll-up days: no "other zone" part is needed. Two parts, summed per grid:

1. **the roll-ups** for the settled days of the period (:func:`settled_until`: the day's end plus
   ``SHIFT_MAX_HOURS`` has passed by ``as_of``);
2. **the live section** (:func:`reports.coverage.figures.coverage_section`) over the days not
   settled yet.

Coverage's figures do not depend on ``as_of`` (a shift counts by its start, a patrol by its
presence), so the roll-ups could answer every day; the tail stays live to keep one rule for
every report reading roll-ups, and costs a query over a day or two.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from core.extensions import db
from grids.models import Area
from reports.coverage.figures import FIGURE_NAMES, coverage_section, grid_filter
from reports.periods import Period
from reports.rollups.models import SECTION_COLUMNS, GridDay
from reports.rollups.read import _part, settled_until

GridFigures = dict[int, dict[str, int]]


def coverage_by_grid(root_path: str, period: Period, as_of: datetime) -> GridFigures:
    """``FIGURE_NAMES`` of each grid of the period's zone under ``root_path`` that has any, as
    :func:`coverage_section` answers them by grid for the whole period."""
    settled = settled_until(period, as_of)
    rolled, tail = _part(period, period.first, settled), _part(period, settled + timedelta(days=1), period.last)
    result: GridFigures = {}
    parts = []
    if rolled is not None:
        parts.append(_from_rollups(root_path, rolled))
    if tail is not None:
        parts.append(coverage_section(root_path, tail))
    for part in parts:
        for grid_id, figures in part.items():
            into = result.setdefault(grid_id, dict.fromkeys(FIGURE_NAMES, 0))
            for name in FIGURE_NAMES:
                into[name] += figures[name]
    return result


def _from_rollups(root_path: str, period: Period) -> GridFigures:
    columns = [getattr(GridDay, name) for name in SECTION_COLUMNS["coverage"]]
    rows = db.session.execute(
        sa.select(GridDay.grid_id, *(sa.func.sum(column) for column in columns))
        .join(Area, Area.id == GridDay.grid_id)
        .where(*grid_filter(root_path, period.zone.key), GridDay.day >= period.first, GridDay.day <= period.last)
        .group_by(GridDay.grid_id)
    )
    result: GridFigures = {}
    for grid_id, *sums in rows:
        figures = dict(zip(FIGURE_NAMES, (int(value or 0) for value in sums), strict=True))
        # A row of zeros (a day whose shifts all went) is no figure: the live section has no row.
        if any(figures.values()):
            result[grid_id] = figures
    return result
