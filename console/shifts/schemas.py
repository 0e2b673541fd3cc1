"""Query arguments of the Shifts page: which community, which ISO week, and a community search."""

from __future__ import annotations

from datetime import date
from typing import Any

import marshmallow as ma
from marshmallow import fields

from core import i18n
from core.errors import ValidationFailed
from core.fields import FullMatch
from core.validators import id_field
from shifts.planning.schemas import FIRST_YEAR, LAST_YEAR
from volunteers.schemas import short_text

#: An ISO 8601 week, as ``<input type="week">`` writes it: ``2026-W49``.
WEEK_PATTERN = r"^(\d{4})-W(\d{2})$"
NOT_A_WEEK = i18n.N_("Not a week (write it as 2026-W49).")

i18n.register_messages(NOT_A_WEEK)


class WeekArgs(ma.Schema):
    community = id_field(strict=False)
    week = fields.String(validate=FullMatch(WEEK_PATTERN, error=NOT_A_WEEK))
    q = short_text(50)

    @ma.post_load
    def _monday(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """``week`` becomes the date of its Monday (weeks of the years shifts are planned in)."""
        if "week" in data:
            year, week = int(data["week"][:4]), int(data["week"][-2:])
            try:
                monday = date.fromisocalendar(year, week, 1)
            except ValueError:  # week 0, week 54, or week 53 of a year that has 52
                raise ma.ValidationError({"week": [NOT_A_WEEK]}) from None
            if not FIRST_YEAR <= year <= LAST_YEAR:
                raise ma.ValidationError({"week": [NOT_A_WEEK]})
            data["week"] = monday
        return data


def load_query(schema: ma.Schema, args: Any) -> dict[str, Any]:
    """The schema's own parameters from a query string (first value each; others ignored, as a
    browser may add its own; an empty one is absent, as a form's empty field sends it), refused as
    the API refuses them: 422 naming the field."""
    wanted = {field.data_key or name for name, field in schema.fields.items()}
    given = {name: args[name] for name in wanted if args.get(name, "") != ""}
    try:
        loaded: dict[str, Any] = schema.load(given)
    except ma.ValidationError as error:
        raise ValidationFailed(errors=error.normalized_messages()) from None
    return loaded
