"""Events of the accounts package; other packages (e.g. notifications, which drops the push devices of
ended logins) listen.

Every signal is sent with ``sender=SENDER``. Receivers run inside the request's transaction, before
the commit: they may add rows that commit or roll back with the change, but must not push, mail or
enqueue anything themselves.
"""

from __future__ import annotations

from blinker import Namespace

SENDER = "accounts"

_signals = Namespace()

sessions_revoked = _signals.signal(
    "sessions-revoked",
    doc="Logins ended: keyword arguments ``user_id``, ``session_ids`` (list of str) and ``reason`` "
    "(logout, refresh_reuse, password_changed, deactivated, scope_changed, or the caller's own).",
)
