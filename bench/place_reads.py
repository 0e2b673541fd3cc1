"""The reads of a volunteer's places, as a checkout's code sends them, timed by EXPLAIN ANALYZE on a
seeded city (issue 19): the clash check of a sign-up, the calendar feed, the release of future
places, the SOS's place on duty and the volunteers on duty near it.

Usage (PostgreSQL; a city seeded by ``bench/city_seed.py``)::

    .venv/bin/python bench/place_reads.py --url postgresql://postgres@127.0.0.1:5432/sw_places_year \\
        [--root ../w-base] [--volunteers 20] [--runs 5]

``--root`` runs the code of another checkout (e.g. a worktree of the commit before) against the same
database. For the volunteers with the most places, each read runs once through the app's own function
(a writing one in a transaction rolled back); every statement it sent that reads ``shift_assignments``
or ``patrols`` is then run ``--runs`` times under ``EXPLAIN (ANALYZE, BUFFERS)``. Printed per read:
the median execution time (ms) and shared buffers per call, summed over its statements, and the rows
its scans of ``shift_assignments``, ``patrols`` and ``shifts`` read (handed up or filtered out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _nodes(plan: dict[str, Any]) -> Any:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _rows(plan: dict[str, Any], table: str) -> int:
    return sum(
        (node["Actual Rows"] + node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0))
        * node.get("Actual Loops", 1)
        for node in _nodes(plan) if node.get("Relation Name") == table
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose code runs")
    parser.add_argument("--volunteers", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    os.environ["DATABASE_URL"] = args.url

    import sqlalchemy as sa

    from app import create_app
    from core.db import utcnow
    from core.extensions import db
    from patrols.sos import service as sos
    from shifts import rules
    from shifts.calendar import service as calendar
    from shifts.filling import listeners
    from volunteers.models import Volunteer

    app = create_app()
    sent: list[tuple[str, Any]] = []
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", lambda _c, _k, sql, params, _x, _m: sent.append((sql, params)))
        now = utcnow()
        ids = db.session.execute(sa.text(
            "SELECT volunteer_id FROM shift_assignments a JOIN volunteers v ON v.id = a.volunteer_id "
            "WHERE v.status = 'active' GROUP BY volunteer_id ORDER BY count(*) DESC, volunteer_id LIMIT :n"
        ), {"n": args.volunteers}).scalars().all()
        places = db.session.execute(sa.text(
            "SELECT count(*) FROM shift_assignments WHERE volunteer_id = ANY(:ids)"), {"ids": list(ids)}).scalar_one()
        point = db.session.execute(sa.text("SELECT check_in_lat, check_in_lon FROM patrols "
                                           "WHERE check_in_lat IS NOT NULL ORDER BY id DESC LIMIT 1")).one()
        db.session.rollback()

        def reads(volunteer_id: int) -> dict[str, Any]:
            volunteer = db.session.get_one(Volunteer, volunteer_id)
            start = now + timedelta(days=3)
            return {
                "clash check (sign-up)": lambda: rules.clashing_shifts(volunteer_id, start, start + timedelta(hours=2)),
                "calendar feed": lambda: calendar.feed_assignments(volunteer, now),
                "release future places": lambda: listeners.release_future_places(volunteer_id, None, "bench"),
                "SOS: place on duty": lambda: sos._duty_assignment(volunteer_id, now),
                "SOS: on duty near": lambda: sos.volunteers_on_duty_near(point[0], point[1], 1000, now, besides=volunteer_id),
            }

        found: dict[str, dict[str, list[float]]] = {}
        for volunteer_id in ids:
            for name, read in reads(volunteer_id).items():
                sent.clear()
                read()
                statements = [(sql, params) for sql, params in sent
                              if sql.lstrip().upper().startswith("SELECT") and ("shift_assignments" in sql or "patrols" in sql)]
                db.session.rollback()
                totals = {"ms": 0.0, "buffers": 0.0, "shift_assignments": 0.0, "patrols": 0.0, "shifts": 0.0}
                for sql, params in statements:
                    timings, buffers = [], []
                    for _ in range(args.runs):
                        raw = db.session.connection().exec_driver_sql(
                            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params).scalar()
                        result = (json.loads(raw) if isinstance(raw, str) else raw)[0]
                        timings.append(result["Execution Time"])
                        buffers.append(result["Plan"].get("Shared Hit Blocks", 0) + result["Plan"].get("Shared Read Blocks", 0))
                        plan = result["Plan"]
                    totals["ms"] += statistics.median(timings)
                    totals["buffers"] += statistics.median(buffers)
                    for table in ("shift_assignments", "patrols", "shifts"):
                        totals[table] += _rows(plan, table)
                    db.session.rollback()
                for key, value in totals.items():
                    found.setdefault(name, {}).setdefault(key, []).append(value)
        print(f"code: {args.root.resolve()}  database: {args.url.rsplit('/', 1)[-1]}  volunteers: {len(ids)} "
              f"({places} places, {places / len(ids):.0f} each)  runs: {args.runs}")
        print(f"{'read':<24} {'median ms':>10} {'p90 ms':>8} {'buffers':>8} {'places read':>12} {'patrols read':>13} {'shifts read':>12}")
        for name, values in found.items():
            ms = sorted(values["ms"])
            print(f"{name:<24} {statistics.median(ms):>10.3f} {ms[int(0.9 * (len(ms) - 1))]:>8.3f} "
                  f"{statistics.median(values['buffers']):>8.0f} {statistics.median(values['shift_assignments']):>12.0f} "
                  f"{statistics.median(values['patrols']):>13.0f} {statistics.median(values['shifts']):>12.0f}")


if __name__ == "__main__":
    main()
