"""PostgreSQL plans of what a request sends: the statement taken from the engine as it is sent, run
again under ``EXPLAIN (ANALYZE, FORMAT JSON)``, and the rows a table's scans read in it (issue 19).

Shared by the plan tests of the reads of a volunteer's places (``tests/shifts/test_schedule_plans.py``,
``tests/shifts/test_place_plans.py``, ``tests/patrols/test_sos_plans.py``): a volunteer with a year of
places must cost what one with a week of them costs. Rows read from a table are every row an index
or table scan of it handed up plus every row its filters removed, times its loops.
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

Statements = list[tuple[str, Any]]
#: The places of a year behind a volunteer (one each 29 hours), and the few ahead (one each 31 hours).
PAST_PLACES = 300
UPCOMING = 6
#: The city's other shifts beside them (bench/README.md: a city has millions).
CITY_SHIFTS = 20_000


def seed_places(grid: Any, volunteer_id: int, starts: list[datetime], *, hours: float = 2) -> list[int]:
    """A shift at each start (``hours`` long) with the volunteer's assigned place on it: ids of the
    places, in order. Core inserts, as the bulk loaders write: the database's triggers fill the
    places' copies."""
    shift_ids = db.session.scalars(
        sa.insert(Shift).returning(Shift.id, sort_by_parameter_order=True),
        [
            {"grid_id": grid.id, "timezone": grid.timezone, "starts_at": start, "ends_at": start + timedelta(hours=hours),
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


def analyze() -> None:
    """Fresh statistics for the planner, in the test's transaction (rolled back with it)."""
    db.session.execute(sa.text("ANALYZE shifts, shift_assignments, patrols"))


@pytest.fixture
def history(tree: Any) -> dict[str, Any]:
    """A volunteer with a year of served places (``PAST_PLACES``), ``UPCOMING`` ahead, and a
    neighbour with the same: ``me``, ``now`` (whole seconds), the ids of ``past`` and ``ahead``
    places (in time order) and the ``starts`` of each."""
    me, neighbour = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    now = utcnow().replace(microsecond=0)
    past = [now - timedelta(days=365) + timedelta(hours=29 * i) for i in range(PAST_PLACES)]
    ahead = [now + timedelta(hours=5 + 31 * i) for i in range(UPCOMING)]
    seeded: dict[str, Any] = {"me": me, "now": now, "starts": {"past": past, "ahead": ahead}}
    city_shifts(tree.grid_b, now)
    for who in (neighbour, me):
        seeded["past"] = seed_places(tree.grid_a, who.id, past)
        seeded["ahead"] = seed_places(tree.grid_a, who.id, ahead)
    analyze()
    return seeded


def city_shifts(grid: Any, now: datetime, count: int = CITY_SHIFTS) -> None:
    """``count`` more shifts of the city (a year of them, no places, made before the volunteers'),
    so that the shifts table is as much bigger than one volunteer's places as it is in a city:
    reading all of it, or a merge along its key, is then no longer the planner's cheap way to
    reach a few of them."""
    db.session.execute(
        sa.text(
            "INSERT INTO shifts (grid_id, timezone, starts_at, ends_at, title, min_headcount, max_headcount, "
            "backup_slots, required_kinds, status, primary_count, backup_count, queue_seq, detached, created_at, "
            "updated_at) SELECT :grid, :zone, s, s + interval '2 hours', '巡逻', 1, 2, 0, '[]', 'scheduled', 0, 0, 0, "
            "false, :now, :now FROM (SELECT CAST(:now AS timestamptz) - interval '365 days' + n * interval '1 hour' * "
            "(8760.0 / :count) AS s FROM generate_series(1, :count) n) t"
        ),
        {"grid": grid.id, "zone": grid.timezone, "now": now, "count": count},
    )


@pytest.fixture
def statements() -> Iterator[Statements]:
    """Every statement the engine sends during the test, with its parameters."""
    sent: Statements = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(db.engine, "before_cursor_execute", record)


def the_statement(statements: Statements, *fragments: str) -> tuple[str, Any]:
    """The one statement sent that holds every fragment (an error if none or several)."""
    found = [(sql, params) for sql, params in statements if all(fragment in sql for fragment in fragments)]
    assert len(found) == 1, [sql for sql, _ in found] or [sql for sql, _ in statements]
    return found[0]


def explain(statement: str, parameters: Any) -> dict[str, Any]:
    """The plan of ``statement`` run again under ``EXPLAIN (ANALYZE, FORMAT JSON)``: its top node."""
    raw = db.session.connection().exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters).scalar()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def nodes(plan: dict[str, Any], *, subplans: bool = True) -> Iterator[dict[str, Any]]:
    """The plan's nodes; with ``subplans`` False, not those of its subqueries (a correlated count
    in the select list, run per row: ``SubPlan``, or once: ``InitPlan``)."""
    yield plan
    for child in plan.get("Plans", []):
        if subplans or child.get("Parent Relationship") not in ("SubPlan", "InitPlan"):
            yield from nodes(child, subplans=subplans)


def rows_read(plan: dict[str, Any], table: str = "shift_assignments", *, subplans: bool = True) -> tuple[int, list[str]]:
    """Rows of ``table`` its scans handed up or threw away, and the indexes they went by (a bitmap
    scan's by its index scans; a scan of the whole table by its node type); with ``subplans``
    False only the scans of the statement's own FROM clause."""
    rows, paths = 0, []
    for node in nodes(plan, subplans=subplans):
        if node.get("Relation Name") != table:
            continue
        handed_up = node["Actual Rows"] + node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
        rows += handed_up * node.get("Actual Loops", 1)
        bitmaps = [child["Index Name"] for child in nodes(node) if child["Node Type"] == "Bitmap Index Scan"]
        paths.append(node.get("Index Name") or "+".join(bitmaps) or node["Node Type"])
    return rows, paths


def shown(plan: dict[str, Any]) -> str:
    """The plan as an assertion's message."""
    return json.dumps(plan, indent=1)
