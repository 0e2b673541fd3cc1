"""Volunteers, their kinds, status history, skills and weekly availability."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.models import User
from core.db import UTCDateTime, utcnow
from core.extensions import Model
from grids.models import Area


class VolunteerStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    RETIRED = "retired"


#: Kinds every city has; admins add more (e.g. herder sentinel 牧民哨兵). Seeded by the first migration.
BUILTIN_KINDS = (
    {"code": "volunteer_police", "name_zh": "义警", "name_en": "Volunteer police"},
    {"code": "alley_steward", "name_zh": "小巷管家", "name_en": "Alley steward"},
)


class VolunteerKind(Model):
    __tablename__ = "volunteer_kinds"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(sa.String(50))
    name_en: Mapped[str] = mapped_column(sa.String(50))
    builtin: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Volunteer(Model):
    __tablename__ = "volunteers"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT"), unique=True
    )
    kind_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteer_kinds.id"), index=True)
    home_grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=VolunteerStatus.PENDING, index=True)
    real_name: Mapped[str] = mapped_column(sa.String(50))
    # National ID: Fernet ciphertext, plus an HMAC for uniqueness without decrypting.
    national_id_encrypted: Mapped[str] = mapped_column(sa.Text)
    national_id_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    emergency_contact_name: Mapped[str | None] = mapped_column(sa.String(50))
    emergency_contact_phone: Mapped[str | None] = mapped_column(sa.String(20))
    consent_version: Mapped[str] = mapped_column(sa.String(32))
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime)
    certificate_no: Mapped[str | None] = mapped_column(sa.String(50))  # 聘任证书编号
    armband_no: Mapped[str | None] = mapped_column(sa.String(50))
    status_reason: Mapped[str | None] = mapped_column(sa.String(500))
    closure_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(lazy="joined")
    kind: Mapped[VolunteerKind] = relationship(lazy="joined")
    home_grid: Mapped[Area] = relationship(lazy="joined")
    skills: Mapped[list[VolunteerSkill]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="VolunteerSkill.skill"
    )
    availability: Mapped[list[AvailabilitySlot]] = relationship(
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="(AvailabilitySlot.weekday, AvailabilitySlot.start_time)",
    )

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending','active','rejected','suspended','retired')", name="status_known"
        ),
    )


class VolunteerSkill(Model):
    __tablename__ = "volunteer_skills"

    volunteer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True
    )
    skill: Mapped[str] = mapped_column(sa.String(50), primary_key=True, index=True)


class AvailabilitySlot(Model):
    """A weekly time range in the home grid's local time; weekday 0 is Monday."""

    __tablename__ = "availability_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(sa.SmallInteger)
    start_time: Mapped[time] = mapped_column(sa.Time)
    end_time: Mapped[time] = mapped_column(sa.Time)

    __table_args__ = (
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        sa.CheckConstraint("start_time < end_time", name="start_before_end"),
    )


class StatusChange(Model):
    """Every status transition of a volunteer, with who made it and why."""

    __tablename__ = "volunteer_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
