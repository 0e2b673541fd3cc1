"""PostgreSQL: the other reads of a volunteer's places go by the places' copies of their shifts' times
(migration 0022), so a year of places behind a volunteer is never read (issue 19): the clash check
of a sign-up, the calendar feed, and the release of future places on a suspension. Each is driven
through its endpoint; the statement it sent is run again under ``EXPLAIN ANALYZE``
(``tests/plans.py``), and only the places its range selected are joined to their shifts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import icalendar
import pytest
import sqlalchemy as sa

from core.extensions import db
from shifts.calendar.service import PAST_DAYS
from shifts.models import Assignment
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
from tests.problems import EN, assert_problem

pytestmark = pytest.mark.postgresql

API = "/api/v1"
ENDS = "ix_shift_assignments_volunteer_shift_ends_at"
STARTS = "ix_shift_assignments_volunteer_shift_starts_at"


def as_(who: Any) -> dict[str, str]:
    return {**factories.headers_for(getattr(who, "user", who)), **EN}


def shift_of(place_id: int) -> int:
    return db.session.execute(sa.select(Assignment.shift_id).where(Assignment.id == place_id)).scalar_one()


def test_a_sign_ups_clash_check_reads_only_the_places_from_the_new_shift_on(client, tree, history, statements) -> None:
    me, now = history["me"], history["now"]
    third = history["starts"]["ahead"][2]
    overlapping = factories.make_shift(tree.grid_a_east, starts_in=third + timedelta(hours=1) - now)
    free = factories.make_shift(tree.grid_a_east, starts_in=third + timedelta(hours=10) - now)

    statements.clear()
    refused = assert_problem(client.post(f"{API}/shifts/{overlapping.id}/signup", json={}, headers=as_(me)), 409, "shift_overlap")
    assert refused["errors"]["conflicting_shift_id"] == [str(shift_of(history["ahead"][2]))]
    plan = explain(*the_statement(statements, "FROM shifts JOIN shift_assignments"))
    rows, paths = rows_read(plan)
    assert paths == [ENDS], shown(plan)
    assert rows <= UPCOMING, shown(plan)  # from the new shift on: never the year behind
    assert rows_read(plan, "shifts")[0] <= UPCOMING, shown(plan)  # joined only for the places selected

    statements.clear()
    taken = client.post(f"{API}/shifts/{free.id}/signup", json={}, headers=as_(me))
    assert taken.status_code == 201, taken.get_data(as_text=True)
    plan = explain(*the_statement(statements, "FROM shifts JOIN shift_assignments"))
    rows, paths = rows_read(plan)
    assert paths == [ENDS] and rows <= UPCOMING + 1, shown(plan)  # run again: its own new place is read too


def test_the_calendar_feed_reads_only_the_month_behind_and_the_places_ahead(client, history, statements) -> None:
    me, now = history["me"], history["now"]
    url = client.post(f"{API}/me/calendar-feed", headers=as_(me)).get_json()["url"]
    recent = [place for place, start in zip(history["past"], history["starts"]["past"], strict=True)
              if start + timedelta(hours=2) >= now - timedelta(days=PAST_DAYS)]
    assert 20 < len(recent) < 40  # the month's, out of 300

    statements.clear()
    response = client.get("/" + url.split("/", 3)[3])
    assert response.status_code == 200, response.get_data(as_text=True)
    shown_places = [int(str(event["uid"]).split("-")[3].split("@")[0])
                    for event in icalendar.Calendar.from_ical(response.data).walk("VEVENT")]
    assert shown_places == recent + history["ahead"]
    plan = explain(*the_statement(statements, "FROM shift_assignments", "shift_ends_at >="))
    assert rows_read(plan) == (len(recent) + UPCOMING, [ENDS]), shown(plan)
    assert rows_read(plan, "shifts")[0] == len(recent) + UPCOMING, shown(plan)


def test_a_suspension_releases_the_places_ahead_reading_none_behind(client, tree, history, statements) -> None:
    me = history["me"]
    organiser = factories.make_user("organiser", tree.community_a)

    statements.clear()
    response = client.post(f"{API}/volunteers/{me.id}/suspend", json={"reason": "违反纪律"}, headers=as_(organiser))
    assert response.status_code == 200, response.get_data(as_text=True)
    plan = explain(*the_statement(statements, "FROM shift_assignments JOIN shifts", "shift_starts_at >"))
    rows, paths = rows_read(plan)
    assert paths == [STARTS] and rows <= UPCOMING, shown(plan)  # the places ahead (removed by now), none behind

    statuses = dict(db.session.execute(
        sa.select(Assignment.id, Assignment.status).where(Assignment.volunteer_id == me.id)
    ).tuples().all())
    assert {statuses[place] for place in history["ahead"]} == {"removed"}
    assert {statuses[place] for place in history["past"]} == {"assigned"}
