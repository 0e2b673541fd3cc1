"""A volunteer's personal iCalendar feed (RFC 5545) behind a secret, revocable URL. No HTTP here.

Calendar apps cannot send an Authorization header, so the URL itself is the credential: a
``secrets.token_urlsafe(32)`` token shown once, of which only a keyed hash is stored. Creating a feed
revokes the previous one. The feed holds the volunteer's assigned shifts (primary and backup) from
``PAST_DAYS`` back to the series horizon ahead; places that ended (shift cancelled, withdrawn,
removed, swapped) stay ``ENDED_KEPT_DAYS`` as ``STATUS:CANCELLED`` so subscribed calendars drop them.
Each event's UID names the shift and the assignment, so it is stable across refreshes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import sqlalchemy as sa
from flask import current_app

from core import i18n
from core.crypto import keyed_hash
from core.db import utcnow
from core.errors import Forbidden, NotFound
from core.extensions import db
from shifts.calendar.models import CalendarFeed
from shifts.models import Assignment, AssignmentRole, AssignmentStatus, ShiftStatus
from shifts.service import select_assignments
from volunteers.models import Volunteer, VolunteerStatus

PAST_DAYS = 30
ENDED_KEPT_DAYS = 14
#: last_used_at is written at most this often, so polling calendars do not write on every fetch.
LAST_USED_RESOLUTION = timedelta(hours=1)
REFRESH_INTERVAL = timedelta(hours=1)
UID_DOMAIN = "shouwang"
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)

#: Volunteers whose feed no longer exists: they are gone from the service.
_NO_FEED_STATUSES = (VolunteerStatus.RETIRED, VolunteerStatus.REJECTED)
_SHOWN = (AssignmentStatus.ASSIGNED, AssignmentStatus.ABSENT)
_ENDED = (
    AssignmentStatus.CANCELLED,
    AssignmentStatus.WITHDRAWN,
    AssignmentStatus.REMOVED,
    AssignmentStatus.SWAPPED,
)

i18n.register_titles(
    i18n.title("calendar_feed_not_found", "Calendar feed not found or revoked"),
    i18n.title("calendar_feed_unavailable", "Calendar feed not available"),
)
i18n.register_messages(
    i18n.N_("The calendar feed does not exist or was revoked."),
    i18n.N_("Retired or rejected volunteers have no calendar feed."),
)

# The feed's own texts; the volunteer's language picks the catalogue.
_TEXT = {
    "calendar": i18n.C_("calendar feed", "Shouwang · my patrol shifts"),
    "backup": i18n.C_("calendar feed", "[Backup] "),
    "backup_note": i18n.C_("calendar feed", "You are the backup (B post): you step in when a primary drops out."),
}


# ------------------------------------------------------------------------------- the feed record


def active_feed(volunteer: Volunteer) -> CalendarFeed | None:
    return db.session.scalar(
        sa.select(CalendarFeed)
        .where(CalendarFeed.volunteer_id == volunteer.id, CalendarFeed.revoked_at.is_(None))
        .order_by(CalendarFeed.id.desc())
        .limit(1)
    )


def feed_view(feed: CalendarFeed | None) -> dict[str, Any]:
    return {
        "active": feed is not None,
        "created_at": feed.created_at if feed else None,
        "last_used_at": feed.last_used_at if feed else None,
    }


def _lock_volunteer(volunteer: Volunteer) -> None:
    """Serialise a volunteer's feed changes, so two rotations at once leave one active feed.

    SQLite ignores FOR UPDATE but serialises every writer anyway (BEGIN IMMEDIATE).
    """
    db.session.execute(sa.select(Volunteer.id).where(Volunteer.id == volunteer.id).with_for_update())


def _revoke_active(volunteer: Volunteer, now: datetime) -> None:
    db.session.execute(
        sa.update(CalendarFeed)
        .where(CalendarFeed.volunteer_id == volunteer.id, CalendarFeed.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def create_feed(volunteer: Volunteer) -> tuple[CalendarFeed, str]:
    """A new feed and its token (returned this once, never stored); any previous feed is revoked."""
    if volunteer.status in _NO_FEED_STATUSES:
        raise Forbidden(
            "Retired or rejected volunteers have no calendar feed.", code="calendar_feed_unavailable"
        )
    _lock_volunteer(volunteer)
    now = utcnow()
    _revoke_active(volunteer, now)
    token = secrets.token_urlsafe(32)
    feed = CalendarFeed(volunteer_id=volunteer.id, token_hash=keyed_hash(token), created_at=now)
    db.session.add(feed)
    db.session.flush()
    return feed, token


def revoke_feed(volunteer: Volunteer) -> None:
    """Revoke the volunteer's feed; nothing to revoke is fine (the result is the same)."""
    _lock_volunteer(volunteer)
    _revoke_active(volunteer, utcnow())
    db.session.flush()


def _not_found() -> NotFound:
    return NotFound("The calendar feed does not exist or was revoked.", code="calendar_feed_not_found")


def feed_owner(token: str) -> Volunteer:
    """The volunteer whose live feed ``token`` opens; unknown, revoked or retired is 404 alike.

    Suspended volunteers keep their feed: their shifts still stand until an organiser removes them.
    """
    if not TOKEN_PATTERN.match(token):
        raise _not_found()
    feed = db.session.scalar(sa.select(CalendarFeed).where(CalendarFeed.token_hash == keyed_hash(token)))
    if feed is None or feed.revoked_at is not None:
        raise _not_found()
    volunteer = db.session.get(Volunteer, feed.volunteer_id)
    if volunteer is None or volunteer.status in _NO_FEED_STATUSES:
        raise _not_found()
    now = utcnow()
    if feed.last_used_at is None or now - feed.last_used_at >= LAST_USED_RESOLUTION:
        feed.last_used_at = now
        db.session.flush()
    return volunteer


# ------------------------------------------------------------------------------- the calendar


def feed_assignments(volunteer: Volunteer, now: datetime | None = None) -> list[Assignment]:
    """The assignments the feed shows, by start: held or missed places, and recently ended ones.

    Read by the places' copies of their shifts' times (``Assignment``, migration 0022): the range
    "ended at most PAST_DAYS ago" of ``(volunteer_id, shift_ends_at)``, so a year of history is not
    read for the month the feed shows; only those places are joined to their shifts (the events).
    """
    now = now or utcnow()
    horizon = now + timedelta(days=current_app.config["SERIES_HORIZON_DAYS"])
    stmt = (
        select_assignments()
        .where(
            Assignment.volunteer_id == volunteer.id,
            Assignment.shift_ends_at >= now - timedelta(days=PAST_DAYS),
            Assignment.shift_starts_at <= horizon,
            sa.or_(
                Assignment.status.in_(_SHOWN),
                sa.and_(
                    Assignment.status.in_(_ENDED),
                    Assignment.ended_at >= now - timedelta(days=ENDED_KEPT_DAYS),
                ),
            ),
        )
        .order_by(Assignment.shift_starts_at, Assignment.id)
    )
    return list(db.session.scalars(stmt).unique())


def event_uid(assignment: Assignment) -> str:
    return f"shift-{assignment.shift_id}-assignment-{assignment.id}@{UID_DOMAIN}"


def _event(assignment: Assignment, text: dict[str, str]) -> icalendar.Event:
    shift = assignment.shift
    tz = ZoneInfo(shift.timezone)
    modified = max(shift.updated_at, assignment.updated_at)
    backup = assignment.role == AssignmentRole.BACKUP
    cancelled = assignment.status in _ENDED or shift.status != ShiftStatus.SCHEDULED
    event = icalendar.Event()
    event.add("uid", event_uid(assignment))
    # The content only changes with the data, so the body (and its ETag) is stable between polls.
    event.add("dtstamp", modified)
    event.add("last-modified", modified)
    # Seconds since the place was made: grows with every change of the shift or the place.
    event.add("sequence", max(int((modified - assignment.created_at).total_seconds()), 0))
    event.add("dtstart", shift.starts_at.astimezone(tz))
    event.add("dtend", shift.ends_at.astimezone(tz))
    event.add("summary", f"{text['backup'] if backup else ''}{shift.title} · {shift.grid.name}")
    event.add("location", shift.meeting_point or shift.grid.name)
    description = [part for part in (shift.instructions, text["backup_note"] if backup else None) if part]
    if description:
        event.add("description", "\n\n".join(description))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    return event


def render_feed(volunteer: Volunteer) -> bytes:
    """The volunteer's calendar as iCalendar bytes, in their language, with VTIMEZONEs."""
    language = i18n.language_of(volunteer.user.locale)
    text = {key: i18n.gettext_in(language, value) for key, value in _TEXT.items()}
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Shouwang//Patrol shifts//ZH")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", text["calendar"])
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", icalendar.vDuration(REFRESH_INTERVAL).to_ical().decode())
    for assignment in feed_assignments(volunteer):
        calendar.add_component(_event(assignment, text))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def etag_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]
