"""The separate consent to location tracking (PIPL art. 29), one row per grant.

A grant is a row; withdrawing sets ``withdrawn_at`` on the live row (never deleted: the history of
grants and withdrawals is what shows consent was given when the points were collected). At most
one live grant per volunteer.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model


class LocationConsent(Model):
    __tablename__ = "location_consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(sa.String(32))  # LOCATION_TERMS_VERSION agreed to
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.Index(
            "uq_location_consents_one_live",
            "volunteer_id",
            unique=True,
            postgresql_where=sa.text("withdrawn_at IS NULL"),
            sqlite_where=sa.text("withdrawn_at IS NULL"),
        ),
    )
