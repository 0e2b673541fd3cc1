"""PostgreSQL: the schedule read (``GET /me/shifts``) as the code writes it reads a volunteer's places
by their copies of the shift's times: the upcoming page never visits the places of the past, and the
past page pages backwards without visiting the future (issue 19).

The statement the endpoint runs is taken from the engine as it is sent, then run again under
``EXPLAIN (ANALYZE, FORMAT JSON)``; the rows read from ``shift_assignments`` are every row an
index or table scan of it handed up plus every row its filters removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from shifts.models import Assignment, Shift
from tests import factories

pytestmark = pytest.mark.postgresql

API = "/api/v1"
PAST_PLACES = 300
UPCOMING = 6


def _seed_places(grid: Any, volunteer_id: int, starts: list[datetime]) -> list[int]:
    """A shift at each start (two hours) with the volunteer's place on it: ids of the places, in order.
    Core inserts, as the bulk loaders write: the database's triggers fill the places' copies."""
    shift_ids = db.session.scalars(
        sa.insert(Shift).returning(Shift.id, sort_by_parameter_order=True),
        [
            {"grid_id": grid.id, "timezone": grid.timezone, "starts_at": start, "ends_at": start + timedelta(hours=2),
             "title": "巡逻", "min_headcount": 1, "max_headcount": 2, "backup_slots": 0, "required_kinds": [],
             "status": "scheduled", "primary_count": 1, "backup_count": 0, "queue_seq": 1, "detached": False}
            for start in starts
        ],
    ).all()
    return db.session.scalars(
        sa.insert(Assignment).returning(Assignment.id, sort_by_parameter_order=True),
        [
            {"shift_id": shift_id, "volunteer_id": volunteer_id, "status": "assigned", "role": "primary",
             "source": "signup", "queue_seq": 1}
            for shift_id in shift_ids
        ],
    ).all()


@pytest.fixture
def history(tree: Any) -> dict[str, Any]:
    """A volunteer with a year of served places (300), a few ahead, and a neighbour with the same."""
    me, neighbour = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    now = utcnow().replace(microsecond=0)
    past = [now - timedelta(days=365) + timedelta(hours=29 * i) for i in range(PAST_PLACES)]
    ahead = [now + timedelta(hours=5 + 31 * i) for i in range(UPCOMING)]
    seeded = {"me": me}
    for who in (neighbour, me):
        seeded["past"] = _seed_places(tree.grid_a, who.id, past)
        seeded["ahead"] = _seed_places(tree.grid_a, who.id, ahead)
    db.session.execute(sa.text("ANALYZE shifts, shift_assignments"))  # in the test's transaction: rolled back
    return seeded


@pytest.fixture
def statements() -> Iterator[list[tuple[str, Any]]]:
    """Every statement the engine sends during the test, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(db.engine, "before_cursor_execute", record)


def _schedule_read(client: Any, statements: list[tuple[str, Any]], me: Any, **query: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The page the endpoint answers, and the plan of the one statement it read the page with."""
    statements.clear()
    response = client.get(f"{API}/me/shifts", query_string=query, headers=factories.headers_for(me.user))
    assert response.status_code == 200, response.get_data(as_text=True)
    [(statement, parameters)] = [
        (sql, params) for sql, params in statements if "FROM shift_assignments" in sql and "LIMIT" in sql
    ]
    raw = db.session.connection().exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters).scalar()
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return response.get_json(), plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _rows_read(plan: dict[str, Any], table: str = "shift_assignments") -> tuple[int, list[str]]:
    """Rows of ``table`` its scans handed up or threw away, and the indexes they went by (a bitmap
    scan's by its index scans; a scan of the whole table by its node type)."""
    rows, paths = 0, []
    for node in _nodes(plan):
        if node.get("Relation Name") != table:
            continue
        handed_up = node["Actual Rows"] + node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
        rows += handed_up * node.get("Actual Loops", 1)
        bitmaps = [child["Index Name"] for child in _nodes(node) if child["Node Type"] == "Bitmap Index Scan"]
        paths.append(node.get("Index Name") or "+".join(bitmaps) or node["Node Type"])
    return rows, paths


def test_the_upcoming_page_reads_only_the_places_not_ended(client, history, statements) -> None:
    page, plan = _schedule_read(client, statements, history["me"], when="upcoming")

    assert [item["id"] for item in page["items"]] == history["ahead"]
    rows, paths = _rows_read(plan)
    assert paths == ["ix_shift_assignments_volunteer_shift_ends_at"], json.dumps(plan, indent=1)
    assert rows <= UPCOMING, json.dumps(plan, indent=1)  # not one of the 300 places behind


def test_the_next_upcoming_page_from_a_cursor_reads_no_more(client, history, statements) -> None:
    first, _ = _schedule_read(client, statements, history["me"], when="upcoming", limit=2)
    page, plan = _schedule_read(client, statements, history["me"], when="upcoming", limit=2, cursor=first["next_cursor"])

    assert [item["id"] for item in page["items"]] == history["ahead"][2:4]
    rows, _ = _rows_read(plan)
    assert rows <= UPCOMING, json.dumps(plan, indent=1)


def test_a_past_page_reads_backwards_from_now_and_stops_at_its_end(client, history, statements) -> None:
    page, plan = _schedule_read(client, statements, history["me"], when="past", limit=20)

    assert [item["id"] for item in page["items"]] == history["past"][::-1][:20]
    rows, paths = _rows_read(plan)
    assert paths == ["ix_shift_assignments_volunteer_shift_starts_at"], json.dumps(plan, indent=1)
    assert rows <= 21, json.dumps(plan, indent=1)  # the page and the one that says there is more; no future

    deeper, plan = _schedule_read(client, statements, history["me"], when="past", limit=20, cursor=page["next_cursor"])
    assert [item["id"] for item in deeper["items"]] == history["past"][::-1][20:40]
    assert _rows_read(plan)[0] <= 21, json.dumps(plan, indent=1)
