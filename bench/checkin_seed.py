"""Seed the check-in benchmark: a small area tree, N volunteers each with one open place, their tokens.

Used by ``bench/checkin.py`` (which sets DATABASE_URL and INSTANCE_PATH first, so the tokens are
signed with the server's key). Every check-in of the benchmark is the first check-in of its own
assignment, so the seed makes as many assignments as the run may use.

- city → district → sub-district → community → 25 grids: the first 5 × 5 cells of
  ``bench/lattice.py``'s jittered lattice (8–12 vertices each, neighbours sharing their edges);
- N users (role volunteer) with one shared dummy password hash (nobody logs in: argon2 per user
  would take minutes), N active volunteers of kind ``volunteer_police``, homed round-robin on the grids;
- N / PLACES_PER_SHIFT shifts starting in 10 minutes (check-in is open: it opens 30 minutes before
  the start), two hours long, PLACES_PER_SHIFT assigned primary places each, counters consistent;
- one ``auth_sessions`` row and one access token (2 h) per volunteer, minted as
  ``tests/factories.token_for`` does.

Rows go in with Core ``executemany`` and ids chosen here; the id sequences are moved past them.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from bulk import add_area  # bench/ is on sys.path
from lattice import CELL_LAT, CELL_LON, ORIGIN_LAT, ORIGIN_LON, lattice_polygons

GRID_SIDE = 5
PLACES_PER_SHIFT = 10
STARTS_IN = timedelta(minutes=10)
SHIFT_LENGTH = timedelta(hours=2)
CHUNK = 5000


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        connection.execute(sa.insert(table), rows[start : start + CHUNK])
    connection.execute(
        sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT max(id) FROM {table.name}))")
    )


def _areas(now: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Area rows (parents first) and the grid rows, with their lattice cell."""
    from core.geo import bounds, validate_boundary

    polygons = lattice_polygons()
    rows: list[dict[str, Any]] = []

    def add(level: str, parent: dict[str, Any] | None, code: str, name: str, **extra: Any) -> dict[str, Any]:
        return add_area(rows, now, level, parent, code, name, **extra)

    city = add("city", None, "150200", "包头市")
    district = add("district", city, "150202", "东河区")
    sub = add("subdistrict", district, "150202001", "和平路街道")
    community = add("community", sub, "150202001001", "和平路第1社区")
    grids = []
    for g in range(GRID_SIDE * GRID_SIDE):
        c, r = g % GRID_SIDE, g // GRID_SIDE
        boundary = validate_boundary(polygons[c, r], max_vertices=2000)
        min_lon, min_lat, max_lon, max_lat = bounds(boundary)
        grid = add(
            "grid", community, f"{community['code']}{g + 1:03d}", f"和平路第1社区第{g + 1}网格",
            grid_kind="urban", households=350, boundary=boundary,
            min_lon=min_lon, min_lat=min_lat, max_lon=max_lon, max_lat=max_lat,
        )
        grids.append({**grid, "cell": (c, r)})
    return rows, grids


def inside_point(cell: tuple[int, int], rng: random.Random) -> tuple[float, float]:
    """A point well inside the cell's polygon: corners move ≤ 0.12 cell and edges bulge ≤ 0.08."""
    c, r = cell
    return (
        round(ORIGIN_LON + (c + rng.uniform(0.3, 0.7)) * CELL_LON, 6),
        round(ORIGIN_LAT + (r + rng.uniform(0.3, 0.7)) * CELL_LAT, 6),
    )


def _history(connection: sa.Connection, now: Any, shifts: list[dict[str, Any]], count: int) -> None:
    """Yesterday's shifts, served: one patrol and one idempotency record per volunteer.

    Tables the check-in reads by index must not start empty: statistics of an empty table make
    PostgreSQL plan sequential scans, which then slow down as the run fills the table.
    """
    from core.idempotency import IdempotencyRecord
    from patrols.models import Patrol
    from shifts.models import Assignment, Shift

    day = timedelta(days=1)
    past_shifts = [
        {**shift, "id": shift["id"] + len(shifts), "starts_at": shift["starts_at"] - day,
         "ends_at": shift["ends_at"] - day}
        for shift in shifts
    ]
    assignments, patrols, records = [], [], []
    for i in range(1, count + 1):
        shift = past_shifts[(i - 1) // PLACES_PER_SHIFT]
        assignments.append({
            "id": count + i, "shift_id": shift["id"], "volunteer_id": i, "status": "assigned", "role": "primary",
            "source": "organiser", "queue_seq": (i - 1) % PLACES_PER_SHIFT + 1, "late_withdrawal": False,
            "created_at": now - day, "updated_at": now - day,
        })
        patrols.append({
            "assignment_id": count + i, "volunteer_id": i, "shift_id": shift["id"],
            "check_in_client_id": str(uuid.uuid4()), "check_in_device_at": shift["starts_at"],
            "check_in_received_at": shift["starts_at"], "check_in_lat": 40.65, "check_in_lon": 109.84,
            "check_in_accuracy_m": 8.0, "check_in_flags": [], "presence_status": "verified", "late_minutes": 0,
            "check_out_client_id": str(uuid.uuid4()), "check_out_device_at": shift["ends_at"],
            "check_out_received_at": shift["ends_at"], "check_out_lat": 40.65, "check_out_lon": 109.84,
            "check_out_accuracy_m": 8.0, "check_out_flags": [], "auto_closed": False,
            "served_minutes": int(SHIFT_LENGTH.total_seconds() // 60), "distance_m": 0.0, "track_point_count": 0,
            "created_at": shift["starts_at"], "updated_at": shift["ends_at"],
        })
        records.append({
            "user_id": i, "key": str(uuid.uuid4()), "method": "POST",
            "path": f"/api/v1/assignments/{count + i}/check-in", "request_hash": "0" * 64, "status_code": 200,
            "response_body": "{}", "content_type": "application/json", "created_at": shift["starts_at"],
        })
    _insert(connection, Shift.__table__, past_shifts)
    _insert(connection, Assignment.__table__, assignments)
    _insert(connection, Patrol.__table__, patrols)
    _insert(connection, IdempotencyRecord.__table__, records)


def volunteer_rows(
    count: int, grids: list[dict[str, Any]], now: Any, *, kind_id: int, consent: str, phone_prefix: str, tag: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Users 1..count and their active volunteers, homed round-robin on ``grids``, with one shared
    password hash (nobody logs in: tokens are minted) and ID number cipher; ``tag`` keeps the ID hashes
    of two seeds apart."""
    from accounts.passwords import hash_password
    from core import crypto

    shared_hash = hash_password(uuid.uuid4().hex)  # one argon2 for all
    shared_id_cipher = crypto.encrypt("150202199001010011")
    users, volunteers = [], []
    for i in range(1, count + 1):
        grid = grids[i % len(grids)]
        users.append({
            "id": i, "phone": f"{phone_prefix}{i:08d}", "password_hash": shared_hash, "role": "volunteer",
            "display_name": f"巡逻志愿者{i}", "area_id": grid["id"], "locale": "zh", "is_active": True,
            "created_at": now, "updated_at": now, "password_changed_at": now,
        })
        volunteers.append({
            "id": i, "user_id": i, "kind_id": kind_id, "home_grid_id": grid["id"], "status": "active",
            "real_name": f"志愿者{i}", "national_id_encrypted": shared_id_cipher,
            "national_id_hash": hashlib.sha256(f"{tag}-{i}".encode()).hexdigest(),
            "consent_version": consent, "consented_at": now, "created_at": now, "updated_at": now,
        })
    return users, volunteers


def seed(count: int) -> dict[str, Any]:
    """Write everything into DATABASE_URL's (migrated, empty) database; returns the driver's work list."""
    from bulk import commit_and_analyse
    from flask_jwt_extended import create_access_token
    from seed import seeding

    from accounts.models import AuthSession, User
    from core.db import utcnow
    from core.extensions import db
    from grids.models import Area
    from shifts.models import Assignment, Shift
    from volunteers.models import Volunteer, VolunteerKind

    with seeding() as run:
        timings, schema_from = run.timings, run.schema_from
        mark = time.perf_counter()
        now = utcnow()
        connection = db.session.connection()
        area_rows, grids = _areas(now)
        _insert(connection, Area.__table__, area_rows)

        kind_id = db.session.scalar(sa.select(VolunteerKind.id).where(VolunteerKind.code == "volunteer_police"))
        if kind_id is None:
            kind_id = connection.execute(
                sa.insert(VolunteerKind.__table__).values(
                    code="volunteer_police", name_zh="平安志愿者", name_en="Volunteer police", builtin=True,
                    created_at=now,
                ).returning(VolunteerKind.__table__.c.id)
            ).scalar_one()

        users, volunteers = volunteer_rows(
            count, grids, now, kind_id=kind_id, consent=run.app.config["PRIVACY_TERMS_VERSION"],
            phone_prefix="+86137", tag="bench-checkin",
        )
        sessions = [
            {"id": str(uuid.uuid4()), "user_id": i, "created_at": now, "expires_at": now + timedelta(days=1)}
            for i in range(1, count + 1)
        ]
        _insert(connection, User.__table__, users)
        _insert(connection, Volunteer.__table__, volunteers)
        for start in range(0, len(sessions), CHUNK):
            connection.execute(sa.insert(AuthSession.__table__), sessions[start : start + CHUNK])

        starts_at = (now + STARTS_IN).replace(second=0, microsecond=0)
        shift_count = -(-count // PLACES_PER_SHIFT)
        shifts, assignments = [], []
        for s in range(1, shift_count + 1):
            places = min(PLACES_PER_SHIFT, count - (s - 1) * PLACES_PER_SHIFT)
            shifts.append({
                "id": s, "grid_id": grids[s % len(grids)]["id"], "series_id": None, "timezone": "Asia/Shanghai",
                "starts_at": starts_at, "ends_at": starts_at + SHIFT_LENGTH, "title": "夜间巡逻",
                "min_headcount": 1, "max_headcount": PLACES_PER_SHIFT, "backup_slots": 0, "required_kinds": [],
                "status": "scheduled", "primary_count": places, "backup_count": 0, "queue_seq": places,
                "detached": False, "created_at": now, "updated_at": now,
            })
        work = []
        rng = random.Random(2026)
        paths = {row["id"]: row["path"] for row in area_rows}
        for i in range(1, count + 1):
            shift_index = (i - 1) // PLACES_PER_SHIFT
            assignments.append({
                "id": i, "shift_id": shift_index + 1, "volunteer_id": i, "status": "assigned", "role": "primary",
                "source": "organiser", "queue_seq": (i - 1) % PLACES_PER_SHIFT + 1, "late_withdrawal": False,
                "created_at": now, "updated_at": now,
            })
            grid = grids[(shift_index + 1) % len(grids)]
            token = create_access_token(
                identity=str(i),
                additional_claims={"role": "volunteer", "area_path": paths[users[i - 1]["area_id"]],
                                   "sid": sessions[i - 1]["id"]},
                expires_delta=timedelta(hours=2),
            )
            lon, lat = inside_point(grid["cell"], rng)
            work.append({"assignment_id": i, "token": token, "lon": lon, "lat": lat})
        _insert(connection, Shift.__table__, shifts)
        _insert(connection, Assignment.__table__, assignments)
        _history(connection, now, shifts, count)
        db.session.flush()
        timings["insert_s"] = time.perf_counter() - mark
        commit_and_analyse()
    return {
        "schema_from": schema_from,
        "volunteers": count,
        "shifts": shift_count,
        "grids": len(grids),
        "starts_at": starts_at.isoformat(),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "work": work,
    }
