"""Certificates, their per-issuer yearly counters, and the seal images of areas.

A certificate is asked for (``requested``), then issued: the hours, the content and places of the
service and the identity printed are frozen on it then, so the PDF, rendered on every download from
these columns, reads the same for ever; the seal is frozen too (its storage key: an area's new seal
never changes a certificate already issued). Revoking keeps everything and adds when and why.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model


class CertificateStatus(StrEnum):
    REQUESTED = "requested"
    ISSUED = "issued"
    REVOKED = "revoked"


class Certificate(Model):
    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True)
    # The recording organisation: a community or above whose subtree holds the grids served.
    issuer_area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    first_day: Mapped[date] = mapped_column(sa.Date)
    last_day: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(16), default=CertificateStatus.REQUESTED)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Set at issue, never changed afterwards.
    number: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    year: Mapped[int | None] = mapped_column(sa.SmallInteger)
    sequence: Mapped[int | None] = mapped_column(sa.Integer)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_on: Mapped[date | None] = mapped_column(sa.Date)  # the issuer's local date, printed
    issued_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    minutes: Mapped[int | None] = mapped_column(sa.Integer)
    content: Mapped[str | None] = mapped_column(sa.String(1000))
    places: Mapped[str | None] = mapped_column(sa.String(1000))
    volunteer_name: Mapped[str | None] = mapped_column(sa.String(50))
    volunteer_number: Mapped[str | None] = mapped_column(sa.String(64))
    # The ID number as printed (masked, or full where the issuer chose so): encrypted like the
    # volunteer's own, as it may be the full number.
    id_number_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    full_id_number: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    issuer_name: Mapped[str | None] = mapped_column(sa.String(100))
    seal_key: Mapped[str | None] = mapped_column(sa.String(200))
    # The highest star level certified after its publicity (records/stars), at issue; None: none.
    star_level: Mapped[int | None] = mapped_column(sa.SmallInteger)

    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    revoke_reason: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        sa.CheckConstraint("status IN ('requested','issued','revoked')", name="status_known"),
        sa.CheckConstraint("last_day >= first_day", name="period_ordered"),
        sa.CheckConstraint(
            "status = 'requested' OR (number IS NOT NULL AND minutes IS NOT NULL AND issued_at IS NOT NULL)",
            name="issued_complete",
        ),
        # One live certificate per volunteer, issuer and period: a second request returns it, and
        # two requests at once meet here. A revoked one no longer holds the period.
        sa.Index(
            "uq_certificates_live_period",
            "volunteer_id", "issuer_area_id", "first_day", "last_day",
            unique=True,
            postgresql_where=sa.text("status <> 'revoked'"),
            sqlite_where=sa.text("status <> 'revoked'"),
        ),
        sa.UniqueConstraint("issuer_area_id", "year", "sequence", name="uq_certificates_issuer_year_sequence"),
        sa.Index("ix_certificates_status_id", "status", "id"),
    )


class CertificateCounter(Model):
    """The last sequence number given per issuer and year, advanced by ``INSERT … ON CONFLICT DO
    UPDATE … RETURNING`` inside the issuing transaction: a rolled-back issue gives its number back,
    and concurrent issues queue on the row, so the numbers have no gap and no repeat."""

    __tablename__ = "certificate_counters"

    issuer_area_id: Mapped[int] = mapped_column(
        sa.ForeignKey("areas.id", ondelete="RESTRICT"), primary_key=True
    )
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    last_sequence: Mapped[int] = mapped_column(sa.Integer)

    __table_args__ = (sa.CheckConstraint("last_sequence >= 1", name="last_sequence_positive"),)


class AreaSeal(Model):
    """The seal image of an area (uploaded by staff); the file lives in the photo store."""

    __tablename__ = "area_seals"

    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True)
    photo_key: Mapped[str] = mapped_column(sa.String(200))
    content_type: Mapped[str] = mapped_column(sa.String(32))
    uploaded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
