"""The map's data: the coverage report's grids (``reports.coverage.service.area_coverage``, never a
second query of coverage) joined with their stored boundaries into the GeoJSON ECharts draws."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shapely.geometry import shape


def hours(minutes: int | None) -> float | None:
    return None if minutes is None else round(minutes / 60, 1)


def map_data(
    report: dict[str, Any], boundaries: dict[int, dict[str, Any]], link: Callable[[int], str]
) -> dict[str, Any]:
    """A FeatureCollection of the report's grids that have a boundary (each feature named by its grid's
    id), and per grid its figures, a point inside it (to aim at) and the URL of its participation page."""
    features, grids = [], []
    for grid in report["grids"]:
        boundary = boundaries.get(grid["grid_id"])
        if boundary is None:
            continue  # drawn nowhere; still in the table below the map
        name = str(grid["grid_id"])
        features.append({
            "type": "Feature",
            "properties": {"name": name, "grid_name": grid["grid_name"]},
            "geometry": boundary,
        })
        inside = shape(boundary).representative_point()  # inside even a concave grid, unlike a centroid
        grids.append({
            "name": name,
            "grid_id": grid["grid_id"],
            "grid_name": grid["grid_name"],
            "coverage_pct": grid["coverage_pct"],
            "served_hours": hours(grid["served_minutes"]),
            "expected_hours": hours(grid["expected_minutes"]),
            "point": [round(inside.x, 7), round(inside.y, 7)],
            "url": link(grid["grid_id"]),
        })
    return {"geojson": {"type": "FeatureCollection", "features": features}, "grids": grids}
