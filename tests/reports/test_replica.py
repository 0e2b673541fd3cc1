"""Reports read from a PostgreSQL streaming replica (REPORTS_DATABASE_URL): a real standby
(pg_basebackup -R, streaming) of a small primary cluster the tests make with the local PostgreSQL's
own server programs (tests/standby.py says why not the test database's cluster), its lag visible in
``as_of``; an unreachable replica answers 503, never a 500."""

from __future__ import annotations

import csv
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery.signals import worker_process_init
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from app import create_app
from core.errors import ApiError
from core.extensions import db
from core.tasks import celery
from grids.models import Area, AreaLevel
from reports.replica import RETRY_AFTER_SECONDS, replica_as_of, replica_engine
from tests import factories
from tests.conftest import RequestIsolatingClient, _migrate_schema
from tests.problems import EN, assert_problem
from tests.standby import ScratchPrimary, Standby

SHANGHAI = ZoneInfo("Asia/Shanghai")
SEPTEMBER = {"period": "month", "value": "2026-09"}
_SHARED_CONFIG = (
    "TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "JWT_SECRET_KEY", "PII_ENCRYPTION_KEY", "PII_HASH_KEY",
    "RATELIMIT_STORAGE_URI", "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM",
)  # fmt: skip


def _reports_app(app: Flask, reports_url: str, database: URL | None = None) -> Flask:
    """An app like the test one, on its database (or ``database``), whose reports read ``reports_url``."""
    config = {key: app.config[key] for key in _SHARED_CONFIG}
    if database is not None:
        config["SQLALCHEMY_DATABASE_URI"] = database.render_as_string(hide_password=False)
    previous = celery.flask_app
    other = create_app({**config, "REPORTS_DATABASE_URL": reports_url})
    celery.flask_app = previous  # the shared Celery app keeps running the suite's tasks in the suite's app
    other.test_client_class = RequestIsolatingClient
    return other


def _dispose(other: Flask) -> None:
    with other.app_context():
        db.engine.dispose()
    engine = replica_engine(other)
    if engine is not None:
        engine.dispose()


def _september_volunteer(grid: Area, day: int) -> Any:
    volunteer = factories.make_volunteer(grid)
    volunteer.created_at = datetime(2026, 9, day, 10, tzinfo=SHANGHAI).astimezone(UTC)
    db.session.flush()
    return volunteer


def _as_of(body: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(body["as_of"])


# --- as_of of a replica -------------------------------------------------------------------------


def test_as_of_is_the_last_replayed_commit_on_a_standby_and_now_elsewhere() -> None:
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    replayed = datetime(2026, 12, 6, 16, 59, 58, tzinfo=ZoneInfo("Asia/Shanghai"))  # 08:59:58 UTC

    assert replica_as_of(True, replayed, now) == datetime(2026, 12, 6, 8, 59, 58, tzinfo=UTC)
    assert replica_as_of(False, replayed, now) == now  # a promoted standby, or a primary
    # The primary's clock ahead of ours: never figures "as of" the future.
    assert replica_as_of(True, now + timedelta(seconds=3), now) == now
    with pytest.raises(ApiError) as refused:  # replayed nothing since it started: age unknown
        replica_as_of(True, None, now)
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": str(RETRY_AFTER_SECONDS)}


# --- an unreachable replica ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening, held for the module: a connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture(scope="module")
def unreachable_replica_app(app: Flask, closed_port: int) -> Iterator[Flask]:
    other = _reports_app(app, f"postgresql://postgres@127.0.0.1:{closed_port}/reports?connect_timeout=3")
    yield other
    _dispose(other)


def test_a_forked_worker_gets_fresh_replica_connections(unreachable_replica_app: Flask) -> None:
    engine = replica_engine(unreachable_replica_app)
    assert engine is not None
    parents_pool, suites_app = engine.pool, celery.flask_app
    celery.flask_app = unreachable_replica_app
    try:
        worker_process_init.send(sender=None)
    finally:
        celery.flask_app = suites_app
    assert engine.pool is not parents_pool


def test_an_unreachable_replica_is_503_with_retry_after_for_every_report(unreachable_replica_app: Flask) -> None:
    client = unreachable_replica_app.test_client()
    _, district, _, community, grid = factories.make_branch()
    staff = factories.headers_for(factories.make_user("staff", district), **EN)
    volunteer = factories.headers_for(factories.make_volunteer(grid).user, **EN)
    requests = (
        ("/api/v1/reports/participation", staff, {"area_id": community.id, **SEPTEMBER}),
        ("/api/v1/reports/coverage", staff, {"area_id": community.id, **SEPTEMBER}),
        ("/api/v1/reports/participation/export", staff, {"area_id": community.id, "format": "csv", **SEPTEMBER}),
        ("/api/v1/me/participation", volunteer, SEPTEMBER),
    )
    for path, headers, query in requests:
        response = client.get(path, query_string=query, headers=headers)
        body = assert_problem(response, 503, "service_unavailable")
        assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert "reports database" in body["detail"]
    # The caller was authenticated on the main database first: a bad token is 401, not 503.
    response = client.get("/api/v1/reports/participation", query_string={"area_id": community.id, **SEPTEMBER})
    assert_problem(response, 401, "unauthorized")
    # Nothing else is sent to the replica: the rest of the API answers.
    assert client.get("/api/v1/me", headers=staff).status_code == 200


# --- a real standby -----------------------------------------------------------------------------


@dataclass
class Replication:
    """A primary of the tests' own and a streaming standby of it; ``app`` writes on the primary and
    reads its reports from the standby."""

    primary: ScratchPrimary
    standby: Standby
    app: Flask


@pytest.fixture(scope="module")
def replication(app: Flask) -> Iterator[Replication]:
    """About 3 s to make (tests/standby.py says why the primary is not the tests' database)."""
    with ScratchPrimary() as primary, Standby(primary=primary.url) as standby:
        other = _reports_app(app, standby.url.render_as_string(hide_password=False), database=primary.url)
        with other.app_context():
            _migrate_schema()
        print(f"primary and standby: {primary.notes | standby.notes}")  # seen with -s (README's figures)
        try:
            yield Replication(primary, standby, other)
        finally:
            _dispose(other)


def _participation(client: FlaskClient, headers: dict[str, str], area_id: int) -> dict[str, Any]:
    response = client.get("/api/v1/reports/participation", query_string={"area_id": area_id, **SEPTEMBER},
                          headers=headers)  # fmt: skip
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _coverage(client: FlaskClient, headers: dict[str, str], area_id: int) -> dict[str, Any]:
    response = client.get("/api/v1/reports/coverage", query_string={"area_id": area_id, **SEPTEMBER}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _export_rows(client: FlaskClient, headers: dict[str, str], area_id: int) -> list[dict[str, str]]:
    response = client.get("/api/v1/reports/participation/export",
                          query_string={"area_id": area_id, "format": "csv", **SEPTEMBER}, headers={**headers, **EN})  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))


@pytest.mark.committing
@pytest.mark.standby
def test_reports_read_the_standby_and_its_lag_shows_in_as_of(replication: Replication) -> None:
    primary, standby = replication.app, replication.standby
    client = primary.test_client()
    with primary.app_context():
        _, district, _, community, grid = factories.make_branch()
        first = _september_volunteer(grid, 3)
        _september_volunteer(grid, 4)
        staff = factories.headers_for(factories.make_user("staff", district))
        mine = factories.headers_for(first.user)
        district_id, community_id, grid_id = district.id, community.id, grid.id
        before_commit = datetime.now(UTC)
        db.session.commit()

    lag = standby.wait_for_replay()
    print(f"standby replayed the commit in {lag:.3f} s")
    caught_up = _participation(client, staff, community_id)
    assert caught_up["figures"]["volunteers"]["registered"] == 2
    assert before_commit <= _as_of(caught_up) <= datetime.now(UTC)

    standby.pause_replay()
    try:
        paused = _as_of(_participation(client, staff, community_id))
        with primary.app_context():
            _september_volunteer(db.session.get_one(Area, grid_id), 5)
            factories.make_area(AreaLevel.GRID, db.session.get_one(Area, community_id),
                                boundary=factories.square(109.86, 40.65))  # fmt: skip
            # A caller whose login is newer than the standby's data: authenticated on the primary.
            late_staff = factories.headers_for(factories.make_user("staff", db.session.get_one(Area, district_id)))
            written_at = datetime.now(UTC)
            db.session.commit()

        frozen = _participation(client, late_staff, community_id)
        assert frozen["figures"]["volunteers"]["registered"] == 2  # the new volunteer is not there yet
        assert [child["id"] for child in frozen["children"]] == [grid_id]  # nor the new grid
        assert _as_of(frozen) == paused < written_at  # and as_of says how old the figures are
        coverage = _coverage(client, late_staff, community_id)
        assert [row["grid_id"] for row in coverage["grids"]] == [grid_id]
        assert _as_of(coverage) == paused
        rows = _export_rows(client, late_staff, community_id)
        assert [(row["Level"], row["Volunteers registered"]) for row in rows] == [("community", "2"), ("grid", "2")]
        my_summary = client.get("/api/v1/me/participation", query_string=SEPTEMBER, headers=mine)
        assert my_summary.status_code == 200, my_summary.get_json()
        assert _as_of(my_summary.get_json()) == paused
    finally:
        standby.resume_replay()

    standby.wait_for_replay()
    resumed = _participation(client, staff, community_id)
    assert resumed["figures"]["volunteers"]["registered"] == 3
    assert len(resumed["children"]) == 2
    assert _as_of(resumed) >= written_at > paused
