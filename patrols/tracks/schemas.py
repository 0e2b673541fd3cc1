"""marshmallow schemas of track uploads and GeoJSON tracks (checkpoints: ``patrols/checkpoints/schemas.py``).

Times come in as ISO 8601 instants with an offset (the device's clock) and go out in UTC
(``core.fields.Instant``). Coordinates are WGS84 degrees; GeoJSON positions are [lon, lat].
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import StrictBoolean, written_instant
from patrols.schemas import DEVICE_YEARS, MAX_REPORTED_ACCURACY_M, DeviceTime, accuracy, latitude, longitude

# --- tracks ------------------------------------------------------------------------------------


class TrackPointInSchema(ma.Schema):
    lat = latitude(required=True)
    lon = longitude(required=True)
    accuracy_m = accuracy(load_default=None, allow_none=True)
    time = DeviceTime(
        required=True,
        metadata={"description": "The phone's clock at the fix, with offset; one point per time"},
    )


_POINT_KEYS = frozenset(("lat", "lon", "accuracy_m", "time"))


def _plain_number(value: Any, low: float, high: float) -> TypeGuard[float]:
    return (
        type(value) in (int, float) and math.isfinite(value) and low <= value <= high
    )


class TrackPointList(fields.List):
    """A list of :class:`TrackPointInSchema`, checked without marshmallow's per-field machinery
    when a point is plainly valid (a 1,000-point batch costs ~2 ms instead of ~20 ms). Anything
    else goes through the nested schema, so errors and edge cases are exactly the schema's."""

    def _fast_point(self, item: Any) -> dict[str, Any] | None:
        if type(item) is not dict or not item.keys() <= _POINT_KEYS:
            return None
        lat, lon, accuracy, when = item.get("lat"), item.get("lon"), item.get("accuracy_m"), item.get("time")
        if not (_plain_number(lat, -90, 90) and _plain_number(lon, -180, 180) and type(when) is str):
            return None
        if accuracy is not None and not _plain_number(accuracy, 0, MAX_REPORTED_ACCURACY_M):
            return None
        moment = written_instant(when)
        if moment is None or not DEVICE_YEARS[0] <= moment.year <= DEVICE_YEARS[1]:
            return None
        return {"lat": float(lat), "lon": float(lon), "accuracy_m": None if accuracy is None else float(accuracy), "time": moment}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, list):
            fast = [self._fast_point(item) for item in value]
            if all(point is not None for point in fast):
                return fast
        return super()._deserialize(value, attr, data, **kwargs)


class TrackBatchSchema(ma.Schema):
    points = TrackPointList(
        fields.Nested(TrackPointInSchema),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "Up to TRACK_MAX_BATCH (1,000) fixes, in any order"},
    )


class TrackUploadResultSchema(ma.Schema):
    assignment_id = fields.Integer(required=True)
    patrol_id = fields.Integer(required=True)
    received = fields.Integer(required=True, metadata={"description": "Points in this batch"})
    stored = fields.Integer(required=True, metadata={"description": "Points new to the server"})
    duplicates = fields.Integer(
        required=True, metadata={"description": "Points already stored (same device time), or repeated in the batch"}
    )
    track_point_count = fields.Integer(required=True)
    distance_m = fields.Float(required=True, metadata={"description": "Distance walked, jumps left out"})
    implausible_count = fields.Integer(
        required=True, metadata={"description": "Points flagged as GPS jumps (faster than TRACK_MAX_SPEED_KMH)"}
    )


class GeometrySchema(ma.Schema):
    type = fields.String(required=True, metadata={"enum": ["Point", "LineString"]})
    coordinates = fields.Raw(required=True, metadata={"description": "[lon, lat] or a list of them"})


class FeatureSchema(ma.Schema):
    type = fields.String(required=True, metadata={"enum": ["Feature"]})
    geometry = fields.Nested(GeometrySchema, required=True)
    properties = fields.Dict(
        required=True,
        metadata={
            "description": "kind `track` (the LineString of plausible points, with distance_m) or "
            "`fix` (time, received_at, accuracy_m, implausible)"
        },
    )


class TrackSchema(ma.Schema):
    """A GeoJSON FeatureCollection, ordered by device time, with the summary as foreign members."""

    type = fields.String(required=True, metadata={"enum": ["FeatureCollection"]})
    assignment_id = fields.Integer(required=True)
    patrol_id = fields.Integer(required=True, allow_none=True)
    distance_m = fields.Float(required=True)
    track_point_count = fields.Integer(required=True)
    implausible_count = fields.Integer(required=True)
    purged = StrictBoolean(
        required=True, metadata={"description": "The points are past TRACK_RETENTION_DAYS and gone; the summary stays"}
    )
    features = fields.List(fields.Nested(FeatureSchema), required=True)
