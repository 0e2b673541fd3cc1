"""GeoJSON polygon validation and point-in-polygon tests (WGS84, lon/lat order as GeoJSON)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from core.errors import ValidationFailed

_POLYGON_TYPES = ("Polygon", "MultiPolygon")


def _rings(geometry: dict[str, Any]) -> list[list[Any]]:
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or not coordinates:
        raise ValueError("Boundary coordinates are missing.")
    polygons = coordinates if geometry["type"] == "MultiPolygon" else [coordinates]
    rings: list[list[Any]] = []
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise ValueError("Boundary coordinates are malformed.")
        rings.extend(polygon)
    return rings


def validate_boundary(geometry: Any, max_vertices: int) -> dict[str, Any]:
    """Check a GeoJSON Polygon/MultiPolygon: closed rings, WGS84 ranges, valid, bounded size.

    Returns the geometry normalised to plain lists of floats. Raises ValidationFailed on ``boundary``.
    """
    try:
        if not isinstance(geometry, dict) or geometry.get("type") not in _POLYGON_TYPES:
            raise ValueError("Boundary must be a GeoJSON Polygon or MultiPolygon.")
        rings = _rings(geometry)
        vertices = 0
        for ring in rings:
            if not isinstance(ring, list) or len(ring) < 4:
                raise ValueError("Each ring needs at least 4 positions.")
            for position in ring:
                if (
                    not isinstance(position, list | tuple)
                    or len(position) < 2
                    or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in position[:2])
                ):
                    raise ValueError("Each position must be [longitude, latitude].")
                lon, lat = position[0], position[1]
                if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    raise ValueError("Coordinates are outside WGS84 ranges.")
            if list(ring[0][:2]) != list(ring[-1][:2]):
                raise ValueError("Each ring must be closed.")
            vertices += len(ring)
        if vertices > max_vertices:
            raise ValueError(f"Boundary has more than {max_vertices} vertices.")
        normalised = _normalise(geometry)
        polygon = shape(normalised)
        if polygon.is_empty or not polygon.is_valid:
            raise ValueError("Boundary is not a valid polygon (self-intersecting or degenerate).")
        if polygon.area <= 0:
            raise ValueError("Boundary is not a valid polygon (self-intersecting or degenerate).")
    except ValueError as error:
        raise ValidationFailed(errors={"boundary": [str(error)]}) from None
    return normalised


def _normalise(geometry: dict[str, Any]) -> dict[str, Any]:
    def ring(r: list[Any]) -> list[list[float]]:
        return [[float(p[0]), float(p[1])] for p in r]

    if geometry["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": [ring(r) for r in geometry["coordinates"]]}
    return {
        "type": "MultiPolygon",
        "coordinates": [[ring(r) for r in polygon] for polygon in geometry["coordinates"]],
    }


def bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat)."""
    return tuple(shape(geometry).bounds)  # type: ignore[return-value]


_PREPARED_CACHE_SIZE = 20_000
_prepared: OrderedDict[Hashable, BaseGeometry] = OrderedDict()


def contains(key: Hashable, geometry: dict[str, Any], lon: float, lat: float) -> bool:
    """Point in polygon, boundary included.

    ``key`` must change whenever the geometry does, e.g. (area id, boundary version, updated_at):
    the prepared shape is cached under it, so the GeoJSON is parsed once per key per process.
    The timestamp guards against a reused id (SQLite may reuse the id of a deleted row).
    """
    prepared = _prepared.get(key)
    if prepared is None:
        prepared = shape(geometry)
        shapely.prepare(prepared)
        _prepared[key] = prepared
        if len(_prepared) > _PREPARED_CACHE_SIZE:
            _prepared.popitem(last=False)
    else:
        _prepared.move_to_end(key)
    return bool(prepared.covers(shapely.Point(lon, lat)))
