"""Auto-fill: the plan through the HTTP API (rules, reasons, dry run, apply, refusals, determinism),
apply against a world that changed, and the pure solver on small cases with a known optimum."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bench.autofill_data import Shape, generate
from core.auth import Caller, Role
from core.db import utcnow
from core.extensions import db
from shifts import signals
from shifts.autofill import service
from shifts.autofill.checks import violations
from shifts.autofill.exact import exact_max_places
from shifts.autofill.model import (
    BALANCE_STEP,
    KIND_BONUS,
    RANK_COST,
    Problem,
    ShiftInput,
    VolunteerInput,
    epoch_minutes,
    find_pairs,
    weekly_windows,
)
from shifts.autofill.solver import solve
from shifts.models import Assignment, Shift
from tests import factories, races
from tests.problems import assert_problem
from volunteers.models import AvailabilitySlot

API = "/api/v1/autofill"
ZONE = ZoneInfo("Asia/Shanghai")
EVENING = [(0, "18:00", "23:59"), (1, "18:00", "23:59"), (2, "18:00", "23:59")]


# --- helpers -----------------------------------------------------------------------------------


def next_monday() -> date:
    """A Monday at least a week ahead, so every shift of that week lies in the future."""
    today = datetime.now(ZONE).date()
    return today + timedelta(days=7 + (7 - today.weekday()) % 7)


def shift_at(grid: Any, day: date, start: str, hours: float, *, places: int = 1, **fields: Any) -> Shift:
    starts_at = datetime.combine(day, time.fromisoformat(start), ZONE).astimezone(UTC)
    shift = Shift(
        grid_id=grid.id, timezone=grid.timezone, starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=hours), title="夜间巡逻", min_headcount=1,
        max_headcount=places, backup_slots=0, required_kinds=fields.pop("required_kinds", []),
        status=fields.pop("status", "scheduled"), primary_count=0, backup_count=0, queue_seq=0, **fields,
    )
    db.session.add(shift)
    db.session.flush()
    return shift


def volunteer(grid: Any, slots: list[tuple[int, str, str]] = EVENING, **kwargs: Any) -> Any:
    made = factories.make_volunteer(grid, **kwargs)
    for weekday, start, end in slots:
        db.session.add(
            AvailabilitySlot(
                volunteer_id=made.id, weekday=weekday, start_time=time.fromisoformat(start),
                end_time=time.fromisoformat(end),
            )
        )
    db.session.flush()
    return made


def request(area: Any, monday: date, **extra: Any) -> dict[str, Any]:
    return {"area_id": area.id, "from": monday.isoformat(), "to": (monday + timedelta(days=6)).isoformat(), **extra}


def plan(client: Any, user: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(API, json=body, headers=factories.headers_for(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def placed(result: dict[str, Any]) -> set[tuple[int, int]]:
    return {(place["shift_id"], place["volunteer_id"]) for place in result["places"]}


def open_shift(result: dict[str, Any], shift: Shift) -> dict[str, Any]:
    return next(item for item in result["open_shifts"] if item["shift_id"] == shift.id)


def assignment_rows() -> list[tuple[int, int, str, str, str]]:
    return [
        tuple(row)
        for row in db.session.execute(
            sa.select(Assignment.shift_id, Assignment.volunteer_id, Assignment.status, Assignment.role, Assignment.source)
            .order_by(Assignment.shift_id, Assignment.volunteer_id)
        )
    ]


@pytest.fixture
def monday() -> date:
    return next_monday()


@pytest.fixture
def staff(tree: Any) -> Any:
    return factories.make_user("staff", tree.district_a)


@pytest.fixture
def organiser(tree: Any) -> Any:
    return factories.make_user("organiser", tree.community_a)


# --- who is planned ----------------------------------------------------------------------------


def test_plan_prefers_home_grid_then_community_and_skips_the_unavailable_and_inactive(
    client, tree, staff, monday
) -> None:
    shift = shift_at(tree.grid_a, monday, "19:00", 2, places=2)
    home = volunteer(tree.grid_a)
    same_community = volunteer(tree.grid_a_east)
    volunteer(tree.grid_a2)  # same sub-district: only needed if the nearer ones run out
    volunteer(tree.grid_a, slots=[(1, "18:00", "22:00")])  # Tuesday only
    volunteer(tree.grid_a, status="suspended")
    volunteer(tree.grid_a, status="pending")
    volunteer(tree.grid_b)  # another district

    result = plan(client, staff, request(tree.community_a, monday))

    assert placed(result) == {(shift.id, home.id), (shift.id, same_community.id)}
    ranks = {place["volunteer_id"]: place["rank"] for place in result["places"]}
    assert ranks == {home.id: "home_grid", same_community.id: "community"}
    assert all(place["assignment_id"] is None and place["role"] == "primary" for place in result["places"])
    assert result["open_shifts"] == []
    assert result["applied"] is False
    assert result["summary"] == {
        "shifts": 1, "open_places": 2, "planned": 2, "left_open": 0, "assigned": 0,
        "volunteers_considered": 4, "volunteers_planned": 2,
    }
    assert result["solver"]["status"] == "optimal"


def test_dry_run_writes_nothing(client, tree, staff, monday) -> None:
    shift = shift_at(tree.grid_a, monday, "19:00", 2, places=2)
    volunteer(tree.grid_a)
    plan(client, staff, request(tree.community_a, monday))
    assert assignment_rows() == []
    db.session.refresh(shift)
    assert (shift.primary_count, shift.queue_seq) == (0, 0)


def test_neighbouring_community_fills_in_when_the_community_runs_out(client, tree, staff, organiser, monday) -> None:
    shift = shift_at(tree.grid_a, monday, "19:00", 2, places=3)
    home = volunteer(tree.grid_a)
    neighbour = volunteer(tree.grid_a2)
    assert placed(plan(client, staff, request(tree.community_a, monday))) == {
        (shift.id, home.id), (shift.id, neighbour.id)
    }
    # An organiser of the community may not plan volunteers outside it.
    result = plan(client, organiser, request(tree.community_a, monday))
    assert placed(result) == {(shift.id, home.id)}
    assert open_shift(result, shift)["open_places"] == 2
    assert open_shift(result, shift)["reason"] == "no_volunteers_nearby"


def test_availability_must_cover_the_whole_shift_in_local_time(client, tree, staff, monday) -> None:
    late = shift_at(tree.grid_a, monday, "21:00", 2)  # ends 23:00
    early = shift_at(tree.grid_a_east, monday + timedelta(days=1), "17:30", 2)  # starts before 18:00
    volunteer(tree.grid_a, slots=[(0, "18:00", "22:00"), (1, "18:00", "22:00")])
    result = plan(client, staff, request(tree.community_a, monday))
    assert result["places"] == []
    for shift in (late, early):
        item = open_shift(result, shift)
        assert item["reason"] == "no_volunteer_available"
        assert item["candidates"] == {"nearby": 1, "available": 0, "clear": 0, "eligible": 0}


def test_no_overlap_or_short_rest_with_held_or_planned_shifts(client, tree, staff, monday) -> None:
    held_elsewhere = shift_at(tree.grid_b, monday, "17:00", 1.5)  # ends 18:30, rest 60 min
    clashing = shift_at(tree.grid_a, monday, "19:00", 2)
    busy = volunteer(tree.grid_a)
    factories.make_assignment(held_elsewhere, busy)
    result = plan(client, staff, request(tree.community_a, monday))
    assert result["places"] == []
    assert open_shift(result, clashing)["reason"] == "clash_or_rest"

    # Two shifts of one plan 30 minutes apart: one volunteer can take only one of them.
    first = shift_at(tree.grid_a, monday + timedelta(days=1), "19:00", 2)
    second = shift_at(tree.grid_a_east, monday + timedelta(days=1), "21:30", 2)
    result = plan(client, staff, request(tree.community_a, monday))
    assert len([p for p in result["places"] if p["shift_id"] in (first.id, second.id)]) == 1
    left = next(item for item in result["open_shifts"] if item["shift_id"] in (first.id, second.id))
    assert left["reason"] == "used_elsewhere"


def test_weekly_cap_counts_held_hours(client, tree, staff, monday) -> None:
    held = shift_at(tree.grid_b, monday + timedelta(days=2), "19:00", 2)
    wanted = shift_at(tree.grid_a, monday, "19:00", 2)
    capped = volunteer(tree.grid_a)
    factories.make_assignment(held, capped)
    result = plan(client, staff, request(tree.community_a, monday, weekly_cap_hours=3))
    assert result["places"] == []
    assert open_shift(result, wanted)["reason"] == "weekly_cap_reached"
    assert result["weekly_cap_hours"] == 3
    assert placed(plan(client, staff, request(tree.community_a, monday, weekly_cap_hours=4))) == {
        (wanted.id, capped.id)
    }


def test_volunteers_already_on_the_shift_are_not_planned_again(client, tree, staff, monday) -> None:
    shift = shift_at(tree.grid_a, monday, "19:00", 2, places=3)
    waiting, invited = volunteer(tree.grid_a), volunteer(tree.grid_a)
    factories.make_assignment(shift, waiting, status="waitlisted")
    factories.make_assignment(shift, invited, status="invited")
    result = plan(client, staff, request(tree.community_a, monday))
    assert result["places"] == []
    assert open_shift(result, shift)["reason"] == "no_volunteers_nearby"


def test_only_open_scheduled_future_shifts_in_range_and_area(client, tree, staff, monday) -> None:
    wanted = shift_at(tree.grid_a, monday, "19:00", 2)
    shift_at(tree.grid_a, monday + timedelta(days=1), "19:00", 2, status="cancelled")
    full = shift_at(tree.grid_a, monday + timedelta(days=2), "19:00", 2)
    factories.make_assignment(full, volunteer(tree.grid_a_east, slots=[]))
    shift_at(tree.grid_a, monday + timedelta(days=7), "19:00", 2)  # after the range
    shift_at(tree.grid_a2, monday, "19:00", 2)  # another community
    volunteer(tree.grid_a, slots=[(day, "00:00", "23:59") for day in range(7)])
    result = plan(client, staff, request(tree.community_a, monday))
    assert {place["shift_id"] for place in result["places"]} == {wanted.id}
    assert result["summary"]["shifts"] == 1


def test_started_shifts_are_left_alone(client, tree, staff) -> None:
    started = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-30), hours=2)
    later = factories.make_shift(tree.grid_a, starts_in=timedelta(hours=3), hours=2)
    volunteer(tree.grid_a, slots=[(day, "00:00", "23:59") for day in range(7)])
    today = datetime.now(ZONE).date()
    body = {"area_id": tree.community_a.id, "from": (today - timedelta(days=1)).isoformat(),
            "to": (today + timedelta(days=1)).isoformat()}
    result = plan(client, staff, body)
    assert result["summary"]["shifts"] == 1
    assert {place["shift_id"] for place in result["places"]} == {later.id}
    assert started.id not in {item["shift_id"] for item in result["open_shifts"]}


def test_required_kind_outweighs_nearness_and_unmet_kinds_are_reported(client, tree, staff, monday) -> None:
    shift = shift_at(
        tree.grid_a, monday, "19:00", 2, required_kinds=[{"kind": "volunteer_police", "minimum": 1}]
    )
    volunteer(tree.grid_a, kind_code="alley_steward")
    police = volunteer(tree.grid_a_east, kind_code="volunteer_police")
    result = plan(client, staff, request(tree.community_a, monday))
    assert placed(result) == {(shift.id, police.id)}

    stewards_only = shift_at(
        tree.grid_a, monday + timedelta(days=1), "19:00", 2,
        required_kinds=[{"kind": "volunteer_police", "minimum": 1}],
    )
    db.session.execute(sa.delete(AvailabilitySlot).where(AvailabilitySlot.volunteer_id == police.id))
    result = plan(client, staff, request(tree.community_a, monday))
    item = open_shift(result, stewards_only)
    assert (item["open_places"], item["reason"], item["unmet_kinds"]) == (0, "required_kind_missing", ["volunteer_police"])


def test_hours_are_balanced_across_volunteers(client, tree, staff, monday) -> None:
    shifts = [shift_at(tree.grid_a, monday + timedelta(days=day), "19:00", 2) for day in range(3)]
    first, second = volunteer(tree.grid_a), volunteer(tree.grid_a)
    result = plan(client, staff, request(tree.community_a, monday))
    per_volunteer = sorted(
        sum(1 for place in result["places"] if place["volunteer_id"] == v.id) for v in (first, second)
    )
    assert per_volunteer == [1, 2]
    assert {place["shift_id"] for place in result["places"]} == {shift.id for shift in shifts}


def test_two_dry_runs_give_the_same_plan(client, tree, staff, monday) -> None:
    for day in range(3):
        for grid in (tree.grid_a, tree.grid_a_east, tree.grid_a2):
            shift_at(grid, monday + timedelta(days=day), "19:00", 2, places=2)
            shift_at(grid, monday + timedelta(days=day), "21:00", 2, places=2)
    for grid in (tree.grid_a, tree.grid_a_east, tree.grid_a2):
        for _ in range(3):
            volunteer(grid)
    first = plan(client, staff, request(tree.subdistrict_a, monday))
    second = plan(client, staff, request(tree.subdistrict_a, monday))
    first["solver"].pop("seconds")
    second["solver"].pop("seconds")
    assert first == second
    assert len(first["places"]) > 0


def test_plans_are_optimal_and_repeatable_where_clashes_straddle_the_flow_cliques(client, tree, staff, monday) -> None:
    # One volunteer, three Thursday shifts: A 08-11, B 10-13, C 12-15. With 60 minutes of rest, B
    # clashes with both, A and C do not clash: the optimum is A and C.
    thursday = monday + timedelta(days=3)
    a, _, c = (shift_at(tree.grid_a, thursday, start, 3) for start in ("08:00", "10:00", "12:00"))
    only = volunteer(tree.grid_a, slots=[(3, "07:00", "16:00")])
    first = plan(client, staff, request(tree.community_a, monday))
    second = plan(client, staff, request(tree.community_a, monday))
    assert placed(first) == placed(second) == {(a.id, only.id), (c.id, only.id)}
    assert first["plan_token"] == second["plan_token"]
    assert (first["solver"]["status"], first["solver"]["upper_bound"]) == ("optimal", 2)


# --- apply -------------------------------------------------------------------------------------


def test_apply_writes_exactly_the_plan_and_sends_signals(client, tree, staff, monday) -> None:
    shifts = [shift_at(tree.grid_a, monday + timedelta(days=day), "19:00", 2, places=2) for day in range(3)]
    for _ in range(3):
        volunteer(tree.grid_a)
    dry = plan(client, staff, request(tree.community_a, monday))
    sent: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        sent.append(kwargs)

    with signals.assignment_created.connected_to(receiver):
        applied = plan(client, staff, request(tree.community_a, monday, apply=True, plan_token=dry["plan_token"]))

    assert applied["applied"] is True
    assert placed(applied) == placed(dry)
    assert applied["summary"]["assigned"] == len(dry["places"]) == 6
    assert applied["skipped"] == []
    assert assignment_rows() == sorted((s, v, "assigned", "primary", "autofill") for s, v in placed(dry))
    ids = {(p["shift_id"], p["volunteer_id"]): p["assignment_id"] for p in applied["places"]}
    assert sorted(
        (e["assignment_id"], e["shift_id"], e["volunteer_id"], e["role"], e["source"], e["actor_id"]) for e in sent
    ) == sorted((ids[(s, v)], s, v, "primary", "autofill", staff.id) for s, v in placed(dry))
    for shift in shifts:
        db.session.refresh(shift)
        assert (shift.primary_count, shift.queue_seq) == (2, 2)
    again = plan(client, staff, request(tree.community_a, monday))
    assert (again["places"], again["summary"]["shifts"]) == ([], 0)


def test_apply_with_a_stale_token_is_409_and_writes_nothing(client, tree, staff, monday) -> None:
    shift = shift_at(tree.grid_a, monday, "19:00", 2, places=2)
    volunteer(tree.grid_a)
    dry = plan(client, staff, request(tree.community_a, monday))
    volunteer(tree.grid_a)  # the world changed: the plan now differs
    response = client.post(
        API, json=request(tree.community_a, monday, apply=True, plan_token=dry["plan_token"]),
        headers=factories.headers_for(staff),
    )
    assert_problem(response, 409, "autofill_plan_changed")
    assert assignment_rows() == []
    db.session.refresh(shift)
    assert shift.primary_count == 0


def test_apply_skips_places_that_no_longer_hold(app, tree, staff, monday) -> None:
    """Between the plan and the locks, one volunteer took another shift and another was suspended."""
    shifts = [shift_at(tree.grid_a, monday + timedelta(days=day), "19:00", 2) for day in range(3)]
    people = [volunteer(tree.grid_a, slots=[(day, "18:00", "22:00")]) for day in range(3)]
    caller = Caller(user_id=staff.id, role=Role.STAFF, area_path=tree.district_a.path, session_id="test")
    now = utcnow()
    loaded = service.load(caller, tree.community_a, monday, monday + timedelta(days=6), 8, now)
    result = solve(loaded.problem)
    assert {(p.shift_id, p.volunteer_id) for p in result.places} == {(s.id, v.id) for s, v in zip(shifts, people, strict=True)}

    elsewhere = shift_at(tree.grid_b, monday, "20:00", 1)
    factories.make_assignment(elsewhere, people[0])
    people[1].status = "suspended"
    db.session.flush()
    written, skipped = service.apply(caller, loaded, result, now)

    assert set(written) == {(shifts[2].id, people[2].id)}
    assert skipped == sorted(
        [(shifts[0].id, people[0].id, "clash_or_rest"), (shifts[1].id, people[1].id, "volunteer_not_active")]
    )
    assert [row[:2] for row in assignment_rows() if row[4] == "autofill"] == [(shifts[2].id, people[2].id)]


# --- refusals ----------------------------------------------------------------------------------


def test_refusals(client, tree, staff, organiser, monday) -> None:
    shift_at(tree.grid_a, monday, "19:00", 2)
    volunteer(tree.grid_a)
    headers = factories.headers_for(organiser)

    assert_problem(client.post(API, json=request(tree.community_b, monday), headers=headers), 403, "out_of_scope")
    assert_problem(client.post(API, json=request(tree.subdistrict_a, monday), headers=headers), 403, "out_of_scope")
    volunteer_user = factories.make_volunteer(tree.grid_a).user
    assert_problem(
        client.post(API, json=request(tree.community_a, monday), headers=factories.headers_for(volunteer_user)),
        403, "forbidden",
    )
    assert client.post(API, json=request(tree.community_a, monday)).status_code == 401
    for body, field in (
        (request(tree.community_a, monday) | {"to": (monday - timedelta(days=1)).isoformat()}, "to"),
        (request(tree.community_a, monday) | {"to": (monday + timedelta(days=31)).isoformat()}, "to"),
        (request(tree.community_a, monday) | {"from": "9999-12-31", "to": "9999-12-31"}, "from"),
        (request(tree.community_a, monday) | {"area_id": 2_000_000_000}, "area_id"),
        (request(tree.community_a, monday) | {"weekly_cap_hours": 0}, "weekly_cap_hours"),
        ({"area_id": tree.community_a.id, "from": monday.isoformat()}, "to"),
        (request(tree.community_a, monday) | {"apply": True, "extra": 1}, "extra"),
    ):
        body_ = assert_problem(client.post(API, json=body, headers=headers), 422, "validation_failed")
        assert field in body_["errors"], body_
    assert assignment_rows() == []


def test_too_many_shifts_is_422(app, client, tree, staff, monday, monkeypatch) -> None:
    for day in range(3):
        shift_at(tree.grid_a, monday + timedelta(days=day), "19:00", 2)
    monkeypatch.setitem(app.config, "AUTOFILL_MAX_SHIFTS", 2)
    response = client.post(API, json=request(tree.community_a, monday), headers=factories.headers_for(staff))
    assert "area_id" in assert_problem(response, 422, "validation_failed")["errors"]


# --- the pure solver ---------------------------------------------------------------------------

BASE = epoch_minutes(datetime(2027, 3, 1, 0, 0, tzinfo=ZONE))  # a Monday, local midnight
ALL_WEEK = tuple((day, 0, 1439) for day in range(7))


def a_shift(id: int, starts_hour: float, hours: float, places: int = 1, **kwargs: Any) -> ShiftInput:
    starts = BASE + round(starts_hour * 60)
    return ShiftInput(id=id, starts=starts, ends=starts + round(hours * 60), open_places=places,
                      grid=kwargs.pop("grid", 1), community=10, subdistrict=100, **kwargs)


def a_volunteer(id: int, **kwargs: Any) -> VolunteerInput:
    fields = {"kind": "volunteer_police", "grid": 1, "community": 10, "subdistrict": 100,
              "timezone": "Asia/Shanghai", "availability": ALL_WEEK} | kwargs
    return VolunteerInput(id=id, **fields)


def pairs_of(result: Any) -> set[tuple[int, int]]:
    return {(place.shift_id, place.volunteer_id) for place in result.places}


def test_solver_finds_the_assignment_a_greedy_misses() -> None:
    # Volunteer 1 can do either shift (they clash), volunteer 2 only the first: the optimum uses both.
    problem = Problem(
        shifts=[a_shift(1, 19, 2), a_shift(2, 20, 2)],
        volunteers=[a_volunteer(1), a_volunteer(2, availability=((0, 18 * 60, 21 * 60),))],
        min_rest=60, weekly_cap=480,
    )
    result = solve(problem)
    assert pairs_of(result) == {(1, 2), (2, 1)}
    assert (result.report.status, result.report.upper_bound) == ("optimal", 2)


def test_clashing_shifts_share_one_unit_so_the_bound_is_tight() -> None:
    # Three shifts at the same time and one volunteer: the flow's clique lets one through, so its
    # maximum (the upper bound) is the optimum, 1, not 3.
    problem = Problem(
        shifts=[a_shift(id, 19, 2, grid=id) for id in (1, 2, 3)],
        volunteers=[a_volunteer(1)], min_rest=60, weekly_cap=480,
    )
    result = solve(problem, exact_max_pairs=0)
    assert (len(result.places), result.report.upper_bound, result.report.status) == (1, 1, "optimal")
    assert result.places[0].shift_id == 1  # home grid first


def test_cross_clique_clashes_are_repaired_and_exact_search_recovers_the_optimum() -> None:
    # One volunteer; A=[0,3h) B=[2h,5h) C=[4h,7h), no rest: the optimum is A and C.
    problem = Problem(
        shifts=[a_shift(1, 0, 3), a_shift(2, 2, 3), a_shift(3, 4, 3)],
        volunteers=[a_volunteer(1)], min_rest=0, weekly_cap=24 * 60,
    )
    flow_only = solve(problem, exact_max_pairs=0)
    assert violations(problem, sorted(pairs_of(flow_only))) == []
    assert flow_only.report.upper_bound >= 2
    assert pairs_of(solve(problem)) == {(1, 1), (3, 1)}


def test_weekly_cap_is_a_knapsack_not_a_count() -> None:
    # 5 hours a week; shifts of 3, 3 and 2 hours on different days: 3 + 2 is the most that fits.
    problem = Problem(
        shifts=[a_shift(1, 19, 3), a_shift(2, 24 + 19, 3), a_shift(3, 48 + 19, 2)],
        volunteers=[a_volunteer(1)], min_rest=60, weekly_cap=300,
    )
    result = solve(problem)
    assert len(result.places) == 2 and (3, 1) in pairs_of(result)
    assert violations(problem, sorted(pairs_of(result))) == []


def test_kind_before_nearness_before_balance() -> None:
    problem = Problem(
        shifts=[a_shift(1, 19, 2, needs=(("volunteer_police", 1),)), a_shift(2, 24 + 19, 2, grid=1)],
        volunteers=[
            a_volunteer(1, kind="alley_steward", grid=1),
            a_volunteer(2, kind="volunteer_police", grid=2),
            a_volunteer(3, kind="alley_steward", grid=3, community=11),
        ],
        min_rest=60, weekly_cap=480,
    )
    assert pairs_of(solve(problem)) == {(1, 2), (2, 1)}


def test_availability_across_sunday_midnight_and_until_23_59() -> None:
    windows = weekly_windows([(6, 22 * 60, 1439), (0, 0, 120)])
    assert windows == [(0, 120), (6 * 1440 + 22 * 60, 7 * 1440 + 120)]
    problem = Problem(
        shifts=[a_shift(1, 6 * 24 + 23, 2)],  # Sunday 23:00 to Monday 01:00
        volunteers=[a_volunteer(1, availability=((6, 22 * 60, 1439), (0, 0, 120)))],
        min_rest=60, weekly_cap=480,
    )
    assert pairs_of(solve(problem)) == {(1, 1)}
    late = dataclasses.replace(problem, volunteers=[a_volunteer(1, availability=((6, 22 * 60, 1439),))])
    assert solve(late).places == []


@pytest.mark.parametrize("staggered", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_solver_plans_keep_every_rule_and_match_the_proven_optimum(seed: int, staggered: bool) -> None:
    shape = Shape(shifts=60, volunteers=40, subdistricts=2, communities_per_subdistrict=2,
                  grids_per_community=3, days=10, staggered=staggered)
    problem = generate(shape, seed=seed)
    result = solve(problem)
    assert violations(problem, [(p.shift_id, p.volunteer_id) for p in result.places]) == []
    best, bound, proven = exact_max_places(problem, seconds=30)
    assert proven and best == bound
    assert len(result.places) == best <= result.report.upper_bound
    again = solve(problem)
    assert again.places == result.places and again.open_shifts == result.open_shifts


def objective(problem: Problem, places: list[Any]) -> int:
    """The plan's cost after places filled (``plan_cost``), from its places alone."""
    kind = {v.id: v.kind for v in problem.volunteers}
    held = {v.id: len(v.busy) for v in problem.volunteers}
    per_shift_kind: dict[tuple[int, str], int] = {}
    per_volunteer: dict[int, int] = {}
    cost = 0
    for place in places:
        cost += RANK_COST[place.rank]
        key = (place.shift_id, kind[place.volunteer_id])
        per_shift_kind[key] = per_shift_kind.get(key, 0) + 1
        cost += BALANCE_STEP * (held[place.volunteer_id] + per_volunteer.get(place.volunteer_id, 0))
        per_volunteer[place.volunteer_id] = per_volunteer.get(place.volunteer_id, 0) + 1
    for shift in problem.shifts:
        cost -= sum(KIND_BONUS * min(need, per_shift_kind.get((shift.id, k), 0)) for k, need in shift.needs)
    return cost


# Places, flow bound and cost of the min-cost flow's plan (no CP-SAT) on seeded 1,000-shift ×
# 4,000-volunteer cities, as the planner gave them before it built its candidates and graphs with
# numpy (commit 089c93c, one Python object per pair): the faster planner must fill as many.
BEFORE_NUMPY = {
    (False, 7): (3001, 3001, -1_004_500),
    (False, 8): (3047, 3047, -1_236_380),
    (True, 7): (1856, 1860, -138_690),
    (True, 8): (1791, 1794, 1_460),
}


@pytest.mark.parametrize(("staggered", "seed"), sorted(BEFORE_NUMPY))
def test_the_vectorised_planner_fills_as_many_places_as_before_at_the_flow_bound(staggered: bool, seed: int) -> None:
    problem = generate(Shape(shifts=1000, volunteers=4000, subdistricts=8, staggered=staggered), seed=seed)
    result = solve(problem, exact_max_pairs=0)
    filled_before, bound_before, cost_before = BEFORE_NUMPY[(staggered, seed)]
    assert violations(problem, [(p.shift_id, p.volunteer_id) for p in result.places]) == []
    assert (len(result.places), result.report.upper_bound) == (filled_before, bound_before)
    if not staggered:
        # At the flow bound no plan fills more; and the cost is the previous planner's.
        assert result.report.status == "optimal"
        assert objective(problem, result.places) == cost_before
    else:
        # Clashes across cliques: an equally good flow may repair differently, within one balance step.
        assert abs(objective(problem, result.places) - cost_before) <= BALANCE_STEP


def test_pairs_respect_nearness_and_held_shifts() -> None:
    problem = Problem(
        shifts=[a_shift(1, 19, 2)],
        volunteers=[
            a_volunteer(1, subdistrict=101),  # another sub-district
            a_volunteer(2, busy=((BASE + 21 * 60 + 30, BASE + 23 * 60),)),  # 30 min after: too little rest
            a_volunteer(3, live_shifts=frozenset({1})),
            a_volunteer(4, week_minutes={date(2027, 3, 1).toordinal(): 420}),  # 7 h held this week
            a_volunteer(5),
        ],
        min_rest=60, weekly_cap=480,
    )
    pairs, funnels = find_pairs(problem)
    assert [problem.volunteers[v].id for v in pairs.volunteer] == [5]
    assert dataclasses.astuple(funnels[0]) == (3, 3, 2, 1)


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.committing
def test_two_applies_at_once_never_overbook(app) -> None:
    """Both plan the same places; the second to get the volunteers' locks finds them taken."""
    with app.app_context():
        _city, district, _subdistrict, community, grid = factories.make_branch()
        monday = next_monday()
        shift_ids = [shift_at(grid, monday + timedelta(days=day), "19:00", 2, places=2).id for day in range(3)]
        for _ in range(4):
            volunteer(grid)
        headers = [factories.headers_for(factories.make_user("staff", district)) for _ in range(2)]
        body = request(community, monday, apply=True)
        db.session.commit()

    barrier = races.barrier(2)
    results: list[Any] = [None, None]

    def send(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(API, json=body, headers=headers[index])
        results[index] = (response.status_code, response.get_json())

    races.run_threads([lambda: send(0), lambda: send(1)])

    assert [status for status, _ in results] == [200, 200], results
    # PostgreSQL: both plan all six and the later one skips them; SQLite: the later one waits for
    # the write lock and then finds nothing open.
    assert all(a["summary"]["assigned"] + len(a["skipped"]) == a["summary"]["planned"] for _, a in results)
    assert sorted(answer["summary"]["assigned"] for _, answer in results) == [0, 6]
    with app.app_context():
        rows = db.session.execute(
            sa.select(Assignment.shift_id, sa.func.count()).where(Assignment.status == "assigned")
            .group_by(Assignment.shift_id).order_by(Assignment.shift_id)
        ).all()
        counts = db.session.execute(sa.select(Shift.id, Shift.primary_count).order_by(Shift.id)).all()
        db.session.remove()
    assert [tuple(row) for row in rows] == [(shift_id, 2) for shift_id in shift_ids]
    assert [tuple(row) for row in counts] == [(shift_id, 2) for shift_id in shift_ids]
