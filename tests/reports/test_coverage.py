"""Grid coverage over HTTP: a hand-built four weeks whose every figure is asserted, scope, bad input."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel, GridPatrolTarget, GridQuota
from patrols.models import Patrol
from shifts.models import Shift
from tests import factories
from tests.conftest import Tree
from tests.problems import assert_problem
from volunteers.models import Volunteer

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Four weeks exactly, all in the past: a weekly target of 420 minutes is 1,680.
DAYS = 28


def _start() -> date:
    return utcnow().astimezone(SHANGHAI).date() - timedelta(days=DAYS + 7)


def _at(day: int, hour: int, zone: ZoneInfo = SHANGHAI) -> datetime:
    """``hour``:00 local on day ``day`` (0: the first) of the period."""
    return datetime.combine(_start() + timedelta(days=day), time(hour), tzinfo=zone)


def _shift(grid: Area, starts: datetime, minutes: int, places: int, *, status: str = "scheduled") -> Shift:
    shift = factories.make_shift(grid, max_headcount=places, min_headcount=1)
    shift.starts_at, shift.ends_at, shift.status = starts, starts + timedelta(minutes=minutes), status
    db.session.flush()
    return shift


def _served(shift: Shift, volunteer: Volunteer, presence: str | None, minutes: int | None) -> None:
    """A primary on ``shift`` and, unless ``presence`` is None, the patrol the phone made."""
    assignment = factories.make_assignment(shift, volunteer)
    if presence is not None:
        db.session.add(
            Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id,
                   presence_status=presence, served_minutes=minutes)
        )
        db.session.flush()


def _report(client: FlaskClient, area: Area, headers: dict[str, str], **query: str) -> Any:
    query = query or {"from": _start().isoformat(), "to": (_start() + timedelta(days=DAYS - 1)).isoformat()}
    return client.get(f"{API}/reports/coverage", query_string={"area_id": area.id, **query}, headers=headers)


def _day(n: int) -> str:
    return (_start() + timedelta(days=n)).isoformat()


@pytest.fixture
def world(tree: Tree) -> Tree:
    """District A's four weeks (district B has a shift too, never counted for A):

    - grid_a: weekly target 420; a 1-place shift from 23:00 the day before the period to 01:00 on
      its first day (served: the previous period's, by its start; but day 0 was patrolled), a 2-place shift of 120 min on day 3 (one verified 120, one
      *rejected* presence claiming 120), a 1-place shift across midnight from day 10 22:00 to day
      11 02:00 (approved 240), a 3-place shift on day 20 with one primary who never came, a
      cancelled shift on day 25;
    - grid_a_east: no shift at all, no target; its quota asks 2 alley stewards, it has 1 (and 1
      pending);
    - grid_a2: one 1-place shift of 120 min on day 5, served 100; in the previous four weeks one
      shift served in full; its quota of 1 volunteer police is met.
    """
    police, steward = factories.kind("volunteer_police"), factories.kind("alley_steward")
    v1, v2, v3 = (factories.make_volunteer(tree.grid_a) for _ in range(3))
    db.session.add(GridPatrolTarget(grid_id=tree.grid_a.id, weekly_target_minutes=420))

    _served(_shift(tree.grid_a, _at(-1, 23), 120, 1), v3, "verified", 120)
    first = _shift(tree.grid_a, _at(3, 19), 120, 2)
    _served(first, v1, "verified", 120)
    _served(first, v2, "rejected", 120)
    midnight = _shift(tree.grid_a, _at(10, 22), 240, 1)
    _served(midnight, v1, "approved", 240)
    nobody = _shift(tree.grid_a, _at(20, 8), 120, 3)
    _served(nobody, v3, None, None)
    _shift(tree.grid_a, _at(25, 8), 120, 2, status="cancelled")

    factories.make_volunteer(tree.grid_a_east, kind_code=steward.code)
    factories.make_volunteer(tree.grid_a_east, kind_code=steward.code, status="pending")
    db.session.add(GridQuota(grid_id=tree.grid_a_east.id, kind_code=steward.code, min_active=2))

    v4 = factories.make_volunteer(tree.grid_a2, kind_code=police.code)
    _served(_shift(tree.grid_a2, _at(5, 10), 120, 1), v4, "verified", 100)
    _served(_shift(tree.grid_a2, _at(5 - DAYS, 10), 120, 1), v4, "verified", 120)
    db.session.add(GridQuota(grid_id=tree.grid_a2.id, kind_code=police.code, min_active=1))

    _served(_shift(tree.grid_b, _at(4, 10), 120, 1), factories.make_volunteer(tree.grid_b), "verified", 120)
    db.session.flush()
    return tree


def test_a_hand_built_four_weeks_every_figure(client: FlaskClient, world: Tree) -> None:
    response = _report(client, world.district_a, factories.headers_for(factories.make_user("staff", world.district_a)))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["as_of"]
    assert body["area"] == {"id": world.district_a.id, "name": "东河区", "level": "district", "timezone": "Asia/Shanghai"}
    assert body["period"]["label"] == f"{_day(0)}/{_day(DAYS - 1)}" and body["period"]["days"] == DAYS
    assert body["previous_period"]["first"] == _day(-DAYS) and body["previous_period"]["last"] == _day(-1)

    grids = body["grids"]
    assert [grid["grid_id"] for grid in grids] == [world.grid_a_east.id, world.grid_a.id, world.grid_a2.id]
    east, a, a2 = grids
    assert [grid["rank"] for grid in grids] == [1, 2, 3]

    # No shift, no target: listed, and the worst.
    assert {key: east[key] for key in ("shift_count", "expected_minutes", "expected_basis", "coverage_pct",
                                       "uncovered_shift_count", "days_without_patrol_count")} == {
        "shift_count": 0, "expected_minutes": 0, "expected_basis": "none", "coverage_pct": None,
        "uncovered_shift_count": 0, "days_without_patrol_count": DAYS,
    }
    assert east["days_without_patrol"] == [{"first": _day(0), "last": _day(DAYS - 1)}]
    assert east["coverage_change"] is None

    # Planned 2×120 + 1×240 + 3×120 (the cancelled shift left out); the target 420 × 28 / 7 is more.
    assert {key: a[key] for key in ("shift_count", "planned_minutes", "target_minutes", "expected_minutes",
                                    "expected_basis", "staffed_minutes", "served_minutes", "coverage_pct",
                                    "weekly_target_minutes")} == {
        "shift_count": 3, "planned_minutes": 840, "target_minutes": 1680, "expected_minutes": 1680,
        "expected_basis": "target", "staffed_minutes": 600,
        # 120 verified + 240 approved; the rejected presence's 120 serve nothing.
        "served_minutes": 360, "coverage_pct": 21.4, "weekly_target_minutes": 420,
    }
    # The shift across the start of the period is the previous period's.
    assert (a["previous"]["shift_count"], a["previous"]["served_minutes"], a["previous"]["expected_minutes"],
            a["previous"]["coverage_pct"]) == (1, 120, 1680, 7.1)
    assert a["coverage_change"] == 14.3
    # Only the shift nobody came to is uncovered, at its local time.
    assert a["uncovered_shift_count"] == 1
    assert [window["starts_local"] for window in a["uncovered_shifts"]] == [f"{_day(20)}T08:00:00"]
    # Patrolled: day 0 (the previous period's shift ran into it), day 3, and days 10 and 11 (the
    # shift across midnight touches both).
    assert a["days_without_patrol_count"] == DAYS - 4
    assert a["days_without_patrol"] == [
        {"first": _day(1), "last": _day(2)}, {"first": _day(4), "last": _day(9)},
        {"first": _day(12), "last": _day(DAYS - 1)},
    ]

    assert (a2["planned_minutes"], a2["expected_basis"], a2["staffed_minutes"], a2["served_minutes"],
            a2["coverage_pct"]) == (120, "shifts", 120, 100, 83.3)
    assert a2["previous"]["served_minutes"] == 120 and a2["previous"]["coverage_pct"] == 100.0
    assert a2["coverage_change"] == -16.7

    # The grids add up to the district (grid_b of district B is not in it).
    assert body["totals"] == {
        "grid_count": 3, "grids_without_shifts": 1, "shift_count": 4, "planned_minutes": 960,
        "target_minutes": 1680, "expected_minutes": 1800, "staffed_minutes": 720, "served_minutes": 460,
        "coverage_pct": 25.6,
        "previous": {"shift_count": 2, "planned_minutes": 240, "target_minutes": 1680, "expected_minutes": 1800,
                     "staffed_minutes": 240, "served_minutes": 240, "coverage_pct": 13.3},
        "coverage_change": 12.3,
    }
    for name in ("planned_minutes", "expected_minutes", "staffed_minutes", "served_minutes"):
        assert body["totals"][name] == sum(grid[name] for grid in grids)

    # One active steward of the two asked (the pending one does not count); grid_a2's quota is met.
    assert body["below_quota"] == [{
        "grid_id": world.grid_a_east.id, "grid_name": world.grid_a_east.name, "kind": "alley_steward",
        "min_active": 2, "active": 1, "missing": 1,
    }]


def test_an_organiser_sees_their_community_and_a_month_is_labelled(client: FlaskClient, world: Tree) -> None:
    organiser = factories.headers_for(factories.make_user("organiser", world.community_a))
    body = _report(client, world.community_a, organiser, period="month", value="2026-03").get_json()
    assert body["period"]["label"] == "2026-03" and body["previous_period"]["label"] == "2026-02"
    assert body["period"]["starts_at"] == "2026-02-28T16:00:00+00:00"
    assert sorted(grid["grid_id"] for grid in body["grids"]) == [world.grid_a.id, world.grid_a_east.id]
    assert [row["grid_id"] for row in body["below_quota"]] == [world.grid_a_east.id]


def test_a_grid_in_another_zone_reads_the_period_at_its_own_midnight(client: FlaskClient) -> None:
    city, district, *_, grid = factories.make_branch()
    tokyo = factories.make_area(AreaLevel.GRID, grid.parent, boundary=factories.square(110.5, 41.5))
    tokyo.timezone = "Asia/Tokyo"
    volunteer = factories.make_volunteer(tokyo)
    # 00:30 in Tokyo on the first day is 23:30 the day before in Shanghai: inside Tokyo's period.
    _served(_shift(tokyo, _at(0, 0, ZoneInfo("Asia/Tokyo")) + timedelta(minutes=30), 60, 1), volunteer,
            "verified", 60)
    db.session.flush()
    body = _report(client, district, factories.headers_for(factories.make_user("admin", city))).get_json()
    by_id = {row["grid_id"]: row for row in body["grids"]}
    assert by_id[tokyo.id]["served_minutes"] == 60 and by_id[tokyo.id]["timezone"] == "Asia/Tokyo"
    assert by_id[tokyo.id]["days_without_patrol_count"] == DAYS - 1
    assert by_id[grid.id]["served_minutes"] == 0 and by_id[grid.id]["rank"] == 1


# ---------------------------------------------------------------------------------------- refusals


def test_areas_out_of_scope_are_403_and_volunteers_are_refused(client: FlaskClient, world: Tree) -> None:
    organiser = factories.headers_for(factories.make_user("organiser", world.community_a))
    for area in (world.district_a, world.community_a2, world.grid_a2, world.grid_b):
        assert_problem(_report(client, area, organiser), 403, "out_of_scope")
    staff_a = factories.headers_for(factories.make_user("staff", world.district_a))
    assert_problem(_report(client, world.district_b, staff_a), 403, "out_of_scope")
    assert_problem(_report(client, world.city, staff_a), 403, "out_of_scope")
    volunteer = factories.headers_for(factories.make_volunteer(world.grid_a).user)
    assert_problem(_report(client, world.grid_a, volunteer), 403, "forbidden")
    assert_problem(client.get(f"{API}/reports/coverage?area_id={world.grid_a.id}&period=month"), 401, "unauthorized")


def test_a_sibling_whose_path_starts_with_ours_is_out_of_scope(client: FlaskClient) -> None:
    city = factories.make_area(AreaLevel.CITY)
    district = factories.make_area(AreaLevel.DISTRICT, city, area_id=8_200_002)
    sibling = factories.make_area(AreaLevel.DISTRICT, city, area_id=82_000_023)
    assert sibling.path.startswith(district.path.rstrip("/"))
    staff = factories.headers_for(factories.make_user("staff", district))
    assert_problem(_report(client, sibling, staff), 403, "out_of_scope")
    assert _report(client, district, staff).status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"period": "month", "value": "2026-13"}, "value"),
        ({"period": "week"}, "period"),
        ({"from": "2026-11-10", "to": "2026-11-01"}, "to"),  # inverted
        ({"from": "2020-01-01", "to": "2023-12-31"}, "to"),  # longer than three years
        ({"from": "2026-11-31", "to": "2026-12-01"}, "from"),  # no such day
        ({}, "period"),
    ],
)
def test_bad_periods_are_422(client: FlaskClient, tree: Tree, query: dict[str, str], field: str) -> None:
    staff = factories.headers_for(factories.make_user("staff", tree.district_a))
    response = client.get(f"{API}/reports/coverage", query_string={"area_id": tree.district_a.id, **query},
                          headers=staff)
    assert field in assert_problem(response, 422, "validation_failed")["errors"]


def test_a_missing_or_unknown_area_is_422(client: FlaskClient, tree: Tree) -> None:
    staff = factories.headers_for(factories.make_user("staff", tree.district_a))
    for query in ({"period": "month"}, {"period": "month", "area_id": "2000000000"}, {"period": "month", "area_id": "x"}):
        response = client.get(f"{API}/reports/coverage", query_string=query, headers=staff)
        assert "area_id" in assert_problem(response, 422, "validation_failed")["errors"]


def test_a_grid_without_shifts_ranks_below_one_whose_shifts_nobody_served(client: FlaskClient) -> None:
    _, district, _, community, unserved = factories.make_branch()
    _served(_shift(unserved, _at(2, 9), 60, 1), factories.make_volunteer(unserved), None, None)
    empty = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(110.5, 41.5))
    body = _report(client, district, factories.headers_for(factories.make_user("staff", district))).get_json()
    assert [(row["grid_id"], row["coverage_pct"]) for row in body["grids"]] == [(empty.id, None), (unserved.id, 0.0)]
    assert body["grids"][1]["uncovered_shift_count"] == 1
