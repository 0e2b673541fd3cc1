"""Steward quotas and weekly patrol targets of grids: set per grid or for a community, read, refused."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from core.audit import AuditEntry
from core.extensions import db
from grids.models import Area, AreaLevel, GridPatrolTarget, GridQuota
from tests import factories
from tests.conftest import Tree
from tests.problems import assert_problem

API = "/api/v1"
STEWARDS = {
    "weekly_target_minutes": 840,
    "quotas": [{"kind": "volunteer_police", "min_active": 1}, {"kind": "alley_steward", "min_active": 2}],
}


def _headers(role: str, area: Area) -> dict[str, str]:
    return factories.headers_for(factories.make_user(role, area))


def _put(client: FlaskClient, area: Area, headers: dict[str, str], body: Any = None) -> Any:
    return client.put(f"{API}/areas/{area.id}/quotas", json=STEWARDS if body is None else body, headers=headers)


def _audits(grid: Area) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == "grid.quota_set", AuditEntry.target_id == str(grid.id))
            .order_by(AuditEntry.id)
        )
    )


@pytest.fixture(autouse=True)
def _kinds() -> None:
    factories.kind("volunteer_police")
    factories.kind("alley_steward")


def test_organiser_sets_a_grid_quota_and_reads_it_back(client: FlaskClient, tree: Tree) -> None:
    organiser = _headers("organiser", tree.community_a)
    response = _put(client, tree.grid_a, organiser)
    assert response.status_code == 200, response.get_json()
    [item] = response.get_json()["items"]
    assert item["grid_id"] == tree.grid_a.id
    assert item["weekly_target_minutes"] == 840
    # Sorted by kind code, whatever order they came in.
    assert item["quotas"] == [
        {"kind": "alley_steward", "min_active": 2},
        {"kind": "volunteer_police", "min_active": 1},
    ]
    assert item["updated_at"] is not None

    listed = client.get(f"{API}/areas/{tree.community_a.id}/quotas", headers=organiser).get_json()
    by_grid = {item["grid_id"]: item for item in listed["items"]}
    assert set(by_grid) == {tree.grid_a.id, tree.grid_a_east.id}
    assert by_grid[tree.grid_a.id]["quotas"] == item["quotas"]
    assert by_grid[tree.grid_a_east.id] == {
        "grid_id": tree.grid_a_east.id, "grid_name": tree.grid_a_east.name, "path": tree.grid_a_east.path,
        "weekly_target_minutes": None, "quotas": [], "updated_at": None,
    }
    [entry] = _audits(tree.grid_a)
    assert entry.before == {"weekly_target_minutes": None, "quotas": []}
    assert entry.after["weekly_target_minutes"] == 840


def test_a_community_quota_applies_to_each_of_its_grids_and_replaces_the_old_one(
    client: FlaskClient, tree: Tree
) -> None:
    organiser = _headers("organiser", tree.community_a)
    assert _put(client, tree.grid_a, organiser).status_code == 200
    replaced = {"weekly_target_minutes": None, "quotas": [{"kind": "alley_steward", "min_active": 1}]}
    response = _put(client, tree.community_a, organiser, replaced)
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [item["grid_id"] for item in items] == sorted([tree.grid_a.id, tree.grid_a_east.id])
    for item in items:
        assert item["weekly_target_minutes"] is None
        assert item["quotas"] == [{"kind": "alley_steward", "min_active": 1}]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GridPatrolTarget)) == 0
    assert db.session.scalar(
        sa.select(sa.func.count()).select_from(GridQuota).where(GridQuota.kind_code == "volunteer_police")
    ) == 0
    # The same quota again changes nothing and writes no audit entry.
    assert _put(client, tree.community_a, organiser, replaced).status_code == 200
    assert len(_audits(tree.grid_a)) == 2 and len(_audits(tree.grid_a_east)) == 1
    # The community's other grids only: a sibling community's grid is untouched.
    assert client.get(f"{API}/areas/{tree.grid_a2.id}/quotas", headers=_headers("staff", tree.district_a)
                      ).get_json()["items"][0]["quotas"] == []


def test_staff_list_every_grid_of_their_district_page_by_page(client: FlaskClient, tree: Tree) -> None:
    staff = _headers("staff", tree.district_a)
    first = client.get(f"{API}/areas/{tree.district_a.id}/quotas?limit=2", headers=staff).get_json()
    second = client.get(
        f"{API}/areas/{tree.district_a.id}/quotas?limit=2&cursor={first['next_cursor']}", headers=staff
    ).get_json()
    ids = [item["grid_id"] for item in first["items"] + second["items"]]
    assert ids == [tree.grid_a.id, tree.grid_a_east.id, tree.grid_a2.id]
    assert second["next_cursor"] is None


def test_refusals(client: FlaskClient, tree: Tree) -> None:
    organiser = _headers("organiser", tree.community_a)
    # Another community, another district, the area above: out of scope (areas are public).
    for area in (tree.grid_a2, tree.community_b, tree.district_a):
        assert_problem(_put(client, area, organiser), 403, "out_of_scope")
        assert_problem(client.get(f"{API}/areas/{area.id}/quotas", headers=organiser), 403, "out_of_scope")
    # A volunteer may neither set nor read.
    volunteer = factories.headers_for(factories.make_volunteer(tree.grid_a).user)
    assert_problem(_put(client, tree.grid_a, volunteer), 403, "forbidden")
    assert_problem(client.get(f"{API}/areas/{tree.grid_a.id}/quotas", headers=volunteer), 403, "forbidden")
    assert_problem(client.put(f"{API}/areas/{tree.grid_a.id}/quotas", json=STEWARDS), 401, "unauthorized")
    # No such area; a level other than grid or community.
    assert_problem(
        client.put(f"{API}/areas/2000000000/quotas", json=STEWARDS, headers=organiser), 404, "area_not_found"
    )
    staff = _headers("staff", tree.district_a)
    assert_problem(_put(client, tree.subdistrict_a, staff), 404, "not_grid_or_community")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GridQuota)) == 0


def test_sibling_whose_path_starts_with_ours_is_out_of_scope(client: FlaskClient) -> None:
    city = factories.make_area(AreaLevel.CITY)
    district = factories.make_area(AreaLevel.DISTRICT, city)
    sub = factories.make_area(AreaLevel.SUBDISTRICT, district)
    community = factories.make_area(AreaLevel.COMMUNITY, sub, area_id=8_100_002)
    sibling = factories.make_area(AreaLevel.COMMUNITY, sub, area_id=81_000_023)
    grid = factories.make_area(AreaLevel.GRID, sibling, boundary=factories.square(110.0, 41.0))
    assert grid.path.startswith(community.path.rstrip("/"))
    organiser = _headers("organiser", community)
    assert_problem(_put(client, sibling, organiser), 403, "out_of_scope")
    assert_problem(_put(client, grid, organiser), 403, "out_of_scope")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quotas": []}, "weekly_target_minutes"),
        ({"weekly_target_minutes": 0, "quotas": []}, "weekly_target_minutes"),
        ({"weekly_target_minutes": 1_008_001, "quotas": []}, "weekly_target_minutes"),
        ({"weekly_target_minutes": "840", "quotas": []}, "weekly_target_minutes"),
        ({"weekly_target_minutes": None}, "quotas"),
        ({"weekly_target_minutes": None, "quotas": [{"kind": "alley_steward", "min_active": 0}]}, "quotas"),
        ({"weekly_target_minutes": None, "quotas": [{"kind": "alley_steward", "min_active": 101}]}, "quotas"),
        ({"weekly_target_minutes": None, "quotas": [{"kind": "alley_steward", "min_active": 1},
                                                     {"kind": "alley_steward", "min_active": 2}]}, "quotas"),
        ({"weekly_target_minutes": None, "quotas": [{"kind": "herder_sentinel", "min_active": 1}]}, "quotas"),
        ({"weekly_target_minutes": None, "quotas": [], "grid_id": 1}, "grid_id"),
    ],
)
def test_bad_input_is_422(client: FlaskClient, tree: Tree, body: dict[str, Any], field: str) -> None:
    problem = assert_problem(_put(client, tree.grid_a, _headers("organiser", tree.community_a), body),
                             422, "validation_failed")
    assert field in problem["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GridQuota)) == 0


def test_unknown_kind_names_its_place_in_the_list(client: FlaskClient, tree: Tree) -> None:
    body = {"weekly_target_minutes": None, "quotas": [{"kind": "alley_steward", "min_active": 1},
                                                      {"kind": "herder_sentinel", "min_active": 1}]}
    problem = assert_problem(_put(client, tree.grid_a, _headers("admin", tree.city), body), 422, "validation_failed")
    assert problem["errors"] == {"quotas": {"1": {"kind": ["未知的志愿者类型。"]}}}
