"""Settings of the vendor push channels, one section per vendor (``core/config.py`` explains the
table). A vendor whose credentials are unset records its pushes to PUSH_RECORD_PATH, as FCM does
without FIREBASE_CREDENTIALS. Each ``*_ENDPOINT`` points a vendor at a local server (tests, bench)."""

from __future__ import annotations

from core.config import Setting

# --- Huawei Push Kit (hms) ---
HUAWEI: tuple[Setting, ...] = ()
# --- Honor Push (honor) ---
HONOR: tuple[Setting, ...] = ()
# --- Xiaomi MiPush (mi) ---
XIAOMI: tuple[Setting, ...] = ()
# --- OPPO Push (oppo) ---
OPPO: tuple[Setting, ...] = ()
# --- vivo Push (vivo) ---
VIVO: tuple[Setting, ...] = ()

SETTINGS: tuple[Setting, ...] = HUAWEI + HONOR + XIAOMI + OPPO + VIVO
