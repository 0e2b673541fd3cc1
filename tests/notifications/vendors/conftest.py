"""Fixtures and helpers of the vendor channel tests (hms, honor, mi, oppo, vivo): each vendor's local
server with the app pointed at it through the real provider, devices registered through the API,
notifications written as the app writes them, and delivery run as the worker runs it (``deliver_due``)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
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
from notifications.quiet_hours.models import NotificationSettings
from notifications.service import notify
from tests import factories
from tests.push_servers.honor import FakeHonor
from tests.push_servers.huawei import FakeHuawei
from tests.push_servers.oppo import FakeOppo
from tests.push_servers.vivo import FakeVivo
from tests.push_servers.xiaomi import FakeMiPush

API = "/api/v1"
_numbers = itertools.count(1)


MI_SECRET = "mi-test-secret"
MI_PACKAGE = "org.shouwang.app"


def hms_settings(server: FakeHuawei) -> dict[str, str]:
    return {
        "HMS_CLIENT_ID": server.client_id, "HMS_CLIENT_SECRET": server.client_secret, "HMS_APP_ID": server.app_id,
        "HMS_ENDPOINT": server.base_url, "HMS_AUTH_URL": server.auth_url,
        "HMS_RECEIPT_USERNAME": server.receipt_username, "HMS_RECEIPT_SECRET": server.receipt_secret,
    }  # fmt: skip


def honor_settings(server: FakeHonor) -> dict[str, str]:
    return {
        "HONOR_CLIENT_ID": server.client_id, "HONOR_CLIENT_SECRET": server.client_secret, "HONOR_APP_ID": server.app_id,
        "HONOR_ENDPOINT": server.base_url, "HONOR_AUTH_URL": server.auth_url,
    }  # fmt: skip


def mi_settings(server: FakeMiPush) -> dict[str, str]:
    return {
        "XIAOMI_APP_SECRET": server.secret, "XIAOMI_PACKAGE": server.package, "XIAOMI_ENDPOINT": server.base_url,
        "XIAOMI_CALLBACK_URL": "https://shouwang.example/api/v1/push-receipts/mi",
    }  # fmt: skip


def oppo_settings(server: FakeOppo) -> dict[str, str]:
    return {
        "OPPO_APP_KEY": server.app_key,
        "OPPO_MASTER_SECRET": server.master_secret,
        "OPPO_ENDPOINT": server.base_url,
    }


def vivo_settings(server: FakeVivo) -> dict[str, str]:
    return {
        "VIVO_APP_ID": str(server.app_id), "VIVO_APP_KEY": server.app_key, "VIVO_APP_SECRET": server.app_secret,
        "VIVO_ENDPOINT": server.base_url,
    }  # fmt: skip


#: Per channel: its local server (with the credentials the tests use) and the app settings pointing at it.
VENDORS: dict[str, tuple[Callable[[], Any], Callable[[Any], dict[str, str]]]] = {
    "hms": (lambda: FakeHuawei(client_id="10086", client_secret="hms-secret", app_id="10086"), hms_settings),
    "honor": (
        lambda: FakeHonor(client_id="honor-client", client_secret="honor-secret", app_id="104400"),
        honor_settings,
    ),
    "mi": (lambda: FakeMiPush(secret=MI_SECRET, package=MI_PACKAGE), mi_settings),
    "oppo": (FakeOppo, oppo_settings),
    "vivo": (FakeVivo, vivo_settings),
}


def settings_for(channel: str, server: Any) -> dict[str, str]:
    """The app settings (environment names) that point ``channel``'s provider at ``server``."""
    return VENDORS[channel][1](server)


def serve(channel: str, app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``channel``'s local server, started, with the app pointed at it; stopped after the test."""
    make, _ = VENDORS[channel]
    server = make().start()
    for name, value in settings_for(channel, server).items():
        monkeypatch.setitem(app.config, name, value)
    try:
        yield server
    finally:
        server.stop()
        close_providers(app)


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
    for server in serve(channel, app, monkeypatch):
        yield Vendor(channel, server, app, monkeypatch)


@pytest.fixture
def hms(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHuawei]:
    yield from serve("hms", app, monkeypatch)


@pytest.fixture
def honor(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHonor]:
    yield from serve("honor", app, monkeypatch)


@pytest.fixture
def mi(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMiPush]:
    yield from serve("mi", app, monkeypatch)


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
    """A volunteer without quiet hours: these tests are about the channels, and a default user's
    pushes wait for 07:00 in Shanghai when the suite runs in the evening there (14:00–23:00 UTC),
    which moved the simulated delivery clock, and so ``pushed_at``, hours ahead of the test's."""
    user = factories.make_user("volunteer", factories.make_area(AreaLevel.CITY))
    db.session.add(
        NotificationSettings(user_id=user.id, quiet_hours_enabled=False, quiet_start_minute=1320, quiet_end_minute=420)
    )
    db.session.flush()
    return user


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


def notify_now(
    user: User, *, urgent: bool = False, title: str = "今晚巡逻", body: str = "请准时到岗", now: datetime | None = None
) -> Notification:
    """A broadcast to ``user`` written as the app writes it, due at once (no quiet hours' wait)."""
    now = now or utcnow()
    notify(
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


def status(note: Notification) -> PushStatus:
    db.session.expire_all()
    row = db.session.get(Notification, note.id)
    assert row is not None
    return PushStatus(row.push_status)


def pending_due() -> datetime | None:
    """When the earliest pending notification is due (None: nothing pending)."""
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.min(Notification.push_due_at)).where(Notification.push_status == PushStatus.PENDING)
    )
