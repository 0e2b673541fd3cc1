"""GPS tracks: batch upload from the phone, distance walked, jump detection, GeoJSON. No HTTP.

Phones queue fixes offline and send them in batches, late, out of order and more than once, so a
point is identified by (patrol, device time): a repeated batch changes nothing. The distance is
recomputed from every stored point in time order after each upload, so late points slot in where
they belong. A point reached faster than TRACK_MAX_SPEED_KMH from the last plausible one is a GPS
jump: shown flagged, left out of the distance. Uploads need the volunteer's consent to tracking and
reads by managers are logged (``patrols/privacy``), which also purges points past their retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import sqlite

from core import i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from core.fields import instant_text
from core.geo import haversine_m
from patrols.models import Patrol
from patrols.privacy import service as privacy
from patrols.service import patrol_for
from patrols.tracks.models import TrackPoint
from shifts.models import Assignment, AssignmentStatus, Shift, ShiftStatus
from shifts.service import get_assignment_for, own_assignment

#: Assignments a phone may still send patrol data for (an absent mark may be reconciled later).
PATROLLABLE = (AssignmentStatus.ASSIGNED, AssignmentStatus.ABSENT)

TOO_MANY_POINTS = "At most {limit} points per batch."
OUTSIDE_SHIFT = i18n.N_("The time is too far outside the shift.")

i18n.register_titles(
    i18n.title("assignment_not_active", "The assignment is not active"),
    i18n.title("track_expired", "The track's retention period has passed"),
    i18n.title("track_full", "The track holds the most points allowed"),
)
i18n.register_messages(
    OUTSIDE_SHIFT,
    i18n.N_("The assignment is not active."),
    i18n.N_("Track points of this shift are no longer kept."),
    i18n.N_("The track holds the most points allowed."),
)
i18n.register_patterns({r"^At most (\d+) points per batch\.$": i18n.N_("At most {0} points per batch.")})


# --- distance and jumps ---------------------------------------------------------------------


def analyse_track(
    points: Sequence[tuple[datetime, float, float]], max_speed_kmh: float
) -> tuple[float, list[bool]]:
    """Distance in metres over ``points`` (time, lat, lon; sorted by time) and a jump flag per point.

    Each point is compared with the last plausible one, not simply the previous point, so one
    stray fix costs one point rather than two bogus legs. Points one second apart or less are
    compared as one second apart (device clocks tick coarsely). Known limit: when the very first
    fix is the stray one, the points after it are flagged until one is plausible from it.
    """
    max_speed = max_speed_kmh / 3.6
    distance = 0.0
    flags: list[bool] = []
    anchor: tuple[datetime, float, float] | None = None
    for point in points:
        if anchor is None:
            anchor = point
            flags.append(False)
            continue
        leg = haversine_m(anchor[1], anchor[2], point[1], point[2])
        seconds = max((point[0] - anchor[0]).total_seconds(), 1.0)
        if leg / seconds > max_speed:
            flags.append(True)
            continue
        distance += leg
        anchor = point
        flags.append(False)
    return distance, flags


# --- who may touch which track -----------------------------------------------------------------


def patrollable_assignment(caller: Caller, assignment_id: int) -> Assignment:
    """The caller's own assignment, on a shift that is not cancelled, still holding its place."""
    assignment = own_assignment(caller, assignment_id, lean=True)
    if assignment.shift.status == ShiftStatus.CANCELLED:
        raise Conflict("The shift has been cancelled.", code="shift_cancelled")
    if assignment.status not in PATROLLABLE:
        raise Conflict("The assignment is not active.", code="assignment_not_active")
    return assignment


def event_window(shift: Shift) -> tuple[datetime, datetime]:
    """Device times accepted for patrol events of ``shift`` (its window widened by the slack)."""
    slack = timedelta(minutes=current_app.config["PATROL_EVENT_SLACK_MINUTES"])
    return shift.starts_at - slack, shift.ends_at + slack


def retention_cutoff(now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=current_app.config["TRACK_RETENTION_DAYS"])


# --- upload ------------------------------------------------------------------------------------


def upload_points(caller: Caller, assignment_id: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    """Store a batch of fixes for the caller's assignment; repeats of stored fixes change nothing."""
    limit = current_app.config["TRACK_MAX_BATCH"]
    if len(points) > limit:
        raise ValidationFailed(
            TOO_MANY_POINTS.format(limit=limit),
            code="batch_too_large",
            errors={"points": [TOO_MANY_POINTS.format(limit=limit)]},
        )
    assignment = patrollable_assignment(caller, assignment_id)
    # Before anything is stored, and whenever the points were recorded (PIPL art. 29).
    privacy.ensure_tracking_consent(assignment.volunteer_id)
    shift = assignment.shift
    if shift.ends_at < retention_cutoff():
        raise Conflict("Track points of this shift are no longer kept.", code="track_expired")
    opens, closes = event_window(shift)
    bad = {
        str(index): {"time": [OUTSIDE_SHIFT]}
        for index, point in enumerate(points)
        if not opens <= point["time"] <= closes
    }
    if bad:
        raise ValidationFailed(errors={"points": bad})

    patrol = patrol_for(assignment)
    # One upload at a time per patrol, so each recount sees the other's points (PostgreSQL; SQLite
    # serialises writers anyway). The row is read again under the lock: the ORM writes only values
    # that differ from what it last read, so a summary read before a concurrent upload committed
    # could leave that upload's distance standing when the recount happens to equal the stale one.
    patrol = db.session.scalars(
        sa.select(Patrol)
        .where(Patrol.id == patrol.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    unique_by_time: dict[datetime, dict[str, Any]] = {}
    for point in points:
        unique_by_time.setdefault(point["time"], point)
    stored = _insert_new(patrol.id, utcnow(), list(unique_by_time.values()))
    summary = refresh_summary(patrol)
    if summary["point_count"] > current_app.config["TRACK_MAX_POINTS_PER_PATROL"]:
        raise Conflict("The track holds the most points allowed.", code="track_full")
    return {
        "assignment_id": assignment.id,
        "patrol_id": patrol.id,
        "received": len(points),
        "stored": stored,
        "duplicates": len(points) - stored,
        "track_point_count": patrol.track_point_count,
        "distance_m": patrol.distance_m,
        "implausible_count": summary["implausible_count"],
    }


_INSERT_UNNEST = sa.text(
    "INSERT INTO track_points (patrol_id, device_at, received_at, lat, lon, accuracy_m) "
    "SELECT :patrol_id, t.device_at, :received_at, t.lat, t.lon, t.accuracy_m "
    "FROM unnest(CAST(:device_at AS timestamptz[]), CAST(:lat AS float8[]), "
    "CAST(:lon AS float8[]), CAST(:accuracy_m AS float8[])) AS t(device_at, lat, lon, accuracy_m) "
    "ON CONFLICT (patrol_id, device_at) DO NOTHING RETURNING id"
)


def _insert_new(patrol_id: int, received_at: datetime, points: list[dict[str, Any]]) -> int:
    """Insert the points, skipping those already stored; returns how many were new.

    PostgreSQL gets one statement over four arrays (unnest), a handful of parameters whatever the
    batch size; SQLite an executemany of INSERT ... ON CONFLICT DO NOTHING. RETURNING counts the
    new rows, as rowcount does not on every driver.
    """
    if not points:
        return 0
    if db.session.get_bind().dialect.name == "postgresql":
        params = {
            "patrol_id": patrol_id,
            "received_at": received_at,
            "device_at": [point["time"] for point in points],
            "lat": [point["lat"] for point in points],
            "lon": [point["lon"] for point in points],
            "accuracy_m": [point.get("accuracy_m") for point in points],
        }
        return len(db.session.execute(_INSERT_UNNEST, params).all())
    table = TrackPoint.__table__
    stmt = (
        sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=["patrol_id", "device_at"])
        .returning(table.c.id)
    )
    rows = [
        {
            "patrol_id": patrol_id, "device_at": point["time"], "received_at": received_at,
            "lat": point["lat"], "lon": point["lon"], "accuracy_m": point.get("accuracy_m"),
        }
        for point in points
    ]
    return len(db.session.connection().execute(stmt, rows).all())


def _stored_points(patrol_id: int) -> Sequence[sa.Row[Any]]:
    return db.session.execute(
        sa.select(
            TrackPoint.device_at, TrackPoint.lat, TrackPoint.lon, TrackPoint.accuracy_m,
            TrackPoint.received_at,
        )
        .where(TrackPoint.patrol_id == patrol_id)
        .order_by(TrackPoint.device_at)
    ).all()


def refresh_summary(patrol: Patrol) -> dict[str, Any]:
    """Recount the patrol's stored points and distance into the patrol row (kept after purge)."""
    # Only what the distance needs, in plain tuples: this runs on every upload.
    rows = db.session.execute(
        sa.select(TrackPoint.device_at, TrackPoint.lat, TrackPoint.lon)
        .where(TrackPoint.patrol_id == patrol.id)
        .order_by(TrackPoint.device_at)
    ).tuples().all()
    distance, flags = analyse_track(rows, current_app.config["TRACK_MAX_SPEED_KMH"])
    patrol.distance_m = round(distance, 1)
    patrol.track_point_count = len(rows)
    db.session.flush()
    return {"point_count": len(rows), "implausible_count": sum(flags)}


# --- read --------------------------------------------------------------------------------------


def track_view(caller: Caller, assignment_id: int) -> dict[str, Any]:
    """The track as a GeoJSON FeatureCollection ordered by time, with the summary as foreign members.

    The first feature is the LineString of the plausible points (when there are two or more), then
    one Point per stored fix with its time, accuracy and ``implausible`` flag.
    """
    assignment = get_assignment_for(caller, assignment_id)
    if caller.is_manager:  # someone else's track (a volunteer reaches only their own): logged
        privacy.record_location_read(
            caller, assignment.volunteer_id, privacy.TRACK_READ, assignment.shift.grid.path, assignment_id=assignment.id
        )
    patrol = db.session.scalar(sa.select(Patrol).where(Patrol.assignment_id == assignment.id))
    rows = _stored_points(patrol.id) if patrol else []
    distance, flags = analyse_track(
        [(row.device_at, row.lat, row.lon) for row in rows], current_app.config["TRACK_MAX_SPEED_KMH"]
    )
    features: list[dict[str, Any]] = []
    line = [[row.lon, row.lat] for row, jump in zip(rows, flags, strict=True) if not jump]
    if len(line) >= 2:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": line},
                "properties": {"kind": "track", "distance_m": round(distance, 1)},
            }
        )
    for row, jump in zip(rows, flags, strict=True):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [row.lon, row.lat]},
                "properties": {
                    "kind": "fix",
                    "time": instant_text(row.device_at),
                    "received_at": instant_text(row.received_at),
                    "accuracy_m": row.accuracy_m,
                    "implausible": jump,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "assignment_id": assignment.id,
        "patrol_id": patrol.id if patrol else None,
        # The stored summary survives the purge of the points themselves.
        "distance_m": patrol.distance_m if patrol else 0.0,
        "track_point_count": patrol.track_point_count if patrol else 0,
        "implausible_count": sum(flags),
        "purged": bool(patrol and patrol.track_point_count and not rows),
        "features": features,
    }
