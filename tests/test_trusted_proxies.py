"""The client's address behind a proxy (TRUSTED_PROXY_HOPS): login limits and sessions per client.

gunicorn gives the app the connection's address: behind nginx that is nginx's own (nothing at all
over a unix socket), so without this every phone would share one login budget. With the hops set,
the address is the one the nearest proxy appended to ``X-Forwarded-For``; without them, that header
is the client's to write and is ignored."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from accounts.models import AuthSession, User
from app import create_app
from core.extensions import db
from tests import factories
from tests.conftest import RequestIsolatingClient, Tree
from tests.problems import assert_problem

PASSWORD = factories.DEFAULT_PASSWORD
BEHIND_NGINX = {"REMOTE_ADDR": ""}  # what gunicorn gives over a unix socket


def _address() -> str:
    return f"198.51.100.{secrets.randbelow(250) + 1}"


@pytest.fixture
def proxied(app: Flask, monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """An app like the test one, on its database, behind one trusted proxy."""
    other = create_app(
        {key: app.config[key] for key in (
            "TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "JWT_SECRET_KEY", "PII_ENCRYPTION_KEY",
            "PII_HASH_KEY", "RATELIMIT_STORAGE_URI", "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM",
        )} | {"TRUSTED_PROXY_HOPS": 1, "LOGIN_LIMIT_PER_ADDRESS": "3 per minute"}
    )  # fmt: skip
    other.test_client_class = RequestIsolatingClient
    return other.test_client()


def _login(client: FlaskClient, phone: str, password: str, forwarded: str, **environ: str) -> Any:
    return client.post(
        "/api/v1/auth/login", json={"phone": phone, "password": password},
        headers={"X-Forwarded-For": forwarded}, environ_base=environ or BEHIND_NGINX,
    )  # fmt: skip


def _session_address(user: User) -> str | None:
    db.session.expire_all()
    return db.session.scalars(
        sa.select(AuthSession.client_address).where(AuthSession.user_id == user.id).order_by(AuthSession.id.desc())
    ).first()


def test_behind_a_trusted_proxy_each_client_has_its_own_login_budget(proxied: FlaskClient, tree: Tree) -> None:
    user = factories.make_user("staff", tree.district_a)
    first, second = _address(), _address()
    while second == first:
        second = _address()
    # Three failures from one client, each for another phone (the per-phone limit stays out of it).
    for _ in range(3):
        assert _login(proxied, f"139{secrets.randbelow(10**8):08d}", "wrong", first).status_code == 401
    assert_problem(_login(proxied, user.phone, PASSWORD, first), 429, "too_many_requests")
    # Another phone behind the same proxy still has its budget, and its session records its address.
    assert _login(proxied, user.phone, PASSWORD, second).status_code == 200
    assert _session_address(user) == second


def test_only_the_entry_the_trusted_proxy_appended_counts(proxied: FlaskClient, tree: Tree) -> None:
    user = factories.make_user("staff", tree.district_a)
    real = _address()
    # A client writes its own X-Forwarded-For; nginx appends the address it saw.
    assert _login(proxied, user.phone, PASSWORD, f"10.0.0.1, 127.0.0.1, {real}").status_code == 200
    assert _session_address(user) == real


def test_without_trusted_proxies_a_forwarded_address_is_ignored(
    client: FlaskClient, app: Flask, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert app.config["TRUSTED_PROXY_HOPS"] == 0  # the default
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ADDRESS", "3 per minute")
    user = factories.make_user("staff", tree.district_a)
    connection = {"REMOTE_ADDR": _address()}
    for _ in range(3):
        assert _login(client, f"139{secrets.randbelow(10**8):08d}", "wrong", _address(), **connection).status_code == 401
    # A new X-Forwarded-For each time bought no new budget: the connection's address is the client.
    assert_problem(_login(client, user.phone, PASSWORD, _address(), **connection), 429, "too_many_requests")
    other = {"REMOTE_ADDR": _address()}
    while other == connection:
        other = {"REMOTE_ADDR": _address()}
    assert _login(client, user.phone, PASSWORD, _address(), **other).status_code == 200
    assert _session_address(user) == other["REMOTE_ADDR"]
