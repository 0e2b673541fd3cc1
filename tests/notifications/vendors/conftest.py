"""Fixtures of the OPPO and vivo channel tests: a local vendor server, the app configured to push
to it through the real provider, devices registered through the API, notifications written as the
app writes them, and delivery run as the worker runs it (``deliver_due``)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from notifications.delivery.push import close_providers
from notifications.delivery.service import deliver_due
from notifications.devices.models import Device
from notifications.models import Notification, PushStatus
from notifications.service import notify
from tests import factories
from tests.push_servers.oppo import FakeOppo
from tests.push_servers.ov_base import FakeVendor
from tests.push_servers.vivo import FakeVivo

API = "/api/v1"
_numbers = itertools.count(1)


def oppo_config(server: FakeOppo) -> dict[str, Any]:
    return {
        "OPPO_APP_KEY": server.app_key,
        "OPPO_MASTER_SECRET": server.master_secret,
        "OPPO_ENDPOINT": server.base_url,
    }


def vivo_config(server: FakeVivo) -> dict[str, Any]:
    return {
        "VIVO_APP_ID": str(server.app_id), "VIVO_APP_KEY": server.app_key, "VIVO_APP_SECRET": server.app_secret,
        "VIVO_ENDPOINT": server.base_url,
    }  # fmt: skip


@dataclass
class Vendor:
    """One vendor's server, its channel, and the app pointed at it."""

    channel: str
    server: Any  # FakeOppo | FakeVivo
    app: Flask
    monkeypatch: pytest.MonkeyPatch

    def configure(self, **settings: Any) -> None:
        for name, value in settings.items():
            self.monkeypatch.setitem(self.app.config, name, value)


def _vendor(channel: str, app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vendor]:
    server: FakeVendor
    if channel == "oppo":
        server = oppo_server = FakeOppo().start()
        config = oppo_config(oppo_server)
    else:
        server = vivo_server = FakeVivo().start()
        config = vivo_config(vivo_server)
    for name, value in config.items():
        monkeypatch.setitem(app.config, name, value)
    try:
        yield Vendor(channel, server, app, monkeypatch)
    finally:
        server.stop()
        close_providers(app)


@pytest.fixture
def oppo(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vendor]:
    yield from _vendor("oppo", app, monkeypatch)


@pytest.fixture
def vivo(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vendor]:
    yield from _vendor("vivo", app, monkeypatch)


@pytest.fixture(params=["oppo", "vivo"])
def vendor(request: pytest.FixtureRequest, app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vendor]:
    yield from _vendor(request.param, app, monkeypatch)


# --- the app's side ---------------------------------------------------------------------------------


def make_recipient() -> User:
    return factories.make_user("volunteer", factories.make_area(AreaLevel.CITY))


def new_token() -> str:
    """23 characters, as vivo's regIds are (OPPO's are free-form)."""
    return f"R{next(_numbers):010d}{'x' * 12}"


def register(client: FlaskClient, user: User, channel: str, token: str | None = None) -> str:
    """Register a vendor token for ``user`` as the app does; returns the token."""
    token = token or new_token()
    answer = client.post(
        f"{API}/me/devices", json={"token": token, "platform": "android", "channel": channel},
        headers=factories.headers_for(user),
    )  # fmt: skip
    assert answer.status_code in (200, 201), answer.get_json()
    return token


def write(
    user: User,
    *,
    urgent: bool = False,
    kind: str = "broadcast",
    title: str = "今晚巡逻",
    body: str = "请按时到达集合点",
) -> Notification:
    """One notification written as the app writes one (``notifications.service.notify``)."""
    assert notify([user.id], kind, {"title": title, "body": body}, {"broadcast_id": "7"}, urgent=urgent) == 1
    db.session.flush()
    return db.session.scalars(
        sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id.desc())
    ).first()


def due_now() -> datetime:
    """A clock at which everything pending is due (quiet hours may hold a row back)."""
    db.session.expire_all()
    latest = db.session.scalar(
        sa.select(sa.func.max(Notification.push_due_at)).where(Notification.push_status == PushStatus.PENDING)
    )
    return max(utcnow(), latest) if latest else utcnow()


def deliver() -> Any:
    return deliver_due(now=due_now())


def statuses() -> Counter[str]:
    db.session.expire_all()
    return Counter(db.session.scalars(sa.select(Notification.push_status)).all())


def device(token: str) -> Device:
    db.session.expire_all()
    found = db.session.scalars(sa.select(Device).where(Device.token == token)).one()
    return found
