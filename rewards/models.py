"""Rewards: versioned point rules, an append-only ledger with its balance, service hours, badges,
a catalogue with redemptions, and leaderboard opt-outs.

The ledger is the truth: a volunteer's balance is the sum of their entries. ``PointBalance`` is
that sum kept beside it so spending can be a conditional UPDATE (``balance >= cost``) and never
overdraw; it changes only in the transaction that appends the entry it reflects.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import JSONType
from core.db import UTCDateTime, utcnow
from core.extensions import db

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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


class RedemptionStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class PointRule(db.Model):
    """A city's point rules from ``effective_from`` on; a change is a new version, never an edit."""

    __tablename__ = "point_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(sa.Integer)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    points_per_hour: Mapped[int] = mapped_column(sa.Integer)
    # Served time counts in whole units of this many minutes (15: 50 minutes count as 45).
    rounding_minutes: Mapped[int] = mapped_column(sa.Integer, default=15)
    # {"red": 20, "orange": 10, "yellow": 5, "green": 2}
    report_bonus: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    daily_cap: Mapped[int | None] = mapped_column(sa.Integer)  # points per volunteer and local day
    streak_days: Mapped[int | None] = mapped_column(sa.Integer)
    streak_bonus: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Points earned in year Y expire at the end of year Y + expiry_years (1: "end of the following
    # year"); None: never.
    expiry_years: Mapped[int | None] = mapped_column(sa.Integer)
    manual_hours_earn_points: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("city_id", "version", name="uq_point_rules_city_version"),
        sa.Index("ix_point_rules_city_effective", "city_id", "effective_from"),
        sa.CheckConstraint("points_per_hour >= 0 AND points_per_hour <= 1000", name="points_per_hour_sane"),
        sa.CheckConstraint("rounding_minutes BETWEEN 1 AND 240", name="rounding_sane"),
        sa.CheckConstraint("daily_cap IS NULL OR daily_cap > 0", name="daily_cap_positive"),
    )


class LedgerEntry(db.Model):
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


class PointBalance(db.Model):
    """The sum of a volunteer's ledger entries, kept for conditional spending."""

    __tablename__ = "point_balances"

    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (sa.CheckConstraint("balance >= 0", name="balance_non_negative"),)


class ServiceRecord(db.Model):
    """Service time that counts for hours, badges and leaderboards: a served patrol or hand-entered."""

    __tablename__ = "service_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"))
    source_type: Mapped[str] = mapped_column(sa.String(24))  # "patrol" or "manual"
    source_id: Mapped[str] = mapped_column(sa.String(64))
    minutes: Mapped[int] = mapped_column(sa.Integer)
    served_on: Mapped[date] = mapped_column(sa.Date)  # local date in the grid's time zone
    grid_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id", ondelete="SET NULL"))
    # Set when the presence behind it was rejected after review: it no longer counts.
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("source_type", "source_id", name="uq_service_records_source"),
        sa.Index("ix_service_records_volunteer_served_on", "volunteer_id", "served_on"),
        sa.Index("ix_service_records_served_on", "served_on"),
        sa.CheckConstraint("minutes > 0 AND minutes <= 1440", name="minutes_sane"),
    )


class VolunteerBadge(db.Model):
    """A badge a volunteer earned (``rewards/badges.py`` defines them); granted once."""

    __tablename__ = "volunteer_badges"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"))
    badge: Mapped[str] = mapped_column(sa.String(40))
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (sa.UniqueConstraint("volunteer_id", "badge", name="uq_volunteer_badges_volunteer_badge"),)


class RewardPreference(db.Model):
    """Per volunteer: not shown by name on leaderboards."""

    __tablename__ = "reward_preferences"

    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)
    leaderboard_opt_out: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LeaderboardTotal(db.Model):
    """A volunteer's served minutes and net points earned in one period, kept for leaderboards.

    ``period`` is a year ("2026") or a month ("2026-11") in the volunteer's home grid's time zone.
    Derived like ``PointBalance``: ``rewards/leaderboards_totals.py`` moves it in the same
    transaction as the service record or ledger entry it counts, and can recount it from them;
    ranking a district's 100,000 volunteers then reads one row each instead of a year of entries.
    """

    __tablename__ = "leaderboard_totals"

    period: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)
    minutes: Mapped[int] = mapped_column(sa.Integer, default=0)
    points: Mapped[int] = mapped_column(sa.Integer, default=0)

    # A board's top rows are read down these in value order, stopping at the page's end.
    __table_args__ = (
        sa.Index("ix_leaderboard_totals_period_minutes", "period", "minutes"),
        sa.Index("ix_leaderboard_totals_period_points", "period", "points"),
    )


class CatalogueItem(db.Model):
    """Something volunteers of a subtree can redeem points for."""

    __tablename__ = "catalogue_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(2000), default="")
    points_cost: Mapped[int] = mapped_column(sa.Integer)
    stock: Mapped[int] = mapped_column(sa.Integer)
    per_volunteer_limit: Mapped[int | None] = mapped_column(sa.Integer)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    photo_key: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint("points_cost > 0 AND points_cost <= 1000000", name="cost_sane"),
        sa.CheckConstraint("stock >= 0", name="stock_non_negative"),
        sa.CheckConstraint("per_volunteer_limit IS NULL OR per_volunteer_limit > 0", name="limit_positive"),
    )


class Redemption(db.Model):
    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("catalogue_items.id", ondelete="RESTRICT"), index=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"))
    points: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16), default=RedemptionStatus.REQUESTED)
    pickup_code: Mapped[str | None] = mapped_column(sa.String(16), unique=True)
    client_id: Mapped[str | None] = mapped_column(sa.String(36), unique=True)
    decided_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.Index("ix_redemptions_volunteer_item", "volunteer_id", "item_id"),
        sa.CheckConstraint(
            "status IN ('requested','approved','fulfilled','cancelled','rejected')", name="status_known"
        ),
        sa.CheckConstraint("points > 0", name="points_positive"),
    )
