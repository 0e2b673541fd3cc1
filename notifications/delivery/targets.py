"""Which devices a claimed row goes to, and the message each one gets.

A phone may hold tokens on several channels (a vendor's and FCM's); the app names the phone with
its ``installation_id``. A row goes to ONE token per phone: the first by ``PUSH_CHANNEL_PREFERENCE``
(the vendor channels, then FCM, by default). The phone's other tokens wait behind it as fallbacks:
when the first answers ``invalid_token`` (and is deactivated), the same run sends the row to the
next one; for an urgent row also when the first's service cannot take it now (``retry``), rather
than waiting for its backoff. A phone counts as reached when one of its tokens took the row. Devices without an
installation id (apps before issue 18) are each a phone of their own, as before.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from core.extensions import db
from notifications.delivery.outcomes import Row
from notifications.delivery.push import PushMessage, PushProvider
from notifications.devices.models import Device

DEFAULT_PREFERENCE = "hms,honor,mi,oppo,vivo,fcm"

_devices = Device.__table__


_COLUMNS = (
    _devices.c.id,
    _devices.c.user_id,
    _devices.c.token,
    _devices.c.channel,
    _devices.c.refreshed_at,
    _devices.c.installation_id,
)
_USABLE_CONDITIONS = (
    _devices.c.active.is_(True),
    _devices.c.refreshed_at >= sa.bindparam("fresh_since"),
    _devices.c.channel.in_(sa.bindparam("channels", expanding=True)),
)
_USABLE = (
    sa.select(*_COLUMNS)
    .where(_devices.c.user_id.in_(sa.bindparam("user_ids", expanding=True)), *_USABLE_CONDITIONS)
    .order_by(_devices.c.id)
)
_USABLE_POSTGRESQL = (
    sa.select(*_COLUMNS)
    .where(
        _devices.c.user_id == sa.any_(sa.bindparam("user_ids", type_=postgresql.ARRAY(sa.BigInteger))),
        *_USABLE_CONDITIONS,
    )
    .order_by(_devices.c.id)
)


def usable_devices(
    user_ids: set[int], fresh_since: datetime, by_channel: Mapping[str, PushProvider]
) -> dict[int, list[Any]]:
    """Active devices refreshed since ``fresh_since`` on a channel we have a provider for."""
    # PostgreSQL takes the recipients as one array parameter: an IN list of a batch's hundreds of
    # ids is written into the statement on every call (SQLAlchemy's expanding parameters), which
    # cost the delivery run more than the query itself.
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    result = db.session.execute(
        _USABLE_POSTGRESQL if postgresql else _USABLE,
        {"user_ids": sorted(user_ids), "fresh_since": fresh_since, "channels": sorted(by_channel)},
    ).all()
    devices: dict[int, list[Any]] = defaultdict(list)
    for device in result:
        devices[device.user_id].append(device)
    return devices


def preference(config: Mapping[str, Any]) -> dict[str, int]:
    """Channel → rank (lower first); channels not named come after, in name order."""
    names = [c.strip() for c in str(config.get("PUSH_CHANNEL_PREFERENCE") or DEFAULT_PREFERENCE).split(",")]
    return {name: rank for rank, name in enumerate(n for n in names if n)}


def phones(row: Row, devices: list[Any], ranks: Mapping[str, int]) -> list[list[Any]]:
    """The row's phones not reached yet, each as its tokens in the order to try them."""
    if len(devices) == 1:  # by far the most common case: one phone with one token
        return [] if devices[0].id in row.reached else [[devices[0]]]
    grouped: dict[Any, list[Any]] = {}
    for device in devices:
        key = ("phone", device.installation_id) if device.installation_id else ("device", device.id)
        grouped.setdefault(key, []).append(device)
    reached = set(row.reached)
    found = []
    for tokens in grouped.values():
        if any(device.id in reached for device in tokens):
            continue  # one of its tokens took the row already
        found.append(sorted(tokens, key=lambda d: (ranks.get(d.channel, len(ranks)), d.channel, d.id)))
    return found


def message(row: Row, token: str) -> PushMessage:
    # FCM data values must be strings; the app deep-links from "type" and the ids.
    data = {
        str(key): value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        for key, value in row.data.items()
        if value is not None
    }
    data.setdefault("type", row.kind)
    data["notification_id"] = str(row.id)
    return PushMessage(token=token, title=row.title, body=row.body, data=data, urgent=row.urgent)
