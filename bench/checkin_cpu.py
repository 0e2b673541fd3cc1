"""CPU per request of ours and of the hand-written floor, in-process: the check-in and the hot reads.

``bench/checkin.py`` measures throughput and p99 from outside, which on a shared two-core machine
are dominated by how long each process waits for a core at every round trip. This measures what
each request costs the web process itself (``time.process_time``: waits on the database and other
processes' use of the cores drop out), ours through the Flask app and the floor through
``bench/checkin_floor.py``'s WSGI callable, no HTTP server, same database, same requests, blocks
alternating so drift hits both alike. Database CPU is not included (see checkin.py for it)::

    .venv/bin/python bench/checkin_cpu.py [--requests 500] [--rounds 4] [--only shifts,locate] [--places 10]

Recreates ``BENCH_DATABASE_URL`` (default ``…/test_bench_profile``; same name rule as checkin.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from checkin_requests import check_in_request  # noqa: E402  (bench/ is the script directory)

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_profile"
ENDPOINTS = ("bare", "checkin", "me", "shifts", "locate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per block")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--only", default="", help=f"comma-separated endpoints of {','.join(ENDPOINTS)}")
    parser.add_argument("--places", type=int, default=1, help="upcoming places of the reading volunteer (/me/shifts)")
    args = parser.parse_args()
    endpoints = tuple(e for e in ENDPOINTS if not args.only or e in args.only.split(","))
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-checkin-cpu-"))
    os.environ.update(DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), ACCESS_TOKEN_MINUTES="120")
    os.environ.pop("REDIS_URL", None)

    from checkin_seed import seed  # after the environment: create_app reads it
    from seed import recreate_database
    from werkzeug.test import Client

    from app import create_app

    recreate_database(url)
    # Every check-in a distinct assignment: warm-up and both sides' blocks, every round.
    items = iter(seed(2 * args.requests * (args.rounds + 1) + 10)["work"])
    reader = next(items)
    import checkin_floor  # reads INSTANCE_PATH's JWT key, written by the seed

    app = create_app()
    add_places(app, reader["assignment_id"], args.places - 1)
    clients = {"ours": app.test_client(), "floor": Client(checkin_floor.application)}
    reads = {
        "bare": "/healthz", "me": "/api/v1/me", "shifts": "/api/v1/me/shifts",
        "locate": f"/api/v1/areas/locate?lat={reader['lat']}&lon={reader['lon']}",
    }
    auth = {"Authorization": f"Bearer {reader['token']}"}

    def request(side: str, endpoint: str) -> Callable[[], None]:
        client = clients[side]

        def one() -> None:
            if endpoint == "checkin":
                path, headers, body, _ = check_in_request(next(items), True)
                response: Any = client.post(path, data=body, headers=headers)
            else:
                response = client.get(reads[endpoint], headers=auth)
            if response.status_code != 200:
                raise SystemExit(f"{side} {endpoint}: {response.status_code} {response.get_data(as_text=True)[:300]}")

        return one

    cpu: dict[tuple[str, str], list[float]] = {}
    for round_no in range(args.rounds + 1):  # round 0 warms every cache up
        for endpoint in endpoints:
            sides = ("ours", "floor") if round_no % 2 else ("floor", "ours")
            if endpoint == "bare":
                sides = ("ours",)  # the floor has no framework: its /healthz is not a yardstick
            for side in sides:
                one = request(side, endpoint)
                began = time.process_time()
                for _ in range(args.requests):
                    one()
                spent = (time.process_time() - began) / args.requests * 1000
                if round_no:
                    cpu.setdefault((side, endpoint), []).append(spent)
        print(f"# round {round_no} done", file=sys.stderr)

    print("| endpoint | ours CPU ms/req | floor CPU ms/req | ours ÷ floor |")
    print("|---|---:|---:|---:|")
    for endpoint in endpoints:
        ours = statistics.median(cpu[("ours", endpoint)])
        floor = statistics.median(cpu[("floor", endpoint)]) if ("floor", endpoint) in cpu else None
        ratio = f"{ours / floor:.2f}×" if floor else ""
        print(f"| {endpoint} | {ours:.3f} | {'' if floor is None else f'{floor:.3f}'} | {ratio} |")
    print(f"(median of {args.rounds} blocks of {args.requests} requests each; in-process, Flask test client "
          f"for ours, werkzeug's for the floor; web process only; the reader has {args.places} upcoming places)")


def add_places(app: Any, assignment_id: int, count: int) -> None:
    """``count`` more upcoming places for the volunteer of ``assignment_id``: shifts like its own, a
    day apart, each with that one place (so ``/me/shifts`` answers ``count + 1`` items)."""
    import sqlalchemy as sa

    from core.extensions import db
    from shifts.models import Assignment, Shift

    with app.app_context():
        place = db.session.get(Assignment, assignment_id)
        shift = db.session.get(Shift, place.shift_id)
        for n in range(1, count + 1):
            start = shift.starts_at + timedelta(days=n)
            shift_id = db.session.execute(
                sa.insert(Shift).values(
                    grid_id=shift.grid_id, timezone=shift.timezone, starts_at=start, ends_at=start + timedelta(hours=2),
                    title=shift.title, min_headcount=1, max_headcount=10, backup_slots=0, required_kinds=[],
                    status="scheduled", primary_count=1, backup_count=0, queue_seq=1, detached=False,
                ).returning(Shift.id)
            ).scalar_one()
            db.session.execute(sa.insert(Assignment).values(
                shift_id=shift_id, volunteer_id=place.volunteer_id, status="assigned", role="primary",
                source="organiser", queue_seq=1, late_withdrawal=False,
            ))
        db.session.commit()


if __name__ == "__main__":
    main()
