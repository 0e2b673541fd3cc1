"""Settings of the vendor push channels, one section per vendor (``core/config.py`` explains the
table). A vendor whose credentials are unset records its pushes to PUSH_RECORD_PATH, as FCM does
without FIREBASE_CREDENTIALS. Each ``*_ENDPOINT`` points a vendor at a local server (tests, bench)."""

from __future__ import annotations

from core.config import Setting, flag, integer, text

# --- Huawei Push Kit (hms) ---
HUAWEI: tuple[Setting, ...] = (
    text("HMS_CLIENT_ID", None, "Huawei Push Kit: the app's OAuth 2.0 client ID (AppGallery Connect); unset: `hms` pushes are recorded", blank_is_unset=True),
    text("HMS_CLIENT_SECRET", None, "Huawei Push Kit: the OAuth 2.0 client secret", blank_is_unset=True),
    text("HMS_APP_ID", None, "Huawei Push Kit: the id in the send URL (`v1/<id>/messages:send`); unset: HMS_CLIENT_ID", blank_is_unset=True),
    text("HMS_ENDPOINT", "https://push-api.cloud.huawei.com", "Huawei Push Kit: base URL of the send API (tests point it at a local server)", blank_is_unset=True),
    text("HMS_AUTH_URL", "https://oauth-login.cloud.huawei.com/oauth2/v3/token", "Huawei Push Kit: the OAuth 2.0 token URL", blank_is_unset=True),
    text("HMS_RECEIPT_USERNAME", None, "Huawei receipts: the callback user name set in AppGallery Connect; unset: receipts are refused (401)", blank_is_unset=True),
    text("HMS_RECEIPT_SECRET", None, "Huawei receipts: the callback secret (signs `X-HUAWEI-CALLBACK-ID`)", blank_is_unset=True),
    integer("HMS_RECEIPT_MAX_AGE_SECONDS", 600, "Huawei receipts: a signature older (or further ahead) than this is refused (403)"),
)
# --- Honor Push (honor) ---
HONOR: tuple[Setting, ...] = (
    text("HONOR_CLIENT_ID", None, "Honor Push: the OAuth client ID (push service → app details); unset: `honor` pushes are recorded", blank_is_unset=True),
    text("HONOR_CLIENT_SECRET", None, "Honor Push: the OAuth client secret (not the App Secret)", blank_is_unset=True),
    text("HONOR_APP_ID", None, "Honor Push: the App ID in the send URL (`api/v1/<appId>/sendMessage`)", blank_is_unset=True),
    text("HONOR_ENDPOINT", "https://push-api.cloud.honor.com", "Honor Push: base URL of the send API (tests point it at a local server)", blank_is_unset=True),
    text("HONOR_AUTH_URL", "https://iam.developer.honor.com/auth/token", "Honor Push: the OAuth token URL", blank_is_unset=True),
    integer("HONOR_MAX_BATCH", 100, "Honor Push: most tokens per send call (Honor's limit is unconfirmed; Huawei's is 1000)"),
    flag("HONOR_RECEIPTS", "Honor receipts: `1` accepts them (each item's `biTag` must carry our signed reference); off: refused (401), Honor's receipt protocol being unconfirmed"),
)
# --- Xiaomi MiPush (mi) ---
XIAOMI: tuple[Setting, ...] = ()
# --- OPPO Push (oppo) ---
OPPO: tuple[Setting, ...] = ()
# --- vivo Push (vivo) ---
VIVO: tuple[Setting, ...] = ()

SETTINGS: tuple[Setting, ...] = HUAWEI + HONOR + XIAOMI + OPPO + VIVO
