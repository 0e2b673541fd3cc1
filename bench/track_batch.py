"""Benchmark of a 1,000-point track upload: the server's own time per request on PostgreSQL.

Usage (from the repository root)::

    .venv/bin/python bench/track_batch.py [--runs 30]

Drops and recreates the tables of ``BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test_tracks``; only ``test_*`` or ``*bench*`` names), makes a
city → grid, a volunteer and in-progress shifts, then times ``POST /api/v1/assignments/<id>/track``
through the Flask test client in-process (no HTTP server: the figure is the request's own cost:
token check, parsing and validating 1,000 points, the insert, the recount of the whole track, the
commit). Three cases, each ``--runs`` times on its own assignment:

- ``new``: 1,000 new points into an empty track;
- ``append``: 1,000 new points into a track already holding 5,000 (the recount reads all 6,000);
- ``repeat``: the same 1,000 points again (all duplicates; nothing changes).

Target: p95 of ``new`` under 50 ms. Results go to ``bench/results/track-batch-<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
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

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_tracks"
TARGET_MS = 50.0


def _points(start: datetime, count: int, offset: int = 0) -> list[dict[str, Any]]:
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
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
        "min_ms": round(ordered[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
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
            "JWT_SECRET_KEY": "bench-jwt-secret-that-is-long-enough-for-hs256",
            "PII_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PII_HASH_KEY": "bench",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 8,
            "INSTANCE_PATH": instance,
        }
    )
    client = app.test_client()
    cases: dict[str, list[float]] = {"new": [], "append": [], "repeat": []}
    with app.app_context():
        db.drop_all()
        db.create_all()
        city = factories.make_area(AreaLevel.CITY, name="包头市")
        district = factories.make_area(AreaLevel.DISTRICT, city)
        sub = factories.make_area(AreaLevel.SUBDISTRICT, district)
        community = factories.make_area(AreaLevel.COMMUNITY, sub)
        grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(109.84, 40.65))
        volunteer = factories.make_volunteer(grid)
        headers = factories.headers_for(volunteer.user)
        assignments = {}
        for case in cases:
            assignments[case] = []
            for _ in range(args.runs):
                # Shifts an hour apart would clash for one volunteer in real life; the upload does
                # not check clashes, and one volunteer keeps the token the same for every request.
                shift = factories.make_shift(grid, starts_in=timedelta(hours=-4), hours=6)
                assignments[case].append(factories.make_assignment(shift, volunteer).id)
        db.session.commit()
        start = (utcnow() - timedelta(hours=3)).replace(microsecond=0)
        assignment_ids = {case: list(ids) for case, ids in assignments.items()}

    def post(assignment_id: int, points: list[dict[str, Any]]) -> float:
        body = json.dumps({"points": points})
        started = time.perf_counter()
        response = client.post(
            f"/api/v1/assignments/{assignment_id}/track", data=body,
            content_type="application/json", headers=headers,
        )
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.get_data(as_text=True)
        return elapsed

    batch = _points(start, 1000)
    for _ in range(3):  # warm-up: imports, connection pool, statement caches
        post(assignment_ids["repeat"][0], batch)
    for assignment_id in assignment_ids["new"]:
        cases["new"].append(post(assignment_id, batch))
    for assignment_id in assignment_ids["append"]:
        for chunk in range(5):
            post(assignment_id, _points(start, 1000, offset=1000 + chunk * 1000))
        cases["append"].append(post(assignment_id, batch))
    for assignment_id in assignment_ids["repeat"]:
        post(assignment_id, batch)
        cases["repeat"].append(post(assignment_id, batch))

    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()

    result = {
        "at": datetime.now(UTC).isoformat(),
        "database": name,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "target_ms": TARGET_MS,
        "cases": {case: _summary(samples) for case, samples in cases.items()},
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"track-batch-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["cases"]["new"]["p95_ms"] < TARGET_MS else 2


if __name__ == "__main__":
    sys.exit(main())
