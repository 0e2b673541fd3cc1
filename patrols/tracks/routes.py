"""HTTP layer of tracks: parse, authorise, call the service, serialise.

The blueprint is the API's "patrol-tracks" section; checkpoints, scans and the patrol summary add
their routes to it (``patrols/checkpoints/routes.py``), so the document keeps one section for what
a patrol leaves behind.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import Role, auth_required, current_caller
from core.idempotency import idempotent
from patrols.tracks import service as tracks
from patrols.tracks.schemas import TrackBatchSchema, TrackSchema, TrackUploadResultSchema

blp = Blueprint("patrol-tracks", __name__, url_prefix="/api/v1", description="GPS tracks in batches, grid checkpoints with signed QR codes, scans, patrol summaries")


# --- tracks ------------------------------------------------------------------------------------


@blp.route("/assignments/<int:assignment_id>/track", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(TrackBatchSchema)
@blp.response(200, TrackUploadResultSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def upload_track(data: dict[str, Any], assignment_id: int) -> Any:
    """Upload track points

    A batch of up to TRACK_MAX_BATCH (1,000) GPS fixes of my own assignment, in any order, before
    or after the check-in. A fix is identified by its device time: fixes already stored, or repeated
    in the batch, are counted as duplicates and change nothing, so a batch may be sent again safely.
    Returns the patrol's point count and distance walked (GPS jumps left out). Needs my consent
    to location tracking in force when the batch arrives (`POST /me/location-consent`), whenever
    its points were recorded. Refusals: 403 location_consent_required (no consent in force); 404
    assignment_not_found (not mine); 409 shift_cancelled, assignment_not_active, track_expired
    (past TRACK_RETENTION_DAYS), track_full; 413 body over 1 MiB; 422 batch_too_large, a coordinate
    out of range or a time too far outside the shift (the error names the point's index). Nothing is
    stored from a refused batch.
    """
    return tracks.upload_points(current_caller(), assignment_id, data["points"])


@blp.route("/assignments/<int:assignment_id>/track", methods=["GET"])
@auth_required()
@blp.response(200, TrackSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_track(assignment_id: int) -> Any:
    """A patrol's track as GeoJSON

    A FeatureCollection ordered by device time: the LineString of the plausible points, then one
    Point per fix (`implausible` marks GPS jumps), with distance_m and track_point_count, which stay
    after the points are purged (`purged`). The volunteer sees their own; organisers, staff and
    admins those in their area, and each such read is logged for the volunteer and their staff
    (`GET /location-access`); any other is 404 assignment_not_found, as an unknown id.
    """
    return tracks.track_view(current_caller(), assignment_id)
