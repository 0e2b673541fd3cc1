"""GeoJSON polygon validation, point-in-polygon tests and distances (WGS84, lon/lat order as GeoJSON).

Every distance in the application is measured here, on one model: the great circle on the mean
Earth sphere (:data:`EARTH_RADIUS_M`). It stays within 0.5% of the WGS84 ellipsoid anywhere (about
0.2% at China's latitudes): under a metre at the 100-200 m the geofence and the checkpoints judge,
a few tens of metres at the 20 km an open-shift search reaches.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

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
    min_lon, min_lat, max_lon, max_lat = shape(geometry).bounds
    return min_lon, min_lat, max_lon, max_lat


_PREPARED_CACHE_SIZE = 20_000
_prepared: OrderedDict[Hashable, BaseGeometry] = OrderedDict()


def contains(key: Hashable, geometry: dict[str, Any] | str, lon: float, lat: float) -> bool:
    """Point in polygon, boundary included; ``geometry`` is GeoJSON, or its JSON text (parsed only
    when the key is not cached yet: a read can leave the boundary as text, bench/README.md).

    ``key`` must change whenever the geometry does, e.g. (area id, boundary version, updated_at):
    the prepared shape is cached under it, so the GeoJSON is parsed once per key per process.
    The timestamp guards against a reused id (SQLite may reuse the id of a deleted row).
    """
    prepared = _prepared.get(key)
    if prepared is None:
        prepared = shape(json.loads(geometry) if isinstance(geometry, str) else geometry)
        shapely.prepare(prepared)
        _prepared[key] = prepared
        if len(_prepared) > _PREPARED_CACHE_SIZE:
            _prepared.popitem(last=False)
    else:
        _prepared.move_to_end(key)
    return bool(prepared.covers(shapely.Point(lon, lat)))


# --- distances -----------------------------------------------------------------------------------

#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8
_METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180
#: cos(latitude) never below this, so a scale near a pole stays finite.
_MIN_COS_LAT = 0.01
_BOX_SLACK_DEG = 1e-9


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two positions."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _metres_per_degree_lon(lat: float) -> float:
    return _METRES_PER_DEGREE * max(math.cos(math.radians(lat)), _MIN_COS_LAT)


def box_around(lon: float, lat: float, metres: float) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) holding every position within ``metres`` of the point,
    for narrowing by bounding box in SQL before measuring."""
    angle = metres / EARTH_RADIUS_M
    dlat = math.degrees(angle)
    cos_lat = math.cos(math.radians(lat))
    # The circle's widest reach in longitude (at its tangent points, north of east and west).
    dlon = 180.0 if cos_lat <= math.sin(angle) else math.degrees(math.asin(math.sin(angle) / cos_lat))
    # A position exactly at the distance stays inside despite rounding (1e-9° is 0.1 mm).
    dlat, dlon = dlat + _BOX_SLACK_DEG, dlon + _BOX_SLACK_DEG
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def distance_to_boundary_m(boundary: dict[str, Any], lon: float, lat: float) -> float:
    """Metres from the point to the polygon's nearest point; 0 inside it or on its edge.

    The nearest point is found on a local equirectangular projection around the point (true to
    well under 1% over tens of kilometres, unlike raw degrees, whose longitude is shorter than
    their latitude), then measured as the great circle.
    """
    polygon = shape(boundary)
    if polygon.covers(shapely.Point(lon, lat)):
        return 0.0
    x_scale, y_scale = _metres_per_degree_lon(lat), _METRES_PER_DEGREE

    def to_metres(coordinates: Any) -> Any:
        projected = coordinates.copy()
        projected[:, 0] = (coordinates[:, 0] - lon) * x_scale
        projected[:, 1] = (coordinates[:, 1] - lat) * y_scale
        return projected

    nearest = nearest_points(shapely.transform(polygon, to_metres), shapely.Point(0, 0))[0]
    return haversine_m(lat, lon, lat + nearest.y / y_scale, lon + nearest.x / x_scale)
