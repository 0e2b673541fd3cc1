"""The per-volunteer, per-period totals leaderboards rank (``LeaderboardTotal``).

A year of a district's service records and ledger entries is millions of rows; summing them on
every leaderboard request is seconds (bench/README.md). So, like ``PointBalance`` beside the
ledger, each volunteer has one row per month and one per year, moved in the same transaction as
the record or entry it counts:

- :func:`count_service` — by whoever writes or voids a ``ServiceRecord`` (``rewards/awarding/service.py``,
  manual hours): ``+minutes`` when it starts to count, ``-minutes`` when it is voided. Its month
  is the record's ``served_on`` (already the grid's local date).
- :func:`count_entry` — by ``rewards.ledger.service.append`` for every entry it inserts. Only points
  *earned* count (served shifts, manual hours, report and streak bonuses, admin adjustments);
  a reversal takes the earning it reverses off the board in full, in that earning's period, so a
  rejected November patrol leaves November's board even if its points were partly spent (the
  ledger can only take back what is unspent). Spending, refunds and expiry do not change what was
  earned.
  Its period is the entry's time in the volunteer's home grid's time zone.

Each is one upsert of two rows (month, year) in a fixed order, so concurrent counts for one
volunteer serialise on the rows and never deadlock. The upsert also writes the volunteer's home grid
and whether they are active into the rows (``LeaderboardTotal.home_grid_id``, ``volunteer_active``),
read from the volunteer row under a share lock: a move or status change (whose trigger rewrites the
volunteer's rows) either commits before, and is read, or waits for this transaction, and then
rewrites the rows this one wrote too. :func:`mismatches` recomputes the totals from the records and
entries (the invariant tests check), :func:`rebuild` repairs them.

The per-grid sums and ranked counts follow the totals by a database trigger (migration 0018) that
inserts a ``LeaderboardGridChange`` per changed total; :func:`grid_figures` reads them (the folded
``LeaderboardGridTotal`` rows plus the changes since), :func:`fold_grid_changes` folds the changes
in, :func:`grid_mismatches` recomputes the figures from the totals, :func:`rebuild_grids` replaces them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import orm

from core.db import rowcount
from core.extensions import db
from grids.models import Area
from rewards.awarding.models import ServiceRecord
from rewards.leaderboards.models import LeaderboardGridChange, LeaderboardGridTotal, LeaderboardTotal
from rewards.ledger.models import LedgerEntry, LedgerReason
from volunteers.models import Volunteer, VolunteerStatus

#: Reasons whose points count as earned (a reversal counts when what it reverses does).
EARNED = frozenset(
    {
        LedgerReason.SERVED_SHIFT,
        LedgerReason.MANUAL_HOURS,
        LedgerReason.REPORT_BONUS,
        LedgerReason.STREAK_BONUS,
        LedgerReason.ADJUSTMENT,
    }
)

#: The trigger on ``leaderboard_totals`` that writes ``leaderboard_grid_changes`` (PostgreSQL's name).
GRID_TRIGGER = "leaderboard_grid_changes"
# The volunteer's home and status are read under a share lock (PostgreSQL; SQLite has one writer):
# see the module docstring. The month's row is written before the year's.
_UPSERT = (
    "WITH home AS (SELECT home_grid_id, status = '{active}' AS active FROM volunteers WHERE id = :volunteer_id{lock}) "
    "INSERT INTO leaderboard_totals (period, volunteer_id, minutes, points, home_grid_id, volunteer_active) "
    "SELECT :month, :volunteer_id, :minutes, :points, home_grid_id, active FROM home UNION ALL "
    "SELECT :year, :volunteer_id, :minutes, :points, home_grid_id, active FROM home WHERE true "
    "ON CONFLICT (period, volunteer_id) DO UPDATE SET "
    "minutes = leaderboard_totals.minutes + excluded.minutes, "
    "points = leaderboard_totals.points + excluded.points, "
    "home_grid_id = excluded.home_grid_id, volunteer_active = excluded.volunteer_active"
)
_UPSERTS = {
    dialect: sa.text(_UPSERT.format(active=VolunteerStatus.ACTIVE.value, lock=lock))
    for dialect, lock in (("postgresql", " FOR SHARE"), ("sqlite", ""))
}
_HOME_ZONE = (
    sa.select(Area.timezone)
    .join(Volunteer, Volunteer.home_grid_id == Area.id)
    .where(Volunteer.id == sa.bindparam("volunteer_id"))
)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _add(volunteer_id: int, day: date, *, minutes: int = 0, points: int = 0) -> None:
    if not minutes and not points:
        return
    db.session.execute(
        _UPSERTS[db.session.get_bind().dialect.name],
        {
            "month": month_of(day),
            "year": f"{day.year:04d}",
            "volunteer_id": volunteer_id,
            "minutes": int(minutes),
            "points": int(points),
        },
    )


def count_service(volunteer_id: int, served_on: date, minutes: int) -> None:
    """Count ``minutes`` of service on ``served_on`` (negative when a record is voided)."""
    _add(volunteer_id, served_on, minutes=minutes)


def local_day(volunteer_id: int, moment: datetime) -> date:
    zone = db.session.scalar(_HOME_ZONE, {"volunteer_id": volunteer_id}) or "Asia/Shanghai"
    return moment.astimezone(ZoneInfo(zone)).date()


def effect(
    reason: str, amount: int, at: datetime, reversed_reason: str | None, reversed_amount: int | None,
    reversed_at: datetime | None,
) -> tuple[int, datetime]:
    """An entry's points on the board and the moment that dates them (0: it does not count)."""
    if reason == LedgerReason.REVERSAL:
        if reversed_reason is None or reversed_at is None or reversed_amount is None:
            return amount, at  # compensates something unknown: count it as it stands
        return (-reversed_amount, reversed_at) if reversed_reason in EARNED else (0, at)
    return (amount, at) if reason in EARNED else (0, at)


def count_entry(entry: LedgerEntry) -> None:
    """Count a just-appended ledger entry's earned points (no-op for spending and expiry)."""
    original = None
    if entry.reason == LedgerReason.REVERSAL and entry.reverses_id is not None:
        original = db.session.execute(
            sa.select(LedgerEntry.reason, LedgerEntry.amount, LedgerEntry.created_at).where(
                LedgerEntry.id == entry.reverses_id
            )
        ).first()
    points, moment = effect(entry.reason, entry.amount, entry.created_at, *(original or (None, None, None)))
    if points:
        _add(entry.volunteer_id, local_day(entry.volunteer_id, moment), points=points)


# --- the invariant -------------------------------------------------------------------------------


def recount(volunteer_ids: Iterable[int]) -> dict[tuple[str, int], tuple[int, int]]:
    """What the totals of these volunteers must be: ``{(period, volunteer_id): (minutes, points)}``."""
    ids = sorted({int(v) for v in volunteer_ids})
    expected: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    if not ids:
        return {}
    for volunteer_id, served_on, minutes in db.session.execute(
        sa.select(ServiceRecord.volunteer_id, ServiceRecord.served_on, ServiceRecord.minutes).where(
            ServiceRecord.volunteer_id.in_(ids), ServiceRecord.voided_at.is_(None)
        )
    ):
        for period in (month_of(served_on), f"{served_on.year:04d}"):
            expected[(period, volunteer_id)][0] += minutes
    original = orm.aliased(LedgerEntry)
    zones = dict(
        db.session.execute(
            sa.select(Volunteer.id, Area.timezone).join(Area, Area.id == Volunteer.home_grid_id).where(
                Volunteer.id.in_(ids)
            )
        ).tuples().all()
    )
    rows = db.session.execute(
        sa.select(LedgerEntry.volunteer_id, LedgerEntry.reason, LedgerEntry.amount, LedgerEntry.created_at,
                  original.reason, original.amount, original.created_at)
        .outerjoin(original, original.id == LedgerEntry.reverses_id)
        .where(LedgerEntry.volunteer_id.in_(ids))
    )
    for volunteer_id, *entry in rows:
        points, moment = effect(*entry)
        if not points:
            continue
        day = moment.astimezone(ZoneInfo(zones.get(volunteer_id) or "Asia/Shanghai")).date()
        for period in (month_of(day), f"{day.year:04d}"):
            expected[(period, volunteer_id)][1] += points
    return {key: (minutes, points) for key, (minutes, points) in expected.items() if minutes or points}


def stored(volunteer_ids: Iterable[int]) -> dict[tuple[str, int], tuple[int, int]]:
    ids = sorted({int(v) for v in volunteer_ids})
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(LeaderboardTotal.period, LeaderboardTotal.volunteer_id, LeaderboardTotal.minutes,
                  LeaderboardTotal.points).where(LeaderboardTotal.volunteer_id.in_(ids))
    )
    return {(p, v): (m, pts) for p, v, m, pts in rows if m or pts}


def mismatches(volunteer_ids: Iterable[int]) -> list[dict[str, object]]:
    """Periods whose stored totals differ from the records and entries; [] when all agree."""
    ids = list(volunteer_ids)
    want, have = recount(ids), stored(ids)
    return [
        {"period": period, "volunteer_id": volunteer_id, "stored": have.get(key), "expected": want.get(key)}
        for key in sorted(set(want) | set(have))
        for period, volunteer_id in [key]
        if want.get(key) != have.get(key)
    ]


def rebuild(volunteer_ids: Iterable[int]) -> int:
    """Replace these volunteers' totals by a recount (a repair; flushes only). Returns rows written."""
    ids = sorted({int(v) for v in volunteer_ids})
    want = recount(ids)
    homes = {
        volunteer_id: (home_grid_id, status == VolunteerStatus.ACTIVE)
        for volunteer_id, home_grid_id, status in db.session.execute(
            sa.select(Volunteer.id, Volunteer.home_grid_id, Volunteer.status).where(Volunteer.id.in_(ids))
        )
    }
    db.session.execute(sa.delete(LeaderboardTotal).where(LeaderboardTotal.volunteer_id.in_(ids)))
    rows = [
        {
            "period": period, "volunteer_id": volunteer_id, "minutes": minutes, "points": points,
            "home_grid_id": homes[volunteer_id][0], "volunteer_active": homes[volunteer_id][1],
        }
        for (period, volunteer_id), (minutes, points) in want.items()
    ]
    if rows:
        db.session.execute(sa.insert(LeaderboardTotal), rows)
    return len(rows)


# --- the per-grid figures -------------------------------------------------------------------------

FIGURES = ("minutes", "points", "ranked_by_minutes", "ranked_by_points")


def grid_figures(
    period: str, grids: Callable[[sa.ColumnElement[int]], sa.ColumnElement[bool]] | None = None
) -> sa.Subquery:
    """Per grid of the period (those ``grids(grid_id)`` admits, if given): ``grid_id`` and the
    ``FIGURES`` of its active volunteers, as folded plus the changes not folded in yet."""
    parts = []
    for table in (LeaderboardGridTotal.__table__, LeaderboardGridChange.__table__):
        part = sa.select(table.c.grid_id, *(table.c[name] for name in FIGURES)).where(table.c.period == period)
        parts.append(part if grids is None else part.where(grids(table.c.grid_id)))
    both = sa.union_all(*parts).subquery()
    return (
        sa.select(both.c.grid_id, *(sa.func.sum(both.c[name]).label(name) for name in FIGURES))
        .group_by(both.c.grid_id)
        .subquery()
    )


def fold_grid_changes() -> int:
    """Add the grid changes into the folded rows and delete them, in one step (flushes only; the
    task commits). Returns the changes folded.

    On PostgreSQL one statement deletes the changes and adds what it deleted, so a change committed
    meanwhile is neither lost nor added twice; two folds at once take disjoint changes and lock the
    folded rows in the same order. SQLite has one writer at a time.
    """
    sums = ", ".join(f"sum({name})" for name in FIGURES)
    add = ", ".join(f"{name} = leaderboard_grid_totals.{name} + excluded.{name}" for name in FIGURES)
    columns = "period, grid_id, " + ", ".join(FIGURES)
    if db.session.get_bind().dialect.name == "postgresql":
        result = db.session.execute(sa.text(
            f"WITH taken AS (DELETE FROM leaderboard_grid_changes RETURNING {columns}), "
            f"added AS (INSERT INTO leaderboard_grid_totals ({columns}) SELECT period, grid_id, {sums} FROM taken "
            f"GROUP BY period, grid_id ORDER BY period, grid_id ON CONFLICT (period, grid_id) DO UPDATE SET {add}) "
            "SELECT count(*) FROM taken"
        ))
        return int(result.scalar_one())
    last = db.session.scalar(sa.select(sa.func.max(LeaderboardGridChange.id)))
    if last is None:
        return 0
    db.session.execute(sa.text(
        f"INSERT INTO leaderboard_grid_totals ({columns}) SELECT period, grid_id, {sums} FROM leaderboard_grid_changes "
        f"WHERE id <= :last GROUP BY period, grid_id ON CONFLICT (period, grid_id) DO UPDATE SET {add}"
    ), {"last": last})
    return rowcount(db.session.execute(sa.delete(LeaderboardGridChange).where(LeaderboardGridChange.id <= last)))


def _grid_recount() -> sa.Select:
    """What the grid figures must be: the totals of active volunteers, per period and home grid."""
    return (
        sa.select(
            LeaderboardTotal.period,
            LeaderboardTotal.home_grid_id,
            sa.func.sum(LeaderboardTotal.minutes),
            sa.func.sum(LeaderboardTotal.points),
            sa.func.sum(sa.case((LeaderboardTotal.minutes > 0, 1), else_=0)),
            sa.func.sum(sa.case((LeaderboardTotal.points > 0, 1), else_=0)),
        )
        .where(LeaderboardTotal.volunteer_active)
        .group_by(LeaderboardTotal.period, LeaderboardTotal.home_grid_id)
    )


def grid_mismatches() -> list[dict[str, object]]:
    """Grids whose figures (folded plus changes) differ from a recount of the totals; [] when all
    agree (figures of all zeros count as absent)."""

    def significant(rows: Iterable[Any]) -> dict[tuple[str, int], tuple[int, ...]]:
        return {(period, grid): tuple(int(v) for v in values) for period, grid, *values in rows if any(values)}

    both = sa.union_all(
        *(sa.select(t.c.period, t.c.grid_id, *(t.c[n] for n in FIGURES))
          for t in (LeaderboardGridTotal.__table__, LeaderboardGridChange.__table__))
    ).subquery()
    have = significant(db.session.execute(
        sa.select(both.c.period, both.c.grid_id, *(sa.func.sum(both.c[n]) for n in FIGURES))
        .group_by(both.c.period, both.c.grid_id)
    ))
    want = significant(db.session.execute(_grid_recount()))
    return [
        {"period": period, "grid_id": grid_id, "stored": have.get(key), "expected": want.get(key)}
        for key in sorted(set(want) | set(have))
        for period, grid_id in [key]
        if want.get(key) != have.get(key)
    ]


def rebuild_grids() -> int:
    """Replace every grid's figures by a recount of the totals (a repair, or after a bulk load with
    the trigger off; flushes only). Returns rows written."""
    db.session.execute(sa.delete(LeaderboardGridChange))
    db.session.execute(sa.delete(LeaderboardGridTotal))
    columns = ["period", "grid_id", *FIGURES]
    # SQLAlchemy keeps an INSERT's row count only when asked (else -1, which rowcount() refuses).
    insert = sa.insert(LeaderboardGridTotal).from_select(columns, _grid_recount())
    return rowcount(db.session.execute(insert.execution_options(preserve_rowcount=True)))
