"""The session check behind every access token (accounts/tokens.py): one statement that refuses a
revoked, expired or foreign session and an inactive account, and reads what /me shows and the
caller's volunteer id with it, so /me and the schedule ask for neither again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_jwt_extended import decode_token

from accounts.models import AuthSession, User
from core.db import utcnow
from core.extensions import db
from tests import factories
from tests.problems import assert_problem


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """Every statement the app runs while the test does (BEGIN and savepoints left out)."""
    seen: list[str] = []

    def before(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK")):
            seen.append(" ".join(statement.split()))

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", before)


@pytest.fixture
def volunteer() -> Any:
    *_, grid = factories.make_branch()
    factories.make_user("organiser", grid)  # so that no volunteer's id is its user's id
    volunteer = factories.make_volunteer(grid)
    assert volunteer.id != volunteer.user_id
    factories.make_assignment(factories.make_shift(grid, starts_in=timedelta(hours=3)), volunteer)
    return volunteer


def _session_of(headers: dict[str, str]) -> AuthSession:
    sid = decode_token(headers["Authorization"].removeprefix("Bearer "))["sid"]
    return db.session.get_one(AuthSession, sid)


def test_me_is_one_statement_with_the_volunteer_id(client: FlaskClient, volunteer: Any, statements: list[str]) -> None:
    user = volunteer.user
    expected = {"id": user.id, "volunteer_id": volunteer.id, "phone": user.phone, "area_id": user.area_id}
    headers = factories.headers_for(user)
    factories.fold_into_rollups()  # what the factories wrote: not the request's to fold
    statements.clear()
    body = client.get("/api/v1/me", headers=headers).get_json()
    assert {key: body["area"]["id"] if key == "area_id" else body[key] for key in expected} == expected
    reads = [sql for sql in statements if sql.startswith("SELECT")]
    assert len(reads) == 1 and "auth_sessions" in reads[0], statements


def test_an_organisers_me_has_no_volunteer_id(client: FlaskClient, volunteer: Any) -> None:
    organiser = factories.make_user("organiser", db.session.get_one(User, volunteer.user_id).area)
    body = client.get("/api/v1/me", headers=factories.headers_for(organiser)).get_json()
    assert body["id"] == organiser.id and body["volunteer_id"] is None


def test_the_schedule_asks_for_the_volunteer_id_no_more(
    client: FlaskClient, volunteer: Any, statements: list[str]
) -> None:
    other = factories.make_volunteer(db.session.get_one(User, volunteer.user_id).area)
    headers = factories.headers_for(volunteer.user)
    factories.fold_into_rollups()  # what the factories wrote: not the request's to fold
    statements.clear()
    items = client.get("/api/v1/me/shifts", headers=headers).get_json()["items"]
    assert [item["volunteer_id"] for item in items] == [volunteer.id]  # its own, not the other's
    assert other.id != volunteer.id
    assert not [sql for sql in statements if sql.startswith("SELECT volunteers.id FROM volunteers")], statements


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/me/shifts"])
def test_a_live_session_of_an_inactive_account_is_refused(client: FlaskClient, volunteer: Any, path: str) -> None:
    headers = factories.headers_for(volunteer.user)
    assert client.get(path, headers=headers).status_code == 200
    volunteer.user.is_active = False  # suspended without its sessions revoked
    db.session.flush()
    assert_problem(client.get(path, headers=headers), 401, "token_revoked")


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/me/shifts"])
def test_a_revoked_session_is_refused(client: FlaskClient, volunteer: Any, path: str) -> None:
    headers = factories.headers_for(volunteer.user)
    _session_of(headers).revoked_at = utcnow()
    db.session.flush()
    assert_problem(client.get(path, headers=headers), 401, "token_revoked")


def test_a_session_ends_at_its_expiry(client: FlaskClient, volunteer: Any) -> None:
    headers = factories.headers_for(volunteer.user)
    session = _session_of(headers)
    session.expires_at = utcnow() + timedelta(minutes=1)
    db.session.flush()
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    session.expires_at = utcnow()  # the instant it ends is already past when the request checks
    db.session.flush()
    assert_problem(client.get("/api/v1/me", headers=headers), 401, "token_revoked")


def test_a_session_of_another_user_is_refused(client: FlaskClient, volunteer: Any) -> None:
    """A token whose session belongs to someone else (a forged or mixed-up sid) is no identity."""
    mine = factories.headers_for(volunteer.user)
    other = factories.make_volunteer(db.session.get_one(User, volunteer.user_id).area)
    theirs = factories.headers_for(other.user)
    _session_of(theirs).user_id = volunteer.user_id  # the sid now names my user, the token theirs
    db.session.flush()
    assert client.get("/api/v1/me", headers=mine).status_code == 200
    assert_problem(client.get("/api/v1/me", headers=theirs), 401, "token_revoked")
