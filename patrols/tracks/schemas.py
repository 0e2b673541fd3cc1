"""marshmallow schemas of track uploads and GeoJSON tracks (checkpoints: ``patrols/checkpoints/schemas.py``).

Times come in as ISO 8601 instants with an offset (the device's clock) and go out in UTC
(``core.fields.Instant``). Coordinates are WGS84 degrees; GeoJSON positions are [lon, lat].
"""

from __future__ import annotations

import re
from datetime import datetime
from itertools import repeat
from operator import eq
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
_AFTER_YEAR = r"-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})"
_PLAIN_INSTANT = re.compile(r"\d{4}" + _AFTER_YEAR, re.ASCII)
_plain_instant = _PLAIN_INSTANT.fullmatch
_from_iso = datetime.fromisoformat
_LOW_YEAR, _HIGH_YEAR = DEVICE_YEARS
_NUMBER_TYPES = frozenset((int, float))
_DICT_ONLY, _STR_ONLY = {dict}, {str}
_FIELD_ORDER = ("lat", "lon", "time", "accuracy_m")
# Times in the plain shape whose year is in DEVICE_YEARS, each followed by a newline.
_PLAIN_INSTANTS_OF_THE_CENTURY = re.compile(r"(?:20\d{2}" + _AFTER_YEAR + r"\n)+", re.ASCII).fullmatch
if DEVICE_YEARS != (2000, 2099):
    raise ImportError("_PLAIN_INSTANTS_OF_THE_CENTURY takes the years 2000-2099 only")


def _plain_number(value: Any, low: float, high: float) -> TypeGuard[float]:
    # The range alone: NaN fails both comparisons and ±inf one, and an int of any size compares
    # without being converted (math.isfinite would raise OverflowError on 10**400).
    return type(value) in (int, float) and low <= value <= high


def device_instant(value: str) -> datetime | None:
    """:func:`core.fields.written_instant` of ``value``, faster for the shape phones write."""
    if _plain_instant(value):
        try:
            return _from_iso(value)
        except ValueError:  # 2026-02-30, 25:00, +24:00
            return None
    return written_instant(value)


def _numbers_within(values: list[Any], low: float, high: float) -> bool:
    """Every value an int or float (not a bool, not a string) from ``low`` to ``high``, by whole-list
    passes in C. ``x == x`` is false only for NaN, which ``min``/``max`` may step over; the range
    refuses ±inf; no value is converted, so a huge int cannot overflow."""
    return (
        _NUMBER_TYPES.issuperset(map(type, values))
        and all(map(eq, values, values))
        and low <= min(values)
        and max(values) <= high
    )


def plain_times(times: list[str]) -> bool:
    """Every time in the plain shape with a year 2000-2099 (the digits written are the year of the
    datetime it parses to), by one regular expression over them all, each ended by a newline: a
    time holding a newline itself would add to their count."""
    joined = "\n".join(times) + "\n"
    return joined.count("\n") == len(times) and _PLAIN_INSTANTS_OF_THE_CENTURY(joined) is not None


def plain_batch(items: list[Any]) -> list[dict[str, Any]] | None:
    """What :meth:`TrackPointList.plain_points` gives for ``items``, when every point is plainly
    valid in the shape phones write (the time as :data:`_PLAIN_INSTANT`), checked a field at a
    time over the whole batch: ``map`` over the points, ``min``/``max``, one regular expression
    over all the times; no Python step per point but the final dicts. None otherwise (then the
    point-by-point check decides)."""
    if not items or set(map(type, items)) != _DICT_ONLY:
        return None
    by_field: list[list[Any]] = [list(map(dict.get, items, repeat(key))) for key in _FIELD_ORDER]
    lats, lons, times, accuracies = by_field
    # No other key: lat, lon and time are each there (checked below: not None), so the lengths add
    # up to three a point and one for each accuracy_m given (null or not) only if nothing else is.
    if sum(map(len, items)) != 3 * len(items) + sum(map(dict.__contains__, items, repeat("accuracy_m"))):
        return None
    if not (_numbers_within(lats, -90, 90) and _numbers_within(lons, -180, 180)):
        return None
    if set(map(type, times)) != _STR_ONLY or not plain_times(times):
        return None
    try:
        moments = list(map(_from_iso, times))
    except ValueError:  # 2026-02-30, 25:00, +24:00
        return None
    if None in accuracies:
        given = [accuracy for accuracy in accuracies if accuracy is not None]
        if given and not _numbers_within(given, 0, MAX_REPORTED_ACCURACY_M):
            return None
        floats: list[float | None] = [None if accuracy is None else float(accuracy) for accuracy in accuracies]
    else:
        if not _numbers_within(accuracies, 0, MAX_REPORTED_ACCURACY_M):
            return None
        floats = list(map(float, accuracies))
    return [
        {"lat": lat, "lon": lon, "accuracy_m": accuracy, "time": moment}
        for lat, lon, accuracy, moment in zip(map(float, lats), map(float, lons), floats, moments, strict=True)
    ]


class TrackPointList(fields.List):
    """A list of :class:`TrackPointInSchema`, checked without marshmallow's per-field machinery
    when every point is plainly valid (a 1,000-point batch costs well under 1 ms instead of ~20 ms):
    the whole batch a field at a time (:func:`plain_batch`), or else point by point
    (:meth:`plain_points`, which also takes other ISO 8601 shapes). Anything else goes through the
    nested schema, so errors and edge cases are exactly the schema's."""

    @staticmethod
    def plain_points(items: list[Any]) -> list[dict[str, Any]] | None:
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
            if not (_plain_number(lat, -90, 90) and _plain_number(lon, -180, 180)) or type(when) is not str:
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
            fast = plain_batch(value)
            if fast is None:
                fast = self.plain_points(value)
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
