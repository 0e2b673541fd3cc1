"""``bench/city_seed.py`` at a tiny scale: the city it seeds is what the app would have written.

PostgreSQL only (the seed is PostgreSQL's SQL): deselected in the SQLite pass, never counted as
passed there. The seed runs as its own process on a database of its own, as it is used; its checks
(tiling, locate, roll-ups and leaderboards against the app's recount, balances, counters, the
endpoints for seeded users) must all have looked at something and found nothing wrong, and the
test recounts a few things itself on the seeded database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.config import normalise_database_url

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, sa.Engine]]:
    base = os.environ["TEST_DATABASE_URL"]
    admin = sa.create_engine(sa.make_url(normalise_database_url(base)), isolation_level="AUTOCOMMIT")
    name = f"{admin.url.database}_city_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name)
    work = tmp_path_factory.mktemp("city")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bench.city_seed", "--url", url.render_as_string(hide_password=False),
             "--scale", "0.004", "--days", "14", "--ahead", "2", "--track-days", "2", "--check-sample", "40", "--jobs", "1",
             "--manifest", str(work / "manifest.json")],
            cwd=ROOT, env={**os.environ, "INSTANCE_PATH": str(work / "instance")},
            capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        engine = sa.create_engine(url)
        yield json.loads((work / "manifest.json").read_text()), engine
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_every_check_looked_and_found_nothing_wrong(seeded: tuple[dict, sa.Engine]) -> None:
    manifest, _ = seeded
    checks = manifest["seed"]["checks"]
    assert set(checks) == {"tiling", "locate", "rollups", "balances", "shift_counters", "shift_times", "track_summaries",
                           "leaderboards", "endpoints"}
    for name, result in checks.items():
        assert result["checked"] > 0, name
        assert result["failures"] == [], name


def test_the_city_has_its_districts_people_and_a_manifest_to_load_them(seeded: tuple[dict, sa.Engine]) -> None:
    manifest, engine = seeded
    with engine.connect() as connection:
        levels = dict(connection.execute(sa.text("SELECT level, count(*) FROM areas GROUP BY level")).tuples().all())
        kinds = dict(connection.execute(sa.text(
            "SELECT k.code, count(*) FROM volunteers v JOIN volunteer_kinds k ON k.id = v.kind_id GROUP BY k.code"
        )).tuples().all())
        districts = set(connection.execute(sa.text("SELECT name FROM areas WHERE level = 'district'")).scalars())
    assert levels["city"] == 1 and levels["grid"] == manifest["grid_count"] == len(manifest["grids"])
    assert districts == set(manifest["district_names"]) and "达尔罕茂明安联合旗" in districts
    assert kinds == {"volunteer_police": manifest["volunteers"]["police"],
                     "alley_steward": manifest["volunteers"]["stewards"]}
    assert kinds["volunteer_police"] > 2 * kinds["alley_steward"]
    homes = {v["home_grid_id"] for v in manifest["volunteers"]["items"]}
    assert homes <= {int(g) for g in manifest["grids"]}
    assert {s["level"] for s in manifest["staff"]} == {"city", "district"}
    assert {o["level"] for o in manifest["organisers"]} == {"subdistrict", "community"}


def test_history_stays_inside_the_window_and_retention(seeded: tuple[dict, sa.Engine]) -> None:
    manifest, engine = seeded
    with engine.connect() as connection:
        oldest_track, newest_track = connection.execute(sa.text(
            "SELECT min(s.ends_at), max(s.ends_at) FROM track_points t JOIN patrols p ON p.id = t.patrol_id "
            "JOIN shifts s ON s.id = p.shift_id"
        )).one()
        future_patrols = connection.execute(sa.text(
            "SELECT count(*) FROM patrols p JOIN shifts s ON s.id = p.shift_id WHERE s.ends_at > :now"
        ), {"now": manifest["seeded_at"]}).scalar_one()
        undelivered = connection.execute(sa.text(
            "SELECT count(*) FROM notifications WHERE push_status <> 'sent' OR created_at > :now"
        ), {"now": manifest["seeded_at"]}).scalar_one()
        read, notifications = connection.execute(sa.text(
            "SELECT count(read_at), count(*) FROM notifications"
        )).one()
        upcoming = connection.execute(sa.text(
            "SELECT count(*) FROM shift_assignments a JOIN shifts s ON s.id = a.shift_id "
            "WHERE s.starts_at > :now AND a.status = 'assigned'"
        ), {"now": manifest["seeded_at"]}).scalar_one()
    from datetime import datetime, timedelta

    seeded_at = datetime.fromisoformat(manifest["seeded_at"])
    assert oldest_track >= seeded_at - timedelta(days=manifest["window"]["track_days"]) and newest_track <= seeded_at
    assert future_patrols == 0 and upcoming > 0
    assert undelivered == 0 and 0 < read < notifications


def test_history_lies_in_its_months_partitions_with_its_keys(seeded: tuple[dict, sa.Engine]) -> None:
    """As the periodic task would have made them month by month: nothing in a default partition,
    and every keyed notification's key in the dedupe table the app writes first."""
    _, engine = seeded
    with engine.connect() as connection:
        stray = {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}_default")).scalar_one()
            for table in ("track_points", "notifications")
        }
        months = connection.execute(sa.text(
            "SELECT count(DISTINCT tableoid) FROM notifications"
        )).scalar_one()
        keyed, kept = connection.execute(sa.text(
            "SELECT count(*), count(d.user_id) FROM notifications n "
            "LEFT JOIN notification_dedupe d ON d.user_id = n.user_id AND d.dedupe_key = n.dedupe_key "
            "WHERE n.dedupe_key IS NOT NULL"
        )).one()
    assert stray == {"track_points": 0, "notifications": 0}
    assert months > 1
    assert keyed > 0 and kept == keyed


def test_the_apps_next_rows_take_fresh_ids(seeded: tuple[dict, sa.Engine]) -> None:
    """The seed writes its own ids: every sequence must be past them, or the app's first new user
    (or shift, patrol, …) after a seed fails on its primary key."""
    _, engine = seeded
    behind = []
    with engine.connect() as connection:
        for table in ("areas", "users", "volunteers", "shifts", "shift_assignments", "patrols", "notifications"):
            last, highest = connection.execute(sa.text(
                f"SELECT (SELECT last_value FROM {table}_id_seq), (SELECT max(id) FROM {table})"
            )).one()
            if highest is not None and last < highest:
                behind.append((table, last, highest))
    assert behind == []


def test_every_index_is_valid_on_every_partition(seeded: tuple[dict, sa.Engine]) -> None:
    """The bulk load drops secondary indexes and makes them again: a partitioned table's must come
    back on its partitions too (an index made ``ON ONLY`` the parent stays invalid, and the outbox's
    claim then read every notification of the year)."""
    _, engine = seeded
    with engine.connect() as connection:
        invalid = connection.execute(sa.text(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1"
        )).scalars().all()
        unindexed = connection.execute(sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'notifications'::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_indexes x WHERE x.tablename = c.relname AND x.indexdef LIKE '%push_due_at%')"
        )).scalars().all()
    assert invalid == [] and unindexed == []
