"""Tonight on any seeded database: shifts, assignments, devices, consents and tokens for the load run.

Usage (with DATABASE_URL and INSTANCE_PATH set as the servers have them, so tokens verify)::

    python bench/shift_change/prepare.py seed --seed small --volunteers 2000   # migrate + small seed
    python bench/shift_change/prepare.py plan --volunteers 2000 --starts-in 90 --out work.json

``plan`` needs only areas with grid polygons, active volunteers homed on grids, and (for the
coverage views) organisers or staff; it works on ``--seed small`` (``seed_small.py``) and on the
seeded 包头 of ``bench/city_seed.py`` alike. For the first N active volunteers (by id) it:

1. registers one FCM device for each volunteer's user that has none (rows as ``POST /me/devices``
   writes them) and records consent to location tracking for each who has none in force;
2. plans tonight's shifts through the API as the app does (``POST /api/v1/shifts`` in each
   volunteer's home grid, up to PLACES volunteers each) and assigns the volunteers
   (``POST /api/v1/shifts/{id}/assign``), so the assignment pushes go into the outbox; an admin of
   each city makes these calls. The shifts are planned three hours ahead (assigning takes minutes
   at 10,000 volunteers, and a shift cannot be planned in the past), then moved, in one UPDATE once
   all are placed, to start ``--starts-in`` seconds after this step ends: as if planned that way
   earlier. So their one-hour reminders fall due during the load, as at a real shift change;
3. mints an access token per volunteer and per organiser (a login session each, as
   ``bench/seed.py``'s ``mint_token``), valid for ``--token-hours``;
4. writes the work list: per volunteer the assignment, token and a point inside the home grid (the
   polygon's representative point); per organiser the token and area.

Requests go through Flask's test client (the same stack as gunicorn, no sockets), in ``--jobs`` processes.
A volunteer the app refuses (e.g. 409 shift_overlap with a shift of their own) is left out and counted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent), str(HERE)]

import sqlalchemy as sa  # noqa: E402

PLACES = 20  # volunteers per shift (SHIFT_MAX_HEADCOUNT is 100)
SHIFT_HOURS = 3
CHUNK = 5000


def device_token(user_id: int) -> str:
    """An FCM-length registration token (163 characters), the same for a user in every run."""
    head = f"load-{user_id}-"
    return head + (hashlib.sha256(head.encode()).hexdigest() * 3)[: 163 - len(head)]


def _devices_and_consents(volunteers: list[sa.Row[Any]], terms: str) -> dict[str, int]:
    from core.db import utcnow
    from core.extensions import db
    from notifications.devices.models import Device
    from patrols.privacy.models import LocationConsent

    now = utcnow()
    user_ids = [row.user_id for row in volunteers]
    have_device = set(db.session.scalars(
        sa.select(Device.user_id).where(Device.user_id.in_(user_ids), Device.active.is_(True))
    ))
    have_consent = set(db.session.scalars(
        sa.select(LocationConsent.volunteer_id).where(
            LocationConsent.volunteer_id.in_([row.volunteer_id for row in volunteers]),
            LocationConsent.withdrawn_at.is_(None),
        )
    ))
    devices = [
        {"user_id": row.user_id, "token": device_token(row.user_id),
         "token_hash": hashlib.sha256(device_token(row.user_id).encode()).hexdigest(), "platform": "android",
         "channel": "fcm", "app_version": "1.4.0", "locale": "zh", "active": True,
         "registered_at": now - timedelta(days=30), "refreshed_at": now - timedelta(days=1)}
        for row in volunteers if row.user_id not in have_device
    ]
    consents = [
        {"volunteer_id": row.volunteer_id, "version": terms, "granted_at": now - timedelta(days=30)}
        for row in volunteers if row.volunteer_id not in have_consent
    ]
    for table, rows in ((Device.__table__, devices), (LocationConsent.__table__, consents)):
        for start in range(0, len(rows), CHUNK):
            db.session.execute(sa.insert(table), rows[start : start + CHUNK])
    db.session.commit()
    return {"devices_added": len(devices), "consents_added": len(consents)}


def _mint(rows: list[tuple[int, str, str]], hours: float) -> list[str]:
    """An access token per (user id, role, area path), each in a login session of its own."""
    from flask_jwt_extended import create_access_token

    from accounts.models import AuthSession
    from core.db import utcnow
    from core.extensions import db

    now = utcnow()
    sessions = [{"id": str(uuid.uuid4()), "user_id": user_id, "created_at": now,
                 "expires_at": now + timedelta(hours=hours)} for user_id, _, _ in rows]
    for start in range(0, len(sessions), CHUNK):
        db.session.execute(sa.insert(AuthSession.__table__), sessions[start : start + CHUNK])
    db.session.commit()
    return [
        create_access_token(identity=str(user_id), additional_claims={"role": role, "area_path": path,
                                                                      "sid": session["id"]},
                            expires_delta=timedelta(hours=hours))
        for (user_id, role, path), session in zip(rows, sessions, strict=True)
    ]


def _admins(root_paths: set[str], hours: float) -> dict[str, str]:
    """An admin user over each city (first segment of the grids' paths), and their token."""
    from accounts.models import User
    from core.db import utcnow
    from core.extensions import db

    now = utcnow()
    tokens = {}
    for path in sorted(root_paths):
        city_id = int(path.strip("/").split("/")[0])
        user = User(phone=f"+86133{uuid.uuid4().int % 10**8:08d}", password_hash="!", role="admin",
                    display_name="负载测试管理员", area_id=city_id, locale="zh", is_active=True,
                    created_at=now, updated_at=now, password_changed_at=now)
        db.session.add(user)
        db.session.flush()
        tokens[path] = _mint([(user.id, "admin", path)], hours)[0]
    return tokens


def _place(grids: list[tuple[int, str, list[int]]], planned_at: str) -> dict[str, Any]:
    """In a process of its own: plan each grid's shifts (PLACES places each) and assign its volunteers."""
    from app import create_app

    app = create_app()
    client = app.test_client()
    starts = datetime.fromisoformat(planned_at)
    ends = starts + timedelta(hours=SHIFT_HOURS)
    shift_ids: list[int] = []
    assignments: dict[int, int] = {}  # volunteer id → assignment id
    refused: dict[str, int] = defaultdict(int)
    for grid_id, token, members in grids:
        headers = {"Authorization": f"Bearer {token}"}
        for start in range(0, len(members), PLACES):
            group = members[start : start + PLACES]
            answer = client.post("/api/v1/shifts", headers=headers, json={
                "grid_id": grid_id, "title": "晚间交接班巡逻", "starts_at": starts.isoformat(),
                "ends_at": ends.isoformat(), "min_headcount": 1, "max_headcount": len(group),
            })
            if answer.status_code != 201:
                raise SystemExit(f"POST /shifts: {answer.status_code} {answer.get_data(as_text=True)[:300]}")
            shift_id = answer.get_json()["id"]
            shift_ids.append(shift_id)
            for volunteer_id in group:
                placed = client.post(f"/api/v1/shifts/{shift_id}/assign", headers=headers,
                                     json={"volunteer_id": volunteer_id, "role": "primary"})
                if placed.status_code == 201:
                    assignments[volunteer_id] = placed.get_json()["id"]
                else:
                    refused[f"{placed.status_code} {(placed.get_json() or {}).get('code')}"] += 1
    return {"shift_ids": shift_ids, "assignments": assignments, "refused": dict(refused)}


def plan(count: int, starts_in: float, token_hours: float, organisers: int, jobs: int = 2) -> dict[str, Any]:
    from shapely.geometry import shape

    from accounts.models import User
    from app import create_app
    from core.db import utcnow
    from core.extensions import db
    from grids.models import Area
    from shifts.models import LIVE_STATUSES, Assignment, Shift
    from volunteers.models import Volunteer

    timings: dict[str, float] = {}
    mark = time.perf_counter()
    app = create_app()
    with app.app_context():
        # On a seed with a schedule of its own (the city's: every grid a shift a day), leave out
        # whoever already holds a place around tonight: the app would refuse them (shift_overlap).
        busy = (
            sa.select(Assignment.id)
            .join(Shift, Shift.id == Assignment.shift_id)
            .where(Assignment.volunteer_id == Volunteer.id, Assignment.status.in_(LIVE_STATUSES),
                   Shift.ends_at > utcnow() - timedelta(hours=12), Shift.starts_at < utcnow() + timedelta(hours=18))
        )
        volunteers = db.session.execute(
            sa.select(Volunteer.id.label("volunteer_id"), Volunteer.user_id, Volunteer.home_grid_id,
                      Area.path.label("grid_path"), Area.boundary)
            .join(Area, Area.id == Volunteer.home_grid_id)
            .where(Volunteer.status == "active", Area.boundary.is_not(None), ~sa.exists(busy))
            .order_by(Volunteer.id).limit(count)
        ).all()
        if len(volunteers) < count:
            raise SystemExit(f"the seed has {len(volunteers)} active volunteers homed on grids, not {count}")
        user_paths = dict(db.session.execute(
            sa.select(User.id, Area.path).join(Area, Area.id == User.area_id)
            .where(User.id.in_([row.user_id for row in volunteers]))
        ).tuples().all())
        added = _devices_and_consents(volunteers, app.config["LOCATION_TERMS_VERSION"])
        timings["devices_consents_s"] = time.perf_counter() - mark

        mark = time.perf_counter()
        roots = {"/" + row.grid_path.strip("/").split("/")[0] + "/" for row in volunteers}
        admin_tokens = _admins(roots, token_hours)
        by_grid: dict[int, list[sa.Row[Any]]] = defaultdict(list)
        for row in volunteers:
            by_grid[row.home_grid_id].append(row)
        planned_at = (utcnow() + timedelta(hours=3)).replace(second=0, microsecond=0)
        # Grids dealt to --jobs processes (each its own app and test client): the assignments are
        # CPU-bound Python, and the servers are idle while this runs.
        grid_work = [
            (grid_id, admin_tokens["/" + members[0].grid_path.split("/")[1] + "/"],
             [row.volunteer_id for row in members])
            for grid_id, members in by_grid.items()
        ]
        parts = [grid_work[i::jobs] for i in range(jobs)]
        db.session.remove()
        db.engine.dispose()  # no pooled connection crosses into the children
        if jobs == 1:
            placed_parts = [_place(parts[0], planned_at.isoformat())]
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(jobs) as pool:
                placed_parts = pool.starmap(_place, [(part, planned_at.isoformat()) for part in parts])
        shift_ids = [i for part in placed_parts for i in part["shift_ids"]]
        assignments = {int(v): a for part in placed_parts for v, a in part["assignments"].items()}
        refused: dict[str, int] = defaultdict(int)
        for part in placed_parts:
            for reason, n in part["refused"].items():
                refused[reason] += n
        shifts = len(shift_ids)
        timings["shifts_assignments_s"] = time.perf_counter() - mark
        starts_at = utcnow() + timedelta(seconds=starts_in + 59)
        starts_at = starts_at.replace(second=0, microsecond=0)
        ends_at = starts_at + timedelta(hours=SHIFT_HOURS)
        db.session.execute(
            sa.update(Shift).where(Shift.id.in_(shift_ids)).values(starts_at=starts_at, ends_at=ends_at)
        )
        db.session.commit()

        mark = time.perf_counter()
        placed_rows = [row for row in volunteers if row.volunteer_id in assignments]
        tokens = _mint([(row.user_id, "volunteer", user_paths[row.user_id]) for row in placed_rows], token_hours)
        points: dict[int, tuple[float, float]] = {}
        work = []
        for row, token in zip(placed_rows, tokens, strict=True):
            if row.home_grid_id not in points:
                point = shape(row.boundary).representative_point()
                points[row.home_grid_id] = (round(point.y, 6), round(point.x, 6))
            lat, lon = points[row.home_grid_id]
            work.append({"volunteer_id": row.volunteer_id, "user_id": row.user_id,
                         "assignment_id": assignments[row.volunteer_id], "token": token, "lat": lat, "lon": lon})
        managers = db.session.execute(
            sa.select(User.id, User.role, User.area_id, Area.path).join(Area, Area.id == User.area_id)
            .where(User.role.in_(("organiser", "staff")), User.is_active.is_(True))
            .order_by(User.id).limit(organisers)
        ).all()
        manager_tokens = _mint([(m.id, m.role, m.path) for m in managers], token_hours)
        timings["tokens_s"] = time.perf_counter() - mark
    return {
        "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(), "shifts": shifts,
        "assigned": len(work), "refused": dict(refused), **added,
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "volunteers": work,
        "organisers": [{"user_id": m.id, "role": m.role, "area_id": m.area_id, "token": token}
                       for m, token in zip(managers, manager_tokens, strict=True)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    seeding = sub.add_parser("seed", help="migrate DATABASE_URL's empty database and seed it")
    seeding.add_argument("--seed", choices=("small", "city"), default="small")
    seeding.add_argument("--volunteers", type=int, required=True)
    planning = sub.add_parser("plan", help="tonight's shifts, assignments and tokens; writes --out")
    planning.add_argument("--volunteers", type=int, required=True)
    planning.add_argument("--starts-in", type=float, default=90,
                          help="seconds after this step ends that the shifts start (rounded up to the minute)")
    planning.add_argument("--token-hours", type=float, default=4)
    planning.add_argument("--organisers", type=int, default=20)
    planning.add_argument("--out", type=Path, required=True)
    planning.add_argument("--jobs", type=int, default=2, help="processes placing the volunteers")
    args = parser.parse_args()
    if args.step == "seed":
        if args.seed == "small":
            from seed_small import seed
            print(json.dumps(seed(args.volunteers), ensure_ascii=False))
        else:
            # bench/city_seed.py (issue19-city) seeds 包头 with 45,000 volunteers and runs the migrations
            # itself, with this INSTANCE_PATH (national ids are encrypted with its key).
            import os
            import subprocess
            if not (HERE.parent / "city_seed.py").exists():
                raise SystemExit("--seed city needs bench/city_seed.py, which is not in this checkout yet")
            return subprocess.call([sys.executable, "-m", "bench.city_seed", "--url", os.environ["DATABASE_URL"]],
                                   cwd=HERE.parents[1])
        return 0
    result = plan(args.volunteers, args.starts_in, args.token_hours, args.organisers, max(1, args.jobs))
    args.out.write_text(json.dumps(result, ensure_ascii=False))
    summary = {k: v for k, v in result.items() if k not in ("volunteers", "organisers")}
    print(json.dumps({**summary, "organisers": len(result["organisers"])}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
