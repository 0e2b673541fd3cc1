"""Liveness and readiness probes for the load balancer."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.exc import SQLAlchemyError

from core import i18n
from core.errors import ApiError
from core.extensions import db

blp = Blueprint("health", __name__, description="Process and database health")

i18n.register_messages(i18n.N_("The database is not reachable."))


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "ok"})


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """The process is up (no dependency is touched)."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, description="The database is not reachable")
    def get(self) -> dict[str, str]:
        """The database answers a query."""
        try:
            db.session.execute(sa.text("SELECT 1"))
        except SQLAlchemyError:
            db.session.rollback()
            raise ApiError("The database is not reachable.", code="service_unavailable", status=503) from None
        return {"status": "ok"}
