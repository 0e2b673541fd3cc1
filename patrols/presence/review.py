"""Presence as shown, and its review: organisers approve or reject what could not be verified.

A decision is taken once (a conditional UPDATE on ``presence_status = 'needs_review'``), so two
organisers deciding at once get one success and one 409. Approval settles the served minutes when
both ends are known (``presence.settling.settle``); a rejection means the patrol never counts.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from core import audit, i18n
from core.auth import Caller
from core.db import rowcount, utcnow
from core.errors import Conflict, NotFound
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from grids.queries import in_subtree, scope_root
from patrols import signals
from patrols.models import COUNTED_PRESENCE, Patrol, PresenceStatus
from patrols.presence.settling import settle
from patrols.service import get_managed_patrol
from shifts.models import Shift
from shifts.service import get_assignment_for

i18n.register_titles(i18n.title("presence_not_under_review", "Presence is not waiting for review"))
i18n.register_messages(
    i18n.N_("Only presence that needs review can be approved or rejected."),
    i18n.N_("No check-in or check-out has been received for this assignment."),
)


def _event(patrol: Patrol | SimpleNamespace, end: str) -> dict[str, Any] | None:
    client_id = getattr(patrol, f"{end}_client_id")
    if client_id is None and not (end == "check_out" and patrol.auto_closed):
        return None
    return {
        "client_id": client_id,
        "device_time": getattr(patrol, f"{end}_device_at"),
        "received_at": getattr(patrol, f"{end}_received_at"),
        "lat": getattr(patrol, f"{end}_lat"),
        "lon": getattr(patrol, f"{end}_lon"),
        "accuracy_m": getattr(patrol, f"{end}_accuracy_m"),
        "flags": list(getattr(patrol, f"{end}_flags") or []),
    }


def patrol_view(patrol: Patrol | SimpleNamespace, timezone: str | None = None) -> dict[str, Any]:
    """``PatrolPresenceSchema``: of a ``Patrol``, or of its values as the check-in wrote them and
    its upsert returned the rest; ``timezone``, the shift's, when the caller has it (else
    ``patrol.assignment.shift``'s)."""
    review = None
    if patrol.reviewed_at is not None:
        review = {
            "reviewed_by": patrol.reviewed_by,
            "reviewed_at": patrol.reviewed_at,
            "reason": patrol.review_reason,
        }
    return {
        "id": patrol.id,
        "assignment_id": patrol.assignment_id,
        "shift_id": patrol.shift_id,
        "volunteer_id": patrol.volunteer_id,
        "timezone": timezone or patrol.assignment.shift.timezone,
        "presence_status": patrol.presence_status,
        "counts": patrol.presence_status in COUNTED_PRESENCE,
        "check_in": _event(patrol, "check_in"),
        "check_out": _event(patrol, "check_out"),
        "auto_closed": patrol.auto_closed,
        "late_minutes": patrol.late_minutes,
        "served_minutes": patrol.served_minutes,
        "review": review,
        "distance_m": patrol.distance_m,
        "track_point_count": patrol.track_point_count,
        "positions_purged_at": patrol.positions_purged_at,
    }


def patrol_of_assignment(caller: Caller, assignment_id: int) -> Patrol:
    """The patrol of an assignment: the volunteer's own, or one in a manager's subtree."""
    assignment = get_assignment_for(caller, assignment_id)
    patrol = db.session.scalar(sa.select(Patrol).where(Patrol.assignment_id == assignment.id))
    if patrol is None:
        raise NotFound(
            "No check-in or check-out has been received for this assignment.", code="patrol_not_found"
        )
    return patrol


def review_queue(
    caller: Caller, status: str, *, limit: int, cursor: str | None, area_id: int | None = None
) -> dict[str, Any]:
    """Patrols in the caller's subtree (or ``area_id``'s, inside it: 403 outside) with this presence
    status, oldest first."""
    root_path = scope_root(caller, area_id)
    stmt = (
        sa.select(Patrol)
        .join(Shift, Shift.id == Patrol.shift_id)
        .join(Area, Area.id == Shift.grid_id)
        .where(Patrol.presence_status == status, in_subtree(Area.path, root_path))
        .options(selectinload(Patrol.assignment))
    )
    return paginate(stmt, [Patrol.id], limit=limit, cursor=cursor)


def review(caller: Caller, patrol_id: int, decision: str, reason: str | None) -> Patrol:
    """Approve or reject presence waiting for review; approval settles served minutes."""
    patrol = get_managed_patrol(caller, patrol_id)
    result = db.session.execute(
        sa.update(Patrol)
        .where(Patrol.id == patrol.id, Patrol.presence_status == PresenceStatus.NEEDS_REVIEW)
        .values(
            presence_status=decision,
            reviewed_by=caller.user_id,
            reviewed_at=utcnow(),
            review_reason=reason,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise Conflict(
            "Only presence that needs review can be approved or rejected.",
            code="presence_not_under_review",
        )
    db.session.refresh(patrol)
    audit.record(
        caller,
        f"patrol.presence_{decision}",
        target_type="patrol",
        target_id=patrol.id,
        area_path=patrol.assignment.shift.grid.path,
        before={"presence_status": PresenceStatus.NEEDS_REVIEW.value},
        after={"presence_status": decision, "reason": reason},
    )
    signals.presence_reviewed.send(
        signals.SENDER,
        **signals.PresenceReviewed(
            patrol_id=patrol.id,
            assignment_id=patrol.assignment_id,
            volunteer_id=patrol.volunteer_id,
            presence_status=decision,
            reason=reason,
            actor_id=caller.user_id,
        ),
    )
    settle(patrol)
    return patrol
