"""How a participation section's rows are grouped and limited (:class:`Grouping`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from grids.models import Area, AreaLevel
from grids.queries import in_subtree
from reports.periods import Bucket, bucket_index
from reports.sql import child_in_path, grid_series_key


@dataclass(frozen=True)
class Grouping:
    """How a section's rows are grouped: the whole area, its children, the volunteers of a grid,
    series buckets; or one volunteer's own rows (``volunteer_id``). With ``other_zone``, only the
    rows of grids whose time zone is not that one (what the roll-ups, kept per day of the grid's
    own zone, cannot answer for a period read in another zone).

    ``grid_series`` is the series of each of ``grids`` (their paths, all under ``area``) at once,
    keyed by :func:`grid_series_key`: what the roll-ups recompute for a transaction that touched
    many grids, in one query per section rather than one per grid."""

    area: Area | None
    mode: str  # "total" | "children" | "volunteers" | "series" | "grid_series"
    buckets: list[Bucket] = field(default_factory=list)
    volunteer_id: int | None = None
    other_zone: str | None = None
    grids: tuple[str, ...] = ()

    def apply(
        self, stmt: sa.Select[Any], path: Any, volunteer: Any, moment: Any
    ) -> tuple[sa.Select[Any], Any]:
        """``stmt`` limited to the area (or the volunteer), and the key its rows are grouped by."""
        if self.volunteer_id is not None:
            return stmt.where(volunteer == self.volunteer_id), sa.literal(0)
        if self.mode == "grid_series":
            if self.area is not None:
                stmt = stmt.where(in_subtree(path, self.area.path))
            return stmt.where(path.in_(self.grids)), grid_series_key(path, bucket_index(moment, self.buckets))
        assert self.area is not None
        stmt = stmt.where(in_subtree(path, self.area.path))
        if self.other_zone is not None:
            stmt = stmt.where(path.in_(other_zone_grids(self.area.path, self.other_zone)))
        if self.mode == "series":
            return stmt, bucket_index(moment, self.buckets)
        if self.mode == "volunteers":
            return stmt, volunteer
        if self.mode == "children":
            return stmt, child_in_path(path, sa.literal(len(self.area.path), sa.Integer()))
        return stmt, sa.literal(0)


def other_zone_grids(root_path: str, zone_name: str) -> sa.Select[tuple[str]]:
    """The paths of the grids under ``root_path`` whose time zone is not ``zone_name``."""
    return sa.select(Area.path).where(
        Area.level == AreaLevel.GRID, Area.timezone != zone_name, in_subtree(Area.path, root_path)
    )
