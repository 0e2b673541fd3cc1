"""Checks of a seeded city: what the app would have written, and what it answers.

Each check returns ``{"checked": n, "failures": [...]}`` (at most 10 failures listed); the seed
fails when any has failures. The sampled ones recount with the app's own code (report roll-ups:
``reports.rollups.repair``; leaderboards: ``rewards.leaderboards.totals``); the counters every row
(point balances against the ledger, shift counters against the places, the places' copies of their
shifts' times against the shifts, track summaries against the points); the geometry by areas (grids
add up to their district's rectangle), random points
(each in exactly one grid) and the app's ``GET /api/v1/areas/locate``; the endpoints by logging in
through the Flask test client.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask

API = "/api/v1"


def _result(checked: int, failures: list[Any]) -> dict[str, Any]:
    return {"checked": checked, "failures": failures[:10], "failed": len(failures)}


def _shoelace(ring: list[list[float]]) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))) / 2


def tiling(manifest: dict[str, Any], points_per_district: int = 60) -> dict[str, Any]:
    """Grids add up to their district's rectangle, and random points lie in exactly one grid."""
    from core import geo
    from core.extensions import db

    rows = db.session.execute(sa.text(
        "SELECT g.id, g.boundary, g.min_lon, g.min_lat, g.max_lon, g.max_lat, d.code FROM areas g "
        "JOIN areas d ON d.level = 'district' AND g.path LIKE d.path || '%' WHERE g.level = 'grid'"
    )).all()
    failures: list[Any] = []
    rng = random.Random(19)
    checked = 0
    for district in manifest["districts"]:
        mine = [row for row in rows if row.code == district["code"]]
        box = (district["max_lon"] - district["min_lon"]) * (district["max_lat"] - district["min_lat"])
        covered = sum(_shoelace(row.boundary["coordinates"][0]) for row in mine)
        if abs(covered - box) > box * 1e-6:
            failures.append({"district": district["code"], "rectangle": box, "grids": covered})
        for _ in range(points_per_district):
            lon = rng.uniform(district["min_lon"], district["max_lon"])
            lat = rng.uniform(district["min_lat"], district["max_lat"])
            inside = [row.id for row in mine if row.min_lon <= lon <= row.max_lon and row.min_lat <= lat <= row.max_lat
                      and geo.contains(("city-check", row.id), row.boundary, lon, lat)]
            checked += 1
            if len(inside) != 1:
                failures.append({"district": district["code"], "lon": lon, "lat": lat, "grids": inside})
    return _result(checked, failures)


def locate(client: Any, manifest: dict[str, Any], sample: int) -> dict[str, Any]:
    """``GET /areas/locate`` finds each sampled grid from the point inside it the manifest gives."""
    grids = sorted(manifest["grids"].items(), key=lambda item: int(item[0]))
    step = max(1, len(grids) // sample)
    failures = []
    for grid_id, grid in grids[::step]:
        lon, lat = grid["point"]
        answer = client.get(f"{API}/areas/locate", query_string={"lon": lon, "lat": lat})
        found = answer.get_json().get("id") if answer.status_code == 200 else answer.status_code
        if found != int(grid_id):
            failures.append({"grid": int(grid_id), "point": grid["point"], "found": found})
    return _result(len(grids[::step]), failures)


def rollups(manifest: dict[str, Any], sample: int) -> dict[str, Any]:
    """The report roll-ups of sampled grids and volunteers equal the app's recount of the rows."""
    from core.extensions import db
    from grids.models import Area
    from reports.rollups import repair
    from reports.rollups.cli import data_span

    span = data_span()
    assert span is not None
    grid_ids = sorted(int(g) for g in manifest["grids"])
    grids = grid_ids[:: max(1, len(grid_ids) // sample)]
    failures: list[Any] = []
    for grid_id in grids:
        grid = db.session.get(Area, grid_id)
        assert grid is not None
        failures += repair.grid_mismatches(grid, span[0], span[1])
    volunteers = [v["id"] for v in manifest["volunteers"]["items"]]
    sampled = volunteers[:: max(1, len(volunteers) // sample)]
    failures += repair.volunteer_mismatches(sampled)
    return _result(len(grids) + len(sampled), failures)


def _all_rows(sql: str) -> Callable[[], dict[str, Any]]:
    """A check that every row agrees: ``sql`` selects the ones that do not, and how many it looked at."""
    def check() -> dict[str, Any]:
        from core.extensions import db

        checked = db.session.execute(sa.text(sql.split("-- checked:")[1])).scalar_one()
        wrong = [dict(row._mapping) for row in db.session.execute(sa.text(sql.split("-- checked:")[0]))]
        return _result(int(checked), wrong)
    return check


balances = _all_rows(
    "SELECT coalesce(b.volunteer_id, l.volunteer_id) AS volunteer_id, b.balance, l.total FROM point_balances b "
    "FULL JOIN (SELECT volunteer_id, sum(amount) AS total FROM ledger_entries GROUP BY volunteer_id) l "
    "ON l.volunteer_id = b.volunteer_id WHERE b.balance IS DISTINCT FROM l.total LIMIT 10"
    "-- checked: SELECT count(*) FROM point_balances"
)
shift_counters = _all_rows(
    "SELECT s.id, s.primary_count, s.backup_count, a.primaries, a.backups FROM shifts s LEFT JOIN ("
    "SELECT shift_id, count(*) FILTER (WHERE role = 'primary' AND status IN ('assigned', 'absent')) AS primaries, "
    "count(*) FILTER (WHERE role = 'backup' AND status = 'assigned') AS backups FROM shift_assignments "
    "GROUP BY shift_id) a ON a.shift_id = s.id "
    "WHERE s.primary_count <> coalesce(a.primaries, 0) OR s.backup_count <> coalesce(a.backups, 0) LIMIT 10"
    "-- checked: SELECT count(*) FROM shifts"
)
# The places' copies of their shifts' times (migration 0022's triggers kept them through the bulk load).
shift_times = _all_rows(
    "SELECT a.id, a.shift_id, a.shift_starts_at, s.starts_at, a.shift_ends_at, s.ends_at FROM shift_assignments a "
    "JOIN shifts s ON s.id = a.shift_id WHERE a.shift_starts_at IS DISTINCT FROM s.starts_at "
    "OR a.shift_ends_at IS DISTINCT FROM s.ends_at LIMIT 10"
    "-- checked: SELECT count(*) FROM shift_assignments"
)
track_summaries = _all_rows(
    "SELECT p.id, p.track_point_count, t.points FROM patrols p JOIN (SELECT patrol_id, count(*) AS points "
    "FROM track_points GROUP BY patrol_id) t ON t.patrol_id = p.id WHERE p.track_point_count <> t.points LIMIT 10"
    "-- checked: SELECT count(DISTINCT patrol_id) FROM track_points"
)


def leaderboards(manifest: dict[str, Any], sample: int) -> dict[str, Any]:
    """Sampled volunteers' totals equal the app's recount; every grid's figures equal the totals'."""
    from rewards.leaderboards import totals

    volunteers = [v["id"] for v in manifest["volunteers"]["items"]]
    sampled = volunteers[:: max(1, len(volunteers) // sample)]
    failures = [*totals.mismatches(sampled), *totals.grid_mismatches()]
    return _result(len(sampled) + manifest["grid_count"], failures)


#: The volunteer the endpoints check logs in as: active, with a place on a shift ahead, and one with
#: a place ended by now if the city has one yet (a one-day seed before that day's shifts end has
#: none: then the past page must be empty). Every instant is the app's clock (``:now``), never the
#: database's ``now()``: the app answers by its own, and a test may move it (libfaketime).
_VOLUNTEER = """
SELECT v.id, u.phone, EXISTS (SELECT 1 FROM shift_assignments p WHERE p.volunteer_id = v.id
    AND p.shift_ends_at <= :now AND p.shift_starts_at < :now AND (p.status IN ('assigned', 'absent')
    OR (p.status = 'withdrawn' AND p.late_withdrawal))) AS has_past
FROM volunteers v JOIN users u ON u.id = v.user_id
WHERE v.status = 'active' AND EXISTS (SELECT 1 FROM shift_assignments a WHERE a.volunteer_id = v.id
    AND a.status = 'assigned' AND a.shift_starts_at > :now)
ORDER BY has_past DESC, v.id LIMIT 1
"""
#: Whether the district has a volunteer with points in the local year of ``:now`` (the year board's).
_POINTS_THIS_YEAR = """
SELECT EXISTS (SELECT 1 FROM ledger_entries l JOIN volunteers v ON v.id = l.volunteer_id
    JOIN areas g ON g.id = v.home_grid_id JOIN areas d ON d.id = :district
    WHERE g.path LIKE d.path || '%' AND v.status = 'active' AND l.created_at >= :year_from
    GROUP BY l.volunteer_id HAVING sum(l.amount) > 0)
"""


def endpoints(app: Flask, manifest: dict[str, Any]) -> dict[str, Any]:
    """Log in as a volunteer with a shift ahead, as an organiser and as district staff, and read what
    each would: /me, /me/shifts (upcoming, past), a participation report, a leaderboard. Outside any
    app context, so that each request has its own, as when served.

    What must be there follows from the city at the app's clock, whatever the hour: the upcoming
    page holds the place ahead; the past page is empty exactly when the city has no place ended
    yet (a one-day seed before its first shift ends); the month's report (the local month) plans
    its shifts; the year's board is empty exactly when nobody in the district has points yet."""
    from core.db import utcnow
    from core.extensions import db

    now = utcnow()
    district = next(s for s in manifest["staff"] if s["level"] == "district")
    with app.app_context():
        zone = db.session.execute(sa.text("SELECT timezone FROM areas WHERE id = :id"), {"id": district["area_id"]}).scalar_one()
        local = now.astimezone(ZoneInfo(zone))
        volunteer_id, phone, has_past = db.session.execute(sa.text(_VOLUNTEER), {"now": now}).one()
        year_from = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        has_points = db.session.execute(
            sa.text(_POINTS_THIS_YEAR), {"district": district["area_id"], "year_from": year_from}
        ).scalar_one()
        db.session.remove()
    client = app.test_client()
    failures: list[Any] = []
    calls = 0

    def call(method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = getattr(client, method)(path, headers=headers, **kwargs)
        if answer.status_code != 200:
            failures.append({"call": f"{method.upper()} {path}", "status": answer.status_code,
                             "body": answer.get_data(as_text=True)[:300]})
            return {}
        return answer.get_json()

    def login(phone: str) -> str | None:
        answer = call("post", f"{API}/auth/login", json={"phone": phone, "password": manifest["password"]})
        return answer.get("access_token")

    token = login(phone)
    if token:
        me = call("get", f"{API}/me", token)
        if me and me.get("volunteer_id") != volunteer_id:
            failures.append({"me": me, "expected_volunteer": volunteer_id})
        for when, expected in (("upcoming", True), ("past", has_past)):
            page = call("get", f"{API}/me/shifts", token, query_string={"when": when})
            if page and bool(page.get("items")) != expected:
                failures.append({"me/shifts": when, "items": len(page.get("items") or []), "expected_items": expected})
    token = login(district["phone"])
    if token:
        report = call("get", f"{API}/reports/participation", token,
                      query_string={"area_id": district["area_id"], "period": "month", "value": local.strftime("%Y-%m")})
        if report and not (report["figures"]["shifts"] or {}).get("planned"):
            failures.append({"report": "no shifts planned", "figures": report["figures"]})
        board = call("get", f"{API}/leaderboards", token,
                     query_string={"area_id": district["area_id"], "period": "year", "by": "volunteer", "metric": "points"})
        if board and bool(board.get("items")) != has_points:
            failures.append({"leaderboard": len(board.get("items") or []), "expected_items": has_points})
    organiser = manifest["organisers"][-1]
    token = login(organiser["phone"])
    if token:
        call("get", f"{API}/me", token)
    return _result(calls, failures)


def run_all(app: Flask, manifest: dict[str, Any], sample: int = 200) -> dict[str, Any]:
    """Every check (call outside an app context); their results by name."""
    from core.extensions import db

    with app.app_context():
        client = app.test_client()
        found = {
            "tiling": tiling(manifest),
            "locate": locate(client, manifest, sample),
            "rollups": rollups(manifest, sample),
            "balances": balances(),
            "shift_counters": shift_counters(),
            "shift_times": shift_times(),
            "track_summaries": track_summaries(),
            "leaderboards": leaderboards(manifest, sample),
        }
        db.session.rollback()
        db.session.remove()
    found["endpoints"] = endpoints(app, manifest)
    return found
