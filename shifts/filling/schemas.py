"""marshmallow schemas of the filling endpoints' input; places are returned as
``shifts.schemas.AssignmentSchema``."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from core.validators import id_field


def _role() -> fields.String:
    return fields.String(
        load_default="primary",
        validate=ma.validate.OneOf(["primary", "backup"]),
        metadata={"description": "primary place, or backup (AB岗) promoted when a primary drops out"},
    )


class SignUpSchema(ma.Schema):
    role = _role()


class PlaceVolunteerSchema(ma.Schema):
    volunteer_id = id_field(required=True)
    role = _role()
