"""flask-jwt-extended wiring: revocation by session family, and our error shape for token failures."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, g
from flask_jwt_extended import JWTManager
from flask_jwt_extended.exceptions import UserClaimsVerificationError
from sqlalchemy import orm

from accounts.models import AuthSession, User
from core.auth import claims_problem
from core.db import utcnow
from core.errors import problem_response
from core.extensions import db
from grids.models import Area

#: The area columns callers' scopes and /me need; not the boundary, which can be large.
_SCOPE_COLUMNS = (Area.id, Area.code, Area.name, Area.level, Area.path, Area.timezone)

# Built once with bound parameters: SQLAlchemy then reuses its cache key and compiled form,
# which per call cost more than the query's round trip (bench/profile_request.py).
_SESSION_WITH_USER = (
    sa.select(User, AuthSession.revoked_at, AuthSession.expires_at)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(AuthSession.id == sa.bindparam("sid"), User.id == sa.bindparam("uid"))
    .options(orm.joinedload(User.area).load_only(*_SCOPE_COLUMNS))
)


def session_is_revoked(session_id: str | None, user_id: int | None = None) -> bool:
    """True unless the session is live and belongs to an active ``user_id``.

    One statement checks the session and loads the user with the few area columns a scope needs,
    so the user lands in the request's identity map and ``db.session.get(User, id)`` later in the
    request costs no second round trip (this is on the path of every authenticated request).
    """
    if not session_id or user_id is None:
        return True
    row = db.session.execute(_SESSION_WITH_USER, {"sid": session_id, "uid": user_id}).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return True
    # The identity map holds objects weakly: keep the user alive for the rest of the request.
    g.authenticated_user = row.User
    return not row.User.is_active


def register_jwt_handlers(jwt: JWTManager) -> None:
    # flask-jwt-extended checks revocation before the claims (token_verification_loader), so the
    # claims are checked first here too: odd claims are 401 invalid_token, never a query or a 500.
    @jwt.token_in_blocklist_loader
    def _is_revoked(header: dict[str, Any], payload: dict[str, Any]) -> bool:
        problem = claims_problem(payload)
        if problem is not None:
            raise UserClaimsVerificationError(problem, header, payload)
        return session_is_revoked(payload["sid"], int(payload["sub"]))

    @jwt.token_verification_loader
    def _claims_are_ours(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return claims_problem(payload) is None

    @jwt.unauthorized_loader
    def _missing(_reason: str) -> Response:
        return problem_response(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})

    @jwt.invalid_token_loader
    def _invalid(_reason: str) -> Response:
        return problem_response(401, "invalid_token", headers={"WWW-Authenticate": "Bearer"})

    @jwt.expired_token_loader
    def _expired(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem_response(401, "token_expired", headers={"WWW-Authenticate": "Bearer"})

    @jwt.revoked_token_loader
    def _revoked(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem_response(401, "token_revoked", headers={"WWW-Authenticate": "Bearer"})

    @jwt.needs_fresh_token_loader
    def _needs_fresh(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem_response(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})

    @jwt.token_verification_failed_loader
    def _failed(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem_response(401, "invalid_token", headers={"WWW-Authenticate": "Bearer"})

    @jwt.user_lookup_error_loader
    def _no_user(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem_response(401, "invalid_token", headers={"WWW-Authenticate": "Bearer"})
