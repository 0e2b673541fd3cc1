"""Shared by the rewards tests: the ledger-sum invariant after every test, rules and patrols via the API.

``from tests.rewards.support import ledger_invariant  # noqa: F401`` in a test module makes the
invariant (every balance equals the sum of its entries, none negative) an assertion after each of
its tests, committing race tests included.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.extensions import db
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, PointBalance
from tests import factories
from tests.problems import EN

API = "/api/v1"
#: The middle of the test tree's grid_a (the 0.01° square from 109.84, 40.65).
INSIDE = (40.655, 109.845)
#: About 5 km east of grid_a: outside the geofence.
FAR = (40.655, 109.92)


@pytest.fixture(autouse=True)
def ledger_invariant(app: Flask) -> Iterator[None]:
    """After the test: balance == sum(entries) >= 0 for every volunteer, and no entry is zero."""
    yield
    with app.app_context():
        assert ledger.check_invariant() == []
        assert db.session.scalar(sa.select(sa.func.count()).where(PointBalance.balance < 0)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).where(LedgerEntry.amount == 0)) == 0


def as_(who: Any, **extra: str) -> dict[str, str]:
    user = getattr(who, "user", who)
    return {**factories.headers_for(user), **EN, **extra}


def rule_body(**overrides: Any) -> dict[str, Any]:
    """A rule that applied from a month ago: 10 points an hour in 15-minute units, no cap."""
    body: dict[str, Any] = {
        "effective_from": (utcnow() - timedelta(days=30)).isoformat(),
        "points_per_hour": 10,
        "rounding_minutes": 15,
        "report_bonus": {"red": 20, "orange": 10, "yellow": 5, "green": 2},
    }
    body.update(overrides)
    return body


def set_rule(client: Any, admin: Any, city: Any, **overrides: Any) -> dict[str, Any]:
    response = client.post(f"{API}/areas/{city.id}/point-rules", json=rule_body(**overrides), headers=as_(admin))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def event(device_time: datetime, *, at: tuple[float, float] = INSIDE, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": str(uuid.uuid4()),
        "lat": at[0],
        "lon": at[1],
        "accuracy_m": 10,
        "device_time": device_time.isoformat(),
        **extra,
    }


def check_in(client: Any, volunteer: Any, assignment: Any, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"{API}/assignments/{assignment.id}/check-in", json=body, headers=as_(volunteer, **headers))


def check_out(client: Any, volunteer: Any, assignment: Any, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"{API}/assignments/{assignment.id}/check-out", json=body, headers=as_(volunteer, **headers))


def shift_for(grid: Any, volunteer: Any, *, started_ago: timedelta, hours: float = 2) -> tuple[Any, Any]:
    shift = factories.make_shift(grid, starts_in=-started_ago, hours=hours)
    return shift, factories.make_assignment(shift, volunteer)


def serve(
    client: Any, grid: Any, volunteer: Any, *, started_ago: timedelta = timedelta(hours=3),
    hours: float = 2, minutes: int | None = None,
) -> dict[str, Any]:
    """A shift served through the API: check-in at the start, check-out ``minutes`` later (default: the end)."""
    shift, assignment = shift_for(grid, volunteer, started_ago=started_ago, hours=hours)
    assert check_in(client, volunteer, assignment, event(shift.starts_at)).status_code == 200
    leave = shift.starts_at + timedelta(minutes=minutes) if minutes is not None else shift.ends_at
    response = check_out(client, volunteer, assignment, event(leave))
    assert response.status_code == 200, response.get_json()
    patrol = response.get_json()
    return {"patrol": patrol, "shift": shift, "assignment": assignment}


def balance(client: Any, volunteer: Any) -> int:
    response = client.get(f"{API}/me/points", headers=as_(volunteer))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["balance"]


def history(client: Any, volunteer: Any, **params: Any) -> list[dict[str, Any]]:
    """Every entry of the volunteer's history, following the cursor, newest first."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 100, **params} | ({"cursor": cursor} if cursor else {})
        response = client.get(f"{API}/me/points/history", query_string=query, headers=as_(volunteer))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
