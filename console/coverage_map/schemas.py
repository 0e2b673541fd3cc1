"""The coverage map's query: the API's coverage arguments read from the console's URL (``area``, the
period picker's fields; this month when no period is given)."""

from __future__ import annotations

from console.participation.schemas import ConsoleQuery
from core.validators import id_field
from reports.coverage.schemas import CoverageArgsSchema


class CoverageQuery(ConsoleQuery, CoverageArgsSchema):
    area_id = id_field(strict=False)  # the caller's own area when left out
