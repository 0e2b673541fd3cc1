"""The coverage map through the test client: the map's data is the API's coverage report for the
same caller over the grids' stored boundaries, each grid linked to its participation page; the
scope refusals and junk periods."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from shapely.geometry import Point, shape

from tests import factories
from tests.conftest import Tree
from tests.console.report_world import SEPTEMBER, World, html, september
from tests.console.support import signed_in

PAGE = "/console/coverage_map/"
API = "/api/v1/reports/coverage"


@pytest.fixture
def world(tree: Tree) -> World:
    return september(tree)


def _data(page: Any) -> dict[str, Any]:
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    (block,) = html(page).xpath("//script[@id='coverage-map-data']")
    return json.loads(block.text)


def test_the_map_draws_the_apis_coverage_of_each_grid_over_its_boundary(client: FlaskClient, world: World) -> None:
    tree = world.tree
    staff = factories.make_user("staff", tree.district_a)
    api = client.get(API, query_string={"area_id": tree.district_a.id, **SEPTEMBER}, headers=factories.headers_for(staff))
    report = api.get_json()
    page = signed_in(client, staff).get(PAGE, query_string={"area": tree.district_a.id, **SEPTEMBER})
    data = _data(page)
    doc = html(page)
    assert doc.xpath("//*[@data-test='coverage-map']")[0].get("id") == "coverage-map"
    by_id = {grid["grid_id"]: grid for grid in report["grids"]}
    assert set(by_id) == {tree.grid_a.id, tree.grid_a_east.id, tree.grid_a2.id}
    features = {feature["properties"]["name"]: feature for feature in data["geojson"]["features"]}
    assert data["geojson"]["type"] == "FeatureCollection" and set(features) == {str(grid_id) for grid_id in by_id}
    for grid in data["grids"]:
        expected = by_id[grid["grid_id"]]
        feature = features[grid["name"]]
        assert grid["name"] == str(grid["grid_id"])
        assert feature["properties"]["grid_name"] == grid["grid_name"] == expected["grid_name"]
        assert feature["geometry"] == next(area for area in (tree.grid_a, tree.grid_a_east, tree.grid_a2)
                                           if area.id == grid["grid_id"]).boundary
        assert grid["coverage_pct"] == expected["coverage_pct"]
        assert grid["served_hours"] == round(expected["served_minutes"] / 60, 1)
        assert grid["expected_hours"] == round(expected["expected_minutes"] / 60, 1)
        assert shape(feature["geometry"]).contains(Point(grid["point"]))  # where a click lands on the grid
        link = urlsplit(grid["url"])
        assert link.path == "/console/participation/"
        assert parse_qs(link.query) == {"area": [str(grid["grid_id"])], "period": ["month"], "value": ["2026-09"]}
    assert by_id[tree.grid_a.id]["coverage_pct"] == round(210 * 100 / (3 * 120 + 2 * 120), 1)  # not all zeros
    rows = doc.xpath("//tr[@data-test='grid-row']")
    assert [int(row.get("data-id")) for row in rows] == [grid["grid_id"] for grid in report["grids"]]  # weakest first


def test_a_grid_and_the_callers_own_area_by_default(client: FlaskClient, world: World) -> None:
    organiser = factories.make_user("organiser", world.tree.community_a)
    console = signed_in(client, organiser)
    data = _data(console.get(PAGE))
    assert {grid["grid_id"] for grid in data["grids"]} == {world.tree.grid_a.id, world.tree.grid_a_east.id}
    one = _data(console.get(PAGE, query_string={"area": world.tree.grid_a.id}))
    assert [grid["grid_id"] for grid in one["grids"]] == [world.tree.grid_a.id]


def test_an_area_outside_the_callers_subtree_is_the_403_page(client: FlaskClient, world: World) -> None:
    tree = world.tree
    console = signed_in(client, factories.make_user("organiser", tree.community_a))
    for area in (tree.community_a2, tree.subdistrict_a, tree.grid_b, tree.city):
        page = console.get(PAGE, query_string={"area": area.id})
        assert page.status_code == 403, area.name
        assert "coverage-map-data" not in page.get_data(as_text=True)


@pytest.mark.parametrize("query", [
    {"period": "month", "value": "2026-13"},
    {"period": "year", "value": "1999"},
    {"period": "range", "from": "2026-09-10", "to": "2026-09-01"},
    {"period": "range", "from": "2020-01-01", "to": "2026-09-01"},
    {"area": "-1"},
    {"area": "x"},
    "area=%ED%A0%80",
    {"series": "day"},
])
def test_junk_in_the_query_is_a_4xx_page(client: FlaskClient, tree: Tree, query: dict[str, str] | str) -> None:
    console = signed_in(client, factories.make_user("staff", tree.district_a))
    page = console.get(PAGE, query_string=query)
    assert 400 <= page.status_code < 500, (query, page.status_code)
    assert "text/html" in page.content_type
