"""Tree writes racing each other on separate connections, with real commits.

A move rewrites a subtree's paths in one UPDATE; a create or another move at the same time must not
leave any area with a path that disagrees with its parent's.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.extensions import db
from grids.models import Area, AreaLevel
from tests import factories, races

pytestmark = pytest.mark.committing


def _at_once(app: Flask, calls: list[tuple[str, str, dict[str, Any]]], headers: dict[str, str]) -> list[int]:
    responses = races.at_once(app, [(method, path, body, headers) for method, path, body in calls])
    return [response.status_code for response in responses]


def _inconsistent_paths() -> list[tuple[int, str]]:
    rows = {
        row.id: row
        for row in db.session.execute(sa.select(Area.id, Area.parent_id, Area.path, Area.depth))
    }
    wrong = []
    for row in rows.values():
        parent = rows.get(row.parent_id)
        expected = (parent.path if parent else "/") + f"{row.id}/"
        if row.path != expected or row.depth != (parent.depth + 1 if parent else 0):
            wrong.append((row.id, row.path))
    return wrong


def test_creates_and_moves_at_once_keep_every_path_consistent(app: Flask) -> None:
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        districts = [factories.make_area(AreaLevel.DISTRICT, city) for _ in range(2)]
        subdistricts = [factories.make_area(AreaLevel.SUBDISTRICT, districts[0]) for _ in range(2)]
        communities = [factories.make_area(AreaLevel.COMMUNITY, subdistricts[0]) for _ in range(2)]
        headers = factories.headers_for(factories.make_user("admin", city))
        ids = {
            "districts": [d.id for d in districts],
            "subdistricts": [s.id for s in subdistricts],
            "communities": [c.id for c in communities],
        }
        db.session.commit()

    for round_number in range(6):
        moving_sub, other_sub = ids["subdistricts"][round_number % 2], ids["subdistricts"][1 - round_number % 2]
        district = ids["districts"][(round_number // 2) % 2]
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("post", f"/api/v1/areas/{moving_sub}/move", {"parent_id": district}),
            ("post", f"/api/v1/areas/{ids['communities'][1]}/move", {"parent_id": other_sub}),
        ]
        calls += [
            (
                "post",
                "/api/v1/areas",
                {
                    "parent_id": ids["communities"][i % 2],
                    "level": "grid",
                    "code": f"RACE-{round_number}-{i}",
                    "name": f"网格{i}",
                    "grid_kind": "urban",
                    "boundary": factories.square(109.8 + i / 100, 40.6 + round_number / 100),
                },
            )
            for i in range(4)
        ]
        statuses = _at_once(app, calls, headers)
        assert all(status in (200, 201) for status in statuses), statuses
        with app.app_context():
            assert _inconsistent_paths() == []
            db.session.remove()

    with app.app_context():
        assert db.session.scalar(
            sa.select(sa.func.count()).select_from(Area).where(Area.level == AreaLevel.GRID.value)
        ) == 24
