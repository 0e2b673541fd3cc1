"""records listens to rewards (rewards never imports records): a star badge earned proposes the
star level, in the transaction that granted the badge."""

from __future__ import annotations

from typing import Any, Unpack

from records.stars import service
from rewards import signals as reward_signals


def _on_badge_earned(_sender: Any, **event: Unpack[reward_signals.BadgeEarned]) -> None:
    service.propose(event["volunteer_id"], event["badge"], event["earned_at"])


def connect() -> None:
    """Subscribe once (blinker keeps module-level functions by weak reference, and once each)."""
    reward_signals.badge_earned.connect(_on_badge_earned)
