"""Sign-in, sign-out, idle timeout, CSRF, cookies and headers of the console, through the test client."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_jwt_extended import decode_token

from accounts.models import AuthSession, User
from console import signin
from core.extensions import db
from tests import factories
from tests.conftest import Tree
from tests.console.support import Console, csrf_token_of, signed_in


def _cookie(response, name: str) -> SimpleCookie:  # type: ignore[no-untyped-def]
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(name + "="):
            cookie = SimpleCookie()
            cookie.load(header)
            return cookie
    raise AssertionError(f"no {name} cookie set")


def _sessions(user_id: int) -> list[AuthSession]:
    return list(db.session.scalars(sa.select(AuthSession).where(AuthSession.user_id == user_id)))


def test_signed_out_pages_send_the_browser_to_sign_in_and_back(client: FlaskClient, tree: Tree) -> None:
    response = client.get("/console/?area=5")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/login?next=/console/?area%3D5"
    organiser = factories.make_user("organiser", tree.community_a)
    console = Console(client)
    console.csrf_token = csrf_token_of(client.get(response.headers["Location"]))
    signed = console.post("/console/login", {"phone": organiser.phone, "password": factories.DEFAULT_PASSWORD,
                                              "next": "/console/?area=5"})
    assert signed.headers["Location"] == "/console/?area=5"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/api/v1/me", "/console\\@evil"])
def test_the_page_after_sign_in_is_never_another_site(client: FlaskClient, tree: Tree, target: str) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    console = Console(client)
    console.csrf_token = csrf_token_of(client.get("/console/login"))
    signed = console.post("/console/login", {"phone": organiser.phone, "password": factories.DEFAULT_PASSWORD,
                                              "next": target})
    assert signed.status_code == 302 and signed.headers["Location"] == "/console/"


def test_the_session_cookie_is_httponly_secure_lax_and_kept_to_the_console(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    response = Console(client).sign_in(organiser)
    assert response.status_code == 302
    morsel = _cookie(response, "console_token")["console_token"]
    assert morsel["httponly"] and morsel["secure"] and morsel["samesite"] == "Lax"
    assert morsel["path"] == "/console/"
    claims = decode_token(morsel.value)
    assert claims["role"] == "organiser" and claims["area_path"] == tree.community_a.path
    # The idle timeout is the token's lifetime.
    assert claims["exp"] - claims["iat"] == 30 * 60
    assert len(_sessions(organiser.id)) == 1


def test_outside_development_the_flag_turns_secure_off_only_when_asked(app: Flask) -> None:
    assert app.config["CONSOLE_INSECURE_COOKIES"] is False
    assert app.config["JWT_COOKIE_SECURE"] is True and app.config["SESSION_COOKIE_SECURE"] is True


def test_sign_in_without_the_csrf_token_is_refused_and_opens_no_session(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    client.get("/console/login")
    response = client.post("/console/login", data={"phone": organiser.phone, "password": factories.DEFAULT_PASSWORD})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "console_token=" not in " ".join(response.headers.getlist("Set-Cookie"))
    assert _sessions(organiser.id) == []


def test_a_form_posted_with_another_browsers_token_is_refused(client: FlaskClient, app: Flask, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    console = signed_in(client, organiser)
    stranger = app.test_client()
    foreign_token = csrf_token_of(stranger.get("/console/login"))
    response = console.post("/console/logout", {"csrf_token": foreign_token})
    assert response.status_code == 400
    assert [session.revoked_at for session in _sessions(organiser.id)] == [None]


def test_sign_out_revokes_the_login_and_the_old_cookie_opens_nothing(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    console = signed_in(client, organiser)
    token = client.get_cookie("console_token", path="/console/").value
    refused = console.post("/console/logout", with_csrf=False)
    assert refused.status_code == 400 and _sessions(organiser.id)[0].revoked_at is None
    response = console.post("/console/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/console/login"
    assert _sessions(organiser.id)[0].revoked_reason == "logout"
    client.set_cookie("console_token", token, path="/console/")  # a copy kept by someone
    assert client.get("/console/").headers["Location"].startswith("/console/login")


def test_an_idle_session_ends_and_a_page_opened_slides_it_forward(
    client: FlaskClient, tree: Tree, monkeypatch: pytest.MonkeyPatch, app: Flask
) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    signed_in(client, organiser)
    first = decode_token(client.get_cookie("console_token", path="/console/").value)
    monkeypatch.setattr(signin, "_REISSUE_AFTER", timedelta(0))
    monkeypatch.setitem(app.config, "CONSOLE_IDLE_TIMEOUT", timedelta(minutes=45))
    page = client.get("/console/")
    slid = decode_token(_cookie(page, "console_token")["console_token"].value)
    assert slid["exp"] - slid["iat"] == 45 * 60 and slid["sid"] == first["sid"]
    # A token whose idle time ran out is a signed-out browser.
    monkeypatch.setitem(app.config, "CONSOLE_IDLE_TIMEOUT", timedelta(seconds=-1))
    client.get("/console/")
    assert client.get("/console/").headers["Location"].startswith("/console/login")


def test_a_volunteer_gets_the_plain_page_and_no_session(client: FlaskClient, tree: Tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    phone = db.session.get_one(User, volunteer.user_id).phone
    console = Console(client)
    console.csrf_token = csrf_token_of(client.get("/console/login"))
    response = console.post("/console/login", {"phone": phone, "password": factories.DEFAULT_PASSWORD})
    assert response.status_code == 403 and response.mimetype == "text/html"
    assert "console_token=" not in " ".join(response.headers.getlist("Set-Cookie"))
    assert _sessions(volunteer.user_id) == []


def test_wrong_passwords_share_the_apis_login_limit(client: FlaskClient, tree: Tree, app: Flask,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_PHONE", "3 per minute")
    organiser = factories.make_user("organiser", tree.community_a)
    for _ in range(2):
        api = client.post("/api/v1/auth/login", json={"phone": organiser.phone, "password": "wrong-password"})
        assert api.status_code == 401
    console = Console(client)
    console.csrf_token = csrf_token_of(client.get("/console/login"))
    wrong = console.post("/console/login", {"phone": organiser.phone, "password": "wrong-password"})
    assert wrong.status_code == 401 and wrong.mimetype == "text/html"
    limited = console.post("/console/login", {"phone": organiser.phone, "password": factories.DEFAULT_PASSWORD})
    assert limited.status_code == 429 and limited.mimetype == "text/html"
    assert "Retry-After" in limited.headers
    assert _sessions(organiser.id) == []


def test_pages_carry_a_csp_without_inline_scripts(client: FlaskClient) -> None:
    response = client.get("/console/login")
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert "<script>" not in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_the_api_never_takes_the_console_cookie(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    signed_in(client, organiser)
    token = client.get_cookie("console_token", path="/console/").value
    client.set_cookie("console_token", token, path="/")
    assert client.get("/api/v1/me").status_code == 401


def test_the_language_switch_is_remembered_and_only_knows_catalogued_languages(client: FlaskClient) -> None:
    assert "登录控制台" in client.get("/console/login").get_data(as_text=True)
    switched = client.get("/console/language/en?next=/console/login")
    assert switched.status_code == 302 and switched.headers["Location"] == "/console/login"
    assert "Sign in to the console" in client.get("/console/login").get_data(as_text=True)
    assert client.get("/console/language/xx").status_code == 404
    assert client.get("/console/language/en?next=https://evil.example/").headers["Location"] == "/console/"


@pytest.mark.parametrize("form", [
    {"phone": "1" * 10_000, "password": "x"},
    {"phone": "", "password": ""},
    {"password": "x"},
])
def test_junk_sign_in_is_a_4xx_page(client: FlaskClient, form: dict[str, str]) -> None:
    console = Console(client)
    console.csrf_token = csrf_token_of(client.get("/console/login"))
    response = console.post("/console/login", form)
    assert 400 <= response.status_code < 500 and response.mimetype == "text/html"


def test_a_lone_surrogate_in_the_sign_in_form_is_a_4xx_page(client: FlaskClient) -> None:
    token = csrf_token_of(client.get("/console/login"))
    body = f"phone=%ED%A0%80&password=%ED%BF%BF&csrf_token={token}".encode()
    response = client.post("/console/login", data=body, content_type="application/x-www-form-urlencoded")
    assert 400 <= response.status_code < 500 and response.mimetype == "text/html"


@pytest.mark.parametrize("path", ["/console/nowhere", "/console/static/nothing.js", "/console/login/extra"])
def test_unknown_console_paths_are_404_pages(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
