"""Track points partitioned by month (PostgreSQL) against the plain table, side by side in one run.

Usage (from the repository root)::

    .venv/bin/python bench/track_partitions.py [--runs 20] [--month-points 1000000] [--rounds 2]

Uses ``BENCH_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/bench_partitions``; only
``test_*`` or ``*bench*`` names: its tables are dropped). The schema comes from the migrations; the
plain table is migration 0019's and the partitioned one 0020's, switched back and forth in-process
(``downgrade 0019`` / ``upgrade head``), so both layouts are measured alternately in one run, the
plain table being the yardstick.

- ``upload``: ``POST /api/v1/assignments/<id>/track`` of 1,000 new points (a new assignment each
  time) through the Flask test client, ``--runs`` per round: the request's own time. The partitioned
  table holds the migration's months and the default partition.
- ``retention``: a month of ``--month-points`` points (200 patrols) long past retention: the plain
  table deletes them row by row (``purge_track_points``, as before), the partitioned one drops the
  month (``enforce_retention``). Wall time and the table's size on disk before and after.

Results go to ``bench/results/track-partitions-<UTC timestamp>.json``.
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/bench_partitions"
MONTH = date(2025, 1, 1)
PATROLS_PER_MONTH = 200


def _points(start: datetime, count: int) -> list[dict[str, Any]]:
    return [
        {"lat": 40.655 + i * 0.000005, "lon": 109.845, "accuracy_m": 8.0, "time": (start + timedelta(seconds=i)).isoformat()}
        for i in range(count)
    ]


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "runs": len(ordered),
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 2),
        "min_ms": round(ordered[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--month-points", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    name = url.rsplit("/", 1)[-1]
    if not (name.startswith("test_") or "bench" in name):
        raise SystemExit(f"refusing to drop the tables of {name!r}: use a test_* or *bench* database")

    import sqlalchemy as sa
    from alembic import command as alembic_command

    from app import create_app
    from core import partitions
    from core.db import utcnow
    from core.extensions import db, migrate
    from grids.models import AreaLevel
    from patrols.privacy import retention
    from patrols.service import patrol_for
    from tests import factories

    instance = tempfile.mkdtemp(prefix="bench-partitions-")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench",
        "JWT_SECRET_KEY": "bench-jwt-secret-that-is-long-enough-for-hs256",
        "PII_ENCRYPTION_KEY": Fernet.generate_key().decode(), "PII_HASH_KEY": "bench",
        "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "INSTANCE_PATH": instance,
    })
    client = app.test_client()
    layouts = ("partitioned", "plain")

    def layout(which: str) -> None:
        with app.app_context():
            db.session.remove()
            config = migrate.get_config()
            config.attributes["configure_logger"] = False
            if which == "plain":
                alembic_command.downgrade(config, "0019")
            else:
                alembic_command.upgrade(config, "head")
            db.engine.dispose()

    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    layout("partitioned")
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY, name="包头市")
        district = factories.make_area(AreaLevel.DISTRICT, city)
        sub = factories.make_area(AreaLevel.SUBDISTRICT, district)
        community = factories.make_area(AreaLevel.COMMUNITY, sub)
        grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(109.84, 40.65))
        volunteer = factories.make_volunteer(grid)
        headers = factories.headers_for(volunteer.user)
        uploads = {
            (which, round_): [
                factories.make_assignment(factories.make_shift(grid, starts_in=timedelta(hours=-4), hours=6), volunteer).id
                for _ in range(args.runs + 3)
            ]
            for which in layouts for round_ in range(args.rounds)
        }
        old_patrols = {}
        for which in layouts:
            for round_ in range(args.rounds):
                ids = []
                for _ in range(PATROLS_PER_MONTH):
                    shift = factories.make_shift(grid)
                    shift.starts_at = datetime(MONTH.year, MONTH.month, 10, 10, tzinfo=UTC)
                    shift.ends_at = shift.starts_at + timedelta(hours=4)
                    ids.append(patrol_for(factories.make_assignment(shift, volunteer)).id)
                old_patrols[(which, round_)] = ids
        db.session.commit()
        start = (utcnow() - timedelta(hours=3)).replace(microsecond=0)

    def post(assignment_id: int, body: str) -> float:
        started = time.perf_counter()
        response = client.post(
            f"/api/v1/assignments/{assignment_id}/track", data=body, content_type="application/json", headers=headers
        )
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.get_data(as_text=True)
        return elapsed

    def table_bytes() -> int:
        return int(db.session.scalar(sa.text(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relname = 'track_points' OR c.relname LIKE 'track_points\\_%'"
        )))

    body = json.dumps({"points": _points(start, 1000)})
    upload_ms: dict[str, list[float]] = {which: [] for which in layouts}
    purge: dict[str, list[dict[str, float]]] = {which: [] for which in layouts}
    per_patrol = args.month_points // PATROLS_PER_MONTH
    for round_ in range(args.rounds):
        for which in layouts if round_ % 2 == 0 else layouts[::-1]:  # neither always goes first
            layout(which)
            ids = uploads[(which, round_)]
            for assignment_id in ids[:3]:  # warm-up: connection, statement caches
                post(assignment_id, body)
            upload_ms[which].extend(post(assignment_id, body) for assignment_id in ids[3:])

            with app.app_context():
                if which == "partitioned":
                    partitions.ensure_months(partitions.partitioned_tables()[0], [MONTH])
                db.session.execute(
                    sa.text(
                        "INSERT INTO track_points (patrol_id, device_at, received_at, lat, lon, accuracy_m) "
                        "SELECT p, CAST(:at AS timestamptz) + s * interval '1 second', CAST(:at AS timestamptz), 40.6, 109.8, 5 "
                        "FROM unnest(CAST(:patrols AS integer[])) AS p, generate_series(0, :n - 1) AS s"
                    ),
                    {"patrols": old_patrols[(which, round_)], "n": per_patrol,
                     "at": datetime(MONTH.year, MONTH.month, 10, 10, tzinfo=UTC)},
                )
                db.session.commit()
                db.session.execute(sa.text("ANALYZE track_points"))
                db.session.commit()
                before = table_bytes()
                started = time.perf_counter()
                if which == "partitioned":
                    counts = retention.enforce_retention()
                    assert counts["track_partitions_dropped"] == 1, counts
                else:
                    assert retention.purge_track_points() == per_patrol * PATROLS_PER_MONTH
                db.session.commit()
                seconds = time.perf_counter() - started
                after = table_bytes()
                db.session.remove()
            purge[which].append({"seconds": round(seconds, 3), "bytes_before": before, "bytes_after": after})

    with app.app_context():
        db.session.remove()
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.engine.dispose()

    uploads_summary = {which: _summary(samples) for which, samples in upload_ms.items()}
    result = {
        "at": datetime.now(UTC).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "runs": args.runs, "rounds": args.rounds, "month_points": per_patrol * PATROLS_PER_MONTH,
        "upload_1000_points": uploads_summary,
        "upload_ratio_partitioned_to_plain": {
            key: round(uploads_summary["partitioned"][key] / uploads_summary["plain"][key], 2)
            for key in ("median_ms", "p95_ms")
        },
        "retention_of_one_month": purge,
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / f"track-partitions-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
