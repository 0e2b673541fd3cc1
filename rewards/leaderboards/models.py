"""Leaderboards: the per-period totals they rank, and who opted out of being shown by name."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model


class RewardPreference(Model):
    """Per volunteer: not shown by name on leaderboards."""

    __tablename__ = "reward_preferences"

    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)
    leaderboard_opt_out: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LeaderboardTotal(Model):
    """A volunteer's served minutes and net points earned in one period, kept for leaderboards.

    ``period`` is a year ("2026") or a month ("2026-11") in the volunteer's home grid's time zone.
    Derived like ``PointBalance``: ``rewards/leaderboards/totals.py`` moves it in the same
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

