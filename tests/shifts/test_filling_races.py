"""Concurrent sign-ups with real threads and real commits (SQLite and PostgreSQL): never overbooked."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from core.extensions import db
from shifts.models import Assignment, Shift
from tests import factories
from tests.test_volunteers_races import run_at_once, small_tree

pytestmark = pytest.mark.committing

API = "/api/v1"


def _assignments(shift_id: int) -> list[Assignment]:
    return list(
        db.session.scalars(
            sa.select(Assignment).where(Assignment.shift_id == shift_id).order_by(Assignment.queue_seq)
        )
    )


def test_fifty_sign_ups_at_once_for_five_places(app: Flask) -> None:
    with app.app_context():
        _, grid = small_tree()
        shift = factories.make_shift(grid, max_headcount=5)
        people = [factories.make_volunteer(grid) for _ in range(50)]
        requests = [
            ("post", f"{API}/shifts/{shift.id}/signup", {}, factories.headers_for(volunteer.user))
            for volunteer in people
        ]
        shift_id = shift.id
        db.session.commit()

    results = run_at_once(app, requests)

    assert sorted(status for status, _ in results) == [201] * 50, results
    outcomes = [body["status"] for _, body in results]
    assert outcomes.count("assigned") == 5 and outcomes.count("waitlisted") == 45
    positions = sorted(body["waitlist_position"] for _, body in results if body["status"] == "waitlisted")
    assert positions == list(range(1, 46))
    with app.app_context():
        shift = db.session.get(Shift, shift_id)
        assert (shift.primary_count, shift.queue_seq) == (5, 50)
        rows = _assignments(shift_id)
        # Whoever got the shift's lock first got a place; the rest wait in the order they got it.
        assert [row.status for row in rows] == ["assigned"] * 5 + ["waitlisted"] * 45
        assert [row.queue_seq for row in rows] == list(range(1, 51))
        first_waiting_id, holder_id = rows[5].id, rows[0].id
        holder_token = factories.headers_for(rows[0].volunteer.user)
        db.session.commit()

    client = app.test_client()
    response = client.post(f"{API}/assignments/{holder_id}/withdraw", json={}, headers=holder_token)
    assert response.status_code == 200

    with app.app_context():
        promoted = db.session.get(Assignment, first_waiting_id)
        assert promoted.status == "assigned"
        assert db.session.get(Shift, shift_id).primary_count == 5
        waiting = [row for row in _assignments(shift_id) if row.status == "waitlisted"]
        assert len(waiting) == 44 and waiting[0].queue_seq == 7


def test_one_volunteer_signing_up_for_two_overlapping_shifts_at_once_gets_one(app: Flask) -> None:
    with app.app_context():
        _, grid = small_tree()
        shifts = [factories.make_shift(grid, starts_in=timedelta(days=1, minutes=m)) for m in (0, 30)]
        volunteer = factories.make_volunteer(grid)
        headers = factories.headers_for(volunteer.user)
        requests = [("post", f"{API}/shifts/{shift.id}/signup", {}, headers) for shift in shifts]
        shift_ids = [shift.id for shift in shifts]
        db.session.commit()

    results = run_at_once(app, requests)

    assert sorted(status for status, _ in results) == [201, 409], results
    refused = next(body for status, body in results if status == 409)
    assert refused["code"] == "shift_overlap"
    with app.app_context():
        counts = [db.session.get(Shift, shift_id).primary_count for shift_id in shift_ids]
        assert sorted(counts) == [0, 1]


def test_organiser_and_volunteers_racing_for_the_last_place(app: Flask) -> None:
    with app.app_context():
        community, grid = small_tree()
        shift = factories.make_shift(grid, max_headcount=2)
        factories.make_assignment(shift, factories.make_volunteer(grid))
        organiser = factories.make_user("organiser", community)
        chosen = factories.make_volunteer(grid)
        others = [factories.make_volunteer(grid) for _ in range(6)]
        requests = [
            ("post", f"{API}/shifts/{shift.id}/assign", {"volunteer_id": chosen.id},
             factories.headers_for(organiser))
        ] + [
            ("post", f"{API}/shifts/{shift.id}/signup", {}, factories.headers_for(volunteer.user))
            for volunteer in others
        ]
        shift_id = shift.id
        db.session.commit()

    results = run_at_once(app, requests)

    with app.app_context():
        rows = _assignments(shift_id)
        assert db.session.get(Shift, shift_id).primary_count == 2
        assert sum(row.status == "assigned" for row in rows) == 2
    organiser_status = results[0][0]
    signed_up = [body["status"] for _, body in results[1:]]
    if organiser_status == 201:
        assert signed_up.count("assigned") == 0 and signed_up.count("waitlisted") == 6
    else:
        assert results[0][1]["code"] == "shift_full"
        assert signed_up.count("assigned") == 1 and signed_up.count("waitlisted") == 5
