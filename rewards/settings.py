"""rewards' settings (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer

#: The interval both rewards tasks run at (point expiry, the month-without-absence badges).
TASKS_INTERVAL = "REWARDS_TASKS_MINUTES"
#: How often beat folds the leaderboards' grid changes into the grid rows (rewards/leaderboards/tasks.py).
FOLD_INTERVAL = "LEADERBOARD_FOLD_MINUTES"

SETTINGS: tuple[Setting, ...] = (
    integer(TASKS_INTERVAL, 60, "how often beat runs point expiry and the month-without-absence badges"),
    integer(FOLD_INTERVAL, 5, "how often beat folds the leaderboards' per-grid changes into their rows (boards are "
            "exact either way; folding keeps what they read small)"),
)
