"""PostgreSQL, real commits: a place made while its shift is being moved gets the moved times.

An invitation takes no lock on the shift (it holds no place), so it is the path that can meet a
move in flight. The move is held open in a transaction of its own, as the app's edit holds it
(the row FOR UPDATE, then the new times) or as a bare UPDATE would; the invitation must wait
for it (``races.hold_until_waited_on``) and copy the times it committed, never the old ones.
SQLite has one writer at a time: no such race there.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from core.extensions import db
from shifts.models import Assignment, Shift
from tests import factories, races
from tests.test_volunteers_races import small_tree

pytestmark = [pytest.mark.committing, pytest.mark.postgresql]

API = "/api/v1"
MOVE = "UPDATE shifts SET starts_at = starts_at + interval '3 hours', ends_at = ends_at + interval '4 hours' WHERE id = :id"


@pytest.mark.parametrize("locked_first", [True, False], ids=["the app's move (row locked first)", "a bare UPDATE"])
def test_an_invitation_during_a_move_copies_the_moved_times(app: Flask, locked_first: bool) -> None:
    with app.app_context():
        community, grid = small_tree()
        shift = factories.make_shift(grid, starts_in=timedelta(days=2))
        volunteer = factories.make_volunteer(grid)
        organiser = factories.headers_for(factories.make_user("organiser", community))
        shift_id, volunteer_id = shift.id, volunteer.id
        db.session.commit()

    answers: list[int] = []
    done = threading.Event()

    def invite() -> None:
        response = app.test_client().post(
            f"{API}/shifts/{shift_id}/invite", json={"volunteer_id": volunteer_id, "role": "primary"}, headers=organiser
        )
        answers.append(response.status_code)
        done.set()

    with app.app_context(), db.engine.connect() as mover:
        if locked_first:
            mover.execute(sa.text("SELECT id FROM shifts WHERE id = :id FOR UPDATE"), {"id": shift_id})
        mover.execute(sa.text(MOVE), {"id": shift_id})
        thread = threading.Thread(target=invite, daemon=True)
        thread.start()
        waited = races.hold_until_waited_on(app, "INSERT INTO shift_assignments", done)
        mover.commit()
        races.join_all([thread])

    assert answers == [201]
    with app.app_context():
        moved = db.session.execute(sa.select(Shift.starts_at, Shift.ends_at).where(Shift.id == shift_id)).one()
        copy = db.session.execute(
            sa.select(Assignment.shift_starts_at, Assignment.shift_ends_at).where(Assignment.shift_id == shift_id)
        ).one()
        db.session.rollback()
    assert copy == tuple(moved)
    assert waited  # the invitation waited for the move rather than read around it
