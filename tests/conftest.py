"""Test harness: one schema per session (migrated, as in production), each test rolled back.

Set TEST_DATABASE_URL to run the same suite against PostgreSQL. Tests marked ``committing`` (race
tests) see real commits across several connections; they get their own setup and clean-up.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import sqlalchemy as sa
from alembic import command as alembic_command
from celery import _state as celery_state
from click.testing import Result
from cryptography.fernet import Fernet
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm

from app import create_app
from core.extensions import db, limiter, migrate
from grids.models import Area, AreaLevel
from tests import factories
from volunteers.models import VolunteerKind


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "committing: the test commits for real (race tests)")
    config.addinivalue_line(
        "markers", "standby: reads a streaming standby of a PostgreSQL primary the test makes (tests/standby.py)"
    )
    config.addinivalue_line(
        "markers", "postgresql: PostgreSQL's own SQL (a benchmark's hand-written floor), run in the PostgreSQL pass only"
    )
    config.addinivalue_line(
        "markers", "sqlite: SQLite's own path (a migration's SQLite branch), run in the SQLite pass only"
    )


#: Markers of tests that only mean something on PostgreSQL (see below).
POSTGRESQL_ONLY = ("standby", "postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``standby`` and ``postgresql`` tests run once, in the PostgreSQL pass (CI runs both,
    .ci/run): a streaming standby is PostgreSQL's, and so is the SQL of the benchmark floors they
    check, so the SQLite pass deselects them (listed as deselected, never counted as passed or
    skipped) rather than make a PostgreSQL primary and standby a second time. ``sqlite`` tests
    (SQLite's own branch of a migration) are deselected in the PostgreSQL pass alike."""
    def other_dialect_only(item: pytest.Item) -> bool:
        if _on_postgresql():
            return item.get_closest_marker("sqlite") is not None
        return any(item.get_closest_marker(name) for name in POSTGRESQL_ONLY)

    deselected = [item for item in items if other_dialect_only(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not other_dialect_only(item)]


def _on_postgresql() -> bool:
    return os.environ.get("TEST_DATABASE_URL", "").startswith("postgres")


# Property tests assert outcomes, not speed: hypothesis' per-example deadline is a timing assert
# that fails on a loaded machine. Speed is shown by benchmarks (bench/).
hypothesis.settings.register_profile("shouwang", deadline=None)
hypothesis.settings.load_profile("shouwang")


def _database_url(tmp_dir: str) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_dir}/test.db"


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    instance = tmp_path_factory.mktemp("instance")
    application = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": _database_url(str(instance)),
            "SECRET_KEY": "test-secret",
            "JWT_SECRET_KEY": "test-jwt-secret-that-is-long-enough-for-hs256",
            "PII_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PII_HASH_KEY": "test-pii-hash-key",
            # Cheap hashing in tests; production uses the OWASP minimum.
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 8,
            "ARGON2_PARALLELISM": 1,
            "RATELIMIT_STORAGE_URI": "memory://",
            # Export jobs' files in the session's temporary folder, not the checkout's instance/.
            "REPORTS_EXPORT_DIR": str(instance / "exports"),
        }
    )
    application.test_client_class = RequestIsolatingClient
    with application.app_context():
        _drop_schema()
        _migrate_schema()
        # Connections opened before the schema had the roll-ups' notice trigger (migration 0024)
        # would fold at every commit (reports/rollups/listeners.py): the suite uses fresh ones.
        db.engine.dispose()
    yield application
    with application.app_context():
        db.session.remove()
        _drop_schema()
        db.engine.dispose()


def _migrate_schema() -> None:
    """The schema production gets, `flask db upgrade`, so a constraint a migration lacks is missing
    here too (create_all would hide it). In this process, through Flask-Migrate's configuration;
    it also seeds the builtin volunteer kinds. About 0.3 s on SQLite, 0.6 s on PostgreSQL."""
    config = migrate.get_config()
    config.attributes["configure_logger"] = False  # keep pytest's logging (migrations/env.py)
    alembic_command.upgrade(config, "head")


def _drop_schema() -> None:
    """Everything the models or the migrations made, left over from an interrupted run too."""
    db.drop_all()
    with db.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture(autouse=True)
def _isolated(app: Flask, request: pytest.FixtureRequest) -> Iterator[None]:
    """Run each test inside an outer transaction that is rolled back afterwards.

    Every request gets its own session on the same connection, joined through SAVEPOINTs, so the
    app's commit at the end of a request commits only the savepoint.
    """
    limiter.reset()
    # Celery's "inside a task" flag is one global that each in-process task saves and restores
    # around its run; tasks run at once on several threads (race tests, the live server) can leave
    # it set, and a later test's `.get()` then refuses as if it were inside a task. The product
    # never waits on a result; a test starts from the state of a fresh process.
    celery_state._set_task_join_will_block(False)
    if request.node.get_closest_marker("committing"):
        yield
        _truncate_all(app)
        return
    if "demo_city" in request.fixturenames:
        # The module's seeded city (below): this test runs in a savepoint after the seed, rolled back.
        yield from _in_savepoint(app, request.getfixturevalue("demo_city").connection)
        return
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        try:
            with _sessions_on(app, connection):
                yield
        finally:
            outer.rollback()
            connection.close()


def _test_session(connection: sa.Connection) -> orm.scoped_session[orm.Session]:
    """Sessions on the test's connection, one per app context, each joined through a SAVEPOINT."""
    return orm.scoped_session(
        orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint"), scopefunc=_app_ctx_id
    )


@contextmanager
def _sessions_on(app: Flask, connection: sa.Connection) -> Iterator[None]:
    """The app's sessions on ``connection`` (see :func:`_test_session`) for the block, then its own again."""
    original = db.session
    db.session = _test_session(connection)
    try:
        with app.app_context():
            yield
    finally:
        db.session.remove()
        db.session = original


def _in_savepoint(app: Flask, connection: sa.Connection) -> Iterator[None]:
    with app.app_context():
        savepoint = connection.begin_nested()
        try:
            with _sessions_on(app, connection):
                yield
        finally:
            savepoint.rollback()


@dataclass
class DemoCity:
    """The demo city seeded once for a module (``seed_demo`` is the slow part of its tests), on a
    connection whose transaction is rolled back after the module; each test runs in a savepoint
    after the seed, rolled back, so every test meets the city as freshly seeded. Every test of a
    module that uses it must use it: the module's open transaction holds the demo city's unique
    codes (PostgreSQL) or the whole file's write lock (SQLite) until the module ends."""

    connection: sa.Connection
    logins: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def demo_city(app: Flask) -> Iterator[DemoCity]:
    from demo_data import seed_demo

    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = _test_session(connection)
        try:
            with app.app_context():
                logins = seed_demo()
                assert logins is not None, "the module's database already had a demo city"
                db.session.commit()  # the seed's savepoint released; the commit folds it into the roll-ups
                db.session.remove()
            db.session = original
            yield DemoCity(connection, logins)
        finally:
            db.session = original
            outer.rollback()
            connection.close()


def _truncate_all(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                if table.name == Area.__tablename__:
                    # Areas reference their parent, checked row by row on SQLite: leaves first.
                    for depth in range(len(AreaLevel) - 1, -1, -1):
                        connection.execute(table.delete().where(table.c.depth == depth))
                elif chain := [fk.parent for fk in table.foreign_keys if fk.column.table is table]:
                    # Rows naming another of the same table with RESTRICT (a reversal and the entry it
                    # reverses, a correction and its original), which SQLite checks row by row: the
                    # rows nothing names first, until none is left.
                    named = sa.union(*[sa.select(column).where(column.is_not(None)) for column in chain])
                    while connection.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                        connection.execute(table.delete().where(table.c.id.not_in(named)))
                elif table.name != VolunteerKind.__tablename__:
                    connection.execute(table.delete())
            connection.execute(
                sa.delete(VolunteerKind).where(VolunteerKind.builtin.is_(False))
            )


class RequestIsolatingClient(FlaskClient):
    """Sends each request from an empty context, as a server would.

    Flask reuses an app context that is already pushed, so without this a request would share the
    test's database session, and a refused request's rollback would wipe the test's own setup. Here
    each request pushes its own app context and so gets its own session on the test's connection
    (a SAVEPOINT). Afterwards the test's session is expired so it reads what the request wrote.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            factories.fold_into_rollups()
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            db.session.expire_all()
        return response


@pytest.fixture
def photo_dir(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Report photos stored locally in the test's own folder."""
    folder = tmp_path / "photos"
    monkeypatch.setitem(app.config, "REPORT_PHOTO_DIR", str(folder))
    monkeypatch.setitem(app.config, "REPORT_PHOTO_STORAGE", "local")
    return folder


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def run_cli(app: Flask, args: list[str], **kwargs: Any) -> Result:
    """A `flask` command run as an operator runs it: from an empty context, so with an app context
    and a database session of its own (its commit or rollback is its own), as requests have above."""

    def invoke() -> Result:
        with app.app_context():
            return app.test_cli_runner().invoke(args=args, **kwargs)

    result = contextvars.Context().run(invoke)
    db.session.expire_all()
    return result


@dataclass
class Tree:
    """city → districts A, B → sub-districts → communities A1, B1 (+A2) → grids."""

    city: Area
    district_a: Area
    district_b: Area
    subdistrict_a: Area
    subdistrict_b: Area
    community_a: Area
    community_a2: Area
    community_b: Area
    grid_a: Area
    grid_a_east: Area
    grid_a2: Area
    grid_b: Area


@pytest.fixture
def tree() -> Tree:
    city = factories.make_area(AreaLevel.CITY, name="包头市", code="150200")
    district_a = factories.make_area(AreaLevel.DISTRICT, city, name="东河区")
    district_b = factories.make_area(AreaLevel.DISTRICT, city, name="昆都仑区")
    sub_a = factories.make_area(AreaLevel.SUBDISTRICT, district_a, name="和平路街道")
    sub_b = factories.make_area(AreaLevel.SUBDISTRICT, district_b, name="少先路街道")
    com_a = factories.make_area(AreaLevel.COMMUNITY, sub_a, name="东站社区")
    com_a2 = factories.make_area(AreaLevel.COMMUNITY, sub_a, name="北梁社区")
    com_b = factories.make_area(AreaLevel.COMMUNITY, sub_b, name="友谊社区")
    return Tree(
        city=city,
        district_a=district_a,
        district_b=district_b,
        subdistrict_a=sub_a,
        subdistrict_b=sub_b,
        community_a=com_a,
        community_a2=com_a2,
        community_b=com_b,
        grid_a=factories.make_area(AreaLevel.GRID, com_a, boundary=factories.square(109.84, 40.65)),
        grid_a_east=factories.make_area(AreaLevel.GRID, com_a, boundary=factories.square(109.85, 40.65)),
        grid_a2=factories.make_area(AreaLevel.GRID, com_a2, boundary=factories.square(109.84, 40.66)),
        grid_b=factories.make_area(AreaLevel.GRID, com_b, boundary=factories.square(109.80, 40.62)),
    )
