"""HTTP layer of calendar feeds: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for
from flask_smorest import Blueprint

from core.auth import Role, auth_required, current_caller
from shifts.calendar import service as calendar
from shifts.calendar.schemas import CalendarFeedCreatedSchema, CalendarFeedSchema
from volunteers.service import own_volunteer

blp = Blueprint("calendar", __name__, url_prefix="/api/v1", description="Personal iCalendar feed of a volunteer's shifts behind a secret, revocable URL")

ICALENDAR_MIMETYPE = "text/calendar"
#: The URL is a secret: no shared cache may keep the feed, and apps refetch within minutes.
FEED_CACHE_CONTROL = "private, max-age=300"


@blp.route("/me/calendar-feed", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, CalendarFeedSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_calendar_feed() -> Any:
    """Whether my calendar feed is on

    Never shows the URL again: to get a URL, create (rotate) the feed. Other roles are 403; a user
    without a volunteer profile 404 volunteer_not_found.
    """
    return calendar.feed_view(calendar.active_feed(own_volunteer(current_caller())))


@blp.route("/me/calendar-feed", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@blp.response(201, CalendarFeedCreatedSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def create_calendar_feed() -> Any:
    """Create or rotate my calendar feed

    Returns a new secret iCalendar URL, shown only in this response; the previous URL, if any, stops
    working at once. Subscribe to it in any calendar app (no login needed). Retired or rejected
    volunteers are 403 calendar_feed_unavailable; other roles 403 forbidden.
    """
    feed, token = calendar.create_feed(own_volunteer(current_caller()))
    url = url_for("calendar.calendar_document", token=token, _external=True)
    body = {**calendar.feed_view(feed), "url": url, "webcal_url": "webcal://" + url.split("://", 1)[1]}
    return body, {"Cache-Control": "no-store"}


@blp.route("/me/calendar-feed", methods=["DELETE"])
@auth_required(Role.VOLUNTEER)
@blp.response(204)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def delete_calendar_feed() -> Any:
    """Revoke my calendar feed

    The URL stops working at once (404). Revoking when no feed is on is not an error. Other roles
    are 403 forbidden.
    """
    calendar.revoke_feed(own_volunteer(current_caller()))


_TOKEN_PARAMETER = {
    "in": "path",
    "name": "token",
    "description": "The secret from the URL the feed was created with",
    "schema": {"type": "string", "minLength": 43, "maxLength": 43, "pattern": calendar.TOKEN_PATTERN.pattern},
}


@blp.route("/calendar/<string:token>.ics", methods=["GET"], parameters=[_TOKEN_PARAMETER])
@blp.response(
    200,
    {"type": "string"},  # text (UTF-8), so clients read it as a string, not a file
    content_type=ICALENDAR_MIMETYPE,
    description="RFC 5545 iCalendar: one VEVENT per place on a shift",
)
@blp.alt_response(304, response="NOT_MODIFIED")
@blp.alt_response(404, response="NOT_FOUND")
def calendar_document(token: str) -> Any:
    """A volunteer's iCalendar feed (public, by secret URL)

    No Authorization header: the secret token in the URL is the credential. The volunteer's
    assigned shifts (primary and backup, the backup marked in the summary) from 30 days back to the
    planning horizon, times with the shift's TZID; places ended in the last 14 days (shift
    cancelled, withdrawn, removed, swapped) appear with STATUS:CANCELLED. UIDs are stable;
    SEQUENCE and LAST-MODIFIED change with every edit. Sends an ETag and answers If-None-Match with
    304. An unknown or revoked token, or a retired volunteer's, is 404 calendar_feed_not_found.
    """
    body = calendar.render_feed(calendar.feed_owner(token))
    response = current_app.response_class(body, mimetype=ICALENDAR_MIMETYPE)
    response.headers["Cache-Control"] = FEED_CACHE_CONTROL
    response.headers["X-Robots-Tag"] = "noindex"
    response.set_etag(calendar.etag_of(body))
    return response.make_conditional(request)
