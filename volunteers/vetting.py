"""Vetting: a volunteer's status transitions and their history. No HTTP here.

Transitions are conditional UPDATEs (``... WHERE id = :id AND status = :expected``) so that of two
organisers acting at once only one wins; the other gets 409 and changes nothing. Other code imports
these through ``volunteers.service``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from blinker import NamedSignal

from core import audit, i18n
from core.auth import Caller
from core.db import rowcount, utcnow
from core.errors import Conflict
from core.extensions import db
from core.pagination import paginate
from volunteers import signals
from volunteers.models import StatusChange, Volunteer, VolunteerStatus

i18n.register_titles(i18n.title("invalid_status_transition", "Status change not allowed"))
i18n.register_messages(i18n.N_("This status change is not allowed from the volunteer's current status."))


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str
    signal: NamedSignal


_S = VolunteerStatus
TRANSITIONS: dict[str, Transition] = {
    "approve": Transition(frozenset({_S.PENDING}), _S.ACTIVE, signals.volunteer_approved),
    "reject": Transition(frozenset({_S.PENDING}), _S.REJECTED, signals.volunteer_rejected),
    "suspend": Transition(frozenset({_S.ACTIVE}), _S.SUSPENDED, signals.volunteer_suspended),
    "reinstate": Transition(frozenset({_S.SUSPENDED}), _S.ACTIVE, signals.volunteer_reinstated),
    "retire": Transition(
        frozenset({_S.ACTIVE, _S.SUSPENDED, _S.PENDING}), _S.RETIRED, signals.volunteer_retired
    ),
}


def record_status_change(
    volunteer_id: int,
    from_status: str | None,
    to_status: str,
    *,
    actor_id: int,
    at: datetime,
    reason: str | None = None,
) -> None:
    """Add a line to the volunteer's status history (registration, vetting, account closure)."""
    db.session.add(
        StatusChange(
            volunteer_id=volunteer_id,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            actor_id=actor_id,
            at=at,
        )
    )


def change_status(
    caller: Caller,
    volunteer: Volunteer,
    action: str,
    *,
    reason: str | None = None,
    certificate_no: str | None = None,
    armband_no: str | None = None,
) -> Volunteer:
    """Apply a vetting transition; anything not in ``TRANSITIONS`` is 409 and changes nothing."""
    rule = TRANSITIONS[action]
    previous = volunteer.status
    if previous not in rule.sources:
        raise _invalid_transition()
    now = utcnow()
    values: dict[str, Any] = {"status": rule.target, "status_reason": reason, "updated_at": now}
    if action == "approve":
        values["certificate_no"] = certificate_no
        if armband_no is not None:
            values["armband_no"] = armband_no
    # Conditional on the status we read: of two organisers acting at once only one matches a row.
    claimed = db.session.execute(
        sa.update(Volunteer)
        .where(Volunteer.id == volunteer.id, Volunteer.status == previous)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(claimed) != 1:
        raise _invalid_transition()
    record_status_change(
        volunteer.id, previous, rule.target, actor_id=caller.user_id, at=now, reason=reason
    )
    audit_before = {"status": previous, "status_reason": volunteer.status_reason}
    if action == "approve":
        audit_before.update(certificate_no=volunteer.certificate_no, armband_no=volunteer.armband_no)
    audit.record(
        caller,
        f"volunteer.{action}",
        target_type="volunteer",
        target_id=volunteer.id,
        area_path=volunteer.home_grid.path,
        before=audit_before,
        after={key: value for key, value in values.items() if key != "updated_at"},
    )
    db.session.flush()
    db.session.refresh(volunteer)
    rule.signal.send(
        signals.SENDER, **signals.VolunteerEvent(
            volunteer_id=volunteer.id, actor_id=caller.user_id, reason=reason
        )
    )
    return volunteer


def _invalid_transition() -> Conflict:
    return Conflict(
        "This status change is not allowed from the volunteer's current status.",
        code="invalid_status_transition",
    )


def status_history(volunteer: Volunteer, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """The volunteer's status changes, newest first, one page at a time."""
    stmt = sa.select(StatusChange).where(StatusChange.volunteer_id == volunteer.id)
    return paginate(stmt, [StatusChange.id], limit=limit, cursor=cursor, descending=True)
