"""The Shifts page's views, composed from what the services answer the API: no query of its own.

A week is the community's area schedule (``shifts.schedules.service.area_schedule``, the API's
``GET /areas/<id>/shifts``) for its seven local dates, laid out one row per grid (the grids package's
``list_children``) and one column per day. A gap is a shift the coverage rule counts as short of
people (``below_minimum`` of the shift view: assigned primaries under the minimum headcount) that is
still scheduled and not over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core import i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import NotFound, ValidationFailed
from core.pagination import MAX_LIMIT
from grids.models import Area, AreaLevel
from grids.paths import own_id
from grids.queries import get_area, list_areas, list_children, search_areas
from patrols.presence.review import patrol_of_assignment, patrol_view
from shifts.models import Shift, ShiftStatus
from shifts.planning.schemas import FIRST_YEAR, LAST_YEAR
from shifts.schedules import service as schedules
from volunteers.registration import list_kinds

#: Pages of a listing read for one page of the console at most: a community's week is a few
#: hundred shifts and a community a few dozen grids; beyond this the page says it is cut short.
MAX_PAGES = 10
NOT_A_COMMUNITY = i18n.N_("Not a community.")
DAYS_IN_WEEK = 7

i18n.register_messages(NOT_A_COMMUNITY)


@dataclass
class GridRow:
    grid_id: int
    name: str
    days: list[list[dict[str, Any]]] = field(default_factory=lambda: [[] for _ in range(DAYS_IN_WEEK)])


@dataclass
class Week:
    community: Area
    monday: date
    rows: list[GridRow]
    shift_count: int
    gap_count: int
    truncated: bool

    @property
    def days(self) -> list[date]:
        return [self.monday + timedelta(days=n) for n in range(DAYS_IN_WEEK)]

    @property
    def text(self) -> str:
        year, week, _ = self.monday.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def previous(self) -> str | None:
        return week_text(self.monday - timedelta(days=DAYS_IN_WEEK))

    @property
    def next(self) -> str | None:
        return week_text(self.monday + timedelta(days=DAYS_IN_WEEK))


def week_text(monday: date) -> str | None:
    """``2026-W49``, or None outside the years shifts are planned in (no link to it)."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}" if FIRST_YEAR <= year <= LAST_YEAR else None


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_containing(instant: datetime, timezone: str) -> str | None:
    """The ISO week of an instant on a clock: the week page a shift lies on."""
    return week_text(monday_of(instant.astimezone(ZoneInfo(timezone)).date()))


def current_monday(timezone: str) -> date:
    """The Monday of this week on the community's clock."""
    return monday_of(utcnow().astimezone(ZoneInfo(timezone)).date())


# --- which community -------------------------------------------------------------------------------


def chosen_community(caller: Caller, community_id: int | None) -> Area | None:
    """The community asked for (unknown: 404; outside the caller's subtree: 403, as the API's area
    schedule answers; another level: 422), else the caller's own area if it is a community, else None
    (the page offers a choice)."""
    if community_id is None:
        own = get_area(own_id(caller.area_path))
        return own if own.level == AreaLevel.COMMUNITY else None
    area = get_area(community_id)
    schedules.ensure_may_see_area(caller, area)
    if area.level != AreaLevel.COMMUNITY:
        raise ValidationFailed(errors={"community": [NOT_A_COMMUNITY]})
    return area


def communities_to_choose(caller: Caller, query: str | None) -> tuple[list[Area], bool]:
    """The communities of the caller's subtree (one page of the API's listing), or those matching
    ``query`` inside it; and whether there are more than shown."""
    if query:
        page = search_areas(query, level=AreaLevel.COMMUNITY, under=own_id(caller.area_path),
                            limit=MAX_LIMIT, cursor=None)
    else:
        page = list_areas(under=None, default_root_path=caller.area_path, level=AreaLevel.COMMUNITY,
                          parent_id=None, limit=MAX_LIMIT, cursor=None)
    return list(page["items"]), page["next_cursor"] is not None


# --- the week --------------------------------------------------------------------------------------


def _all_pages(read: Callable[[str | None], dict[str, Any]]) -> tuple[list[Any], bool]:
    """Items of a keyset listing, page after page, up to MAX_PAGES; and whether it was cut short."""
    items: list[Any] = []
    cursor = None
    for _ in range(MAX_PAGES):
        page = read(cursor)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, False
    return items, True


def is_gap(view: dict[str, Any], now: datetime) -> bool:
    """Short of people (the shift view's ``below_minimum``), still scheduled and not over."""
    return bool(view["below_minimum"]) and view["status"] == ShiftStatus.SCHEDULED and view["ends_at"] > now


def week_of(community: Area, monday: date) -> Week:
    """The community's shifts starting on the seven local dates from ``monday``, grid by grid."""
    zone = ZoneInfo(community.timezone)
    grids, grids_cut = _all_pages(lambda cursor: list_children(community.id, limit=MAX_LIMIT, cursor=cursor))
    rows = {grid.id: GridRow(grid.id, grid.name) for grid in grids if grid.level == AreaLevel.GRID}
    args: dict[str, Any] = {
        "from_date": monday, "to_date": monday + timedelta(days=DAYS_IN_WEEK - 1),
        "include_cancelled": True, "limit": MAX_LIMIT,
    }
    shifts, shifts_cut = _all_pages(lambda cursor: schedules.area_schedule(community, {**args, "cursor": cursor}))
    now = utcnow()
    gaps = 0
    for view in shifts:
        view["local_start"] = view["starts_at"].astimezone(zone)
        view["local_end"] = view["ends_at"].astimezone(zone)
        view["gap"] = is_gap(view, now)
        gaps += view["gap"]
        row = rows.setdefault(view["grid_id"], GridRow(view["grid_id"], view["grid_name"]))
        row.days[(view["local_start"].date() - monday).days].append(view)
    return Week(community, monday, list(rows.values()), len(shifts), gaps, grids_cut or shifts_cut)


# --- one shift and its roster ----------------------------------------------------------------------


def roster_of(caller: Caller, shift: Shift, language: str) -> list[dict[str, Any]]:
    """Every place on the shift as the API's roster answers a manager, each with its kind's name and
    its patrol (the API's ``GET /assignments/<id>/patrol``; None before the phone's first event)."""
    places, _ = _all_pages(lambda cursor: schedules.roster(shift, {"limit": MAX_LIMIT, "cursor": cursor}))
    names = {kind.code: kind.name_zh if language == "zh" else kind.name_en for kind in list_kinds()}
    for place in places:
        place["kind_name"] = names.get(place["volunteer_kind"], place["volunteer_kind"])
        try:
            place["patrol"] = patrol_view(patrol_of_assignment(caller, place["id"]))
        except NotFound as missing:
            if missing.code != "patrol_not_found":
                raise
            place["patrol"] = None
    return places


def local_times(view: dict[str, Any]) -> None:
    """The shift's start and end on its own clock, for the page."""
    zone = ZoneInfo(view["timezone"])
    view["local_start"] = view["starts_at"].astimezone(zone)
    view["local_end"] = view["ends_at"].astimezone(zone)
    view["gap"] = is_gap(view, utcnow())
