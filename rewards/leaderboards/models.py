"""Leaderboards: the per-period totals they rank, and who opted out of being shown by name."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, UTCDateTime, utcnow
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

    ``home_grid_id`` and ``volunteer_active`` copy the volunteer's home grid and whether their status
    is active, so that a board filters and counts on this row alone (no join of 100,000 volunteers):
    the upsert writes them from the volunteer row it locks, and a database trigger on ``volunteers``
    (migration 0018) rewrites them in the transaction that moves a volunteer or changes their status.
    """

    __tablename__ = "leaderboard_totals"

    period: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)
    minutes: Mapped[int] = mapped_column(sa.Integer, default=0)
    points: Mapped[int] = mapped_column(sa.Integer, default=0)
    home_grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    volunteer_active: Mapped[bool] = mapped_column(sa.Boolean)

    # A board's top rows are read down the value indexes in value order, stopping at the page's
    # end; the caller's own rank counts down them from their value (index-only: the home grid is in
    # the index). Only active volunteers are ranked, so only their rows are indexed there.
    __table_args__ = (
        sa.Index(
            "ix_leaderboard_totals_period_minutes", "period", "minutes",
            postgresql_include=["home_grid_id"],
            postgresql_where=sa.text("volunteer_active"), sqlite_where=sa.text("volunteer_active"),
        ),
        sa.Index(
            "ix_leaderboard_totals_period_points", "period", "points",
            postgresql_include=["home_grid_id"],
            postgresql_where=sa.text("volunteer_active"), sqlite_where=sa.text("volunteer_active"),
        ),
        # A small area's rows (a grid, a community) without walking the whole period's.
        sa.Index(
            "ix_leaderboard_totals_period_home_grid_id", "period", "home_grid_id",
            postgresql_where=sa.text("volunteer_active"), sqlite_where=sa.text("volunteer_active"),
        ),
        # The trigger on volunteers and the recount find a volunteer's rows by this.
        sa.Index("ix_leaderboard_totals_volunteer_id", "volunteer_id"),
    )


class _GridFigures:
    """What a grid contributes to a board in a period: its active volunteers' sums, and how many
    of them have a value above 0 (a board's ``ranked``)."""

    minutes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    ranked_by_minutes: Mapped[int] = mapped_column(sa.Integer, default=0)
    ranked_by_points: Mapped[int] = mapped_column(sa.Integer, default=0)


class LeaderboardGridTotal(_GridFigures, Model):
    """Per period and grid, the figures of its active volunteers' totals, as last folded.

    A grid's figures are this row plus its ``LeaderboardGridChange`` rows not folded in yet; together
    they equal the ``LeaderboardTotal`` rows with ``volunteer_active`` at home in the grid. A
    district's board then reads its 1,000 grids' rows (and the changes since the last fold) instead
    of counting 100,000 volunteers' on every request. ``rewards/leaderboards/totals.py``
    ``grid_mismatches`` recomputes them.
    """

    __tablename__ = "leaderboard_grid_totals"

    period: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True)


class LeaderboardGridChange(_GridFigures, Model):
    """One change of a grid's figures, written by the database trigger on ``leaderboard_totals``
    (migration 0018) in the transaction that changes the total, whoever writes it: the upsert, a
    recount, or the trigger that follows a volunteer's move or status.

    Writers only insert these (never update a row the grid's other volunteers share), so concurrent
    points never wait on each other or deadlock here; the fold task
    (``rewards/leaderboards/tasks.py``) adds them into ``LeaderboardGridTotal`` and deletes them
    in one transaction, so a reader always sees each change exactly once.
    """

    __tablename__ = "leaderboard_grid_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(7))
    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="CASCADE"))

    __table_args__ = (sa.Index("ix_leaderboard_grid_changes_period_grid_id", "period", "grid_id"),)
