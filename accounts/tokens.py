"""flask-jwt-extended wiring: revocation by session family, and our error shape for token failures."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response
from flask_jwt_extended import JWTManager

from accounts.models import AuthSession
from core.db import utcnow
from core.errors import problem_response
from core.extensions import db


def session_is_revoked(session_id: str | None) -> bool:
    if not session_id:
        return True
    row = db.session.execute(
        sa.select(AuthSession.revoked_at, AuthSession.expires_at).where(AuthSession.id == session_id)
    ).first()
    return row is None or row.revoked_at is not None or row.expires_at <= utcnow()


def register_jwt_handlers(jwt: JWTManager) -> None:
    @jwt.token_in_blocklist_loader
    def _is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return session_is_revoked(payload.get("sid"))

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
