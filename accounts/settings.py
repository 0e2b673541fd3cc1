"""accounts' settings: login sessions, password hashing, login limits (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, duration, integer, text

SETTINGS: tuple[Setting, ...] = (
    duration(
        "SESSION_ABSOLUTE_LIFETIME", "SESSION_ABSOLUTE_DAYS", "days", 90,
        "a login ends this many days after it began, however often its tokens are refreshed",
    ),
    duration(
        "REFRESH_REUSE_GRACE", "REFRESH_REUSE_GRACE_SECONDS", "seconds", 10,
        "a rotated refresh token presented again within this many seconds is a lost response, not theft",
    ),
    # Password hashing: argon2id at the OWASP minimum (19 MiB, 2 iterations, 1 lane).
    integer("ARGON2_TIME_COST", 2, "argon2id iterations (the OWASP minimum)"),
    integer("ARGON2_MEMORY_COST", 19 * 1024, "argon2id memory in KiB (19 MiB, the OWASP minimum)"),
    integer("ARGON2_PARALLELISM", 1, "argon2id lanes"),
    # Brute-force limits on login (failed attempts only).
    text("LOGIN_LIMIT_PER_PHONE", "5 per minute;20 per hour", "failed logins allowed per phone number before 429"),
    text(
        "LOGIN_LIMIT_PER_ADDRESS", "30 per minute;200 per hour", "failed logins allowed per client address before 429"
    ),
)
