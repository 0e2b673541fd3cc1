"""Badges a volunteer earned (``rewards/badges/service.py`` defines them), each granted once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import JSONType
from core.db import UTCDateTime, utcnow
from core.extensions import Model


class VolunteerBadge(Model):
    """A badge a volunteer earned (``rewards/badges/service.py`` defines them); granted once."""

    __tablename__ = "volunteer_badges"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"))
    badge: Mapped[str] = mapped_column(sa.String(40))
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (sa.UniqueConstraint("volunteer_id", "badge", name="uq_volunteer_badges_volunteer_badge"),)

