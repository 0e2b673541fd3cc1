"""records' settings (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer, text

#: How long a proposed star level is publicised (公示) before it can be certified.
STAR_PUBLICITY_DAYS = "RECORDS_STAR_PUBLICITY_DAYS"
#: How often beat certifies the star levels whose publicity has ended.
STAR_CERTIFY_MINUTES = "RECORDS_STAR_CERTIFY_MINUTES"
#: The public certificate check, per client address.
VERIFY_LIMIT = "RECORDS_VERIFY_LIMIT"

SETTINGS: tuple[Setting, ...] = (
    integer(
        STAR_PUBLICITY_DAYS,
        7,
        "days a proposed star level is publicised (公示) to its area before it is certified, if no "
        "objection is upheld",
    ),
    integer(
        STAR_CERTIFY_MINUTES,
        10,
        "how often beat certifies the star levels whose publicity ended with no upheld or open objection",
    ),
    text(VERIFY_LIMIT, "30 per minute;300 per hour", "public certificate checks allowed per client address before 429"),
)
