"""HTTP layer of star levels: the volunteer's own, the community's publicity board (公示), the
managers' board, objections and their decisions."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, OFFICIALS, Role, auth_required, current_caller
from core.errors import error_docs
from core.pagination import PageArgs, page_schema
from records.stars import boards, service
from records.stars.models import ObjectionStatus
from records.stars.schemas import (
    OwnStarLevelListSchema,
    PublicityItemSchema,
    StarBoardArgs,
    StarDecisionInput,
    StarDecisionSchema,
    StarLevelDetailSchema,
    StarLevelSchema,
    StarObjectionCreateInput,
    StarObjectionCreateSchema,
    StarObjectionSchema,
)

blp = Blueprint(
    "records-stars",
    __name__,
    url_prefix="/api/v1",
    description="Star levels (星级志愿者): proposed at 100/300/600/1000/1500 hours, publicised (公示) to the "
    "volunteer's community, objections, certification",
)
_errors = error_docs(blp)


@blp.route("/me/star-levels", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, OwnStarLevelListSchema)
@_errors(401, 403, 404)
def my_star_levels() -> Any:
    """My star levels: pending while publicised (or held by an objection), certified or rejected"""
    return {"items": boards.own_levels(current_caller())}


@blp.route("/me/community/star-publicity", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(PublicityItemSchema))
@_errors(401, 403, 404, 422)
def community_star_publicity(args: dict[str, Any]) -> Any:
    """The publicity board (公示) of my home community: star levels pending there, newest first

    Each with the volunteer's masked name, the level and the publicity's dates; nothing else, and
    nothing of other communities. Active volunteers only (403 otherwise).
    """
    return boards.community_board(current_caller(), args)


@blp.route("/star-levels", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(StarBoardArgs, location="query")
@blp.response(200, page_schema(StarLevelSchema))
@_errors(401, 403, 422)
def star_board(args: dict[str, Any]) -> Any:
    """Star levels publicised in your area, newest first (filter by status, level, area)"""
    return boards.board(current_caller(), args)


@blp.route("/star-levels/<int:star_level_id>", methods=["GET"])
@auth_required(*MANAGERS)
@blp.response(200, StarLevelDetailSchema)
@_errors(401, 403, 404)
def get_star_level(star_level_id: int) -> Any:
    """One star level with its objections (levels publicised in your area)"""
    return boards.detail(service.reachable_level(current_caller(), star_level_id))


@blp.route("/star-levels/<int:star_level_id>/objections", methods=["POST"])
@auth_required(Role.ORGANISER)
@blp.arguments(StarObjectionCreateSchema)
@blp.response(201, StarObjectionSchema)
@_errors(401, 403, 404, 409, 422)
def lodge_star_objection(data: StarObjectionCreateInput, star_level_id: int) -> Any:
    """Object to a star level during its publicity (organisers of its area)

    An open objection holds certification until district staff decide it. 409 `publicity_ended`
    from the end of the publicity on, `star_level_not_pending` once certified or rejected,
    `objection_exists` for a second objection of yours to the same level.
    """
    return service.lodge(current_caller(), star_level_id, data["reason"])


@blp.route("/star-objections/<int:star_objection_id>/decision", methods=["POST"])
@auth_required(*OFFICIALS)
@blp.arguments(StarDecisionSchema)
@blp.response(200, StarLevelDetailSchema)
@_errors(401, 403, 404, 409, 422)
def decide_star_objection(data: StarDecisionInput, star_objection_id: int) -> Any:
    """Decide an objection (district staff and admins of its area): the star level after it

    `upheld` rejects the level; `dismissed` leaves it, and certifies it at once when it was the
    last open objection and the publicity has ended. 409 `objection_decided` when it was decided
    already (by you or anyone else).
    """
    caller = current_caller()
    row = service.decide(caller, star_objection_id, ObjectionStatus(data["outcome"]), data["note"])
    return boards.detail(row)
