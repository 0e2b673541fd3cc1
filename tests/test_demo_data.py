"""The demo city seeded by `make run`: valid, non-overlapping grids, working logins, seeded once."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from shapely.geometry import shape

from core.extensions import db
from core.geo import validate_boundary
from demo_data import seed_demo
from grids.models import Area, AreaLevel
from rewards.models import PointRule
from shifts.models import Shift, ShiftSeries
from volunteers.models import Volunteer


def test_demo_city_shape_and_logins(client, app) -> None:
    logins = seed_demo()
    assert logins is not None and set(logins) == {"admin", "staff", "organiser", "volunteer"}
    assert seed_demo() is None  # a second run changes nothing

    grids = db.session.scalars(sa.select(Area).where(Area.level == AreaLevel.GRID)).all()
    assert len(grids) == 20
    shapes = []
    for grid in grids:
        validate_boundary(grid.boundary, app.config["GRID_MAX_VERTICES"])
        shapes.append(shape(grid.boundary))
        assert 40.6 < grid.min_lat < grid.max_lat < 40.7 and 109.8 < grid.min_lon < grid.max_lon < 109.9
    for i, first in enumerate(shapes):
        for second in shapes[i + 1 :]:
            assert first.intersection(second).area < 1e-12  # neighbours share edges, never overlap
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Volunteer)) == 200
    series = db.session.scalars(sa.select(ShiftSeries)).all()
    assert len(series) == 6 and {s.rrule.split(";")[0] for s in series} == {"FREQ=WEEKLY"}
    shifts = db.session.scalars(sa.select(Shift)).all()
    # Mon/Wed/Fri for the 8-week horizon: 23 to 24 occurrences per series, 19:00–21:00 local.
    assert 6 * 23 <= len(shifts) <= 6 * 25
    assert {(s.ends_at - s.starts_at).seconds for s in shifts} == {7200}
    assert [r.version for r in db.session.scalars(sa.select(PointRule))] == [1]

    for grid, polygon in zip(grids, shapes):
        point = polygon.representative_point()
        found = client.get(f"/api/v1/areas/locate?lat={point.y}&lon={point.x}")
        assert found.status_code == 200, found.get_json()
        assert found.get_json()["id"] == grid.id

    for role, login in logins.items():
        response = client.post("/api/v1/auth/login", json={"phone": login["phone"], "password": login["password"]})
        assert response.status_code == 200, (role, response.get_json())
        assert response.get_json()["user"]["role"] == role

    def bearer(role: str) -> dict[str, str]:
        login = {"phone": logins[role]["phone"], "password": logins[role]["password"]}
        return {"Authorization": "Bearer " + client.post("/api/v1/auth/login", json=login).get_json()["access_token"]}

    # The demo volunteer lives in the first district, whose catalogue they may redeem from.
    items = client.get("/api/v1/catalogue-items", headers=bearer("volunteer"))
    assert items.status_code == 200, items.get_json()
    assert len(items.get_json()["items"]) == 3
    city_id = grids[0].path.split("/")[1]
    rule = client.get(f"/api/v1/areas/{city_id}/point-rules/current", headers=bearer("admin"))
    assert rule.status_code == 200, rule.get_json()
    assert rule.get_json()["points_per_hour"] == 10


def test_seed_command_prints_logins_and_is_idempotent(app, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    app.instance_path, original = str(tmp_path), app.instance_path
    try:
        first = runner.invoke(args=["seed-demo"])
        second = runner.invoke(args=["seed-demo"])
    finally:
        app.instance_path = original
    assert first.exit_code == 0 and "Seeded the demo city" in first.output
    assert second.exit_code == 0 and "already present" in second.output
    stored = json.loads((tmp_path / "demo_logins.json").read_text())
    assert stored["organiser"]["password"] in first.output
    assert stored["organiser"]["password"] in second.output
