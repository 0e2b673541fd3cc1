"""The points ledger: append-only entries, and each volunteer's balance beside them.

The ledger is the truth: a volunteer's balance is the sum of their entries. ``PointBalance`` is
that sum kept beside it so spending can be a conditional UPDATE (``balance >= cost``) and never
overdraw; it changes only in the transaction that appends the entry it reflects.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, UTCDateTime, utcnow
from core.extensions import Model


class LedgerReason(StrEnum):
    SERVED_SHIFT = "served_shift"  # points per served hour (rounded), from patrols.shift_served
    MANUAL_HOURS = "manual_hours"  # hours entered by an organiser, if the rule pays for them
    REPORT_BONUS = "report_bonus"  # a confirmed report, by level
    STREAK_BONUS = "streak_bonus"  # N days in a row with a served shift
    REVERSAL = "reversal"  # compensates an earlier entry (presence rejected after review, …)
    REDEMPTION = "redemption"  # points spent on a catalogue item
    REDEMPTION_REFUND = "redemption_refund"  # a redemption cancelled or rejected
    EXPIRY = "expiry"  # points past their expiry date
    ADJUSTMENT = "adjustment"  # an admin's correction, with a note


class LedgerEntry(Model):
    """One change of a volunteer's points. Append-only: never updated, never deleted."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"))
    amount: Mapped[int] = mapped_column(sa.Integer)  # positive earns, negative spends or reverses
    reason: Mapped[str] = mapped_column(sa.String(24))
    # What caused it ("patrol", "report", "redemption", "entry", …) and its id: with ``reason``
    # unique, so the same served shift or confirmed report never pays twice.
    source_type: Mapped[str] = mapped_column(sa.String(24))
    source_id: Mapped[str] = mapped_column(sa.String(64))
    rule_version: Mapped[int | None] = mapped_column(sa.Integer)
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_entries.id", ondelete="RESTRICT"))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    # When an earning's points lapse (rule's expiry); None for spending and non-expiring points.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("source_type", "source_id", "reason", name="uq_ledger_entries_source_reason"),
        sa.Index("ix_ledger_entries_volunteer_id_id", "volunteer_id", "id"),
        sa.Index("ix_ledger_entries_created_at", "created_at"),
        sa.CheckConstraint("amount <> 0", name="amount_non_zero"),
    )


class PointBalance(Model):
    """The sum of a volunteer's ledger entries, kept for conditional spending."""

    __tablename__ = "point_balances"

    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (sa.CheckConstraint("balance >= 0", name="balance_non_negative"),)
