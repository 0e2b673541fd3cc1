"""``flask db upgrade`` on an empty database must produce exactly the models."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.config import normalise_database_url
from core.extensions import db
from volunteers.models import BUILTIN_KINDS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """A brand-new database of the kind under test (SQLite file, or a fresh PostgreSQL database)."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path}/migrations.db"
        return
    admin_url = sa.make_url(normalise_database_url(base))
    name = f"{admin_url.database}_migr_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def test_upgrade_from_empty_matches_the_models(empty_database: str, tmp_path: Path) -> None:
    result = _flask(["db", "upgrade"], empty_database, tmp_path)
    assert result.returncode == 0, result.stderr

    engine = sa.create_engine(normalise_database_url(empty_database))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "render_as_batch": True}
            )
            differences = compare_metadata(context, db.metadata)
            kinds = connection.execute(sa.text("SELECT code FROM volunteer_kinds ORDER BY code")).scalars().all()
    finally:
        engine.dispose()
    assert differences == []
    assert kinds == sorted(kind["code"] for kind in BUILTIN_KINDS)


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
