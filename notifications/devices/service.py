"""Devices: a phone registers its push token, refreshes it, and stops pushes at logout.

One row per push token (``token_hash`` is unique), so a token that comes back under another
user *moves*: the row's ``user_id`` changes and ``registered_at`` restarts. The previous user's
pushes are never sent to it afterwards, because delivery reads a user's devices when it sends.
Services only flush; the request commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from core import i18n
from core.db import dialect_insert, rowcount, utcnow
from core.errors import NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from notifications.devices.models import Device
from notifications.devices.schemas import DeviceRegisterInput

#: A user's active devices beyond this many (least recently refreshed first) are retired, so a
#: buggy or hostile client cannot make one notification fan out to thousands of tokens.
MAX_ACTIVE_DEVICES = 10

i18n.register_titles(i18n.title("device_not_found", "Device not found"))
i18n.register_messages(i18n.N_("Device not found."))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register_device(user_id: int, data: DeviceRegisterInput, now: datetime | None = None) -> tuple[Device, bool]:
    """Register the phone's token for ``user_id``, or refresh it; returns (device, new for this user).

    One statement (an upsert on the token's hash), so two registrations of one token at once
    cannot both insert: the later one wins the token.
    """
    token = data["token"]
    limit = current_app.config["DEVICE_TOKEN_MAX_LENGTH"]
    if len(token) > limit:
        raise ValidationFailed(errors={"token": [f"Longer than maximum length {limit}."]})
    now = now or utcnow()
    table = Device.__table__
    stmt = dialect_insert(table).values(
        user_id=user_id, token=token, token_hash=token_hash(token), platform=data["platform"],
        channel=data["channel"], installation_id=data.get("installation_id"), app_version=data.get("app_version"), locale=data.get("locale"),
        active=True, registered_at=now, refreshed_at=now,
    )
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["token_hash"],
        set_={
            "user_id": new.user_id, "platform": new.platform, "channel": new.channel,
            "installation_id": new.installation_id, "app_version": new.app_version, "locale": new.locale, "active": True,
            "refreshed_at": new.refreshed_at, "deactivated_at": None, "deactivation_reason": None,
            # A token that moved from another user is a new registration for this one.
            "registered_at": sa.case(
                (table.c.user_id == new.user_id, table.c.registered_at), else_=new.registered_at
            ),
        },
    ).returning(table.c.id, table.c.registered_at)
    row = db.session.execute(stmt).one()
    _retire_extra_devices(user_id, now)
    device = db.session.get_one(Device, row.id, populate_existing=True)
    return device, row.registered_at == now


def _retire_extra_devices(user_id: int, now: datetime) -> None:
    kept = (
        sa.select(Device.id)
        .where(Device.user_id == user_id, Device.active.is_(True))
        .order_by(Device.refreshed_at.desc(), Device.id.desc())
        .limit(MAX_ACTIVE_DEVICES)
    )
    db.session.execute(
        sa.update(Device)
        .where(Device.user_id == user_id, Device.active.is_(True), Device.id.not_in(kept.scalar_subquery()))
        .values(active=False, deactivated_at=now, deactivation_reason="superseded")
        .execution_options(synchronize_session=False)
    )


def list_devices(user_id: int, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """The user's active devices, most recently registered first."""
    stmt = sa.select(Device).where(Device.user_id == user_id, Device.active.is_(True))
    return paginate(stmt, [Device.id], limit=limit, cursor=cursor, descending=True)


def remove_device(user_id: int, device_id: int, now: datetime | None = None) -> None:
    """Stop pushing to one of the user's devices (again is a no-op); another's is not found."""
    device = db.session.get(Device, device_id)
    if device is None or device.user_id != user_id:
        raise NotFound("Device not found.", code="device_not_found")
    _deactivate(sa.and_(Device.id == device.id), "logout", now)


def unregister_token(user_id: int, token: str, now: datetime | None = None) -> bool:
    """Stop pushing to this token if it is the user's and active; False otherwise (never says whose)."""
    return _deactivate(
        sa.and_(Device.token_hash == token_hash(token), Device.user_id == user_id), "logout", now
    ) == 1


def deactivate_user_devices(user_id: int, reason: str, now: datetime | None = None) -> int:
    """Stop pushing to every device of the user (e.g. their last login ended); returns how many."""
    return _deactivate(Device.user_id == user_id, reason, now)


_devices = Device.__table__
_DEACTIVATE_DEAD_TOKEN = (
    _devices.update()
    .where(
        _devices.c.id == sa.bindparam("device_id"),
        _devices.c.active.is_(True),
        # Not if the app registered the token again after we looked (it knows better than a
        # stale answer).
        _devices.c.refreshed_at <= sa.bindparam("seen_refreshed_at"),
    )
    .values(active=False, deactivated_at=sa.bindparam("now"), deactivation_reason=sa.bindparam("reason"))
)


def deactivate_dead_tokens(seen: Mapping[int, datetime], reason: str, now: datetime) -> None:
    """A push service said these devices' tokens are dead: stop pushing to them.

    ``seen`` maps each device id to the moment the answer is about (the device's ``refreshed_at``
    when the outbox read it, or when the push a receipt reports on went out): a device the app
    registered again after that moment keeps pushing, and an inactive one is left as it is, so the
    same answer twice changes nothing. ``reason``: ``unregistered`` (the send's answer) or
    ``receipt`` (a delivery receipt).
    """
    if seen:
        db.session.execute(
            _DEACTIVATE_DEAD_TOKEN,
            [{"device_id": i, "seen_refreshed_at": at, "now": now, "reason": reason[:32]} for i, at in seen.items()],
        )


def _deactivate(condition: sa.ColumnElement[bool], reason: str, now: datetime | None) -> int:
    result = db.session.execute(
        sa.update(Device)
        .where(condition, Device.active.is_(True))
        .values(active=False, deactivated_at=now or utcnow(), deactivation_reason=reason[:32])
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
