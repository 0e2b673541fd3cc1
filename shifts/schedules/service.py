"""Schedules: open shifts near a volunteer, an area's schedule and a shift's roster. No HTTP here,
and no writes. Coverage gaps live in ``shifts.schedules.coverage``, my shifts in ``shifts.schedules.mine``.

Every list is keyset-paginated. Some orders run over columns of a joined table or over a computed
distance, which ``core.pagination.paginate`` (single-entity rows) cannot read back from its items, so
:func:`keyset_page` takes the sort values from a function of the item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core import geo, i18n
from core.auth import Caller, Role
from core.db import UTCDateTime, utcnow
from core.errors import OutOfScope, ValidationFailed
from core.extensions import db
from core.pagination import SortColumn, decode_cursor, encode_cursor, paginate
from grids.models import Area, AreaLevel
from grids.paths import city_path
from grids.service import in_subtree
from shifts.models import LIVE_STATUSES, Assignment, Shift, ShiftStatus
from shifts.schedules.schemas import (
    DEFAULT_RADIUS_KM,
    MAX_RANGE_DAYS,
    NEAR_COMMUNITY,
    NEAR_HOME_GRID,
    RANGE_TOO_LONG,
    TO_BEFORE_FROM,
)
from shifts.service import assignment_views, select_assignments, select_shifts, shift_views
from volunteers.models import Volunteer

DEFAULT_SCHEDULE_DAYS = 7

i18n.register_messages(i18n.N_("The area is outside your city."))


# ------------------------------------------------------------------------------- pagination


@dataclass(frozen=True)
class SortKey:
    """One column of a keyset order: the SQL expression and how to read its value from an item."""

    column: SortColumn
    value: Callable[[Any], Any]
    kind: type  # datetime or int: how a cursor value is parsed back


def cursor_value(raw: Any, kind: type) -> Any:
    """A value read back from a cursor, as ``kind``; anything odd is the client's error."""
    try:
        if kind is datetime:
            parsed = datetime.fromisoformat(raw)
            if parsed.tzinfo is None:
                raise ValueError("naive")
            return parsed.astimezone(UTC)  # a year-9999 instant east of UTC overflows here, not later
        if isinstance(raw, bool) or not isinstance(raw, int) or abs(raw) >= 2**63:
            raise ValueError("not an integer")
        return raw
    except (TypeError, ValueError, OverflowError):
        raise ValidationFailed(errors={"cursor": ["Invalid cursor."]}) from None


def _bound(key: SortKey, raw: Any) -> sa.ColumnElement[Any]:
    value = cursor_value(raw, key.kind)
    return sa.literal(value, UTCDateTime() if key.kind is datetime else sa.BigInteger())


def keyset_page(
    stmt: sa.Select,
    keys: Sequence[SortKey],
    *,
    limit: int,
    cursor: str | None,
    descending: bool = False,
) -> dict[str, Any]:
    """Run ``stmt`` (one entity per row) in the order of ``keys`` (the last unique) from ``cursor``."""
    if cursor:
        values = decode_cursor(cursor, len(keys))
        columns = sa.tuple_(*[key.column for key in keys])
        bound = sa.tuple_(*[_bound(key, raw) for key, raw in zip(keys, values, strict=True)])
        stmt = stmt.where(columns < bound if descending else columns > bound)
    ordering = [key.column.desc() if descending else key.column.asc() for key in keys]
    rows = db.session.scalars(stmt.order_by(*ordering).limit(limit + 1)).unique().all()
    items = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor([_encode(key.value(items[-1])) for key in keys])
    return {"items": items, "next_cursor": next_cursor}


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# ------------------------------------------------------------------------------- local dates


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant a local calendar day begins, in UTC."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _starts_in_dates(stmt: sa.Select, start: date | None, end: date | None, timezone: str) -> sa.Select:
    if start is not None:
        stmt = stmt.where(Shift.starts_at >= local_midnight(start, timezone))
    if end is not None:
        stmt = stmt.where(Shift.starts_at < local_midnight(end + timedelta(days=1), timezone))
    return stmt


_BY_START = (
    SortKey(Shift.starts_at, lambda shift: shift.starts_at, datetime),
    SortKey(Shift.id, lambda shift: shift.id, int),
)


# ------------------------------------------------------------------------------- open shifts


def _has_free_place() -> sa.ColumnElement[bool]:
    return sa.or_(Shift.primary_count < Shift.max_headcount, Shift.backup_count < Shift.backup_slots)


def _open_shifts_stmt(volunteer: Volunteer, args: dict[str, Any]) -> sa.Select:
    stmt = (
        select_shifts()
        .join(Area, Area.id == Shift.grid_id)
        .where(
            in_subtree(Area.path, city_path(volunteer.home_grid.path)),
            Shift.status == ShiftStatus.SCHEDULED,
            Shift.starts_at > utcnow(),
        )
    )
    if not args["include_full"]:
        stmt = stmt.where(_has_free_place())
    return _starts_in_dates(
        stmt, args.get("from_date"), args.get("to_date"), volunteer.home_grid.timezone
    )


def grid_distances_m(
    candidates: sa.Select, lon: float, lat: float, radius_km: float
) -> dict[int, int]:
    """Grid id → whole metres from the point to the grid's boundary (0 inside), within the radius.

    ``candidates`` selects the grids to consider; they are narrowed by bounding box in SQL first.
    """
    radius_m = radius_km * 1000
    min_lon, min_lat, max_lon, max_lat = geo.box_around(lon, lat, radius_m)
    rows = db.session.execute(
        candidates.with_only_columns(Area.id, Area.boundary).where(
            Area.min_lon <= max_lon,
            Area.max_lon >= min_lon,
            Area.min_lat <= max_lat,
            Area.max_lat >= min_lat,
        )
    )
    distances = {}
    for grid_id, boundary in rows:
        if not boundary:
            continue
        metres = geo.distance_to_boundary_m(boundary, lon, lat)
        if metres <= radius_m:
            distances[grid_id] = round(metres)
    return distances


def open_shifts(volunteer: Volunteer, args: dict[str, Any]) -> dict[str, Any]:
    """Scheduled, not-started shifts in the volunteer's home city with a free primary or backup place
    (any, with ``include_full``), in the home grid, its community, or near a point."""
    stmt = _open_shifts_stmt(volunteer, args)
    distances: dict[int, int] | None = None
    if args["near"] == NEAR_HOME_GRID:
        stmt = stmt.where(Shift.grid_id == volunteer.home_grid_id)
        page = keyset_page(stmt, _BY_START, limit=args["limit"], cursor=args.get("cursor"))
    elif args["near"] == NEAR_COMMUNITY:
        community = volunteer.home_grid.parent
        assert community is not None, "a grid always lies in a community"
        stmt = stmt.where(in_subtree(Area.path, community.path))
        page = keyset_page(stmt, _BY_START, limit=args["limit"], cursor=args.get("cursor"))
    else:
        grids_with_shifts = sa.select(Area.id).where(
            Area.level == AreaLevel.GRID,
            Area.id.in_(stmt.with_only_columns(Shift.grid_id).distinct()),
        )
        distances = grid_distances_m(
            grids_with_shifts, args["lon"], args["lat"], args.get("radius_km", DEFAULT_RADIUS_KM)
        )
        page = _page_by_distance(stmt, distances, args)
    page["items"] = _open_shift_views(volunteer, page["items"], distances)
    return page


def _page_by_distance(stmt: sa.Select, distances: dict[int, int], args: dict[str, Any]) -> dict[str, Any]:
    if not distances:
        return {"items": [], "next_cursor": None}
    distance = sa.case(distances, value=Shift.grid_id, else_=sa.literal(0))
    keys = (SortKey(distance, lambda shift: distances[shift.grid_id], int), *_BY_START)
    stmt = stmt.where(Shift.grid_id.in_(list(distances)))
    return keyset_page(stmt, keys, limit=args["limit"], cursor=args.get("cursor"))


def _open_shift_views(
    volunteer: Volunteer, shifts: Sequence[Shift], distances: dict[int, int] | None
) -> list[dict[str, Any]]:
    ids = [shift.id for shift in shifts]
    mine = {}
    if ids:
        rows = db.session.execute(
            sa.select(Assignment.shift_id, Assignment.id, Assignment.status, Assignment.role).where(
                Assignment.volunteer_id == volunteer.id,
                Assignment.shift_id.in_(ids),
                Assignment.status.in_(LIVE_STATUSES),
            )
        )
        mine = {row.shift_id: row for row in rows}
    views = shift_views(shifts)
    for shift, view in zip(shifts, views, strict=True):
        place = mine.get(shift.id)
        view["open_backup_places"] = max(shift.backup_slots - shift.backup_count, 0)
        view["distance_km"] = distances[shift.grid_id] / 1000 if distances is not None else None
        view["my_place"] = (
            {"id": place.id, "status": place.status, "role": place.role} if place else None
        )
    return views


# ------------------------------------------------------------------------------- area schedule


def ensure_may_see_area(caller: Caller, area: Area) -> None:
    """Managers see schedules in their subtree; volunteers anywhere in their home city."""
    if caller.role == Role.VOLUNTEER:
        if not area.path.startswith(city_path(caller.area_path)):
            raise OutOfScope("The area is outside your city.")
        return
    caller.ensure_scope(area.path)


def area_schedule(area: Area, args: dict[str, Any]) -> dict[str, Any]:
    """Shifts in ``area``'s subtree starting on the local dates given (the area's time zone)."""
    start = args.get("from_date") or utcnow().astimezone(ZoneInfo(area.timezone)).date()
    end = args.get("to_date") or start + timedelta(days=DEFAULT_SCHEDULE_DAYS - 1)
    if end < start:
        raise ValidationFailed(errors={"to": [TO_BEFORE_FROM]})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed(errors={"to": [RANGE_TOO_LONG]})
    stmt = select_shifts().join(Area, Area.id == Shift.grid_id).where(in_subtree(Area.path, area.path))
    if not args["include_cancelled"]:
        stmt = stmt.where(Shift.status == ShiftStatus.SCHEDULED)
    stmt = _starts_in_dates(stmt, start, end, area.timezone)
    page = keyset_page(stmt, _BY_START, limit=args["limit"], cursor=args.get("cursor"))
    page["items"] = shift_views(page["items"])
    return page


# ------------------------------------------------------------------------------- roster


def roster(shift: Shift, args: dict[str, Any]) -> dict[str, Any]:
    """The places on a shift, live and ended, in the order they were made."""
    stmt = select_assignments().where(Assignment.shift_id == shift.id)
    if args.get("status"):
        stmt = stmt.where(Assignment.status.in_(args["status"]))
    if args.get("role"):
        stmt = stmt.where(Assignment.role == args["role"])
    page = paginate(stmt, [Assignment.id], limit=args["limit"], cursor=args.get("cursor"))
    page["items"] = assignment_views(page["items"])
    return page
