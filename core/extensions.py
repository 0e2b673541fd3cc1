"""Extension singletons, bound to the app in ``create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt as pyjwt
from flask import request
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config
from flask_jwt_extended.default_callbacks import default_decode_key_callback
from flask_jwt_extended.tokens import _decode_jwt
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from jwt import ExpiredSignatureError

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
    """flask-jwt-extended, decoding a token once instead of three times.

    The library parses every token unverified (claims, then header) to hand both to a
    ``decode_key_loader``, then decodes it for real: three base64 and JSON passes and PyJWT's
    per-character checks, on every authenticated request (bench/README.md, issue 19). We sign every
    token with the one key of ``JWT_SECRET_KEY`` and register no such loader, so the key is known
    before the token is read and one verified decode is all it takes; an expired token's header and
    claims, which the expired-token loader receives, are read only then.
    """

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: Any = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        if self._decode_key_callback is not default_decode_key_callback:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        kwargs: dict[str, Any] = {
            "algorithms": config.decode_algorithms,
            "audience": config.decode_audience,
            "csrf_value": csrf_value,
            "encoded_token": encoded_token,
            "identity_claim_key": config.identity_claim_key,
            "issuer": config.decode_issuer,
            "leeway": config.leeway,
            "secret": config.decode_key,
            "verify_aud": config.decode_audience is not None,
            "verify_sub": config.verify_sub,
        }
        try:
            return _decode_jwt(**kwargs, allow_expired=allow_expired)
        except ExpiredSignatureError as error:
            error.jwt_header = pyjwt.get_unverified_header(encoded_token)  # type: ignore[attr-defined]
            error.jwt_data = _decode_jwt(**kwargs, allow_expired=True)  # type: ignore[attr-defined]
            raise


jwt = OnePassJWTManager()
# ContractPlugin: schema-level rules (a partial update needs a field) in the OpenAPI document.
api = ShouwangApi(spec_kwargs={"extra_plugins": [ContractPlugin()]})
# Limits are declared per endpoint (login); nothing is limited by default.
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def client_address() -> str:
    """The caller's address. Behind nginx (or any proxy) set TRUSTED_PROXY_HOPS: gunicorn gives the
    proxy's own address (nothing over a unix socket), whatever --forwarded-allow-ips says."""
    return request.remote_addr or "unknown"
