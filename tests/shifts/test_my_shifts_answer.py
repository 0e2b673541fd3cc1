"""``GET /me/shifts`` reads plain rows and dumps them by a compiled plan (issue 19): its answer must be,
byte for byte, what the entities' views dumped by the schema through ``jsonify`` give for the same
places — with waitlists, kinds required, a series' occurrence, a backup, an invitation, cancelled
and missed shifts, every optional text set, and from a cursor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from shifts.models import Assignment
from shifts.schedules.routes import MY_SHIFTS_PAGE
from shifts.service import assignment_views
from tests import factories
from tests.conftest import Tree

API = "/api/v1"
DAY = timedelta(days=1)


def _end(place: Any, status: str, reason: str | None = None) -> None:
    place.status, place.ended_at, place.end_reason = status, utcnow() - timedelta(minutes=3), reason
    db.session.flush()


@pytest.fixture
def schedule(tree: Tree) -> dict[str, Any]:
    me = factories.make_volunteer(tree.grid_a, real_name="王五")
    steward = factories.make_volunteer(tree.grid_a, kind_code="alley_steward", real_name="赵六")
    others = [factories.make_volunteer(tree.grid_a_east, real_name=f"李{n}") for n in range(3)]

    kinds = factories.make_shift(
        tree.grid_a, starts_in=DAY, max_headcount=4,
        required_kinds=[{"kind": "volunteer_police", "minimum": 2}, {"kind": "alley_steward", "minimum": 1}],
    )
    kinds.instructions, kinds.meeting_point = "带好手电筒", "东门岗亭"
    factories.make_assignment(kinds, me)
    factories.make_assignment(kinds, steward)

    full = factories.make_shift(tree.grid_a_east, starts_in=2 * DAY, max_headcount=1)
    factories.make_assignment(full, others[0])
    factories.make_assignment(full, others[1], status="waitlisted")
    factories.make_assignment(full, me, status="waitlisted")  # second in the queue

    series = factories.make_shift(tree.grid_a, starts_in=3 * DAY, backup_slots=1)
    series.occurrence_local, series.detached = datetime(2030, 1, 1, 19, 0), True
    factories.make_assignment(series, me, role="backup")

    invited = factories.make_shift(tree.grid_a2, starts_in=4 * DAY)
    factories.make_assignment(invited, me, status="invited")

    called_off = factories.make_shift(tree.grid_a, starts_in=-2 * DAY)
    called_off.status, called_off.cancelled_at, called_off.cancel_reason = "cancelled", utcnow() - 3 * DAY, "大风"
    _end(factories.make_assignment(called_off, me), "cancelled", "shift cancelled")
    _end(factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=-3 * DAY), me), "absent")
    factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=-4 * DAY), me)  # served
    db.session.flush()
    return {"me": me}


def _expected(app: Flask, answer: dict[str, Any]) -> bytes:
    """The answer the entities' path gives for the same places: views dumped by the schema, jsonified."""
    ids = [item["id"] for item in answer["items"]]
    db.session.expire_all()
    places = {place.id: place for place in db.session.scalars(sa.select(Assignment).where(Assignment.id.in_(ids)))}
    page = {"items": assignment_views([places[i] for i in ids], with_shift=True), "next_cursor": answer["next_cursor"]}
    return app.json.response(MY_SHIFTS_PAGE().dump(page)).get_data()


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"when": "past"},
        {"when": "past", "status": ["cancelled", "absent", "assigned"]},
        {"status": ["waitlisted", "invited"]},
        {"limit": 2},
    ],
)
def test_my_shifts_answer_as_the_entities_dumped_by_the_schema(
    app: Flask, client: FlaskClient, schedule: dict[str, Any], query: dict[str, Any]
) -> None:
    headers = factories.headers_for(db.session.get(User, schedule["me"].user_id))
    response = client.get(f"{API}/me/shifts", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["items"], "a page with places"
    assert response.get_data() == _expected(app, answer)
    if answer["next_cursor"]:  # and the page after it
        following = client.get(
            f"{API}/me/shifts", query_string={**query, "cursor": answer["next_cursor"]}, headers=headers
        )
        assert following.status_code == 200 and following.get_json()["items"]
        assert following.get_data() == _expected(app, following.get_json())


def test_the_answer_carries_what_the_page_needs(client: FlaskClient, schedule: dict[str, Any]) -> None:
    headers = factories.headers_for(db.session.get(User, schedule["me"].user_id))
    items = client.get(f"{API}/me/shifts", headers=headers).get_json()["items"]
    kinds, waiting, backup, invited = items
    assert kinds["shift"]["required_kinds"] == [
        {"kind": "volunteer_police", "minimum": 2, "assigned": 1, "met": False},
        {"kind": "alley_steward", "minimum": 1, "assigned": 1, "met": True},
    ]
    assert kinds["shift"]["unmet_kinds"] == ["volunteer_police"] and kinds["volunteer_name"] == "王五"
    assert (waiting["waitlist_position"], waiting["shift"]["waitlist_count"]) == (2, 2)
    assert backup["role"] == "backup" and backup["shift"]["occurrence_local"] == "2030-01-01T19:00:00"
    assert backup["shift"]["occurrence"] == "2030-01-01T11:00:00+00:00"
    assert invited["status"] == "invited" and invited["waitlist_position"] is None
