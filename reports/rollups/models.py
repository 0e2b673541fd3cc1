"""Roll-ups: a grid's participation figures per local day, and the days each volunteer served.

A district's month is a million assignments, patrols and ledger entries: grouping them on every
request takes seconds even in hand-written SQL (bench/README.md). These tables hold the same
figures already summed, so a report reads one row per grid and day instead:

- ``report_grid_days``: per grid and *local date in the grid's time zone*, every additive figure
  of the shifts, presence, reports and points sections (the definitions are the live queries' in
  :mod:`reports.participation.service`, which also fill these rows: there is one definition), and
  the coverage report's (:mod:`reports.coverage.figures`, likewise).
  Presence counts every shift of the day, ended or not; a report reads a day from here only
  once every shift starting on it has ended (:mod:`reports.rollups.read`).
- ``report_grid_day_badges``: badges earned per grid (the volunteer's home grid) and day.
- ``report_volunteer_months``: per volunteer and month (their home grid's zone), a bit per day
  of the month on which they served a shift (``served_days``, bit 0 = the 1st): "active in the
  period" is a test of a few bits instead of a scan of the period's patrols.
- ``report_rollup_changes``: what changed, written by database triggers on the lower packages'
  tables inside the writing transaction (so no writer, ORM, Core or text SQL, can be missed), and
  folded into the rows above when that transaction commits (:mod:`reports.rollups.listeners`).

``flask reports rollups check`` recomputes the rows from the lower tables and lists mismatches;
``flask reports rollups rebuild`` replaces them.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, UTCDateTime
from core.extensions import Model

#: The additive figures of a grid's day, by the report section they belong to.
SECTION_COLUMNS: dict[str, tuple[str, ...]] = {
    "shifts": ("planned", "cancelled", "places_planned", "places_filled"),
    "presence": ("assignments", "served", "no_shows", "late_withdrawals", "in_review", "served_minutes"),
    "manual": ("manual_minutes",),
    "reports": ("filed", "red", "orange", "yellow", "green", "taken_up", "resolved"),
    "points": ("awarded", "reversed", "redeemed", "expired", "adjusted"),
    # The coverage report's (``reports.coverage.figures.FIGURE_NAMES``, in that order): scheduled
    # shifts, and their planned, staffed and served person-minutes.
    "coverage": ("coverage_shifts", "coverage_planned_minutes", "coverage_staffed_minutes", "coverage_served_minutes"),
}
FIGURE_COLUMNS: tuple[str, ...] = tuple(name for names in SECTION_COLUMNS.values() for name in names)


def _count() -> Mapped[int]:
    return mapped_column(sa.BigInteger, default=0, server_default="0")


class GridDay(Model):
    __tablename__ = "report_grid_days"

    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    planned: Mapped[int] = _count()
    cancelled: Mapped[int] = _count()
    places_planned: Mapped[int] = _count()
    places_filled: Mapped[int] = _count()
    assignments: Mapped[int] = _count()
    served: Mapped[int] = _count()
    no_shows: Mapped[int] = _count()
    late_withdrawals: Mapped[int] = _count()
    in_review: Mapped[int] = _count()
    served_minutes: Mapped[int] = _count()
    manual_minutes: Mapped[int] = _count()
    filed: Mapped[int] = _count()
    red: Mapped[int] = _count()
    orange: Mapped[int] = _count()
    yellow: Mapped[int] = _count()
    green: Mapped[int] = _count()
    taken_up: Mapped[int] = _count()
    resolved: Mapped[int] = _count()
    awarded: Mapped[int] = _count()
    reversed: Mapped[int] = _count()
    redeemed: Mapped[int] = _count()
    expired: Mapped[int] = _count()
    adjusted: Mapped[int] = _count()
    coverage_shifts: Mapped[int] = _count()
    coverage_planned_minutes: Mapped[int] = _count()
    coverage_staffed_minutes: Mapped[int] = _count()
    coverage_served_minutes: Mapped[int] = _count()

    __table_args__ = (sa.Index("ix_report_grid_days_day", "day"),)


class GridDayBadge(Model):
    __tablename__ = "report_grid_day_badges"

    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    badge: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    earned: Mapped[int] = mapped_column(sa.Integer)


class VolunteerMonth(Model):
    __tablename__ = "report_volunteer_months"

    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True)
    #: The first of the month, in the volunteer's home grid's zone.
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    served_days: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (sa.Index("ix_report_volunteer_months_month", "month", "volunteer_id"),)


class RollupChange(Model):
    """One change to fold into the roll-ups (written by triggers; see the module docstring).

    ``kind`` says which refs are set: ``shift`` (``ref_id`` a shift; ``grid_id``/``at`` its grid
    and start as the row had them, for a shift row itself; ``volunteer_id`` a patrol's volunteer),
    ``report`` (``ref_id`` a report; ``grid_id``/``at`` for the report row itself), ``points``
    (``volunteer_id``, ``at`` a ledger entry's or badge's time), ``manual`` (``grid_id``, ``day``:
    a service record), ``moved`` (``volunteer_id`` left home grid ``grid_id``), ``zone``
    (grid ``grid_id`` changed its time zone)."""

    __tablename__ = "report_rollup_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: The writing transaction (PostgreSQL's xid; 0 on SQLite, which has one writer at a time).
    tx: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    ref_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    volunteer_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    grid_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    day: Mapped[date | None] = mapped_column(sa.Date)
