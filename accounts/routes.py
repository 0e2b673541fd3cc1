"""HTTP layer of accounts: parse, authorise, call the service, serialise."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="accounts")
