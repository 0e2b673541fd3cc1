"""rewards' settings (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer

SETTINGS: tuple[Setting, ...] = (
    integer("REWARDS_TASKS_MINUTES", 60, "how often beat runs point expiry and the month-without-absence badges"),
)
