"""console's settings: the browser session (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, duration, flag

SETTINGS: tuple[Setting, ...] = (
    duration(
        "CONSOLE_IDLE_TIMEOUT", "CONSOLE_IDLE_MINUTES", "minutes", 30,
        "a console session with no page opened for this many minutes ends (sign in again)",
    ),
    flag(
        "CONSOLE_INSECURE_COOKIES",
        "`1`: the console's cookies without `Secure`, for plain HTTP in development (`make run` sets it); "
        "never in production",
    ),
)
