"""Who is calling and what they may touch.

The caller's role and area path travel in the access token's claims, so a scope check needs no
model import: an organiser or staff member may act on a record when the record's area path starts
with their own (materialised paths look like ``/1/4/17/``).

Two answers for "outside your area", chosen by whether the id is a secret:

- a *record* addressed by its id (a shift, an assignment, a report, a volunteer, …) that the caller
  may not reach answers exactly as an id that does not exist: :meth:`Caller.ensure_reach` raises the
  package's own not-found error, so an id tells nothing about records elsewhere;
- an *area* is public (anyone may read the tree), so acting on an area outside one's subtree is
  403 ``out_of_scope`` (:meth:`Caller.ensure_scope`): its existence is no secret.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import wraps
from typing import Any, TypeVar

from flask_jwt_extended import get_jwt

from core.errors import MAX_DB_INT, ApiError, Forbidden, OutOfScope
from core.extensions import jwt

F = TypeVar("F", bound=Callable[..., Any])


class Role(StrEnum):
    VOLUNTEER = "volunteer"
    ORGANISER = "organiser"
    STAFF = "staff"
    ADMIN = "admin"


#: Roles that manage others inside an area subtree.
MANAGERS = (Role.ORGANISER, Role.STAFF, Role.ADMIN)
#: Roles that may see unmasked personal data and the audit log.
OFFICIALS = (Role.STAFF, Role.ADMIN)
_RANK = {Role.VOLUNTEER: 0, Role.ORGANISER: 1, Role.STAFF: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class Caller:
    user_id: int
    role: Role
    area_path: str
    session_id: str

    def in_scope(self, path: str | None) -> bool:
        return bool(path and path.startswith(self.area_path))

    def ensure_scope(self, path: str | None) -> None:
        """For areas (public records): acting outside one's subtree is 403 ``out_of_scope``.

        Never for a record addressed by its id: use :meth:`ensure_reach`.
        """
        if not self.in_scope(path):
            raise OutOfScope("The record is outside your area.")

    def ensure_reach(self, path: str | None, not_found: Callable[[], ApiError]) -> None:
        """A record addressed by its id, at ``path``: outside the caller's subtree it raises
        ``not_found()``, the very error the package raises for an id that does not exist (same
        status, code and detail), so the answer never tells whether a record out of reach exists."""
        if not self.in_scope(path):
            raise not_found()

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    def outranks_or_equals(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGERS

    @property
    def is_official(self) -> bool:
        return self.role in OFFICIALS


_AREA_PATH = re.compile(r"(?:/[1-9][0-9]{0,9})+/")
_USER_ID = re.compile(r"[1-9][0-9]{0,9}")
_ROLE_NAMES = frozenset(role.value for role in Role)
_MAX_CLAIM_LENGTH = 255  # session ids and jtis are UUIDs; area paths fit Area.path


def claims_problem(claims: Mapping[str, Any]) -> str | None:
    """Why the claims of a correctly signed token cannot be one of our identities (None if they can).

    Tokens are only made by ``accounts.sessions.issue_token_pair``, so this never refuses one of
    ours; it keeps a token signed with the right key but odd claims (a leaked key, a token from
    another version) a 401 instead of a 500 wherever the claims are read.
    """
    subject, session_id, kind = claims.get("sub"), claims.get("sid"), claims.get("type")
    if not isinstance(subject, str) or not _USER_ID.fullmatch(subject) or int(subject) > MAX_DB_INT:
        return "sub is not a user id"
    if not _is_short_text(session_id):
        return "sid is missing"
    if kind == "refresh":
        return None if _is_short_text(claims.get("jti")) else "jti is missing"
    if kind != "access":
        return "unknown token type"
    role = claims.get("role")
    if not isinstance(role, str) or role not in _ROLE_NAMES:
        return "unknown role"
    area_path = claims.get("area_path")
    if not isinstance(area_path, str) or len(area_path) > _MAX_CLAIM_LENGTH or not _AREA_PATH.fullmatch(area_path):
        return "area_path is not an area path"
    return None


def _is_short_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_CLAIM_LENGTH


def current_caller() -> Caller:
    claims = get_jwt()
    return Caller(
        user_id=int(claims["sub"]),
        role=Role(claims["role"]),
        area_path=claims["area_path"],
        session_id=claims["sid"],
    )


def auth_required(*roles: Role) -> Callable[[F], F]:
    """Require a valid access token and, if given, one of ``roles``; documents bearer auth."""

    def decorator(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            jwt.verify_access_token()  # verify_jwt_in_request(), the token decoded once
            if roles and current_caller().role not in roles:
                raise Forbidden("Your role may not do this.")
            return func(*args, **kwargs)

        apidoc = dict(getattr(wrapper, "_apidoc", {}))
        manual = dict(apidoc.get("manual_doc", {}))
        manual["security"] = [{"bearerAuth": []}]  # 401 follows from it (core/api.py)
        if roles:
            manual["responses"] = {"403": "FORBIDDEN", **manual.get("responses", {})}
        apidoc["manual_doc"] = manual
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]  # flask-smorest's doc on a view function
        if roles:
            # Appended to the docstring, which flask-smorest turns into summary and description.
            allowed = ", ".join(role.value for role in roles)
            wrapper.__doc__ = inspect.cleandoc(func.__doc__ or "") + f"\n\nAllowed roles: {allowed}."
        return wrapper  # type: ignore[return-value]  # wraps(func): the signature F promises

    return decorator
