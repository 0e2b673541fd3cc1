"""A swap request dies with its places: when one of them ends by any path (withdrawal, removal,
absence, a cancelled shift, an approved swap), the open requests involving it are cancelled, in the
same transaction. Connected by ``shifts.init_app``.
"""

from __future__ import annotations

from typing import Any, Unpack

import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from shifts import signals
from shifts.models import Assignment
from shifts.swaps.models import SwapRequest, SwapStatus
from shifts.swaps.service import OPEN


def _cancel_open_swaps(condition: sa.ColumnElement[bool], actor_id: int | None) -> None:
    db.session.execute(
        sa.update(SwapRequest)
        .where(SwapRequest.status.in_(OPEN), condition)
        .values(
            status=SwapStatus.CANCELLED,
            decided_by=actor_id,
            decision_reason="A place in this swap ended before the swap was approved.",
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


def _on_assignment_ended(_sender: Any, **event: Unpack[signals.AssignmentCancelled]) -> None:
    assignment_id = event["assignment_id"]
    _cancel_open_swaps(
        sa.or_(
            SwapRequest.from_assignment_id == assignment_id,
            SwapRequest.to_assignment_id == assignment_id,
        ),
        event["actor_id"],
    )


def _on_shift_cancelled(_sender: Any, **event: Unpack[signals.ShiftCancelled]) -> None:
    on_shift = sa.select(Assignment.id).where(Assignment.shift_id == event["shift_id"]).scalar_subquery()
    _cancel_open_swaps(
        sa.or_(
            SwapRequest.from_assignment_id.in_(on_shift), SwapRequest.to_assignment_id.in_(on_shift)
        ),
        event["actor_id"],
    )


def connect() -> None:
    """Subscribe once (blinker keeps the functions by weak reference; these are module-level)."""
    signals.assignment_cancelled.connect(_on_assignment_ended)
    signals.shift_cancelled.connect(_on_shift_cancelled)
