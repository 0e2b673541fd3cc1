"""Privacy across areas: whom a caller may reach, and ids out of reach answer as ids that do not exist.

Every endpoint that takes another person's id in its body (swaps, assignment, invitations, service
hours, report assignment, report filing, the redemption lists) is asked about (a) an id that does
not exist, (b) people and places out of reach in a sibling community under the same sub-district, a
different district and a second city, and (c) for volunteers, neighbours who are pending or
suspended: the answers must be the same bytes. Each person out of reach is also a trap: they hold a
place that overlaps, is too close to, or is on the very shift in question, or a status that would
be refused, so a rule looked at before the reach check would answer differently.

The world's sibling areas have explicit ids whose paths are string prefixes of each other
(community ``/…/7000004/`` and ``/…/70000043/``, districts ``7000002``/``70000023``, cities
``7000001``/``70000013``), on SQLite and PostgreSQL alike, so a scope test that compared paths
without the trailing slash would let each sibling into the other and fail here.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from accounts.models import User
from core.auth import Caller, Role
from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel
from rewards.catalogue.models import CatalogueItem
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerReason
from shifts.models import Assignment, Shift
from tests import factories
from tests.problems import assert_problem
from volunteers.models import Volunteer

API = "/api/v1"
NO_SUCH_ID = 2_000_000_000

# Sibling ids: the second is the first with a digit appended, so one path is a prefix of the other.
CITY, CITY_2 = 7_000_001, 70_000_013
DISTRICT, DISTRICT_2 = 7_000_002, 70_000_023
COMMUNITY, COMMUNITY_SIBLING = 7_000_004, 70_000_043
GRID, GRID_NEIGHBOUR = 7_000_005, 70_000_053


# --- the scope test itself -------------------------------------------------------------------------


def caller(area_path: str, role: Role = Role.ORGANISER) -> Caller:
    return Caller(user_id=1, role=role, area_path=area_path, session_id="s")


@pytest.mark.parametrize(
    ("scope", "path", "inside"),
    [
        ("/1/2/", "/1/2/", True),
        ("/1/2/", "/1/2/3/", True),
        ("/1/2/", "/1/2/3/45/", True),
        ("/1/2/", "/1/23/", False),  # a sibling whose id starts with ours
        ("/1/2/", "/1/23/4/", False),
        ("/1/2/", "/1/", False),  # the parent
        ("/1/2/", "/12/", False),
        ("/1/2/", "/2/", False),
        ("/1/2/", "", False),
        ("/1/2/", None, False),
        ("/1/", "/1/23/", True),
        ("/1/", "/12/", False),  # a sibling city
        ("/1/", "/12/3/", False),
    ],
)
def test_in_scope_compares_whole_path_segments(scope: str, path: str | None, inside: bool) -> None:
    assert caller(scope).in_scope(path) is inside


# --- the world -------------------------------------------------------------------------------------


class World:
    """City C: district D (sub-district S: community K with grids G and G', and its sibling
    community K″) and district D″; a second city C″.

    Ann (G) offers her place; Bo (G', same community) is within her reach. Out of her reach: Sid
    (K″), Di (D″), Cheng (C″), and in her own community Pan (pending) and Su (suspended); Pei is
    pending in K″ and Ping in C″. Each holds a trap (see the module docstring). Managers: organiser K, staff D,
    admin C, and one of each in the sibling areas.
    """

    def __init__(self) -> None:
        city = self.area(AreaLevel.CITY, None, CITY)
        district = self.area(AreaLevel.DISTRICT, city, DISTRICT)
        subdistrict = self.area(AreaLevel.SUBDISTRICT, district, 7_000_003)
        community = self.area(AreaLevel.COMMUNITY, subdistrict, COMMUNITY)
        grid = self.area(AreaLevel.GRID, community, GRID, square=(109.84, 40.65))
        neighbour_grid = self.area(AreaLevel.GRID, community, GRID_NEIGHBOUR, square=(109.85, 40.65))
        sibling = self.area(AreaLevel.COMMUNITY, subdistrict, COMMUNITY_SIBLING)
        sibling_grid = self.area(AreaLevel.GRID, sibling, 7_000_006, square=(109.86, 40.65))
        district_2 = self.area(AreaLevel.DISTRICT, city, DISTRICT_2)
        community_3 = self.area(
            AreaLevel.COMMUNITY, self.area(AreaLevel.SUBDISTRICT, district_2, 7_000_007), 7_000_008
        )
        district_2_grid = self.area(AreaLevel.GRID, community_3, 7_000_009, square=(109.80, 40.60))
        city_2 = self.area(AreaLevel.CITY, None, CITY_2)
        community_c2 = self.area(
            AreaLevel.COMMUNITY,
            self.area(
                AreaLevel.SUBDISTRICT, self.area(AreaLevel.DISTRICT, city_2, 7_000_010), 7_000_011
            ),
            7_000_012,
        )
        city_2_grid = self.area(AreaLevel.GRID, community_c2, 7_000_014, square=(106.80, 39.65))
        assert sibling.path.startswith(community.path.rstrip("/"))
        assert district_2.path.startswith(district.path.rstrip("/"))
        assert city_2.path.startswith(city.path.rstrip("/"))
        self.city, self.district, self.community, self.grid = city, district, community, grid
        self.sibling_grid, self.city_2_grid = sibling_grid, city_2_grid

        person = factories.make_volunteer
        self.ann = person(grid, real_name="安")
        self.bo = person(neighbour_grid, real_name="波")
        self.sid = person(sibling_grid, real_name="司")
        self.di = person(district_2_grid, real_name="迪")
        self.cheng = person(city_2_grid, real_name="程")
        self.pan = person(neighbour_grid, real_name="潘", status="pending")
        self.su = person(grid, real_name="苏", status="suspended")
        self.pei = person(sibling_grid, real_name="裴", status="pending")
        self.ping = person(city_2_grid, real_name="平", status="pending")

        self.organiser = factories.make_user("organiser", community)
        self.staff = factories.make_user("staff", district)
        self.admin = factories.make_user("admin", city)
        self.organiser_sibling = factories.make_user("organiser", sibling)
        self.staff_2 = factories.make_user("staff", district_2)
        self.admin_2 = factories.make_user("admin", city_2)

        day = timedelta(days=1)
        self.shift = factories.make_shift(grid, starts_in=day, hours=2)
        self.place = factories.make_assignment(self.shift, self.ann)
        # The traps. Sid, Pan, Su and Pei hold places overlapping Ann's shift; Di waits on Ann's
        # very shift; Cheng's place ends 30 minutes before it starts (less than the minimum rest).
        overlapping = day + timedelta(minutes=30)
        self.places: dict[str, Assignment] = {
            "sid": self.hold(self.sid, sibling_grid, overlapping),
            "pan": self.hold(self.pan, neighbour_grid, overlapping),
            "su": self.hold(self.su, grid, overlapping),
            "pei": self.hold(self.pei, sibling_grid, overlapping),
            "ping": self.hold(self.ping, city_2_grid, overlapping),
            "cheng": self.hold(self.cheng, city_2_grid, day - timedelta(hours=2, minutes=30)),
        }
        self.places["di"] = factories.make_assignment(self.shift, self.di, status="waitlisted")
        self.bo_place = self.hold(self.bo, neighbour_grid, day * 3)

    @staticmethod
    def area(
        level: AreaLevel, parent: Area | None, area_id: int, square: tuple[float, float] | None = None
    ) -> Area:
        boundary = factories.square(*square) if square else None
        return factories.make_area(level, parent, area_id=area_id, boundary=boundary)

    @staticmethod
    def hold(volunteer: Volunteer, grid: Area, starts_in: timedelta) -> Assignment:
        return factories.make_assignment(factories.make_shift(grid, starts_in=starts_in), volunteer)

    def strangers_of_volunteers(self) -> dict[str, Volunteer]:
        """Out of Ann's reach: other communities (sibling, district, city) and her inactive neighbours."""
        return {"sid": self.sid, "di": self.di, "cheng": self.cheng, "pan": self.pan, "su": self.su,
                "pei": self.pei, "ping": self.ping}


@pytest.fixture
def world() -> World:
    return World()


def as_(who: Volunteer | User) -> dict[str, str]:
    user = who.user if isinstance(who, Volunteer) else who
    return factories.headers_for(user)


def answer(response: Any) -> tuple[int, str, str | None, bytes]:
    """What a client can tell apart: status, media type, language and the body's bytes."""
    return (
        response.status_code,
        response.mimetype,
        response.headers.get("Content-Language"),
        response.get_data(),
    )


def assert_same(responses: dict[str, Any], baseline: Any) -> None:
    expected = answer(baseline)
    differing = {name: answer(r) for name, r in responses.items() if answer(r) != expected}
    assert not differing, (expected, differing)


# --- swaps: a volunteer reaches the active volunteers of their own community -------------------------


def propose(client: FlaskClient, world: World, to: int, **body: Any) -> Any:
    payload = {"assignment_id": world.place.id, "to_volunteer_id": to, **body}
    return client.post(f"{API}/swap-requests", json=payload, headers=as_(world.ann))


def test_a_swap_reaches_no_one_outside_ones_community_nor_anyone_inactive(client, world) -> None:
    nobody = propose(client, world, NO_SUCH_ID)
    problem = assert_problem(nobody, 422, "validation_failed")
    assert problem["errors"] == {"to_volunteer_id": ["未知的志愿者。"]}
    strangers = world.strangers_of_volunteers()
    assert_same({name: propose(client, world, v.id) for name, v in strangers.items()}, nobody)
    # Naming one of their places as well changes nothing: the person is refused first.
    both = propose(client, world, NO_SUCH_ID, to_assignment_id=NO_SUCH_ID)
    assert_same(
        {
            name: propose(client, world, v.id, to_assignment_id=world.places[name].id)
            for name, v in strangers.items()
        },
        both,
    )
    assert answer(both) == answer(nobody)

    # Within reach it works, and both names are shown to the two of them.
    response = propose(client, world, world.bo.id)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["from_volunteer_name"], body["to_volunteer_name"]) == ("安", "波")


def test_only_a_place_of_the_volunteer_asked_counts_in_an_exchange(client, world) -> None:
    nowhere = propose(client, world, world.bo.id, to_assignment_id=NO_SUCH_ID)
    problem = assert_problem(nowhere, 422, "validation_failed")
    assert problem["errors"] == {"to_assignment_id": ["不是该志愿者的排班。"]}
    others = {name: place.id for name, place in world.places.items()}
    others["ann's own"] = world.place.id
    assert_same(
        {name: propose(client, world, world.bo.id, to_assignment_id=i) for name, i in others.items()},
        nowhere,
    )
    exchange = propose(client, world, world.bo.id, to_assignment_id=world.bo_place.id)
    assert exchange.status_code == 201, exchange.get_json()
    assert exchange.get_json()["to_assignment"]["volunteer_name"] == "波"


def test_another_volunteers_swap_is_not_found_like_one_that_does_not_exist(client, world) -> None:
    swap_id = propose(client, world, world.bo.id).get_json()["id"]
    for action in ("", "/accept", "/decline", "/cancel"):
        method = client.get if not action else client.post
        kwargs: dict[str, Any] = {} if not action else {"json": {}}
        for stranger in (world.sid, world.cheng):
            theirs = method(f"{API}/swap-requests/{swap_id}{action}", headers=as_(stranger), **kwargs)
            missing = method(f"{API}/swap-requests/{NO_SUCH_ID}{action}", headers=as_(stranger), **kwargs)
            assert_problem(missing, 404, "swap_not_found")
            assert answer(theirs) == answer(missing), action


def test_names_are_shown_only_to_those_who_may_see_them(client, world) -> None:
    swap_id = propose(client, world, world.bo.id, to_assignment_id=world.bo_place.id).get_json()["id"]
    # Staff move Bo to the sibling community: Ann and Bo no longer see each other.
    moved = client.patch(
        f"{API}/volunteers/{world.bo.id}",
        json={"home_grid_id": world.sibling_grid.id},
        headers=as_(world.staff),
    )
    assert moved.status_code == 200, moved.get_json()

    def names(who: Volunteer | User, url: str = f"{API}/swap-requests/{swap_id}") -> tuple[Any, ...]:
        response = client.get(url, headers=as_(who))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        body = body["items"][0] if "items" in body else body
        return (
            body["from_volunteer_name"],
            body["from_assignment"]["volunteer_name"],
            body["to_volunteer_name"],
            body["to_assignment"]["volunteer_name"],
        )

    assert names(world.ann) == ("安", "安", None, None)
    assert names(world.ann, f"{API}/swap-requests/mine") == ("安", "安", None, None)
    assert names(world.bo) == (None, None, "波", "波")
    for manager in (world.organiser, world.staff, world.admin):
        assert names(manager) == ("安", "安", "波", "波")
    client.post(f"{API}/swap-requests/{swap_id}/accept", json={}, headers=as_(world.bo))
    assert names(world.staff, f"{API}/swap-requests/awaiting-approval") == ("安", "安", "波", "波")

    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    swap, place = schemas["SwapRequest"]["properties"], schemas["Assignment"]["properties"]
    for field in (swap["from_volunteer_name"], swap["to_volunteer_name"], place["volunteer_name"]):
        assert field.get("nullable") is True or "null" in field.get("type", []), field


# --- organisers, staff and admins reach the volunteers of their subtree ------------------------------


def out_of_reach_of(world: World, manager: User) -> dict[str, Volunteer]:
    """Volunteers whose home grid lies outside ``manager``'s subtree (siblings of each level)."""
    people = {"sid": world.sid, "pei": world.pei, "di": world.di, "cheng": world.cheng, "ping": world.ping}
    caller_path = db.session.get(Area, manager.area_id).path
    return {name: v for name, v in people.items() if not v.home_grid.path.startswith(caller_path)}


MANAGERS = ("organiser", "staff", "admin")


@pytest.mark.parametrize("who", MANAGERS)
@pytest.mark.parametrize("action", ["assign", "invite"])
def test_placing_a_volunteer_out_of_reach_answers_as_an_unknown_id(client, world, who, action) -> None:
    manager = getattr(world, who)
    url = f"{API}/shifts/{world.shift.id}/{action}"

    def place(volunteer_id: int) -> Any:
        return client.post(url, json={"volunteer_id": volunteer_id}, headers=as_(manager))

    nobody = place(NO_SUCH_ID)
    assert assert_problem(nobody, 422, "validation_failed")["errors"] == {"volunteer_id": ["未知的志愿者。"]}
    strangers = out_of_reach_of(world, manager)
    assert {"cheng", "ping"} <= set(strangers)  # everyone has the second city out of reach
    assert_same({name: place(v.id) for name, v in strangers.items()}, nobody)
    assert db.session.get(Shift, world.shift.id).primary_count == 1
    placed = place(world.bo.id)
    assert placed.status_code == 201, placed.get_json()
    assert placed.get_json()["volunteer_name"] == "波"


@pytest.mark.parametrize("who", MANAGERS)
def test_hours_for_a_volunteer_out_of_reach_answer_as_an_unknown_id(client, world, who) -> None:
    manager = getattr(world, who)
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()

    def hours(volunteer_id: int) -> Any:
        body = {"volunteer_id": volunteer_id, "served_on": yesterday, "minutes": 60, "note": "值守"}
        return client.post(f"{API}/service-hours", json=body, headers=as_(manager))

    nobody = hours(NO_SUCH_ID)
    assert assert_problem(nobody, 422, "validation_failed")["errors"] == {"volunteer_id": ["未知的志愿者。"]}
    assert_same({name: hours(v.id) for name, v in out_of_reach_of(world, manager).items()}, nobody)
    assert hours(world.bo.id).status_code == 201


@pytest.mark.parametrize("who", MANAGERS)
def test_a_volunteer_out_of_reach_is_not_found_by_path_too(client, world, who) -> None:
    manager = getattr(world, who)
    nobody = client.get(f"{API}/volunteers/{NO_SUCH_ID}", headers=as_(manager))
    assert_problem(nobody, 404, "volunteer_not_found")
    assert_same(
        {
            name: client.get(f"{API}/volunteers/{v.id}", headers=as_(manager))
            for name, v in out_of_reach_of(world, manager).items()
        },
        nobody,
    )
    assert client.get(f"{API}/volunteers/{world.bo.id}", headers=as_(manager)).status_code == 200


# --- reports ------------------------------------------------------------------------------------------


def file_report(client: FlaskClient, world: World, **extra: Any) -> Any:
    body = {
        "client_id": str(uuid.uuid4()),
        "category": "safety_hazard",
        "level": "yellow",
        "description": "井盖缺失",
        "lat": 40.655,
        "lon": 109.845,
        "accuracy_m": 8.0,
        "device_time": (utcnow() - timedelta(minutes=3)).isoformat(),
        "grid_id": world.grid.id,
        **extra,
    }
    return client.post(f"{API}/reports", json=body, headers=as_(world.ann))


def test_a_report_goes_to_no_one_out_of_reach(client, world) -> None:
    report_id = file_report(client, world).get_json()["id"]
    url = f"{API}/reports/{report_id}/assign"

    def assign(manager: User, assignee_id: int) -> Any:
        return client.post(url, json={"assignee_id": assignee_id}, headers=as_(manager))

    for manager in (world.organiser, world.staff, world.admin):
        nobody = assign(manager, NO_SUCH_ID)
        assert "assignee_id" in assert_problem(nobody, 422, "validation_failed")["errors"]
        elsewhere = (world.organiser_sibling, world.staff_2, world.admin_2, world.sid.user, world.ann.user)
        assert_same({str(user.id): assign(manager, user.id) for user in elsewhere}, nobody)
    assigned = assign(world.staff, world.organiser.id)
    assert assigned.status_code == 200 and assigned.get_json()["assignee_id"] == world.organiser.id


def test_a_report_names_only_ones_own_place(client, world) -> None:
    nowhere = file_report(client, world, assignment_id=NO_SUCH_ID)
    assert_problem(nowhere, 404, "assignment_not_found")
    theirs = {name: place.id for name, place in world.places.items()} | {"bo": world.bo_place.id}
    assert_same({name: file_report(client, world, assignment_id=i) for name, i in theirs.items()}, nowhere)
    assert file_report(client, world, assignment_id=world.place.id).status_code == 201


# --- redemptions --------------------------------------------------------------------------------------


def redeemed(client: FlaskClient, volunteer: Volunteer, area: Area, approver: User) -> dict[str, Any]:
    """``volunteer`` redeems an item of ``area``, and ``approver`` approves it: the redemption as the
    volunteer sees it (with the pickup code)."""
    ledger.append(volunteer.id, 50, LedgerReason.ADJUSTMENT, "test", uuid.uuid4().hex, note="test")
    item = CatalogueItem(area_id=area.id, name="保温杯", description="", points_cost=30, stock=5, active=True)
    db.session.add(item)
    db.session.flush()
    made = client.post(
        f"{API}/catalogue-items/{item.id}/redemptions",
        json={"client_id": str(uuid.uuid4())},
        headers=as_(volunteer),
    )
    assert made.status_code == 201, made.get_json()
    redemption_id = made.get_json()["id"]
    approved = client.post(f"{API}/redemptions/{redemption_id}/approve", headers=as_(approver))
    assert approved.status_code == 200, approved.get_json()
    return client.get(f"{API}/redemptions/{redemption_id}", headers=as_(volunteer)).get_json()


def test_redemptions_of_people_out_of_reach_are_not_found_by_volunteer_or_code(client, world) -> None:
    own = redeemed(client, world.ann, world.district, world.staff)
    foreign = {
        "di": redeemed(client, world.di, world.city, world.admin),
        "cheng": redeemed(client, world.cheng, world.city_2_grid, world.admin_2),
    }

    def listed(query: str) -> Any:
        return client.get(f"{API}/redemptions?{query}", headers=as_(world.staff))

    nobody = listed(f"volunteer_id={NO_SUCH_ID}")
    assert nobody.status_code == 200 and nobody.get_json() == {"items": [], "next_cursor": None}
    assert_same({name: listed(f"volunteer_id={r['volunteer_id']}") for name, r in foreign.items()}, nobody)
    no_code = listed("pickup_code=ZZZZZZZZ")
    assert answer(no_code) == answer(nobody)
    assert_same({name: listed(f"pickup_code={r['pickup_code']}") for name, r in foreign.items()}, no_code)

    found = listed(f"pickup_code={own['pickup_code']}").get_json()["items"]
    assert [(r["id"], r["volunteer_name"]) for r in found] == [(own["id"], "安")]
