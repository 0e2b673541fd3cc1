"""HTTP layer of point rules: a city's versions, the one in force, and a new version."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import Role, auth_required, current_caller
from core.db import utcnow
from core.errors import error_docs
from core.pagination import page_schema
from rewards.rules import service as rules
from rewards.rules.schemas import (
    PointRuleCreateInput,
    PointRuleCreateSchema,
    PointRuleHistoryArgs,
    PointRuleSchema,
)

blp = Blueprint(
    "reward-rules",
    __name__,
    url_prefix="/api/v1",
    description="Point rules of a city: versioned, each applying from its effective date",
)


_errors = error_docs(blp)


@blp.route("/areas/<int:area_id>/point-rules", methods=["GET"])
@auth_required()
@blp.arguments(PointRuleHistoryArgs, location="query")
@blp.response(200, page_schema(PointRuleSchema))
@_errors(401, 403, 404, 422)
def list_point_rules(args: dict[str, Any], area_id: int) -> Any:
    """Every version of a city's point rules, newest first

    Anyone working or living in the city (or above it) may read them; 404 not_a_city for any
    other level of area.
    """
    city = rules.rule_city(current_caller(), area_id, write=False)
    return rules.history(city, limit=args["limit"], cursor=args.get("cursor"))


@blp.route("/areas/<int:area_id>/point-rules/current", methods=["GET"])
@auth_required()
@blp.response(200, PointRuleSchema)
@_errors(401, 403, 404)
def current_point_rule(area_id: int) -> Any:
    """The version of a city's point rules in force now

    404 no_point_rule before the first version takes effect.
    """
    city = rules.rule_city(current_caller(), area_id, write=False)
    return rules.current_rule(city, utcnow())


@blp.route("/areas/<int:area_id>/point-rules", methods=["POST"])
@auth_required(Role.ADMIN)
@blp.arguments(PointRuleCreateSchema)
@blp.response(201, PointRuleSchema)
@_errors(401, 403, 404, 409, 422)
def create_point_rule(data: PointRuleCreateInput, area_id: int) -> Any:
    """Set a city's point rules from a date on (a new version)

    Admins whose area covers the city. Earlier versions stay as they were and keep explaining the
    points they paid: an award uses the version in force when the service happened. 422 when
    `effective_from` is before the latest version's or before the newest award already made in
    the city, more than three years ahead, or any value is negative or absurd (points_per_hour
    0–1000, rounding_minutes 1–240, daily_cap 1–100000, streak_days 2–366, expiry_years 0–10,
    report_bonus per level 0–10000). 409 rule_version_taken when another admin saved a version
    at the same moment.
    """
    caller = current_caller()
    return rules.create_version(caller, rules.rule_city(caller, area_id, write=True), data)
