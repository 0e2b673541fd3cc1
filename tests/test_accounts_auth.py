"""Login, token refresh with rotation and reuse detection, logout, password change, brute-force limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from accounts import signals
from accounts.models import AuthSession, RefreshToken, User
from accounts.passwords import needs_rehash
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from tests import factories, races
from tests.conftest import Tree
from tests.problems import EN, assert_problem

PASSWORD = factories.DEFAULT_PASSWORD


# --- helpers ----------------------------------------------------------------------------------


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def login(client: FlaskClient, phone: str, password: str = PASSWORD, **headers: str) -> Any:
    return client.post("/api/v1/auth/login", json={"phone": phone, "password": password}, headers=headers)


def logged_in(client: FlaskClient, user: User) -> dict[str, Any]:
    response = login(client, user.phone)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def refresh(client: FlaskClient, refresh_token: str, **headers: str) -> Any:
    return client.post("/api/v1/auth/refresh", headers=bearer(refresh_token, **headers))


def session_row(session_id: str) -> AuthSession:
    db.session.expire_all()
    return db.session.get(AuthSession, session_id)


def refresh_row(token: str) -> RefreshToken:
    db.session.expire_all()
    return db.session.get(RefreshToken, decode_token(token)["jti"])


@pytest.fixture
def organiser(tree: Tree) -> User:
    user = factories.make_user("organiser", tree.community_a, phone="+8613800138000", display_name="王芳")
    return user


# --- login ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["13800138000", "+86 138 0013 8000", "+8613800138000", "138-0013-8000"])
def test_login_accepts_common_phone_spellings(client: FlaskClient, organiser: User, spelling: str) -> None:
    response = login(client, spelling)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["user"]["phone"] == "+8613800138000"


def test_login_returns_tokens_session_and_profile(
    client: FlaskClient, app: Flask, tree: Tree, organiser: User
) -> None:
    before = utcnow()
    response = login(client, "13800138000", **{"User-Agent": "ShouwangApp/1.0 (Android 14)"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == int(app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())
    assert body["user"] == {
        "id": organiser.id,
        "phone": "+8613800138000",
        "role": "organiser",
        "display_name": "王芳",
        "locale": "zh",
        "area": {
            "id": tree.community_a.id,
            "code": tree.community_a.code,
            "name": "东站社区",
            "level": "community",
            "path": tree.community_a.path,
        },
        "created_at": body["user"]["created_at"],
        "volunteer_id": None,
    }
    assert datetime.fromisoformat(body["user"]["created_at"]).utcoffset() is not None

    access = decode_token(body["access_token"])
    assert access["type"] == "access"
    assert access["sub"] == str(organiser.id)
    assert access["role"] == "organiser"
    assert access["area_path"] == tree.community_a.path
    assert access["exp"] - access["iat"] == 15 * 60

    refresh_claims = decode_token(body["refresh_token"])
    assert refresh_claims["type"] == "refresh"
    assert refresh_claims["sid"] == access["sid"]

    session = session_row(access["sid"])
    assert session.user_id == organiser.id
    assert session.user_agent == "ShouwangApp/1.0 (Android 14)"
    assert session.client_address == "127.0.0.1"
    assert session.revoked_at is None
    lifetime = app.config["SESSION_ABSOLUTE_LIFETIME"]
    assert before + lifetime <= session.expires_at <= utcnow() + lifetime

    token = refresh_row(body["refresh_token"])
    assert token.session_id == session.id and token.rotated_at is None
    assert refresh_claims["exp"] <= session.expires_at.timestamp()
    assert refresh_claims["exp"] == int(token.expires_at.timestamp())

    # The access token works.
    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.get_json()["id"] == organiser.id


def test_unknown_phone_wrong_password_and_inactive_account_look_the_same(
    client: FlaskClient, tree: Tree, organiser: User
) -> None:
    inactive = factories.make_user("staff", tree.district_a)
    inactive.is_active = False
    db.session.flush()
    sessions_before = db.session.scalar(sa.select(sa.func.count()).select_from(AuthSession))

    bodies = [
        assert_problem(login(client, "+8613900000001"), 401, "invalid_credentials"),
        assert_problem(login(client, organiser.phone, "wrong-password"), 401, "invalid_credentials"),
        assert_problem(login(client, inactive.phone), 401, "invalid_credentials"),
    ]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["title"] == "手机号或密码错误"
    english = assert_problem(login(client, organiser.phone, "wrong-password", **EN), 401, "invalid_credentials")
    assert english["title"] == "Wrong phone number or password"
    assert english["detail"] == "Wrong phone number or password."
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuthSession)) == sessions_before


def test_login_validation_errors_are_translated(client: FlaskClient) -> None:
    body = assert_problem(
        client.post("/api/v1/auth/login", json={"phone": "12345", "password": ""}), 422, "validation_failed"
    )
    assert body["errors"]["phone"] == ["不是有效的中国大陆手机号码。"]
    assert body["errors"]["password"] == ["长度必须在 1 到 128 之间。"]
    body = assert_problem(
        client.post("/api/v1/auth/login", json={"phone": "12345"}, headers=EN), 422, "validation_failed"
    )
    assert body["errors"] == {
        "phone": ["Not a valid mainland China mobile number."],
        "password": ["Missing data for required field."],
    }
    malformed = client.post("/api/v1/auth/login", data="{", content_type="application/json")
    assert_problem(malformed, 400, "malformed_json")


def test_login_rehashes_when_parameters_changed(client: FlaskClient, organiser: User) -> None:
    organiser.password_hash = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1).hash(PASSWORD)
    db.session.flush()
    old_hash = organiser.password_hash
    assert needs_rehash(old_hash)
    assert login(client, organiser.phone).status_code == 200
    db.session.expire_all()
    user = db.session.get(User, organiser.id)
    assert user.password_hash != old_hash
    assert not needs_rehash(user.password_hash)
    assert login(client, organiser.phone).status_code == 200


# --- brute-force limits -----------------------------------------------------------------------


def test_five_failures_lock_the_phone_even_for_the_right_password(client: FlaskClient, organiser: User) -> None:
    for _ in range(5):
        assert_problem(login(client, organiser.phone, "wrong-password"), 401, "invalid_credentials")
    # Another spelling of the same number shares the budget; the right password does not help.
    response = login(client, "138 0013 8000")
    body = assert_problem(response, 429, "too_many_requests")
    assert body["title"] == "请求过于频繁，请稍后再试"
    assert int(response.headers["Retry-After"]) > 0
    english = assert_problem(login(client, organiser.phone, **EN), 429, "too_many_requests")
    assert english["title"] == "Too many requests, try again later"
    assert db.session.scalar(sa.select(sa.func.count()).where(AuthSession.user_id == organiser.id)) == 0


def test_phone_limit_applies_from_every_address(client: FlaskClient, organiser: User) -> None:
    for number in range(5):
        response = client.post(
            "/api/v1/auth/login",
            json={"phone": organiser.phone, "password": "wrong"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{number + 1}"},
        )
        assert response.status_code == 401
    response = client.post(
        "/api/v1/auth/login",
        json={"phone": organiser.phone, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.99"},
    )
    assert_problem(response, 429, "too_many_requests")


def test_other_phones_from_the_same_address_pass_until_the_address_limit(
    client: FlaskClient, app: Flask, tree: Tree, organiser: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ADDRESS", "8 per minute")
    other = factories.make_user("staff", tree.district_a)
    for _ in range(5):
        assert login(client, organiser.phone, "wrong").status_code == 401
    assert_problem(login(client, organiser.phone), 429, "too_many_requests")
    # A different phone from the same address is not blocked by the first phone's failures...
    assert login(client, other.phone).status_code == 200
    assert login(client, other.phone, "wrong").status_code == 401
    assert login(client, other.phone, "wrong").status_code == 401
    assert login(client, other.phone, "wrong").status_code == 401
    # ...until the address has failed 8 times in all.
    assert_problem(login(client, other.phone), 429, "too_many_requests")
    # Another address is unaffected.
    response = client.post(
        "/api/v1/auth/login",
        json={"phone": other.phone, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert response.status_code == 200


def test_successful_logins_do_not_count(client: FlaskClient, organiser: User) -> None:
    for _ in range(8):
        assert login(client, organiser.phone).status_code == 200
    for _ in range(4):
        assert login(client, organiser.phone, "wrong").status_code == 401
    assert login(client, organiser.phone).status_code == 200
    assert login(client, organiser.phone, "wrong").status_code == 401
    assert_problem(login(client, organiser.phone), 429, "too_many_requests")


def test_validation_errors_do_not_count(client: FlaskClient, organiser: User) -> None:
    for _ in range(10):
        assert login(client, "not-a-phone", "x").status_code == 422
    assert login(client, organiser.phone).status_code == 200


# --- refresh: rotation, reuse, grace ----------------------------------------------------------


def test_refresh_rotates_the_refresh_token_in_the_same_family(client: FlaskClient, organiser: User) -> None:
    first = logged_in(client, organiser)
    response = refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.get_json()
    second = response.get_json()
    assert second["token_type"] == "Bearer"
    assert second["user"]["id"] == organiser.id
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    old, new = refresh_row(first["refresh_token"]), refresh_row(second["refresh_token"])
    assert old.rotated_at is not None
    assert old.replaced_by_jti == new.jti
    assert new.rotated_at is None
    assert old.session_id == new.session_id == decode_token(second["access_token"])["sid"]

    assert client.get("/api/v1/me", headers=bearer(second["access_token"])).status_code == 200
    third = refresh(client, second["refresh_token"])
    assert third.status_code == 200


def test_reuse_after_the_grace_period_revokes_the_whole_family(
    client: FlaskClient, app: Flask, organiser: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REFRESH_REUSE_GRACE", timedelta(0))
    first = logged_in(client, organiser)
    other_device = logged_in(client, organiser)
    second = refresh(client, first["refresh_token"]).get_json()
    third = refresh(client, second["refresh_token"]).get_json()

    body = assert_problem(refresh(client, first["refresh_token"], **EN), 401, "token_revoked")
    assert body["detail"] == "The refresh token was already used; every token of this login has been revoked."
    session = session_row(decode_token(first["access_token"])["sid"])
    assert session.revoked_at is not None
    assert session.revoked_reason == "refresh_reuse"

    # Even the newest tokens of the family are dead now...
    assert_problem(refresh(client, third["refresh_token"]), 401, "token_revoked")
    assert_problem(client.get("/api/v1/me", headers=bearer(third["access_token"])), 401, "token_revoked")
    # ...but another login of the same user is not.
    assert client.get("/api/v1/me", headers=bearer(other_device["access_token"])).status_code == 200
    assert refresh(client, other_device["refresh_token"]).status_code == 200


def test_reuse_detected_by_age_of_rotation(client: FlaskClient, organiser: User) -> None:
    """With the default grace, a rotation older than the grace is reuse."""
    first = logged_in(client, organiser)
    refresh(client, first["refresh_token"])
    db.session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.jti == decode_token(first["refresh_token"])["jti"])
        .values(rotated_at=utcnow() - timedelta(seconds=11))
    )
    assert_problem(refresh(client, first["refresh_token"]), 401, "token_revoked")
    assert session_row(decode_token(first["access_token"])["sid"]).revoked_reason == "refresh_reuse"


def test_reuse_within_the_grace_period_reissues_and_supersedes(
    client: FlaskClient, app: Flask, organiser: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = logged_in(client, organiser)
    lost = refresh(client, first["refresh_token"]).get_json()  # the phone never saw this answer
    retry = refresh(client, first["refresh_token"])
    assert retry.status_code == 200, retry.get_json()
    newest = retry.get_json()
    assert newest["refresh_token"] != lost["refresh_token"]

    lost_row, newest_row = refresh_row(lost["refresh_token"]), refresh_row(newest["refresh_token"])
    assert lost_row.rotated_at is not None and lost_row.replaced_by_jti == newest_row.jti
    assert newest_row.rotated_at is None
    live = db.session.scalars(
        sa.select(RefreshToken.jti).where(
            RefreshToken.session_id == newest_row.session_id, RefreshToken.rotated_at.is_(None)
        )
    ).all()
    assert live == [newest_row.jti]
    assert session_row(newest_row.session_id).revoked_at is None

    # The newest pair works; the superseded one is a replay once the grace is over.
    assert client.get("/api/v1/me", headers=bearer(newest["access_token"])).status_code == 200
    monkeypatch.setitem(app.config, "REFRESH_REUSE_GRACE", timedelta(0))
    assert_problem(refresh(client, lost["refresh_token"]), 401, "token_revoked")
    assert_problem(refresh(client, newest["refresh_token"]), 401, "token_revoked")


def test_refresh_carries_the_current_role_and_area(client: FlaskClient, tree: Tree, organiser: User) -> None:
    first = logged_in(client, organiser)
    organiser.role = "staff"
    organiser.area_id = tree.district_a.id
    db.session.flush()
    body = refresh(client, first["refresh_token"]).get_json()
    claims = decode_token(body["access_token"])
    assert claims["role"] == "staff"
    assert claims["area_path"] == tree.district_a.path
    assert body["user"]["role"] == "staff"
    assert body["user"]["area"]["id"] == tree.district_a.id


def test_refresh_never_outlives_the_session(client: FlaskClient, organiser: User) -> None:
    first = logged_in(client, organiser)
    sid = decode_token(first["access_token"])["sid"]
    ends = utcnow() + timedelta(minutes=5)
    db.session.execute(sa.update(AuthSession).where(AuthSession.id == sid).values(expires_at=ends))

    body = refresh(client, first["refresh_token"]).get_json()
    assert body["expires_in"] <= 5 * 60
    assert decode_token(body["access_token"])["exp"] <= ends.timestamp()
    assert decode_token(body["refresh_token"])["exp"] <= ends.timestamp()
    assert refresh_row(body["refresh_token"]).expires_at <= ends

    db.session.execute(
        sa.update(AuthSession).where(AuthSession.id == sid).values(expires_at=utcnow() - timedelta(seconds=1))
    )
    assert_problem(refresh(client, body["refresh_token"]), 401, "token_revoked")
    assert_problem(client.get("/api/v1/me", headers=bearer(body["access_token"])), 401, "token_revoked")


def test_refresh_of_a_deactivated_account_fails(client: FlaskClient, organiser: User) -> None:
    first = logged_in(client, organiser)
    organiser.is_active = False
    db.session.flush()
    assert_problem(refresh(client, first["refresh_token"]), 401, "token_revoked")


def test_refresh_token_unknown_to_the_database_is_invalid(client: FlaskClient, organiser: User) -> None:
    first = logged_in(client, organiser)
    sid = decode_token(first["access_token"])["sid"]
    forged = create_refresh_token(identity=str(organiser.id), additional_claims={"sid": sid})
    assert_problem(refresh(client, forged), 401, "invalid_token")


# --- token confusion, expiry, garbage ---------------------------------------------------------


def test_access_token_is_refused_by_refresh_and_refresh_token_by_other_endpoints(
    client: FlaskClient, organiser: User
) -> None:
    tokens = logged_in(client, organiser)
    body = assert_problem(refresh(client, tokens["access_token"]), 401, "invalid_token")
    assert body["title"] == "令牌无效"
    assert_problem(client.get("/api/v1/me", headers=bearer(tokens["refresh_token"])), 401, "invalid_token")
    assert_problem(client.post("/api/v1/auth/logout", headers=bearer(tokens["refresh_token"])), 401, "invalid_token")
    # Neither attempt spent or revoked anything.
    assert refresh_row(tokens["refresh_token"]).rotated_at is None
    assert refresh(client, tokens["refresh_token"]).status_code == 200


def test_expired_garbage_and_missing_tokens_answer_in_problem_shape(
    client: FlaskClient, tree: Tree, organiser: User
) -> None:
    sid = decode_token(logged_in(client, organiser)["access_token"])["sid"]
    expired = create_access_token(
        identity=str(organiser.id),
        additional_claims={"role": "organiser", "area_path": tree.community_a.path, "sid": sid},
        expires_delta=timedelta(seconds=-5),
    )
    response = client.get("/api/v1/me", headers=bearer(expired, **EN))
    body = assert_problem(response, 401, "token_expired")
    assert body["title"] == "Token has expired"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert assert_problem(client.get("/api/v1/me", headers=bearer(expired)), 401, "token_expired")["title"] == "令牌已过期"

    assert_problem(client.get("/api/v1/me", headers=bearer("not.a.jwt")), 401, "invalid_token")
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer("garbage")), 401, "invalid_token")
    assert_problem(client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401, "unauthorized")
    assert_problem(client.get("/api/v1/me"), 401, "unauthorized")
    assert_problem(client.post("/api/v1/auth/refresh"), 401, "unauthorized")
    anonymous = client.post("/api/v1/me/password", json={"current_password": "a", "new_password": "b" * 8})
    assert_problem(anonymous, 401, "unauthorized")
    signed_elsewhere = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIiwidHlwZSI6ImFjY2VzcyJ9."
        "c2lnbmF0dXJlLWZyb20tc29tZXdoZXJlLWVsc2U"
    )
    assert_problem(client.get("/api/v1/me", headers=bearer(signed_elsewhere)), 401, "invalid_token")


# --- logout -----------------------------------------------------------------------------------


def test_logout_revokes_this_session_only(client: FlaskClient, organiser: User) -> None:
    phone = logged_in(client, organiser)
    tablet = logged_in(client, organiser)
    heard: list[dict[str, Any]] = []

    def listener(sender: str, **event: Any) -> None:
        heard.append(event)

    with signals.sessions_revoked.connected_to(listener):
        response = client.post("/api/v1/auth/logout", headers=bearer(phone["access_token"]))
    assert response.status_code == 204
    assert heard == [
        {"user_id": organiser.id, "session_ids": [decode_token(phone["access_token"])["sid"]], "reason": "logout"}
    ]
    assert response.get_data() == b""

    session = session_row(decode_token(phone["access_token"])["sid"])
    assert session.revoked_at is not None and session.revoked_reason == "logout"
    assert_problem(client.get("/api/v1/me", headers=bearer(phone["access_token"])), 401, "token_revoked")
    body = assert_problem(refresh(client, phone["refresh_token"], **EN), 401, "token_revoked")
    assert body["title"] == "Token has been revoked"
    assert_problem(client.post("/api/v1/auth/logout", headers=bearer(phone["access_token"])), 401, "token_revoked")

    assert client.get("/api/v1/me", headers=bearer(tablet["access_token"])).status_code == 200


# --- the caller's own account -----------------------------------------------------------------


def test_me_and_update_me(client: FlaskClient, organiser: User) -> None:
    headers = bearer(logged_in(client, organiser)["access_token"])
    assert client.get("/api/v1/me", headers=headers).get_json()["display_name"] == "王芳"

    response = client.patch("/api/v1/me", json={"display_name": "  王芳芳 ", "locale": "en"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["display_name"] == "王芳芳"
    assert response.get_json()["locale"] == "en"
    db.session.expire_all()
    assert db.session.get(User, organiser.id).locale == "en"

    response = client.patch("/api/v1/me", json={"locale": "fr"}, headers=headers)
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"] == {"locale": ["必须是以下之一：zh, en。"]}
    body = assert_problem(
        client.patch("/api/v1/me", json={"display_name": "   ", "role": "admin"}, headers={**headers, **EN}),
        422,
        "validation_failed",
    )
    assert body["errors"] == {"display_name": ["Field may not be blank."], "role": ["Unknown field."]}
    db.session.expire_all()
    user = db.session.get(User, organiser.id)
    assert (user.display_name, user.role) == ("王芳芳", "organiser")


def test_volunteer_sees_own_account_with_both_ids(client: FlaskClient, tree: Tree) -> None:
    factories.make_user("organiser", tree.community_a)  # so that user ids and volunteer ids differ
    volunteer = factories.make_volunteer(tree.grid_a, phone="+8613800138001")
    assert volunteer.id != volunteer.user_id
    body = client.get("/api/v1/me", headers=factories.headers_for(volunteer.user)).get_json()
    assert body["role"] == "volunteer"
    assert body["area"]["level"] == "grid"
    assert (body["id"], body["volunteer_id"]) == (volunteer.user_id, volunteer.id)
    profile = client.get("/api/v1/volunteers/me", headers=factories.headers_for(volunteer.user)).get_json()
    assert (profile["id"], profile["user_id"]) == (body["volunteer_id"], body["id"])
    assert login(client, "+8613800138001").get_json()["user"]["volunteer_id"] == volunteer.id


# --- password change --------------------------------------------------------------------------


def test_password_change_revokes_every_session(client: FlaskClient, organiser: User) -> None:
    phone = logged_in(client, organiser)
    tablet = logged_in(client, organiser)
    changed_before = organiser.password_changed_at

    response = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "Night-Patrol-77"},
        headers=bearer(phone["access_token"]),
    )
    assert response.status_code == 204
    db.session.expire_all()
    assert db.session.get(User, organiser.id).password_changed_at > changed_before

    for tokens in (phone, tablet):
        assert_problem(client.get("/api/v1/me", headers=bearer(tokens["access_token"])), 401, "token_revoked")
        assert_problem(refresh(client, tokens["refresh_token"]), 401, "token_revoked")
        assert session_row(decode_token(tokens["access_token"])["sid"]).revoked_reason == "password_changed"

    assert_problem(login(client, organiser.phone), 401, "invalid_credentials")
    assert login(client, organiser.phone, "Night-Patrol-77").status_code == 200


def test_password_change_refusals_change_nothing(client: FlaskClient, organiser: User) -> None:
    tokens = logged_in(client, organiser)
    headers = bearer(tokens["access_token"])
    hash_before = organiser.password_hash

    body = assert_problem(
        client.post(
            "/api/v1/me/password",
            json={"current_password": "wrong-one", "new_password": "Night-Patrol-77"},
            headers=headers,
        ),
        403,
        "wrong_password",
    )
    assert body["title"] == "当前密码错误"
    assert body["errors"] == {"current_password": ["密码错误。"]}

    body = assert_problem(
        client.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": PASSWORD},
            headers=headers,
        ),
        422,
        "validation_failed",
    )
    assert body["errors"] == {"new_password": ["新密码不能与当前密码相同。"]}

    body = assert_problem(
        client.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": "short"},
            headers={**headers, **EN},
        ),
        422,
        "validation_failed",
    )
    assert body["errors"] == {"new_password": ["Length must be between 8 and 128."]}
    body = assert_problem(
        client.post(
            "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "x" * 129}, headers=headers
        ),
        422,
        "validation_failed",
    )
    assert body["errors"] == {"new_password": ["长度必须在 8 到 128 之间。"]}

    db.session.expire_all()
    assert db.session.get(User, organiser.id).password_hash == hash_before
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert login(client, organiser.phone).status_code == 200


def test_guessing_the_current_password_is_limited(client: FlaskClient, organiser: User) -> None:
    headers = bearer(logged_in(client, organiser)["access_token"])
    attempt = {"current_password": "guess", "new_password": "Night-Patrol-77"}
    for _ in range(5):
        assert client.post("/api/v1/me/password", json=attempt, headers=headers).status_code == 403
    response = client.post(
        "/api/v1/me/password", json={**attempt, "current_password": PASSWORD}, headers=headers
    )
    assert_problem(response, 429, "too_many_requests")
    assert "Retry-After" in response.headers


# --- documentation ----------------------------------------------------------------------------


def test_openapi_documents_the_account_endpoints(client: FlaskClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    paths = response.get_json()["paths"]
    expected = {
        ("/api/v1/auth/login", "post"): False,
        ("/api/v1/auth/refresh", "post"): True,
        ("/api/v1/auth/logout", "post"): True,
        ("/api/v1/me", "get"): True,
        ("/api/v1/me", "patch"): True,
        ("/api/v1/me/password", "post"): True,
        ("/api/v1/users", "get"): True,
        ("/api/v1/users", "post"): True,
        ("/api/v1/users/{user_id}", "get"): True,
        ("/api/v1/users/{user_id}", "patch"): True,
        ("/api/v1/audit", "get"): True,
    }
    for (path, method), secured in expected.items():
        operation = paths[path][method]
        assert operation["summary"]
        assert (operation.get("security") == [{"bearerAuth": []}]) is secured, (path, method)
    assert "429" in paths["/api/v1/auth/login"]["post"]["responses"]

    # The docstring's body is the description, and auth_required adds who may call.
    update_user = paths["/api/v1/users/{user_id}"]["patch"]
    assert update_user["summary"] == "Change an account's display name, area, role or active flag"
    assert " ".join(update_user["description"].split()) == (
        "You may not manage accounts of a higher role than yours (403 `higher_role`), grant a role above "
        "yours (403 `role_not_allowed`), move an account outside your area, or deactivate yourself or "
        "change your own role (403 `own_account`). Deactivating an account, or changing its role or area, "
        "ends all its logins. Allowed roles: staff, admin."
    )
    assert update_user["description"].endswith("\n\nAllowed roles: staff, admin.")
    assert paths["/api/v1/users/{user_id}"]["get"]["description"] == "Allowed roles: staff, admin."
    assert "Allowed roles" not in paths["/api/v1/auth/login"]["post"]["description"]


# --- services other packages call -------------------------------------------------------------


def test_revoke_all_sessions_ends_every_login(client: FlaskClient, organiser: User) -> None:
    from accounts.service import revoke_all_sessions

    phone, tablet = logged_in(client, organiser), logged_in(client, organiser)
    heard: list[dict[str, Any]] = []

    def listener(sender: str, **event: Any) -> None:
        heard.append({"sender": sender, **event})

    with signals.sessions_revoked.connected_to(listener):
        assert revoke_all_sessions(organiser.id, "account_closed") == 2
        assert client.post("/api/v1/auth/logout", headers=bearer(phone["access_token"])).status_code == 401
    sids = sorted(decode_token(tokens["access_token"])["sid"] for tokens in (phone, tablet))
    assert len(heard) == 1
    assert heard[0]["sender"] == "accounts" and heard[0]["user_id"] == organiser.id
    assert heard[0]["reason"] == "account_closed" and sorted(heard[0]["session_ids"]) == sids
    assert revoke_all_sessions(organiser.id, "account_closed") == 0
    for tokens in (phone, tablet):
        assert_problem(client.get("/api/v1/me", headers=bearer(tokens["access_token"])), 401, "token_revoked")
        assert session_row(decode_token(tokens["access_token"])["sid"]).revoked_reason == "account_closed"


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.committing
def test_concurrent_refreshes_of_one_token_keep_the_family_alive(app: Flask) -> None:
    """A phone retrying a refresh in parallel: one rotation, the rest are grace re-issues, one live token."""
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        phone = factories.make_user("staff", city).phone
        db.session.commit()
    tokens = login(app.test_client(), phone).get_json()
    workers = 6
    barrier = races.barrier(workers)
    statuses: list[int] = []

    def refresh_once() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(refresh(client, tokens["refresh_token"]).status_code)

    races.run_threads([refresh_once] * workers)
    assert statuses == [200] * workers

    with app.app_context():
        sid = decode_token(tokens["access_token"])["sid"]
        family = db.session.scalars(sa.select(RefreshToken).where(RefreshToken.session_id == sid)).all()
        assert len(family) == workers + 1
        assert len([token for token in family if token.rotated_at is None]) == 1
        assert db.session.get(AuthSession, sid).revoked_at is None
        db.session.remove()
