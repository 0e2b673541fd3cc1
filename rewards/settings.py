"""rewards' settings (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer

#: The interval both rewards tasks run at (point expiry, the month-without-absence badges).
TASKS_INTERVAL = "REWARDS_TASKS_MINUTES"

SETTINGS: tuple[Setting, ...] = (
    integer(TASKS_INTERVAL, 60, "how often beat runs point expiry and the month-without-absence badges"),
)
