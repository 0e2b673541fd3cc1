"""``GET /areas/locate`` reads plain rows, its boundaries as text, and dumps them by a compiled plan
(issue 19): its answer must be, byte for byte, what the grid's entity and its ancestors dumped by
``LocateResultSchema`` through ``jsonify`` give; the services that keep the entity still get it."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from core.extensions import db
from grids.models import Area, AreaLevel
from grids.schemas import LocateResultSchema
from grids.service import LocatedGrid, locate_grid
from tests import factories
from tests.conftest import Tree


def _ancestors(grid: Area) -> list[dict[str, Any]]:
    chain = []
    area = db.session.get(Area, grid.parent_id)
    while area is not None:
        chain.append({"id": area.id, "level": area.level, "code": area.code, "name": area.name})
        area = db.session.get(Area, area.parent_id) if area.parent_id else None
    return chain[::-1]


def _expected(app: Flask, grid: Area) -> bytes:
    return app.json.response(LocateResultSchema().dump(LocatedGrid(grid, _ancestors(grid)))).get_data()


def test_locate_answers_as_the_entity_dumped_by_the_schema(app: Flask, client: FlaskClient, tree: Tree) -> None:
    tree.grid_a.grid_kind, tree.grid_a.households = "urban", 350
    two_squares = {
        "type": "MultiPolygon",
        "coordinates": [factories.square(120.0, 30.0, 0.1)["coordinates"], factories.square(120.5, 30.0, 0.1)["coordinates"]],
    }
    islands = factories.make_area(AreaLevel.GRID, tree.community_b, boundary=two_squares, timezone="Asia/Urumqi")
    db.session.flush()
    for grid, point in ((tree.grid_a, {"lat": 40.655, "lon": 109.845}), (islands, {"lat": 30.05, "lon": 120.55})):
        for _ in range(2):  # the polygon parsed, then from the cache
            response = client.get("/api/v1/areas/locate", query_string=point)
            assert response.status_code == 200, response.get_data(as_text=True)
            assert response.get_data() == _expected(app, grid)


def test_services_that_keep_the_grid_get_its_entity(tree: Tree) -> None:
    located = locate_grid(109.845, 40.655)
    assert located.grid is db.session.get(Area, tree.grid_a.id)
    assert [a["id"] for a in located.ancestors] == [tree.city.id, tree.district_a.id, tree.subdistrict_a.id, tree.community_a.id]
    assert located.name == tree.grid_a.name
