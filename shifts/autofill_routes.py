"""HTTP layer of auto-fill: parse, authorise, call the service, serialise."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("shift-autofill", __name__, url_prefix="/api/v1", description="Auto-fill")
