"""The hand-written floors of the hot reads (``GET /api/v1/me``, ``/me/shifts``, ``/areas/locate``):
see ``checkin_floor.py``. A yardstick, never served by the product."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from checkin_floor_base import Problem, caller, connection, covers, ensure_live, iso

_PAGE = 20
ME = (
    "SELECT u.id, u.phone, u.role, u.display_name, u.locale, u.created_at, u.is_active,"
    " s.revoked_at, s.expires_at, ar.id, ar.code, ar.name, ar.level, ar.path,"
    " (SELECT v.id FROM volunteers v WHERE v.user_id = u.id)"
    " FROM auth_sessions s JOIN users u ON u.id = s.user_id LEFT JOIN areas ar ON ar.id = u.area_id"
    " WHERE s.id = %s AND u.id = %s"
)
SESSION_AND_VOLUNTEER = (
    "SELECT u.is_active, s.revoked_at, s.expires_at, v.id FROM auth_sessions s JOIN users u ON u.id = s.user_id"
    " LEFT JOIN volunteers v ON v.user_id = u.id WHERE s.id = %s AND u.id = %s"
)
MY_SHIFTS = (
    "SELECT a.id, a.shift_id, a.volunteer_id, v.real_name, k.code, a.status, a.role, a.source,"
    " CASE WHEN a.status = 'waitlisted' THEN (SELECT count(*) FROM shift_assignments w"
    "  WHERE w.shift_id = a.shift_id AND w.status = 'waitlisted'"
    "  AND (w.queue_seq, w.id) <= (a.queue_seq, a.id)) END,"
    " a.late_withdrawal, a.created_at, a.ended_at, a.end_reason,"
    " s.grid_id, g.name, g.parent_id, s.series_id, s.occurrence_local, s.detached, s.status, s.timezone,"
    " s.starts_at, s.ends_at, s.title, s.instructions, s.meeting_point, s.min_headcount, s.max_headcount,"
    " s.backup_slots, s.primary_count, s.backup_count,"
    " (SELECT count(*) FROM shift_assignments w WHERE w.shift_id = s.id AND w.status = 'waitlisted'),"
    " s.required_kinds,"
    " CASE WHEN s.required_kinds::text <> '[]' THEN (SELECT json_object_agg(code, n) FROM"
    "  (SELECT k2.code, count(*) AS n FROM shift_assignments p JOIN volunteers v2 ON v2.id = p.volunteer_id"
    "   JOIN volunteer_kinds k2 ON k2.id = v2.kind_id WHERE p.shift_id = s.id AND p.status = 'assigned'"
    "   AND p.role = 'primary' GROUP BY k2.code) AS by_kind) END,"
    " s.cancelled_at, s.cancel_reason"
    " FROM shift_assignments a JOIN shifts s ON s.id = a.shift_id JOIN areas g ON g.id = s.grid_id"
    " JOIN volunteers v ON v.id = a.volunteer_id JOIN volunteer_kinds k ON k.id = v.kind_id"
    " WHERE a.volunteer_id = %s AND s.ends_at > %s AND a.status IN ('invited', 'assigned', 'waitlisted')"
    f" ORDER BY s.starts_at, a.id LIMIT {_PAGE + 1}"
)
_ANCESTOR = "{a}.id, {a}.level, {a}.code, {a}.name"
LOCATE = (
    "SELECT g.id, g.parent_id, g.level, g.code, g.name, g.timezone, g.path, g.depth, g.grid_kind, g.households,"
    " g.min_lon, g.min_lat, g.max_lon, g.max_lat, g.version, g.created_at, g.updated_at, g.boundary::text, "
    + ", ".join(_ANCESTOR.format(a=f"a{n}") for n in range(4))
    + " FROM areas g LEFT JOIN areas a0 ON a0.id = g.parent_id LEFT JOIN areas a1 ON a1.id = a0.parent_id"
    " LEFT JOIN areas a2 ON a2.id = a1.parent_id LEFT JOIN areas a3 ON a3.id = a2.parent_id"
    " WHERE g.min_lat <= %(lat)s AND g.max_lat >= %(lat)s AND g.min_lon <= %(lon)s AND g.max_lon >= %(lon)s"
    " AND g.level = 'grid' ORDER BY g.id"
)


def me(environ: dict[str, Any]) -> tuple[int, bytes, list[tuple[str, str]]]:
    who = caller(environ)
    with connection().cursor() as cur:
        cur.execute(ME, (who["sid"], who["user_id"]))
        row = cur.fetchone()
    if row is None:
        ensure_live(None)
    ensure_live((row[6], row[7], row[8]))
    answer = {
        "id": row[0], "phone": row[1], "role": row[2], "display_name": row[3], "locale": row[4],
        "area": {"id": row[9], "code": row[10], "name": row[11], "level": row[12], "path": row[13]},
        "created_at": iso(row[5]), "volunteer_id": row[14],
    }
    return 200, json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode(), []


def my_shifts(environ: dict[str, Any]) -> tuple[int, bytes, list[tuple[str, str]]]:
    who = caller(environ)
    if who["role"] != "volunteer":
        raise Problem(403, "forbidden")
    with connection().cursor() as cur:
        cur.execute(SESSION_AND_VOLUNTEER, (who["sid"], who["user_id"]))
        session = cur.fetchone()
        ensure_live(session)
        if session[3] is None:
            raise Problem(404, "volunteer_not_found")
        cur.execute(MY_SHIFTS, (session[3], datetime.now(UTC)))
        rows = cur.fetchall()
    items = []
    for r in rows[:_PAGE]:
        required, by_kind = r[32] or [], r[33] or {}
        unmet = []
        for requirement in required:
            assigned = by_kind.get(requirement["kind"], 0)
            if assigned < requirement["minimum"]:
                unmet.append({"kind": requirement["kind"], "minimum": requirement["minimum"], "assigned": assigned,
                              "met": False})
        occurrence_local = r[17]
        items.append({
            "id": r[0], "shift_id": r[1], "volunteer_id": r[2], "volunteer_name": r[3], "volunteer_kind": r[4],
            "status": r[5], "role": r[6], "source": r[7], "waitlist_position": r[8], "late_withdrawal": r[9],
            "created_at": iso(r[10]), "ended_at": iso(r[11]), "end_reason": r[12],
            "shift": {
                "id": r[1], "grid_id": r[13], "grid_name": r[14], "community_id": r[15], "series_id": r[16],
                # A series' occurrence: its local time in the shift's zone, as UTC (rare here).
                "occurrence": None if occurrence_local is None else iso(
                    occurrence_local.replace(tzinfo=ZoneInfo(r[20]))),
                "occurrence_local": None if occurrence_local is None else occurrence_local.isoformat(),
                "detached": r[18], "status": r[19], "timezone": r[20], "starts_at": iso(r[21]),
                "ends_at": iso(r[22]), "title": r[23], "instructions": r[24], "meeting_point": r[25],
                "min_headcount": r[26], "max_headcount": r[27], "backup_slots": r[28], "primary_count": r[29],
                "backup_count": r[30], "waitlist_count": r[31], "open_places": max(r[27] - r[29], 0),
                "below_minimum": r[29] < r[26], "required_kinds": required, "unmet_kinds": unmet,
                "cancelled_at": iso(r[34]), "cancel_reason": r[35],
            },
        })
    next_cursor = None
    if len(rows) > _PAGE:  # keyset cursor of the last item (the product's format differs; rare here)
        next_cursor = f"{items[-1]['shift']['starts_at']}|{items[-1]['id']}"
    return 200, json.dumps({"items": items, "next_cursor": next_cursor}, ensure_ascii=False, separators=(",", ":")).encode(), []


def locate(environ: dict[str, Any]) -> tuple[int, bytes, list[tuple[str, str]]]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        lat, lon = float(query["lat"][0]), float(query["lon"][0])
    except (KeyError, ValueError):
        raise Problem(422, "validation_failed") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Problem(422, "validation_failed")
    with connection().cursor() as cur:
        cur.execute(LOCATE, {"lat": lat, "lon": lon})
        rows = cur.fetchall()
    for r in rows:
        if r[17] and covers((r[0], r[14], r[16]), r[17], lon, lat):
            ancestors = [
                {"id": r[i], "level": r[i + 1], "code": r[i + 2], "name": r[i + 3]}
                for i in range(18, 34, 4) if r[i] is not None
            ][::-1]
            answer = {
                "id": r[0], "parent_id": r[1], "level": r[2], "code": r[3], "name": r[4], "timezone": r[5],
                "path": r[6], "depth": r[7], "grid_kind": r[8], "households": r[9],
                "bbox": [r[10], r[11], r[12], r[13]], "version": r[14], "created_at": iso(r[15]),
                "updated_at": iso(r[16]), "ancestors": ancestors,
            }
            return 200, json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode(), []
    raise Problem(404, "no_grid_here")
