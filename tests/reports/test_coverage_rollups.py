"""Coverage read from the daily roll-ups (reports/rollups/coverage.py): the same figures as the
live section, wherever the settled days end; the rows kept exact by every change that moves a
coverage figure; and the figures-only entry point the console's overview uses.

The world is ``test_coverage``'s hand-built four weeks (every figure asserted there, on the report
that now reads the roll-ups), plus a grid in another zone whose shift starts near midnight.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import current_app

from core.auth import Caller, Role
from core.errors import ApiError, OutOfScope
from core.extensions import db
from grids.models import Area, AreaLevel
from patrols.models import Patrol
from reports.coverage import service as coverage
from reports.coverage.figures import coverage_section
from reports.periods import Period, PeriodKind
from reports.rollups import cli as rollups
from reports.rollups import coverage as rolled
from reports.rollups.models import GridDay
from shifts.models import Assignment, Shift
from tests import factories
from tests.conftest import Tree
from tests.reports.test_coverage import DAYS, SHANGHAI, _at, _served, _shift, _start, world  # noqa: F401

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def tokyo(world: Tree) -> Area:
    """A Tokyo grid under district A: a shift at 00:30 Tokyo on day 7 (23:30 on day 6 in
    Shanghai), served 60 minutes, and one on day 12, staffed but not served."""
    grid = factories.make_area(AreaLevel.GRID, world.grid_a.parent, boundary=factories.square(110.5, 41.5))
    grid.timezone = "Asia/Tokyo"
    volunteer = factories.make_volunteer(grid)
    _served(_shift(grid, _at(7, 0, TOKYO) + timedelta(minutes=30), 60, 1), volunteer, "verified", 60)
    _served(_shift(grid, _at(12, 9, TOKYO), 90, 2), volunteer, None, None)
    db.session.flush()
    db.session.commit()  # folded into the roll-ups at the commit, as the app's
    return grid


def _period(zone: ZoneInfo = SHANGHAI) -> Period:
    return Period(PeriodKind.RANGE, _start(), _start() + timedelta(days=DAYS - 1), zone)


def _settled_from(day: int) -> datetime:
    """An ``as_of`` at which the period's days before ``day`` are settled (read from the roll-ups)
    and the others are not (read live): noon on ``day`` plus the longest shift."""
    return _at(day, 12) + timedelta(hours=current_app.config["SHIFT_MAX_HOURS"])


def _live(root_path: str, period: Period, as_of: datetime) -> dict[int, dict[str, int]]:
    return coverage_section(root_path, period)


@pytest.mark.parametrize("edge", [-DAYS - 1, 0, 3, 4, 7, 10, 11, 12, 20, DAYS, DAYS + 3])
def test_the_rollups_and_the_live_section_agree_wherever_the_settled_days_end(
    world: Tree, tokyo: Area, edge: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    district = world.district_a
    as_of = _settled_from(edge)
    for zone in (SHANGHAI, TOKYO):
        assert rolled.coverage_by_grid(district.path, _period(zone), as_of) == coverage_section(district.path, _period(zone))
        previous = _period(zone).previous()
        assert rolled.coverage_by_grid(district.path, previous, as_of) == coverage_section(district.path, previous)
    from_rollups = coverage.coverage_report(district, _period(), as_of)
    monkeypatch.setattr(coverage, "coverage_by_grid", _live)
    assert coverage.coverage_report(district, _period(), as_of) == from_rollups


def test_the_report_reads_the_rollups_for_settled_days(world: Tree, tokyo: Area) -> None:
    grid_a, district = world.grid_a, world.district_a
    # Day 3's shift: 2 places × 120 min, both held, 120 served (the rejected presence serves nothing).
    row = db.session.get(GridDay, (grid_a.id, _start() + timedelta(days=3)))
    assert row is not None
    assert (row.coverage_shifts, row.coverage_planned_minutes, row.coverage_staffed_minutes,
            row.coverage_served_minutes) == (1, 240, 240, 120)
    # The Tokyo shift is on day 7 of Tokyo's calendar.
    assert db.session.get(GridDay, (tokyo.id, _start() + timedelta(days=7))).coverage_served_minutes == 60  # type: ignore[union-attr]
    before = coverage.coverage_figures(district, _period())
    db.session.execute(
        sa.update(GridDay).where(GridDay.grid_id == grid_a.id, GridDay.day == _start() + timedelta(days=3))
        .values(coverage_served_minutes=1000)
    )
    after = coverage.coverage_figures(district, _period())
    assert after["totals"]["served_minutes"] == before["totals"]["served_minutes"] + 880
    assert [(m["grid_id"], m["expected"]["coverage_served_minutes"]) for m in rollups.check()] == [(grid_a.id, 120)]
    rollups.rebuild(area_id=district.id)
    assert rollups.check() == []
    assert coverage.coverage_figures(district, _period(), before["as_of"]) == before


def _exact(district: Area) -> None:
    """Folded in at the commit: the roll-ups equal the rows, and the report its live self."""
    db.session.commit()
    assert rollups.check() == []
    for when in (_period(), _period().previous()):
        now = datetime.now(SHANGHAI)
        assert rolled.coverage_by_grid(district.path, when, now) == coverage_section(district.path, when)


def test_check_stays_clean_after_every_change_that_moves_coverage(world: Tree, tokyo: Area) -> None:
    district, grid_a = world.district_a, world.grid_a
    _exact(district)
    shift = db.session.scalars(sa.select(Shift).where(Shift.grid_id == grid_a.id).order_by(Shift.starts_at)).all()[1]
    # The end alone (planned and staffed minutes), by the ORM.
    shift.ends_at = shift.ends_at + timedelta(minutes=30)
    _exact(district)
    # Places (planned minutes), by a Core UPDATE.
    db.session.execute(sa.update(Shift).where(Shift.id == shift.id).values(max_headcount=4))
    _exact(district)
    # Held places alone (staffed minutes), as autofill's bulk UPDATE writes them.
    db.session.execute(sa.update(Shift).where(Shift.id == shift.id).values(primary_count=Shift.primary_count + 1))
    _exact(district)
    # A presence approved after review, then its minutes changed, by text SQL.
    rejected = db.session.scalars(sa.select(Patrol).where(Patrol.shift_id == shift.id, Patrol.presence_status == "rejected")).one()
    rejected.presence_status = "approved"
    _exact(district)
    db.session.execute(sa.text("UPDATE patrols SET served_minutes = 30 WHERE id = :id"), {"id": rejected.id})
    _exact(district)
    # An assignment withdrawn, the shift moved to another day, then cancelled (its counters reset).
    db.session.execute(sa.update(Assignment).where(Assignment.shift_id == shift.id).values(status="withdrawn"))
    _exact(district)
    shift.starts_at, shift.ends_at = shift.starts_at + timedelta(days=2), shift.ends_at + timedelta(days=2)
    _exact(district)
    db.session.execute(sa.update(Shift).where(Shift.id == shift.id).values(status="cancelled", primary_count=0))
    _exact(district)
    assert coverage_section(grid_a.path, _period())[grid_a.id]["shift_count"] == 2
    # A patrol deleted.
    db.session.execute(sa.delete(Patrol).where(Patrol.shift_id.in_(sa.select(Shift.id).where(Shift.grid_id == tokyo.id))))
    _exact(district)


def test_the_figures_only_entry_point_is_the_report_without_its_lists(world: Tree, tokyo: Area) -> None:
    district = world.district_a
    report = coverage.coverage_report(district, _period())
    figures = coverage.coverage_figures(district, _period(), report["as_of"], uncovered_for=2)
    assert "below_quota" not in figures and figures["totals"] == report["totals"]
    lists = ("uncovered_shifts", "uncovered_shift_count", "days_without_patrol", "days_without_patrol_count")
    assert [{k: v for k, v in grid.items() if k not in lists} for grid in figures["grids"]] == [
        {k: v for k, v in grid.items() if k not in lists} for grid in report["grids"]
    ]
    # The two weakest grids carry their unserved-shift count, as the report counts them; the rest none.
    assert [grid.get("uncovered_shift_count") for grid in figures["grids"]] == [
        *(grid["uncovered_shift_count"] for grid in report["grids"][:2]), *[None] * (len(report["grids"]) - 2)
    ]
    assert any(grid["uncovered_shift_count"] for grid in report["grids"])


@pytest.mark.parametrize("entry", [coverage.area_coverage_figures, coverage.area_coverage])
def test_the_figures_only_entry_point_refuses_as_the_report_does(world: Tree, entry: Any) -> None:
    caller = Caller(user_id=1, role=Role.STAFF, area_path=world.district_b.path, session_id="s")
    args = {"area_id": world.district_a.id, "period": "month", "value": None}
    with pytest.raises(OutOfScope):
        entry(caller, args)
    with pytest.raises(ApiError) as unknown:
        entry(caller, {**args, "area_id": 999_999})
    assert unknown.value.status == 422
