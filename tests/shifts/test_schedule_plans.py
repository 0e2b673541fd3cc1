"""PostgreSQL: the schedule read (``GET /me/shifts``) as the code writes it reads a volunteer's places
by their copies of the shift's times: the upcoming page never visits the places of the past, and the
past page pages backwards without visiting the future (issue 19).

The statement the endpoint runs is taken from the engine as it is sent, then run again under
``EXPLAIN (ANALYZE, FORMAT JSON)`` (``tests/plans.py``). The page's statement also counts each
shift's waitlist (a correlated subquery): that count reads the shift's waitlisted places only.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories
from tests.plans import (  # noqa: F401 - history, statements: the fixtures
    UPCOMING,
    Statements,
    explain,
    history,
    rows_read,
    shown,
    statements,
    the_statement,
)

pytestmark = pytest.mark.postgresql

API = "/api/v1"
#: The indexes a waitlist count may read a shift's places by: either reads that shift's places
#: only (all of its waitlist, or its live places, whose partial unique index the planner may
#: prefer with other statistics: CI's run chose it where the author's had not).
BY_SHIFT = {"ix_shift_assignments_shift_status", "uq_shift_assignments_live"}


def _schedule_read(client: Any, statements: Statements, me: Any, **query: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The page the endpoint answers, and the plan of the one statement it read the page with."""
    statements.clear()
    response = client.get(f"{API}/me/shifts", query_string=query, headers=factories.headers_for(me.user))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json(), explain(*the_statement(statements, "FROM shift_assignments", "LIMIT"))


def test_the_upcoming_page_reads_only_the_places_not_ended(client, history, statements) -> None:
    page, plan = _schedule_read(client, statements, history["me"], when="upcoming")

    assert [item["id"] for item in page["items"]] == history["ahead"]
    assert rows_read(plan, subplans=False)[1] == ["ix_shift_assignments_volunteer_shift_ends_at"], shown(plan)
    own, _ = rows_read(plan, subplans=False)
    assert own <= UPCOMING, shown(plan)  # not one of the 300 places behind
    rows, paths = rows_read(plan)
    paths.remove("ix_shift_assignments_volunteer_shift_ends_at")  # the rest: the waitlists' counts
    assert paths and set(paths) <= BY_SHIFT, shown(plan)
    assert rows - own <= own, shown(plan)  # each count reads its shift's places: one live place each here


def test_the_next_upcoming_page_from_a_cursor_reads_no_more(client, history, statements) -> None:
    first, _ = _schedule_read(client, statements, history["me"], when="upcoming", limit=2)
    page, plan = _schedule_read(client, statements, history["me"], when="upcoming", limit=2, cursor=first["next_cursor"])

    assert [item["id"] for item in page["items"]] == history["ahead"][2:4]
    own, _ = rows_read(plan, subplans=False)
    assert own <= UPCOMING, shown(plan)


def test_a_past_page_reads_backwards_from_now_and_stops_at_its_end(client, history, statements) -> None:
    page, plan = _schedule_read(client, statements, history["me"], when="past", limit=20)

    assert [item["id"] for item in page["items"]] == history["past"][::-1][:20]
    assert rows_read(plan, subplans=False)[1] == ["ix_shift_assignments_volunteer_shift_starts_at"], shown(plan)
    own, _ = rows_read(plan, subplans=False)
    assert own <= 21, shown(plan)  # the page and the one that says there is more; no future
    rows, paths = rows_read(plan)
    paths.remove("ix_shift_assignments_volunteer_shift_starts_at")
    assert paths and set(paths) <= BY_SHIFT, shown(plan)
    assert rows - own <= own, shown(plan)

    deeper, plan = _schedule_read(client, statements, history["me"], when="past", limit=20, cursor=page["next_cursor"])
    assert [item["id"] for item in deeper["items"]] == history["past"][::-1][20:40]
    assert rows_read(plan, subplans=False)[0] <= 21, shown(plan)
