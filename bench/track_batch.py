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
- ``floor``: ``floor_app`` (``bench/track_batch_floor.py``), a hand-written WSGI callable doing the
  same work and nothing more in plain psycopg on the same tables (never served by the product):
  PyJWT, the session row, the assignment with its shift and the live consent (``FOR SHARE``) in one
  statement, the points checked as the API checks them, the patrol row upserted and locked in one statement, the points
  inserted over binary arrays packed whole as the product packs them (``core/pg_arrays.py``) with duplicates ignored, the summary folded from where the patrol's
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
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from bench.track_batch_floor import MAX_BATCH, MAX_POINTS, MAX_SPEED_KMH, RETENTION, SLACK, floor_app  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_tracks"
TARGET_MS = 15.0
CASES = ("new", "append", "late", "repeat")
SECRET = "bench-jwt-secret-that-is-long-enough-for-hs256"
PREFILL = 5  # batches of 1,000 stored before the timed one in append and late


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
