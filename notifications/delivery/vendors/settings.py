"""Settings of the vendor push channels, one section per vendor (``core/config.py`` explains the
table). A vendor whose credentials are unset records its pushes to PUSH_RECORD_PATH, as FCM does
without FIREBASE_CREDENTIALS. Each ``*_ENDPOINT`` points a vendor at a local server (tests, bench)."""

from __future__ import annotations

from core.config import Setting, integer, text

# --- Huawei Push Kit (hms) ---
HUAWEI: tuple[Setting, ...] = ()
# --- Honor Push (honor) ---
HONOR: tuple[Setting, ...] = ()
# --- Xiaomi MiPush (mi) ---
XIAOMI: tuple[Setting, ...] = (
    text("XIAOMI_APP_SECRET", None, "Xiaomi MiPush AppSecret (console → 应用信息), sent as `Authorization: key=…`; unset: `mi` pushes are recorded to PUSH_RECORD_PATH", blank_is_unset=True, shown_default="unset"),
    text("XIAOMI_PACKAGE", None, "the Android app's package name (`restricted_package_name`); needed with XIAOMI_APP_SECRET", blank_is_unset=True, shown_default="unset"),
    text("XIAOMI_ENDPOINT", "https://api.xmpush.xiaomi.com", "MiPush base URL (a local server in tests and benchmarks)", blank_is_unset=True),
    integer("XIAOMI_CONCURRENCY", 8, "MiPush calls a delivery run keeps in flight at once (one call per notification)"),
    integer("XIAOMI_TTL_SECONDS", 86400, "how long MiPush keeps a message for an offline phone (`time_to_live`; private channels keep up to 10 days)"),
    text("XIAOMI_INTENT_URI", None, "deep link opened on a tap (`notify_effect=2`, `intent_uri`); unset: the app opens and reads the payload", blank_is_unset=True, shown_default="unset"),
    text("XIAOMI_CALLBACK_URL", None, "receipts URL MiPush posts to (`extra.callback`): this server's /api/v1/push-receipts/mi, with `?key=` when XIAOMI_RECEIPT_KEY is set; unset: no receipts", blank_is_unset=True, shown_default="unset"),
    integer("XIAOMI_CALLBACK_TYPE", 1201, "receipt kinds asked for (`extra.callback.type` bits: 1 delivered, 16 invalid target, 32 push disabled, 128 daily cap, 1024 expired)"),
    text("XIAOMI_RECEIPT_KEY", None, "shared secret a MiPush receipt must carry as `?key=` in its URL (besides each item's signed reference); unset: only the references are checked", blank_is_unset=True, shown_default="unset"),
)
# --- OPPO Push (oppo) ---
OPPO: tuple[Setting, ...] = ()
# --- vivo Push (vivo) ---
VIVO: tuple[Setting, ...] = ()

SETTINGS: tuple[Setting, ...] = HUAWEI + HONOR + XIAOMI + OPPO + VIVO
