"""Who covers a grid: the one owner of "the organisers over this grid, else its staff".

A grid's organisers are the active organisers whose area contains it (its community, sub-district
or district within the city: "the organisers of that subtree"); when no organiser covers the grid,
the active staff who do. Notifications (no-shows, urgent reports) and the SOS alert call this; no
one else decides it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from accounts.models import User
from core.auth import Role
from core.extensions import db
from grids.models import Area
from grids.paths import ancestor_paths


@dataclass(frozen=True)
class Covering:
    """Who covers one grid: organisers, or (``role`` staff) the staff when no organiser does."""

    role: Role
    user_ids: list[int]


def covering(grid_ids: Iterable[int]) -> dict[int, Covering]:
    """Grid id → its active organisers (by user id), or its covering staff when there are none."""
    wanted = sorted(set(grid_ids))
    if not wanted:
        return {}
    paths = db.session.execute(sa.select(Area.id, Area.path).where(Area.id.in_(wanted))).tuples().all()
    # Whole path segments: "/1/2/" covers "/1/2/5/", never "/1/23/5/".
    ancestors = {grid_id: set(ancestor_paths(path)) for grid_id, path in paths}
    managers = db.session.execute(
        sa.select(User.id, User.role, Area.path)
        .join(Area, Area.id == User.area_id)
        .where(
            Area.path.in_(sorted(set().union(*ancestors.values()))),
            User.role.in_((Role.ORGANISER.value, Role.STAFF.value)),
            User.is_active.is_(True),
        )
        .order_by(User.id)
    ).tuples().all()
    found = {}
    for grid_id, over in ancestors.items():
        here = [(user_id, role) for user_id, role, path in managers if path in over]
        organisers = [user_id for user_id, role in here if role == Role.ORGANISER]
        if organisers:
            found[grid_id] = Covering(Role.ORGANISER, organisers)
        else:
            found[grid_id] = Covering(Role.STAFF, [user_id for user_id, role in here if role == Role.STAFF])
    return found


def organisers_over(grid_ids: Iterable[int]) -> dict[int, list[int]]:
    """Grid id → user ids of its active organisers; the staff who cover it when none."""
    return {grid_id: cover.user_ids for grid_id, cover in covering(grid_ids).items()}
