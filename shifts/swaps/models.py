"""Swap requests: a volunteer hands their place to another volunteer of their community, or exchanges it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import UTCDateTime, utcnow
from core.extensions import Model
from shifts.models import Assignment


class SwapStatus(StrEnum):
    PROPOSED = "proposed"  # waiting for the other volunteer
    ACCEPTED = "accepted"  # the other volunteer agreed; waiting for an organiser
    APPROVED = "approved"  # carried out
    DECLINED = "declined"  # by the other volunteer
    REJECTED = "rejected"  # by an organiser
    CANCELLED = "cancelled"  # by the requester, or because an assignment changed meanwhile


class SwapRequest(Model):
    """A volunteer hands their assignment to another volunteer, or exchanges it for theirs.

    The other volunteer accepts, then an organiser in scope of both shifts approves; the rules are
    checked again when it is carried out.
    """

    __tablename__ = "shift_swaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("shift_assignments.id", ondelete="CASCADE"), index=True
    )
    to_volunteer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    # Set for an exchange: the other volunteer's assignment that the requester takes in return.
    to_assignment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("shift_assignments.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(sa.String(16), default=SwapStatus.PROPOSED, index=True)
    message: Mapped[str | None] = mapped_column(sa.String(500))
    decided_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    decision_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    from_assignment: Mapped[Assignment] = relationship(
        foreign_keys=[from_assignment_id], lazy="joined"
    )
    to_assignment: Mapped[Assignment | None] = relationship(
        foreign_keys=[to_assignment_id], lazy="joined"
    )

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('proposed','accepted','approved','declined','rejected','cancelled')",
            name="status_known",
        ),
    )
