"""Auto-fill, reading the problem: an area's open shifts in a local date range and the volunteers
who may fill them, as ``shifts.autofill.model`` inputs. No HTTP here.

Shifts: scheduled, not started, starting in the range, with primary places open, in the area's
subtree. Candidates: active volunteers whose home grid lies in the caller's area and in the
sub-district of at least one of those shifts, with their weekly availability, the shifts they hold
around the range (for rest and the weekly cap) and the places they already have on these shifts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from core import i18n
from core.auth import Caller
from core.errors import ValidationFailed
from core.extensions import db
from grids.models import Area
from grids.paths import path_ids, path_of
from grids.service import in_subtree
from shifts.autofill.model import (
    Problem,
    ShiftInput,
    VolunteerInput,
    epoch_minutes,
    epoch_minutes_ceil,
    local_week,
)
from shifts.models import LIVE_STATUSES, Assignment, AssignmentRole, AssignmentStatus, Shift, ShiftStatus
from volunteers.models import AvailabilitySlot, Volunteer, VolunteerKind, VolunteerStatus

#: Most shifts one request may plan; beyond it, ask for a smaller area or range.
TOO_MANY_SHIFTS = i18n.N_("Too many shifts to plan at once; choose a smaller area or range.")
#: Assigned shifts this far around the range still count for rest and the weekly cap.
_MARGIN = timedelta(days=8)

i18n.register_messages(TOO_MANY_SHIFTS)


@dataclass(frozen=True)
class Loaded:
    """A problem read from the database, with what the response shows besides ids."""

    problem: Problem
    shift_rows: dict[int, Any]  # id -> row (starts_at, timezone, ...)
    volunteer_rows: dict[int, Any]  # id -> row (real_name, kind, ...)
    home: Any  # the alias of the volunteers' home grid that ``pool`` refers to
    pool: list[sa.ColumnElement[bool]]  # the candidate volunteers' conditions, for apply's re-read
    window: tuple[datetime, datetime]  # assigned shifts in it count for rest and cap


def _neighbourhood(path: str) -> tuple[int, int, str]:
    """(community id, sub-district id, sub-district path) of a grid's materialised path."""
    ids = path_ids(path)
    community = ids[-2] if len(ids) >= 2 else ids[-1]
    above = ids[: max(len(ids) - 2, 1)]
    return community, above[-1], path_of(above)


def load(caller: Caller, area: Area, first: date, last: date, cap_hours: int, now: datetime) -> Loaded:
    """The problem for ``area`` from local date ``first`` to ``last`` (in the area's time zone);
    more than AUTOFILL_MAX_SHIFTS open shifts is 422 on ``area_id``."""
    zone = ZoneInfo(area.timezone)
    starts = datetime.combine(first, time(), zone).astimezone(UTC)
    ends = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    window = (starts - _MARGIN, ends + _MARGIN)
    limit = current_app.config["AUTOFILL_MAX_SHIFTS"]
    grid = aliased(Area)
    rows = db.session.execute(
        sa.select(
            Shift.id, Shift.grid_id, grid.path, Shift.starts_at, Shift.ends_at, Shift.timezone,
            Shift.max_headcount, Shift.primary_count, Shift.required_kinds,
        )
        .join(grid, grid.id == Shift.grid_id)
        .where(
            Shift.status == ShiftStatus.SCHEDULED.value,
            Shift.starts_at >= starts,
            Shift.starts_at < ends,
            Shift.starts_at > now,
            Shift.primary_count < Shift.max_headcount,
            in_subtree(grid.path, area.path),
        )
        .order_by(Shift.starts_at, Shift.id)
        .limit(limit + 1)
    ).all()
    if len(rows) > limit:
        raise ValidationFailed(errors={"area_id": [TOO_MANY_SHIFTS]})
    kinds_held = _primary_kinds([row.id for row in rows if row.required_kinds])
    shifts, prefixes = [], set()
    for row in rows:
        community, subdistrict, prefix = _neighbourhood(row.path)
        prefixes.add(prefix)
        held = kinds_held.get(row.id, {})
        needs = tuple(
            sorted(
                (item["kind"], item["minimum"] - held.get(item["kind"], 0))
                for item in row.required_kinds or []
                if item["minimum"] > held.get(item["kind"], 0)
            )
        )
        shifts.append(
            ShiftInput(
                id=row.id, starts=epoch_minutes(row.starts_at), ends=epoch_minutes_ceil(row.ends_at),
                open_places=row.max_headcount - row.primary_count, grid=row.grid_id,
                community=community, subdistrict=subdistrict, needs=needs,
            )
        )
    home = aliased(Area)
    pool = [
        Volunteer.status == VolunteerStatus.ACTIVE.value,
        in_subtree(home.path, caller.area_path),
        sa.or_(sa.false(), *(in_subtree(home.path, prefix) for prefix in sorted(prefixes))),
    ]
    volunteers, volunteer_rows = volunteers_of(home, pool, {row.id for row in rows}, window)
    problem = Problem(
        shifts=tuple(shifts), volunteers=tuple(volunteers),
        min_rest=current_app.config["SHIFT_MIN_REST_MINUTES"], weekly_cap=cap_hours * 60,
    )
    return Loaded(problem, {row.id: row for row in rows}, volunteer_rows, home, pool, window)


def _primary_kinds(shift_ids: list[int]) -> dict[int, dict[str, int]]:
    """Assigned primaries per shift and kind, for the shifts that require kinds."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for start in range(0, len(shift_ids), 1000):
        rows = db.session.execute(
            sa.select(Assignment.shift_id, VolunteerKind.code, sa.func.count())
            .join(Volunteer, Volunteer.id == Assignment.volunteer_id)
            .join(VolunteerKind, VolunteerKind.id == Volunteer.kind_id)
            .where(
                Assignment.shift_id.in_(shift_ids[start : start + 1000]),
                Assignment.status == AssignmentStatus.ASSIGNED.value,
                Assignment.role == AssignmentRole.PRIMARY.value,
            )
            .group_by(Assignment.shift_id, VolunteerKind.code)
        )
        for shift_id, code, count in rows:
            found[shift_id][code] = count
    return found


def volunteers_of(
    home: Any, pool: list[sa.ColumnElement[bool]], shift_ids: set[int], window: tuple[datetime, datetime]
) -> tuple[list[VolunteerInput], dict[int, Any]]:
    """The pool's volunteers with availability, assigned shifts around the range and live places."""
    rows = db.session.execute(
        sa.select(
            Volunteer.id, Volunteer.real_name, VolunteerKind.code.label("kind"), Volunteer.home_grid_id,
            home.path, home.timezone,
        )
        .join(home, home.id == Volunteer.home_grid_id)
        .join(VolunteerKind, VolunteerKind.id == Volunteer.kind_id)
        .where(*pool)
        .order_by(Volunteer.id)
    ).all()
    in_pool = sa.select(Volunteer.id).join(home, home.id == Volunteer.home_grid_id).where(*pool)
    slots: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for volunteer_id, weekday, start, end in db.session.execute(
        sa.select(
            AvailabilitySlot.volunteer_id, AvailabilitySlot.weekday, AvailabilitySlot.start_time,
            AvailabilitySlot.end_time,
        ).where(AvailabilitySlot.volunteer_id.in_(in_pool))
    ):
        slots[volunteer_id].append((weekday, start.hour * 60 + start.minute, end.hour * 60 + end.minute))
    held = db.session.execute(
        sa.select(Assignment.volunteer_id, Assignment.shift_id, Assignment.status, Shift.starts_at, Shift.ends_at)
        .join(Shift, Shift.id == Assignment.shift_id)
        .where(
            Assignment.volunteer_id.in_(in_pool),
            Assignment.status.in_([status.value for status in LIVE_STATUSES]),
            Shift.status == ShiftStatus.SCHEDULED.value,
            Shift.ends_at > window[0],
            Shift.starts_at < window[1],
        )
    ).all()
    busy: dict[int, list[tuple[int, int]]] = defaultdict(list)
    live: dict[int, set[int]] = defaultdict(set)
    for row in held:
        if row.shift_id in shift_ids:
            live[row.volunteer_id].add(row.shift_id)
        if row.status == AssignmentStatus.ASSIGNED.value:
            busy[row.volunteer_id].append((epoch_minutes(row.starts_at), epoch_minutes_ceil(row.ends_at)))
    volunteers = []
    for row in rows:
        community, subdistrict, _ = _neighbourhood(row.path)
        weeks: dict[int, int] = defaultdict(int)
        for start, end in busy.get(row.id, []):
            weeks[local_week(start, row.timezone)] += end - start
        volunteers.append(
            VolunteerInput(
                id=row.id, kind=row.kind, grid=row.home_grid_id, community=community,
                subdistrict=subdistrict, timezone=row.timezone,
                availability=tuple(sorted(slots.get(row.id, []))),
                busy=tuple(sorted(busy.get(row.id, []))), week_minutes=dict(weeks),
                live_shifts=frozenset(live.get(row.id, set())),
            )
        )
    return volunteers, {row.id: row for row in rows}
