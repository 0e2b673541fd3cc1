"""What the participation and coverage pages compose from the services: the breadcrumbs from the
caller's area down to the area shown, and one volunteer's row of a grid's report."""

from __future__ import annotations

from typing import Any

from core.auth import Caller
from grids.paths import path_ids
from grids.queries import get_area
from volunteers.service import get_in_scope, volunteer_not_found


def breadcrumbs(caller: Caller, area_path: str) -> list[dict[str, Any]]:
    """The areas from the caller's own area down to ``area_path`` (inside the caller's subtree,
    which the report's scope check has already made sure of): never an area above the caller's."""
    ids = path_ids(area_path)
    own_depth = len(path_ids(caller.area_path)) - 1
    crumbs = []
    for area_id in ids[own_depth:]:
        area = get_area(area_id)
        crumbs.append({"id": area.id, "name": area.name, "level": area.level})
    return crumbs


def home_grid_of(caller: Caller, volunteer_id: int) -> int:
    """The home grid of a volunteer the caller may see (``volunteers.service.get_in_scope``: one out of
    reach is the 404 of an id that does not exist)."""
    return get_in_scope(caller, volunteer_id).home_grid_id


def volunteer_row(report: dict[str, Any], volunteer_id: int) -> dict[str, Any]:
    """The volunteer's row of a grid's report (its children are volunteers); a volunteer the grid's
    report does not list is not found, exactly as a volunteer id that does not exist."""
    if report["children_level"] == "volunteer":
        for child in report["children"]:
            if child["id"] == volunteer_id:
                return dict(child)
    raise volunteer_not_found()
