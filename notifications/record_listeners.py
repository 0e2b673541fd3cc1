"""records' events become notifications for the volunteer: a star level certified.

Written through ``listeners.queue_event`` like every other event, so the row commits or rolls back
with the certification (by the periodic task or by the decision that dismissed the last objection).
A rejected level sends nothing here: the volunteer sees it in ``GET /me/star-levels``.
"""

from __future__ import annotations

from typing import Any, Unpack

from notifications.listeners import QueuedEvent, queue_event
from records.stars import signals as star_signals
from rewards.badges.service import BADGES


def _on_star_level_decided(_sender: Any, **event: Unpack[star_signals.StarLevelDecided]) -> None:
    if event["status"] != "certified":
        return
    badge = f"star_{event['level']}"
    name_zh, name_en = BADGES.get(badge, (badge, badge))
    queue_event(
        QueuedEvent(
            "star_level_certified",
            {"star_level_id": event["star_level_id"], "star_level": event["level"]},
            {"badge_name_zh": name_zh, "badge_name_en": name_en},
            volunteer_ids=(event["volunteer_id"],),
            dedupe_key=f"star_level_certified:{event['star_level_id']}",
        )
    )


def connect() -> None:
    star_signals.star_level_decided.connect(_on_star_level_decided)
