"""``flask db upgrade`` on an empty database must produce exactly the models."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from core.config import normalise_database_url
from core.extensions import db
from core.partitions import is_partition_name
from volunteers.models import BUILTIN_KINDS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Brand-new databases of the kind under test (SQLite files, or fresh PostgreSQL databases)."""
    base = os.environ.get("TEST_DATABASE_URL")
    created: list[str] = []
    admin = sa.create_engine(sa.make_url(normalise_database_url(base)), isolation_level="AUTOCOMMIT") if base else None

    def create() -> str:
        name = f"migr_{uuid.uuid4().hex[:8]}"
        if admin is None:
            return f"sqlite:///{tmp_path}/{name}.db"
        name = f"{admin.url.database}_{name}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return admin.url.set(database=name).render_as_string(hide_password=False)

    try:
        yield create
    finally:
        if admin is not None:
            with admin.connect() as connection:
                for name in created:
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture
def empty_database(new_database: Callable[[], str]) -> str:
    return new_database()


def _flask(args: list[str], database_url: str, instance: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FLASK_APP": "app:create_app",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_upgrade_from_empty_matches_the_models(app: Flask, empty_database: str, tmp_path: Path) -> None:
    result = _flask(["db", "upgrade"], empty_database, tmp_path)
    assert result.returncode == 0, result.stderr

    engine = sa.create_engine(normalise_database_url(empty_database))
    # Partitions are no models: the app's autogenerate leaves them out, and so does this comparison.
    include_name = app.extensions["migrate"].configure_args["include_name"]
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "render_as_batch": True, "include_name": include_name}
            )
            differences = compare_metadata(context, db.metadata)
            kinds = connection.execute(sa.text("SELECT code FROM volunteer_kinds ORDER BY code")).scalars().all()
            live_partitioning = _partition_keys(connection)
    finally:
        engine.dispose()
    assert differences == []
    assert kinds == sorted(kind["code"] for kind in BUILTIN_KINDS)
    # Alembic sees no partitioning at all: the live tables are partitioned as the models declare.
    assert live_partitioning == _modelled_partitioning(engine.dialect.name)
    if engine.dialect.name == "postgresql":
        assert live_partitioning == {"notifications": "range(created_at)", "track_points": "range(device_at)"}  # the comparison compares something


def _partition_keys(connection: sa.Connection) -> dict[str, str | None]:
    """Each partitioned table's partition key as the database reports it (none on SQLite)."""
    if connection.dialect.name != "postgresql":
        return {}
    rows = connection.execute(sa.text(
        "SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
    )).all()
    return {name: _sql(key) for name, key in rows}


def _modelled_partitioning(dialect_name: str) -> dict[str, str | None]:
    if dialect_name != "postgresql":
        return {}
    declared = {table.name: table.dialect_options["postgresql"]["partition_by"] for table in db.metadata.tables.values()}
    return {name: _sql(key) for name, key in declared.items() if key}


def test_downgrade_to_base_and_up_again(empty_database: str, tmp_path: Path) -> None:
    assert _flask(["db", "upgrade"], empty_database, tmp_path).returncode == 0
    down = _flask(["db", "downgrade", "base"], empty_database, tmp_path)
    assert down.returncode == 0, down.stderr
    engine = sa.create_engine(normalise_database_url(empty_database))
    try:
        remaining = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert remaining == set()
    assert _flask(["db", "upgrade"], empty_database, tmp_path).returncode == 0


# --- what Alembic's comparison leaves out ---------------------------------------------------------
# compare_metadata above sees tables, columns, types, indexes and unique constraints, but neither
# CHECK constraints nor ON DELETE, nothing of partial indexes' WHERE, nor partitioning: a migration
# that loses the balance or headcount CHECK passes it. So the migrated schema is also compared, as the
# database itself reports it (SQLAlchemy's inspector), with the same models made by create_all
# in a second new database of the same kind: the same server renders both, so the texts compare.


def _sql(text: Any) -> str | None:
    """SQL text as the database reports it, without spelling differences (case, spaces, quotes)."""
    if text is None:
        return None
    return re.sub(r"[\s\"`]+", "", str(text)).lower()


def _schema(url: str) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(normalise_database_url(url))
    try:
        inspector = sa.inspect(engine)
        with engine.connect() as connection:
            partition_keys = _partition_keys(connection)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        # The months' partitions differ (the migration makes this month's, create_all none); each
        # partitioned table is compared, its partition key and whether it has its default partition.
        partitions = {name for name in tables if is_partition_name(name)}
        schema = {}
        for table in sorted(tables - partitions):
            pk = inspector.get_pk_constraint(table)
            schema[table] = {
                "partition key": partition_keys.get(table),
                "default partition": f"{table}_default" in partitions,
                "columns": sorted(
                    (c["name"], str(c["type"]), c["nullable"], _sql(c.get("default")))
                    for c in inspector.get_columns(table)
                ),
                "primary key": (pk.get("name"), tuple(pk["constrained_columns"])),
                "foreign keys": sorted(
                    (
                        fk.get("name"),
                        tuple(fk["constrained_columns"]),
                        fk["referred_table"],
                        tuple(fk["referred_columns"]),
                        _sql(fk.get("options", {}).get("ondelete")),
                    )
                    for fk in inspector.get_foreign_keys(table)
                ),
                "unique constraints": sorted(
                    (u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (
                        ix["name"],
                        tuple(str(c) for c in ix["column_names"]),
                        tuple(_sql(e) for e in ix.get("expressions") or ()),
                        bool(ix["unique"]),
                        tuple(sorted((k, _sql(v)) for k, v in ix.get("dialect_options", {}).items())),
                    )
                    for ix in inspector.get_indexes(table)
                ),
                "checks": sorted((ck["name"], _sql(ck["sqltext"])) for ck in inspector.get_check_constraints(table)),
            }
        return schema
    finally:
        engine.dispose()


def test_migrated_schema_has_every_constraint_index_and_default_of_the_models(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    migrated = new_database()
    result = _flask(["db", "upgrade"], migrated, tmp_path)
    assert result.returncode == 0, result.stderr
    modelled = new_database()
    engine = sa.create_engine(normalise_database_url(modelled))
    try:
        db.metadata.create_all(engine)
    finally:
        engine.dispose()

    from_migrations, from_models = _schema(migrated), _schema(modelled)

    assert sorted(from_migrations) == sorted(from_models)
    differences = {
        (table, part): {"migrations": mine, "models": theirs}
        for table, parts in from_models.items()
        for part, theirs in parts.items()
        if (mine := from_migrations[table][part]) != theirs
    }
    assert differences == {}
    # The comparison sees what it compares (a reflection that lost them would compare nothing).
    balances = from_migrations["point_balances"]
    assert ("ck_point_balances_balance_non_negative", "balance>=0") in balances["checks"]
    assert any(fk[-1] == "cascade" for fk in balances["foreign keys"])
    unread = next(ix for ix in from_migrations["notifications"]["indexes"] if ix[0] == "ix_notifications_unread")
    assert any("read_atisnull" in str(value) for _, value in unread[-1])
    tracks = from_migrations["track_points"]
    if migrated.startswith("postgresql"):
        # Partitioned by month of device_at, so every unique key holds device_at.
        assert (tracks["partition key"], tracks["default partition"]) == ("range(device_at)", True)
    else:
        assert (tracks["partition key"], tracks["default partition"]) == (None, False)
    # The de-duplication key is the primary key (0025): no id, no second unique key.
    assert tracks["primary key"] == ("pk_track_points", ("patrol_id", "device_at"))


# --- converting a database that holds track points (0020, PostgreSQL) -------------------------------

#: Device times at and either side of month edges (UTC), including 00:00 in Shanghai on 1 October,
#: which is still September in UTC, and a month far ahead; each with the partition it belongs to.
EDGE_POINTS = [
    ("2026-08-31T23:59:59.999999+00:00", "track_points_p2026_08"),
    ("2026-09-01T00:00:00+00:00", "track_points_p2026_09"),
    ("2026-09-30T16:00:00+00:00", "track_points_p2026_09"),
    ("2026-10-15T12:00:00.250000+00:00", "track_points_p2026_10"),
    ("2026-12-01T00:00:00+00:00", "track_points_p2026_12"),
    ("2027-06-01T00:00:00+00:00", "track_points_p2027_06"),
]
TRACK_ROWS = "SELECT id, patrol_id, device_at, received_at, lat, lon, accuracy_m FROM track_points ORDER BY id"


def _utc_text(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


@contextmanager
def factories_on(url: str, app: Flask) -> Iterator[None]:
    """The factories write to the database at ``url`` (not the test's), committed at the end."""
    from flask_sqlalchemy.session import _app_ctx_id
    from sqlalchemy import orm

    engine = sa.create_engine(normalise_database_url(url))
    original = db.session
    try:
        with engine.connect() as connection, app.app_context():
            db.session = orm.scoped_session(orm.sessionmaker(bind=connection), scopefunc=_app_ctx_id)
            yield
            db.session.commit()
            db.session.remove()
    finally:
        db.session = original
        engine.dispose()


def _patrols_at(url: str, app: Flask, count: int) -> list[int]:
    """``count`` patrols made through the factories in the database at ``url``, committed."""
    from patrols.service import patrol_for
    from tests import factories

    with factories_on(url, app):
        grid = factories.make_branch()[-1]
        shift = factories.make_shift(grid)
        return [patrol_for(factories.make_assignment(shift, factories.make_volunteer(grid))).id for _ in range(count)]


@pytest.mark.postgresql
def test_0020_keeps_every_track_point_in_its_month_and_its_downgrade_brings_them_back(
    app: Flask, new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    assert _flask(["db", "upgrade", "0019"], url, tmp_path).returncode == 0
    first, second = _patrols_at(url, app, 2)
    engine = sa.create_engine(normalise_database_url(url))
    try:
        with engine.begin() as connection:
            # Sessions in Shanghai time: the migration's month bounds must not move with the zone.
            connection.execute(sa.text(f'ALTER DATABASE "{engine.url.database}" SET timezone TO \'Asia/Shanghai\''))
            for index, (moment, _) in enumerate(EDGE_POINTS):
                for patrol_id in (first, second):
                    connection.execute(
                        sa.text(
                            "INSERT INTO track_points (patrol_id, device_at, received_at, lat, lon, accuracy_m) "
                            "VALUES (:patrol, :at, :received, :lat, :lon, :accuracy)"
                        ),
                        {"patrol": patrol_id, "at": moment, "received": "2026-12-07T09:00:00.123456+08:00",
                         "lat": 40.6 + index / 1000, "lon": 109.8 - patrol_id / 1000, "accuracy": None if index % 2 else 4.5},
                    )
            before = connection.execute(sa.text(TRACK_ROWS)).all()
        assert len(before) == 2 * len(EDGE_POINTS)

        result = _flask(["db", "upgrade", "0020"], url, tmp_path)  # 0025 drops the ids this checks
        assert result.returncode == 0, result.stderr
        with engine.begin() as connection:
            assert connection.execute(sa.text(TRACK_ROWS)).all() == before
            placed = dict(connection.execute(sa.text(
                "SELECT to_char(device_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
                "CAST(CAST(tableoid AS regclass) AS text) FROM track_points WHERE patrol_id = :patrol"
            ), {"patrol": first}).all())
            made = {
                name for name, in connection.execute(sa.text(
                    "SELECT CAST(CAST(inhrelid AS regclass) AS text) FROM pg_inherits "
                    "WHERE inhparent = CAST('track_points' AS regclass)"
                ))
            }
            # The sequence goes on after the copied ids; the de-duplication key still holds.
            new_id = connection.execute(sa.text(
                "INSERT INTO track_points (patrol_id, device_at, received_at, lat, lon) "
                "VALUES (:patrol, now(), now(), 40.6, 109.8) RETURNING id"
            ), {"patrol": first}).scalar()
            repeated = connection.execute(sa.text(
                "INSERT INTO track_points (patrol_id, device_at, received_at, lat, lon) "
                "VALUES (:patrol, :at, now(), 1, 1) ON CONFLICT (patrol_id, device_at) DO NOTHING RETURNING id"
            ), {"patrol": first, "at": EDGE_POINTS[1][0]}).all()
        assert placed == {_utc_text(moment): name for moment, name in EDGE_POINTS}
        assert {name for _, name in EDGE_POINTS} | {"track_points_default"} <= made
        assert new_id > max(row.id for row in before) and repeated == []

        down = _flask(["db", "downgrade", "0019"], url, tmp_path)
        assert down.returncode == 0, down.stderr
        with engine.connect() as connection:
            after = connection.execute(sa.text(TRACK_ROWS)).all()
            kind = connection.execute(sa.text("SELECT relkind FROM pg_class WHERE relname = 'track_points'")).scalar()
        assert after[:-1] == before and after[-1].id == new_id
        assert kind == "r"  # a plain table again
        assert sa.inspect(engine).get_pk_constraint("track_points")["constrained_columns"] == ["id"]
    finally:
        engine.dispose()


# --- converting a database that holds notifications (0021, PostgreSQL) ------------------------------

#: Creation times at and either side of month edges (UTC), including 00:00 in Shanghai on 1 October
#: (still September in UTC) and a month far ahead; each with the partition it belongs to.
EDGE_NOTIFICATIONS = [
    ("2026-08-31T23:59:59.999999+00:00", "notifications_p2026_08"),
    ("2026-09-01T00:00:00+00:00", "notifications_p2026_09"),
    ("2026-09-30T16:00:00+00:00", "notifications_p2026_09"),
    ("2026-10-15T12:00:00.250000+00:00", "notifications_p2026_10"),
    ("2026-12-01T00:00:00+00:00", "notifications_p2026_12"),
    ("2027-06-01T00:00:00+00:00", "notifications_p2027_06"),
]
NOTIFICATION_ROWS = (
    "SELECT id, user_id, kind, title, body, data, urgent, dedupe_key, broadcast_id, created_at, read_at, push_status, "
    "push_due_at, push_attempts, push_claim, push_claimed_until, push_device_ids, push_error, push_wait, pushed_at "
    "FROM notifications ORDER BY id"
)
RECEIPT_ROWS = "SELECT id, notification_id, device_id, channel, delivered, status, vendor_at, received_at FROM push_receipts ORDER BY id"


def _users_at(url: str, app: Flask, count: int) -> list[int]:
    """``count`` users made through the factories in the database at ``url``, committed."""
    from flask_sqlalchemy.session import _app_ctx_id
    from sqlalchemy import orm

    from tests import factories

    engine = sa.create_engine(normalise_database_url(url))
    original = db.session
    try:
        with engine.connect() as connection, app.app_context():
            db.session = orm.scoped_session(orm.sessionmaker(bind=connection), scopefunc=_app_ctx_id)
            grid = factories.make_branch()[-1]
            ids = [factories.make_user("volunteer", grid).id for _ in range(count)]
            db.session.commit()
            db.session.remove()
            return ids
    finally:
        db.session = original
        engine.dispose()


@pytest.mark.postgresql
def test_0021_keeps_every_notification_in_its_month_its_keys_and_receipts_and_its_downgrade_brings_them_back(
    app: Flask, new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    assert _flask(["db", "upgrade", "0020"], url, tmp_path).returncode == 0
    first, second = _users_at(url, app, 2)
    engine = sa.create_engine(normalise_database_url(url))
    try:
        with engine.begin() as connection:
            # Sessions in Shanghai time: the migration's month bounds must not move with the zone.
            connection.execute(sa.text(f'ALTER DATABASE "{engine.url.database}" SET timezone TO \'Asia/Shanghai\''))
            for index, (moment, _) in enumerate(EDGE_NOTIFICATIONS):
                for user_id in (first, second):
                    notification = connection.execute(
                        sa.text(
                            "INSERT INTO notifications (user_id, kind, title, body, data, urgent, dedupe_key, created_at, "
                            "read_at, push_status, push_due_at, push_attempts, push_device_ids, push_wait, pushed_at) "
                            "VALUES (:user, 'volunteer_approved', :title, '正文', CAST(:data AS jsonb), :urgent, :key, :at, "
                            ":read, :status, :at, :index, CAST('[3]' AS jsonb), :wait, :pushed) RETURNING id"
                        ),
                        {"user": user_id, "title": f"标题 {index}", "data": f'{{"type": "volunteer_approved", "n": "{index}"}}',
                         "urgent": index % 2 == 0, "key": f"cause:{index}" if index % 3 else None, "at": moment,
                         "read": "2026-12-07T09:00:00.123456+08:00" if index % 2 else None,
                         "status": "pending" if index % 2 else "sent", "wait": "outage" if index == 1 else None, "index": index,
                         "pushed": None if index % 2 else moment},
                    ).scalar()
                    connection.execute(
                        sa.text(
                            "INSERT INTO push_receipts (notification_id, channel, delivered, status, vendor_at, received_at) "
                            "VALUES (:notification, 'hms', true, '0', NULL, now())"
                        ),
                        {"notification": notification},
                    )
            before = connection.execute(sa.text(NOTIFICATION_ROWS)).all()
            receipts = connection.execute(sa.text(RECEIPT_ROWS)).all()
        assert len(before) == 2 * len(EDGE_NOTIFICATIONS) and len(receipts) == len(before)

        result = _flask(["db", "upgrade", "0021"], url, tmp_path)
        assert result.returncode == 0, result.stderr
        with engine.begin() as connection:
            assert connection.execute(sa.text(NOTIFICATION_ROWS)).all() == before
            assert connection.execute(sa.text(RECEIPT_ROWS)).all() == receipts
            placed = dict(connection.execute(sa.text(
                "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
                "CAST(CAST(tableoid AS regclass) AS text) FROM notifications WHERE user_id = :user"
            ), {"user": first}).all())
            made = {
                name for name, in connection.execute(sa.text(
                    "SELECT CAST(CAST(inhrelid AS regclass) AS text) FROM pg_inherits "
                    "WHERE inhparent = CAST('notifications' AS regclass)"
                ))
            }
            # Each receipt carries its notification's created_at; each key its notification's.
            receipt_times = connection.execute(sa.text(
                "SELECT count(*) FROM push_receipts r JOIN notifications n "
                "ON n.id = r.notification_id AND n.created_at = r.notification_created_at"
            )).scalar()
            keys = connection.execute(sa.text(
                "SELECT user_id, dedupe_key, created_at FROM notification_dedupe ORDER BY user_id, dedupe_key"
            )).all()
            # The sequence goes on after the copied ids; a taken key is still refused.
            new_id = connection.execute(sa.text(
                "INSERT INTO notifications (user_id, kind, title, body, data, urgent, created_at, push_status, "
                "push_due_at, push_attempts, push_device_ids) VALUES (:user, 'volunteer_approved', 't', 'b', "
                "CAST('{}' AS jsonb), false, now(), 'pending', now(), 0, CAST('[]' AS jsonb)) RETURNING id"
            ), {"user": first}).scalar()
            taken = connection.execute(sa.text(
                "INSERT INTO notification_dedupe (user_id, dedupe_key, created_at) VALUES (:user, 'cause:1', now()) "
                "ON CONFLICT DO NOTHING RETURNING user_id"
            ), {"user": first}).all()
        assert placed == {_utc_text(moment): name for moment, name in EDGE_NOTIFICATIONS}
        assert {name for _, name in EDGE_NOTIFICATIONS} | {"notifications_default"} <= made
        assert receipt_times == len(receipts)
        assert keys == sorted(
            (row.user_id, row.dedupe_key, row.created_at) for row in before if row.dedupe_key is not None
        )
        assert new_id > max(row.id for row in before) and taken == []

        down = _flask(["db", "downgrade", "0020"], url, tmp_path)
        assert down.returncode == 0, down.stderr
        with engine.connect() as connection:
            after = connection.execute(sa.text(NOTIFICATION_ROWS)).all()
            receipts_after = connection.execute(sa.text(RECEIPT_ROWS)).all()
            kind = connection.execute(sa.text("SELECT relkind FROM pg_class WHERE relname = 'notifications'")).scalar()
        assert after[:-1] == before and after[-1].id == new_id
        assert receipts_after == receipts
        assert kind == "r"  # a plain table again
        inspector = sa.inspect(engine)
        assert inspector.get_pk_constraint("notifications")["constrained_columns"] == ["id"]
        assert ("uq_notifications_user_dedupe", ["user_id", "dedupe_key"]) in [
            (u["name"], u["column_names"]) for u in inspector.get_unique_constraints("notifications")
        ]
        assert [fk["referred_table"] for fk in inspector.get_foreign_keys("push_receipts") if fk["constrained_columns"] == ["notification_id"]] == ["notifications"]
        assert "notification_dedupe" not in inspector.get_table_names()
    finally:
        engine.dispose()


@pytest.mark.sqlite  # the PostgreSQL conversion has its own test above
def test_0021_on_sqlite_keeps_every_notification_its_keys_and_receipts_and_its_downgrade_brings_them_back(
    app: Flask, new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    assert _flask(["db", "upgrade", "0020"], url, tmp_path).returncode == 0
    first, second = _users_at(url, app, 2)
    engine = sa.create_engine(normalise_database_url(url))
    try:
        with engine.begin() as connection:
            for index, (moment, _) in enumerate(EDGE_NOTIFICATIONS):
                for user_id in (first, second):
                    notification = connection.execute(
                        sa.text(
                            "INSERT INTO notifications (user_id, kind, title, body, data, urgent, dedupe_key, created_at, "
                            "push_status, push_due_at, push_attempts, push_device_ids) VALUES (:user, 'volunteer_approved', "
                            "'标题', '正文', '{}', 0, :key, :at, 'pending', :at, 0, '[]') RETURNING id"
                        ),
                        {"user": user_id, "key": f"cause:{index}" if index % 3 else None, "at": _utc_text(moment)},
                    ).scalar()
                    connection.execute(
                        sa.text(
                            "INSERT INTO push_receipts (notification_id, channel, delivered, status, received_at) "
                            "VALUES (:notification, 'hms', 1, '0', '2026-12-07 00:00:00')"
                        ),
                        {"notification": notification},
                    )
            before = connection.execute(sa.text(NOTIFICATION_ROWS)).all()
            receipts = connection.execute(sa.text(RECEIPT_ROWS)).all()

        result = _flask(["db", "upgrade", "0021"], url, tmp_path)
        assert result.returncode == 0, result.stderr
        with engine.connect() as connection:
            assert connection.execute(sa.text(NOTIFICATION_ROWS)).all() == before
            assert connection.execute(sa.text(RECEIPT_ROWS)).all() == receipts
            receipt_times = connection.execute(sa.text(
                "SELECT count(*) FROM push_receipts r JOIN notifications n "
                "ON n.id = r.notification_id AND n.created_at = r.notification_created_at"
            )).scalar()
            keys = connection.execute(sa.text(
                "SELECT user_id, dedupe_key, created_at FROM notification_dedupe ORDER BY user_id, dedupe_key"
            )).all()
        assert receipt_times == len(receipts)
        assert keys == sorted((row.user_id, row.dedupe_key, row.created_at) for row in before if row.dedupe_key is not None)

        down = _flask(["db", "downgrade", "0020"], url, tmp_path)
        assert down.returncode == 0, down.stderr
        with engine.connect() as connection:
            assert connection.execute(sa.text(NOTIFICATION_ROWS)).all() == before
            assert connection.execute(sa.text(RECEIPT_ROWS)).all() == receipts
        inspector = sa.inspect(engine)
        assert ("uq_notifications_user_dedupe", ["user_id", "dedupe_key"]) in [
            (u["name"], u["column_names"]) for u in inspector.get_unique_constraints("notifications")
        ]
        assert "notification_dedupe" not in inspector.get_table_names()
    finally:
        engine.dispose()
