"""Fixtures and helpers of the Huawei and Honor channel tests, imported by their modules: each
vendor's local server with the app pointed at it, and helpers that go the app's way (a device
registered through the API, notifications written by ``notifications.service.notify``, delivery run
as the worker runs it)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from notifications import service
from notifications.delivery.push import close_providers
from notifications.devices.models import Device
from notifications.models import Notification, PushStatus
from tests import factories
from tests.push_servers.honor import FakeHonor
from tests.push_servers.huawei import FakeHuawei

_numbers = itertools.count(1)


@pytest.fixture
def hms(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHuawei]:
    server = FakeHuawei(client_id="10086", client_secret="hms-secret", app_id="10086").start()
    for name, value in {
        "HMS_CLIENT_ID": "10086", "HMS_CLIENT_SECRET": "hms-secret", "HMS_ENDPOINT": server.base_url,
        "HMS_AUTH_URL": server.auth_url, "HMS_RECEIPT_USERNAME": server.receipt_username,
        "HMS_RECEIPT_SECRET": server.receipt_secret,
    }.items():  # fmt: skip
        monkeypatch.setitem(app.config, name, value)
    try:
        yield server
    finally:
        server.stop()
        close_providers(app)


@pytest.fixture
def honor(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHonor]:
    server = FakeHonor(client_id="honor-client", client_secret="honor-secret", app_id="104400").start()
    for name, value in {
        "HONOR_CLIENT_ID": "honor-client", "HONOR_CLIENT_SECRET": "honor-secret", "HONOR_APP_ID": "104400",
        "HONOR_ENDPOINT": server.base_url, "HONOR_AUTH_URL": server.auth_url,
    }.items():  # fmt: skip
        monkeypatch.setitem(app.config, name, value)
    try:
        yield server
    finally:
        server.stop()
        close_providers(app)


def volunteer() -> User:
    return factories.make_user("volunteer", factories.make_area(AreaLevel.CITY))


def register(client: FlaskClient, user: User, channel: str, token: str | None = None) -> str:
    """The app registers its vendor token; returns the token."""
    token = token or f"{channel}-token-{next(_numbers)}-{user.id}"
    answer = client.post(
        "/api/v1/me/devices", json={"token": token, "platform": "android", "channel": channel},
        headers=factories.headers_for(user),
    )  # fmt: skip
    assert answer.status_code in (200, 201), answer.get_json()
    return token


def notify(
    user: User, *, urgent: bool = False, title: str = "今晚巡逻", body: str = "请准时到岗", now: datetime | None = None
) -> Notification:
    """A broadcast to ``user`` written as the app writes it, due at once."""
    now = now or utcnow()
    service.notify(
        [user.id],
        "broadcast",
        {"title": title, "body": body},
        {"broadcast_id": 7},
        urgent=urgent,
        now=now,
        deadline=now,
    )
    db.session.flush()
    return db.session.scalars(
        sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id.desc())
    ).first()  # type: ignore[return-value]


def device(token: str) -> Device:
    db.session.expire_all()
    return db.session.scalars(sa.select(Device).where(Device.token == token)).one()


def status(note: Notification) -> PushStatus:
    db.session.expire_all()
    row = db.session.get(Notification, note.id)
    assert row is not None
    return PushStatus(row.push_status)


def pending_due() -> datetime | None:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.min(Notification.push_due_at)).where(Notification.push_status == PushStatus.PENDING)
    )
