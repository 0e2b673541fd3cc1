"""Seed a benchmark database: a city of 10,000 grids and one organiser who can log in.

Usage (from the repository root)::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test_bench INSTANCE_PATH=/tmp/x \\
        .venv/bin/python bench/seed.py --recreate --out /tmp/x/bench_seed.json

The database must be empty; ``--recreate`` drops and creates it first (``bench/run.sh`` does this).
The schema comes from the Alembic migrations when there are any, else from ``db.create_all()``.
The grids are the 100 × 100 cells of ``bench/lattice.py``.

Rows go in with SQLAlchemy Core ``executemany`` and ids chosen here, so every materialised path is
known before the insert; the id sequence is moved past them afterwards.

The output JSON holds what the driver needs and nothing secret beyond the bench login: the lattice
extent, a few probe points with the grid code each must resolve to, the organiser's phone and
password, and a fallback access token minted the way login does (used only when there is no login
endpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
from lattice import CELL_LAT, CELL_LON, COLUMNS, ORIGIN_LAT, ORIGIN_LON, ROWS, SEED, lattice_polygons  # noqa: E402

#: city → 4 districts (50 × 50 cells) → 5 sub-districts each (50 × 10) → 20 communities each (5 × 5)
#: → 25 grids each: 4 + 20 + 400 communities + 10,000 grids.
COMMUNITY_SIDE = 5
CITY_CODE = "150200"
DISTRICTS = [("150202", "东河区"), ("150203", "昆都仑区"), ("150204", "青山区"), ("150205", "石拐区")]
SUBDISTRICT_NAMES = ["和平路街道", "西脑包街道", "少先路街道", "富强路街道", "友谊大街街道"]

BENCH_PHONE = "+8613800138000"
BENCH_PASSWORD = "Bench-Patrol-2026"


def build_rows(now: Any) -> tuple[list[dict[str, Any]], dict[str, int], dict[tuple[int, int], str]]:
    """Every area row, with ids and materialised paths fixed here.

    Returns the rows, the ids the seed needs later, and each lattice cell's grid code.
    """
    from core.geo import bounds, validate_boundary

    rows: list[dict[str, Any]] = []
    next_id = iter(range(1, 10**7))

    def add(level: str, parent: dict[str, Any] | None, code: str, name: str, **grid: Any) -> dict[str, Any]:
        area_id = next(next_id)
        row = {
            "id": area_id,
            "parent_id": parent["id"] if parent else None,
            "level": level,
            "code": code,
            "name": name,
            "timezone": "Asia/Shanghai",
            "path": (parent["path"] if parent else "/") + f"{area_id}/",
            "depth": parent["depth"] + 1 if parent else 0,
            "grid_kind": None,
            "households": None,
            "boundary": None,
            "min_lon": None,
            "min_lat": None,
            "max_lon": None,
            "max_lat": None,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        row.update(grid)
        rows.append(row)
        return row

    rng = random.Random(SEED + 1)
    polygons = lattice_polygons()
    city = add("city", None, CITY_CODE, "包头市")
    half = COLUMNS // 2
    communities_per_row = half // COMMUNITY_SIDE  # 10 community blocks across a district
    first_community = None
    cell_codes: dict[tuple[int, int], str] = {}
    for d_index, (d_code, d_name) in enumerate(DISTRICTS):
        district = add("district", city, d_code, d_name)
        col0, row0 = (d_index % 2) * half, (d_index // 2) * half
        band_rows = half // len(SUBDISTRICT_NAMES)  # 10 lattice rows per sub-district
        for s_index, s_name in enumerate(SUBDISTRICT_NAMES):
            sub = add("subdistrict", district, f"{d_code}{s_index + 1:03d}", s_name)
            for k in range(communities_per_row * band_rows // COMMUNITY_SIDE):  # 20 communities
                bc, br = k % communities_per_row, k // communities_per_row
                community = add(
                    "community", sub, f"{sub['code']}{k + 1:03d}", f"{s_name[:-2]}第{k + 1}社区"
                )
                first_community = first_community or community
                for g in range(COMMUNITY_SIDE * COMMUNITY_SIDE):
                    c = col0 + bc * COMMUNITY_SIDE + g % COMMUNITY_SIDE
                    r = row0 + s_index * band_rows + br * COMMUNITY_SIDE + g // COMMUNITY_SIDE
                    boundary = validate_boundary(polygons[c, r], max_vertices=2000)
                    min_lon, min_lat, max_lon, max_lat = bounds(boundary)
                    cell_codes[c, r] = f"{community['code']}{g + 1:03d}"
                    add(
                        "grid", community, cell_codes[c, r], f"{community['name']}第{g + 1}网格",
                        grid_kind="urban", households=rng.randint(280, 420), boundary=boundary,
                        min_lon=min_lon, min_lat=min_lat, max_lon=max_lon, max_lat=max_lat,
                    )
    assert first_community is not None
    return rows, {"city": city["id"], "organiser_area": first_community["id"]}, cell_codes


def recreate_database(url: str) -> None:
    """Drop and create the database ``url`` names, through the server's ``postgres`` database.

    Only names that look disposable (``test_*`` or containing ``bench``) are dropped, unless
    BENCH_ALLOW_DROP=1: a mistyped BENCH_DATABASE_URL must not cost anyone their data.
    """
    from core.config import normalise_database_url

    target = sa.engine.make_url(normalise_database_url(url))
    name = target.database or ""
    if not (name.startswith("test_") or "bench" in name) and os.environ.get("BENCH_ALLOW_DROP") != "1":
        raise SystemExit(f"refusing to drop database {name!r}: name it test_* or *bench*, or set BENCH_ALLOW_DROP=1")
    engine = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            quoted = engine.dialect.identifier_preparer.quote(name)
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        engine.dispose()


def create_schema() -> str:
    from flask_migrate import upgrade

    from core.extensions import db

    versions = ROOT / "migrations" / "versions"
    if any(versions.glob("*.py")):
        upgrade(directory=str(ROOT / "migrations"))
        rollup_triggers(enabled=False)
        return "flask db upgrade"
    db.create_all()
    return "db.create_all()"


def rollup_triggers(enabled: bool) -> None:
    """Switch the report roll-ups' change triggers (reports/rollups/models.py) off for a bulk load,
    or back on after it. Off, a seed of millions of rows records no change for its commit to fold
    in one go; a seed whose benchmark reads the reports rebuilds the roll-ups afterwards
    (``reports.rollups.cli.rebuild``), as ``flask reports rollups rebuild`` does."""
    import sqlalchemy as sa

    from core.extensions import db

    if db.session.get_bind().dialect.name != "postgresql":
        return
    tables = db.session.scalars(
        sa.text("SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'report_rollup' ORDER BY 1")
    ).all()
    for table in tables:
        db.session.execute(sa.text(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER report_rollup"))
    db.session.commit()

@dataclass
class Seeding:
    """What every seed script starts from: the app, its schema and the clock."""

    app: Any
    schema_from: str
    started: float
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def seeding() -> Iterator[Seeding]:
    """Create the app on DATABASE_URL and its schema, timed; the app context is pushed inside."""
    from app import create_app

    started = time.perf_counter()
    app = create_app()
    with app.app_context():
        run = Seeding(app, create_schema(), started)
        run.timings["schema_s"] = time.perf_counter() - started
        yield run
        rollup_triggers(enabled=True)
    run.timings["total_s"] = time.perf_counter() - started





def mint_token(user_id: int, role: str, area_path: str) -> str:
    """An access token in a fresh login session, as tests/factories.token_for builds one."""
    from flask_jwt_extended import create_access_token

    from accounts.models import AuthSession
    from core.db import utcnow
    from core.extensions import db

    session = AuthSession(id=str(uuid.uuid4()), user_id=user_id, expires_at=utcnow() + timedelta(days=1))
    db.session.add(session)
    db.session.flush()
    return create_access_token(
        identity=str(user_id),
        additional_claims={"role": role, "area_path": area_path, "sid": session.id},
        expires_delta=timedelta(hours=2),
    )


def probe_points(cell_codes: dict[tuple[int, int], str], count: int = 40) -> list[dict[str, Any]]:
    """Cell centres with the grid each must resolve to (well clear of any jittered edge)."""
    rng = random.Random(SEED + 2)
    probes = []
    for _ in range(count):
        c, r = rng.randrange(COLUMNS), rng.randrange(ROWS)
        probes.append(
            {
                "lon": round(ORIGIN_LON + (c + 0.5) * CELL_LON, 6),
                "lat": round(ORIGIN_LAT + (r + 0.5) * CELL_LAT, 6),
                "code": cell_codes[c, r],
            }
        )
    return probes


def seed(out: Path) -> dict[str, Any]:
    from accounts.models import User
    from accounts.passwords import hash_password
    from core.db import utcnow
    from core.extensions import db
    from grids.models import Area

    with seeding() as run:
        timings, schema_from = run.timings, run.schema_from
        if db.session.scalar(sa.select(sa.func.count()).select_from(Area)):
            raise SystemExit("the database already has areas; recreate it first (bench/run.sh does)")

        mark = time.perf_counter()
        rows, ids, cell_codes = build_rows(utcnow())
        timings["build_s"] = time.perf_counter() - mark

        mark = time.perf_counter()
        connection = db.session.connection()
        # Parents before children: rows are generated depth-first, so each parent precedes its children.
        for start in range(0, len(rows), 2000):
            connection.execute(sa.insert(Area.__table__), rows[start : start + 2000])
        connection.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('areas', 'id'), (SELECT max(id) FROM areas))")
        )
        timings["insert_s"] = time.perf_counter() - mark

        organiser_area = db.session.get(Area, ids["organiser_area"])
        assert organiser_area is not None
        user = User(
            phone=BENCH_PHONE,
            password_hash=hash_password(BENCH_PASSWORD),
            role="organiser",
            display_name="基准测试组织者",
            area_id=organiser_area.id,
        )
        db.session.add(user)
        db.session.flush()
        user_id = user.id
        token = mint_token(user_id, user.role, organiser_area.path)
        db.session.commit()
        connection = db.session.connection()
        connection.execute(sa.text("ANALYZE"))
        db.session.commit()
        counts = dict(
            db.session.execute(sa.select(Area.level, sa.func.count()).group_by(Area.level)).all()
        )

    vertex_counts = [len(r["boundary"]["coordinates"][0]) - 1 for r in rows if r["boundary"]]
    info = {
        "schema_from": schema_from,
        "areas": counts,
        "grid_vertices": {"min": min(vertex_counts), "max": max(vertex_counts)},
        "extent": {
            "min_lon": ORIGIN_LON,
            "min_lat": ORIGIN_LAT,
            "max_lon": round(ORIGIN_LON + COLUMNS * CELL_LON, 6),
            "max_lat": round(ORIGIN_LAT + ROWS * CELL_LAT, 6),
        },
        "probes": probe_points(cell_codes),
        "user": {"id": user_id, "phone": BENCH_PHONE, "password": BENCH_PASSWORD, "role": "organiser"},
        "fallback_token": token,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle, ensure_ascii=False, indent=2)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the driver's seed info")
    parser.add_argument("--recreate", action="store_true", help="drop and create DATABASE_URL's database first")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgresql", "postgres://")):
        raise SystemExit("DATABASE_URL must point at a PostgreSQL database")
    if args.recreate:
        recreate_database(os.environ.get("DATABASE_URL", ""))
    info = seed(args.out)
    summary = {k: info[k] for k in ("schema_from", "areas", "grid_vertices", "timings")}
    print("seeded:", json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
