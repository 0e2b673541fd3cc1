"""Extension singletons, bound to the app in ``create_app``."""

from __future__ import annotations

from hmac import compare_digest
from typing import TYPE_CHECKING, Any

import jwt as pyjwt
from flask import g, request
from flask_jwt_extended import JWTManager, verify_jwt_in_request
from flask_jwt_extended.config import config
from flask_jwt_extended.default_callbacks import default_decode_key_callback
from flask_jwt_extended.exceptions import CSRFError, JWTDecodeError
from flask_jwt_extended.internal_utils import (
    custom_verification_for_token,
    verify_token_not_blocklisted,
    verify_token_type,
)
from flask_jwt_extended.view_decorators import _decode_jwt_from_headers, _load_user
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from core.api import ShouwangApi
from core.db import Base
from core.fields import ContractPlugin

db = SQLAlchemy(model_class=Base)
if TYPE_CHECKING:
    # What mypy sees: db.Model is an attribute built at run time, which a type checker cannot
    # subclass; it is Base (naming convention, typed Mapped columns) plus flask-sqlalchemy's bind
    # key, table-name and query mixins, none of which our models rely on.
    Model = Base
else:
    #: The base class of every model: ``class User(Model)``.
    Model = db.Model
migrate = Migrate()


class OnePassJWTManager(JWTManager):
    """flask-jwt-extended, decoding a token once instead of four times.

    The library parses every token unverified (claims, then header) to hand both to a
    ``decode_key_loader``, decodes it for real, and then, in ``verify_jwt_in_request``, parses its
    header once more for the callbacks: four base64 and JSON passes and PyJWT's per-character
    checks, on every authenticated request (bench/README.md, issue 19). We sign every token with
    the one key of ``JWT_SECRET_KEY`` and register no such loader, so the key is known before the
    token is read, and one verified decode (PyJWT's ``decode_complete``) gives the header with the
    claims. An expired token's header and claims, which the expired-token loader receives, are
    read only then. This class is the one place tokens are decoded.
    """

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: Any = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        if self._decode_key_callback is not default_decode_key_callback:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        return self.decode_with_header(encoded_token, csrf_value, allow_expired)[1]

    def decode_with_header(
        self, encoded_token: str, csrf_value: Any = None, allow_expired: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The token's header and claims, verified as flask-jwt-extended verifies them
        (``flask_jwt_extended.tokens._decode_jwt``: signature, exp, nbf, iat, aud, iss, sub, the
        identity claim, the csrf double-submit value; ``type``, ``fresh`` and ``jti`` defaulted),
        from one pass over the token."""
        options: dict[str, Any] = {"verify_aud": config.decode_audience is not None, "verify_sub": config.verify_sub}
        if allow_expired:
            options["verify_exp"] = False
        try:
            decoded = pyjwt.decode_complete(
                encoded_token,
                config.decode_key,
                algorithms=config.decode_algorithms,
                audience=config.decode_audience,
                issuer=config.decode_issuer,
                leeway=config.leeway,
                options=options,  # type: ignore[arg-type]  # PyJWT's Options TypedDict
            )
        except pyjwt.ExpiredSignatureError as error:
            error.jwt_header = pyjwt.get_unverified_header(encoded_token)  # type: ignore[attr-defined]
            error.jwt_data = self.decode_with_header(encoded_token, csrf_value, allow_expired=True)[1]  # type: ignore[attr-defined]
            raise
        header: dict[str, Any] = decoded["header"]
        claims: dict[str, Any] = decoded["payload"]
        if config.identity_claim_key not in claims:
            raise JWTDecodeError(f"Missing claim: {config.identity_claim_key}")
        claims.setdefault("type", "access")
        claims.setdefault("fresh", False)
        claims.setdefault("jti", None)
        if csrf_value:
            if "csrf" not in claims:
                raise JWTDecodeError("Missing claim: csrf")
            if not compare_digest(claims["csrf"], csrf_value):
                raise CSRFError("CSRF double submit tokens do not match")
        return header, claims

    def verify_access_token(self) -> None:
        """``verify_jwt_in_request()`` for an access token in the Authorization header, the token
        decoded once: the same checks in the same order (type, revocation, the claims loader, the
        user loader) and the same request state for ``get_jwt()`` and friends. The library parses
        the header a second time after its decode, which only a patch of its module would avoid.
        Anything else (other token locations, a decode key loader) goes the library's way.
        """
        if request.method in config.exempt_methods:
            return
        if self._decode_key_callback is not default_decode_key_callback or list(config.token_location) != ["headers"]:
            verify_jwt_in_request()
            return
        encoded_token, csrf_value = _decode_jwt_from_headers()
        header, claims = self.decode_with_header(encoded_token, csrf_value)
        verify_token_type(claims, refresh=False)
        verify_token_not_blocklisted(header, claims)
        custom_verification_for_token(header, claims)
        g._jwt_extended_jwt_user = _load_user(header, claims)
        g._jwt_extended_jwt_header = header
        g._jwt_extended_jwt = claims
        g._jwt_extended_jwt_location = "headers"


jwt = OnePassJWTManager()
# ContractPlugin: schema-level rules (a partial update needs a field) in the OpenAPI document.
api = ShouwangApi(spec_kwargs={"extra_plugins": [ContractPlugin()]})
# Limits are declared per endpoint (login); nothing is limited by default.
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def client_address() -> str:
    """The caller's address. Behind nginx (or any proxy) set TRUSTED_PROXY_HOPS: gunicorn gives the
    proxy's own address (nothing over a unix socket), whatever --forwarded-allow-ips says."""
    return request.remote_addr or "unknown"
