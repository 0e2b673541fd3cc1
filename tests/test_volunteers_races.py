"""Concurrent requests with real commits on separate connections (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import orm

from accounts.models import User
from core.audit import AuditEntry
from core.extensions import db
from tests import factories, races
from volunteers.models import StatusChange, Volunteer

pytestmark = pytest.mark.committing

API = "/api/v1/volunteers"


def run_at_once(app: Flask, requests: list[tuple[str, str, dict[str, Any], dict[str, str]]]) -> list[Any]:
    """Send each (method, path, json, headers) at once; (status, json) per request."""
    return [(response.status_code, response.get_json()) for response in races.at_once(app, requests)]


def small_tree() -> tuple[Any, Any]:
    _city, _district, _subdistrict, community, grid = factories.make_branch()
    return community, grid


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("approve", {"certificate_no": "BT-1"}), ("reject", {"reason": "资料不全"})),
        (("approve", {"certificate_no": "BT-1"}), ("approve", {"certificate_no": "BT-2"})),
    ],
)
def test_two_organisers_vetting_at_once_exactly_one_wins(app: Flask, first, second) -> None:
    with app.app_context():
        community, grid = small_tree()
        volunteer = factories.make_volunteer(grid, status="pending")
        organisers = [factories.make_user("organiser", community) for _ in range(2)]
        headers = [factories.headers_for(user) for user in organisers]
        volunteer_id = volunteer.id
        db.session.commit()

    results = run_at_once(
        app,
        [
            ("post", f"{API}/{volunteer_id}/{first[0]}", first[1], headers[0]),
            ("post", f"{API}/{volunteer_id}/{second[0]}", second[1], headers[1]),
        ],
    )

    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409], results
    winner = next(body for status, body in results if status == 200)
    loser = next(body for status, body in results if status == 409)
    assert loser["code"] == "invalid_status_transition"
    with app.app_context():
        stored = db.session.get(Volunteer, volunteer_id)
        assert stored.status == winner["status"]
        changes = db.session.scalars(
            sa.select(StatusChange).where(StatusChange.volunteer_id == volunteer_id)
        ).all()
        assert [(c.from_status, c.to_status) for c in changes] == [("pending", winner["status"])]
        audits = db.session.scalar(
            sa.select(sa.func.count()).where(AuditEntry.target_id == str(volunteer_id))
        )
        assert audits == 1
        db.session.remove()


def registration(grid_id: int, phone: str, national_id: str) -> dict[str, Any]:
    return {
        "real_name": "并发",
        "phone": phone,
        "password": "Patrol-2026!",
        "national_id": national_id,
        "kind": "volunteer_police",
        "home_grid_id": grid_id,
        "consent": True,
    }


@pytest.mark.parametrize("duplicate", ["phone", "national_id"])
def test_concurrent_duplicate_registrations_give_one_201_and_one_409(app: Flask, duplicate: str) -> None:
    with app.app_context():
        _, grid = small_tree()
        grid_id = grid.id
        db.session.commit()
    shared_phone, shared_id = factories.unique_phone(), factories.national_id()
    bodies = [
        registration(
            grid_id,
            shared_phone if duplicate == "phone" else factories.unique_phone(),
            shared_id if duplicate == "national_id" else factories.national_id(),
        )
        for _ in range(2)
    ]
    results = run_at_once(app, [("post", f"{API}/register", body, {}) for body in bodies])

    assert sorted(status for status, _ in results) == [201, 409], results
    loser = next(body for status, body in results if status == 409)
    assert loser["code"] == f"{duplicate}_taken"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Volunteer)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
        db.session.remove()


def _competing_user(phone: str, grid_id: int) -> sa.Insert:
    return sa.insert(User).values(
        phone=phone,
        password_hash="x",
        role="volunteer",
        display_name="先到",
        area_id=grid_id,
        locale="zh",
        is_active=True,
        created_at=sa.func.now(),
        updated_at=sa.func.now(),
        password_changed_at=sa.func.now(),
    )


def test_unique_violation_at_flush_is_409_not_500(app: Flask) -> None:
    """A competitor commits between our duplicate check and our insert (forced, not timed).

    On PostgreSQL the competitor's commit lands and our flush hits the unique constraint: 409
    ``phone_taken``, nothing written. SQLite cannot interleave like that, because the request holds
    the write lock from its first statement (BEGIN IMMEDIATE): there the competitor is refused
    with "database is locked", and our registration succeeds.
    """
    with app.app_context():
        _, grid = small_tree()
        grid_id = grid.id
        db.session.commit()
        sqlite = db.engine.dialect.name == "sqlite"
    phone = factories.unique_phone()
    outcome: list[str] = []

    def competitor_commits_first(session: Any, _context: Any, _instances: Any) -> None:
        if outcome or not any(isinstance(obj, User) for obj in session.new):
            return
        try:
            with db.engine.connect() as connection:  # another connection, committed at once
                if sqlite:  # set on the raw connection: any statement here would BEGIN and wait 30 s
                    connection.connection.dbapi_connection.execute("PRAGMA busy_timeout=100")
                with connection.begin():
                    connection.execute(_competing_user(phone, grid_id))
            outcome.append("competitor committed")
        except sa.exc.OperationalError as error:
            outcome.append("competitor locked out" if "locked" in str(error) else repr(error))

    sa.event.listen(orm.Session, "before_flush", competitor_commits_first)
    try:
        response = app.test_client().post(
            f"{API}/register", json=registration(grid_id, phone, factories.national_id())
        )
    finally:
        sa.event.remove(orm.Session, "before_flush", competitor_commits_first)
    with app.app_context():
        volunteers = db.session.scalar(sa.select(sa.func.count()).select_from(Volunteer))
        users = db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.phone == phone))
        db.session.remove()
    if sqlite:
        assert outcome == ["competitor locked out"]
        assert response.status_code == 201, response.get_json()
        assert (volunteers, users) == (1, 1)
    else:
        assert outcome == ["competitor committed"]
        assert response.status_code == 409, response.get_json()
        assert response.get_json()["code"] == "phone_taken"
        assert (volunteers, users) == (0, 1)
