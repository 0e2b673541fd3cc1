"""Logins and their tokens: authenticate, open a session, rotate refresh tokens, revoke sessions.

A login opens an :class:`AuthSession`, a family of refresh tokens; every token is made by
:func:`issue_token_pair`. Services only flush; the request commits (app.py). Other packages import
these names from :mod:`accounts.service`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token

from accounts import signals
from accounts.models import AuthSession, RefreshToken, User
from accounts.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from core import i18n
from core.db import utcnow
from core.errors import Unauthorized
from core.extensions import db
from grids.models import Area

TOKEN_TYPE = "Bearer"

#: Why a session ended; stored in AuthSession.revoked_reason (String(32)).
REASON_LOGOUT = "logout"
REASON_REFRESH_REUSE = "refresh_reuse"
REASON_PASSWORD_CHANGED = "password_changed"
REASON_DEACTIVATED = "deactivated"
REASON_SCOPE_CHANGED = "scope_changed"

i18n.register_messages(
    i18n.N_("Wrong phone number or password."),
    i18n.N_("The refresh token was already used; every token of this login has been revoked."),
    i18n.N_("Unknown refresh token."),
    i18n.N_("The account is no longer active."),
)


class RefreshReuseDetected(Unauthorized):
    """A rotated refresh token came back after the grace period: the family has been revoked.

    The revocation is flushed, and a 401 normally rolls back at the end of the request: this error
    keeps the request's changes (``keeps_changes``), so the revocation sticks.
    """

    code = "token_revoked"
    keeps_changes = True


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_jti: str
    user: User
    token_type: str = TOKEN_TYPE


def start_session(
    user: User, *, user_agent: str | None = None, client_address: str | None = None
) -> TokenPair:
    """Open a new login session (refresh-token family) for ``user`` and issue its first pair."""
    return issue_token_pair(user, _new_session(user, user_agent, client_address))


def _new_session(user: User, user_agent: str | None, client_address: str | None) -> AuthSession:
    session = AuthSession(
        id=str(uuid.uuid4()),
        user_id=user.id,
        expires_at=utcnow() + current_app.config["SESSION_ABSOLUTE_LIFETIME"],
        user_agent=(user_agent or None) and user_agent[:255],
        client_address=(client_address or None) and client_address[:64],
    )
    db.session.add(session)
    db.session.flush()
    return session


def issue_token_pair(user: User, session: AuthSession) -> TokenPair:
    """The one place tokens are made: an access token with the user's current role and area path,
    and a refresh token recorded in the session's family. Neither outlives the session."""
    now = utcnow()
    config = current_app.config
    access_token, access_expires = issue_access_token(user, session, config["JWT_ACCESS_TOKEN_EXPIRES"])
    refresh_expires = min(now + config["JWT_REFRESH_TOKEN_EXPIRES"], session.expires_at)
    jti = str(uuid.uuid4())
    refresh_token = create_refresh_token(
        identity=str(user.id),
        additional_claims={"sid": session.id, "jti": jti},
        expires_delta=refresh_expires - now,
    )
    db.session.add(
        RefreshToken(jti=jti, session_id=session.id, issued_at=now, expires_at=refresh_expires)
    )
    db.session.flush()
    return TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=int((access_expires - now).total_seconds()),
        refresh_jti=jti,
        user=user,
    )


def issue_access_token(user: User, session: AuthSession, lifetime: timedelta) -> tuple[str, datetime]:
    """An access token of ``session`` with the user's current role and area path, valid for
    ``lifetime`` but never past the session's end; and when it expires. A browser session (the
    console) lives on these alone: each one it is given slides its idle timeout forward."""
    now = utcnow()
    area_path = db.session.get_one(Area, user.area_id).path
    expires = min(now + lifetime, session.expires_at)
    token = create_access_token(
        identity=str(user.id),
        additional_claims={"role": user.role, "area_path": area_path, "sid": session.id},
        expires_delta=expires - now,
    )
    return token, expires


def open_browser_session(
    user: User, lifetime: timedelta, *, user_agent: str | None = None, client_address: str | None = None
) -> str:
    """A login for a browser (the console): a session like a phone's, with an access token only.
    Its refresh is a new access token on each page (:func:`issue_access_token`), so it has no refresh
    tokens to steal; logging out revokes the session as for any login."""
    token, _ = issue_access_token(user, _new_session(user, user_agent, client_address), lifetime)
    return token


# One dummy hash per set of hashing parameters (tests hash cheaply, production does not).
_dummy_hashes: dict[tuple[int, int, int], str] = {}


def _cached_dummy_hash() -> str:
    config = current_app.config
    key = (config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_COST"], config["ARGON2_PARALLELISM"])
    if key not in _dummy_hashes:
        _dummy_hashes[key] = dummy_hash()
    return _dummy_hashes[key]


def authenticate(phone: str, password: str) -> User:
    """The active user with this phone and password; any failure is the same 401."""
    user = db.session.scalar(sa.select(User).where(User.phone == phone))
    # Always verify one hash, so a miss costs as much time as a wrong password.
    matches = verify_password(user.password_hash if user else _cached_dummy_hash(), password)
    if user is None or not matches or not user.is_active:
        raise Unauthorized("Wrong phone number or password.", code="invalid_credentials")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def login(
    phone: str, password: str, *, user_agent: str | None = None, client_address: str | None = None
) -> TokenPair:
    user = authenticate(phone, password)
    return start_session(user, user_agent=user_agent, client_address=client_address)


def refresh_session(*, jti: str, session_id: str, user_id: int) -> TokenPair:
    """Rotate the refresh token ``jti`` of session ``session_id``.

    A token already rotated is a replay. Within REFRESH_REUSE_GRACE of its rotation it is most likely a
    phone that lost the response, so it gets a fresh pair and every other live token of the family is
    superseded; later than that the whole family is revoked (:class:`RefreshReuseDetected`).
    """
    # Serialise refreshes of one family (PostgreSQL row lock; SQLite writers are serialised anyway).
    session = db.session.scalar(
        sa.select(AuthSession)
        .where(AuthSession.id == session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    token = db.session.scalar(
        sa.select(RefreshToken)
        .where(RefreshToken.jti == jti)
        .execution_options(populate_existing=True)
    )
    if session is None or token is None or token.session_id != session.id or session.user_id != user_id:
        raise Unauthorized("Unknown refresh token.", code="invalid_token")
    now = utcnow()
    if session.revoked_at is not None or session.expires_at <= now:
        raise Unauthorized(code="token_revoked")
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("The account is no longer active.", code="token_revoked")

    if token.rotated_at is not None:
        if now - token.rotated_at > current_app.config["REFRESH_REUSE_GRACE"]:
            _revoke(session, REASON_REFRESH_REUSE, now)
            db.session.flush()
            raise RefreshReuseDetected(
                "The refresh token was already used; every token of this login has been revoked."
            )
        pair = issue_token_pair(user, session)
        _supersede_live_tokens(session.id, pair.refresh_jti, now)
        return pair

    pair = issue_token_pair(user, session)
    token.rotated_at = now
    token.replaced_by_jti = pair.refresh_jti
    _supersede_live_tokens(session.id, pair.refresh_jti, now)
    db.session.flush()
    return pair


def _supersede_live_tokens(session_id: str, newest_jti: str, now: datetime) -> None:
    """Leave ``newest_jti`` as the only live refresh token of the family."""
    db.session.execute(
        sa.update(RefreshToken)
        .where(
            RefreshToken.session_id == session_id,
            RefreshToken.rotated_at.is_(None),
            RefreshToken.jti != newest_jti,
        )
        .values(rotated_at=now, replaced_by_jti=newest_jti)
        .execution_options(synchronize_session=False)
    )


def _revoke(session: AuthSession, reason: str, now: datetime) -> None:
    if session.revoked_at is None:
        session.revoked_at = now
        session.revoked_reason = reason
        signals.sessions_revoked.send(
            signals.SENDER, **signals.SessionsRevoked(
                user_id=session.user_id, session_ids=[session.id], reason=reason
            )
        )


def revoke_session(session_id: str, reason: str = REASON_LOGOUT) -> None:
    """End one login (its access and refresh tokens stop working at once)."""
    session = db.session.get(AuthSession, session_id)
    if session is not None:
        _revoke(session, reason, utcnow())
        db.session.flush()


def revoke_all_sessions(user_id: int, reason: str) -> int:
    """End every live login of ``user_id`` on every device; returns how many were ended."""
    reason = reason[:32]
    session_ids = list(
        db.session.scalars(
            sa.update(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason)
            .returning(AuthSession.id)
            .execution_options(synchronize_session="fetch")
        )
    )
    if session_ids:
        signals.sessions_revoked.send(
            signals.SENDER, **signals.SessionsRevoked(user_id=user_id, session_ids=session_ids, reason=reason)
        )
    return len(session_ids)
