"""HTTP layer of participation reports."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint(
    "reports-participation",
    __name__,
    url_prefix="/api/v1",
    description="Participation reports: volunteers, shifts, presence, incident reports and points of an area",
)
