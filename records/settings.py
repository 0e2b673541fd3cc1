"""records' settings (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer, text

#: How long a proposed star level is publicised (公示) before it can be certified.
STAR_PUBLICITY_DAYS = "RECORDS_STAR_PUBLICITY_DAYS"
#: How often beat certifies the star levels whose publicity has ended.
STAR_CERTIFY_MINUTES = "RECORDS_STAR_CERTIFY_MINUTES"
#: The public certificate check, per client address.
VERIFY_LIMIT = "RECORDS_VERIFY_LIMIT"
#: Where the QR code on a certificate points (the public verification page lives under it).
PUBLIC_BASE_URL = "RECORDS_PUBLIC_BASE_URL"
#: The TrueType CJK font certificates are printed with.
CJK_FONT = "RECORDS_CJK_FONT"

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
    text(
        PUBLIC_BASE_URL,
        None,
        "base URL of the public certificate check the QR code opens (e.g. `https://shouwang.example`); "
        "unset: the host the PDF was downloaded from",
        blank_is_unset=True,
    ),
    text(
        CJK_FONT,
        None,
        "TrueType (.ttf/.ttc) Chinese font file certificates are printed with; unset: the first of Debian's "
        "fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-uming, fonts-droid-fallback found (`make install` "
        "installs the first); none: certificate PDFs answer 503",
        blank_is_unset=True,
    ),
)
