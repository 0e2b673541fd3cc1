"""The harness itself: each test is rolled back, so the next one sees nothing."""

from __future__ import annotations

import sqlalchemy as sa

from core.extensions import db
from grids.models import Area, AreaLevel
from tests import factories


def _count_probe_areas() -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(Area.code == "ROLLBACK-PROBE"))


def test_a_write_is_visible_inside_its_test() -> None:
    factories.make_area(AreaLevel.CITY, code="ROLLBACK-PROBE")
    assert _count_probe_areas() == 1


def test_b_the_next_test_sees_nothing() -> None:
    assert _count_probe_areas() == 0


def test_commit_inside_a_request_is_rolled_back_after_the_test(client, tree) -> None:
    # A request's commit releases only a savepoint; the data stays visible to this test.
    assert client.get("/readyz").status_code == 200
    assert db.session.get(Area, tree.city.id) is not None
