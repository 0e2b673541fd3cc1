"""Events of the accounts package; other packages (e.g. notifications, which drops the push devices of
ended logins) listen. ``account_links`` is a question rather than an event: packages above accounts
answer it with the ids they keep for a user, so /me can show them without accounts importing them.

Every signal is sent with ``sender=SENDER`` and the keyword arguments of the TypedDict declared
below it (``signal.send(SENDER, **Payload(...))``; receivers take ``**payload: Unpack[Payload]``).
Receivers run inside the request's transaction, before the commit: they may add rows that commit or
roll back with the change, but must not push, mail or enqueue anything themselves.
"""

from __future__ import annotations

from typing import TypedDict

from blinker import Namespace

SENDER = "accounts"

_signals = Namespace()

sessions_revoked = _signals.signal(
    "sessions-revoked",
    doc="Logins ended: keyword arguments ``user_id``, ``session_ids`` (list of str) and ``reason`` "
    "(logout, refresh_reuse, password_changed, deactivated, scope_changed, or the caller's own).",
)


class SessionsRevoked(TypedDict):
    """Fires when logins end (logout, refresh-token reuse, password change, deactivation, ...)."""

    user_id: int
    session_ids: list[str]
    reason: str  # see the signal's doc


account_links = _signals.signal(
    "account-links",
    doc="Asked when an account is shown to its owner (/me, login): keyword argument ``user_id``; each "
    "receiver returns a dict of the ids its package keeps for that user (volunteers: ``volunteer_id``).",
)


class AccountLinksAsked(TypedDict):
    """Sent when an account is shown to its owner (/me, login); each receiver returns a dict of the
    ids its package keeps for that user."""

    user_id: int
