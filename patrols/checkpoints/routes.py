"""HTTP layer of checkpoints, their scans and the patrol summary: parse, authorise, call the service,
serialise.

The routes belong to the API's "patrol-tracks" section, the blueprint of ``patrols/tracks/routes.py``
(``patrols.init_app`` imports this module before it registers that blueprint).
"""

from __future__ import annotations

from typing import Any

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.idempotency import idempotent
from core.pagination import PageArgs, page_schema
from patrols.checkpoints import service as checkpoints
from patrols.checkpoints.schemas import (
    CheckpointCreateInput,
    CheckpointCreateSchema,
    CheckpointQueryArgs,
    CheckpointSchema,
    PatrolSummarySchema,
    ScanInSchema,
    ScanSchema,
)
from patrols.tracks.routes import blp

# --- the patrol summary ------------------------------------------------------------------------


@blp.route("/assignments/<int:assignment_id>/patrol/summary", methods=["GET"])
@auth_required()
@blp.response(200, PatrolSummarySchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_patrol_summary(assignment_id: int) -> Any:
    """Patrol summary

    Distance walked, track points, presence and served minutes, and the grid's checkpoints visited
    (first scan, number of scans, flagged) and missed (active, not scanned). Kept after the track is
    purged. The volunteer sees their own (another's is 404); managers those in their area (403).
    """
    return checkpoints.patrol_summary(current_caller(), assignment_id)


# --- checkpoints -------------------------------------------------------------------------------


@blp.route("/areas/<int:grid_id>/checkpoints", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(CheckpointCreateSchema)
@blp.response(201, CheckpointSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def create_checkpoint(data: CheckpointCreateInput, grid_id: int) -> Any:
    """Place a checkpoint

    A QR checkpoint (a gate, a shop, a riverbank) in a grid of my area, inside the grid or at most
    CHECKPOINT_MAX_OUTSIDE_M (200 m) outside its boundary. Returns the signed `qr_payload` to print.
    Refusals: 403 out_of_scope; 404 area_not_found; 422 not_a_grid, checkpoint_outside_grid.
    """
    caller = current_caller()
    return checkpoints.checkpoint_view(checkpoints.create_checkpoint(caller, grid_id, data))


@blp.route("/areas/<int:grid_id>/checkpoints", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(CheckpointQueryArgs, location="query")
@blp.response(200, page_schema(CheckpointSchema))
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def list_checkpoints(args: dict[str, Any], grid_id: int) -> Any:
    """A grid's checkpoints

    Active checkpoints (all with `include_inactive`) with their QR payloads, oldest first.
    Refusals: 403 out_of_scope; 404 area_not_found.
    """
    page = checkpoints.list_checkpoints(current_caller(), grid_id, args)
    page["items"] = [checkpoints.checkpoint_view(item) for item in page["items"]]
    return page


@blp.route("/checkpoints/<int:checkpoint_id>", methods=["GET"])
@auth_required(*MANAGERS)
@blp.response(200, CheckpointSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_checkpoint(checkpoint_id: int) -> Any:
    """A checkpoint and its QR payload

    Refusals: 404 checkpoint_not_found (also one outside my area).
    """
    return checkpoints.checkpoint_view(checkpoints.get_managed_checkpoint(current_caller(), checkpoint_id))


@blp.route("/checkpoints/<int:checkpoint_id>/deactivate", methods=["POST"])
@auth_required(*MANAGERS)
@blp.response(200, CheckpointSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def deactivate_checkpoint(checkpoint_id: int) -> Any:
    """Deactivate a checkpoint

    Its QR code is refused from now on (422 checkpoint_inactive) and it is no longer counted as
    missed; past scans stay. Deactivating again changes nothing. Refusals: 404
    checkpoint_not_found (also one outside my area).
    """
    checkpoint = checkpoints.get_managed_checkpoint(current_caller(), checkpoint_id)
    return checkpoints.checkpoint_view(checkpoints.deactivate(checkpoint))


@blp.route("/checkpoints/<int:checkpoint_id>/rotate-qr", methods=["POST"])
@auth_required(*MANAGERS)
@blp.response(200, CheckpointSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def rotate_checkpoint_qr(checkpoint_id: int) -> Any:
    """Issue a new QR payload

    Bumps the checkpoint's QR version: the new payload is returned and every earlier one is refused
    (422 qr_invalid), e.g. after a poster was copied. Refusals: 404 checkpoint_not_found (also one
    outside my area).
    """
    checkpoint = checkpoints.get_managed_checkpoint(current_caller(), checkpoint_id)
    return checkpoints.checkpoint_view(checkpoints.rotate_qr(checkpoint))


# --- scans -------------------------------------------------------------------------------------


@blp.route("/assignments/<int:assignment_id>/checkpoint-scans", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(ScanInSchema)
@blp.response(201, ScanSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def scan_checkpoint(data: dict[str, Any], assignment_id: int) -> Any:
    """Record a checkpoint scan

    A QR scan on my own assignment, with position and device time, during the shift (give or take
    PATROL_EVENT_SLACK_MINUTES); may arrive before the check-in. Recorded once per `client_id`: the
    same id again returns the first scan. A position farther than CHECKPOINT_SCAN_RADIUS_M from the
    checkpoint is recorded with the flag far_from_checkpoint. Refusals: 404 assignment_not_found
    (not mine); 409 shift_cancelled, assignment_not_active, client_id_reused (the id belongs to a
    scan of another assignment); 422 qr_invalid (forged, altered or revoked), checkpoint_inactive,
    checkpoint_other_grid, scan_outside_shift, coordinates out of range.
    """
    caller = current_caller()
    scan = checkpoints.record_scan(caller, assignment_id, data)
    return _scan_view(scan, assignment_id)


@blp.route("/assignments/<int:assignment_id>/checkpoint-scans", methods=["GET"])
@auth_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(ScanSchema))
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def list_scans(args: dict[str, Any], assignment_id: int) -> Any:
    """A patrol's checkpoint scans

    Oldest first. The volunteer sees their own (another's is 404); managers those in their area (403).
    """
    return checkpoints.own_scans_view(current_caller(), assignment_id, args)


def _scan_view(scan: Any, assignment_id: int) -> dict[str, Any]:
    return checkpoints.scan_view(scan, assignment_id)
