"""HTTP layer of auto-fill: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, auth_required, current_caller
from shifts.autofill import service
from shifts.autofill.schemas import AutofillRequestInput, AutofillRequestSchema, AutofillResultSchema

blp = Blueprint("shift-autofill", __name__, url_prefix="/api/v1", description="Auto-fill: an optimised plan that fills open places with available volunteers (dry run or apply)")


@blp.route("/autofill", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(AutofillRequestSchema)
@blp.response(200, AutofillResultSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(409, response="CONFLICT")
def autofill(data: AutofillRequestInput) -> Any:
    """Plan or apply the filling of open places

    For an area in your subtree (a community, a sub-district, any subtree) and a range of local
    dates (at most 31 days, in the area's time zone), plans who fills the open primary places of
    scheduled, not yet started shifts: active volunteers of the shift's sub-district in your area
    (home grid first, then the same community, then the sub-district) whose weekly availability
    covers the whole shift, with no overlap and the minimum rest between their shifts, within
    `weekly_cap_hours` a week (existing assignments count), favouring required kinds and balanced
    hours. The plan is optimised (OR-Tools min-cost flow; CP-SAT for small problems) and the same
    data always give the same plan. `apply: false` (the default) is a dry run and writes nothing;
    `apply: true` writes the plan in one transaction (source `autofill`), re-checking each place
    under the volunteers' schedule locks: places that no longer hold are listed in `skipped`, not
    written. Each open shift left carries the reason. Errors: area outside your area 403
    out_of_scope; unknown area, to before from, a range over 31 days or too many shifts 422
    validation_failed; apply with a `plan_token` that no longer matches the plan 409
    autofill_plan_changed.
    """
    return service.autofill(current_caller(), data)
