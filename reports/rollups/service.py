"""Keeping the roll-ups exact: folding recorded changes in, recomputing the days and months they
touch (checking and rebuilding from scratch: :mod:`reports.rollups.repair`).

A change (``report_rollup_changes``, written by triggers) names a shift, a report, a volunteer's
entry, a service record, a move or a zone change; :func:`affected` turns a batch of them into the
grid days (with the sections each needs) and the volunteer months they touch, old and new place
alike (a shift moved to another day changes both days). :func:`recompute` then recomputes exactly
those from the lower tables through the live report queries (one definition of every figure), one
series query per section for the days of many grids at once (``figures.grid_batches``), and
writes them back in one executemany per set of columns. (One query per grid and section made an applied
auto-fill plan over 500 grids spend half a minute in its commit.)

A row that comes to zero stays (a row another transaction waits to lock must not vanish under
it); zeros read as nothing, and a rebuild drops them.

Concurrency: before recomputing, the transaction locks the roll-up rows it is about to write, in
key order (grid days, then volunteer months), creating them when missing. Two transactions
touching the same grid day serialise there; the second's recomputation runs after the first
committed, and PostgreSQL's READ COMMITTED gives each of its statements a fresh snapshot, so it
reads the first's rows too: last writer in, all writes counted. Locks are taken at the commit,
after everything else the transaction locks, and always in the same order: no deadlock cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core.db import dialect_insert
from core.extensions import db
from core.timeutil import zone
from grids.models import Area
from patrols.models import Patrol
from patrols.reports.models import Report
from reports.participation.subsets import served_patrols
from reports.rollups.figures import GridDayKey, GridDays, grid_batches, grids_day_figures
from reports.rollups.models import SECTION_COLUMNS, GridDay, GridDayBadge, RollupChange, VolunteerMonth
from rewards.awarding.models import ServiceRecord
from rewards.badges.models import VolunteerBadge
from rewards.ledger.models import LedgerEntry
from shifts.models import Shift
from volunteers.models import Volunteer

_CHUNK = 2000
#: What a shift's change (its row, its places, its patrols) can move.
SHIFT_SECTIONS = frozenset({"shifts", "presence", "coverage"})
ALL_SECTIONS = frozenset(SECTION_COLUMNS)

VolunteerMonthKey = tuple[int, date]
T = TypeVar("T")


@dataclass
class Affected:
    """What a batch of changes touches."""

    grid_days: dict[GridDayKey, set[str]] = field(default_factory=lambda: defaultdict(set))
    volunteer_months: set[VolunteerMonthKey] = field(default_factory=set)
    #: Volunteers all of whose months are recomputed (their home grid, so their zone, changed).
    volunteers: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.grid_days or self.volunteer_months or self.volunteers)


def chunks(items: Iterable[T], size: int = _CHUNK) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ------------------------------------------------------------------------------------- changes


def take_changes(own_only: bool = True) -> Sequence[sa.Row[Any]]:
    """Delete and return the recorded changes: this transaction's own (``own_only``, at its
    commit), or every committed one (the sweep, for writes made outside a session)."""
    table = RollupChange.__table__
    stmt = sa.delete(table).returning(*table.c)
    if own_only and db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.where(table.c.tx == sa.func.txid_current_if_assigned())
    return db.session.execute(stmt).all()


def affected(changes: Iterable[Any]) -> Affected:
    """The grid days and volunteer months a batch of changes touches (see the module docstring)."""
    result = Affected()
    instants: set[tuple[int, datetime, frozenset[str]]] = set()
    shift_starts: dict[int, set[datetime]] = defaultdict(set)
    shift_volunteers: dict[int, set[int]] = defaultdict(set)
    # Shifts whose own row changed (start, status): every served patrol on them may change its
    # volunteer's served days. A patrol's change names its volunteer; an assignment's changes no
    # served day (served_patrols reads patrols and shifts only).
    whole_shifts: set[int] = set()
    report_ids: set[int] = set()
    volunteer_instants: set[tuple[int, datetime]] = set()
    moved: set[tuple[int, int]] = set()
    for change in changes:
        if change.kind == "shift":
            if change.grid_id is not None and change.at is not None:
                instants.add((change.grid_id, change.at, SHIFT_SECTIONS))
                shift_starts[change.ref_id].add(change.at)
            shift_starts.setdefault(change.ref_id, set())
            if change.volunteer_id is not None:
                shift_volunteers[change.ref_id].add(change.volunteer_id)
            elif change.at is not None:
                whole_shifts.add(change.ref_id)
        elif change.kind == "report":
            report_ids.add(change.ref_id)
            if change.grid_id is not None and change.at is not None:
                instants.add((change.grid_id, change.at, frozenset({"reports"})))
        elif change.kind == "points" and change.at is not None:
            volunteer_instants.add((change.volunteer_id, change.at))
        elif change.kind == "manual" and change.grid_id is not None and change.day is not None:
            result.grid_days[(change.grid_id, change.day)].add("manual")
        elif change.kind == "moved":
            moved.add((change.volunteer_id, change.grid_id))
        elif change.kind == "zone":
            _whole_grid(change.grid_id, result)
    for batch in chunks(shift_starts):
        for shift_id, grid_id, starts_at in db.session.execute(
            sa.select(Shift.id, Shift.grid_id, Shift.starts_at).where(Shift.id.in_(batch))
        ):
            instants.add((grid_id, starts_at, SHIFT_SECTIONS))
            shift_starts[shift_id].add(starts_at)
    for batch in chunks(whole_shifts):
        for shift_id, volunteer_id in db.session.execute(
            sa.select(Patrol.shift_id, Patrol.volunteer_id).where(Patrol.shift_id.in_(batch))
        ):
            shift_volunteers[shift_id].add(volunteer_id)
    for batch in chunks(report_ids):
        for grid_id, received_at in db.session.execute(
            sa.select(Report.grid_id, Report.received_at).where(Report.id.in_(batch))
        ):
            instants.add((grid_id, received_at, frozenset({"reports"})))
    served_at = {(v, at) for shift_id, vs in shift_volunteers.items() for v in vs for at in shift_starts[shift_id]}
    homes = _home_grids({v for v, _ in served_at} | {v for v, _ in volunteer_instants} | {v for v, _ in moved})
    for volunteer_id, at in volunteer_instants:
        if volunteer_id in homes:
            instants.add((homes[volunteer_id], at, frozenset({"points"})))
    for volunteer_id, old_grid in moved:
        result.volunteers.add(volunteer_id)
        for grid_id in (g for g in {old_grid, homes.get(volunteer_id)} if g is not None):
            instants |= {(grid_id, at, frozenset({"points"})) for at in _points_history(volunteer_id)}
    zones = _zones({grid for grid, _, _ in instants} | set(homes.values()))
    for grid_id, at, sections in instants:
        if grid_id in zones:
            result.grid_days[(grid_id, at.astimezone(zones[grid_id]).date())] |= sections
    for volunteer_id, at in served_at:
        home = homes.get(volunteer_id)
        if home in zones and volunteer_id not in result.volunteers:
            result.volunteer_months.add((volunteer_id, at.astimezone(zones[home]).date().replace(day=1)))
    return result


def _whole_grid(grid_id: int, result: Affected) -> None:
    """A grid whose zone changed: every day it has rows for, and its volunteers' months."""
    result.grid_days.update(
        {(grid_id, day): set(ALL_SECTIONS) for day in db.session.scalars(
            sa.select(GridDay.day).where(GridDay.grid_id == grid_id)
        )}
    )
    for day in db.session.scalars(sa.select(GridDayBadge.day).where(GridDayBadge.grid_id == grid_id)):
        result.grid_days[(grid_id, day)].add("points")
    result.volunteers |= set(db.session.scalars(sa.select(Volunteer.id).where(Volunteer.home_grid_id == grid_id)))
    # The days in the new zone: every row of the grid, placed afresh.
    span = _grid_span(grid_id)
    if span is not None:
        first, last = span
        for offset in range((last - first).days + 1):
            result.grid_days[(grid_id, first + timedelta(days=offset))] |= ALL_SECTIONS


def _grid_span(grid_id: int) -> tuple[date, date] | None:
    """The first and last local dates (the grid's zone, one day of slack each way) of its rows."""
    bounds = [
        db.session.execute(sa.select(sa.func.min(Shift.starts_at), sa.func.max(Shift.starts_at)).where(Shift.grid_id == grid_id)).one(),
        db.session.execute(sa.select(sa.func.min(Report.received_at), sa.func.max(Report.received_at)).where(Report.grid_id == grid_id)).one(),
        db.session.execute(
            sa.select(sa.func.min(LedgerEntry.created_at), sa.func.max(LedgerEntry.created_at))
            .join(Volunteer, Volunteer.id == LedgerEntry.volunteer_id)
            .where(Volunteer.home_grid_id == grid_id)
        ).one(),
        db.session.execute(
            sa.select(sa.func.min(VolunteerBadge.earned_at), sa.func.max(VolunteerBadge.earned_at))
            .join(Volunteer, Volunteer.id == VolunteerBadge.volunteer_id)
            .where(Volunteer.home_grid_id == grid_id)
        ).one(),
    ]
    instants = [moment for pair in bounds for moment in pair if moment is not None]
    days = [d for pair in db.session.execute(
        sa.select(sa.func.min(ServiceRecord.served_on), sa.func.max(ServiceRecord.served_on)).where(ServiceRecord.grid_id == grid_id)
    ).all() for d in pair if d is not None]
    if not instants and not days:
        return None
    dates = [moment.date() for moment in instants] + days
    return min(dates) - timedelta(days=1), max(dates) + timedelta(days=1)


def _points_history(volunteer_id: int) -> set[datetime]:
    entries = db.session.scalars(sa.select(LedgerEntry.created_at).where(LedgerEntry.volunteer_id == volunteer_id))
    badges = db.session.scalars(sa.select(VolunteerBadge.earned_at).where(VolunteerBadge.volunteer_id == volunteer_id))
    return set(entries) | set(badges)


def _home_grids(volunteer_ids: set[int]) -> dict[int, int]:
    homes: dict[int, int] = {}
    for batch in chunks(volunteer_ids):
        homes.update({v: g for v, g in db.session.execute(sa.select(Volunteer.id, Volunteer.home_grid_id).where(Volunteer.id.in_(batch)))})
    return homes


def _zones(grid_ids: set[int]) -> dict[int, ZoneInfo]:
    zones: dict[int, ZoneInfo] = {}
    for batch in chunks(grid_ids):
        zones.update({grid_id: zone(name) for grid_id, name in db.session.execute(
            sa.select(Area.id, Area.timezone).where(Area.id.in_(batch))
        )})
    return zones


# ------------------------------------------------------------------------------------ recompute


def recompute(work: Affected) -> None:
    """Lock, recompute from the lower tables and write what ``work`` names (see the module docstring)."""
    if not work:
        return
    grid_days = dict(sorted(work.grid_days.items()))
    _lock_grid_days(list(grid_days))
    months = sorted(work.volunteer_months)
    _lock_volunteer_months(months, sorted(work.volunteers))
    by_grid: dict[int, dict[date, set[str]]] = defaultdict(dict)
    for (grid_id, day), sections in grid_days.items():
        by_grid[grid_id][day] = sections
    grids = {area.id: area for area in db.session.scalars(sa.select(Area).where(Area.id.in_(list(by_grid))))}
    for batch in grid_batches([(grids[grid_id], days) for grid_id, days in by_grid.items() if grid_id in grids]):
        _write_grid_days(batch)
    _write_volunteer_months(months, work.volunteers)


def _lock_grid_days(keys: list[GridDayKey]) -> None:
    table = GridDay.__table__
    for batch in chunks(keys, 500):
        rows = [{"grid_id": grid_id, "day": day} for grid_id, day in batch]
        db.session.execute(dialect_insert(table).on_conflict_do_nothing(), rows)
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(
                sa.select(table.c.grid_id)
                .where(sa.tuple_(table.c.grid_id, table.c.day).in_(batch))
                .order_by(table.c.grid_id, table.c.day)
                .with_for_update()
            ).all()


def _lock_volunteer_months(keys: list[VolunteerMonthKey], volunteers: list[int]) -> None:
    """Lock the month rows about to be written (created as zeros when missing; zeros read as no
    day served) and every month row of the volunteers recomputed whole, in key order."""
    table = VolunteerMonth.__table__
    for key_batch in chunks(keys, 500):
        rows = [{"volunteer_id": v, "month": m, "served_days": 0} for v, m in key_batch]
        db.session.execute(dialect_insert(table).on_conflict_do_nothing(), rows)
    if db.session.get_bind().dialect.name != "postgresql":
        return  # SQLite: one writer at a time already
    for batch in chunks(sorted({v for v, _ in keys} | set(volunteers)), 500):
        db.session.execute(
            sa.select(table.c.volunteer_id)
            .where(table.c.volunteer_id.in_(batch))
            .order_by(table.c.volunteer_id, table.c.month)
            .with_for_update()
        ).all()


def _write_grid_days(batch: list[GridDays]) -> None:
    """Recompute and write one batch of ``figures.grid_batches``: each grid day's sections, in one
    executemany per set of columns."""
    sections = set().union(*(day_sections for _, days in batch for day_sections in days.values()))
    first = min(min(days) for _, days in batch)
    last = max(max(days) for _, days in batch)
    figures = grids_day_figures([grid for grid, _ in batch], first, last, sections)
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    badge_days: list[dict[str, Any]] = []
    badge_rows: list[dict[str, Any]] = []
    for grid, days in batch:
        for day, day_sections in days.items():
            names = tuple(name for section in sorted(day_sections) for name in SECTION_COLUMNS[section])
            values = figures.get((grid.id, day), {})
            updates[names].append(
                {"at_grid": grid.id, "at_day": day, **{f"new_{name}": int(values.get(name) or 0) for name in names}}
            )
            if "points" in day_sections:
                badge_days.append({"at_grid": grid.id, "at_day": day})
                earned = values.get("badges") or {}
                badge_rows += [{"grid_id": grid.id, "day": day, "badge": badge, "earned": n} for badge, n in earned.items()]
    table = GridDay.__table__
    at_grid_day = (table.c.grid_id == sa.bindparam("at_grid"), table.c.day == sa.bindparam("at_day"))
    connection = db.session.connection()
    for names, rows in updates.items():
        connection.execute(table.update().where(*at_grid_day).values({name: sa.bindparam(f"new_{name}") for name in names}), rows)
    badges = GridDayBadge.__table__
    if badge_days:
        connection.execute(
            badges.delete().where(badges.c.grid_id == sa.bindparam("at_grid"), badges.c.day == sa.bindparam("at_day")),
            badge_days,
        )
    if badge_rows:
        connection.execute(badges.insert(), badge_rows)


def served_days(volunteer_ids: Iterable[int], months: set[date] | None = None) -> dict[VolunteerMonthKey, int]:
    """Each volunteer's served days as month → bitmask (bit 0 the 1st), in their home grid's zone;
    only ``months`` when given (else every month they served)."""
    masks: dict[VolunteerMonthKey, int] = defaultdict(int)
    for batch in chunks(sorted(set(volunteer_ids)), 500):
        zones = {v: zone(name) for v, name in db.session.execute(
            sa.select(Volunteer.id, Area.timezone).join(Area, Area.id == Volunteer.home_grid_id).where(Volunteer.id.in_(batch))
        )}
        stmt = served_patrols().where(Patrol.volunteer_id.in_(batch))
        if months:
            start, end = min(months) - timedelta(days=1), max(months) + timedelta(days=32)
            stmt = stmt.where(Shift.starts_at >= datetime.combine(start, datetime.min.time(), UTC),
                              Shift.starts_at < datetime.combine(end, datetime.min.time(), UTC))
        for volunteer_id, starts_at in db.session.execute(stmt):
            local = starts_at.astimezone(zones[volunteer_id]).date()
            month = local.replace(day=1)
            if months is None or month in months:
                masks[(volunteer_id, month)] |= 1 << (local.day - 1)
    return masks


def _write_volunteer_months(keys: list[VolunteerMonthKey], whole: set[int]) -> None:
    table = VolunteerMonth.__table__
    if whole:
        for batch in chunks(sorted(whole)):
            db.session.execute(table.delete().where(table.c.volunteer_id.in_(batch)))
        put_months(served_days(whole))
    by_volunteer: dict[int, set[date]] = defaultdict(set)
    for volunteer_id, month in keys:
        if volunteer_id not in whole:
            by_volunteer[volunteer_id].add(month)
    if not by_volunteer:
        return
    # One recount for all of them (a shift's check-outs each named every volunteer on it, and
    # recounting them one by one made a check-out's commit grow with the shift's size).
    masks = served_days(list(by_volunteer), set().union(*by_volunteer.values()))
    rows = [
        {"at_volunteer": volunteer_id, "at_month": month, "new_served_days": masks.get((volunteer_id, month), 0)}
        for volunteer_id, months in sorted(by_volunteer.items())
        for month in sorted(months)
    ]
    db.session.connection().execute(
        table.update()
        .where(table.c.volunteer_id == sa.bindparam("at_volunteer"), table.c.month == sa.bindparam("at_month"))
        .values(served_days=sa.bindparam("new_served_days")),
        rows,
    )


def put_months(masks: dict[VolunteerMonthKey, int]) -> None:
    rows = [{"volunteer_id": v, "month": m, "served_days": mask} for (v, m), mask in sorted(masks.items()) if mask]
    for batch in chunks(rows):
        db.session.execute(VolunteerMonth.__table__.insert(), batch)
