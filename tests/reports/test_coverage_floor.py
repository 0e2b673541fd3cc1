"""The coverage report's benchmark floor (``bench/coverage_floor.py``) agrees with the endpoint, figure
for figure, on the hand-built four weeks of ``test_coverage.py`` and a grid in another zone.

PostgreSQL only (``postgresql``: the floor is PostgreSQL's SQL; the SQLite pass deselects it). The
floor reads over a psycopg connection of its own, as in the benchmark, and a connection of its own
sees only committed rows, so the test commits its data (``committing``: the shared clean-up
empties the tables afterwards).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from bench.coverage_floor import UNCOVERED_SHIFTS_SHOWN, coverage
from bench.report_differences import coverage_differences
from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel
from tests import factories
from tests.conftest import Tree
from tests.reports.test_coverage import DAYS, SHANGHAI, _at, _report, _served, _shift, _start, world  # noqa: F401

pytestmark = [pytest.mark.postgresql, pytest.mark.committing]

TOKYO = ZoneInfo("Asia/Tokyo")


@dataclass
class Committed:
    world: Tree
    tokyo: Area
    headers: dict[str, str]


@pytest.fixture
def committed(app: Flask, request: pytest.FixtureRequest) -> Iterator[Committed]:
    """``world``, committed, plus a grid of district A in Tokyo's zone: a shift at 00:30 Tokyo time
    on the first day (23:30 the day before in Shanghai: inside Tokyo's period) served, and more
    ended shifts nobody came to than the report lists."""
    with app.app_context():
        built: Tree = request.getfixturevalue("world")
        tokyo = factories.make_area(
            AreaLevel.GRID, built.community_a, boundary=factories.square(110.5, 41.5), timezone="Asia/Tokyo"
        )
        volunteer = factories.make_volunteer(tokyo)
        _served(_shift(tokyo, _at(0, 0, TOKYO) + timedelta(minutes=30), 60, 1), volunteer, "verified", 60)
        for n in range(UNCOVERED_SHIFTS_SHOWN + 2):
            _shift(tokyo, _at(1 + n // 2, 8 + 6 * (n % 2), TOKYO), 90, 2)
        headers = factories.headers_for(factories.make_user("staff", built.district_a))
        db.session.commit()
        yield Committed(built, tokyo, headers)
        db.session.remove()


def _floor(app: Flask, area_id: int, kind: str, first: date, last: date, as_of: datetime) -> dict[str, Any]:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
        answer = coverage(connection, area_id, first, last, "Asia/Shanghai", kind, as_of)
    return json.loads(json.dumps(answer))


def _agree(app: Flask, response: Any, area: Area, kind: str, first: date, last: date) -> dict[str, Any]:
    """The endpoint's answer (without ``as_of``), after checking that the floor's equals it."""
    assert response.status_code == 200, response.get_json()
    api = response.get_json()
    floor = _floor(app, area.id, kind, first, last, datetime.fromisoformat(api["as_of"]))
    assert coverage_differences(api, floor) == []  # as the benchmark checks it
    del api["as_of"]
    assert floor == api
    return api


def _month(day: date) -> tuple[str, date, date]:
    first = day.replace(day=1)
    following = (first + timedelta(days=31)).replace(day=1)
    return f"{first.year:04d}-{first.month:02d}", first, following - timedelta(days=1)


def test_the_floor_agrees_with_the_endpoint_on_the_four_weeks(
    app: Flask, client: FlaskClient, committed: Committed
) -> None:
    world, tokyo = committed.world, committed.tokyo
    first, last = _start(), _start() + timedelta(days=DAYS - 1)
    api = _agree(app, _report(client, world.district_a, committed.headers), world.district_a, "range", first, last)

    # Not agreement on nothing: the figures test_coverage.py asserts are there, and the Tokyo grid's.
    assert api["totals"]["grid_count"] == 4 and api["totals"]["grids_without_shifts"] == 1
    by_id = {grid["grid_id"]: grid for grid in api["grids"]}
    assert by_id[world.grid_a.id]["served_minutes"] == 360 and by_id[world.grid_a.id]["coverage_change"] == 14.3
    assert by_id[world.grid_a.id]["days_without_patrol_count"] == DAYS - 4
    assert by_id[tokyo.id]["served_minutes"] == 60 and by_id[tokyo.id]["days_without_patrol_count"] == DAYS - 1
    assert by_id[tokyo.id]["uncovered_shift_count"] == UNCOVERED_SHIFTS_SHOWN + 2
    assert len(by_id[tokyo.id]["uncovered_shifts"]) == UNCOVERED_SHIFTS_SHOWN
    assert api["below_quota"][0]["grid_id"] == world.grid_a_east.id

    # A community: only its grids and its quotas.
    _agree(app, _report(client, world.community_a, committed.headers), world.community_a, "range", first, last)


def test_the_floor_agrees_on_calendar_months_the_current_one_too(
    app: Flask, client: FlaskClient, committed: Committed
) -> None:
    """The month the four weeks start in (its previous period: the month before), and the month
    under way (its days counted only up to yesterday)."""
    today = utcnow().astimezone(SHANGHAI).date()
    for day in (_start(), today):
        value, first, last = _month(day)
        response = _report(client, committed.world.district_a, committed.headers, period="month", value=value)
        api = _agree(app, response, committed.world.district_a, "month", first, last)
        assert api["period"]["label"] == value
