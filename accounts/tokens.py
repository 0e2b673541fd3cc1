"""flask-jwt-extended wiring: revocation by session family, and our error shape for token failures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from flask import Response, g
from flask_jwt_extended import JWTManager
from flask_jwt_extended.exceptions import UserClaimsVerificationError

from accounts.models import AuthSession, User
from core.auth import claims_problem
from core.db import utcnow
from core.errors import problem_response
from core.extensions import db
from grids.models import Area


@dataclass(frozen=True, slots=True)
class AccountArea:
    """The area columns a caller's scope and /me need; not the boundary, which can be large."""

    id: int
    code: str
    name: str
    level: str
    path: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Account:
    """The caller's account as the session check read it: what /me shows, as plain values.

    A view that changes the account loads the ``User`` entity itself
    (``accounts.service.current_user``). ``links``: the ids other packages keep for the user, read
    by the same statement (:func:`register_account_link`).
    """

    id: int
    phone: str
    role: str
    display_name: str
    locale: str
    area_id: int
    created_at: datetime
    area: AccountArea
    links: dict[str, Any]


#: name -> the column it is read from, given the user's id column (register_account_link).
_LINKS: dict[str, Callable[[sa.ColumnElement[int]], sa.ColumnElement[Any]]] = {}


def register_account_link(name: str, column: Callable[[sa.ColumnElement[int]], sa.ColumnElement[Any]]) -> None:
    """Read the id ``name`` that another package keeps for a user with every session check.

    ``column(user_id)`` is that package's correlated scalar subquery (volunteers: the volunteer id
    of the user). The package that may not be imported here says how to find its id, and the
    caller's own id then costs no statement of its own: /me and the phone's schedule asked for
    the volunteer id in a second round trip (bench/README.md, issue 19).
    """
    _LINKS[name] = column
    _session_check.cache_clear()


@cache
def _session_check() -> sa.Select:
    """The session, its user with the area columns a scope needs, and the registered links.

    Built once (again after a registration) with bound parameters, so SQLAlchemy reuses its cache
    key and compiled form, which per call cost more than the query's round trip
    (bench/profile_request.py). Table columns, run on the session's connection as plain Core: the
    ORM's compile state and row loading for columns of entities cost a fifth of the statement's
    CPU, and there is no entity to load (bench/README.md, issue 19).
    """
    sessions, users, areas = AuthSession.__table__, User.__table__, Area.__table__
    return (
        sa.select(
            sessions.c.revoked_at, sessions.c.expires_at, users.c.is_active,
            users.c.id, users.c.phone, users.c.role, users.c.display_name, users.c.locale, users.c.area_id,
            users.c.created_at, areas.c.id, areas.c.code, areas.c.name, areas.c.level, areas.c.path, areas.c.timezone,
            *(column(users.c.id).label(f"link_{name}") for name, column in _LINKS.items()),
        )
        .select_from(users)
        .join(sessions, sessions.c.user_id == users.c.id)
        .join(areas, areas.c.id == users.c.area_id)
        .where(sessions.c.id == sa.bindparam("sid"), users.c.id == sa.bindparam("uid"))
    )  # fmt: skip


_AREA_COLUMNS = 6


def session_is_revoked(session_id: str | None, user_id: int | None = None) -> bool:
    """True unless the session is live and belongs to an active ``user_id``.

    One statement checks the session and reads the account, with the few area columns a scope
    needs and the registered links (:func:`authenticated_account`), so /me costs no second round
    trip (this is on the path of every authenticated request).
    """
    if not session_id or user_id is None:
        return True
    row = db.session.connection().execute(_session_check(), {"sid": session_id, "uid": user_id}).first()
    if row is None or row[0] is not None or row[1] <= utcnow() or not row[2]:
        return True
    _revoked, _expires, _active, uid, phone, role, display_name, locale, area_id, created_at, *rest = row
    g.authenticated_account = Account(
        uid, phone, role, display_name, locale, area_id, created_at,
        AccountArea(*rest[:_AREA_COLUMNS]), dict(zip(_LINKS, rest[_AREA_COLUMNS:], strict=True)),
    )  # fmt: skip
    return False


def authenticated_account(user_id: int | None = None) -> Account | None:
    """The caller's account as this request's session check read it (None before or without one,
    or if it is not ``user_id``'s)."""
    account: Account | None = g.get("authenticated_account")
    if account is None or (user_id is not None and account.id != user_id):
        return None
    return account


def authenticated_user() -> User | None:
    """The caller's ``User`` entity, for the few views that need the object itself (the console)."""
    account = authenticated_account()
    return None if account is None else db.session.get(User, account.id)


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
