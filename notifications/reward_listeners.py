"""Rewards events become notifications for the volunteer: a badge earned, a redemption's status.

Written through ``listeners.queue_event`` like every other event, so the rows commit or roll back
with the change. Nobody is told what they did themselves: a volunteer requesting or cancelling
their own redemption gets no notification for it.
"""

from __future__ import annotations

from typing import Any, Unpack

from notifications.listeners import QueuedEvent, queue_event
from rewards import signals as reward_signals
from rewards.badges.service import BADGES


def _on_badge_earned(_sender: Any, **event: Unpack[reward_signals.BadgeEarned]) -> None:
    volunteer_id, badge = event["volunteer_id"], event["badge"]
    name_zh, name_en = BADGES.get(badge, (badge, badge))
    queue_event(
        QueuedEvent(
            "badge_earned",
            {"volunteer_id": volunteer_id, "badge": badge},
            {"badge_name_zh": name_zh, "badge_name_en": name_en},
            volunteer_ids=(volunteer_id,),
            dedupe_key=f"badge_earned:{badge}",
        )
    )


def _on_redemption_status_changed(
    _sender: Any, **event: Unpack[reward_signals.RedemptionStatusChanged]
) -> None:
    redemption_id, status = event["redemption_id"], event["status"]
    queue_event(
        QueuedEvent(
            "redemption_status",
            {"redemption_id": redemption_id, "item_id": event["item_id"]},
            {
                "item_name": event["item_name"], "status": status, "pickup_code": event["pickup_code"],
                "reason": event["reason"],
            },
            volunteer_ids=(event["volunteer_id"],),
            actor_id=event["actor_id"],
            dedupe_key=f"redemption_status:{redemption_id}:{status}",
        )
    )


def connect() -> None:
    reward_signals.badge_earned.connect(_on_badge_earned)
    reward_signals.redemption_status_changed.connect(_on_redemption_status_changed)
