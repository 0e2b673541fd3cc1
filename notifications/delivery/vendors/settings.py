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
XIAOMI: tuple[Setting, ...] = ()
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
    integer("VIVO_TOKEN_LIFETIME_SECONDS", 3600, "How long a vivo auth token is used (vivo's last 24 h)"),
    integer("VIVO_TTL_SECONDS", 86400, "How long vivo keeps a message for an offline phone (60 s to 1 day)"),
    text("VIVO_DEEP_LINK", None, "Intent URI a vivo notification opens (skipType 4); unset: the app", blank_is_unset=True),
    text("VIVO_RECEIPT_ID", None, "Receipt id from the vivo console (APP回执地址); unset: no receipts", blank_is_unset=True),
    integer("VIVO_PUSH_MODE", 0, "vivo pushMode: 0 production, 1 test devices only"),
)  # fmt: skip

SETTINGS: tuple[Setting, ...] = HUAWEI + HONOR + XIAOMI + OPPO + VIVO
