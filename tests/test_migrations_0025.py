"""Migration 0025 on a database that holds track points: every point kept, the de-duplication key
now the primary key (a repeated point still skipped, a new one stored without an id), and the
downgrade gives the ids and keys back. Both dialects (PostgreSQL alters the partitioned table,
SQLite rebuilds it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from core.config import normalise_database_url
from tests.test_migrations import _flask, _patrols_at, new_database  # noqa: F401 - the fixture, shared

POINT_ROWS = (
    "SELECT patrol_id, device_at, received_at, lat, lon, accuracy_m FROM track_points ORDER BY patrol_id, device_at"
)
#: Device times around a month edge (UTC), microseconds included.
TIMES = ["2026-11-30T23:59:59.999999+00:00", "2026-12-01T00:00:00+00:00", "2026-12-07T09:00:00.250000+00:00"]
INSERT = (
    "INSERT INTO track_points (patrol_id, device_at, received_at, lat, lon, accuracy_m) "
    "VALUES (:patrol, :at, :at, :lat, 109.8, :accuracy) ON CONFLICT (patrol_id, device_at) DO NOTHING"
)


def _keys(engine: sa.Engine) -> tuple[list[str], list[list[str]], list[str]]:
    inspector = sa.inspect(engine)
    primary = inspector.get_pk_constraint("track_points")["constrained_columns"]
    unique = [u["column_names"] for u in inspector.get_unique_constraints("track_points")]
    columns = [c["name"] for c in inspector.get_columns("track_points")]
    return primary, unique, columns


def test_0025_keeps_every_point_makes_the_dedupe_key_primary_and_its_downgrade_gives_ids_back(
    app: Flask, new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    assert _flask(["db", "upgrade", "0024"], url, tmp_path).returncode == 0
    first, second = _patrols_at(url, app, 2)
    engine = sa.create_engine(normalise_database_url(url))
    try:
        with engine.begin() as connection:
            for index, moment in enumerate(TIMES):
                for patrol in (first, second):
                    connection.execute(
                        sa.text(INSERT),
                        {"patrol": patrol, "at": moment, "lat": 40.6 + index / 1000, "accuracy": index or None},
                    )
            before = connection.execute(sa.text(POINT_ROWS)).all()
        assert len(before) == 2 * len(TIMES)

        result = _flask(["db", "upgrade", "0025"], url, tmp_path)
        assert result.returncode == 0, result.stderr
        primary, unique, columns = _keys(engine)
        assert primary == ["patrol_id", "device_at"] and unique == [] and "id" not in columns
        with engine.begin() as connection:
            assert connection.execute(sa.text(POINT_ROWS)).all() == before
            repeated = connection.execute(sa.text(INSERT), {"patrol": first, "at": TIMES[1], "lat": 1, "accuracy": None})
            assert repeated.rowcount == 0  # the key still skips a point already stored
            connection.execute(sa.text(INSERT), {"patrol": first, "at": "2026-12-07T10:00:00+00:00", "lat": 1, "accuracy": None})
            after_upgrade = connection.execute(sa.text(POINT_ROWS)).all()
        assert len(after_upgrade) == len(before) + 1

        down = _flask(["db", "downgrade", "0024"], url, tmp_path)
        assert down.returncode == 0, down.stderr
        primary, unique, columns = _keys(engine)
        assert "id" in columns and ["patrol_id", "device_at"] in unique
        assert primary in (["id"], ["id", "device_at"])  # SQLite's key; PostgreSQL's holds the partition key
        with engine.begin() as connection:
            assert connection.execute(sa.text(POINT_ROWS)).all() == after_upgrade
            ids = connection.execute(sa.text("SELECT id FROM track_points")).scalars().all()
            assert None not in ids and len(set(ids)) == len(ids) == len(after_upgrade)
            connection.execute(sa.text(INSERT), {"patrol": second, "at": "2026-12-07T11:00:00+00:00", "lat": 1, "accuracy": None})
            new_id = connection.execute(sa.text(
                "SELECT id FROM track_points WHERE patrol_id = :patrol AND lat = 1"
            ), {"patrol": second}).scalar()
        assert new_id is not None and new_id not in ids

        again = _flask(["db", "upgrade"], url, tmp_path)  # and up again, to the head
        assert again.returncode == 0, again.stderr
        assert _keys(engine)[0] == ["patrol_id", "device_at"]
    finally:
        engine.dispose()
