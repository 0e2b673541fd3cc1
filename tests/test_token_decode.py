"""Access tokens decoded once (``core.extensions.OnePassJWTManager.verify_access_token``): for every
kind of token, the same decision and the same request state as flask-jwt-extended's own
``verify_jwt_in_request()``, which parses each token's header a second time (bench/README.md)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask, current_app, g
from flask_jwt_extended import create_access_token, create_refresh_token, verify_jwt_in_request

from accounts.models import AuthSession, User
from core.db import utcnow
from core.extensions import db, jwt
from tests import factories

_STATE = ("_jwt_extended_jwt", "_jwt_extended_jwt_header", "_jwt_extended_jwt_user", "_jwt_extended_jwt_location")


def _outcome(app: Flask, headers: dict[str, str], verify: Callable[[], Any]) -> tuple[Any, ...]:
    """What ``verify`` decided for a request with ``headers``: the error (type, text, and the
    header and claims an error carries) or the request state it left."""
    with app.test_request_context("/api/v1/me", headers=headers):
        try:
            verify()
        except Exception as error:  # the outcome compared, whatever it is
            carried = tuple(getattr(error, name, None) for name in ("jwt_header", "jwt_data"))
            return "error", type(error), str(error), carried
        account = g.get("authenticated_account")
        return ("ok", *(g.get(name) for name in _STATE), account)


def _segment(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


def _tokens(user: User) -> dict[str, dict[str, str]]:
    access = factories.token_for(user)
    issued = pyjwt.decode(access, options={"verify_signature": False})
    sid, claims = issued["sid"], {"role": user.role, "area_path": issued["area_path"]}
    secret = current_app.config["JWT_SECRET_KEY"]
    header, _payload, _signature = access.split(".")
    future = int((utcnow() + timedelta(hours=1)).timestamp())
    cases = {
        "access": access,
        "refresh": create_refresh_token(identity=str(user.id), additional_claims={"sid": sid}),
        "expired": create_access_token(
            identity=str(user.id), additional_claims={**claims, "sid": sid}, expires_delta=timedelta(seconds=-5)
        ),
        "not_yet_valid": create_access_token(identity=str(user.id), additional_claims={**claims, "sid": sid, "nbf": future}),
        "odd_claims": create_access_token(identity=str(user.id), additional_claims={**claims, "sid": sid, "role": "king"}),
        "revoked_session": factories.token_for(user),
        "no_identity": pyjwt.encode({"type": "access", "sid": sid}, secret, algorithm="HS256"),
        "signed_elsewhere": pyjwt.encode({"sub": str(user.id), "type": "access"}, "another-key-that-is-long-enough-too"),
        # Another role under the same signature: a valid segment, so only the signature tells.
        "tampered": f"{header}.{_segment({**issued, 'role': 'admin'})}.{_signature}",
        "garbage": "not.a.jwt",
    }
    headers = {name: {"Authorization": f"Bearer {token}"} for name, token in cases.items()}
    headers |= {"missing": {}, "basic": {"Authorization": "Basic abc"}, "two_parts": {"Authorization": "Bearer a b"}}
    return headers


def test_one_pass_decides_and_records_as_the_library_does(app: Flask) -> None:
    *_, grid = factories.make_branch()
    user = factories.make_user("organiser", grid)
    cases = _tokens(user)
    revoked = pyjwt.decode(cases["revoked_session"]["Authorization"][7:], options={"verify_signature": False})
    db.session.get_one(AuthSession, revoked["sid"]).revoked_at = utcnow()
    db.session.flush()

    outcomes = {}
    for name, headers in cases.items():
        ours = _outcome(app, headers, jwt.verify_access_token)
        library = _outcome(app, headers, verify_jwt_in_request)
        assert ours == library, name
        outcomes[name] = ours[0] if ours[0] == "ok" else ours[1].__name__
    # The cases are what they say: one token passes, every other is refused for its own reason.
    assert outcomes == {
        "access": "ok", "refresh": "WrongTokenError", "expired": "ExpiredSignatureError",
        "not_yet_valid": "ImmatureSignatureError", "odd_claims": "UserClaimsVerificationError",
        "revoked_session": "RevokedTokenError", "no_identity": "JWTDecodeError",
        "signed_elsewhere": "InvalidSignatureError", "tampered": "InvalidSignatureError", "garbage": "DecodeError",
        "missing": "NoAuthorizationError", "basic": "NoAuthorizationError", "two_parts": "InvalidHeaderError",
    }  # fmt: skip


@pytest.mark.parametrize("method", ["OPTIONS"])
def test_exempt_methods_are_not_checked_either_way(app: Flask, method: str) -> None:
    with app.test_request_context("/api/v1/me", method=method):
        jwt.verify_access_token()
        assert verify_jwt_in_request() is None
        assert g.get("_jwt_extended_jwt") is None
