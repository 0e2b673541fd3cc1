"""Seed a city: 包头 at its real size, with a year of history ending now (issue 19).

Usage (from the repository root; PostgreSQL only)::

    .venv/bin/python -m bench.city_seed --url postgresql://postgres@127.0.0.1:5432/sw_city \\
        [--scale 1.0] [--recreate] [--days 365] [--ahead 7] [--shifts-per-day 1] [--track-days 3]

- the schema by the real migrations (``flask db upgrade``: track_points' monthly partitions,
  every trigger), then the rows by PostgreSQL itself (``INSERT … SELECT``, ``bench/city/history.py``);
- 包头's nine districts, their streets (街道/镇), communities and ~7,000 grids whose polygons tile
  each district (``bench/city/geometry.py``);
- 33,000 义警 and 12,000 小巷管家 with home grids and a phone each, an organiser per street and per
  community, staff per district and for the city; everyone logs in with the one bench password;
- every grid a shift a day (``--shifts-per-day`` up to 3) from ``--days`` ago to ``--ahead`` days
  on, two primaries and sometimes a backup; patrols with check-in and check-out, reviews, service
  records, points, patrol reports, "shift confirmed" and reminder notifications (delivered, most
  read); full GPS tracks (a fix each 30 s) for the patrols of the last ``--track-days`` (older
  patrols within the 90-day retention have no track, older still only its summary, as after the purge);
- the report roll-ups rebuilt by the app's own code, the leaderboard totals and per-grid figures
  in SQL by the app's rule; then checks (``bench/city/checks.py``) and VACUUM ANALYZE.

``--scale`` multiplies people and grids (a district's lattice shrinks by √scale a side). Writes a
manifest (``bench/results/city-<db>.json``, :func:`load_manifest`) for the benchmarks that run on
the city: areas, people by kind and home grid with a point inside it, organisers and staff, the
password, the window. The app that serves the city must use the same INSTANCE_PATH as the seed
(the manifest says which): national ids are encrypted with its key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.city import checks, history  # noqa: E402
from bench.city.geometry import DISTRICTS, city_areas, extents  # noqa: E402
from bench.city.steps import managers as make_managers  # noqa: E402
from bench.city.steps import notification_texts, rebuild_rollups, set_sequences  # noqa: E402
from bench.seed import BENCH_PASSWORD, recreate_database  # noqa: E402

ZONE = ZoneInfo("Asia/Shanghai")
RESULTS = ROOT / "bench" / "results"


def database_name(url: str) -> str:
    return sa.engine.make_url(url).database or "city"


def manifest_path(url: str) -> Path:
    return RESULTS / f"city-{database_name(url)}.json"


def load_manifest(url: str, path: Path | None = None) -> dict[str, Any]:
    """The manifest the seed of ``url``'s database wrote (``path`` if ``--manifest`` put it elsewhere).

    Keys: ``password`` (everyone's), ``instance_path`` (serve the city with it), ``window`` (from, to,
    ahead_days, track_days, slots_local), ``areas`` (city, districts, streets: id, level, code, name,
    path), ``districts`` (each one's rectangle), ``grid_count``, ``grids`` ({grid id: code, path,
    point [lon, lat] inside it}), ``volunteers`` (police and stewards counts; ``items``: id, kind,
    status, home_grid_id — the user id is the volunteer id, the phone +86137 and the id in 8
    digits), ``organisers`` and ``staff`` (id, phone, area_id, level, path, name), ``seed`` (timings,
    rows, sizes, checks).
    """
    return json.loads((path or manifest_path(url)).read_text())


class Phases:
    """Time per phase, and a progress bar over each phase's steps."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def phase(self, name: str, steps: int = 1) -> Iterator[Any]:
        began = time.perf_counter()
        with click.progressbar(length=steps, label=f"{name:<14}", show_pos=True, file=sys.stderr) as bar:
            yield bar
        self.timings[name] = round(time.perf_counter() - began + self.timings.get(name, 0.0), 1)


def seed(args: argparse.Namespace) -> dict[str, Any]:
    from accounts.passwords import hash_password
    from app import create_app
    from bench.bulk import drop_secondary
    from bench.leaderboard_seed import TOTALS_SQL
    from bench.reports_seed_sql import FUNCTIONS
    from bench.seed import create_schema, rollup_triggers
    from core import crypto, partitions
    from core.extensions import db
    from grids.models import Area
    from notifications.models import Notification
    from patrols.tracks.models import TrackPoint
    from rewards.leaderboards import totals as leaderboards_totals

    run = Phases()
    app = create_app()
    slots = list(history.SLOTS[: args.shifts_per_day])
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.astimezone(ZONE).date()
    first_day = today - timedelta(days=args.days - 1)
    first_at = datetime.combine(first_day, datetime.min.time(), ZONE)
    with app.app_context():
        with run.phase("schema"):
            schema_from = create_schema()
        connection = db.session.connection()
        if connection.execute(sa.text("SELECT count(*) FROM areas")).scalar_one():
            raise SystemExit("the database already has areas: --recreate it")
        with run.phase("areas", 3) as bar:
            area_rows, grids = city_areas(now, args.scale)
            bar.update(1)
            for start in range(0, len(area_rows), 2000):
                connection.execute(sa.insert(Area.__table__), area_rows[start : start + 2000])
            bar.update(1)
            connection.execute(sa.text(
                "CREATE TEMP TABLE city_grids (g int, grid_id int, lon float8, lat float8, cell_lon float8, "
                "cell_lat float8)"
            ))
            connection.execute(sa.text(
                "INSERT INTO city_grids VALUES (:g, :id, :lon, :lat, :cell_lon, :cell_lat)"
            ), [{"g": g, **grid} for g, grid in enumerate(grids)])
            connection.execute(sa.text("CREATE TEMP TABLE city_slots (s int, hour int, minutes int)"))
            connection.execute(sa.text("INSERT INTO city_slots VALUES (:s, :hour, :minutes)"),
                               [{"s": s, "hour": h, "minutes": m} for s, (h, m) in enumerate(slots)])
            connection.execute(sa.text(FUNCTIONS))
            notification_texts(connection, first_day, args.days + args.ahead, slots)
            bar.update(1)
        police = round(history.VOLUNTEERS_POLICE * args.scale)
        people = police + round(history.VOLUNTEERS_STEWARD * args.scale)
        shape = {
            "now": now, "first_at": first_at, "first_day": first_day, "grids": len(grids), "slots": len(slots),
            "days": args.days, "ahead": args.ahead, "police": police, "people": people,
            "track_days": args.track_days, "hash": hash_password(BENCH_PASSWORD),  # one argon2 for everyone
            "cipher": crypto.encrypt("150202199001010011"), "consent": app.config["PRIVACY_TERMS_VERSION"],
        }
        for statement in history.PEOPLE.split(";\n"):
            if statement.strip():
                connection.execute(sa.text(statement), {k: v for k, v in shape.items() if f":{k}" in statement})
        restore = drop_secondary(connection, history.BULK_TABLES)
        # Track points and notifications land in their month's partition, as the periodic task
        # would have made them month by month: the months of the track window and of the history.
        track_from = now - timedelta(days=args.track_days + 1)
        partitions.ensure_months(TrackPoint.__table__, partitions.months_from(track_from.date(), 2 + (args.track_days // 28)))
        history_from = now - timedelta(days=args.days + 8)  # the assignment message a week before a shift
        partitions.ensure_months(
            Notification.__table__, partitions.months_from(history_from.date(), 2 + (args.days + 8) // 28)
        )
        rowcounts: dict[str, int] = {}
        for phase in dict.fromkeys(p for p, _s, _q in history.STEPS):
            steps = [(name, sql) for p, name, sql in history.STEPS if p == phase]
            with run.phase(phase, len(steps)) as bar:
                for name, sql in steps:
                    result = connection.execute(sa.text(sql), {k: v for k, v in shape.items() if f":{k}" in sql})
                    rowcounts[name] = result.rowcount
                    bar.update(1)
        with run.phase("indexes", len(restore)) as bar:
            for statement in restore:
                connection.execute(sa.text(statement))
                bar.update(1)
        with run.phase("managers"):
            managers = make_managers(connection, shape)
            # After every row with an id of the seed's own: the app's next user, shift, … takes the next id.
            set_sequences(connection)
        with run.phase("leaderboards", 2) as bar:
            connection.execute(sa.text(
                f"ALTER TABLE leaderboard_totals DISABLE TRIGGER {leaderboards_totals.GRID_TRIGGER}"
            ))
            connection.execute(sa.text(TOTALS_SQL))
            bar.update(1)
            leaderboards_totals.rebuild_grids()
            connection.execute(sa.text(f"ALTER TABLE leaderboard_totals ENABLE TRIGGER {leaderboards_totals.GRID_TRIGGER}"))
            bar.update(1)
        db.session.commit()
        with run.phase("vacuum", 1) as bar:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as autocommit:
                autocommit.execute(sa.text("VACUUM (ANALYZE)"))
            bar.update(1)
        # The daily roll-ups by the app's own rebuild (their triggers were off for the load).
        with run.phase("rollups", len(grids)) as bar:
            rollup_triggers(enabled=True)
            rollup_counts = rebuild_rollups(args.jobs, bar)
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as autocommit:
                autocommit.execute(sa.text(
                    "VACUUM (ANALYZE) report_grid_days, report_grid_day_badges, report_volunteer_months"
                ))
        manifest = _manifest(args, grids, managers, now, first_at, police, people, schema_from)
        db.session.commit()
        db.session.remove()
    with run.phase("checks", 1) as bar:
        found = checks.run_all(app, manifest, sample=args.check_sample)
        bar.update(1)
    with app.app_context():
        sizes = _sizes(db.engine)
        db.engine.dispose()
    run.timings["total"] = round(time.perf_counter() - run.started, 1)
    manifest["seed"] = {"timings_s": run.timings, "rows": sizes["rows"], "database_bytes": sizes["database_bytes"],
                        "biggest_tables": sizes["biggest"], "bulk_rowcounts": rowcounts,
                        "rollups": rollup_counts, "checks": found}
    return manifest


def _manifest(args: argparse.Namespace, grids: list[dict[str, Any]], managers: dict[str, Any], now: datetime,
              first_at: datetime, police: int, people: int, schema_from: str) -> dict[str, Any]:
    from core.extensions import db

    connection = db.session.connection()
    areas = [
        {"id": i, "level": level, "code": code, "name": name, "path": path}
        for i, level, code, name, path in connection.execute(sa.text(
            "SELECT id, level, code, name, path FROM areas WHERE level IN ('city', 'district', 'subdistrict') "
            "ORDER BY id"
        ))
    ]
    volunteers = [
        {"id": n, "kind": "volunteer_police" if kind == 0 else "alley_steward", "status": status, "home_grid_id": grid}
        for n, kind, status, grid in connection.execute(sa.text(
            "SELECT n, k, status, grid_id FROM city_people ORDER BY n"
        ))
    ]
    return {
        "url": args.url,
        "instance_path": os.environ["INSTANCE_PATH"],
        "scale": args.scale,
        "schema_from": schema_from,
        "seeded_at": now.isoformat(),
        "window": {"from": first_at.isoformat(), "to": now.isoformat(), "ahead_days": args.ahead,
                   "track_days": args.track_days, "shifts_per_day": args.shifts_per_day,
                   "slots_local": [list(slot) for slot in history.SLOTS[: args.shifts_per_day]]},
        "password": BENCH_PASSWORD,
        "phones": {"volunteer": "+86137 + the volunteer id in 8 digits", "managers": "+86135 + 8 digits"},
        "areas": areas,
        "districts": extents(args.scale),
        "grid_count": len(grids),
        "grids": {str(g["id"]): {"code": g["code"], "path": g["path"], "point": [g["lon"], g["lat"]]} for g in grids},
        "volunteers": {"police": police, "stewards": people - police, "items": volunteers},
        "organisers": managers["organisers"],
        "staff": managers["staff"],
        "district_names": [d.name for d in DISTRICTS],
    }


def _sizes(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = dict(connection.execute(sa.text(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE n_live_tup > 0 ORDER BY relname"
        )).tuples().all())
        # Partitions summed into their parent (track_points).
        biggest = [
            {"table": name, "bytes": size} for name, size in connection.execute(sa.text(
                "SELECT coalesce(p.relname, c.relname), sum(pg_total_relation_size(c.oid))::bigint AS size "
                "FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent "
                "WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
            ))
        ]
        database = connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
    return {"rows": rows, "database_bytes": database, "biggest": biggest}


def targets(manifest: dict[str, Any]) -> dict[str, Any]:
    """What ``bench/reports.py --city-url`` reports on: the biggest district (昆都仑区) and the city,
    with their staff's fresh tokens (call with the serving app's DATABASE_URL and INSTANCE_PATH
    set), and the district's first street and community."""
    from app import create_app
    from bench.seed import mint_token
    from core.extensions import db

    staff = {entry["name"]: entry for entry in manifest["staff"]}
    chosen = {"district": staff[DISTRICTS[0].name], "city": next(s for s in manifest["staff"] if s["level"] == "city")}
    found: dict[str, Any] = {}
    app = create_app()
    with app.app_context():
        for scope, entry in chosen.items():
            found[scope] = {"area_id": entry["area_id"], "path": entry["path"],
                            "token": mint_token(entry["id"], "staff", entry["path"])}
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    under = [o for o in manifest["organisers"] if o["path"].startswith(chosen["district"]["path"])]
    found["subdistrict_id"] = next(o["area_id"] for o in under if o["level"] == "subdistrict")
    found["community_id"] = next(o["area_id"] for o in under if o["level"] == "community")
    return found


def _print_summary(manifest: dict[str, Any]) -> None:
    done = manifest["seed"]
    print("time per phase (s):", json.dumps(done["timings_s"]))
    print("rows:")
    for table, count in sorted(done["rows"].items(), key=lambda item: -item[1]):
        print(f"  {table:<36} {count:>12,}")
    print(f"database: {done['database_bytes'] / 2**20:,.0f} MiB; biggest tables:")
    for entry in done["biggest_tables"]:
        print(f"  {entry['table']:<36} {entry['bytes'] / 2**20:>10,.1f} MiB")
    print("checks:", json.dumps(done["checks"], ensure_ascii=False))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--url", required=True, help="postgresql://… of the database to seed")
    parser.add_argument("--scale", type=float, default=1.0, help="people and grids × this (default 1: 7,000 grids)")
    parser.add_argument("--recreate", action="store_true", help="drop and create the database first")
    parser.add_argument("--days", type=int, default=365, help="local days of history up to today")
    parser.add_argument("--ahead", type=int, default=7, help="days of scheduled shifts after today")
    parser.add_argument("--shifts-per-day", type=int, default=1, choices=(1, 2, 3), help="shifts a grid a day")
    parser.add_argument("--track-days", type=int, default=3, help="days of full GPS tracks (≤ 90, the retention)")
    parser.add_argument("--jobs", type=int, default=2, help="processes rebuilding the roll-ups (a district each)")
    parser.add_argument("--check-sample", type=int, default=200, help="grids and volunteers the checks recount")
    parser.add_argument("--manifest", type=Path, help="where to write the manifest (default bench/results/city-<db>.json)")
    args = parser.parse_args(argv)
    if not args.url.startswith(("postgresql", "postgres://")):
        parser.error("--url must be a PostgreSQL database")
    if not (0 < args.scale <= 4 and 1 <= args.days <= 730 and 0 <= args.ahead <= 60 and 0 <= args.track_days <= 90
            and 1 <= args.jobs <= 16):
        parser.error("out of bounds: scale (0, 4], days [1, 730], ahead [0, 60], track days [0, 90], jobs [1, 16]")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    os.environ["DATABASE_URL"] = args.url
    os.environ.setdefault("INSTANCE_PATH", str(RESULTS / f"city-{database_name(args.url)}-instance"))
    os.environ.pop("REDIS_URL", None)
    if args.recreate:
        os.environ.setdefault("BENCH_ALLOW_DROP", "1")  # the name was given on purpose
        recreate_database(args.url)
    manifest = seed(args)
    out = args.manifest or manifest_path(args.url)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(manifest, handle, ensure_ascii=False)
    _print_summary(manifest)
    print(f"manifest: {out}")
    failed = [name for name, result in manifest["seed"]["checks"].items() if result.get("failures")]
    if failed:
        raise SystemExit(f"checks failed: {', '.join(failed)}")
    return manifest


if __name__ == "__main__":
    main()
