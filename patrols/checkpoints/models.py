"""A grid's QR checkpoints, and the scans of them made on patrols (kept when track points are purged)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit import JSONType
from core.db import UTCDateTime, utcnow
from core.extensions import Model
from grids.models import Area


def _no_flags() -> list[str]:
    return []


class Checkpoint(Model):
    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    lat: Mapped[float] = mapped_column(sa.Float)
    lon: Mapped[float] = mapped_column(sa.Float)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # Part of the signed QR payload: bumping it revokes every poster printed before.
    qr_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    grid: Mapped[Area] = relationship(lazy="joined")

    __table_args__ = (sa.CheckConstraint("qr_version >= 1", name="qr_version_positive"),)


class CheckpointScan(Model):
    __tablename__ = "checkpoint_scans"

    id: Mapped[int] = mapped_column(primary_key=True)
    patrol_id: Mapped[int] = mapped_column(sa.ForeignKey("patrols.id", ondelete="CASCADE"), index=True)
    checkpoint_id: Mapped[int] = mapped_column(
        sa.ForeignKey("checkpoints.id", ondelete="RESTRICT"), index=True
    )
    # The phone's UUID for this scan: a retry with it returns the first scan.
    client_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    device_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Null once purged with the patrol's other positions (PRESENCE_POSITION_RETENTION_DAYS).
    lat: Mapped[float | None] = mapped_column(sa.Float)
    lon: Mapped[float | None] = mapped_column(sa.Float)
    accuracy_m: Mapped[float | None] = mapped_column(sa.Float)
    # Metres between the reported position and the checkpoint.
    distance_m: Mapped[float] = mapped_column(sa.Float)
    # far_from_checkpoint, ...; empty when the scan is plausible.
    flags: Mapped[list[str]] = mapped_column(JSONType, default=_no_flags)

    checkpoint: Mapped[Checkpoint] = relationship(lazy="joined")
