"""My shifts (``GET /me/shifts``): the phone's schedule, its hottest read after ``/me`` (issue 19).

One statement reads the page: each place's own columns, its shift's, the grid's name and community,
the volunteer's name and kind, and the shift's waitlist count (a correlated count over
``ix_shift_assignments_shift_status``), as plain rows, no entities. What few pages need costs a
statement only when they need it: waitlist positions when a place is waitlisted, the kinds assigned
when a shift requires kinds (``shifts.service``). The statements are built once per shape
(upcoming or past, statuses asked or not, from a cursor or not) with bound parameters, so a request
neither builds nor hashes a statement.

Read by the places' copies of their shifts' times, never by a join, so a year of history is not
read to find the week ahead: upcoming is the range "ends after now" of ``(volunteer_id,
shift_ends_at)``, its few rows sorted; the past runs backwards along ``(volunteer_id,
shift_starts_at, id)`` from now, which bounds it (a shift ends after it starts, so one ended by now
started before now) and stops at the page's end (``tests/shifts/test_schedule_plans.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

import sqlalchemy as sa

from core.db import UTCDateTime, utcnow
from core.extensions import db
from core.pagination import decode_cursor, encode_cursor
from grids.models import Area
from shifts.models import LIVE_STATUSES, Assignment, AssignmentStatus, Shift
from shifts.schedules.service import cursor_value
from shifts.service import kinds_assigned_to, place_values_view, shift_values_view, waitlist_positions
from volunteers.models import Volunteer, VolunteerKind


class _Place(NamedTuple):
    """A place's own columns as ``place_values_view`` reads them."""

    id: int
    shift_id: int
    volunteer_id: int
    status: str
    role: str
    source: str
    late_withdrawal: bool
    created_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class _Shift(NamedTuple):
    """The shift's columns as ``shift_values_view`` reads them."""

    id: int
    grid_id: int
    series_id: int | None
    occurrence_local: datetime | None
    detached: bool
    status: str
    timezone: str
    starts_at: datetime
    ends_at: datetime
    title: str
    instructions: str | None
    meeting_point: str | None
    min_headcount: int
    max_headcount: int
    backup_slots: int
    primary_count: int
    backup_count: int
    required_kinds: list[dict[str, Any]]
    cancelled_at: datetime | None
    cancel_reason: str | None


_places, _shifts, _areas = Assignment.__table__, Shift.__table__, Area.__table__
_volunteers, _kinds = Volunteer.__table__, VolunteerKind.__table__
_waiting = _places.alias("waiting")
_PLACE_END = len(_Place._fields)
_SHIFT_END = _PLACE_END + len(_Shift._fields)

_COLUMNS = (
    *(_places.c[name] for name in _Place._fields),
    *(_shifts.c[name] for name in _Shift._fields),
    # after the two groups: the sort key's start, the names, the grid's, the waitlist's count
    _places.c.shift_starts_at,
    _volunteers.c.real_name,
    _kinds.c.code,
    _areas.c.name,
    _areas.c.parent_id,
    sa.select(sa.func.count())
    .where(_waiting.c.shift_id == _places.c.shift_id, _waiting.c.status == AssignmentStatus.WAITLISTED)
    .scalar_subquery(),
)


def _status_in(statuses: Sequence[str]) -> sa.ColumnElement[bool]:
    """``status IN ('…', …)`` written into the statement: a list given as values is an expanding
    parameter, which SQLAlchemy re-renders into the cached statement at every execution."""
    return _places.c.status.in_([sa.literal_column(f"'{AssignmentStatus(status).value}'") for status in statuses])


def _past_default_statuses() -> sa.ColumnElement[bool]:
    """What a volunteer's record shows: shifts they held or missed, and late withdrawals."""
    return sa.or_(
        _status_in([AssignmentStatus.ASSIGNED, AssignmentStatus.ABSENT]),
        sa.and_(_places.c.status == AssignmentStatus.WITHDRAWN, _places.c.late_withdrawal.is_(True)),
    )


@cache
def _page_statement(upcoming: bool, by_status: bool, from_cursor: bool) -> sa.Select:
    """The page's statement of one shape; bind ``volunteer_id``, ``now``, ``limit`` (the page and
    one more), and ``statuses`` or ``after_start`` and ``after_id`` when the shape has them."""
    now = sa.bindparam("now", type_=UTCDateTime())
    stmt = (
        sa.select(*_COLUMNS)
        .select_from(_places)
        .join(_shifts, _shifts.c.id == _places.c.shift_id)
        .join(_areas, _areas.c.id == _shifts.c.grid_id)
        .join(_volunteers, _volunteers.c.id == _places.c.volunteer_id)
        .join(_kinds, _kinds.c.id == _volunteers.c.kind_id)
        .where(_places.c.volunteer_id == sa.bindparam("volunteer_id"))
    )
    if upcoming:
        stmt = stmt.where(_places.c.shift_ends_at > now)
    else:
        stmt = stmt.where(_places.c.shift_ends_at <= now, _places.c.shift_starts_at < now)
    if by_status:
        stmt = stmt.where(_places.c.status.in_(sa.bindparam("statuses", expanding=True)))
    elif upcoming:
        stmt = stmt.where(_status_in(LIVE_STATUSES))
    else:
        stmt = stmt.where(_past_default_statuses())
    key = (_places.c.shift_starts_at, _places.c.id)
    if from_cursor:
        after = sa.tuple_(
            sa.bindparam("after_start", type_=UTCDateTime()), sa.bindparam("after_id", type_=sa.BigInteger())
        )
        stmt = stmt.where(sa.tuple_(*key) > after if upcoming else sa.tuple_(*key) < after)
    order = [column.asc() if upcoming else column.desc() for column in key]
    return stmt.order_by(*order).limit(sa.bindparam("limit", type_=sa.Integer()))


def my_shifts(volunteer_id: int, args: dict[str, Any]) -> dict[str, Any]:
    """The volunteer's places with their shifts: upcoming (not ended, soonest first) or past
    (latest first); a page of ``AssignmentSchema`` dicts with its ``next_cursor``."""
    upcoming = args["when"] == "upcoming"
    limit = args["limit"]
    params: dict[str, Any] = {"volunteer_id": volunteer_id, "now": utcnow(), "limit": limit + 1}
    if args.get("status"):
        params["statuses"] = list(args["status"])
    cursor = args.get("cursor")
    if cursor:
        start, place_id = decode_cursor(cursor, 2)
        params["after_start"], params["after_id"] = cursor_value(start, datetime), cursor_value(place_id, int)
    statement = _page_statement(upcoming, "statuses" in params, bool(cursor))
    rows = db.session.connection().execute(statement, params).tuples().all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor([last[_SHIFT_END].isoformat(), last[0]])
    return {"items": _views(page), "next_cursor": next_cursor}


def _views(rows: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    places = [_Place._make(row[:_PLACE_END]) for row in rows]
    shifts = [_Shift._make(row[_PLACE_END:_SHIFT_END]) for row in rows]
    positions = waitlist_positions([p.shift_id for p in places if p.status == AssignmentStatus.WAITLISTED])
    kinds_assigned = kinds_assigned_to(list({shift.id for shift in shifts if shift.required_kinds}))
    views = []
    for row, place, shift in zip(rows, places, shifts, strict=True):
        _, volunteer_name, volunteer_kind, grid_name, community_id, waitlist_count = row[_SHIFT_END:]
        view = place_values_view(place, volunteer_name, volunteer_kind, positions.get(place.id))
        view["shift"] = shift_values_view(shift, grid_name, community_id, kinds_assigned[shift.id], waitlist_count)
        views.append(view)
    return views
