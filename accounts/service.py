"""Rules of accounts: login, token rotation and revocation, the caller's own account, staff accounts.

No HTTP here: services only flush; the request commits (app.py). The one exception to "an error rolls
back" is refresh-token reuse, whose family revocation must outlive the 401: the route commits it
explicitly (see :class:`RefreshReuseDetected`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy.exc import IntegrityError

from accounts import signals
from accounts.models import AuthSession, RefreshToken, User
from accounts.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from accounts.schemas import MAX_ID
from core import audit, i18n
from core.audit import AuditEntry
from core.auth import Caller, Role
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from grids.service import in_subtree

TOKEN_TYPE = "Bearer"

#: Why a session ended; stored in AuthSession.revoked_reason (String(32)).
REASON_LOGOUT = "logout"
REASON_REFRESH_REUSE = "refresh_reuse"
REASON_PASSWORD_CHANGED = "password_changed"
REASON_DEACTIVATED = "deactivated"
REASON_SCOPE_CHANGED = "scope_changed"

i18n.register_titles(
    {
        "phone_taken": ("该手机号已注册", "Phone number already registered"),
        "wrong_password": ("当前密码错误", "The current password is wrong"),
        "role_not_allowed": ("无权授予该角色", "You may not grant this role"),
        "higher_role": ("无权管理更高级别的账户", "You may not manage an account of a higher role"),
        "own_account": ("不能停用自己或修改自己的角色", "You cannot deactivate yourself or change your own role"),
        "user_not_found": ("用户不存在", "User not found"),
    }
)
i18n.register_messages(
    {
        "Wrong phone number or password.": "手机号或密码错误。",
        "The refresh token was already used; every token of this login has been revoked.":
            "刷新令牌已被使用过；本次登录的所有令牌均已撤销。",
        "Unknown refresh token.": "未知的刷新令牌。",
        "The account is no longer active.": "该账户已停用。",
        "The current password is wrong.": "当前密码错误。",
        "Wrong password.": "密码错误。",
        "Must differ from the current password.": "新密码不能与当前密码相同。",
        "Area not found.": "区域不存在。",
        "User not found.": "用户不存在。",
        "This phone number is already registered.": "该手机号已注册。",
        "You may not grant this role.": "您无权授予该角色。",
        "You may not manage an account of a higher role than yours.": "您无权管理比您级别更高的账户。",
        "You cannot deactivate your own account.": "不能停用自己的账户。",
        "You cannot change your own role.": "不能修改自己的角色。",
    }
)


class RefreshReuseDetected(Unauthorized):
    """A rotated refresh token came back after the grace period: the family has been revoked.

    The revocation is flushed but the response is a 401, which app.py rolls back; whoever catches
    this must commit first so the revocation sticks.
    """

    code = "token_revoked"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_jti: str
    user: User
    token_type: str = TOKEN_TYPE


# --- sessions and tokens ----------------------------------------------------------------------


def start_session(
    user: User, *, user_agent: str | None = None, client_address: str | None = None
) -> TokenPair:
    """Open a new login session (refresh-token family) for ``user`` and issue its first pair."""
    session = AuthSession(
        id=str(uuid.uuid4()),
        user_id=user.id,
        expires_at=utcnow() + current_app.config["SESSION_ABSOLUTE_LIFETIME"],
        user_agent=(user_agent or None) and user_agent[:255],
        client_address=(client_address or None) and client_address[:64],
    )
    db.session.add(session)
    db.session.flush()
    return issue_token_pair(user, session)


def issue_token_pair(user: User, session: AuthSession) -> TokenPair:
    """The one place tokens are made: an access token with the user's current role and area path,
    and a refresh token recorded in the session's family. Neither outlives the session."""
    now = utcnow()
    config = current_app.config
    area_path = db.session.get(Area, user.area_id).path  # type: ignore[union-attr]
    access_expires = min(now + config["JWT_ACCESS_TOKEN_EXPIRES"], session.expires_at)
    refresh_expires = min(now + config["JWT_REFRESH_TOKEN_EXPIRES"], session.expires_at)
    access_token = create_access_token(
        identity=str(user.id),
        additional_claims={"role": user.role, "area_path": area_path, "sid": session.id},
        expires_delta=access_expires - now,
    )
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
            signals.SENDER, user_id=session.user_id, session_ids=[session.id], reason=reason
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
            signals.SENDER, user_id=user_id, session_ids=session_ids, reason=reason
        )
    return len(session_ids)


# --- the caller's own account -----------------------------------------------------------------


def current_user(caller: Caller) -> User:
    user = db.session.get(User, caller.user_id)
    if user is None or not user.is_active:
        # The session would have been revoked; a token outliving its user is still not a 500.
        raise Unauthorized("The account is no longer active.", code="token_revoked")
    return user


def update_me(caller: Caller, changes: dict[str, Any]) -> User:
    user = current_user(caller)
    if "display_name" in changes:
        user.display_name = changes["display_name"].strip()
    if "locale" in changes:
        user.locale = changes["locale"]
    db.session.flush()
    return user


def change_password(caller: Caller, current_password: str, new_password: str) -> None:
    """Set a new password and end every login of the user, this one included."""
    user = current_user(caller)
    if not verify_password(user.password_hash, current_password):
        raise Forbidden(
            "The current password is wrong.",
            code="wrong_password",
            errors={"current_password": ["Wrong password."]},
        )
    if new_password == current_password:
        raise ValidationFailed(errors={"new_password": ["Must differ from the current password."]})
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    db.session.flush()
    revoke_all_sessions(user.id, REASON_PASSWORD_CHANGED)


# --- account management by staff and admins ---------------------------------------------------


def _area_for(area_id: int, field: str = "area_id") -> Area:
    area = db.session.get(Area, area_id)
    if area is None:
        raise ValidationFailed(errors={field: ["Area not found."]})
    return area


def _ensure_may_grant(caller: Caller, role: str) -> None:
    if not caller.outranks_or_equals(Role(role)):
        raise Forbidden("You may not grant this role.", code="role_not_allowed")


def user_snapshot(user: User) -> dict[str, Any]:
    """What the audit log keeps of an account (never the password hash)."""
    return {
        "phone": user.phone,
        "role": user.role,
        "display_name": user.display_name,
        "area_id": user.area_id,
        "locale": user.locale,
        "is_active": user.is_active,
    }


def create_user(caller: Caller, data: dict[str, Any]) -> User:
    area = _area_for(data["area_id"])
    caller.ensure_scope(area.path)
    _ensure_may_grant(caller, data["role"])
    if db.session.scalar(sa.select(User.id).where(User.phone == data["phone"])) is not None:
        raise Conflict("This phone number is already registered.", code="phone_taken")
    user = User(
        phone=data["phone"],
        password_hash=hash_password(data["password"]),
        role=data["role"],
        display_name=data["display_name"].strip(),
        area_id=area.id,
        locale=data.get("locale", "zh"),
        created_by_id=caller.user_id,
    )
    try:
        with db.session.begin_nested():  # a concurrent sign-up with the same phone
            db.session.add(user)
            db.session.flush()
    except IntegrityError:
        raise Conflict("This phone number is already registered.", code="phone_taken") from None
    db.session.refresh(user)
    audit.record(
        caller,
        "user.create",
        target_type="user",
        target_id=user.id,
        area_path=area.path,
        after=user_snapshot(user),
    )
    db.session.flush()
    return user


def _managed_user(user_id: int) -> User:
    """A non-volunteer account (volunteer accounts belong to the volunteers package)."""
    user = db.session.get(User, user_id) if 1 <= user_id <= MAX_ID else None
    if user is None or user.role == Role.VOLUNTEER:
        raise NotFound("User not found.", code="user_not_found")
    return user


def get_user(caller: Caller, user_id: int) -> User:
    user = _managed_user(user_id)
    caller.ensure_scope(user.area.path)
    return user


def list_users(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    stmt = (
        sa.select(User)
        .join(Area, Area.id == User.area_id)
        .where(User.role != Role.VOLUNTEER.value, in_subtree(Area.path, caller.area_path))
    )
    if args.get("area_id") is not None:
        area = _area_for(args["area_id"])
        caller.ensure_scope(area.path)
        stmt = stmt.where(in_subtree(Area.path, area.path))
    if args.get("role"):
        stmt = stmt.where(User.role == args["role"])
    if args.get("is_active") is not None:
        stmt = stmt.where(User.is_active.is_(args["is_active"]))
    if args.get("q"):
        text = args["q"].strip().lower()
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(User.display_name).contains(text, autoescape=True),
                User.phone.contains(text, autoescape=True),
            )
        )
    return paginate(stmt, [User.id], limit=args["limit"], cursor=args.get("cursor"))


def update_user(caller: Caller, user_id: int, changes: dict[str, Any]) -> User:
    """Change an account's name, area, role or active flag; scope and rank rules apply.

    Any change of role or area, and deactivation, ends the account's logins: its tokens carry the
    old role and scope.
    """
    user = get_user(caller, user_id)
    if not caller.outranks_or_equals(Role(user.role)):
        raise Forbidden(
            "You may not manage an account of a higher role than yours.", code="higher_role"
        )
    before = user_snapshot(user)
    is_self = user.id == caller.user_id
    scope_changed = False

    if "area_id" in changes and changes["area_id"] != user.area_id:
        area = _area_for(changes["area_id"])
        caller.ensure_scope(area.path)
        user.area_id = area.id
        scope_changed = True
    if "role" in changes and changes["role"] != user.role:
        if is_self:
            raise Forbidden("You cannot change your own role.", code="own_account")
        _ensure_may_grant(caller, changes["role"])
        user.role = changes["role"]
        scope_changed = True
    if "is_active" in changes and changes["is_active"] != user.is_active:
        if is_self and not changes["is_active"]:
            raise Forbidden("You cannot deactivate your own account.", code="own_account")
        user.is_active = changes["is_active"]
    if "display_name" in changes:
        user.display_name = changes["display_name"].strip()
    db.session.flush()
    db.session.refresh(user)  # reload the area relationship after an area change

    after = user_snapshot(user)
    if after != before:
        if not user.is_active:
            revoke_all_sessions(user.id, REASON_DEACTIVATED)
        elif scope_changed:
            revoke_all_sessions(user.id, REASON_SCOPE_CHANGED)
        changed = [key for key in after if after[key] != before[key]]
        audit.record(
            caller,
            "user.update",
            target_type="user",
            target_id=user.id,
            area_path=user.area.path,
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )
        db.session.flush()
    return user


# --- audit log --------------------------------------------------------------------------------


def list_audit(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    stmt = sa.select(AuditEntry).where(in_subtree(AuditEntry.area_path, caller.area_path))
    for name in ("target_type", "target_id", "action", "actor_id"):
        if args.get(name) is not None:
            stmt = stmt.where(getattr(AuditEntry, name) == args[name])
    if args.get("since") is not None:
        stmt = stmt.where(AuditEntry.at >= args["since"])
    if args.get("until") is not None:
        stmt = stmt.where(AuditEntry.at < args["until"])
    return paginate(
        stmt, [AuditEntry.id], limit=args["limit"], cursor=args.get("cursor"), descending=True
    )
