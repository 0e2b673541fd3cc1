"""HTTP layer of accounts: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from flask_smorest import Blueprint

from accounts import service, sessions
from accounts.limits import limit_failed_logins_per_address, limit_failed_logins_per_phone
from accounts.models import User
from accounts.schemas import (
    AuditEntrySchema,
    AuditQuerySchema,
    LoginSchema,
    MeSchema,
    MeUpdateSchema,
    PasswordChangeSchema,
    SessionTokensSchema,
    UserCreateInput,
    UserCreateSchema,
    UserQuerySchema,
    UserSchema,
    UserUpdateSchema,
)
from core.auth import OFFICIALS, auth_required, current_caller
from core.extensions import client_address, limiter
from core.pagination import page_schema
from core.transactions import reads_only

blp = Blueprint(
    "accounts",
    __name__,
    url_prefix="/api/v1",
    description="Login, token refresh and revocation, your own account, staff accounts, audit log",
)

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _password_user_key() -> str:
    return "password-user:" + str(get_jwt()["sub"])


# Guessing the current password with a stolen access token is brute force too.
_limit_password_guesses = limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_PHONE"],
    key_func=_password_user_key,
    deduct_when=lambda response: response.status_code == 403,
)


def _tokens_body(pair: sessions.TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "user": pair.user,
    }


# --- authentication ---------------------------------------------------------------------------


@blp.route("/auth/login")
class Login(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, SessionTokensSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @limit_failed_logins_per_phone
    @limit_failed_logins_per_address
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Log in with phone and password

        Returns an access token (short-lived) and a refresh token for this new login session.
        An unknown phone, a wrong password and a deactivated account all answer 401
        `invalid_credentials`. Failed attempts are limited per phone number and per client address
        (429 `too_many_requests` with `Retry-After`); successful logins do not count.
        """
        pair = sessions.login(
            data["phone"],
            data["password"],
            user_agent=request.headers.get("User-Agent"),
            client_address=client_address(),
        )
        return _tokens_body(pair)


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @blp.response(200, SessionTokensSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.doc(security=BEARER)
    def post(self) -> dict[str, Any]:
        """Exchange a refresh token for a new token pair

        Send the refresh token as `Authorization: Bearer <refresh_token>`. The refresh token is
        single use: it is rotated and the new pair carries your current role and area. Presenting a
        used refresh token again, later than a few seconds after its use, revokes the whole login
        (401 `token_revoked`). An access token here is 401 `invalid_token`.
        """
        verify_jwt_in_request(refresh=True)
        claims = get_jwt()
        # A replayed token's 401 keeps the family's revocation (sessions.RefreshReuseDetected).
        pair = sessions.refresh_session(
            jti=claims["jti"], session_id=claims.get("sid", ""), user_id=int(claims["sub"])
        )
        return _tokens_body(pair)


@blp.route("/auth/logout")
class Logout(MethodView):
    @auth_required()
    @blp.response(204)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self) -> None:
        """End this login session

        The access token and refresh token of this session stop working at once (401
        `token_revoked`). Other devices stay logged in.
        """
        sessions.revoke_session(current_caller().session_id, sessions.REASON_LOGOUT)


# --- the caller's own account -----------------------------------------------------------------


@blp.route("/me")
class Me(MethodView):
    @reads_only
    @auth_required()
    @blp.response(200, MeSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def get(self) -> service.Account:
        """Your own account"""
        return service.own_account(current_caller())

    @auth_required()
    @blp.arguments(MeUpdateSchema)
    @blp.response(200, MeSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def patch(self, changes: dict[str, Any]) -> User:
        """Change your display name or language (`zh` or `en`)"""
        return service.update_me(current_caller(), changes)


@blp.route("/me/password")
class MyPassword(MethodView):
    @auth_required()
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @_limit_password_guesses
    def post(self, data: dict[str, Any]) -> None:
        """Change your password

        A wrong `current_password` is 403 `wrong_password` (and counts towards the same failure limit
        as logins). The new password must have 8 to 128 characters and differ from the current one.
        On success every login of the account ends, this one included: log in again.
        """
        service.change_password(current_caller(), data["current_password"], data["new_password"])


# --- account management -----------------------------------------------------------------------


@blp.route("/users")
class Users(MethodView):
    @auth_required(*OFFICIALS)
    @blp.arguments(UserQuerySchema, location="query")
    @blp.response(200, page_schema(UserSchema))
    @blp.alt_response(403, response="FORBIDDEN")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List organiser, staff and admin accounts in your area

        Filters: `role`, `area_id` (that area's subtree; must be inside yours), `q` (display name or
        phone contains), `is_active`. Ordered by id; cursor pagination.
        """
        return service.list_users(current_caller(), args)

    @auth_required(*OFFICIALS)
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data: UserCreateInput) -> User:
        """Create an organiser, staff or admin account

        The area must be inside yours. Staff may create organisers and staff; only admins create
        admins. Volunteers register themselves (volunteers API). A phone already registered is 409
        `phone_taken`.
        """
        return service.create_user(current_caller(), data)


@blp.route("/users/<int:user_id>")
class UserDetail(MethodView):
    @auth_required(*OFFICIALS)
    @blp.response(200, UserSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, user_id: int) -> User:
        """One organiser, staff or admin account in your area"""
        return service.get_user(current_caller(), user_id)

    @auth_required(*OFFICIALS)
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    def patch(self, changes: dict[str, Any], user_id: int) -> User:
        """Change an account's display name, area, role or active flag

        You may not manage accounts of a higher role than yours (403 `higher_role`), grant a role
        above yours (403 `role_not_allowed`), move an account outside your area, or deactivate
        yourself or change your own role (403 `own_account`). Deactivating an account, or changing
        its role or area, ends all its logins.
        """
        return service.update_user(current_caller(), user_id, changes)


# --- audit log --------------------------------------------------------------------------------


@blp.route("/audit")
class Audit(MethodView):
    @auth_required(*OFFICIALS)
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, page_schema(AuditEntrySchema))
    @blp.alt_response(403, response="FORBIDDEN")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Audit log of administrative changes in your area, newest first

        Filters: `target_type`, `target_id`, `action`, `actor_id`, `since` (inclusive) and `until`
        (exclusive), both with a time zone offset.
        """
        return service.list_audit(current_caller(), args)
