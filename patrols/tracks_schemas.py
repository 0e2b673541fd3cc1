"""marshmallow schemas of track uploads, GeoJSON tracks, checkpoints, scans and the patrol summary.

Times come in as ISO 8601 instants with an offset (the device's clock) and go out in UTC
(``core.fields.Instant``). Coordinates are WGS84 degrees; GeoJSON positions are [lon, lat].
"""

from __future__ import annotations

import math
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import Instant, QueryBoolean, StrictBoolean, written_instant
from core.pagination import PageArgs
from core.validators import Text
from patrols.presence_schemas import DEVICE_YEARS, MAX_REPORTED_ACCURACY_M, DeviceTime


def _lat(**kwargs: object) -> fields.Float:
    return fields.Float(allow_nan=False, validate=validate.Range(min=-90, max=90), **kwargs)


def _lon(**kwargs: object) -> fields.Float:
    return fields.Float(allow_nan=False, validate=validate.Range(min=-180, max=180), **kwargs)


def _accuracy(**kwargs: object) -> fields.Float:
    return fields.Float(
        allow_nan=False, validate=validate.Range(min=0, max=MAX_REPORTED_ACCURACY_M),
        metadata={"description": "Reported horizontal accuracy in metres"}, **kwargs,
    )


# --- tracks ------------------------------------------------------------------------------------


class TrackPointInSchema(ma.Schema):
    lat = _lat(required=True)
    lon = _lon(required=True)
    accuracy_m = _accuracy(load_default=None, allow_none=True)
    time = DeviceTime(
        required=True,
        metadata={"description": "The phone's clock at the fix, with offset; one point per time"},
    )


_POINT_KEYS = frozenset(("lat", "lon", "accuracy_m", "time"))


def _plain_number(value: Any, low: float, high: float) -> bool:
    return (
        type(value) in (int, float) and math.isfinite(value) and low <= value <= high  # noqa: E721
    )


class TrackPointList(fields.List):
    """A list of :class:`TrackPointInSchema`, checked without marshmallow's per-field machinery
    when a point is plainly valid (a 1,000-point batch costs ~2 ms instead of ~20 ms). Anything
    else goes through the nested schema, so errors and edge cases are exactly the schema's."""

    def _fast_point(self, item: Any) -> dict[str, Any] | None:
        if type(item) is not dict or not item.keys() <= _POINT_KEYS:  # noqa: E721
            return None
        lat, lon, accuracy, when = item.get("lat"), item.get("lon"), item.get("accuracy_m"), item.get("time")
        if not (_plain_number(lat, -90, 90) and _plain_number(lon, -180, 180) and type(when) is str):  # noqa: E721
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


# --- checkpoints -------------------------------------------------------------------------------


class CheckpointCreateSchema(ma.Schema):
    name = Text(required=True, validate=validate.Length(max=100))
    lat = _lat(required=True)
    lon = _lon(required=True)


class CheckpointQueryArgs(PageArgs):
    include_inactive = QueryBoolean(load_default=False)


class CheckpointSchema(ma.Schema):
    id = fields.Integer(required=True)
    grid_id = fields.Integer(required=True)
    name = fields.String(required=True)
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)
    active = StrictBoolean(required=True)
    qr_version = fields.Integer(required=True)
    qr_payload = fields.String(
        required=True, allow_none=True,
        metadata={"description": "Text to print as the QR code (SW1.<id>.<version>.<mac>); null once deactivated"},
    )
    created_at = Instant(required=True)
    deactivated_at = Instant(required=True, allow_none=True)


class ScanInSchema(ma.Schema):
    client_id = fields.UUID(
        required=True, metadata={"description": "Generated on the phone for this scan; the same id again is a replay"}
    )
    payload = fields.String(
        required=True, validate=validate.Length(min=1, max=100), metadata={"description": "The scanned QR text"}
    )
    lat = _lat(required=True)
    lon = _lon(required=True)
    accuracy_m = _accuracy(load_default=None, allow_none=True)
    device_time = DeviceTime(required=True, metadata={"description": "The phone's clock at the scan, with offset"})


class ScanSchema(ma.Schema):
    id = fields.Integer(required=True)
    client_id = fields.String(required=True)
    assignment_id = fields.Integer(required=True)
    patrol_id = fields.Integer(required=True)
    checkpoint_id = fields.Integer(required=True)
    checkpoint_name = fields.String(required=True)
    device_time = Instant(required=True)
    received_at = Instant(required=True)
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)
    accuracy_m = fields.Float(required=True, allow_none=True)
    distance_m = fields.Float(required=True, metadata={"description": "Metres from the checkpoint"})
    flags = fields.List(
        fields.String(), required=True, metadata={"description": "far_from_checkpoint; empty when plausible"}
    )


class VisitedCheckpointSchema(ma.Schema):
    checkpoint_id = fields.Integer(required=True)
    name = fields.String(required=True)
    first_scanned_at = Instant(required=True)
    scans = fields.Integer(required=True)
    flagged = StrictBoolean(required=True, metadata={"description": "A scan of it carries a flag"})


class MissedCheckpointSchema(ma.Schema):
    checkpoint_id = fields.Integer(required=True)
    name = fields.String(required=True)


class PatrolSummarySchema(ma.Schema):
    assignment_id = fields.Integer(required=True)
    patrol_id = fields.Integer(required=True, allow_none=True)
    shift_id = fields.Integer(required=True)
    grid_id = fields.Integer(required=True)
    presence_status = fields.String(required=True, allow_none=True)
    served_minutes = fields.Integer(required=True, allow_none=True)
    distance_m = fields.Float(required=True)
    track_point_count = fields.Integer(required=True)
    visited = fields.List(fields.Nested(VisitedCheckpointSchema), required=True)
    missed = fields.List(
        fields.Nested(MissedCheckpointSchema), required=True,
        metadata={"description": "Active checkpoints of the grid not scanned on this patrol"},
    )
