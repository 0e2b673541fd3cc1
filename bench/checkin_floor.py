"""Hand-written floors for the check-in and the hottest reads: the least each can cost on this stack.

A yardstick for ``bench/checkin.py`` (issue 19), never served by the product: a bare WSGI callable
(no framework), PyJWT, plain psycopg 3 on the product's own tables, one connection per worker
process, served by gunicorn with the same settings as the product. Each route does what a correct
answer needs and nothing more:

``POST /api/v1/assignments/{id}/check-in``
    decode the access token (HS256, the server's ``JWT_SECRET_KEY`` from ``INSTANCE_PATH``) and
    check its claims; one transaction: the session row (live, its user active); the caller's own
    assignment with its shift and grid, the patrol a ``client_id`` already went into, and the
    volunteer's schedule lock (``pg_advisory_xact_lock``, in a FROM subquery) in one statement,
    ``FOR SHARE`` of the assignment and shift rows so that what was read is their newest version
    once the lock is held;
    the window, the geofence on the grid's prepared polygon (cached per process under
    (id, version, updated_at), as ``core.geo.contains``) and the plausibility flags; the patrol
    upsert the product uses (``INSERT … ON CONFLICT (assignment_id) DO UPDATE … WHERE
    check_in_client_id IS NULL RETURNING``); the ``Idempotency-Key`` recorded with the response
    (``ON CONFLICT DO NOTHING``: a key already there means a replay, answered from the record);
    commit. Round trips: BEGIN, session, lock-and-read, upsert, idempotency, COMMIT.
``GET /api/v1/me``
    token, then one statement outside any transaction: session, user, home area, volunteer id.
``GET /api/v1/me/shifts``
    token, session and volunteer in one statement, then the upcoming places (20) with shift, grid,
    volunteer name and kind, waitlist position and count and the kinds assigned, in one statement.
``GET /api/v1/areas/locate``
    the bounding-box candidates with their four ancestors in one statement, the prepared polygons.

Answers carry the same JSON fields as the product's; errors are a minimal problem+json. Run it with
``gunicorn --chdir bench checkin_floor:application`` and the product's DATABASE_URL and INSTANCE_PATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import checkin_floor_base
import psycopg
from checkin_floor_base import Problem, caller, connection, covers, ensure_live, iso
from checkin_floor_reads import locate, me, my_shifts

OPENS = timedelta(minutes=int(os.environ.get("CHECK_IN_OPENS_MINUTES", 30)))
MAX_ACCURACY_M = float(os.environ.get("CHECK_IN_MAX_ACCURACY_M", 100))
CLOCK_SKEW = timedelta(minutes=int(os.environ.get("CHECK_IN_CLOCK_SKEW_MINUTES", 5)))
MAX_OFFLINE = timedelta(hours=int(os.environ.get("CHECK_IN_MAX_OFFLINE_HOURS", 72)))
CHECK_OUT_GRACE = timedelta(minutes=int(os.environ.get("CHECK_OUT_GRACE_MINUTES", 30)))
SCHEDULE_LOCK_SPACE = 1  # core.locks.LockSpace.VOLUNTEER_SCHEDULE
_KEY = re.compile(r"[\x20-\x7e]{1,200}")
_CHECK_IN_PATH = re.compile(r"/api/v1/assignments/([1-9][0-9]{0,9})/check-in")

SESSION = (
    "SELECT u.is_active, s.revoked_at, s.expires_at FROM auth_sessions s JOIN users u ON u.id = s.user_id"
    " WHERE s.id = %s AND u.id = %s"
)
# The lock in a FROM subquery, taken before the rows are locked (a select-list lock comes after),
# and FOR SHARE (FOR KEY SHARE keeps the old version of a row whose key did not change).
LOCK_AND_READ = (
    "SELECT a.id, a.status, a.volunteer_id, a.shift_id, s.status, s.starts_at, s.ends_at, s.timezone,"
    " g.id, g.version, g.updated_at, g.boundary::text,"
    " (SELECT p.id FROM patrols p WHERE p.check_in_client_id = %(client_id)s"
    "  OR p.check_out_client_id = %(client_id)s)"
    " FROM shift_assignments a JOIN volunteers v ON v.id = a.volunteer_id"
    " JOIN shifts s ON s.id = a.shift_id JOIN areas g ON g.id = s.grid_id"
    f" JOIN (SELECT pg_advisory_xact_lock({SCHEDULE_LOCK_SPACE}, o.id) FROM volunteers o"
    "  WHERE o.user_id = %(user_id)s) AS schedule_lock ON true"
    " WHERE a.id = %(assignment_id)s AND v.user_id = %(user_id)s FOR SHARE OF a, s"
)
PATROL_COLUMNS = (
    "id", "assignment_id", "volunteer_id", "shift_id", "check_in_client_id", "check_in_device_at",
    "check_in_received_at", "check_in_lat", "check_in_lon", "check_in_accuracy_m", "check_in_flags",
    "check_out_client_id", "check_out_device_at", "check_out_received_at", "check_out_lat", "check_out_lon",
    "check_out_accuracy_m", "check_out_flags", "auto_closed", "presence_status", "late_minutes",
    "served_minutes", "reviewed_by", "reviewed_at", "review_reason", "distance_m", "track_point_count",
    "positions_purged_at",
)
_RETURNING = ", ".join(f"patrols.{name}" for name in PATROL_COLUMNS)
UPSERT = (
    "INSERT INTO patrols (assignment_id, volunteer_id, shift_id, created_at, updated_at, check_out_flags,"
    " auto_closed, distance_m, track_point_count, presence_status, check_in_client_id, check_in_device_at,"
    " check_in_received_at, check_in_lat, check_in_lon, check_in_accuracy_m, check_in_flags, late_minutes)"
    " VALUES (%(assignment_id)s, %(volunteer_id)s, %(shift_id)s, %(now)s, %(now)s, '[]', false, 0, 0,"
    " %(presence)s, %(client_id)s, %(device_at)s, %(now)s, %(lat)s, %(lon)s, %(accuracy)s, %(flags)s,"
    " %(late)s)"
    " ON CONFLICT (assignment_id) DO UPDATE SET check_in_client_id = excluded.check_in_client_id,"
    " check_in_device_at = excluded.check_in_device_at, check_in_received_at = excluded.check_in_received_at,"
    " check_in_lat = excluded.check_in_lat, check_in_lon = excluded.check_in_lon,"
    " check_in_accuracy_m = excluded.check_in_accuracy_m, check_in_flags = excluded.check_in_flags,"
    " late_minutes = excluded.late_minutes, presence_status = excluded.presence_status,"
    " updated_at = excluded.updated_at WHERE patrols.check_in_client_id IS NULL"
    f" RETURNING {_RETURNING}"
)
PATROL_OF_ASSIGNMENT = f"SELECT {_RETURNING} FROM patrols WHERE assignment_id = %s"
REMEMBER = (
    "INSERT INTO idempotency_records (user_id, key, method, path, request_hash, status_code, response_body,"
    " content_type, created_at) VALUES (%s, %s, 'POST', %s, %s, 200, %s, 'application/json', %s)"
    " ON CONFLICT (user_id, key) DO NOTHING RETURNING id"
)
RECORDED = (
    "SELECT request_hash, status_code, response_body, content_type, created_at FROM idempotency_records"
    " WHERE user_id = %s AND key = %s"
)


# --- check-in ----------------------------------------------------------------------------------


def _event(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
        event = {
            "client_id": str(uuid.UUID(data["client_id"])),
            "lat": float(data["lat"]),
            "lon": float(data["lon"]),
            "accuracy": float(data["accuracy_m"]),
            "device_at": datetime.fromisoformat(data["device_time"]),
            "mock": data.get("mock_location", False) is True,
        }
    except (ValueError, KeyError, TypeError):
        raise Problem(422, "validation_failed") from None
    if (not -90 <= event["lat"] <= 90 or not -180 <= event["lon"] <= 180 or not 0 <= event["accuracy"] <= 10_000
            or event["device_at"].tzinfo is None):
        raise Problem(422, "validation_failed")
    return event


def _fingerprint(path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (b"POST", path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _flags(row: Any, event: dict[str, Any], now: datetime) -> list[str]:
    grid_id, version, updated_at, boundary = row[8], row[9], row[10], row[11]
    flags = []
    if event["accuracy"] > MAX_ACCURACY_M:
        flags.append("poor_accuracy")
    if not boundary or boundary == "null":
        flags.append("no_boundary")
    elif not covers((grid_id, version, updated_at), boundary, event["lon"], event["lat"]):
        from core.geo import distance_to_boundary_m  # the rare path: a fix outside the grid

        if distance_to_boundary_m(json.loads(boundary), event["lon"], event["lat"]) > min(
            event["accuracy"], MAX_ACCURACY_M
        ):
            flags.append("outside_grid")
    if event["mock"]:
        flags.append("mock_location")
    if event["device_at"] - now > CLOCK_SKEW:
        flags.append("device_time_future")
    elif now - event["device_at"] > MAX_OFFLINE:
        flags.append("clock_skew")
    if row[1] == "absent":
        flags.append("marked_absent")
    return flags


def _patrol_view(patrol: dict[str, Any], timezone: str) -> dict[str, Any]:
    def event(prefix: str) -> dict[str, Any] | None:
        if patrol[f"{prefix}_client_id"] is None and not (prefix == "check_out" and patrol["auto_closed"]):
            return None
        return {
            "client_id": patrol[f"{prefix}_client_id"], "device_time": iso(patrol[f"{prefix}_device_at"]),
            "received_at": iso(patrol[f"{prefix}_received_at"]), "lat": patrol[f"{prefix}_lat"],
            "lon": patrol[f"{prefix}_lon"], "accuracy_m": patrol[f"{prefix}_accuracy_m"],
            "flags": patrol[f"{prefix}_flags"],
        }

    review = None
    if patrol["reviewed_at"] is not None:
        review = {"reviewed_by": patrol["reviewed_by"], "reviewed_at": iso(patrol["reviewed_at"]),
                  "reason": patrol["review_reason"]}
    return {
        "id": patrol["id"], "assignment_id": patrol["assignment_id"], "shift_id": patrol["shift_id"],
        "volunteer_id": patrol["volunteer_id"], "timezone": timezone, "presence_status": patrol["presence_status"],
        "counts": patrol["presence_status"] in ("verified", "approved"), "check_in": event("check_in"),
        "check_out": event("check_out"), "auto_closed": patrol["auto_closed"], "late_minutes": patrol["late_minutes"],
        "served_minutes": patrol["served_minutes"], "review": review, "distance_m": patrol["distance_m"],
        "track_point_count": patrol["track_point_count"], "positions_purged_at": iso(patrol["positions_purged_at"]),
    }


def _settle_late_check_in(cur: psycopg.Cursor, patrol: dict[str, Any], starts_at: datetime,
                          ends_at: datetime) -> None:
    """The check-out came first: presence after both ends' flags, then the served minutes once."""
    if patrol["presence_status"] not in ("approved", "rejected"):
        flagged = bool(patrol["check_in_flags"]) or bool(patrol["check_out_flags"])
        patrol["presence_status"] = "needs_review" if flagged else "verified"
    if patrol["presence_status"] in ("verified", "approved") and patrol["served_minutes"] is None:
        began = max(min(patrol["check_in_device_at"], patrol["check_in_received_at"]), starts_at)
        if patrol["check_out_device_at"] is not None:
            ended = min(patrol["check_out_device_at"], patrol["check_out_received_at"])
        else:
            ended = ends_at
        minutes = max(0, int((min(ended, ends_at + CHECK_OUT_GRACE) - began).total_seconds() // 60))
        patrol["served_minutes"] = minutes
    else:
        minutes = patrol["served_minutes"]
    cur.execute(
        "UPDATE patrols SET presence_status = %s, served_minutes = %s, updated_at = now() WHERE id = %s",
        (patrol["presence_status"], minutes, patrol["id"]),
    )


def check_in(environ: dict[str, Any], assignment_id: int) -> tuple[int, bytes, list[tuple[str, str]]]:
    who = caller(environ)
    if who["role"] != "volunteer":
        raise Problem(403, "forbidden")
    key = environ.get("HTTP_IDEMPOTENCY_KEY")
    if key is not None and not _KEY.fullmatch(key):
        raise Problem(422, "validation_failed")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    event = _event(body)
    path = environ["PATH_INFO"]
    conn = connection()
    replay: tuple[int, bytes] | None = None
    try:
        with conn.transaction() as transaction, conn.cursor() as cur:
            cur.execute(SESSION, (who["sid"], who["user_id"]))
            ensure_live(cur.fetchone())
            cur.execute(LOCK_AND_READ, {"client_id": event["client_id"], "assignment_id": assignment_id,
                                        "user_id": who["user_id"]})
            row = cur.fetchone()
            if row is None:
                raise Problem(404, "assignment_not_found")
            timezone = row[7]
            if row[12] is not None:  # the client_id went into a patrol already
                cur.execute(f"SELECT {_RETURNING} FROM patrols WHERE id = %s", (row[12],))
                patrol = dict(zip(PATROL_COLUMNS, cur.fetchone(), strict=True))
                if patrol["assignment_id"] != assignment_id or patrol["check_in_client_id"] != event["client_id"]:
                    raise Problem(409, "client_id_reused")
            else:
                if row[4] != "scheduled":
                    raise Problem(409, "shift_cancelled")
                if row[1] not in ("assigned", "absent"):
                    raise Problem(409, "assignment_not_live")
                now = datetime.now(UTC)
                arrived = min(event["device_at"], now)
                starts_at, ends_at = row[5], row[6]
                if not starts_at - OPENS <= arrived <= ends_at:
                    raise Problem(409, "outside_check_in_window")
                flags = _flags(row, event, now)
                cur.execute(UPSERT, {
                    "assignment_id": assignment_id, "volunteer_id": row[2], "shift_id": row[3], "now": now,
                    "presence": "needs_review" if flags else "verified", "client_id": event["client_id"],
                    "device_at": event["device_at"], "lat": event["lat"], "lon": event["lon"],
                    "accuracy": event["accuracy"], "flags": json.dumps(flags),
                    "late": max(0, int((arrived - starts_at).total_seconds() // 60)),
                })
                written = cur.fetchone()
                if written is None:  # the event was there already: this very one, or another
                    cur.execute(PATROL_OF_ASSIGNMENT, (assignment_id,))
                    patrol = dict(zip(PATROL_COLUMNS, cur.fetchone(), strict=True))
                    if patrol["check_in_client_id"] != event["client_id"]:
                        raise Problem(409, "already_checked_in")
                else:
                    patrol = dict(zip(PATROL_COLUMNS, written, strict=True))
                    if patrol["check_out_client_id"] == event["client_id"]:
                        raise Problem(409, "client_id_reused")
                    if patrol["check_out_client_id"] is not None or patrol["auto_closed"]:
                        _settle_late_check_in(cur, patrol, starts_at, ends_at)
            answer = json.dumps(_patrol_view(patrol, timezone), ensure_ascii=False, separators=(",", ":")).encode()
            if key is not None:
                fingerprint = _fingerprint(path, body)
                cur.execute(REMEMBER, (who["user_id"], key, path[:500], fingerprint, answer.decode(),
                                       datetime.now(UTC)))
                if cur.fetchone() is None:
                    replay = _recorded(cur, who["user_id"], key, fingerprint)
                    raise psycopg.Rollback(transaction)
    except Problem:
        if key is not None:  # a concurrent first request may have answered this key meanwhile
            with conn.cursor() as cur:
                cur.execute(RECORDED, (who["user_id"], key))
                if cur.fetchone() is not None:
                    replay = _recorded(cur, who["user_id"], key, _fingerprint(path, body))
        if replay is None:
            raise
    if replay is not None:
        return replay[0], replay[1], [("Idempotent-Replayed", "true")]
    return 200, answer, []


def _recorded(cur: psycopg.Cursor, user_id: int, key: str, fingerprint: str) -> tuple[int, bytes]:
    cur.execute(RECORDED, (user_id, key))
    row = cur.fetchone()
    if row is None or row[1] is None:
        raise Problem(409, "idempotency_key_in_progress", [("Retry-After", "1")])
    if row[0] != fingerprint:
        raise Problem(409, "idempotency_key_reused")
    return row[1], (row[2] or "").encode()


# --- WSGI --------------------------------------------------------------------------------------

_READS: dict[str, Callable[[dict[str, Any]], tuple[int, bytes, list[tuple[str, str]]]]] = {
    "/api/v1/me": me, "/api/v1/me/shifts": my_shifts, "/api/v1/areas/locate": locate,
}
_REASONS = {200: "OK", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT FOUND", 405: "METHOD NOT ALLOWED",
            409: "CONFLICT", 422: "UNPROCESSABLE ENTITY", 503: "SERVICE UNAVAILABLE"}


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
    content_type = "application/json"
    try:
        if method == "GET" and path in _READS:
            status, body, headers = _READS[path](environ)
        elif method == "POST" and (match := _CHECK_IN_PATH.fullmatch(path)):
            status, body, headers = check_in(environ, int(match.group(1)))
        elif method == "GET" and path in ("/healthz", "/readyz"):
            status, body, headers = 200, b'{"status":"ok"}', []
        else:
            raise Problem(404, "not_found")
    except Problem as problem:
        status, headers, content_type = problem.status, problem.headers, "application/problem+json"
        body = json.dumps({"type": "about:blank", "title": problem.code, "status": problem.status,
                           "code": problem.code}).encode()
    except psycopg.OperationalError:
        checkin_floor_base._connection = None  # the next request reconnects
        status, headers, content_type = 503, [("Retry-After", "1")], "application/problem+json"
        body = b'{"status":503,"code":"service_unavailable"}'
    start_response(f"{status} {_REASONS.get(status, 'ERROR')}",
                   [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers])
    return [body]
