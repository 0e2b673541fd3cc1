"""Grid boundaries: validation against the configured vertex limit, bounding box, audit summary."""

from __future__ import annotations

from typing import Any

from flask import current_app
from shapely.errors import GEOSException

from core import geo, i18n
from core.errors import ValidationFailed
from grids.models import Area

INVALID_POLYGON = i18n.N_("Boundary is not a valid polygon (self-intersecting or degenerate).")

# The texts of core.geo.validate_boundary.
i18n.register_messages(
    i18n.N_("Boundary must be a GeoJSON Polygon or MultiPolygon."),
    i18n.N_("Boundary coordinates are missing."),
    i18n.N_("Boundary coordinates are malformed."),
    i18n.N_("Each ring needs at least 4 positions."),
    i18n.N_("Each position must be [longitude, latitude]."),
    i18n.N_("Coordinates are outside WGS84 ranges."),
    i18n.N_("Each ring must be closed."),
    INVALID_POLYGON,
)
# The limit is configuration (GRID_MAX_VERTICES), so the message is matched whatever the number.
i18n.register_patterns({r"^Boundary has more than (\d+) vertices\.$": i18n.N_("Boundary has more than {0} vertices.")})


def validated_boundary(geometry: Any) -> dict[str, Any]:
    """The boundary normalised by :func:`core.geo.validate_boundary`; ValidationFailed on ``boundary``."""
    try:
        return geo.validate_boundary(geometry, int(current_app.config["GRID_MAX_VERTICES"]))
    except GEOSException:
        raise ValidationFailed(errors={"boundary": [INVALID_POLYGON]}) from None


def set_boundary(area: Area, boundary: dict[str, Any]) -> None:
    """Store the boundary with its bounding box, the prefilter of locate."""
    area.boundary = boundary
    area.min_lon, area.min_lat, area.max_lon, area.max_lat = geo.bounds(boundary)


def boundary_summary(boundary: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit log keeps of a polygon: its shape, size and extent, not every vertex."""
    if not boundary:
        return None
    polygons = boundary["coordinates"] if boundary["type"] == "MultiPolygon" else [boundary["coordinates"]]
    return {
        "type": boundary["type"],
        "polygons": len(polygons),
        "vertices": sum(len(ring) for polygon in polygons for ring in polygon),
        "bbox": [round(value, 7) for value in geo.bounds(boundary)],
    }
