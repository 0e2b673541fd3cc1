"""Swap requests as shown, and their lists: mine (sent and received) and those awaiting approval."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from core import i18n
from core.auth import Caller
from core.db import utcnow
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from grids.queries import in_subtree
from shifts.models import Assignment, Shift
from shifts.service import assignment_views
from shifts.swaps.models import SwapRequest, SwapStatus
from shifts.swaps.service import swap_assignments
from volunteers.models import Volunteer
from volunteers.service import may_see, own_volunteer


def swap_views(caller: Caller, swaps: list[SwapRequest]) -> list[dict[str, Any]]:
    """Requests as ``SwapRequestSchema`` dicts; their places and shifts shown in a few queries.

    A volunteer's name is shown only to callers who may see them (``volunteers.service.may_see``:
    managers of a shift in the request see both; a volunteer sees the people of their community);
    otherwise it is null, here and in the places.
    """
    assignments = {a.id: a for swap in swaps for a in swap_assignments(swap)}
    places = assignment_views(list(assignments.values()), with_shift=True)
    shown = {view["id"]: view for view in places}
    recipient_ids = {swap.to_volunteer_id for swap in swaps}
    recipients: dict[int, Volunteer] = {}
    if recipient_ids:
        found = db.session.scalars(sa.select(Volunteer).where(Volunteer.id.in_(recipient_ids)))
        recipients = {volunteer.id: volunteer for volunteer in found}
    views = []
    for swap in swaps:
        outgoing, counterpart = swap.from_assignment, swap.to_assignment
        grids = [a.shift.grid.path for a in swap_assignments(swap)]
        names = {
            volunteer.id: volunteer.real_name if may_see(caller, volunteer, place_paths=grids) else None
            for volunteer in (outgoing.volunteer, recipients[swap.to_volunteer_id])
        }
        views.append(
            {
                "id": swap.id,
                "kind": "exchange" if counterpart else "handover",
                "status": swap.status,
                "message": swap.message,
                "from_volunteer_id": outgoing.volunteer_id,
                "from_volunteer_name": names[outgoing.volunteer_id],
                "to_volunteer_id": swap.to_volunteer_id,
                "to_volunteer_name": names[swap.to_volunteer_id],
                "from_assignment": _place(shown, outgoing, names),
                "to_assignment": _place(shown, counterpart, names) if counterpart else None,
                "decided_by": swap.decided_by,
                "decision_reason": _shown_reason(swap.decision_reason),
                "created_at": swap.created_at,
                "updated_at": swap.updated_at,
            }
        )
    return views


def _place(
    shown: dict[int, dict[str, Any]], assignment: Assignment, names: dict[int, str | None]
) -> dict[str, Any]:
    return {**shown[assignment.id], "volunteer_name": names.get(assignment.volunteer_id)}


def _shown_reason(reason: str | None) -> str | None:
    """System reasons are stored in English and shown translated; people's reasons as typed."""
    return i18n.translate(reason) if reason else None


def swap_view(caller: Caller, swap: SwapRequest) -> dict[str, Any]:
    return swap_views(caller, [swap])[0]


def list_mine(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Requests the caller sent or received, newest first."""
    me = own_volunteer(caller)
    outgoing = aliased(Assignment)
    stmt = sa.select(SwapRequest).join(outgoing, outgoing.id == SwapRequest.from_assignment_id)
    sent, received = outgoing.volunteer_id == me.id, SwapRequest.to_volunteer_id == me.id
    box = args.get("box")
    stmt = stmt.where(
        sent if box == "sent" else received if box == "received" else sa.or_(sent, received)
    )
    if args.get("status"):
        stmt = stmt.where(SwapRequest.status == args["status"])
    page = paginate(
        stmt, [SwapRequest.id], limit=args["limit"], cursor=args.get("cursor"), descending=True
    )
    page["items"] = swap_views(caller, page["items"])
    return page


def list_awaiting_approval(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Accepted requests the caller may approve (all shifts in their area, none begun), oldest
    first."""
    now = utcnow()
    from_a, from_s, from_g = aliased(Assignment), aliased(Shift), aliased(Area)
    to_a, to_s, to_g = aliased(Assignment), aliased(Shift), aliased(Area)
    stmt = (
        sa.select(SwapRequest)
        .join(from_a, from_a.id == SwapRequest.from_assignment_id)
        .join(from_s, from_s.id == from_a.shift_id)
        .join(from_g, from_g.id == from_s.grid_id)
        .outerjoin(to_a, to_a.id == SwapRequest.to_assignment_id)
        .outerjoin(to_s, to_s.id == to_a.shift_id)
        .outerjoin(to_g, to_g.id == to_s.grid_id)
        .where(
            SwapRequest.status == SwapStatus.ACCEPTED,
            in_subtree(from_g.path, caller.area_path),
            from_s.starts_at > now,
            sa.or_(
                SwapRequest.to_assignment_id.is_(None),
                sa.and_(in_subtree(to_g.path, caller.area_path), to_s.starts_at > now),
            ),
        )
    )
    page = paginate(stmt, [SwapRequest.id], limit=args["limit"], cursor=args.get("cursor"))
    page["items"] = swap_views(caller, page["items"])
    return page
