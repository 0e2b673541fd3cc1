"""Write a synthetic auto-fill problem (``bench/autofill_data.py``) into a PostgreSQL database, so
the endpoint plans the very problem the solver benchmark measures.

City → one district → the shape's sub-districts → communities → grids (no boundaries: auto-fill
does not need them); one staff account at the district; one user and volunteer per generated
volunteer, with their weekly availability; the generated shifts (``max_headcount`` = open places);
and every shift a volunteer already holds as a full one-place shift with their assignment. Rows go in
with Core ``executemany`` and ids chosen here; the id sequences are moved past them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import time
from typing import Any

import sqlalchemy as sa

from bench.autofill_data import Shape, grids_of, utc
from shifts.autofill.model import Problem

KIND_NAMES = {
    "volunteer_police": ("义警", "Volunteer police"),
    "alley_steward": ("小巷管家", "Alley steward"),
    "herder_sentinel": ("牧民哨兵", "Herder sentinel"),
}


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def seed_problem(shape: Shape, problem: Problem) -> dict[str, int]:
    """Insert ``problem`` (generated from ``shape``); returns the ids the benchmark needs."""
    from accounts.models import User
    from core.db import utcnow
    from core.extensions import db
    from grids.models import Area
    from shifts.models import Assignment, Shift
    from volunteers.models import AvailabilitySlot, Volunteer, VolunteerKind

    now = utcnow()
    connection = db.session.connection()
    areas: list[dict[str, Any]] = []
    area_ids: dict[int, int] = {}  # the generator's area keys -> database ids

    def area(level: str, parent: dict[str, Any] | None, key: int) -> dict[str, Any]:
        row = {
            "id": len(areas) + 1, "parent_id": parent["id"] if parent else None, "level": level,
            "code": f"AF{len(areas) + 1:07d}", "name": f"{level}-{key}", "timezone": "Asia/Shanghai",
            "depth": parent["depth"] + 1 if parent else 0, "created_at": now, "updated_at": now, "version": 1,
        }
        row["path"] = (parent["path"] if parent else "/") + f"{row['id']}/"
        areas.append(row)
        area_ids[key] = row["id"]
        return row

    city = area("city", None, -1)
    district = area("district", city, -2)
    rows_by_key: dict[int, dict[str, Any]] = {}
    for grid in grids_of(shape):
        if grid.subdistrict not in rows_by_key:
            rows_by_key[grid.subdistrict] = area("subdistrict", district, grid.subdistrict)
        if grid.community not in rows_by_key:
            rows_by_key[grid.community] = area("community", rows_by_key[grid.subdistrict], grid.community)
        area("grid", rows_by_key[grid.community], grid.id)
    for chunk in _chunks(areas):
        connection.execute(sa.insert(Area.__table__), chunk)

    kinds = dict(db.session.execute(sa.select(VolunteerKind.code, VolunteerKind.id)).tuples().all())
    for code, (zh, en) in KIND_NAMES.items():
        if code not in kinds:
            kinds[code] = db.session.execute(
                sa.insert(VolunteerKind).values(code=code, name_zh=zh, name_en=en, builtin=False, created_at=now)
                .returning(VolunteerKind.id)
            ).scalar_one()

    users = [{
        "id": 1, "phone": "+8613700000000", "password_hash": "!", "role": "staff", "display_name": "bench staff",
        "area_id": district["id"], "locale": "zh", "is_active": True, "created_at": now, "updated_at": now,
        "password_changed_at": now,
    }]
    volunteers, slots = [], []
    for volunteer in problem.volunteers:
        user_id = len(users) + 1
        users.append({
            "id": user_id, "phone": f"+86139{volunteer.id:08d}", "password_hash": "!", "role": "volunteer",
            "display_name": f"v{volunteer.id}", "area_id": area_ids[volunteer.grid], "locale": "zh",
            "is_active": True, "created_at": now, "updated_at": now, "password_changed_at": now,
        })
        volunteers.append({
            "id": volunteer.id, "user_id": user_id, "kind_id": kinds[volunteer.kind],
            "home_grid_id": area_ids[volunteer.grid], "status": "active", "real_name": f"志愿者{volunteer.id}",
            "national_id_encrypted": "-", "national_id_hash": f"bench-{volunteer.id}", "consent_version": "2026-01",
            "consented_at": now, "created_at": now, "updated_at": now,
        })
        slots += [
            {"volunteer_id": volunteer.id, "weekday": day, "start_time": _clock(start), "end_time": _clock(end)}
            for day, start, end in volunteer.availability
        ]
    shifts, assignments = [], []

    def shift(grid: int, starts: int, ends: int, places: int, taken: int, kinds_needed: list[dict[str, Any]]) -> int:
        shifts.append({
            "id": len(shifts) + 1, "grid_id": area_ids[grid], "detached": False, "status": "scheduled",
            "timezone": "Asia/Shanghai", "starts_at": utc(starts), "ends_at": utc(ends), "title": "巡逻",
            "min_headcount": 1, "max_headcount": places, "backup_slots": 0, "required_kinds": kinds_needed,
            "primary_count": taken, "backup_count": 0, "queue_seq": taken, "created_at": now, "updated_at": now,
        })
        return len(shifts)

    for item in problem.shifts:
        needs = [{"kind": kind, "minimum": count} for kind, count in item.needs]
        shift(item.grid, item.starts, item.ends, item.open_places, 0, needs)
    for volunteer in problem.volunteers:
        for starts, ends in volunteer.busy:
            held = shift(volunteer.grid, starts, ends, 1, 1, [])
            assignments.append({
                "shift_id": held, "volunteer_id": volunteer.id, "status": "assigned", "role": "primary",
                "source": "organiser", "queue_seq": 1, "late_withdrawal": False, "created_at": now, "updated_at": now,
            })
    for table, rows in (
        (User.__table__, users), (Volunteer.__table__, volunteers), (AvailabilitySlot.__table__, slots),
        (Shift.__table__, shifts), (Assignment.__table__, assignments),
    ):
        for chunk in _chunks(rows):
            connection.execute(sa.insert(table), chunk)
    for table in ("areas", "users", "volunteers", "availability_slots", "shifts", "shift_assignments", "volunteer_kinds"):
        connection.execute(sa.text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 1))"
        ))
    return {"district": district["id"], "staff_user": 1}


def _clock(minutes: int) -> time:
    return time(23, 59) if minutes >= 24 * 60 - 1 else time(minutes // 60, minutes % 60)
