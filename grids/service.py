"""Rules of the area tree. No HTTP here; services flush, the request commits."""

from __future__ import annotations

import sqlalchemy as sa

from core.errors import NotFound, ValidationFailed
from core.extensions import db
from grids.models import Area, AreaLevel


def get_area(area_id: int) -> Area:
    area = db.session.get(Area, area_id)
    if area is None:
        raise NotFound("Area not found.", code="area_not_found")
    return area


def get_grid(area_id: int, field: str = "home_grid_id") -> Area:
    """The grid with this id; a missing id or a non-grid area is a validation error on ``field``."""
    area = db.session.get(Area, area_id)
    if area is None or area.level != AreaLevel.GRID:
        raise ValidationFailed(errors={field: ["Not a grid."]})
    return area


def in_subtree(path_column: sa.ColumnElement[str], root_path: str) -> sa.ColumnElement[bool]:
    """SQL condition: ``path_column`` lies in the subtree rooted at ``root_path`` (inclusive)."""
    return path_column.startswith(root_path, autoescape=True)
