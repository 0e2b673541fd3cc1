"""What the triage pages read: the API's report list arguments (filters by status and colour among
them) with the queue's group, and the assign form (the API's schema, its id read from a form)."""

from __future__ import annotations

from marshmallow import fields, validate

from core.validators import id_field
from patrols.reports.schemas import AssignSchema, ReportListArgs

#: The two parts of the queue, in order: red and orange reports first, then yellow and green.
GROUPS = ("urgent", "other")


class TriageArgs(ReportListArgs):
    group = fields.String(
        load_default=GROUPS[0], validate=validate.OneOf(GROUPS),
        metadata={"description": "Which part of the queue ``cursor`` pages through"},
    )


class AssignFormSchema(AssignSchema):
    """The API's assign body; a form sends the assignee's id as text."""

    assignee_id = id_field(required=True, strict=False)
