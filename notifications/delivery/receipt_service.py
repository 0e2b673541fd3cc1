"""Recording the delivery receipts vendors post back (``POST /push-receipts/{channel}``). Flushes only.

The channel's handler (``vendors.receipt_handlers()``) checks the vendor's proof and parses the
body; this records each receipt once per (notification, device, status), whatever the vendor
repeats. A receipt naming a notification we do not have (deleted since, or never ours) is counted
and ignored: an error would only make the vendor post it again and again.

A receipt saying the token is dead (``Receipt.token_dead``, per vendor) deactivates the device the
push went to (reason ``receipt``). The link is the outbox's own record: the devices it sent the
notification to (``push_device_ids``) on this channel, the one holding the named token (or the only
one, when the receipt names none). The guard is the outbox's (``deactivate_dead_tokens``): a device
registered again after the push went out (``pushed_at``) is kept, and so is every device of a
notification not settled as sent yet (its send time unknown); an inactive one is left as it is, so
a repeated receipt changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Request

from core import i18n
from core.db import insert_on_conflict, utcnow
from core.errors import NotFound
from core.extensions import db
from notifications.delivery import vendors
from notifications.delivery.models import PushReceipt
from notifications.delivery.receipts import Receipt, ReceiptHandler
from notifications.devices.models import Device
from notifications.devices.service import deactivate_dead_tokens, token_hash
from notifications.models import Notification

i18n.register_titles(i18n.title("receipt_channel_not_found", "No receipts for this channel"))
i18n.register_messages(i18n.N_("This channel takes no delivery receipts."))
# Each vendor module registers its problem texts when it loads: load them with the app, so a text
# is answered in Chinese whatever happened to import the vendors first.
vendors.modules()

_table = PushReceipt.__table__
_COLUMNS = ("notification_id", "notification_created_at", "device_id", "channel", "delivered", "status", "vendor_at", "received_at")
_INSERT = insert_on_conflict(_table, _COLUMNS, ("notification_id", "device_id", "status"))


def handler_for(channel: str) -> ReceiptHandler:
    """The channel's receipt handler; a channel without one (or no channel) is 404."""
    handler = vendors.receipt_handlers().get(channel)
    if handler is None:
        raise NotFound("This channel takes no delivery receipts.", code="receipt_channel_not_found")
    return handler


def accept(channel: str, request: Request, now: datetime | None = None) -> dict[str, int]:
    """Verify (401/403 before anything is read or written), parse, record."""
    handler = handler_for(channel)
    handler.verify(request)
    return record(channel, handler.parse(request), now)


def record(channel: str, receipts: Sequence[Receipt], now: datetime | None = None) -> dict[str, int]:
    """Record each receipt once; returns how many came and how many were new."""
    now = now or utcnow()
    ids = sorted({r.notification_id for r in receipts})
    # Each notification's created_at, copied onto its receipts: retention removes a month's
    # receipts with the month (push_receipts has no foreign key into the partitioned table).
    known = (
        dict(db.session.execute(sa.select(Notification.id, Notification.created_at).where(Notification.id.in_(ids))).tuples().all())
        if ids
        else {}
    )
    hashes = {token_hash(r.token) for r in receipts if r.token}
    devices = (
        dict(db.session.execute(sa.select(Device.token_hash, Device.id).where(Device.token_hash.in_(sorted(hashes)))).tuples().all())
        if hashes
        else {}
    )
    recorded = 0
    seen: set[tuple[int, int | None, str]] = set()
    without_device: dict[int, set[str]] = defaultdict(set)
    for receipt in receipts:
        if receipt.notification_id not in known:
            continue
        device_id = devices.get(token_hash(receipt.token)) if receipt.token else None
        status = (receipt.status or ("delivered" if receipt.delivered else "failed"))[:32]
        key = (receipt.notification_id, device_id, status)
        if key in seen:
            continue
        seen.add(key)
        if device_id is None:
            # NULLs never conflict in a unique constraint: look for the earlier one ourselves.
            if not without_device:
                without_device.update(_recorded_without_device(ids))
            if status in without_device[receipt.notification_id]:
                continue
        values: dict[str, Any] = {
            "notification_id": receipt.notification_id, "notification_created_at": known[receipt.notification_id],
            "device_id": device_id, "channel": channel,
            "delivered": receipt.delivered, "status": status, "vendor_at": receipt.at, "received_at": now,
        }
        if db.session.execute(_INSERT, values).first() is not None:
            recorded += 1
    dead = [receipt for receipt in receipts if receipt.token_dead and receipt.notification_id in known]
    deactivate_dead_tokens(_dead_devices(channel, dead), "receipt", now)
    db.session.flush()
    return {"received": len(receipts), "recorded": recorded}


def _dead_devices(channel: str, dead: Sequence[Receipt]) -> dict[int, datetime]:
    """Device id → when the push the receipt reports on went out, for the devices to deactivate."""
    if not dead:
        return {}
    sent = {
        row.id: (row.pushed_at, list(row.push_device_ids or []))
        for row in db.session.execute(
            sa.select(Notification.id, Notification.pushed_at, Notification.push_device_ids).where(
                Notification.id.in_(sorted({r.notification_id for r in dead})),
                Notification.pushed_at.is_not(None),  # set when the row is settled as sent
            )
        )
    }
    device_ids = sorted({i for _, ids in sent.values() for i in ids})
    on_channel = sa.select(Device.id, Device.token_hash).where(Device.id.in_(device_ids), Device.channel == channel)
    hashes = dict(db.session.execute(on_channel).tuples().all()) if device_ids else {}
    found: dict[int, datetime] = {}
    for receipt in dead:
        if receipt.notification_id not in sent:
            continue
        pushed_at, reached = sent[receipt.notification_id]
        candidates = [i for i in reached if i in hashes]
        if receipt.token:
            wanted = token_hash(receipt.token)
            target = next((i for i in candidates if hashes[i] == wanted), None)
        else:
            target = candidates[0] if len(candidates) == 1 else None  # which of several: unknown
        if target is not None:
            # The earliest push a dead receipt names: a registration after it is not overruled.
            found[target] = min(found.get(target, pushed_at), pushed_at)
    return found


def _recorded_without_device(ids: list[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    rows = db.session.execute(
        sa.select(PushReceipt.notification_id, PushReceipt.status).where(
            PushReceipt.notification_id.in_(ids), PushReceipt.device_id.is_(None)
        )
    )
    for notification_id, status in rows:
        found[notification_id].add(status)
    return found


def delivery_of(notification_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """For the inbox: per notification, how many phones a vendor said it reached, and on how many
    it failed (a phone with both counts as reached). Notifications without receipts are absent."""
    if not notification_ids:
        return {}
    rows = db.session.execute(
        sa.select(PushReceipt.id, PushReceipt.notification_id, PushReceipt.device_id, PushReceipt.delivered)
        .where(PushReceipt.notification_id.in_(sorted(notification_ids)))
    )
    phones: dict[int, dict[Any, bool]] = defaultdict(dict)
    for receipt_id, notification_id, device_id, delivered in rows:
        # A receipt that names no device we know stands for a phone of its own.
        phone = device_id if device_id is not None else ("receipt", receipt_id)
        phones[notification_id][phone] = phones[notification_id].get(phone, False) or bool(delivered)
    return {
        notification_id: {"delivered": sum(seen.values()), "failed": sum(not d for d in seen.values())}
        for notification_id, seen in phones.items()
    }
