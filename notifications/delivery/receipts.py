"""Delivery receipts (回执) the vendors post back: the contract between the receipts endpoint and
each vendor's handler.

The endpoint (``POST /api/v1/push-receipts/{channel}``) asks the channel's handler to
:meth:`~ReceiptHandler.verify` the request (a forged or unsigned one is 401/403 and changes
nothing) and to :meth:`~ReceiptHandler.parse` it into :class:`Receipt` items, then records
delivered/failed per notification and device; a receipt whose vendor says the token is dead
(:attr:`Receipt.token_dead`) deactivates the device the push went to. Vendors that sign nothing (Xiaomi, OPPO, vivo, as far
as their documents say) get their proof from us: the callback parameter each message carries is
:func:`signed_reference` of its notification id, checked by :func:`verified_reference`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flask import Request, current_app


@dataclass(frozen=True)
class Receipt:
    notification_id: int
    token: str | None  # the device's push token, when the vendor names it
    delivered: bool  # False: the vendor reports it failed (status says why)
    status: str  # the vendor's own code or word, kept as sent
    at: datetime | None = None  # the vendor's time of the event, when given
    # The vendor says the token itself is dead (app uninstalled, token unregistered): the device
    # the push went to is deactivated. Not for a failure the phone may recover from (notifications
    # switched off, offline, a daily cap).
    token_dead: bool = False


class ReceiptHandler(Protocol):
    def verify(self, request: Request) -> None:
        """Raise ``core.errors.Unauthorized`` (no or malformed proof) or ``Forbidden`` (a wrong one)."""
        ...

    def parse(self, request: Request) -> list[Receipt]:
        """The receipts in the request; ``ValidationFailed`` for a body that is not the vendor's."""
        ...


def _key(channel: str) -> bytes:
    secret = current_app.config.get("PUSH_RECEIPT_KEY") or current_app.config["SECRET_KEY"]
    return hashlib.sha256(f"push-receipt:{channel}:{secret}".encode()).digest()


def signed_reference(channel: str, notification_id: int) -> str:
    """``<id>.<mac>``: what a message carries as its callback parameter, so a receipt names its
    notification in a way nobody else can forge."""
    mac = hmac.new(_key(channel), str(notification_id).encode(), hashlib.sha256).hexdigest()[:32]
    return f"{notification_id}.{mac}"


def verified_reference(channel: str, reference: Any) -> int | None:
    """The notification id of a reference :func:`signed_reference` made, or None when it is not one."""
    if not isinstance(reference, str) or reference.count(".") != 1:
        return None
    number, mac = reference.split(".")
    if not number.isascii() or not number.isdigit() or len(number) > 18:
        return None
    expected = signed_reference(channel, int(number)).split(".")[1]
    return int(number) if hmac.compare_digest(mac, expected) else None
