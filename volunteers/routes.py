"""HTTP layer of volunteers: parse, authorise, call the service, serialise."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("volunteers", __name__, url_prefix="/api/v1", description="volunteers")
