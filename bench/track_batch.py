"""Benchmark of a 1,000-point track upload: the server's own time per request on PostgreSQL, side by
side with its two yardsticks in one run (issue 19).

Usage (from the repository root)::

    .venv/bin/python bench/track_batch.py [--runs 30]

Drops and recreates the tables of ``BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test_tracks``; only ``test_*`` or ``*bench*`` names), makes a
city → grid, a volunteer with consent to tracking and in-progress shifts, then times, in-process
through werkzeug's test client (no HTTP server: the figure is the request's own cost):

- ``ours``: ``POST /api/v1/assignments/<id>/track`` of the product (token and session check,
  parsing and validating 1,000 points, the assignment and consent, the patrol row, the insert, the
  summary, the commit);
- ``floor``: :func:`floor_app`, a hand-written WSGI callable doing the same work and nothing more in
  plain psycopg on the same tables (never served by the product): PyJWT, the session row, the
  assignment with its shift and the live consent (``FOR SHARE``) in one statement, the points
  checked as the API checks them, the patrol row upserted and locked in one statement, the points
  inserted over binary arrays with duplicates ignored, the summary folded from where the patrol's
  stored fold stands (a recount when a new point comes before the stored ones), one UPDATE, COMMIT;
- ``bare``: ``GET /healthz`` of the product (the framework's cost).

Four cases, each ``--runs`` times on its own assignment per implementation, ours and the floor's
runs alternating: ``new`` (1,000 new points into an empty track), ``append`` (1,000 points after a
track of 5,000), ``late`` (1,000 points before a track of 5,000: the recount), ``repeat`` (the same
1,000 again: all duplicates). Each run's answer from ours and from the floor must agree (points,
distance, jumps), or the run fails.

Target (issue 19): ``new`` and ``append`` medians of ours under 15 ms. Results go to
``bench/results/track-batch-<UTC timestamp>.json``; exit status 2 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402
import psycopg  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from werkzeug.test import Client  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_tracks"
TARGET_MS = 15.0
CASES = ("new", "append", "late", "repeat")
SECRET = "bench-jwt-secret-that-is-long-enough-for-hs256"
PREFILL = 5  # batches of 1,000 stored before the timed one in append and late


# --- the floor ---------------------------------------------------------------------------------

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
        stored, earliest = cursor.execute(
            INSERT,
            (patrol_id, now, [p[0] for p in fresh], [p[1] for p in fresh], [p[2] for p in fresh], [p[3] for p in fresh]),
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


def floor_app(database_url: str, secret: str) -> Callable[..., Iterable[bytes]]:
    """The floor as a WSGI callable over one connection of its own."""
    connection = psycopg.connect(database_url)

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


# --- the run -----------------------------------------------------------------------------------


def _points_json(start: datetime, count: int, offset: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "lat": 40.655 + (offset + i) * 0.000005,
            "lon": 109.845,
            "accuracy_m": 8.0,
            "time": (start + timedelta(seconds=offset + i)).isoformat(),
        }
        for i in range(count)
    ]


def _summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "runs": len(ordered),
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, math.ceil(len(ordered) * 0.95) - 1)], 2),
        "min_ms": round(ordered[0], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if not 1 <= args.runs <= 500:
        raise SystemExit("--runs: 1 to 500")
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    name = url.rsplit("/", 1)[-1]
    if not (name.startswith("test_") or "bench" in name) and os.environ.get("BENCH_ALLOW_DROP") != "1":
        print(f"refusing to drop tables of {name!r}", file=sys.stderr)
        return 1

    from app import create_app
    from core.db import utcnow
    from core.extensions import db
    from grids.models import AreaLevel
    from tests import factories

    instance = tempfile.mkdtemp(prefix="track-bench-")
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "JWT_SECRET_KEY": SECRET,
            "PII_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PII_HASH_KEY": "bench",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 8,
            "INSTANCE_PATH": instance,
        }
    )
    implementations = ("ours", "floor")
    with app.app_context():
        for setting, value in (("TRACK_MAX_BATCH", MAX_BATCH), ("TRACK_MAX_POINTS_PER_PATROL", MAX_POINTS),
                               ("TRACK_MAX_SPEED_KMH", MAX_SPEED_KMH), ("TRACK_RETENTION_DAYS", RETENTION.days),
                               ("PATROL_EVENT_SLACK_MINUTES", SLACK.total_seconds() / 60)):
            assert app.config[setting] == value, f"the floor assumes {setting} = {value}"
        db.drop_all()
        db.create_all()
        city = factories.make_area(AreaLevel.CITY, name="包头市")
        district = factories.make_area(AreaLevel.DISTRICT, city)
        sub = factories.make_area(AreaLevel.SUBDISTRICT, district)
        community = factories.make_area(AreaLevel.COMMUNITY, sub)
        grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(109.84, 40.65))
        volunteer = factories.make_volunteer(grid)
        headers = factories.headers_for(volunteer.user)
        assignment_ids: dict[tuple[str, str], list[int]] = {}
        for case in ("warm-up", *CASES):
            for implementation in implementations:
                # Shifts an hour apart would clash for one volunteer in real life; the upload does
                # not check clashes, and one volunteer keeps the token the same for every request.
                assignment_ids[case, implementation] = [
                    factories.make_assignment(
                        factories.make_shift(grid, starts_in=timedelta(hours=-4), hours=6), volunteer
                    ).id
                    for _ in range(args.runs if case != "warm-up" else 1)
                ]
        db.session.commit()
        start = (utcnow() - timedelta(hours=3)).replace(microsecond=0)

    clients = {
        "ours": app.test_client(),
        "floor": Client(floor_app(url.replace("postgresql+psycopg://", "postgresql://"), SECRET)),
    }

    def post(implementation: str, assignment_id: int, points: list[dict[str, Any]]) -> tuple[float, float, dict[str, Any]]:
        """Wall and CPU milliseconds of one upload (CPU: this process's, so not PostgreSQL's), and the answer."""
        body = json.dumps({"points": points})
        cpu, started = time.process_time(), time.perf_counter()
        response = clients[implementation].post(
            f"/api/v1/assignments/{assignment_id}/track", data=body,
            content_type="application/json", headers=headers,
        )
        elapsed, cpu = (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000
        answer = json.loads(response.get_data())
        assert response.status_code == 200, (implementation, answer)
        return elapsed, cpu, answer

    def bare() -> tuple[float, float]:
        cpu, started = time.process_time(), time.perf_counter()
        response = clients["ours"].get("/healthz")
        elapsed, cpu = (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000
        assert response.status_code == 200
        return elapsed, cpu

    timed = _points_json(start, 1000)  # the timed batch: offsets 0-999
    before: dict[str, list[list[dict[str, Any]]]] = {
        "new": [],
        "append": [_points_json(start, 1000, offset=chunk * 1000) for chunk in range(PREFILL)],
        "late": [_points_json(start, 1000, offset=1000 + chunk * 1000) for chunk in range(PREFILL)],
        "repeat": [timed],
    }
    timed_batch = {
        "new": timed, "late": timed, "repeat": timed,
        "append": _points_json(start, 1000, offset=PREFILL * 1000),
    }
    for implementation in implementations:  # warm-up: imports, connections, statement caches
        for _ in range(3):
            post(implementation, assignment_ids["warm-up", implementation][0], timed)
        bare()

    samples: dict[str, dict[str, list[float]]] = {case: {"ours": [], "floor": [], "bare": []} for case in CASES}
    cpu_samples: dict[str, dict[str, list[float]]] = {case: {"ours": [], "floor": [], "bare": []} for case in CASES}
    for case in CASES:
        for run in range(args.runs):
            answers = {}
            # Alternate which goes first, so drift in the machine hits both alike.
            for implementation in implementations if run % 2 == 0 else implementations[::-1]:
                assignment_id = assignment_ids[case, implementation][run]
                for batch in before[case]:
                    post(implementation, assignment_id, batch)
                elapsed, cpu, answers[implementation] = post(implementation, assignment_id, timed_batch[case])
                samples[case][implementation].append(elapsed)
                cpu_samples[case][implementation].append(cpu)
            elapsed, cpu = bare()
            samples[case]["bare"].append(elapsed)
            cpu_samples[case]["bare"].append(cpu)
            compared = ("stored", "track_point_count", "distance_m", "implausible_count")
            ours, floor = ({key: answers[name][key] for key in compared} for name in implementations)
            if ours != floor:
                print(f"{case} run {run}: ours {ours} and the floor {floor} disagree", file=sys.stderr)
                return 1

    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()

    figures = {case: {name: _summary(values) for name, values in by_name.items()} for case, by_name in samples.items()}
    cpu_medians = {
        case: {name: round(statistics.median(values), 2) for name, values in by_name.items()}
        for case, by_name in cpu_samples.items()
    }
    ratios = {
        case: {
            "ours_over_floor": round(figures[case]["ours"]["median_ms"] / figures[case]["floor"]["median_ms"], 2),
            "ours_over_bare": round(figures[case]["ours"]["median_ms"] / figures[case]["bare"]["median_ms"], 1),
            "floor_over_bare": round(figures[case]["floor"]["median_ms"] / figures[case]["bare"]["median_ms"], 1),
        }
        for case in CASES
    }
    result = {
        "at": datetime.now(UTC).isoformat(),
        "database": name,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
        "target_ms": TARGET_MS,
        "cases": figures,
        "cpu_median_ms": cpu_medians,
        "ratios": ratios,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"track-batch-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print()
    print("| case | ours median (p95) | floor median (p95) | bare median | ours ÷ floor | CPU ours / floor / bare |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        row, cpu_row = figures[case], cpu_medians[case]
        print(
            f"| {case} | {row['ours']['median_ms']} ms ({row['ours']['p95_ms']}) "
            f"| {row['floor']['median_ms']} ms ({row['floor']['p95_ms']}) | {row['bare']['median_ms']} ms "
            f"| {ratios[case]['ours_over_floor']}× | {cpu_row['ours']} / {cpu_row['floor']} / {cpu_row['bare']} ms |"
        )
    met = all(figures[case]["ours"]["median_ms"] < TARGET_MS for case in ("new", "append"))
    print(f"\nTarget: new and append medians under {TARGET_MS:g} ms: {'met' if met else 'missed'}")
    return 0 if met else 2


if __name__ == "__main__":
    sys.exit(main())
