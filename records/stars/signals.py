"""Events of star levels; a listener (notifications, say) may tell the volunteer. Nothing here
imports a listener. Sent inside the transaction of the change, like ``rewards.signals``."""

from __future__ import annotations

from typing import TypedDict

from blinker import Namespace

SENDER = "records.stars"

_signals = Namespace()

star_level_decided = _signals.signal(
    "star-level-decided", doc="A star level was certified or rejected (once per level)."
)


class StarLevelDecided(TypedDict):
    """Fires once per star level, when it leaves ``pending``."""

    star_level_id: int
    volunteer_id: int
    level: int
    status: str  # certified, rejected
