"""HTTP layer of the SOS: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.idempotency import idempotent
from core.pagination import page_schema
from patrols.sos import responding, service, views
from patrols.sos.schemas import (
    MySosListArgs,
    MySosListItemSchema,
    MySosSchema,
    SosAcknowledgeSchema,
    SosDetailSchema,
    SosListArgs,
    SosListItemSchema,
    SosNoteOptionalSchema,
    SosNoteRequiredSchema,
    SosPositionBatchSchema,
    SosPositionsResultSchema,
    SosRaiseSchema,
)

blp = Blueprint(
    "patrol-sos",
    __name__,
    url_prefix="/api/v1",
    description="SOS from the phone: alerted at once, acknowledged, escalated, cancelled or closed",
)


# --- the volunteer's own -------------------------------------------------------------------------


@blp.route("/me/sos", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(SosRaiseSchema)
@blp.response(201, MySosSchema)
@blp.alt_response(200, schema=MySosSchema, description="The SOS already raised under this client_id")
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def raise_sos(data: dict[str, Any]) -> Any:
    """Raise an SOS

    With my position, its accuracy, the phone's clock, a `client_id` made by the phone and an
    optional note; on or off duty. It is located on the grid of the shift I am on, else on the grid
    of my home city holding the position, else on my home grid (`located_by`); it is never refused
    for its position. At once the grid's organisers (its staff when none) and the volunteers on duty
    within SOS_RADIUS_M are alerted (urgent pushes). Nobody acknowledging within SOS_ACK_MINUTES
    escalates it to the district's staff, then the city's. The same `client_id` again answers 200
    with the same SOS. Refusals: 403 volunteer_not_active, forbidden (not a volunteer); 404
    volunteer_not_found; 409 sos_already_live (I have an open SOS), client_id_taken (another
    volunteer's id); 422 bad coordinates, accuracy, time or note.
    """
    sos, created = service.raise_sos(current_caller(), data)
    return views.my_view(sos), 201 if created else 200


@blp.route("/me/sos", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(MySosListArgs, location="query")
@blp.response(200, page_schema(MySosListItemSchema))
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def list_my_sos(args: dict[str, Any]) -> Any:
    """My SOS, newest first

    With cursor pagination. 404 volunteer_not_found without a volunteer profile.
    """
    return views.my_list(current_caller(), limit=args["limit"], cursor=args["cursor"])


@blp.route("/me/sos/<int:sos_id>", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, MySosSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_my_sos(sos_id: int) -> Any:
    """One of my SOS

    Its status and level, who acknowledged it (name, role, response, time) and its history.
    404 sos_not_found (also another volunteer's).
    """
    return views.my_sos(current_caller(), sos_id)


@blp.route("/me/sos/<int:sos_id>/positions", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(SosPositionBatchSchema)
@blp.response(200, SosPositionsResultSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def add_positions(data: dict[str, Any], sos_id: int) -> Any:
    """Send positions while my SOS is open

    Up to SOS_MAX_POSITIONS fixes per upload, more often than the track rate; a fix whose device
    time is already stored changes nothing. No location consent is needed (the SOS protects my
    safety). Refusals: 404 sos_not_found (also another volunteer's); 409 sos_not_live (it ended);
    422 batch_too_large, bad coordinates or times.
    """
    return responding.add_positions(current_caller(), sos_id, data["positions"])


@blp.route("/me/sos/<int:sos_id>/cancel", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(SosNoteOptionalSchema)
@blp.response(200, MySosSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def cancel_sos(data: dict[str, Any], sos_id: int) -> Any:
    """Cancel my SOS (a false alarm)

    Everyone alerted may stand down; organisers see my cancelled SOS as false alarms. Refusals:
    404 sos_not_found (also another volunteer's); 409 sos_not_live (already ended).
    """
    return views.my_view(responding.cancel(current_caller(), sos_id, data.get("note")))


# --- responders ----------------------------------------------------------------------------------


@blp.route("/sos", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(SosListArgs, location="query")
@blp.response(200, page_schema(SosListItemSchema))
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def list_sos(args: dict[str, Any]) -> Any:
    """SOS in my area

    Live ones first, then newest first, with cursor pagination; filtered by `status` and by
    `area_id` (any area in my subtree; 403 out_of_scope outside it, 404 area_not_found). Each with
    the volunteer's name and `false_alarms` (their cancelled SOS in SOS_FALSE_ALARM_DAYS).
    Positions are on the single SOS.
    """
    return views.responder_list(current_caller(), args)


@blp.route("/sos/<int:sos_id>", methods=["GET"])
@auth_required()
@blp.response(200, SosDetailSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_sos(sos_id: int) -> Any:
    """One SOS, for those who respond

    Organisers, staff and admins whose area holds its grid, and anyone alerted to it (a volunteer
    on duty nearby), see its positions in time order, history, how many were alerted, the
    volunteer's phone to call back and their false alarms; each such read is logged in the
    location access log. Its volunteer may read it too (not logged). Anyone else: 404
    sos_not_found, as an unknown id.
    """
    return views.responder_sos(current_caller(), sos_id)


@blp.route("/sos/<int:sos_id>/acknowledge", methods=["POST"])
@auth_required()
@idempotent
@blp.arguments(SosAcknowledgeSchema)
@blp.response(200, SosDetailSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def acknowledge_sos(data: dict[str, Any], sos_id: int) -> Any:
    """Acknowledge an SOS: going or handled

    For organisers, staff and admins whose area holds its grid, and anyone alerted to it. The
    first acknowledgement stops the escalation; later ones are recorded too, and the volunteer
    sees each. Refusals: 403 own_sos (the volunteer's own); 404 sos_not_found (also one out of
    reach); 409 sos_not_live (cancelled or closed).
    """
    caller = current_caller()
    sos, _first = responding.acknowledge(caller, sos_id, data["response"], data.get("note"))
    return views.detail_for(caller, sos)


@blp.route("/sos/<int:sos_id>/close", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(SosNoteRequiredSchema)
@blp.response(200, SosDetailSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def close_sos(data: dict[str, Any], sos_id: int) -> Any:
    """Close an SOS with a note

    For organisers, staff and admins whose area holds its grid; everyone alerted may stand down.
    Refusals: 404 sos_not_found (also one outside my area); 409 sos_not_live (already ended);
    422 without a note.
    """
    caller = current_caller()
    return views.detail_for(caller, responding.close(caller, sos_id, data["note"]))
