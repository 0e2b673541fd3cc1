"""PostgreSQL: raising an SOS reads the raiser's place on duty and the volunteers on duty near it among
the patrols open now and the places not ended, never the years of patrols and places behind them
(issue 19). Driven through ``POST /me/sos``; each statement it sent is run again under ``EXPLAIN
ANALYZE`` (``tests/plans.py``).

The history: the volunteer's 300 places of the year (``tests.plans.history``) each with its patrol,
checked in and out or, one in five, closed by the task (a forgotten check-out), the same for a
neighbour, and the city's patrols of the year; so the patrols not checked out are many, the
patrols open now few.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from tests import factories
from tests.patrols.test_sos import LAT, LON, north_of, on_duty, sos_body
from tests.plans import (  # noqa: F401 - history, statements: the fixtures
    UPCOMING,
    analyze,
    explain,
    history,
    rows_read,
    shown,
    statements,
    the_statement,
)

pytestmark = pytest.mark.postgresql

API = "/api/v1"
OPEN = "ix_patrols_open"
CHECKED_IN = ("FROM shift_assignments JOIN patrols", "patrols.check_out_client_id IS NULL")
UNDER_WAY = ("FROM shift_assignments JOIN shifts", "shift_assignments.shift_ends_at >")
OPEN_NOW = ("SELECT patrols.id \nFROM patrols \nWHERE", "patrols.volunteer_id !=")
ON_DUTY = ("FROM patrols JOIN shifts", "patrols.id IN")


@pytest.fixture
def patrolled(tree: Any, history: dict[str, Any]) -> dict[str, Any]:
    """Every place of the history with its patrol: served, or (one in five) closed by the task; and
    a place with its patrol on each of the city's shifts of the year gone by (``tests.plans.city_shifts``),
    so that the patrols are as many more than one volunteer's as in a city."""
    city = factories.make_volunteer(tree.grid_b)
    db.session.execute(sa.text(
        "INSERT INTO shift_assignments (shift_id, volunteer_id, status, role, source, queue_seq, late_withdrawal, "
        "created_at, updated_at) SELECT id, :city, 'assigned', 'primary', 'signup', 1, false, starts_at, starts_at "
        "FROM shifts WHERE grid_id = :grid AND ends_at <= :now"
    ), {"city": city.id, "grid": tree.grid_b.id, "now": history["now"]})
    db.session.execute(sa.text(
        "INSERT INTO patrols (assignment_id, volunteer_id, shift_id, check_in_client_id, check_in_device_at, "
        "check_in_received_at, check_in_lat, check_in_lon, check_in_accuracy_m, check_in_flags, presence_status, "
        "check_out_client_id, check_out_device_at, check_out_received_at, check_out_flags, auto_closed, "
        "distance_m, track_point_count, created_at, updated_at) "
        "SELECT a.id, a.volunteer_id, a.shift_id, gen_random_uuid()::text, a.shift_starts_at, a.shift_starts_at, "
        ":lat, :lon, 10, '[]', 'verified', CASE WHEN a.id % 5 <> 0 THEN gen_random_uuid()::text END, "
        "a.shift_ends_at, a.shift_ends_at, '[]', a.id % 5 = 0, 0, 0, a.shift_starts_at, a.shift_ends_at "
        "FROM shift_assignments a WHERE a.shift_ends_at <= :now"
    ), {"lat": LAT, "lon": LON, "now": history["now"]})
    analyze()
    return history


def raise_sos(client: Any, volunteer: Any, statements: list[tuple[str, Any]]) -> dict[str, Any]:
    statements.clear()
    response = client.post(f"{API}/me/sos", json=sos_body(), headers=factories.headers_for(volunteer.user))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_the_raisers_place_under_way_is_found_among_the_places_not_ended(client, tree, patrolled, statements) -> None:
    me = patrolled["me"]
    shift = factories.make_shift(tree.grid_b, starts_in=timedelta(minutes=-20), hours=2)
    place = factories.make_assignment(shift, me)
    analyze()

    sos = raise_sos(client, me, statements)
    assert (sos["located_by"], sos["grid_id"]) == ("shift", tree.grid_b.id)

    plan = explain(*the_statement(statements, *CHECKED_IN))
    assert rows_read(plan, "patrols") == (0, [OPEN]), shown(plan)  # not one of the 20,000 patrols behind
    plan = explain(*the_statement(statements, *UNDER_WAY))
    rows, paths = rows_read(plan)
    assert paths == ["ix_shift_assignments_volunteer_shift_ends_at"] and rows <= UPCOMING + 1, shown(plan)
    assert rows_read(plan, "shifts")[0] <= 2, shown(plan)  # the one place's shift (the filter's join, the eager load's)
    assert db.session.execute(sa.text("SELECT assignment_id FROM sos_alerts WHERE id = :id"), {"id": sos["id"]}).scalar() == place.id


def test_checked_in_the_raiser_is_found_among_the_patrols_open_now(client, tree, patrolled, statements) -> None:
    me = patrolled["me"]
    place = factories.make_assignment(factories.make_shift(tree.grid_b, starts_in=timedelta(minutes=-20)), me)
    checked_in = client.post(
        f"{API}/assignments/{place.id}/check-in",
        json={"client_id": str(uuid.uuid4()), "lat": LAT, "lon": LON, "accuracy_m": 10, "device_time": utcnow().isoformat()},
        headers=factories.headers_for(me.user),
    )
    assert checked_in.status_code == 200, checked_in.get_data(as_text=True)
    analyze()

    sos = raise_sos(client, me, statements)
    assert (sos["located_by"], sos["grid_id"]) == ("shift", tree.grid_b.id)
    plan = explain(*the_statement(statements, *CHECKED_IN))
    assert rows_read(plan, "patrols") == (1, [OPEN]), shown(plan)  # its one open patrol, of its 300
    assert not [sql for sql, _ in statements if all(part in sql for part in UNDER_WAY)]  # found: no second read


def test_the_volunteers_on_duty_near_are_read_among_the_patrols_open_now(client, tree, patrolled, statements) -> None:
    near = [on_duty(client, tree, lat=north_of(LAT, 100 * i), real_name=f"近{i}") for i in range(1, 4)]
    far = on_duty(client, tree, lat=north_of(LAT, 5000), real_name="远")
    raiser = factories.make_volunteer(tree.grid_a)
    analyze()

    sos = raise_sos(client, raiser, statements)
    recipients = db.session.execute(
        sa.text("SELECT user_id FROM sos_recipients WHERE sos_id = :id AND reason = 'nearby'"), {"id": sos["id"]}
    ).scalars().all()
    assert sorted(recipients) == sorted(person.user_id for person in near) and far.user_id not in recipients
    plan = explain(*the_statement(statements, *OPEN_NOW))
    assert rows_read(plan, "patrols") == (len(near) + 1, [OPEN]), shown(plan)  # the four open, of 20,000 and more
    plan = explain(*the_statement(statements, *ON_DUTY))
    assert rows_read(plan, "patrols") == (len(near) + 1, ["pk_patrols"]), shown(plan)  # those four, by id
    assert rows_read(plan, "shifts")[0] == len(near) + 1, shown(plan)  # and their shifts, not the horizon


def test_a_stale_open_patrol_still_comes_first_as_before(client, tree, patrolled, statements) -> None:
    """Checked in and never out, its shift long over and the task not yet run: still the place
    on duty, before a shift under way (the answer before the reads changed)."""
    me = patrolled["me"]
    stale = db.session.execute(sa.text(
        "UPDATE patrols SET check_out_client_id = NULL, auto_closed = false WHERE assignment_id = :id RETURNING assignment_id"
    ), {"id": patrolled["past"][-10]}).scalar_one()
    factories.make_assignment(factories.make_shift(tree.grid_b, starts_in=timedelta(minutes=-20)), me)
    analyze()

    sos = raise_sos(client, me, statements)
    assert (sos["located_by"], sos["grid_id"]) == ("shift", tree.grid_a.id)
    assert db.session.execute(sa.text("SELECT assignment_id FROM sos_alerts WHERE id = :id"), {"id": sos["id"]}).scalar() == stale
    assert patrolled["starts"]["past"][-10] < utcnow() - timedelta(days=1)
