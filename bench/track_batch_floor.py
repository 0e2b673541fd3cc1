"""The hand-written floor of a track upload, for ``bench/track_batch.py``: a WSGI callable that
does what a correct upload must and nothing more, in plain psycopg on the app's tables (decode the
token, check the session, the assignment and consent, insert the new points, fold or recount the
summary, commit). A yardstick in ``bench/``, never served by the product.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import psycopg

from core.pg_arrays import float8_array, register_packed_arrays, timestamptz_array
from patrols.tracks.schemas import plain_batch

MAX_BATCH, MAX_POINTS, MAX_SPEED_KMH, SLACK = 1000, 50_000, 150.0, timedelta(minutes=60)
RETENTION = timedelta(days=90)
MAX_ACCURACY_M = 10_000.0  # patrols.schemas.MAX_REPORTED_ACCURACY_M
EARTH_RADIUS_M = 6_371_008.8
_PATH = re.compile(r"/api/v1/assignments/([1-9][0-9]{0,9})/track")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})", re.ASCII)

SESSION = (
    "SELECT u.is_active, s.revoked_at, s.expires_at FROM auth_sessions s JOIN users u ON u.id = s.user_id"
    " WHERE s.id = %s AND u.id = %s"
)
# The caller's own assignment, its shift and the live consent, locked for share as the product does
# (a withdrawal waits for uploads that saw the consent).
TARGET = (
    "SELECT a.id, a.volunteer_id, a.shift_id, a.status, s.status, s.starts_at, s.ends_at"
    " FROM shift_assignments a JOIN volunteers v ON v.id = a.volunteer_id JOIN shifts s ON s.id = a.shift_id"
    " JOIN location_consents c ON c.volunteer_id = a.volunteer_id AND c.withdrawn_at IS NULL"
    " WHERE a.id = %s AND v.user_id = %s FOR SHARE OF c"
)
# The patrol row made or found, and locked, in one statement.
PATROL = (
    "INSERT INTO patrols (assignment_id, volunteer_id, shift_id, check_in_flags, check_out_flags, auto_closed,"
    " distance_m, track_point_count, created_at, updated_at)"
    " VALUES (%s, %s, %s, '[]', '[]', false, 0, 0, %s, %s)"
    " ON CONFLICT (assignment_id) DO UPDATE SET updated_at = excluded.updated_at"
    " RETURNING id, track_point_count, track_distance_sum_m, track_implausible_count, track_anchor_at,"
    " track_anchor_lat, track_anchor_lon, track_last_at"
)
INSERT = (
    "WITH stored AS (INSERT INTO track_points (patrol_id, device_at, received_at, lat, lon, accuracy_m)"
    " SELECT %b, t.device_at, %b, t.lat, t.lon, t.accuracy_m FROM unnest(%b::timestamptz[], %b::float8[],"
    " %b::float8[], %b::float8[]) AS t(device_at, lat, lon, accuracy_m)"
    " ON CONFLICT (patrol_id, device_at) DO NOTHING RETURNING device_at)"
    " SELECT count(*), min(device_at) FROM stored"
)
RECOUNT = "SELECT device_at, lat, lon FROM track_points WHERE patrol_id = %s ORDER BY device_at"
SAVE = (
    "UPDATE patrols SET distance_m = %s, track_point_count = %s, track_distance_sum_m = %s,"
    " track_implausible_count = %s, track_anchor_at = %s, track_anchor_lat = %s, track_anchor_lon = %s,"
    " track_last_at = %s, updated_at = %s WHERE id = %s"
)


class Problem(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _fold(state: list[Any], points: Iterable[tuple[datetime, float, float]]) -> list[Any]:
    """[count, distance, jumps, anchor, last_at] carried over ``points`` (in time order)."""
    count, distance, jumps, anchor, last_at = state
    max_speed = MAX_SPEED_KMH / 3.6
    for point in points:
        count += 1
        last_at = point[0]
        if anchor is None:
            anchor = point
            continue
        leg = _haversine_m(anchor[1], anchor[2], point[1], point[2])
        if leg / max((point[0] - anchor[0]).total_seconds(), 1.0) > max_speed:
            jumps += 1
            continue
        distance += leg
        anchor = point
    return [count, distance, jumps, anchor, last_at]


def _points(body: bytes, opens: datetime, closes: datetime) -> tuple[int, dict[datetime, tuple[datetime, float, float, Any]]]:
    """How many points the batch holds, and its first point of each device time, checked as the API
    checks them (422 otherwise)."""
    try:
        items = json.loads(body)["points"]
    except (ValueError, KeyError, TypeError):
        raise Problem(422, "validation_failed") from None
    if type(items) is not list or not items:
        raise Problem(422, "validation_failed")
    if len(items) > MAX_BATCH:
        raise Problem(422, "batch_too_large")
    unique: dict[datetime, tuple[datetime, float, float, Any]] = {}
    plain = plain_batch(items)  # a plain batch checked a field at a time, as the product checks it
    if plain is not None:
        for point in plain:
            moment = point["time"]
            if not opens <= moment <= closes:
                raise Problem(422, "validation_failed")
            if moment not in unique:
                unique[moment] = (moment, point["lat"], point["lon"], point["accuracy_m"])
        return len(items), unique
    for item in items:
        if type(item) is not dict or not item.keys() <= {"lat", "lon", "accuracy_m", "time"}:
            raise Problem(422, "validation_failed")
        lat, lon, accuracy, when = item.get("lat"), item.get("lon"), item.get("accuracy_m"), item.get("time")
        if (
            type(lat) not in (int, float) or type(lon) not in (int, float) or type(when) is not str
            or not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180)
            or (accuracy is not None and not (type(accuracy) in (int, float) and math.isfinite(accuracy)
                                              and 0 <= accuracy <= MAX_ACCURACY_M))
            or not _INSTANT.fullmatch(when)
        ):
            raise Problem(422, "validation_failed")
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            raise Problem(422, "validation_failed") from None
        if not 2000 <= moment.year <= 2099 or not opens <= moment <= closes:
            raise Problem(422, "validation_failed")
        if moment not in unique:
            unique[moment] = (moment, float(lat), float(lon), None if accuracy is None else float(accuracy))
    return len(items), unique


def floor_upload(connection: psycopg.Connection, claims: dict[str, Any], assignment_id: int, body: bytes) -> dict[str, Any]:
    """One upload, in one transaction on ``connection``."""
    now = datetime.now(UTC)
    user_id = int(claims["sub"])
    with connection.transaction(), connection.cursor() as cursor:
        live = cursor.execute(SESSION, (claims["sid"], user_id)).fetchone()
        if live is None or not live[0] or live[1] is not None or live[2] <= now:
            raise Problem(401, "token_revoked")
        target = cursor.execute(TARGET, (assignment_id, user_id)).fetchone()
        if target is None:  # the rare path: which refusal
            raise Problem(404, "assignment_not_found")  # (or 403 without consent: not benchmarked)
        _, volunteer_id, shift_id, status, shift_status, starts_at, ends_at = target
        if shift_status == "cancelled" or status not in ("assigned", "absent"):
            raise Problem(409, "assignment_not_active")
        if ends_at < now - RETENTION:
            raise Problem(409, "track_expired")
        received, unique = _points(body, starts_at - SLACK, ends_at + SLACK)
        patrol = cursor.execute(PATROL, (assignment_id, volunteer_id, shift_id, now, now)).fetchone()
        patrol_id, count, distance, jumps, anchor_at, anchor_lat, anchor_lon, last_at = patrol  # type: ignore[misc]
        fresh = list(unique.values())
        accuracies = [p[3] for p in fresh]
        stored, earliest = cursor.execute(
            INSERT,
            (patrol_id, now, timestamptz_array(p[0] for p in fresh), float8_array(p[1] for p in fresh),
             float8_array(p[2] for p in fresh), float8_array(accuracies) or accuracies),
        ).fetchone()  # type: ignore[misc]
        known = jumps is not None or count == 0
        state: list[Any] = [count, distance or 0.0, jumps or 0, None if anchor_at is None else (anchor_at, anchor_lat, anchor_lon), last_at]
        if stored or not known:
            if known and (last_at is None or earliest > last_at):
                added = sorted(p for p in fresh if last_at is None or p[0] > last_at)
                state = _fold(state, added)
            else:
                state = _fold([0, 0.0, 0, None, None], cursor.execute(RECOUNT, (patrol_id,)).fetchall())
            if state[0] > MAX_POINTS:
                raise Problem(409, "track_full")
            anchor = state[3] or (None, None, None)
            cursor.execute(
                SAVE,
                (round(state[1], 1), state[0], state[1], state[2], anchor[0], anchor[1], anchor[2], state[4], now, patrol_id),
            )
    return {
        "assignment_id": assignment_id, "patrol_id": patrol_id, "received": received, "stored": stored,
        "duplicates": received - stored, "track_point_count": state[0], "distance_m": round(state[1], 1),
        "implausible_count": state[2],
    }


def floor_connection(database_url: str) -> psycopg.Connection[Any]:
    """A connection for :func:`floor_upload`: it sends the arrays packed whole, as the product does."""
    connection = psycopg.connect(database_url)
    register_packed_arrays(connection)
    return connection


def floor_app(database_url: str, secret: str) -> Callable[..., Iterable[bytes]]:
    """The floor as a WSGI callable over one connection of its own."""
    connection = floor_connection(database_url)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
            if match is None or environ["REQUEST_METHOD"] != "POST":
                raise Problem(404, "not_found")
            header = environ.get("HTTP_AUTHORIZATION", "")
            try:
                claims = jwt.decode(header.removeprefix("Bearer "), secret, algorithms=["HS256"])
            except jwt.InvalidTokenError:
                raise Problem(401, "invalid_token") from None
            if claims.get("type") != "access" or claims.get("role") != "volunteer":
                raise Problem(403, "forbidden")
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            answer = floor_upload(connection, claims, int(match.group(1)), body)
            status, payload = "200 OK", json.dumps(answer).encode()
            content_type = "application/json"
        except Problem as problem:
            status, payload = f"{problem.status} Error", json.dumps({"status": problem.status, "code": problem.code}).encode()
            content_type = "application/problem+json"
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
        return [payload]

    return application
