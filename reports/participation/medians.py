"""The incident reports of a participation section's rows, and their median minutes to take up
and to resolve (medians do not add up: every report of the period is ranked)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from core.extensions import db
from grids.models import Area
from grids.queries import in_subtree
from patrols.reports.models import Report, ReportAction, ReportEvent
from reports.participation.grouping import Grouping
from reports.periods import Period
from reports.sql import in_period, seconds_between


def reports_query(period: Period, by: Grouping) -> tuple[sa.Select[Any], Any, Any]:
    """The period's reports limited to ``by``, their group key, and when each was first taken up."""
    # First handling step of the period's reports only (not of every report ever filed).
    of_period, its_grid = orm.aliased(Report), orm.aliased(Area)
    taken_up_at = (
        sa.select(ReportEvent.report_id, sa.func.min(ReportEvent.created_at).label("at"))
        .join(of_period, of_period.id == ReportEvent.report_id)
        .join(its_grid, its_grid.id == of_period.grid_id)
        .where(ReportEvent.action != ReportAction.FILED, in_period(of_period.received_at, period))
        .where(in_subtree(its_grid.path, by.area.path if by.area is not None else "/"))
        .group_by(ReportEvent.report_id)
        .subquery()
    )
    grid = orm.aliased(Area)
    base = (
        sa.select(Report.id)
        .join(grid, grid.id == Report.grid_id)
        .outerjoin(taken_up_at, taken_up_at.c.report_id == Report.id)
        .where(in_period(Report.received_at, period))
    )
    stmt, key = by.apply(base, grid.path, Report.volunteer_id, Report.received_at)
    return stmt, key, taken_up_at.c.at


NO_MEDIANS: dict[str, float | None] = {"median_minutes_to_take_up": None, "median_minutes_to_resolve": None}


#: The key under which :func:`report_medians` gives the medians of all of ``by``'s rows, beside
#: those of its groups (no child id, volunteer id or bucket index is negative).
WHOLE = -1


def report_medians(period: Period, by: Grouping, with_whole: bool = False) -> dict[Any, dict[str, float | None]]:
    """Only the medians of :func:`reports_section`; with ``with_whole`` also those of all of ``by``'s
    rows, under :data:`WHOLE` (from the same pass over the rows)."""
    return medians_of(*reports_query(period, by), with_whole=with_whole)


def medians_of(
    stmt: sa.Select[Any], key: Any, taken_up_at: Any, with_whole: bool = False
) -> dict[Any, dict[str, float | None]]:
    """Both medians per group: of each report's whole seconds to take up and to resolve, the middle
    one, or the mean of the middle two, of those known; None for a group with none known.

    Counted, not ranked: the reports are grouped by (group, seconds) first, and the middle
    positions are found in the running counts of those distinct values. Ranking every report
    (``row_number()`` over a window) sorted a city's year of reports twice (seconds on this
    benchmark); the distinct durations are far fewer. Integer seconds sort and compare exactly on
    both databases; minutes (rounded to a tenth) are worked out here, in Python, alike for both.
    """
    seconds = stmt.with_only_columns(
        key.label("key"),
        seconds_between(Report.received_at, taken_up_at).label("take_up"),
        seconds_between(Report.received_at, Report.resolved_at).label("resolve"),
    ).cte("report_seconds")
    fields = {"take_up": "median_minutes_to_take_up", "resolve": "median_minutes_to_resolve"}
    result: dict[Any, dict[str, float | None]] = {}
    for which, group, median in _middles(seconds, tuple(fields), with_whole):
        result.setdefault(group, dict(NO_MEDIANS))[fields[which]] = (
            None if median is None else round(float(median) / 60, 1)
        )
    return result


def _middles(seconds: sa.CTE, names: tuple[str, ...], with_whole: bool) -> list[tuple[str, Any, Any]]:
    """(column name, group, median of the column) per column of ``names`` and group that has reports
    (the median None when none of them has the value), and for :data:`WHOLE` with ``with_whole``;
    one statement, so the rows are computed once."""
    counted = []
    for name in names:
        value = seconds.c[name]
        tag = sa.literal(name, sa.String()).label("which")
        counted.append(sa.select(tag, seconds.c.key, value.label("value"), sa.func.count().label("n")).group_by(seconds.c.key, value))
        if with_whole:
            whole = sa.literal(WHOLE, sa.Integer()).label("key")
            counted.append(sa.select(tag, whole, value.label("value"), sa.func.count().label("n")).group_by(value))
    rows = sa.union_all(*counted).subquery()
    groups = (rows.c.which, rows.c.key)
    known = sa.case((rows.c.value.is_not(None), rows.c.n), else_=0)
    running = sa.select(
        *groups,
        rows.c.value,
        rows.c.n,
        # Positions of this value's first and last report among the group's known ones
        # (nulls sort last, after every known value, on both databases). PostgreSQL sums counts
        # as numeric, where "/ 2" would keep the half: cast back.
        sa.cast(
            sa.func.sum(rows.c.n).over(partition_by=groups, order_by=rows.c.value.asc().nulls_last()), sa.BigInteger
        ).label("upto"),
        sa.cast(sa.func.sum(known).over(partition_by=groups), sa.BigInteger).label("size"),
    ).subquery()
    first, second = (running.c.size + 1) // 2, (running.c.size + 2) // 2

    def holds(position: Any) -> sa.ColumnElement[bool]:
        return sa.and_(position > running.c.upto - running.c.n, position <= running.c.upto)

    middle = sa.func.avg(
        sa.case((sa.and_(running.c.value.is_not(None), sa.or_(holds(first), holds(second))), running.c.value))
    )
    stmt = sa.select(running.c.which, running.c.key, middle).group_by(running.c.which, running.c.key)
    return [(row[0], row[1], row[2]) for row in db.session.execute(stmt)]
