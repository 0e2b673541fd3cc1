"""A volunteer's star levels (one row per volunteer and level) and the objections lodged against them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model


class StarLevelStatus(StrEnum):
    PENDING = "pending"  # publicised, or held by an open objection
    CERTIFIED = "certified"
    REJECTED = "rejected"  # an objection was upheld


class ObjectionStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


class StarLevel(Model):
    """A star level proposed for a volunteer, publicised to their home community until
    ``publicity_ends_at``. ``open_objections`` counts the objections not yet decided: it changes
    only by conditional UPDATEs, and certification requires it to be 0 (service.py)."""

    __tablename__ = "star_levels"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"))
    level: Mapped[int] = mapped_column(sa.SmallInteger)
    status: Mapped[str] = mapped_column(sa.String(16), default=StarLevelStatus.PENDING)
    #: Counted service minutes when proposed (records.hours).
    minutes_at_proposal: Mapped[int] = mapped_column(sa.Integer)
    #: The community it is publicised to (the volunteer's home community then), and its path for scope checks.
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    area_path: Mapped[str] = mapped_column(sa.String(255), index=True)
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    publicity_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    open_objections: Mapped[int] = mapped_column(sa.Integer, default=0)
    certified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("volunteer_id", "level", name="uq_star_levels_volunteer_level"),
        sa.Index("ix_star_levels_due", "status", "publicity_ends_at"),
        sa.CheckConstraint("level BETWEEN 1 AND 5", name="level_known"),
        sa.CheckConstraint("status IN ('pending','certified','rejected')", name="status_known"),
        sa.CheckConstraint("open_objections >= 0", name="open_objections_not_negative"),
    )


class StarObjection(Model):
    """An organiser's objection to a star level during its publicity, decided by district staff."""

    __tablename__ = "star_objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    star_level_id: Mapped[int] = mapped_column(sa.ForeignKey("star_levels.id", ondelete="CASCADE"), index=True)
    lodged_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(sa.String(500))
    lodged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(16), default=ObjectionStatus.OPEN)
    decided_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        # One objection per organiser and level: a retried or doubled request lodges it once.
        sa.UniqueConstraint("star_level_id", "lodged_by", name="uq_star_objections_level_lodger"),
        sa.CheckConstraint("status IN ('open','upheld','dismissed')", name="status_known"),
    )
