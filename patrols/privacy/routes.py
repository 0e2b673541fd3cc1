"""HTTP layer of location privacy: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import OFFICIALS, Role, auth_required, current_caller
from core.idempotency import idempotent
from core.pagination import page_schema
from patrols.privacy import service as privacy
from patrols.privacy.schemas import (
    LocationAccessQuerySchema,
    LocationAccessSchema,
    LocationConsentGrantSchema,
    LocationConsentStateSchema,
    TrackPointsDeletedSchema,
)
from volunteers.service import own_volunteer

blp = Blueprint(
    "location-privacy",
    __name__,
    url_prefix="/api/v1",
    description="Location under PIPL: the separate consent to tracking, deleting one's track, the log of reads of positions",
)


@blp.route("/me/location-consent", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, LocationConsentStateSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_location_consent() -> Any:
    """My consent to location tracking

    Whether a consent is in force (its terms version and time), the current terms version
    (`up_to_date` false: ask again) and every grant and withdrawal, newest first. This consent is
    separate from the registration's privacy consent (PIPL art. 29). Refusals: 404
    volunteer_not_found (no volunteer profile).
    """
    return privacy.consent_view(own_volunteer(current_caller()))


@blp.route("/me/location-consent", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(LocationConsentGrantSchema)
@blp.response(200, LocationConsentStateSchema)
@blp.alt_response(404, response="NOT_FOUND")
def grant_location_consent(data: dict[str, Any]) -> Any:
    """Consent to location tracking

    Names the terms agreed to, which must be the current LOCATION_TERMS_VERSION. Granting the
    version already in force changes nothing (200); a consent to older terms is replaced. Track
    uploads need it; check-in and the SOS do not. Audited. Refusals: 404 volunteer_not_found;
    422 location_terms_outdated (another version).
    """
    caller = current_caller()
    volunteer = own_volunteer(caller)
    privacy.grant_consent(caller, volunteer, data["version"])
    return privacy.consent_view(volunteer)


@blp.route("/me/location-consent", methods=["DELETE"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.response(200, LocationConsentStateSchema)
@blp.alt_response(404, response="NOT_FOUND")
def withdraw_location_consent() -> Any:
    """Withdraw my consent to location tracking

    At once: from this answer on, track uploads are refused (403 location_consent_required),
    batches recorded offline before it too. Points already kept stay until deleted
    (`DELETE /me/track-points`) or their retention ends. Without a consent in force it changes
    nothing and answers the same state (200), so a repeat is harmless. Audited. Refusals: 404
    volunteer_not_found.
    """
    caller = current_caller()
    volunteer = own_volunteer(caller)
    privacy.withdraw_consent(caller, volunteer)
    return privacy.consent_view(volunteer)


@blp.route("/me/track-points", methods=["DELETE"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.response(200, TrackPointsDeletedSchema)
@blp.alt_response(404, response="NOT_FOUND")
def delete_own_track_points() -> Any:
    """Delete the track points kept of my patrols

    Every GPS fix still kept of my patrols is deleted; each patrol's summary (distance, point
    count, checkpoint scans, served time) stays. Says how many were deleted; a repeat deletes
    none. Audited. Refusals: 404 volunteer_not_found.
    """
    caller = current_caller()
    return privacy.delete_own_track_points(caller, own_volunteer(caller))


@blp.route("/location-access", methods=["GET"])
@auth_required(*OFFICIALS)
@blp.arguments(LocationAccessQuerySchema, location="query")
@blp.response(200, page_schema(LocationAccessSchema))
def list_location_access(args: dict[str, Any]) -> Any:
    """Reads of volunteers' positions in my area, newest first

    Every read of someone else's track or SOS positions by an organiser, staff member or admin:
    who read, whose, what and when. Entries of the caller's subtree only. Filters: `volunteer_id`
    (whose), `actor_id` (who read), `since` (inclusive) and `until` (exclusive), with an offset.
    """
    return privacy.list_location_access(current_caller(), args)
