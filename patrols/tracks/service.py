"""GPS tracks: batch upload from the phone, distance walked, jump detection, GeoJSON. No HTTP.

Phones queue fixes offline and send them in batches, late, out of order and more than once, so a
point is identified by (patrol, device time): a repeated batch changes nothing. A point reached
faster than TRACK_MAX_SPEED_KMH from the last plausible one is a GPS jump: shown flagged, left out
of the distance. The summary (distance, point count, jumps) is a fold over the stored points in
time order; the patrol row keeps where the fold stands (:class:`TrackFold`), so a batch whose new
points all come after the stored ones, a phone's usual case, folds in only its own points, with
the same arithmetic as a recount and so the same figures to the last bit. A batch with a new
point before the latest stored one recounts the stored points, and so does the first upload after
points were deleted (the state is then unknown). Uploads need the volunteer's consent to tracking
and reads by managers are logged (``patrols/privacy``), which also purges points past their
retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from flask import current_app

from core import i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from core.fields import instant_text
from patrols.models import Patrol
from patrols.privacy import service as privacy
from patrols.service import new_patrol_values
from patrols.tracks.fold import EMPTY_TRACK, TrackFold, analyse_track, extend_track
from patrols.tracks.models import TrackPoint
from patrols.tracks.storage import insert_new_points
from shifts.models import Assignment, AssignmentStatus, Shift, ShiftStatus
from shifts.service import assignment_not_found, get_assignment_for, own_assignment, own_assignment_select

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


# --- who may touch which track -----------------------------------------------------------------


def refuse_unless_patrollable(shift_status: str, assignment_status: str) -> None:
    """409 unless the shift is not cancelled and the assignment still holds its place."""
    if shift_status == ShiftStatus.CANCELLED:
        raise Conflict("The shift has been cancelled.", code="shift_cancelled")
    if assignment_status not in PATROLLABLE:
        raise Conflict("The assignment is not active.", code="assignment_not_active")


def patrollable_assignment(caller: Caller, assignment_id: int) -> Assignment:
    """The caller's own assignment, on a shift that is not cancelled, still holding its place."""
    assignment = own_assignment(caller, assignment_id, lean=True)
    refuse_unless_patrollable(assignment.shift.status, assignment.status)
    return assignment


def event_window(shift: Shift) -> tuple[datetime, datetime]:
    """Device times accepted for patrol events of ``shift`` (its window widened by the slack)."""
    return _widened(shift.starts_at, shift.ends_at)


def _widened(starts_at: datetime, ends_at: datetime) -> tuple[datetime, datetime]:
    slack = timedelta(minutes=current_app.config["PATROL_EVENT_SLACK_MINUTES"])
    return starts_at - slack, ends_at + slack


def retention_cutoff(now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=current_app.config["TRACK_RETENTION_DAYS"])


# --- upload ------------------------------------------------------------------------------------

# The upload reads only what its rules need: no assignment, shift or grid objects (the grid's
# polygon alone is tens of kilobytes).
_UPLOAD_TARGET = own_assignment_select(
    Assignment.id, Assignment.volunteer_id, Assignment.shift_id, Assignment.status,
    Shift.status.label("shift_status"), Shift.starts_at, Shift.ends_at,
    privacy.live_consent_id(Assignment.volunteer_id).label("consent_id"),
).join(Shift, Shift.id == Assignment.shift_id)

# The upload's statements are plain Core on the session's connection (its transaction, without the
# ORM's per-statement bookkeeping), over table columns.
_PATROLS = Patrol.__table__
_FOLD_COLUMNS = tuple(
    _PATROLS.c[name]
    for name in (
        "id", "track_point_count", "track_distance_sum_m", "track_implausible_count",
        "track_anchor_at", "track_anchor_lat", "track_anchor_lon", "track_last_at",
    )
)


def upload_points(caller: Caller, assignment_id: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    """Store a batch of fixes for the caller's assignment; repeats of stored fixes change nothing."""
    limit = current_app.config["TRACK_MAX_BATCH"]
    if len(points) > limit:
        raise ValidationFailed(
            TOO_MANY_POINTS.format(limit=limit),
            code="batch_too_large",
            errors={"points": [TOO_MANY_POINTS.format(limit=limit)]},
        )
    target = db.session.connection().execute(
        _UPLOAD_TARGET, {"assignment_id": assignment_id, "user_id": caller.user_id}
    ).first()
    if target is None:
        raise assignment_not_found()
    refuse_unless_patrollable(target.shift_status, target.status)
    # Before anything is stored, and whenever the points were recorded (PIPL art. 29); the
    # consent's row was locked for share as it was read.
    privacy.refuse_without_consent(target.consent_id)
    if target.ends_at < retention_cutoff():
        raise Conflict("Track points of this shift are no longer kept.", code="track_expired")
    opens, closes = _widened(target.starts_at, target.ends_at)
    # The first of each device time, in one pass with the window check.
    unique_by_time: dict[datetime, dict[str, Any]] = {}
    bad: dict[str, Any] = {}
    for index, point in enumerate(points):
        moment = point["time"]
        if not opens <= moment <= closes:
            bad[str(index)] = {"time": [OUTSIDE_SHIFT]}
        elif moment not in unique_by_time:
            unique_by_time[moment] = point
    if bad:
        raise ValidationFailed(errors={"points": bad})

    patrol_id, known = _locked_fold(target)
    fresh = list(unique_by_time.values())
    stored, earliest_stored = insert_new_points(patrol_id, utcnow(), fresh)
    max_speed = current_app.config["TRACK_MAX_SPEED_KMH"]
    if known is None:  # not known (points were deleted, or stored before the fold was kept): recount
        fold = recount(patrol_id, max_speed)
    elif not stored:
        fold = known
    else:
        later = known.last_at
        added = fresh if later is None else [point for point in fresh if point["time"] > later]
        if earliest_stored is not None and (later is None or earliest_stored > later) and len(added) == stored:
            # Every new point comes after the stored ones: they are exactly the batch's points
            # later than the latest stored one (none of those can be stored already).
            added.sort(key=_BY_TIME)
            fold, _ = extend_track(known, [(p["time"], p["lat"], p["lon"]) for p in added], max_speed)
        else:  # a late point slots in before stored ones: what follows it changes
            fold = recount(patrol_id, max_speed)
    if fold.point_count > current_app.config["TRACK_MAX_POINTS_PER_PATROL"]:
        raise Conflict("The track holds the most points allowed.", code="track_full")
    if fold is not known:
        _save_fold(patrol_id, fold)
    return {
        "assignment_id": target.id,
        "patrol_id": patrol_id,
        "received": len(points),
        "stored": stored,
        "duplicates": len(points) - stored,
        "track_point_count": fold.point_count,
        "distance_m": round(fold.distance_m, 1),
        "implausible_count": fold.implausible_count,
    }


_BY_TIME = itemgetter("time")


def _fold_upsert() -> sa.TextualSelect:
    """``INSERT`` of :func:`new_patrol_values` ``ON CONFLICT (assignment_id) DO UPDATE`` (a no-op
    that takes the row's lock) ``RETURNING`` the fold, in text both dialects read alike, with the
    columns' types on its parameters and results. Text because SQLAlchemy caches no compiled form
    of its dialects' INSERTs (``postgresql.Insert`` has no cache key): built with those, the
    statement was compiled afresh on every upload."""
    names = list(new_patrol_values(0, 0, 0))
    return (
        sa.text(
            f"INSERT INTO {_PATROLS.name} ({', '.join(names)}) VALUES ({', '.join(':' + name for name in names)}) "
            f"ON CONFLICT (assignment_id) DO UPDATE SET updated_at = {_PATROLS.name}.updated_at "
            f"RETURNING {', '.join(column.name for column in _FOLD_COLUMNS)}"
        )
        .bindparams(*(sa.bindparam(name, type_=_PATROLS.c[name].type) for name in names))
        .columns(*_FOLD_COLUMNS)
    )


_FOLD_UPSERT = _fold_upsert()


def _locked_fold(target: Any) -> tuple[int, TrackFold | None]:
    """The patrol row's id and its fold (None: not known), made if this is the assignment's first
    event, and locked: one upload at a time per patrol, so each folds onto the state the one before
    it left (PostgreSQL; SQLite serialises writers anyway). One statement whether the row exists or
    not: an upsert whose update changes nothing but takes the row's lock."""
    row = db.session.connection().execute(
        _FOLD_UPSERT, new_patrol_values(target.id, target.volunteer_id, target.shift_id)
    ).one()
    if row.track_implausible_count is None:
        # Not folded: a patrol that counts no point holds none (points come only from here); one
        # that counts some had them deleted, or stored them before patrols kept their fold
        # (migration 0019), and its summary need not describe what is stored.
        return row.id, (EMPTY_TRACK if row.track_point_count == 0 else None)
    anchor = None if row.track_anchor_at is None else (row.track_anchor_at, row.track_anchor_lat, row.track_anchor_lon)
    return row.id, TrackFold(
        row.track_point_count, row.track_distance_sum_m, row.track_implausible_count, anchor, row.track_last_at
    )


_SAVED_COLUMNS = (
    "distance_m", "track_point_count", "track_distance_sum_m", "track_implausible_count",
    "track_anchor_at", "track_anchor_lat", "track_anchor_lon", "track_last_at", "updated_at",
)
# Built once: the statement's cache key is then memoised, not generated per upload.
_SAVE_FOLD = (
    sa.update(_PATROLS)
    .where(_PATROLS.c.id == sa.bindparam("patrol_id"))
    .values({name: sa.bindparam(name) for name in _SAVED_COLUMNS})
)


def _save_fold(patrol_id: int, fold: TrackFold) -> None:
    anchor = fold.anchor or (None, None, None)
    db.session.connection().execute(
        _SAVE_FOLD,
        {
            "patrol_id": patrol_id,
            "distance_m": round(fold.distance_m, 1),
            "track_point_count": fold.point_count,
            "track_distance_sum_m": fold.distance_m,
            "track_implausible_count": fold.implausible_count,
            "track_anchor_at": anchor[0],
            "track_anchor_lat": anchor[1],
            "track_anchor_lon": anchor[2],
            "track_last_at": fold.last_at,
            "updated_at": utcnow(),
        },
    )
    # A Patrol this session already holds reads the new values on its next access.
    held = db.session.identity_map.get(db.session.identity_key(Patrol, (patrol_id,)))
    if held is not None:
        db.session.expire(held)


def _stored_points(patrol_id: int) -> Sequence[sa.Row[Any]]:
    return db.session.execute(
        sa.select(
            TrackPoint.device_at, TrackPoint.lat, TrackPoint.lon, TrackPoint.accuracy_m,
            TrackPoint.received_at,
        )
        .where(TrackPoint.patrol_id == patrol_id)
        .order_by(TrackPoint.device_at)
    ).all()


def recount(patrol_id: int, max_speed_kmh: float) -> TrackFold:
    """The fold over every stored point of the patrol, from the start."""
    # Only what the distance needs, in plain tuples, through Core (the ORM's result handling costs
    # a third more over 6,000 rows). psycopg reads timestamptz as aware datetimes already:
    # UTCDateTime's processor (astimezone row by row) is needed only on SQLite, which keeps no offset.
    points = TrackPoint.__table__.c
    device_at: Any = points.device_at
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        device_at = sa.type_coerce(device_at, sa.DateTime(timezone=True))
    rows = connection.execute(
        sa.select(device_at, points.lat, points.lon).where(points.patrol_id == patrol_id).order_by(points.device_at)
    ).tuples().all()
    return extend_track(EMPTY_TRACK, rows, max_speed_kmh)[0]


def refresh_summary(patrol: Patrol) -> dict[str, Any]:
    """Recount the patrol's stored points and distance into the patrol row (kept after purge)."""
    fold = recount(patrol.id, current_app.config["TRACK_MAX_SPEED_KMH"])
    _save_fold(patrol.id, fold)
    return {"point_count": fold.point_count, "implausible_count": fold.implausible_count}


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
