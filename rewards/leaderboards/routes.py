"""HTTP layer of leaderboards and the leaderboard opt-out."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import Role, auth_required, current_caller
from rewards.leaderboards import service as leaderboards
from rewards.leaderboards.schemas import LeaderboardArgs, LeaderboardSchema, PreferenceSchema

blp = Blueprint(
    "rewards-leaderboards",
    __name__,
    url_prefix="/api/v1",
    description="Leaderboards of service hours and points earned, and the opt-out from being named",
)


@blp.route("/leaderboards", methods=["GET"])
@auth_required()
@blp.arguments(LeaderboardArgs, location="query")
@blp.response(200, LeaderboardSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_leaderboard(args: dict[str, Any]) -> Any:
    """A leaderboard

    Ranks the active volunteers whose home grid lies in `area_id`'s subtree (`by=volunteer`), or
    the grids, communities or districts below it (`by=grid|community|district`), by served
    `hours` or `points` earned (less reversals; spending does not count) in a `month` or `year`
    (`value` 2026-11 or 2026, default the current one in the area's time zone). Top `limit`
    (≤ 100); equal values share a rank. Volunteers who opted out are shown as 匿名志愿者 without
    id, still ranked. Volunteers: areas containing their home grid, with their own place in `me`;
    managers: areas in their subtree; otherwise 403 out_of_scope. 422: a `value` not matching
    `period`, an unknown area, `by` not below the area's level.
    """
    return leaderboards.board(current_caller(), args)


@blp.route("/me/leaderboard-preference", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, PreferenceSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_preference() -> Any:
    """My leaderboard preference"""
    return {"opt_out": leaderboards.preference(current_caller())}


@blp.route("/me/leaderboard-preference", methods=["PUT"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(PreferenceSchema)
@blp.response(200, PreferenceSchema)
@blp.alt_response(404, response="NOT_FOUND")
def put_preference(data: dict[str, Any]) -> Any:
    """Opt out of (or back into) being named on leaderboards

    With `opt_out` true I am listed as 匿名志愿者 without my id; my hours and points still count.
    """
    return {"opt_out": leaderboards.set_preference(current_caller(), data["opt_out"])}
