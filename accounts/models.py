"""Users and their login sessions.

A login starts an :class:`AuthSession` (a refresh-token family). Each refresh rotates the refresh
token: the presented one is marked rotated and a new one issued in the same family. Presenting an
already-rotated token after the grace period means it was stolen or replayed, so the whole family is
revoked. Access tokens carry the family id (``sid``); revoking a family revokes them too.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import UTCDateTime, utcnow
from core.extensions import Model
from grids.models import Area


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(20), unique=True)  # E.164
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16), index=True)
    display_name: Mapped[str] = mapped_column(sa.String(100))
    # Organisers, staff and admins act inside this area's subtree; a volunteer's is their home grid.
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    locale: Mapped[str] = mapped_column(sa.String(8), default="zh")
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    area: Mapped[Area] = relationship(lazy="joined")

    __table_args__ = (
        sa.CheckConstraint(
            "role IN ('volunteer','organiser','staff','admin')", name="role_known"
        ),
    )


class AuthSession(Model):
    """One login on one device: a family of refresh tokens."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)  # uuid4
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Absolute limit: refreshing never extends a session past this.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(32))
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))
    client_address: Mapped[str | None] = mapped_column(sa.String(64))


class RefreshToken(Model):
    """Every refresh token ever issued, keyed on its ``jti``."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when this token was exchanged for a new one; presenting it again is reuse.
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaced_by_jti: Mapped[str | None] = mapped_column(sa.String(36))
