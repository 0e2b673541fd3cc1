"""The publicity boards (公示): the managers' board of their subtree, one level with its objections,
a volunteer's own levels, and the board of their home community with masked names only. Reading
only; proposals, objections and certification are in ``service.py``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core.auth import Caller
from core.errors import Forbidden
from core.extensions import db
from core.pagination import paginate
from grids.queries import in_subtree, scope_root
from records.identity import masked_name
from records.stars.models import StarLevel, StarLevelStatus, StarObjection
from records.stars.service import ACTIVE_ONLY
from volunteers.models import Volunteer, VolunteerStatus
from volunteers.service import own_volunteer


def board(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """The publicity board of the manager's subtree (or of ``area_id`` inside it), newest first."""
    root = scope_root(caller, args.get("area_id"))
    stmt = sa.select(StarLevel).where(in_subtree(StarLevel.area_path, root))
    if args.get("status"):
        stmt = stmt.where(StarLevel.status.in_(args["status"]))
    if args.get("level") is not None:
        stmt = stmt.where(StarLevel.level == args["level"])
    page = paginate(stmt, [StarLevel.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)
    names = _names({row.volunteer_id for row in page["items"]})
    page["items"] = [view(row, names.get(row.volunteer_id, "")) for row in page["items"]]
    return page


def detail(row: StarLevel) -> dict[str, Any]:
    """A level with its objections, oldest first."""
    objections = db.session.scalars(
        sa.select(StarObjection).where(StarObjection.star_level_id == row.id).order_by(StarObjection.id)
    ).all()
    return {**view(row, _names({row.volunteer_id}).get(row.volunteer_id, "")), "objections": list(objections)}


def own_levels(caller: Caller) -> list[StarLevel]:
    """The caller's own levels, lowest first."""
    volunteer = own_volunteer(caller)
    return list(
        db.session.scalars(sa.select(StarLevel).where(StarLevel.volunteer_id == volunteer.id).order_by(StarLevel.level))
    )


def community_board(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """What 公示 shows a volunteer: the levels pending in their own home community, each with the
    masked name and the level (and the publicity's dates), nothing else and nothing elsewhere."""
    volunteer = own_volunteer(caller)
    if volunteer.status != VolunteerStatus.ACTIVE:
        raise Forbidden(ACTIVE_ONLY)
    community_id = volunteer.home_grid.parent_id or volunteer.home_grid_id
    stmt = sa.select(StarLevel).where(StarLevel.area_id == community_id, StarLevel.status == StarLevelStatus.PENDING.value)
    page = paginate(stmt, [StarLevel.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)
    names = _names({row.volunteer_id for row in page["items"]})
    page["items"] = [
        {
            "masked_name": masked_name(names.get(row.volunteer_id, "")), "level": row.level,
            "publicity_starts_at": row.proposed_at, "publicity_ends_at": row.publicity_ends_at,
        }
        for row in page["items"]
    ]
    return page


def _names(volunteer_ids: set[int]) -> dict[int, str]:
    if not volunteer_ids:
        return {}
    rows = db.session.execute(sa.select(Volunteer.id, Volunteer.real_name).where(Volunteer.id.in_(volunteer_ids)))
    return {volunteer_id: name for volunteer_id, name in rows}


def view(row: StarLevel, volunteer_name: str) -> dict[str, Any]:
    return {
        "id": row.id, "volunteer_id": row.volunteer_id, "volunteer_name": volunteer_name, "level": row.level,
        "status": row.status, "minutes_at_proposal": row.minutes_at_proposal, "area_id": row.area_id,
        "proposed_at": row.proposed_at, "publicity_ends_at": row.publicity_ends_at,
        "open_objections": row.open_objections, "certified_at": row.certified_at, "rejected_at": row.rejected_at,
    }
