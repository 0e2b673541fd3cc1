"""A September 2026 of served patrol in the test tree, for the report pages' tests (participation
and the coverage map): two grids of 东站社区 with shifts, served and missed places, and a volunteer of
another district; the HTML pages read back with lxml."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import lxml.html

from core.extensions import db
from grids.models import Area
from patrols.models import Patrol
from shifts.models import Shift
from tests import factories
from tests.conftest import Tree
from volunteers.models import Volunteer

SHANGHAI = ZoneInfo("Asia/Shanghai")
SEPTEMBER = {"period": "month", "value": "2026-09"}


def local(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=SHANGHAI).astimezone(UTC)


@dataclass
class World:
    tree: Tree
    calm: Volunteer
    late: Volunteer
    east: Volunteer
    stranger: Volunteer


def _shift(grid: Area, start: datetime, hours: float, places: int) -> Shift:
    shift = factories.make_shift(grid, max_headcount=places)
    shift.starts_at, shift.ends_at = start, start + timedelta(hours=hours)
    return shift


def _served(shift: Shift, volunteer: Volunteer, minutes: int) -> None:
    assignment = factories.make_assignment(shift, volunteer)
    db.session.add(Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id,
                          presence_status="verified", served_minutes=minutes))


def september(tree: Tree) -> World:
    """Grid A: a served shift (two served, one no-show) and an empty one; grid A east: one served
    place; grid B (another district): its own volunteer's served shift."""
    volunteers = {}
    for name, grid in (("李四", tree.grid_a), ("王五", tree.grid_a), ("赵六", tree.grid_a_east), ("钱七", tree.grid_b)):
        volunteer = factories.make_volunteer(grid, real_name=name)
        volunteer.created_at = local(1)
        volunteers[name] = volunteer
    first = _shift(tree.grid_a, local(10, 19), 2, places=3)
    _served(first, volunteers["李四"], 120)
    _served(first, volunteers["王五"], 90)
    _shift(tree.grid_a, local(12, 19), 2, places=2)
    factories.make_assignment(first, volunteers["赵六"], status="absent")
    east = _shift(tree.grid_a_east, local(15, 8), 3, places=1)
    _served(east, volunteers["赵六"], 180)
    b_shift = _shift(tree.grid_b, local(16, 8), 2, places=1)
    _served(b_shift, volunteers["钱七"], 120)
    db.session.flush()
    factories.fold_into_rollups()
    return World(tree, volunteers["李四"], volunteers["王五"], volunteers["赵六"], volunteers["钱七"])


def html(response: Any) -> Any:
    return lxml.html.fromstring(response.get_data(as_text=True))


def main_of(response: Any) -> str:
    """The page's ``<main>``: what it says, without the per-request CSRF token of the top bar."""
    return lxml.html.tostring(html(response).find(".//main"), encoding="unicode")
