"""Events of the rewards package; notifications listen, nothing here imports them.

Every signal is sent with ``sender=SENDER`` and the keyword arguments of its payload, a TypedDict
declared below it: senders write ``signal.send(SENDER, **Payload(...))`` and receivers take
``**payload: Unpack[Payload]``, so mypy checks both ends against one declaration.

Receivers run inside the sender's transaction, before the commit: they may add rows (an outbox
entry) that commit or roll back with the change, but must not push or enqueue anything themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from blinker import Namespace

SENDER = "rewards"

_signals = Namespace()

badge_earned = _signals.signal("badge-earned", doc="A volunteer earned a badge (once per badge).")


class BadgeEarned(TypedDict):
    """Fires once per volunteer and badge, when it is earned."""

    volunteer_id: int
    badge: str  # a code from rewards/badges/service.py
    earned_at: datetime


redemption_status_changed = _signals.signal(
    "redemption-status-changed", doc="A redemption was requested, approved, fulfilled, cancelled or rejected."
)


class RedemptionStatusChanged(TypedDict):
    """Fires when a redemption is requested, approved, fulfilled, cancelled or rejected."""

    redemption_id: int
    volunteer_id: int
    item_id: int
    item_name: str
    status: str  # requested, approved, fulfilled, cancelled, rejected
    pickup_code: str | None  # once approved
    reason: str | None
    actor_id: int
