"""Broadcasts: an organiser's or staff member's call-out, one row per broadcast (its notifications
are rows of ``notifications``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import JSONType
from core.db import UTCDateTime, utcnow
from core.extensions import Model


class Broadcast(Model):
    """A call-out from an organiser or staff member to the active volunteers of a subtree."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    kinds: Mapped[list[str] | None] = mapped_column(JSONType)  # volunteer kind codes; None = all
    title: Mapped[str] = mapped_column(sa.String(100))
    body: Mapped[str] = mapped_column(sa.String(1000))
    urgent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    recipient_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
