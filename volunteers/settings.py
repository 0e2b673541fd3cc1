"""volunteers' settings: registration (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, text

SETTINGS: tuple[Setting, ...] = (
    text("PRIVACY_TERMS_VERSION", "2026-01", "recorded with each volunteer's consent"),
    text(
        "REGISTRATION_LIMIT_PER_ADDRESS", "20 per hour",
        "volunteer registrations per client address (refused ones included) before 429",
    ),
)
