"""Checking the roll-ups against the rows and rebuilding them (``flask reports rollups``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from core.extensions import db
from grids.models import Area, AreaLevel
from grids.queries import in_subtree
from reports.rollups.figures import grid_day_figures, grids_day_figures, grids_per_batch
from reports.rollups.models import SECTION_COLUMNS, GridDay, GridDayBadge, VolunteerMonth
from reports.rollups.service import ALL_SECTIONS, VolunteerMonthKey, chunks, put_months, served_days


def grids_under(area: Area) -> list[Area]:
    return list(db.session.scalars(
        sa.select(Area).where(Area.level == AreaLevel.GRID, in_subtree(Area.path, area.path)).order_by(Area.id)
    ))


def grids_under_all() -> list[Area]:
    return list(db.session.scalars(sa.select(Area).where(Area.level == AreaLevel.GRID).order_by(Area.id)))


def _stored_days(grid_id: int, first: date, last: date) -> dict[date, dict[str, Any]]:
    table, badges = GridDay.__table__, GridDayBadge.__table__
    stored: dict[date, dict[str, Any]] = {}
    for row in db.session.execute(
        sa.select(table).where(table.c.grid_id == grid_id, table.c.day.between(first, last))
    ).mappings():
        stored[row["day"]] = {name: row[name] for names in SECTION_COLUMNS.values() for name in names}
    for day, badge, earned in db.session.execute(
        sa.select(badges.c.day, badges.c.badge, badges.c.earned).where(
            badges.c.grid_id == grid_id, badges.c.day.between(first, last)
        )
    ):
        stored.setdefault(day, {}).setdefault("badges", {})[badge] = earned
    return stored


def _normal(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures with zeros dropped: a missing row, a row of zeros and an empty day are alike."""
    flat = {name: int(value) for name, value in figures.items() if name != "badges" and value}
    badges = {badge: n for badge, n in (figures.get("badges") or {}).items() if n}
    return {**flat, "badges": badges} if badges else flat


def grid_mismatches(grid: Area, first: date, last: date) -> list[dict[str, Any]]:
    """The days of a grid whose stored roll-up differs from a recomputation."""
    expected = grid_day_figures(grid, first, last, ALL_SECTIONS)
    stored = _stored_days(grid.id, first, last)
    result = []
    for day in sorted(expected.keys() | stored.keys()):
        want, have = _normal(expected.get(day, {})), _normal(stored.get(day, {}))
        if want != have:
            result.append({"grid_id": grid.id, "day": day.isoformat(), "stored": have, "expected": want})
    return result


def _lock_table(table: sa.Table) -> None:
    """Hold off every fold until this transaction ends (its writes wait at their commit): a
    rebuild then reads every row committed before it, and a fold after it reads the rebuild's."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE"))


def rebuild_grid(grid: Area, first: date, last: date) -> int:
    """Replace a grid's roll-up rows from ``first`` to ``last`` by a recomputation; days written.
    Safe while the app writes (:func:`_lock_table`); commit soon after."""
    return rebuild_grids([grid], first, last)


def rebuild_grids(grids: Sequence[Area], first: date, last: date) -> int:
    """:func:`rebuild_grid` for grids of one time zone at once: one series query per section for
    all of them (a city's 7,000 grids over a year took an hour one by one)."""
    table, badges = GridDay.__table__, GridDayBadge.__table__
    _lock_table(table)
    expected = grids_day_figures(grids, first, last, ALL_SECTIONS)
    ids = [grid.id for grid in grids]
    for t in (table, badges):
        db.session.execute(t.delete().where(t.c.grid_id.in_(ids), t.c.day.between(first, last)))
    names = ("grid_id", "day", *[name for section in SECTION_COLUMNS.values() for name in section])
    rows = [
        {name: 0 for name in names} | {"grid_id": grid_id, "day": day}
        | {k: int(v or 0) for k, v in figures.items() if k != "badges"}
        for (grid_id, day), figures in sorted(expected.items())
        if _normal(figures)
    ]
    for batch in chunks(rows, 1000):
        db.session.execute(table.insert(), batch)
    badge_rows = [
        {"grid_id": grid_id, "day": day, "badge": badge, "earned": n}
        for (grid_id, day), figures in expected.items()
        for badge, n in (figures.get("badges") or {}).items()
        if n
    ]
    for batch in chunks(badge_rows, 1000):
        db.session.execute(badges.insert(), batch)
    return len(rows)


def rebuild_batches(grids: Sequence[Area], first: date, last: date) -> list[list[Area]]:
    """``grids`` in the groups :func:`rebuild_grids` takes at once: one time zone, and as many as
    keep a batch's series within ``BATCH_GRID_DAYS`` grid days."""
    size = grids_per_batch((last - first).days + 1)
    by_zone: dict[str, list[Area]] = defaultdict(list)
    for grid in grids:
        by_zone[grid.timezone].append(grid)
    return [group[start : start + size] for group in by_zone.values() for start in range(0, len(group), size)]


def volunteer_mismatches(volunteer_ids: list[int]) -> list[dict[str, Any]]:
    expected = {key: mask for key, mask in served_days(volunteer_ids).items() if mask}
    table = VolunteerMonth.__table__
    stored: dict[VolunteerMonthKey, int] = {}
    for batch in chunks(volunteer_ids):
        stored.update({(v, m): mask for v, m, mask in db.session.execute(
            sa.select(table.c.volunteer_id, table.c.month, table.c.served_days).where(table.c.volunteer_id.in_(batch))
        ) if mask})
    return [
        {"volunteer_id": v, "month": m.isoformat(), "stored": stored.get((v, m)), "expected": expected.get((v, m))}
        for v, m in sorted(expected.keys() | stored.keys())
        if stored.get((v, m)) != expected.get((v, m))
    ]


def rebuild_volunteers(volunteer_ids: list[int]) -> int:
    """Replace these volunteers' served days by a recomputation; month rows written."""
    table = VolunteerMonth.__table__
    _lock_table(table)
    for batch in chunks(volunteer_ids):
        db.session.execute(table.delete().where(table.c.volunteer_id.in_(batch)))
    masks = served_days(volunteer_ids)
    put_months(masks)
    return sum(1 for mask in masks.values() if mask)
