"""notifications' settings: push providers, delivery, devices, reminders, quiet hours
(``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, instance_file, integer, integer_list, text
from notifications.delivery.vendors.settings import SETTINGS as VENDOR_SETTINGS

SETTINGS: tuple[Setting, ...] = (
    *VENDOR_SETTINGS,
    # Push through FCM with FIREBASE_CREDENTIALS; without it a recording backend writes what would
    # have been sent to PUSH_RECORD_PATH (JSON lines).
    text(
        "FIREBASE_CREDENTIALS", None,
        "service-account JSON file; `static-token:<token>` (with `FIREBASE_PROJECT_ID`) uses a fixed bearer "
        "token, for a local FCM-speaking server; unset: the recording backend",
    ),
    text("FIREBASE_PROJECT_ID", None, "the FCM project; unset: the service account's"),
    text(
        "FCM_ENDPOINT", None,
        "send to this URL instead of FCM (tests and `bench/notifications.py` use a local server)",
        shown_default="FCM",
    ),
    instance_file("PUSH_RECORD_PATH", "pushes.jsonl", "where the recording backend appends what it would have sent"),
    integer("PUSH_BATCH_SIZE", 500, "messages per FCM `send_each` (its maximum)"),
    integer("PUSH_MAX_ATTEMPTS", 8, "tries before a push is failed (it stays in the inbox)"),
    integer("PUSH_RETRY_BASE_SECONDS", 30, "first retry delay, doubled per attempt, with jitter"),
    integer("PUSH_RETRY_MAX_SECONDS", 3600, "longest retry delay"),
    # Urgent pushes (call-outs, alerts) retry on a short schedule of their own, with more tries.
    integer("PUSH_URGENT_RETRY_BASE_SECONDS", 5, "first retry delay of urgent pushes (call-outs, alerts)"),
    integer("PUSH_URGENT_RETRY_MAX_SECONDS", 60, "longest retry delay of urgent pushes"),
    integer("PUSH_URGENT_MAX_ATTEMPTS", 16, "tries before an urgent push is failed"),
    integer("PUSH_LEASE_SECONDS", 300, "a worker's lease on the rows it claimed; a dead worker's rows return after it"),
    # Beat's delivery run: the safety net for wake-ups lost with the broker, and what notices a push
    # service back after an outage. PUSH_DELIVERY_MINUTES, the former setting, still counts.
    Setting(
        "PUSH_DELIVERY_SECONDS", lambda where: int(where.environ.get("PUSH_DELIVERY_MINUTES", 0)) * 60 or 10, int,
        "how often beat runs delivery (`PUSH_DELIVERY_MINUTES`, the former setting, is still read)",
        shown_default="10",
    ),
    integer("DEVICE_STALE_DAYS", 60, "a device whose token the app has not registered again for this long is skipped"),
    integer("DEVICE_TOKEN_MAX_LENGTH", 4096, "longest push token accepted"),
    integer_list(
        "REMINDER_OFFSETS_MINUTES", [1440, 60],
        "minutes before each assigned shift a reminder goes, unless a city sets its own",
    ),
    integer("REMINDER_MINUTES", 1, "how often beat writes the reminders due"),
    # Inbox history (issue 19): older notifications go, read or not (PostgreSQL: whole months).
    integer(
        "NOTIFICATION_RETENTION_DAYS", 180,
        "notifications (with their receipts) are deleted this many days after they were written, read or not",
    ),
    integer("NOTIFICATION_PURGE_MINUTES", 60, "how often beat runs `notifications.enforce_retention`"),
    # Default quiet hours, in the user's area's time zone: non-urgent pushes wait until the end.
    text("QUIET_HOURS_START", "22:00", "default start of quiet hours (users may set their own)"),
    text("QUIET_HOURS_END", "07:00", "default end of quiet hours"),
    # Vendor channels: which category each kind is sent as (notifications/delivery/categories.py),
    # and the key that signs the references receipts come back with (receipts.py).
    text(
        "PUSH_CATEGORIES", None,
        'JSON `{"<channel>": {"<kind>": "<value>", "default": "<value>"}}` replacing entries of the category table',
        shown_default="the table in `notifications/delivery/categories.py`",
    ),
    text(
        "PUSH_RECEIPT_LIMIT_PER_ADDRESS", None, "rate limit of the receipts endpoint per vendor address",
        shown_default="600 per minute",
    ),
    # Vendor channels beside FCM (issue 18): one token per phone, the first of this order; daily
    # caps per channel, counted per day of the vendors' time zone.
    text(
        "PUSH_CHANNEL_PREFERENCE", "hms,honor,mi,oppo,vivo,fcm",
        "order in which a phone's tokens (same `installation_id`) are tried; one token per phone gets each push",
    ),
    *(
        integer(f"PUSH_DAILY_CAP_{channel.upper()}", 0, f"pushes per day through `{channel}` (0: no cap of ours)")
        for channel in ("fcm", "hms", "honor", "mi", "oppo", "vivo")
    ),
    text("PUSH_QUOTA_RESET_TIMEZONE", "Asia/Shanghai", "time zone of the vendors' day: daily caps reset at its midnight"),
    text("PUSH_RECEIPT_KEY", None, "HMAC key of the references vendors echo in receipts", shown_default="derived from `SECRET_KEY`"),
)
