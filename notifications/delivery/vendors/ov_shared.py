"""What the OPPO and vivo providers share: the day their quotas reset, the length rules of their
notification fields, and the check of the signed reference their receipts echo back.

Neither vendor signs its receipts (docs/push-vendors.md), so each message carries
``receipts.signed_reference(channel, notification_id)`` as its callback parameter and a receipt
counts only when every item's reference verifies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core import i18n
from core.errors import Forbidden, Unauthorized
from notifications.delivery.receipts import verified_reference

#: Both vendors count their daily caps by the calendar day in China (UNCONFIRMED: docs/push-vendors.md).
VENDOR_ZONE = ZoneInfo("Asia/Shanghai")
#: Sent a little after the reset, so a clock a few seconds apart from the vendor's is not refused again.
RESET_MARGIN_SECONDS = 120.0

i18n.register_titles(
    i18n.title("receipt_unsigned", "Receipt without proof"), i18n.title("receipt_forged", "Receipt not genuine")
)
i18n.register_messages(
    i18n.N_("This receipt carries no reference of ours."),
    i18n.N_("This receipt's reference does not verify."),
)


def from_millis(value: Any) -> datetime | None:
    """A receipt's time in epoch milliseconds (OPPO and vivo), or None when it is not one."""
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def seconds_to_reset(now: datetime | None = None) -> float:
    """Seconds until the vendor's next day begins (00:00 Asia/Shanghai), plus a margin."""
    now = (now or datetime.now(UTC)).astimezone(VENDOR_ZONE)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), VENDOR_ZONE)
    return (midnight - now).total_seconds() + RESET_MARGIN_SECONDS


def fit(text: str, limit: int, *, wide_counts_two: bool = False) -> str:
    """``text`` cut to ``limit`` characters (a CJK or other wide character counting two when the
    vendor counts so), with an ellipsis when cut: a longer field is refused as a bad payload."""

    def width(char: str) -> int:
        return 2 if wide_counts_two and ord(char) > 0x2E7F else 1

    if sum(width(c) for c in text) <= limit:
        return text
    kept, used = [], width("…")
    for char in text:
        if used + width(char) > limit:
            break
        kept.append(char)
        used += width(char)
    return "".join(kept) + "…"


def verified_ids(channel: str, references: list[Any]) -> list[int]:
    """The notification ids of the references, or the refusal: 401 when a receipt has none,
    403 when one does not verify (then nothing of the request is recorded)."""
    if not references or any(ref in (None, "") for ref in references):
        raise Unauthorized("This receipt carries no reference of ours.", code="receipt_unsigned")
    ids = [verified_reference(channel, ref) for ref in references]
    if any(ident is None for ident in ids):
        raise Forbidden("This receipt's reference does not verify.", code="receipt_forged")
    return [ident for ident in ids if ident is not None]


def targets_of(listed: Any) -> list[str | None]:
    """The tokens a receipt names (comma-separated), or one unnamed target when it names none."""
    found: list[str | None] = [part.strip() for part in str(listed or "").split(",") if part.strip()]
    return found or [None]
