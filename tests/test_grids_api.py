"""The area tree over HTTP: public reads, locate, and staff-only writes inside their subtree."""

from __future__ import annotations

import math
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.audit import AuditEntry
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from grids import service
from grids.models import CHILD_LEVEL, Area, AreaLevel
from tests import factories
from tests.conftest import Tree

EN = {"Accept-Language": "en"}


def _headers(role: str, area: Area, **extra: str) -> dict[str, str]:
    return factories.headers_for(factories.make_user(role, area), **extra)


def _count(*conditions: Any) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Area).where(*conditions))


def _audit(action: str, area_id: int) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.action == action, AuditEntry.target_type == "area",
                   AuditEntry.target_id == str(area_id))
            .order_by(AuditEntry.id)
        )
    )


def _grid_body(parent: Area, code: str = "NEW-GRID-1", **overrides: Any) -> dict[str, Any]:
    body = {
        "parent_id": parent.id,
        "level": "grid",
        "code": code,
        "name": "第9网格",
        "grid_kind": "urban",
        "households": 320,
        "boundary": factories.square(109.90, 40.70),
    }
    body.update(overrides)
    return body


# ----------------------------------------------------------------------------------------- reads


def test_get_grid_is_public_and_includes_boundary(client: FlaskClient, tree: Tree) -> None:
    response = client.get(f"/api/v1/areas/{tree.grid_a.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == tree.grid_a.id
    assert body["level"] == "grid"
    assert body["parent_id"] == tree.community_a.id
    assert body["path"] == f"{tree.community_a.path}{tree.grid_a.id}/"
    assert body["boundary"]["type"] == "Polygon"
    assert body["bbox"] == pytest.approx([109.84, 40.65, 109.85, 40.66])
    assert body["version"] == 1
    assert body["created_at"].endswith("+00:00")


def test_get_non_grid_has_no_boundary(client: FlaskClient, tree: Tree) -> None:
    body = client.get(f"/api/v1/areas/{tree.district_a.id}").get_json()
    assert body["name"] == "东河区"
    assert body["boundary"] is None
    assert body["bbox"] is None
    assert body["parent_id"] == tree.city.id


def test_get_unknown_area_is_404_in_chinese_and_english(client: FlaskClient, tree: Tree) -> None:
    response = client.get("/api/v1/areas/999999")
    assert response.status_code == 404
    assert response.get_json()["code"] == "area_not_found"
    assert response.get_json()["title"] == "区域不存在"
    assert client.get("/api/v1/areas/999999", headers=EN).get_json()["title"] == "Area not found"
    for too_large in (2**31, 10**30):
        assert client.get(f"/api/v1/areas/{too_large}").status_code == 404


def test_children_are_paginated_by_id_across_pages(client: FlaskClient, tree: Tree) -> None:
    extra = [
        factories.make_area(AreaLevel.GRID, tree.community_a, boundary=factories.square(109.86 + i / 100, 40.65))
        for i in range(3)
    ]
    expected = sorted([tree.grid_a.id, tree.grid_a_east.id] + [grid.id for grid in extra])
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = client.get(f"/api/v1/areas/{tree.community_a.id}/children", query_string=query)
        assert response.status_code == 200
        body = response.get_json()
        pages += 1
        assert len(body["items"]) <= 2
        for item in body["items"]:
            assert "boundary" not in item
            assert item["parent_id"] == tree.community_a.id
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3


def test_children_of_unknown_area_and_bad_cursor(client: FlaskClient, tree: Tree) -> None:
    assert client.get("/api/v1/areas/999999/children").status_code == 404
    response = client.get(f"/api/v1/areas/{tree.city.id}/children", query_string={"cursor": "garbage!"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"cursor": ["分页游标无效。"]}


def _ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.get_json()
    return {item["id"] for item in response.get_json()["items"]}


def test_list_filters_by_subtree_level_and_parent(client: FlaskClient, tree: Tree) -> None:
    under_a = _ids(client.get("/api/v1/areas", query_string={"under": tree.district_a.id, "limit": 100}))
    assert under_a == {
        tree.district_a.id, tree.subdistrict_a.id, tree.community_a.id, tree.community_a2.id,
        tree.grid_a.id, tree.grid_a_east.id, tree.grid_a2.id,
    }
    grids_under_a = _ids(
        client.get("/api/v1/areas", query_string={"under": tree.district_a.id, "level": "grid"})
    )
    assert grids_under_a == {tree.grid_a.id, tree.grid_a_east.id, tree.grid_a2.id}
    communities = _ids(client.get("/api/v1/areas", query_string={"parent_id": tree.subdistrict_a.id}))
    assert communities == {tree.community_a.id, tree.community_a2.id}
    items = client.get("/api/v1/areas", query_string={"under": tree.city.id}).get_json()["items"]
    assert all("boundary" not in item for item in items)


def test_list_defaults_to_the_callers_subtree_when_signed_in(client: FlaskClient, tree: Tree) -> None:
    staff_b = _headers("staff", tree.district_b)
    own = _ids(client.get("/api/v1/areas", headers=staff_b, query_string={"limit": 100}))
    assert own == {tree.district_b.id, tree.subdistrict_b.id, tree.community_b.id, tree.grid_b.id}
    # Anonymous callers see the whole tree; an explicit `under` wins over the default.
    everything = _ids(client.get("/api/v1/areas", query_string={"limit": 100}))
    assert {tree.city.id, tree.grid_a.id, tree.grid_b.id} <= everything
    elsewhere = _ids(
        client.get("/api/v1/areas", headers=staff_b, query_string={"under": tree.community_a.id})
    )
    assert elsewhere == {tree.community_a.id, tree.grid_a.id, tree.grid_a_east.id}


def test_list_refuses_bad_arguments(client: FlaskClient, tree: Tree) -> None:
    for query in ({"under": 999_999}, {"level": "province"}, {"limit": 0}, {"limit": 101}, {"under": "x"}):
        response = client.get("/api/v1/areas", query_string=query)
        assert response.status_code == 422, query
    response = client.get("/api/v1/areas", query_string={"under": 999_999}, headers=EN)
    assert response.get_json()["errors"] == {"under": ["Unknown area."]}
    assert client.get("/api/v1/areas", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_search_by_name_or_code_prefix(client: FlaskClient, tree: Tree) -> None:
    assert _ids(client.get("/api/v1/areas/search", query_string={"q": "东站"})) == {tree.community_a.id}
    assert _ids(client.get("/api/v1/areas/search", query_string={"q": "1502"})) == {tree.city.id}
    by_level = _ids(client.get("/api/v1/areas/search", query_string={"q": "社区", "level": "community"}))
    assert by_level == {tree.community_a.id, tree.community_a2.id, tree.community_b.id}
    in_b = _ids(client.get("/api/v1/areas/search", query_string={"q": "社区", "under": tree.district_b.id}))
    assert in_b == {tree.community_b.id}
    # LIKE wildcards are matched literally.
    assert _ids(client.get("/api/v1/areas/search", query_string={"q": "%"})) == set()


def test_search_paginates(client: FlaskClient, tree: Tree) -> None:
    first = client.get("/api/v1/areas/search", query_string={"q": "社区", "limit": 2}).get_json()
    second = client.get(
        "/api/v1/areas/search", query_string={"q": "社区", "limit": 2, "cursor": first["next_cursor"]}
    ).get_json()
    assert [item["id"] for item in first["items"] + second["items"]] == sorted(
        [tree.community_a.id, tree.community_a2.id, tree.community_b.id]
    )
    assert second["next_cursor"] is None


@pytest.mark.parametrize("query", [{}, {"q": ""}, {"q": "x" * 51}])
def test_search_needs_a_short_query(client: FlaskClient, tree: Tree, query: dict[str, str]) -> None:
    response = client.get("/api/v1/areas/search", query_string=query)
    assert response.status_code == 422
    assert "q" in response.get_json()["errors"]


def test_locate_inside_a_grid_returns_it_with_its_ancestors(client: FlaskClient, tree: Tree) -> None:
    response = client.get("/api/v1/areas/locate", query_string={"lat": 40.655, "lon": 109.845})
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == tree.grid_a.id
    assert body["name"] == tree.grid_a.name and body["level"] == "grid"
    assert "boundary" not in body
    assert [a["name"] for a in body["ancestors"]] == ["包头市", "东河区", "和平路街道", "东站社区"]
    assert [a["level"] for a in body["ancestors"]] == ["city", "district", "subdistrict", "community"]
    assert body["ancestors"][0] == {"id": tree.city.id, "level": "city", "code": "150200", "name": "包头市"}


def test_locate_outside_every_grid_is_404(client: FlaskClient, tree: Tree) -> None:
    response = client.get("/api/v1/areas/locate", query_string={"lat": 41.5, "lon": 111.0})
    assert response.status_code == 404
    assert response.get_json()["code"] == "no_grid_here"
    assert response.get_json()["title"] == "该位置不在任何网格内"
    english = client.get("/api/v1/areas/locate", query_string={"lat": 41.5, "lon": 111.0}, headers=EN)
    assert english.get_json()["detail"] == "No grid contains this point."


def test_locate_inside_the_bbox_but_outside_the_polygon_is_404(client: FlaskClient, tree: Tree) -> None:
    triangle = {"type": "Polygon", "coordinates": [[[120.0, 30.0], [121.0, 30.0], [120.0, 31.0], [120.0, 30.0]]]}
    factories.make_area(AreaLevel.GRID, tree.community_b, boundary=triangle)
    assert client.get("/api/v1/areas/locate", query_string={"lat": 30.9, "lon": 120.9}).status_code == 404
    assert client.get("/api/v1/areas/locate", query_string={"lat": 30.1, "lon": 120.1}).status_code == 200


def test_locate_on_a_shared_border_picks_the_lower_id(client: FlaskClient, tree: Tree) -> None:
    west = {"type": "Polygon", "coordinates": [[[100.5, 30.5], [100.75, 30.5], [100.75, 30.75], [100.5, 30.75], [100.5, 30.5]]]}
    east = {"type": "Polygon", "coordinates": [[[100.75, 30.5], [101.0, 30.5], [101.0, 30.75], [100.75, 30.75], [100.75, 30.5]]]}
    first = factories.make_area(AreaLevel.GRID, tree.community_b, boundary=west)
    factories.make_area(AreaLevel.GRID, tree.community_b, boundary=east)
    for _ in range(2):  # the same answer every time
        response = client.get("/api/v1/areas/locate", query_string={"lat": 30.625, "lon": 100.75})
        assert response.get_json()["id"] == first.id
    east_side = client.get("/api/v1/areas/locate", query_string={"lat": 30.625, "lon": 100.8})
    assert east_side.get_json()["id"] != first.id


def test_locate_follows_a_changed_boundary(client: FlaskClient, tree: Tree) -> None:
    staff = _headers("staff", tree.district_b)
    point = {"lat": 45.05, "lon": 100.05}
    assert client.get("/api/v1/areas/locate", query_string=point).status_code == 404
    response = client.patch(
        f"/api/v1/areas/{tree.grid_b.id}", json={"boundary": factories.square(100.0, 45.0, 0.1)}, headers=staff
    )
    assert response.status_code == 200
    assert client.get("/api/v1/areas/locate", query_string=point).get_json()["id"] == tree.grid_b.id


@pytest.mark.parametrize(
    "query",
    [{"lat": 91, "lon": 109}, {"lat": 40, "lon": -180.5}, {"lat": "nan", "lon": 109}, {"lat": 40}, {"lon": 1}],
)
def test_locate_refuses_bad_coordinates(client: FlaskClient, tree: Tree, query: dict[str, Any]) -> None:
    assert client.get("/api/v1/areas/locate", query_string=query).status_code == 422


# ---------------------------------------------------------------------------------------- create


def test_staff_creates_a_community_that_inherits_the_timezone(client: FlaskClient, tree: Tree) -> None:
    tree.subdistrict_a.timezone = "Asia/Urumqi"
    staff = factories.make_user("staff", tree.district_a)
    body = {"parent_id": tree.subdistrict_a.id, "level": "community", "code": "C-NEW_1", "name": " 新社区 "}
    response = client.post("/api/v1/areas", json=body, headers=factories.headers_for(staff))
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["path"] == f"{tree.subdistrict_a.path}{created['id']}/"
    assert created["depth"] == tree.subdistrict_a.depth + 1
    assert created["name"] == "新社区"
    assert created["timezone"] == "Asia/Urumqi"
    assert created["grid_kind"] is None and created["boundary"] is None
    [entry] = _audit("area.create", created["id"])
    assert entry.actor_id == staff.id
    assert entry.actor_role == "staff"
    assert entry.area_path == created["path"]
    assert entry.after["code"] == "C-NEW_1"


def test_staff_creates_a_grid_with_a_boundary(client: FlaskClient, tree: Tree) -> None:
    boundary = {"type": "Polygon", "coordinates": [[[110, 41], [110.01, 41], [110.01, 41.01], [110, 41]]]}
    response = client.post(
        "/api/v1/areas",
        json=_grid_body(tree.community_a, boundary=boundary, timezone="Asia/Shanghai"),
        headers=_headers("staff", tree.district_a),
    )
    assert response.status_code == 201, response.get_json()
    grid = response.get_json()
    assert grid["bbox"] == [110.0, 41.0, 110.01, 41.01]
    assert grid["boundary"]["coordinates"][0][0] == [110.0, 41.0]
    assert grid["grid_kind"] == "urban" and grid["households"] == 320 and grid["version"] == 1
    [entry] = _audit("area.create", grid["id"])
    # The audit keeps a summary of the polygon, not its vertices.
    assert entry.after["boundary"] == {
        "type": "Polygon", "polygons": 1, "vertices": 4, "bbox": [110.0, 41.0, 110.01, 41.01]
    }
    located = client.get("/api/v1/areas/locate", query_string={"lat": 41.001, "lon": 110.002})
    assert located.get_json()["id"] == grid["id"]


def test_admin_creates_a_district_under_the_city(client: FlaskClient, tree: Tree) -> None:
    body = {"parent_id": tree.city.id, "level": "district", "code": "150203", "name": "青山区"}
    response = client.post("/api/v1/areas", json=body, headers=_headers("admin", tree.city))
    assert response.status_code == 201
    assert response.get_json()["depth"] == 1


def test_staff_cannot_create_in_another_district(client: FlaskClient, tree: Tree) -> None:
    body = {"parent_id": tree.subdistrict_b.id, "level": "community", "code": "C-X", "name": "越界社区"}
    response = client.post("/api/v1/areas", json=body, headers=_headers("staff", tree.district_a))
    assert response.status_code == 403
    assert response.get_json()["code"] == "out_of_scope"
    assert _count(Area.code == "C-X") == 0
    # Nor above their own area.
    body = {"parent_id": tree.city.id, "level": "district", "code": "D-X", "name": "新区"}
    assert client.post("/api/v1/areas", json=body, headers=_headers("staff", tree.district_a)).status_code == 403
    assert _count(Area.code == "D-X") == 0


@pytest.mark.parametrize("role", ["organiser", "volunteer"])
def test_organisers_and_volunteers_cannot_write(client: FlaskClient, tree: Tree, role: str) -> None:
    headers = _headers(role, tree.community_a if role == "organiser" else tree.grid_a)
    response = client.post("/api/v1/areas", json=_grid_body(tree.community_a), headers=headers)
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"
    patch = client.patch(f"/api/v1/areas/{tree.grid_a.id}", json={"name": "改名"}, headers=headers)
    assert patch.status_code == 403
    move = client.post(
        f"/api/v1/areas/{tree.grid_a.id}/move", json={"parent_id": tree.community_a2.id}, headers=headers
    )
    assert move.status_code == 403
    db.session.expire_all()
    assert _count(Area.code == "NEW-GRID-1") == 0
    assert tree.grid_a.name != "改名" and tree.grid_a.parent_id == tree.community_a.id


def test_anonymous_writes_need_a_token(client: FlaskClient, tree: Tree) -> None:
    assert client.post("/api/v1/areas", json=_grid_body(tree.community_a)).status_code == 401
    assert client.patch(f"/api/v1/areas/{tree.grid_a.id}", json={"name": "x"}).status_code == 401


@pytest.mark.parametrize(
    ("parent_attr", "level"),
    [("subdistrict_a", "grid"), ("community_a", "community"), ("grid_a", "grid"), ("district_a", "city")],
)
def test_level_must_be_the_one_below_the_parent(
    client: FlaskClient, tree: Tree, parent_attr: str, level: str
) -> None:
    body = _grid_body(getattr(tree, parent_attr), level=level)
    response = client.post("/api/v1/areas", json=body, headers=_headers("staff", tree.district_a, **EN))
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"level": ["The level must be the one directly below the parent's."]}
    assert _count(Area.code == "NEW-GRID-1") == 0


def test_non_grids_carry_no_grid_attributes(client: FlaskClient, tree: Tree) -> None:
    body = {
        "parent_id": tree.subdistrict_a.id, "level": "community", "code": "C-1", "name": "社区",
        "boundary": factories.square(109, 40), "grid_kind": "urban", "households": 10,
    }
    response = client.post("/api/v1/areas", json=body, headers=_headers("staff", tree.district_a))
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "boundary": ["只有网格才有此字段。"], "grid_kind": ["只有网格才有此字段。"], "households": ["只有网格才有此字段。"],
    }


def test_grids_need_a_boundary_and_a_kind(client: FlaskClient, tree: Tree) -> None:
    body = _grid_body(tree.community_a)
    del body["boundary"], body["grid_kind"]
    response = client.post("/api/v1/areas", json=body, headers=_headers("staff", tree.district_a))
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"boundary", "grid_kind"}


def _ring_with(vertices: int) -> dict[str, Any]:
    ring = [
        [109.9 + 0.01 * math.cos(2 * math.pi * i / vertices), 40.7 + 0.01 * math.sin(2 * math.pi * i / vertices)]
        for i in range(vertices)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


INVALID_BOUNDARIES = {
    "open ring": (
        {"type": "Polygon", "coordinates": [[[109.9, 40.7], [109.91, 40.7], [109.91, 40.71], [109.9, 40.71]]]},
        "Each ring must be closed.",
    ),
    "bow-tie": (
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
        "Boundary is not a valid polygon (self-intersecting or degenerate).",
    ),
    "out of range": (
        {"type": "Polygon", "coordinates": [[[190, 40], [191, 40], [191, 41], [190, 40]]]},
        "Coordinates are outside WGS84 ranges.",
    ),
    "too many vertices": (_ring_with(2000), "Boundary has more than 2000 vertices."),
    "wrong type": ({"type": "Point", "coordinates": [109.9, 40.7]}, "Boundary must be a GeoJSON Polygon or MultiPolygon."),
    "text coordinates": (
        {"type": "Polygon", "coordinates": [[["109", "40"], [110, 40], [110, 41], ["109", "40"]]]},
        "Each position must be [longitude, latitude].",
    ),
}


@pytest.mark.parametrize("case", list(INVALID_BOUNDARIES), ids=str)
def test_invalid_boundaries_are_refused(client: FlaskClient, tree: Tree, case: str) -> None:
    boundary, message = INVALID_BOUNDARIES[case]
    staff = factories.make_user("staff", tree.district_a)
    response = client.post(
        "/api/v1/areas", json=_grid_body(tree.community_a, boundary=boundary), headers=factories.headers_for(staff, **EN)
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"boundary": [message]}
    patch = client.patch(
        f"/api/v1/areas/{tree.grid_a.id}", json={"boundary": boundary}, headers=factories.headers_for(staff)
    )
    assert patch.status_code == 422
    assert patch.get_json()["errors"]["boundary"][0] != message  # shown in Chinese by default
    assert _count(Area.code == "NEW-GRID-1") == 0
    db.session.expire_all()
    assert tree.grid_a.version == 1


def test_a_boundary_at_the_vertex_limit_is_accepted(client: FlaskClient, tree: Tree) -> None:
    response = client.post(
        "/api/v1/areas", json=_grid_body(tree.community_a, boundary=_ring_with(1999)),
        headers=_headers("staff", tree.district_a),
    )
    assert response.status_code == 201


def test_boundary_that_is_not_an_object(client: FlaskClient, tree: Tree) -> None:
    response = client.post(
        "/api/v1/areas", json=_grid_body(tree.community_a, boundary="POLYGON((0 0, 1 0, 1 1, 0 0))"),
        headers=_headers("staff", tree.district_a),
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"boundary": ["不是有效的对象。"]}


def test_unknown_timezone(client: FlaskClient, tree: Tree) -> None:
    body = _grid_body(tree.community_a, timezone="Mars/Olympus_Mons")
    headers = _headers("staff", tree.district_a)
    response = client.post("/api/v1/areas", json=body, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"timezone": ["未知的时区。"]}
    english = client.post("/api/v1/areas", json=body, headers={**headers, **EN})
    assert english.get_json()["errors"] == {"timezone": ["Unknown time zone."]}


def test_duplicate_code_is_409(client: FlaskClient, tree: Tree) -> None:
    headers = _headers("staff", tree.district_a)
    assert client.post("/api/v1/areas", json=_grid_body(tree.community_a), headers=headers).status_code == 201
    again = client.post("/api/v1/areas", json=_grid_body(tree.community_a2), headers=headers)
    assert again.status_code == 409
    assert again.get_json()["code"] == "area_code_taken"
    assert again.get_json()["title"] == "区域编码已被使用"
    assert _count(Area.code == "NEW-GRID-1") == 1


def test_a_unique_violation_at_flush_is_a_409(client: FlaskClient, tree: Tree, app: Flask) -> None:
    # The race the pre-check cannot see: another transaction inserts the code in between.
    area = Area(level="grid", code=tree.grid_b.code, name="x", path="/race/", depth=4, version=1)
    with pytest.raises(Conflict) as raised:
        service._flush_new_area(area)
    assert raised.value.code == "area_code_taken"
    assert db.session.get(Area, tree.grid_b.id) is not None  # the savepoint kept the session usable


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"code": "has space"}, "code"),
        ({"code": "x" * 33}, "code"),
        ({"code": "C-1\n"}, "code"),  # `$` alone would let a trailing newline through
        ({"name": "   "}, "name"),
        ({"name": "名" * 101}, "name"),
        ({"households": -1}, "households"),
        ({"households": 100_001}, "households"),
        ({"grid_kind": "lunar"}, "grid_kind"),
        ({"parent_id": 999_999}, "parent_id"),
        ({"parent_id": "1"}, "parent_id"),
        ({"level": "province"}, "level"),
    ],
)
def test_create_refuses_bad_fields(client: FlaskClient, tree: Tree, change: dict[str, Any], field: str) -> None:
    body = _grid_body(tree.community_a) | change
    response = client.post("/api/v1/areas", json=body, headers=_headers("staff", tree.district_a))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert _count(Area.name == "第9网格") == 0


# ---------------------------------------------------------------------------------------- update


def test_patch_changes_only_given_fields_and_bumps_version_on_boundary(client: FlaskClient, tree: Tree) -> None:
    staff = factories.make_user("staff", tree.district_a)
    new_boundary = factories.square(109.84, 40.65, 0.02)
    response = client.patch(
        f"/api/v1/areas/{tree.grid_a.id}",
        json={"name": "东站第1网格", "boundary": new_boundary, "households": 400},
        headers=factories.headers_for(staff),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["name"] == "东站第1网格" and body["households"] == 400
    assert body["version"] == 2
    assert body["bbox"] == pytest.approx([109.84, 40.65, 109.86, 40.67])
    assert body["code"] == tree.grid_a.code and body["grid_kind"] == "urban"
    [entry] = _audit("area.update", tree.grid_a.id)
    assert entry.actor_id == staff.id
    assert set(entry.before) == {"name", "households", "version", "boundary"}
    assert entry.after["version"] == 2 and entry.after["boundary"]["vertices"] == 5
    assert "coordinates" not in entry.after["boundary"]


def test_patch_without_differences_writes_nothing(client: FlaskClient, tree: Tree) -> None:
    before = client.get(f"/api/v1/areas/{tree.grid_a.id}").get_json()
    response = client.patch(
        f"/api/v1/areas/{tree.grid_a.id}",
        json={"name": before["name"], "boundary": before["boundary"]},
        headers=_headers("staff", tree.district_a),
    )
    assert response.status_code == 200
    assert response.get_json()["updated_at"] == before["updated_at"]
    assert response.get_json()["version"] == 1
    assert _audit("area.update", tree.grid_a.id) == []


def test_patch_refusals(client: FlaskClient, tree: Tree) -> None:
    staff_a = _headers("staff", tree.district_a)
    out = client.patch(f"/api/v1/areas/{tree.grid_b.id}", json={"name": "x"}, headers=staff_a)
    assert out.status_code == 403 and out.get_json()["code"] == "out_of_scope"
    not_grid = client.patch(f"/api/v1/areas/{tree.community_a.id}", json={"households": 3}, headers=staff_a)
    assert not_grid.status_code == 422 and "households" in not_grid.get_json()["errors"]
    taken = client.patch(f"/api/v1/areas/{tree.grid_a.id}", json={"code": tree.grid_b.code}, headers=staff_a)
    assert taken.status_code == 409 and taken.get_json()["code"] == "area_code_taken"
    assert client.patch("/api/v1/areas/999999", json={"name": "x"}, headers=staff_a).status_code == 404
    db.session.expire_all()
    assert tree.grid_b.name != "x"
    assert tree.community_a.households is None
    assert _audit("area.update", tree.grid_a.id) == []


def test_patch_code_and_timezone(client: FlaskClient, tree: Tree) -> None:
    response = client.patch(
        f"/api/v1/areas/{tree.community_a.id}", json={"code": "DZ-001", "timezone": "Asia/Urumqi"},
        headers=_headers("staff", tree.district_a),
    )
    assert response.status_code == 200
    assert response.get_json()["code"] == "DZ-001" and response.get_json()["timezone"] == "Asia/Urumqi"
    assert response.get_json()["version"] == 1


# ------------------------------------------------------------------------------------------ move


def _paths() -> dict[int, tuple[int | None, str, int]]:
    return {
        row.id: (row.parent_id, row.path, row.depth)
        for row in db.session.execute(sa.select(Area.id, Area.parent_id, Area.path, Area.depth))
    }


def test_move_rewrites_the_paths_of_the_whole_subtree(client: FlaskClient, tree: Tree) -> None:
    other_sub = factories.make_area(AreaLevel.SUBDISTRICT, tree.district_a, name="二街道")
    deep = factories.make_area(AreaLevel.GRID, tree.community_a2, boundary=factories.square(109.9, 40.6))
    staff = factories.make_user("staff", tree.district_a)
    untouched = {k: v for k, v in _paths().items() if k not in (tree.community_a2.id, tree.grid_a2.id, deep.id)}

    response = client.post(
        f"/api/v1/areas/{tree.community_a2.id}/move", json={"parent_id": other_sub.id},
        headers=factories.headers_for(staff),
    )
    assert response.status_code == 200, response.get_json()
    moved = response.get_json()
    new_prefix = f"{other_sub.path}{tree.community_a2.id}/"
    assert moved["parent_id"] == other_sub.id and moved["path"] == new_prefix
    db.session.expire_all()
    after = _paths()
    assert after[tree.grid_a2.id] == (tree.community_a2.id, f"{new_prefix}{tree.grid_a2.id}/", 4)
    assert after[deep.id] == (tree.community_a2.id, f"{new_prefix}{deep.id}/", 4)
    assert {k: v for k, v in after.items() if k in untouched} == untouched
    children = client.get(f"/api/v1/areas/{other_sub.id}/children").get_json()["items"]
    assert [child["id"] for child in children] == [tree.community_a2.id]
    [entry] = _audit("area.move", tree.community_a2.id)
    assert entry.actor_id == staff.id
    assert entry.before["parent_id"] == tree.subdistrict_a.id
    assert entry.after == {"parent_id": other_sub.id, "path": new_prefix, "depth": 3, "subtree_size": 3}


def test_admin_moves_across_districts_but_staff_cannot(client: FlaskClient, tree: Tree) -> None:
    staff_a = _headers("staff", tree.district_a)
    refused = client.post(
        f"/api/v1/areas/{tree.community_a.id}/move", json={"parent_id": tree.subdistrict_b.id}, headers=staff_a
    )
    assert refused.status_code == 403 and refused.get_json()["code"] == "out_of_scope"
    pulled = client.post(
        f"/api/v1/areas/{tree.community_b.id}/move", json={"parent_id": tree.subdistrict_a.id}, headers=staff_a
    )
    assert pulled.status_code == 403
    db.session.expire_all()
    assert tree.community_a.parent_id == tree.subdistrict_a.id
    assert tree.community_b.parent_id == tree.subdistrict_b.id

    admin = _headers("admin", tree.city)
    response = client.post(
        f"/api/v1/areas/{tree.community_a.id}/move", json={"parent_id": tree.subdistrict_b.id}, headers=admin
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert tree.grid_a.path == f"{tree.subdistrict_b.path}{tree.community_a.id}/{tree.grid_a.id}/"
    assert _count(service.in_subtree(Area.path, tree.district_b.path)) == 7


def test_move_into_its_own_subtree_is_refused(client: FlaskClient, tree: Tree) -> None:
    response = client.post(
        f"/api/v1/areas/{tree.subdistrict_a.id}/move", json={"parent_id": tree.community_a.id},
        headers=_headers("admin", tree.city, **EN),
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"parent_id": ["An area cannot move into its own subtree."]}
    db.session.expire_all()
    assert tree.subdistrict_a.parent_id == tree.district_a.id


def test_move_refusals(client: FlaskClient, tree: Tree) -> None:
    staff_a = _headers("staff", tree.district_a)
    own_root = client.post(
        f"/api/v1/areas/{tree.district_a.id}/move", json={"parent_id": tree.city.id}, headers=staff_a
    )
    assert own_root.status_code == 403 and own_root.get_json()["code"] == "own_area_move"
    wrong_level = client.post(
        f"/api/v1/areas/{tree.grid_a.id}/move", json={"parent_id": tree.subdistrict_a.id}, headers=staff_a
    )
    assert wrong_level.status_code == 422 and "parent_id" in wrong_level.get_json()["errors"]
    city = client.post(
        f"/api/v1/areas/{tree.city.id}/move", json={"parent_id": tree.district_a.id},
        headers=_headers("admin", tree.city),
    )
    assert city.status_code == 403  # the admin's own root
    unknown = client.post(f"/api/v1/areas/{tree.grid_a.id}/move", json={"parent_id": 999_999}, headers=staff_a)
    assert unknown.status_code == 422
    assert client.post("/api/v1/areas/999999/move", json={"parent_id": tree.city.id}, headers=staff_a).status_code == 404
    assert _audit("area.move", tree.grid_a.id) == []


def test_move_to_the_same_parent_changes_nothing(client: FlaskClient, tree: Tree) -> None:
    before = client.get(f"/api/v1/areas/{tree.grid_a.id}").get_json()
    response = client.post(
        f"/api/v1/areas/{tree.grid_a.id}/move", json={"parent_id": tree.community_a.id},
        headers=_headers("staff", tree.district_a),
    )
    assert response.status_code == 200
    assert response.get_json()["updated_at"] == before["updated_at"]
    assert _audit("area.move", tree.grid_a.id) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    moves=st.lists(
        st.tuples(st.integers(0, 50), st.integers(0, 50), st.booleans()), min_size=1, max_size=12
    )
)
def test_any_sequence_of_moves_keeps_paths_consistent(
    tree: Tree, moves: list[tuple[int, int, bool]]
) -> None:
    areas = db.session.scalars(sa.select(Area).order_by(Area.id)).all()
    movable = [area for area in areas if area.level != AreaLevel.CITY]
    for area_index, parent_index, any_parent in moves:
        area = movable[area_index % len(movable)]
        # Mostly parents of the right level (real moves), sometimes any area (refusals).
        fitting = [a for a in areas if CHILD_LEVEL.get(AreaLevel(a.level)) == area.level]
        candidates = areas if any_parent else fitting
        parent = candidates[parent_index % len(candidates)]
        try:
            service.move_area(None, area, parent.id)
        except ValidationFailed:
            assert any_parent
    db.session.expire_all()
    rows = _paths()
    for area_id, (parent_id, path, depth) in rows.items():
        if parent_id is None:
            assert (path, depth) == (f"/{area_id}/", 0)
        else:
            assert path == f"{rows[parent_id][1]}{area_id}/"
            assert depth == rows[parent_id][2] + 1
