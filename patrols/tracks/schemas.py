"""marshmallow schemas of track uploads and GeoJSON tracks (checkpoints: ``patrols/checkpoints/schemas.py``).

Times come in as ISO 8601 instants with an offset (the device's clock) and go out in UTC
(``core.fields.Instant``). Coordinates are WGS84 degrees; GeoJSON positions are [lon, lat].
"""

from __future__ import annotations

import math
import re
from datetime import datetime
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
# The shape nearly every phone writes (RFC 3339, the fraction at most microseconds): for it,
# ``datetime.fromisoformat`` alone gives what :func:`core.fields.written_instant` gives.
_PLAIN_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})", re.ASCII)
_plain_instant = _PLAIN_INSTANT.fullmatch
_isfinite = math.isfinite
_from_iso = datetime.fromisoformat
_LOW_YEAR, _HIGH_YEAR = DEVICE_YEARS


def _plain_number(value: Any, low: float, high: float) -> TypeGuard[float]:
    return (
        type(value) in (int, float) and math.isfinite(value) and low <= value <= high
    )


def device_instant(value: str) -> datetime | None:
    """:func:`core.fields.written_instant` of ``value``, faster for the shape phones write."""
    if _plain_instant(value):
        try:
            return _from_iso(value)
        except ValueError:  # 2026-02-30, 25:00, +24:00
            return None
    return written_instant(value)


class TrackPointList(fields.List):
    """A list of :class:`TrackPointInSchema`, checked without marshmallow's per-field machinery
    when every point is plainly valid (a 1,000-point batch costs about 1 ms instead of ~20 ms).
    Anything else goes through the nested schema, so errors and edge cases are exactly the schema's."""

    def _fast_points(self, items: list[Any]) -> list[dict[str, Any]] | None:
        """The points as the schema loads them (times in their own offset: the same instants), or
        None at the first point that is not plainly valid."""
        points: list[dict[str, Any]] = []
        keep = points.append
        for item in items:
            if type(item) is not dict or not item.keys() <= _POINT_KEYS:
                return None
            lat: Any = item.get("lat")
            lon: Any = item.get("lon")
            accuracy: Any = item.get("accuracy_m")
            when: Any = item.get("time")
            # type() in (int, float): not bool, not a numeric string; isfinite: not NaN or ±inf.
            if (
                type(lat) not in (int, float) or type(lon) not in (int, float)
                or not (_isfinite(lat) and -90 <= lat <= 90 and _isfinite(lon) and -180 <= lon <= 180)
                or type(when) is not str
            ):
                return None
            if accuracy is not None:
                if not _plain_number(accuracy, 0, MAX_REPORTED_ACCURACY_M):
                    return None
                accuracy = float(accuracy)
            moment = device_instant(when)
            if moment is None or not _LOW_YEAR <= moment.year <= _HIGH_YEAR:
                return None
            keep({"lat": float(lat), "lon": float(lon), "accuracy_m": accuracy, "time": moment})
        return points

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if type(value) is list:
            fast = self._fast_points(value)
            if fast is not None:
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
