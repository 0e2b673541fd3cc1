"""Row sets the participation figures join: the volunteers who served, each volunteer's status at the
period's end, the places held on each shift. Each is a grouped derived table, joined once (a
correlated subquery per volunteer or per shift cost a lookup per row of the area), and limited to
the area's subtree (``root_path``), so that a community's report reads a community's rows, not the
city's."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from grids.models import Area
from grids.queries import in_subtree
from patrols.models import COUNTED_PRESENCE, Patrol
from reports.periods import Period
from reports.sql import in_period
from shifts.models import Assignment, AssignmentRole, AssignmentStatus, Shift, ShiftStatus
from volunteers.models import StatusChange, Volunteer

HELD_PLACE = (AssignmentStatus.ASSIGNED, AssignmentStatus.ABSENT)


def _homed_under(root_path: str, other_zone: str | None = None) -> sa.Select[tuple[int]]:
    home = orm.aliased(Area)
    stmt = sa.select(Volunteer.id).join(home, home.id == Volunteer.home_grid_id).where(in_subtree(home.path, root_path))
    return stmt if other_zone is None else stmt.where(home.timezone != other_zone)


def served_volunteers(period: Period, root_path: str, other_zone: str | None = None) -> sa.Subquery:
    """The volunteers at home under ``root_path`` (and, with ``other_zone``, in a grid whose time
    zone is not that one) who served a shift starting in the period
    (presence counted), wherever it was; once each. (An ``IN`` test of the set, too large to hash
    in ``work_mem``, was rescanned for every volunteer; a correlated EXISTS walked each one's whole
    patrol history.)"""
    return (
        served_patrols()
        .where(Patrol.volunteer_id.in_(_homed_under(root_path, other_zone)), in_period(Shift.starts_at, period))
        .with_only_columns(Patrol.volunteer_id)
        .group_by(Patrol.volunteer_id)
        .subquery()
    )


def served_patrols() -> sa.Select[tuple[int, datetime]]:
    """Patrols that count as a shift served (presence verified or approved, minutes settled, on a
    shift not cancelled): each volunteer and the start of the shift they served, for a caller to
    narrow down. The one definition of "served" that "active" (here) and the volunteers' served
    days (:mod:`reports.rollups.service`) share."""
    return (
        sa.select(Patrol.volunteer_id, Shift.starts_at)
        .join(Shift, Shift.id == Patrol.shift_id)
        .where(
            Patrol.presence_status.in_(COUNTED_PRESENCE),
            Patrol.served_minutes.is_not(None),
            Shift.status != ShiftStatus.CANCELLED,
        )
    )


def last_status(period: Period, root_path: str) -> sa.Subquery:
    """The last status change before the period's end (latest ``at``, then highest id) of each
    volunteer at home under ``root_path``, as grouped maxima (a ``row_number() = 1`` filter was
    taken for a few rows and joined in a nested loop over the city's changes)."""
    last_at = (
        sa.select(StatusChange.volunteer_id, sa.func.max(StatusChange.at).label("at"))
        .where(StatusChange.at < period.ends_at, StatusChange.volunteer_id.in_(_homed_under(root_path)))
        .group_by(StatusChange.volunteer_id)
        .subquery()
    )
    last_id = (
        sa.select(sa.func.max(StatusChange.id).label("id"))
        .join(last_at, sa.and_(last_at.c.volunteer_id == StatusChange.volunteer_id, last_at.c.at == StatusChange.at))
        .group_by(StatusChange.volunteer_id)
        .subquery()
    )
    change = orm.aliased(StatusChange)
    return sa.select(change.volunteer_id, change.to_status).join(last_id, last_id.c.id == change.id).subquery()


def held_places(period: Period, root_path: str) -> sa.Subquery:
    """Primary places held (assigned or absent) on each shift of the period under ``root_path``."""
    shift, grid = orm.aliased(Shift), orm.aliased(Area)
    return (
        sa.select(Assignment.shift_id, sa.func.count().label("filled"))
        .join(shift, shift.id == Assignment.shift_id)
        .join(grid, grid.id == shift.grid_id)
        .where(
            in_period(shift.starts_at, period),
            in_subtree(grid.path, root_path),
            Assignment.role == AssignmentRole.PRIMARY,
            Assignment.status.in_(HELD_PLACE),
        )
        .group_by(Assignment.shift_id)
        .subquery()
    )
