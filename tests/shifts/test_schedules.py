"""Schedule views: open shifts near a volunteer, my shifts, an area's schedule, coverage gaps, rosters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from core.pagination import encode_cursor
from grids.models import Area, AreaLevel
from shifts.models import Assignment, Shift
from shifts.schedules import coverage
from tests import factories
from tests.conftest import Tree
from tests.problems import EN, assert_problem
from volunteers.models import Volunteer

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class People:
    def __init__(self, tree: Tree) -> None:
        self.me = factories.make_volunteer(tree.grid_a, real_name="王五")
        self.neighbour = factories.make_volunteer(tree.grid_a_east, real_name="李四")
        self.steward = factories.make_volunteer(tree.grid_a, kind_code="alley_steward", real_name="赵六")
        self.organiser_a = factories.make_user("organiser", tree.community_a)
        self.organiser_b = factories.make_user("organiser", tree.community_b)
        self.staff_a = factories.make_user("staff", tree.district_a)
        self.admin = factories.make_user("admin", tree.city)


@pytest.fixture
def people(tree: Tree) -> People:
    return People(tree)


def as_(who: User | Volunteer, **extra: str) -> dict[str, str]:
    user = db.session.get(User, who.user_id) if isinstance(who, Volunteer) else who
    return factories.headers_for(user, **extra)


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.get_json()["items"]]


def walk(client: Any, url: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list, following next_cursor; checks no page repeats an item."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(url, query_string=query, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def shift_at(grid: Area, local_start: datetime, *, hours: float = 2, **options: Any) -> Shift:
    """A shift starting at a wall-clock time in the grid's time zone."""
    shift = factories.make_shift(grid, **options)
    start = local_start.replace(tzinfo=ZoneInfo(grid.timezone)).astimezone(UTC)
    shift.starts_at, shift.ends_at = start, start + timedelta(hours=hours)
    db.session.flush()
    return shift


def cancel(shift: Shift) -> None:
    shift.status, shift.cancelled_at = "cancelled", utcnow()
    db.session.flush()


def end(assignment: Assignment, status: str, *, late: bool = False) -> None:
    if assignment.status == "assigned":
        assignment.shift.primary_count -= assignment.role == "primary"
        assignment.shift.backup_count -= assignment.role == "backup"
    assignment.status, assignment.ended_at, assignment.late_withdrawal = status, utcnow(), late
    db.session.flush()


def other_city_grid(lon: float = 109.84, lat: float = 40.65) -> Area:
    area = factories.make_area(AreaLevel.CITY)
    for level in (AreaLevel.DISTRICT, AreaLevel.SUBDISTRICT, AreaLevel.COMMUNITY):
        area = factories.make_area(level, area)
    return factories.make_area(AreaLevel.GRID, area, boundary=factories.square(lon, lat))


# ----------------------------------------------------------------------------------- open shifts


def test_open_shifts_in_my_home_grid_with_free_primary_or_backup_places(client, tree, people) -> None:
    later = factories.make_shift(tree.grid_a, starts_in=2 * DAY)
    sooner = factories.make_shift(tree.grid_a, starts_in=DAY)
    full = factories.make_shift(tree.grid_a, starts_in=DAY, max_headcount=1)
    factories.make_assignment(full, people.neighbour)
    backup_free = factories.make_shift(tree.grid_a, starts_in=3 * DAY, max_headcount=1, backup_slots=1)
    factories.make_assignment(backup_free, people.neighbour)
    cancelled = factories.make_shift(tree.grid_a, starts_in=DAY)
    cancel(cancelled)
    factories.make_shift(tree.grid_a, starts_in=-HOUR, hours=3)  # under way: too late to sign up
    factories.make_shift(tree.grid_a_east, starts_in=DAY)  # another grid

    response = client.get(f"{API}/shifts/open", headers=as_(people.me))
    assert ids(response) == [sooner.id, later.id, backup_free.id]
    items = {item["id"]: item for item in response.get_json()["items"]}
    assert items[backup_free.id]["open_places"] == 0
    assert items[backup_free.id]["open_backup_places"] == 1
    assert items[sooner.id]["open_places"] == 3
    assert items[sooner.id]["distance_km"] is None
    assert items[sooner.id]["my_place"] is None

    with_full = client.get(f"{API}/shifts/open?include_full=true", headers=as_(people.me))
    assert ids(with_full) == [sooner.id, full.id, later.id, backup_free.id]


def test_open_shifts_mark_the_ones_i_already_have_a_place_on(client, tree, people) -> None:
    mine = factories.make_shift(tree.grid_a, starts_in=DAY)
    place = factories.make_assignment(mine, people.me)
    waiting_on = factories.make_shift(tree.grid_a, starts_in=2 * DAY, max_headcount=1)
    factories.make_assignment(waiting_on, people.neighbour)
    waiting = factories.make_assignment(waiting_on, people.me, status="waitlisted")
    withdrawn_from = factories.make_shift(tree.grid_a, starts_in=3 * DAY)
    end(factories.make_assignment(withdrawn_from, people.me), "withdrawn")

    items = client.get(f"{API}/shifts/open?include_full=true", headers=as_(people.me)).get_json()["items"]
    places = {item["id"]: item["my_place"] for item in items}
    assert places == {
        mine.id: {"id": place.id, "status": "assigned", "role": "primary"},
        waiting_on.id: {"id": waiting.id, "status": "waitlisted", "role": "primary"},
        withdrawn_from.id: None,
    }


def test_open_shifts_in_my_community_only(client, tree, people) -> None:
    home = factories.make_shift(tree.grid_a, starts_in=2 * DAY)
    same_community = factories.make_shift(tree.grid_a_east, starts_in=DAY)
    factories.make_shift(tree.grid_a2, starts_in=DAY)  # a neighbouring community
    factories.make_shift(tree.grid_b, starts_in=DAY)  # another district

    response = client.get(f"{API}/shifts/open?near=community", headers=as_(people.me))
    assert ids(response) == [same_community.id, home.id]


def test_open_shifts_near_a_point_by_distance_to_the_boundary_then_start(client, tree, people) -> None:
    # The point lies inside grid_a (109.84–109.85 E, 40.65–40.66 N), 0.005° from its east edge.
    inside_late = factories.make_shift(tree.grid_a, starts_in=3 * DAY)
    inside_early = factories.make_shift(tree.grid_a, starts_in=DAY)
    east = factories.make_shift(tree.grid_a_east, starts_in=HOUR * 5)  # ~0.42 km away
    north = factories.make_shift(tree.grid_a2, starts_in=HOUR * 4)  # ~0.55 km away
    far = factories.make_shift(tree.grid_b, starts_in=HOUR * 3)  # ~3 km away, another district
    factories.make_shift(other_city_grid(109.845, 40.655), starts_in=DAY)  # right here, another city
    point = {"near": "point", "lat": 40.655, "lon": 109.845}

    nearby = client.get(f"{API}/shifts/open", query_string={**point, "radius_km": 1}, headers=as_(people.me))
    assert ids(nearby) == [inside_early.id, inside_late.id, east.id, north.id]
    distances = [item["distance_km"] for item in nearby.get_json()["items"]]
    assert distances[:2] == [0, 0]
    assert distances[2] == pytest.approx(0.422, abs=0.01)
    assert distances[3] == pytest.approx(0.553, abs=0.01)
    # radius_km 0, the documented minimum: only the grid the point lies in.
    here = client.get(f"{API}/shifts/open", query_string={**point, "radius_km": 0}, headers=as_(people.me))
    assert ids(here) == [inside_early.id, inside_late.id]

    wider = walk(client, f"{API}/shifts/open", as_(people.me), **point, radius_km=20, limit=2)
    assert [item["id"] for item in wider] == [inside_early.id, inside_late.id, east.id, north.id, far.id]
    assert wider[-1]["distance_km"] > 3


def test_open_shifts_default_radius_and_nothing_nearby(client, tree, people) -> None:
    near_b = factories.make_shift(tree.grid_b, starts_in=DAY)
    at_b = {"near": "point", "lat": 40.625, "lon": 109.805}
    assert ids(client.get(f"{API}/shifts/open", query_string=at_b, headers=as_(people.me))) == [near_b.id]
    desert = {"near": "point", "lat": 42.0, "lon": 112.0}
    assert ids(client.get(f"{API}/shifts/open", query_string=desert, headers=as_(people.me))) == []


def test_open_shifts_within_local_dates_of_my_home_grid(client, tree, people) -> None:
    day = (utcnow().astimezone(SHANGHAI) + 3 * DAY).date()
    midnight = datetime.combine(day, datetime.min.time())
    first = shift_at(tree.grid_a, midnight)
    last = shift_at(tree.grid_a, midnight + timedelta(hours=23, minutes=30))
    shift_at(tree.grid_a, midnight - timedelta(minutes=30))
    shift_at(tree.grid_a, midnight + DAY)

    response = client.get(
        f"{API}/shifts/open", query_string={"from": day.isoformat(), "to": day.isoformat()},
        headers=as_(people.me),
    )
    assert ids(response) == [first.id, last.id]
    assert response.get_json()["items"][0]["starts_at"] == midnight.replace(tzinfo=SHANGHAI).astimezone(UTC).isoformat()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"near": "point", "lon": 109.8}, "lat"),
        ({"near": "point", "lat": 40.6}, "lon"),
        ({"lat": 40.6, "lon": 109.8}, "lat"),
        ({"near": "community", "radius_km": 3}, "radius_km"),
        ({"near": "point", "lat": 40.6, "lon": 109.8, "radius_km": 21}, "radius_km"),
        ({"near": "point", "lat": 40.6, "lon": 109.8, "radius_km": -0.001}, "radius_km"),
        ({"near": "point", "lat": 40.6, "lon": 109.8, "radius_km": 20.001}, "radius_km"),
        ({"near": "point", "lat": 91, "lon": 109.8}, "lat"),
        ({"near": "everywhere"}, "near"),
        ({"from": "2026-05-10", "to": "2026-05-09"}, "to"),
        ({"from": "2026-05-01", "to": "2026-07-02"}, "to"),
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"cursor": "bm9w!ZQ"}, "cursor"),  # not base64url: refused as the document's pattern says
    ],
)
def test_open_shifts_refuse_bad_arguments(client, people, query, field) -> None:
    response = client.get(f"{API}/shifts/open", query_string=query, headers=as_(people.me, **EN))
    body = assert_problem(response, 422, "validation_failed")
    assert field in body["errors"]


def test_open_shifts_are_for_volunteers(client, people) -> None:
    assert_problem(client.get(f"{API}/shifts/open", headers=as_(people.organiser_a)), 403, "forbidden")
    assert_problem(client.get(f"{API}/shifts/open"), 401, "unauthorized")


# ----------------------------------------------------------------------------------- my shifts


def test_my_upcoming_shifts_are_live_places_soonest_first(client, tree, people) -> None:
    under_way = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=-HOUR, hours=3), people.me)
    backup = factories.make_assignment(
        factories.make_shift(tree.grid_b, starts_in=2 * DAY, backup_slots=1), people.me, role="backup"
    )
    waitlisted = factories.make_assignment(
        factories.make_shift(tree.grid_a, starts_in=3 * DAY), people.me, status="waitlisted"
    )
    invited = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=DAY), people.me, status="invited")
    withdrawn = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=DAY), people.me)
    end(withdrawn, "withdrawn")
    factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=DAY), people.neighbour)
    factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=-DAY), people.me)  # past

    response = client.get(f"{API}/me/shifts", headers=as_(people.me))
    assert ids(response) == [under_way.id, invited.id, backup.id, waitlisted.id]
    items = response.get_json()["items"]
    assert items[2]["role"] == "backup" and items[2]["shift"]["grid_id"] == tree.grid_b.id
    assert items[3]["waitlist_position"] == 1
    assert items[0]["shift"]["starts_at"].endswith("+00:00")

    paged = walk(client, f"{API}/me/shifts", as_(people.me), limit=1)
    assert [item["id"] for item in paged] == [under_way.id, invited.id, backup.id, waitlisted.id]
    only_withdrawn = client.get(f"{API}/me/shifts?status=withdrawn", headers=as_(people.me))
    assert ids(only_withdrawn) == [withdrawn.id]


def test_my_past_shifts_are_held_missed_and_late_withdrawn_latest_first(client, tree, people) -> None:
    def past(days: int) -> Shift:
        return factories.make_shift(tree.grid_a, starts_in=-days * DAY)

    served = factories.make_assignment(past(1), people.me)
    absent = factories.make_assignment(past(3), people.me)
    end(absent, "absent")
    late = factories.make_assignment(past(2), people.me)
    end(late, "withdrawn", late=True)
    early = factories.make_assignment(past(4), people.me)
    end(early, "withdrawn")
    cancelled = factories.make_assignment(past(5), people.me)
    cancel(cancelled.shift)
    end(cancelled, "cancelled")
    factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=DAY), people.me)  # upcoming

    response = client.get(f"{API}/me/shifts?when=past", headers=as_(people.me))
    assert ids(response) == [served.id, late.id, absent.id]
    assert response.get_json()["items"][1]["late_withdrawal"] is True
    paged = walk(client, f"{API}/me/shifts", as_(people.me), when="past", limit=2)
    assert [item["id"] for item in paged] == [served.id, late.id, absent.id]
    asked = client.get(
        f"{API}/me/shifts", query_string={"when": "past", "status": ["withdrawn", "cancelled"]},
        headers=as_(people.me),
    )
    assert ids(asked) == [late.id, early.id, cancelled.id]


def test_my_shifts_refusals(client, people) -> None:
    assert_problem(client.get(f"{API}/me/shifts", headers=as_(people.staff_a)), 403, "forbidden")
    assert_problem(client.get(f"{API}/me/shifts?when=someday", headers=as_(people.me)), 422, "validation_failed")
    assert_problem(client.get(f"{API}/me/shifts?status=lost", headers=as_(people.me)), 422, "validation_failed")
    no_profile = factories.make_user("volunteer", people.me.home_grid)
    assert_problem(client.get(f"{API}/me/shifts", headers=as_(no_profile)), 404, "volunteer_not_found")


# ----------------------------------------------------------------------------------- area schedule


def test_community_schedule_covers_its_grids_on_local_dates(client, tree, people) -> None:
    day = (utcnow().astimezone(SHANGHAI) + 3 * DAY).date()
    midnight = datetime.combine(day, datetime.min.time())
    late_evening = shift_at(tree.grid_a_east, midnight + timedelta(hours=23, minutes=30))
    morning = shift_at(tree.grid_a, midnight + timedelta(hours=8))
    shift_at(tree.grid_a, midnight + DAY)  # the next day
    shift_at(tree.grid_a, midnight - timedelta(minutes=1))  # the day before
    shift_at(tree.grid_a2, midnight + timedelta(hours=9))  # another community
    called_off = shift_at(tree.grid_a, midnight + timedelta(hours=10))
    cancel(called_off)
    url = f"{API}/areas/{tree.community_a.id}/shifts"
    dates = {"from": day.isoformat(), "to": day.isoformat()}

    assert ids(client.get(url, query_string=dates, headers=as_(people.organiser_a))) == [
        morning.id, late_evening.id
    ]
    with_cancelled = client.get(url, query_string={**dates, "include_cancelled": "true"}, headers=as_(people.staff_a))
    assert ids(with_cancelled) == [morning.id, called_off.id, late_evening.id]
    assert with_cancelled.get_json()["items"][1]["status"] == "cancelled"
    grid_only = client.get(f"{API}/areas/{tree.grid_a.id}/shifts", query_string=dates, headers=as_(people.admin))
    assert ids(grid_only) == [morning.id]
    paged = walk(client, url, as_(people.organiser_a), **dates, include_cancelled="true", limit=1)
    assert [item["id"] for item in paged] == [morning.id, called_off.id, late_evening.id]


def test_schedule_defaults_to_this_week(client, tree, people) -> None:
    tomorrow = factories.make_shift(tree.grid_a, starts_in=DAY)
    factories.make_shift(tree.grid_a, starts_in=10 * DAY)
    url = f"{API}/areas/{tree.community_a.id}/shifts"
    assert ids(client.get(url, headers=as_(people.organiser_a))) == [tomorrow.id]


def test_volunteers_see_schedules_in_their_city_without_names(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_b, starts_in=DAY)
    factories.make_assignment(shift, people.neighbour)
    response = client.get(f"{API}/areas/{tree.district_b.id}/shifts", headers=as_(people.me))
    assert ids(response) == [shift.id]
    assert response.get_json()["items"][0]["primary_count"] == 1
    assert "李四" not in response.get_data(as_text=True)

    elsewhere = other_city_grid()
    body = assert_problem(
        client.get(f"{API}/areas/{elsewhere.id}/shifts", headers=as_(people.me, **EN)), 403, "out_of_scope"
    )
    assert body["detail"] == "The area is outside your city."


def test_schedule_refusals(client, tree, people) -> None:
    for area in (tree.city, tree.district_b, tree.grid_b, tree.community_a2):
        response = client.get(f"{API}/areas/{area.id}/shifts", headers=as_(people.organiser_a))
        assert_problem(response, 403, "out_of_scope")
    assert_problem(client.get(f"{API}/areas/99999999/shifts", headers=as_(people.admin)), 404, "area_not_found")
    url = f"{API}/areas/{tree.grid_a.id}/shifts"
    today = utcnow().astimezone(SHANGHAI).date()
    for query in (
        {"from": "2026-03-10", "to": "2026-03-01"},
        {"from": "2026-01-01", "to": "2026-03-04"},
        {"to": (today + timedelta(days=62)).isoformat()},
        {"to": (today - DAY).isoformat()},
        {"from": "yesterday"},
    ):
        response = client.get(url, query_string=query, headers=as_(people.organiser_a))
        assert_problem(response, 422, "validation_failed")
    assert client.get(url, query_string={"to": (today + timedelta(days=61)).isoformat()},
                      headers=as_(people.organiser_a)).status_code == 200
    assert_problem(client.get(url), 401, "unauthorized")


# ----------------------------------------------------------------------------------- coverage gaps


def test_coverage_gaps_below_minimum_or_missing_a_kind(client, tree, people) -> None:
    police = [{"kind": "volunteer_police", "minimum": 1}]
    stewards = [{"kind": "alley_steward", "minimum": 1}]
    short = factories.make_shift(tree.grid_a, starts_in=3 * HOUR, min_headcount=2)
    factories.make_assignment(short, people.me)
    no_steward = factories.make_shift(tree.grid_a_east, starts_in=2 * HOUR, required_kinds=stewards)
    factories.make_assignment(no_steward, people.me)
    both = factories.make_shift(tree.grid_a, starts_in=5 * HOUR, min_headcount=2, required_kinds=police,
                                backup_slots=2)
    factories.make_assignment(both, people.neighbour, role="backup")  # backups do not count
    under_way = factories.make_shift(tree.grid_a, starts_in=-HOUR, hours=3)
    covered = factories.make_shift(tree.grid_a, starts_in=4 * HOUR, required_kinds=stewards)
    factories.make_assignment(covered, people.steward)
    no_one_needed = factories.make_shift(tree.grid_a, starts_in=HOUR, min_headcount=0)
    called_off = factories.make_shift(tree.grid_a, starts_in=HOUR, min_headcount=2)
    cancel(called_off)
    tomorrow_night = factories.make_shift(tree.grid_a, starts_in=30 * HOUR)
    factories.make_shift(tree.grid_b, starts_in=HOUR)  # outside community A
    factories.make_shift(tree.grid_a, starts_in=-4 * HOUR)  # already over

    response = client.get(f"{API}/coverage-gaps", headers=as_(people.organiser_a))
    assert ids(response) == [under_way.id, no_steward.id, short.id, both.id]
    gaps = {item["id"]: item for item in response.get_json()["items"]}
    assert gaps[under_way.id]["in_progress"] is True
    assert gaps[short.id]["in_progress"] is False
    assert (gaps[short.id]["missing_headcount"], gaps[short.id]["unmet_kinds"]) == (1, [])
    assert (gaps[no_steward.id]["missing_headcount"], gaps[no_steward.id]["unmet_kinds"]) == (0, ["alley_steward"])
    assert gaps[no_steward.id]["required_kinds"] == [
        {"kind": "alley_steward", "minimum": 1, "assigned": 0, "met": False}
    ]
    assert (gaps[both.id]["missing_headcount"], gaps[both.id]["unmet_kinds"]) == (2, ["volunteer_police"])
    assert covered.id not in gaps and no_one_needed.id not in gaps

    two_days = client.get(f"{API}/coverage-gaps?within_hours=48", headers=as_(people.staff_a))
    assert ids(two_days)[-1] == tomorrow_night.id
    grid_east = client.get(f"{API}/coverage-gaps?area_id={tree.grid_a_east.id}", headers=as_(people.organiser_a))
    assert ids(grid_east) == [no_steward.id]


def test_coverage_gaps_page_through_many_shifts_in_few_queries(client, tree, people, monkeypatch) -> None:
    police = [{"kind": "volunteer_police", "minimum": 1}]
    expected = []
    for index in range(12):
        shift = factories.make_shift(tree.grid_a, starts_in=HOUR + index * timedelta(minutes=10),
                                     required_kinds=police)
        if index % 3 == 0:
            factories.make_assignment(shift, people.me)  # covered
        else:
            expected.append(shift.id)
    # Small scan chunks force several rounds per page and gaps across chunk boundaries.
    monkeypatch.setattr(coverage, "GAP_SCAN_CHUNK", 2)
    paged = walk(client, f"{API}/coverage-gaps", as_(people.organiser_a), limit=3)
    assert [item["id"] for item in paged] == expected

    monkeypatch.setattr(coverage, "GAP_SCAN_CHUNK", 500)
    few = count_queries(lambda: client.get(f"{API}/coverage-gaps?limit=100", headers=as_(people.organiser_a)))
    for index in range(60):
        factories.make_shift(tree.grid_a_east, starts_in=2 * HOUR + index * timedelta(minutes=1),
                             required_kinds=police)
    many = count_queries(lambda: client.get(f"{API}/coverage-gaps?limit=100", headers=as_(people.organiser_a)))
    assert many == few


def count_queries(call: Any) -> int:
    """The statements the request ``call`` makes (the setup's roll-ups folded in first, as its
    commit would have: they are the setup's work, not the request's)."""
    factories.fold_into_rollups()
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = call()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 200
    return len(statements)


@pytest.mark.parametrize(
    "values", [["9999-12-31T23:59:59-14:00", 1], ["2026-01-01T00:00:00", 1], [1, 1], ["2026-01-01T00:00:00+00:00", "1"]]
)
@pytest.mark.parametrize("url", ["/me/shifts", "/coverage-gaps"])
def test_odd_cursors_are_refused_not_crashed(client, people, url, values) -> None:
    user = people.me if url == "/me/shifts" else people.admin
    response = client.get(f"{API}{url}", query_string={"cursor": encode_cursor(values)}, headers=as_(user))
    body = assert_problem(response, 422, "validation_failed")
    assert "cursor" in body["errors"]


def test_coverage_gaps_refusals(client, tree, people) -> None:
    for area in (tree.grid_b, tree.city):
        response = client.get(f"{API}/coverage-gaps?area_id={area.id}", headers=as_(people.organiser_a))
        assert_problem(response, 403, "out_of_scope")
    assert_problem(client.get(f"{API}/coverage-gaps", headers=as_(people.me)), 403, "forbidden")
    for query in ("within_hours=0", "within_hours=169", "area_id=99999999", "area_id=x", "cursor=!!"):
        response = client.get(f"{API}/coverage-gaps?{query}", headers=as_(people.admin))
        assert_problem(response, 422, "validation_failed")


# ----------------------------------------------------------------------------------- roster


def test_roster_lists_live_and_ended_places_for_managers(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1, backup_slots=1)
    primary = factories.make_assignment(shift, people.me)
    backup = factories.make_assignment(shift, people.neighbour, role="backup")
    waiting = factories.make_assignment(shift, people.steward, status="waitlisted")
    gone_volunteer = factories.make_volunteer(tree.grid_a, real_name="钱七")
    gone = factories.make_assignment(shift, gone_volunteer, status="waitlisted")
    end(gone, "withdrawn")
    url = f"{API}/shifts/{shift.id}/assignments"

    response = client.get(url, headers=as_(people.organiser_a))
    assert ids(response) == [primary.id, backup.id, waiting.id, gone.id]
    names = [item["volunteer_name"] for item in response.get_json()["items"]]
    assert names == ["王五", "李四", "赵六", "钱七"]
    assert response.get_json()["items"][2]["waitlist_position"] == 1
    assert ids(client.get(url, query_string={"status": ["assigned", "waitlisted"], "role": "primary"},
                          headers=as_(people.staff_a))) == [primary.id, waiting.id]
    assert ids(client.get(f"{url}?role=backup", headers=as_(people.admin))) == [backup.id]
    paged = walk(client, url, as_(people.organiser_a), limit=3)
    assert [item["id"] for item in paged] == [primary.id, backup.id, waiting.id, gone.id]


def test_roster_refusals(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a)
    factories.make_assignment(shift, people.me)
    url = f"{API}/shifts/{shift.id}/assignments"
    assert_problem(client.get(url, headers=as_(people.organiser_b)), 404, "shift_not_found")
    assert_problem(client.get(url, headers=as_(people.me)), 403, "forbidden")
    assert_problem(client.get(f"{API}/shifts/99999999/assignments", headers=as_(people.admin)), 404, "shift_not_found")
    assert_problem(client.get(f"{url}?status=gone", headers=as_(people.admin)), 422, "validation_failed")
    assert_problem(client.get(f"{url}?role=captain", headers=as_(people.admin)), 422, "validation_failed")


def test_local_dates_follow_the_areas_time_zone(client, tree, people) -> None:
    """A grid far west keeps its own wall clock: its schedule's days begin at its midnight."""
    community = factories.make_area(AreaLevel.COMMUNITY, tree.subdistrict_a, timezone="Asia/Urumqi")
    grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(87.6, 43.8),
                               timezone="Asia/Urumqi")
    day: date = (utcnow().astimezone(ZoneInfo("Asia/Urumqi")) + 3 * DAY).date()
    midnight = datetime.combine(day, datetime.min.time())
    just_after = shift_at(grid, midnight + timedelta(minutes=30))
    shift_at(grid, midnight - timedelta(minutes=30))
    response = client.get(
        f"{API}/areas/{grid.id}/shifts", query_string={"from": day.isoformat(), "to": day.isoformat()},
        headers=as_(people.staff_a),
    )
    assert ids(response) == [just_after.id]
    urumqi_half_past_midnight = (midnight + timedelta(minutes=30)).replace(tzinfo=ZoneInfo("Asia/Urumqi"))
    assert response.get_json()["items"][0]["starts_at"] == urumqi_half_past_midnight.astimezone(UTC).isoformat()
