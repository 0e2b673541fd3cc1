"""Rules of accounts: the caller's own account, account management by staff and admins, the audit log.

Logins, token rotation and revocation live in :mod:`accounts.sessions`; this module is the package's
entry point and re-exports what other packages use from there. No HTTP here: services only flush and
the request commits (app.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from accounts import signals
from accounts.models import User
from accounts.passwords import hash_password, verify_password
from accounts.sessions import (
    REASON_DEACTIVATED,
    REASON_LOGOUT,
    REASON_PASSWORD_CHANGED,
    REASON_REFRESH_REUSE,
    REASON_SCOPE_CHANGED,
    RefreshReuseDetected,
    TokenPair,
    authenticate,
    issue_token_pair,
    login,
    refresh_session,
    revoke_all_sessions,
    revoke_session,
    start_session,
)
from accounts.tokens import Account, authenticated_account, authenticated_user, register_account_link
from core import audit, i18n
from core.audit import AuditEntry
from core.auth import Caller, Role
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area, AreaLevel
from grids.service import in_subtree

if TYPE_CHECKING:  # accounts.schemas imports this module
    from accounts.schemas import UserCreateInput

__all__ = [
    # re-exported from accounts.sessions and accounts.tokens for other packages
    "REASON_DEACTIVATED",
    "REASON_LOGOUT",
    "REASON_PASSWORD_CHANGED",
    "REASON_REFRESH_REUSE",
    "REASON_SCOPE_CHANGED",
    "Account",
    "RefreshReuseDetected",
    "TokenPair",
    "authenticate",
    "authenticated_account",
    "authenticated_user",
    # defined here
    "change_password",
    "create_city_admin",
    "create_user",
    "current_user",
    "get_user",
    "issue_token_pair",
    "linked_ids",
    "list_audit",
    "list_users",
    "login",
    "own_account",
    "refresh_session",
    "register_account_link",
    "revoke_all_sessions",
    "revoke_session",
    "start_session",
    "update_me",
    "update_user",
    "user_snapshot",
]

i18n.register_titles(
    # Also raised by the volunteers package, which relies on this registration.
    i18n.title("phone_taken", "Phone number already registered"),
    i18n.title("wrong_password", "The current password is wrong"),
    i18n.title("role_not_allowed", "You may not grant this role"),
    i18n.title("higher_role", "You may not manage an account of a higher role"),
    i18n.title("own_account", "You cannot deactivate yourself or change your own role"),
    i18n.title("user_not_found", "User not found"),
)
i18n.register_messages(
    i18n.N_("The current password is wrong."),
    i18n.N_("Wrong password."),
    i18n.N_("Must differ from the current password."),
    i18n.N_("Area not found."),
    i18n.N_("User not found."),
    i18n.N_("This phone number is already registered."),
    i18n.N_("You may not grant this role."),
    i18n.N_("You may not manage an account of a higher role than yours."),
    i18n.N_("You cannot deactivate your own account."),
    i18n.N_("You cannot change your own role."),
    i18n.N_("Must be a city."),
)


# --- the caller's own account -----------------------------------------------------------------


def own_account(caller: Caller) -> Account:
    """The caller's account as the request's session check read it (GET /me): no second query and
    no ORM object; a change to the account goes through :func:`current_user`."""
    account = authenticated_account(caller.user_id)
    if account is None:
        # Never so behind auth_required (its session check reads it); still not a 500.
        raise Unauthorized("The account is no longer active.", code="token_revoked")
    return account


def current_user(caller: Caller) -> User:
    user = db.session.get(User, caller.user_id)
    if user is None or not user.is_active:
        # The session would have been revoked; a token outliving its user is still not a 500.
        raise Unauthorized("The account is no longer active.", code="token_revoked")
    return user


def linked_ids(user_id: int) -> dict[str, int | None]:
    """The ids other packages keep for this user, e.g. ``volunteer_id`` (None for non-volunteers).

    The caller's own were read with the request's session check (``accounts.tokens.register_account_link``);
    anyone else's, or at login, are asked of the packages (``signals.account_links``)."""
    links: dict[str, int | None] = {"volunteer_id": None}
    account = authenticated_account(user_id)
    if account is not None and account.links:
        return links | account.links
    for _receiver, answer in signals.account_links.send(
        signals.SENDER, **signals.AccountLinksAsked(user_id=user_id)
    ):
        links.update(answer or {})
    return links


def update_me(caller: Caller, changes: dict[str, Any]) -> User:
    user = current_user(caller)
    if "display_name" in changes:
        user.display_name = changes["display_name"]
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


def create_user(caller: Caller | None, data: UserCreateInput) -> User:
    """A new organiser, staff or admin account; ``caller`` None is the operator's console (CLI)."""
    area = _area_for(data["area_id"])
    if caller is not None:
        caller.ensure_scope(area.path)
        _ensure_may_grant(caller, data["role"])
    if db.session.scalar(sa.select(User.id).where(User.phone == data["phone"])) is not None:
        raise Conflict("This phone number is already registered.", code="phone_taken")
    user = User(
        phone=data["phone"],
        password_hash=hash_password(data["password"]),
        role=data["role"],
        display_name=data["display_name"],
        area_id=area.id,
        locale=data.get("locale", "zh"),
        created_by_id=caller.user_id if caller else None,
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


def user_not_found() -> NotFound:
    """The answer for a user id that does not exist, and for one the caller may not reach."""
    return NotFound("User not found.", code="user_not_found")


def create_city_admin(data: UserCreateInput) -> User:
    """An admin of a city made at the operator's console (a new city's first admin has no one above
    them to create the account through the API). ``data`` as for :func:`create_user`."""
    if _area_for(data["area_id"]).level != AreaLevel.CITY:
        raise ValidationFailed(errors={"area_id": ["Must be a city."]})
    return create_user(None, {**data, "role": Role.ADMIN.value})


def _managed_user(user_id: int) -> User:
    """A non-volunteer account (volunteer accounts belong to the volunteers package)."""
    user = db.session.get(User, user_id)
    if user is None or user.role == Role.VOLUNTEER:
        raise user_not_found()
    return user


def get_user(caller: Caller, user_id: int) -> User:
    """An account in the caller's subtree; any other is not found, as if it did not exist."""
    user = _managed_user(user_id)
    caller.ensure_reach(user.area.path, user_not_found)
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
        text = args["q"].lower()
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
        user.display_name = changes["display_name"]
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
