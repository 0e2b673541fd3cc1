"""Patrols: the patrol row of an assignment and who may touch it, what every feature shares. No HTTP.

Each feature is a subpackage with the rooms of a package (``routes.py``, ``schemas.py``,
``service.py``, and ``models.py``, ``tasks.py`` where it has them): ``presence`` (check-in and
check-out, the geofence and clock rules, review, no-shows), ``tracks`` (GPS tracks and their purge),
``checkpoints`` (QR checkpoints, scans, the patrol summary) and ``reports`` (incident reports with
photos, and their workflow). Beside this module: ``models.py`` (the patrol row), ``schemas.py``
(what a phone sends: position, accuracy, its clock) and ``signals.py``. Whose assignment it is, is
asked of ``shifts.service`` (``own_assignment``, ``get_assignment_for``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core import i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import NotFound
from core.extensions import db
from patrols.models import Patrol
from shifts.models import Assignment

__all__ = ["get_managed_patrol", "get_patrol", "new_patrol_row", "new_patrol_values", "patrol_for", "patrol_not_found"]

i18n.register_titles(
    i18n.title("patrol_not_found", "Patrol not found"),
    # A phone sent a client_id it already used for a different record (event, scan, ...).
    i18n.title("client_id_reused", "The client id belongs to another record"),
)
i18n.register_messages(i18n.N_("Patrol not found."))

def patrol_for(assignment: Assignment) -> Patrol:
    """The patrol row of ``assignment``, made if this is the first event to arrive for it.

    Safe under concurrency: the insert does nothing when another request made the row first (the
    unique ``assignment_id``), and the row is then read back; on PostgreSQL the insert waits for
    the other transaction, so it sees the committed row.
    """
    db.session.execute(
        new_patrol_row(assignment.id, assignment.volunteer_id, assignment.shift_id)
        .on_conflict_do_nothing(index_elements=["assignment_id"])
    )
    return db.session.scalars(
        sa.select(Patrol)
        .where(Patrol.assignment_id == assignment.id)
        .execution_options(populate_existing=True)
    ).one()


def new_patrol_row(assignment_id: int, volunteer_id: int, shift_id: int) -> postgresql.Insert | sqlite.Insert:
    """The INSERT of an assignment's patrol row as the first event makes it, in the dialect's own
    form, for the caller to say what a row already there means (``ON CONFLICT (assignment_id)``)."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(Patrol.__table__).values(**new_patrol_values(assignment_id, volunteer_id, shift_id))


def new_patrol_values(assignment_id: int, volunteer_id: int, shift_id: int) -> dict[str, Any]:
    """The columns of an assignment's patrol row as the first event makes it (:func:`new_patrol_row`;
    the track upload's own cached upsert names the same)."""
    now = utcnow()
    return {
        "assignment_id": assignment_id,
        "volunteer_id": volunteer_id,
        "shift_id": shift_id,
        "check_in_flags": [],
        "check_out_flags": [],
        "auto_closed": False,
        "distance_m": 0.0,
        "track_point_count": 0,
        "created_at": now,
        "updated_at": now,
    }


def patrol_not_found() -> NotFound:
    """The answer for a patrol id that does not exist, and for one the caller may not reach."""
    return NotFound("Patrol not found.", code="patrol_not_found")


def get_patrol(patrol_id: int) -> Patrol:
    patrol = db.session.get(Patrol, patrol_id)
    if patrol is None:
        raise patrol_not_found()
    return patrol


def get_managed_patrol(caller: Caller, patrol_id: int) -> Patrol:
    """A patrol on a shift in the caller's subtree (organisers, staff, admins); any other is not
    found."""
    patrol = get_patrol(patrol_id)
    caller.ensure_reach(patrol.assignment.shift.grid.path, patrol_not_found)
    return patrol
