"""The overview's query: which area (default: the caller's own) and which month (default: the one
under way in the area's time zone)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from core.fields import FullMatch
from core.validators import id_field
from reports.periods import MONTH_FORMAT


class OverviewArgs(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # a page's URL may carry anything else (a link's tracking, the language switch's)

    area = id_field(strict=False, metadata={"description": "An area in my subtree; default my own"})
    month = fields.String(validate=FullMatch(r"^20[0-9][0-9]-(0[1-9]|1[0-2])$", error=MONTH_FORMAT))
