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
OPPO: tuple[Setting, ...] = (
    text("OPPO_APP_KEY", None, "OPPO Push AppKey (console); unset: OPPO pushes are recorded", blank_is_unset=True),
    text("OPPO_MASTER_SECRET", None, "OPPO Push MasterSecret (not the AppSecret): signs the auth request", blank_is_unset=True),
    text("OPPO_ENDPOINT", "https://api.push.oppomobile.com", "OPPO Push base URL (a local server in tests)", blank_is_unset=True),
    text("OPPO_AUTH_URL", None, "OPPO auth URL; unset: server/v1/auth under OPPO_ENDPOINT", blank_is_unset=True),
    integer("OPPO_TOKEN_LIFETIME_SECONDS", 72000, "How long an OPPO auth token is used (OPPO's last 24 h)"),
    text("OPPO_CHANNEL_ID", None, "OPPO notification channel id of the approved service (私信) channel", blank_is_unset=True),
    integer("OPPO_NOTIFY_LEVEL", 2, "OPPO notify_level of ordinary messages (2: shade and lock screen)"),
    integer("OPPO_URGENT_NOTIFY_LEVEL", 2, "OPPO notify_level of urgent messages (16 once OPPO grants it)"),
    integer("OPPO_TTL_SECONDS", 86400, "How long OPPO keeps a message for an offline phone (≤ 10 days)"),
    text("OPPO_DEEP_LINK", None, "Intent-scheme URL an OPPO notification opens; unset: the app", blank_is_unset=True),
    text("OPPO_RECEIPT_URL", None, "Public URL of `/api/v1/push-receipts/oppo` for OPPO receipts; unset: none", blank_is_unset=True),
)  # fmt: skip
# --- vivo Push (vivo) ---
VIVO: tuple[Setting, ...] = (
    text("VIVO_APP_ID", None, "vivo Push AppID (a number); unset: vivo pushes are recorded", blank_is_unset=True),
    text("VIVO_APP_KEY", None, "vivo Push AppKey", blank_is_unset=True),
    text("VIVO_APP_SECRET", None, "vivo Push AppSecret: signs the auth request", blank_is_unset=True),
    text("VIVO_ENDPOINT", "https://api-push.vivo.com.cn", "vivo Push base URL (a local server in tests)", blank_is_unset=True),
    text("VIVO_AUTH_URL", None, "vivo auth URL; unset: message/auth under VIVO_ENDPOINT", blank_is_unset=True),
    integer("VIVO_CONCURRENCY", 8, "vivo single sends a delivery run keeps in flight at once (after a batch's first call has answered)"),
    integer("VIVO_TOKEN_LIFETIME_SECONDS", 3600, "How long a vivo auth token is used (vivo's last 24 h)"),
    integer("VIVO_TTL_SECONDS", 86400, "How long vivo keeps a message for an offline phone (60 s to 1 day)"),
    text("VIVO_DEEP_LINK", None, "Intent URI a vivo notification opens (skipType 4); unset: the app", blank_is_unset=True),
    text("VIVO_RECEIPT_ID", None, "Receipt id from the vivo console (APP回执地址); unset: no receipts", blank_is_unset=True),
    integer("VIVO_PUSH_MODE", 0, "vivo pushMode: 0 production, 1 test devices only"),
)  # fmt: skip

SETTINGS: tuple[Setting, ...] = HUAWEI + HONOR + XIAOMI + OPPO + VIVO
