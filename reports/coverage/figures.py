"""The additive figures of grid coverage (shift count, planned, staffed and served minutes) as one
grouped SQL section, by the definitions of :mod:`reports.coverage.service`.

One definition serves two callers: the live report groups the section by grid, and the daily
roll-ups (:mod:`reports.rollups.service`) group it by the days of one grid (a series), so a
roll-up row cannot count coverage differently from the live report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.extensions import db
from grids.models import Area, AreaLevel
from grids.queries import in_subtree
from patrols.models import COUNTED_PRESENCE, Patrol
from reports.periods import Bucket, Period, bucket_index
from reports.sql import grid_series_key, in_period, whole_minutes_between
from shifts.models import Shift, ShiftStatus

#: The section's figures, as :class:`Figures` and the live section name them.
FIGURE_NAMES = ("shift_count", "planned_minutes", "staffed_minutes", "served_minutes")


@dataclass
class Figures:
    """One grid's (or the area's) figures for one period. A grid's ``expected_minutes`` is the
    larger of planned and target (:meth:`settle`); an area's is the sum of its grids'."""

    shift_count: int = 0
    planned_minutes: int = 0
    target_minutes: int = 0
    expected_minutes: int = 0
    staffed_minutes: int = 0
    served_minutes: int = 0

    def settle(self) -> Figures:
        self.expected_minutes = max(self.planned_minutes, self.target_minutes)
        return self

    @property
    def expected_basis(self) -> str:
        if self.expected_minutes == 0:
            return "none"
        return "shifts" if self.planned_minutes >= self.target_minutes else "target"

    @property
    def coverage_pct(self) -> float | None:
        return percentage(self.served_minutes, self.expected_minutes)

    def add(self, other: Figures) -> None:
        for item in dataclasses.fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def view(self) -> dict[str, Any]:
        # vars(), not dataclasses.asdict: the fields are integers, and asdict's deep copy cost 0.3 s
        # for an area of 2,000 grids (two periods each).
        return {**vars(self), "coverage_pct": self.coverage_pct}

    def grid_view(self) -> dict[str, Any]:
        return {**self.view(), "expected_basis": self.expected_basis}


def percentage(part: int, whole: int) -> float | None:
    return round(part * 100 / whole, 1) if whole else None


def change(now: float | None, before: float | None) -> float | None:
    """Percentage points gained since the previous period (null when either is unknown)."""
    return None if now is None or before is None else round(now - before, 1)


def target_for(weekly_minutes: int, days: int) -> int:
    """``weekly_minutes`` × ``days`` / 7, rounded half up, in integers."""
    return (2 * weekly_minutes * days + 7) // 14


# ------------------------------------------------------------------------------------ the section


def grid_filter(root_path: str, timezone: str) -> list[sa.ColumnElement[bool]]:
    return [Area.level == AreaLevel.GRID.value, in_subtree(Area.path, root_path), Area.timezone == timezone]


def scheduled_in(root_path: str, period: Period) -> list[sa.ColumnElement[bool]]:
    """Scheduled shifts of the grids in the period's zone under ``root_path``, by their start
    (each grid's own local midnights, since only grids of the period's zone are taken)."""
    return [
        *grid_filter(root_path, period.zone.key),
        Shift.status == ShiftStatus.SCHEDULED.value,
        in_period(Shift.starts_at, period),
    ]


def counted(patrol: type[Patrol] = Patrol) -> list[sa.ColumnElement[bool]]:
    """A patrol whose presence counts (verified or approved) and served some minutes."""
    return [
        patrol.presence_status.in_([status.value for status in COUNTED_PRESENCE]),
        patrol.served_minutes > 0,
    ]


def coverage_section(
    root_path: str, period: Period, buckets: list[Bucket] | None = None, grids: Sequence[str] = ()
) -> dict[Any, dict[str, int]]:
    """The ``FIGURE_NAMES`` of the grids of the period's zone under ``root_path``: by grid id, or
    with ``buckets`` (the roll-ups: one grid, its days) by bucket index, or with ``buckets`` and
    ``grids`` (the roll-ups: those grids' days) by ``grid_series_key``. Two aggregates, shifts
    and then served minutes, so the patrols' join never multiplies the shift sums."""
    key: Any = Shift.grid_id if buckets is None else bucket_index(Shift.starts_at, buckets)
    only: list[sa.ColumnElement[bool]] = []
    if grids:
        assert buckets is not None
        key, only = grid_series_key(Area.path, key), [Area.path.in_(grids)]
    length = whole_minutes_between(Shift.starts_at, Shift.ends_at)
    result: dict[Any, dict[str, int]] = {}
    for k, count, planned, staffed in db.session.execute(
        sa.select(key, sa.func.count(Shift.id), sa.func.sum(Shift.max_headcount * length),
                  sa.func.sum(Shift.primary_count * length))
        .join(Area, Area.id == Shift.grid_id)
        .where(*scheduled_in(root_path, period), *only)
        .group_by(key)
    ):
        result[k] = {"shift_count": int(count), "planned_minutes": int(planned or 0),
                     "staffed_minutes": int(staffed or 0), "served_minutes": 0}
    for k, served in db.session.execute(
        sa.select(key, sa.func.sum(Patrol.served_minutes))
        .join(Shift, Shift.id == Patrol.shift_id)
        .join(Area, Area.id == Shift.grid_id)
        .where(*scheduled_in(root_path, period), *counted(), *only)
        .group_by(key)
    ):
        # Served patrols are on scheduled shifts of the same key, already in ``result``.
        result.setdefault(k, dict.fromkeys(FIGURE_NAMES, 0))["served_minutes"] = int(served or 0)
    return result
