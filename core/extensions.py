"""Extension singletons, bound to the app in ``create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import request
from flask_jwt_extended import JWTManager
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
jwt = JWTManager()
# ContractPlugin: schema-level rules (a partial update needs a field) in the OpenAPI document.
api = ShouwangApi(spec_kwargs={"extra_plugins": [ContractPlugin()]})
# Limits are declared per endpoint (login); nothing is limited by default.
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def client_address() -> str:
    """The caller's address; behind a balancer, run gunicorn with --forwarded-allow-ips."""
    return request.remote_addr or "unknown"
