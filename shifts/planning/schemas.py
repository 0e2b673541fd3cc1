"""marshmallow schemas of planning one-off shifts, and the template fields series share with them.

A shift is returned as ``shifts.schemas.ShiftSchema``. Instants (``starts_at``) carry an offset.
Unknown fields are refused (422). Limits that depend on configuration (SHIFT_MAX_HEADCOUNT,
SHIFT_MAX_HOURS) and on other rows (volunteer kinds) are checked by the service, with the same
field-by-field errors. Series: ``shifts/series/schemas.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import Instant, UpdateSchema
from core.validators import Text, TimeZoneName, id_field
from volunteers.schemas import kind_code_field, short_text

SMALLINT_MAX = 32767
MAX_REQUIRED_KINDS = 20
FIRST_YEAR, LAST_YEAR = 2000, 2099

i18n.register_messages(i18n.N_("Must be a date between 2000 and 2099."))


class PlanningDateTime(Instant):
    """An instant with an offset, in the years we plan."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            years=(FIRST_YEAR, LAST_YEAR), years_message="Must be a date between {low} and {high}.", **kwargs
        )


def _headcount(minimum: int, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=SMALLINT_MAX), **kwargs)


class RequiredKindSchema(ma.Schema):
    kind = kind_code_field(
        required=True, metadata={"description": "Code of a volunteer kind", "example": "volunteer_police"}
    )
    minimum = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=SMALLINT_MAX),
        metadata={"description": "At most max_headcount"},
    )


class RequiredKindInput(TypedDict):
    """What :class:`RequiredKindSchema` loads."""

    kind: str
    minimum: int


def _required_kinds(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.Nested(RequiredKindSchema), validate=validate.Length(max=MAX_REQUIRED_KINDS),
        metadata={"description": "Each kind once; the minimums add up to at most max_headcount"},
        **kwargs,
    )


class TemplateFields(ma.Schema):
    """What a shift and a series have in common; optional here, required where a schema says so."""

    title = short_text(100)
    instructions = Text(allow_blank=True, allow_none=True, validate=validate.Length(max=2000))
    meeting_point = short_text(200, allow_none=True)
    min_headcount = _headcount(0)
    max_headcount = _headcount(1, metadata={"description": "At most SHIFT_MAX_HEADCOUNT (100)"})
    backup_slots = _headcount(0, metadata={"description": "A/B posts: backup places (AB岗)"})
    required_kinds = _required_kinds()


class TemplateCreateFields(TemplateFields):
    title = short_text(100, required=True)
    instructions = Text(
        allow_blank=True, allow_none=True, validate=validate.Length(max=2000), load_default=None
    )
    meeting_point = short_text(200, allow_none=True, load_default=None)
    min_headcount = _headcount(0, load_default=1)
    max_headcount = _headcount(1, required=True)
    backup_slots = _headcount(0, load_default=0)
    required_kinds = _required_kinds(load_default=list)


# --- one-off shifts ----------------------------------------------------------------------------------


class ShiftCreateSchema(TemplateCreateFields):
    grid_id = id_field(required=True)
    timezone = TimeZoneName(
        metadata={"description": "The shift's local clock (default: the grid's), for its local dates, "
                  "texts and calendar entries", "example": "Asia/Shanghai"}
    )
    starts_at = PlanningDateTime(required=True)
    ends_at = PlanningDateTime(required=True)


class PlacedTemplateInput(TypedDict):
    """The template fields and where the shifts take place: what a one-off shift and a series are
    both created with."""

    title: str
    instructions: str | None  # defaulted by the schema
    meeting_point: str | None  # defaulted by the schema
    min_headcount: int  # defaulted by the schema
    max_headcount: int
    backup_slots: int  # defaulted by the schema
    required_kinds: list[RequiredKindInput]  # defaulted by the schema
    grid_id: int
    timezone: NotRequired[str]


class ShiftCreateInput(PlacedTemplateInput):
    """What :class:`ShiftCreateSchema` loads."""

    starts_at: datetime
    ends_at: datetime


class ShiftUpdateSchema(TemplateFields, UpdateSchema):
    starts_at = PlanningDateTime(metadata={"description": "Moving only the start keeps the duration"})
    ends_at = PlanningDateTime()


class TemplateUpdateInput(TypedDict, total=False):
    """The template fields an edit may change, of a shift or of a series."""

    title: str
    instructions: str | None
    meeting_point: str | None
    min_headcount: int
    max_headcount: int
    backup_slots: int
    required_kinds: list[RequiredKindInput]


class ShiftUpdateInput(TemplateUpdateInput, total=False):
    """What :class:`ShiftUpdateSchema` loads."""

    starts_at: datetime
    ends_at: datetime


class CancelSchema(ma.Schema):
    reason = short_text(500, required=True)
