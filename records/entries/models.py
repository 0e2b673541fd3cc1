"""Tables of the service record: trainings, evaluations and corrections of service hours.

Nothing here is edited after it is written: a correction is a new row. A training or an evaluation
is corrected by a row naming it in ``corrects_id`` (unique, so an entry is corrected at most once;
the newest of a chain is the one in force); a service record by voiding it in ``rewards`` and
writing a replacement there, the story kept in ``ServiceCorrection`` (unique per original).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model


class Rating(StrEnum):
    """The four grades of an evaluation: 优秀, 良好, 合格, 不合格."""

    EXCELLENT = "excellent"
    GOOD = "good"
    PASS = "pass"
    FAIL = "fail"


class Training(Model):
    """A training a volunteer took, recorded by an organisation (an area) with its minutes."""

    __tablename__ = "record_trainings"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True)
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(sa.String(100))
    held_on: Mapped[date] = mapped_column(sa.Date)  # the local day, in the recording area's time zone
    minutes: Mapped[int] = mapped_column(sa.Integer)
    note: Mapped[str | None] = mapped_column(sa.String(500))
    # The entry this one corrects (None: an original); at most one correction per entry.
    corrects_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("record_trainings.id", ondelete="RESTRICT"), unique=True
    )
    correction_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # 0 minutes only in a correction: a training that did not happen.
        sa.CheckConstraint("minutes >= 0 AND minutes <= 1440", name="minutes_sane"),
        sa.CheckConstraint(
            "(corrects_id IS NULL) = (correction_reason IS NULL)", name="correction_has_reason"
        ),
    )


class Evaluation(Model):
    """An organisation's evaluation of a volunteer for a year."""

    __tablename__ = "record_evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True)
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"))
    year: Mapped[int] = mapped_column(sa.SmallInteger)
    rating: Mapped[str] = mapped_column(sa.String(16))
    comment: Mapped[str | None] = mapped_column(sa.String(500))
    corrects_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("record_evaluations.id", ondelete="RESTRICT"), unique=True
    )
    correction_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("rating IN ('excellent','good','pass','fail')", name="rating_known"),
        sa.CheckConstraint(
            "(corrects_id IS NULL) = (correction_reason IS NULL)", name="correction_has_reason"
        ),
        # One evaluation per volunteer, year and organisation; a change is a correction of it.
        sa.Index(
            "uq_record_evaluations_original",
            "volunteer_id",
            "year",
            "area_id",
            unique=True,
            postgresql_where=sa.text("corrects_id IS NULL"),
            sqlite_where=sa.text("corrects_id IS NULL"),
        ),
    )


class ServiceCorrection(Model):
    """A correction of a service record (``rewards``' ``ServiceRecord``): the original voided there,
    the replacement written there (none when the corrected minutes are 0), the story kept here."""

    __tablename__ = "record_service_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    original_id: Mapped[int] = mapped_column(
        sa.ForeignKey("service_records.id", ondelete="RESTRICT"), unique=True
    )
    replacement_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("service_records.id", ondelete="RESTRICT"), unique=True
    )
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True)
    minutes_before: Mapped[int] = mapped_column(sa.Integer)
    minutes_after: Mapped[int] = mapped_column(sa.Integer)
    reason: Mapped[str] = mapped_column(sa.String(500))
    # Points the ledger could not take back from the original (already spent or lapsed).
    points_unrecovered: Mapped[int] = mapped_column(sa.Integer, default=0)
    corrected_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("minutes_after >= 0 AND minutes_after <= 1440", name="minutes_after_sane"),
    )
