"""The personal iCalendar feed: secret URL, rotation, revocation, and the calendar's content."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa

from accounts.models import User
from core.crypto import keyed_hash
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from shifts.calendar.models import CalendarFeed
from shifts.models import Assignment
from tests import factories, races
from tests.conftest import Tree
from tests.problems import EN, assert_problem
from volunteers.models import Volunteer

FEED = "/api/v1/me/calendar-feed"
DAY = timedelta(days=1)


@pytest.fixture
def volunteer(tree: Tree) -> Volunteer:
    return factories.make_volunteer(tree.grid_a, real_name="王五")


def as_(who: User | Volunteer, **extra: str) -> dict[str, str]:
    user = db.session.get(User, who.user_id) if isinstance(who, Volunteer) else who
    return factories.headers_for(user, **extra)


def subscribe(client: Any, volunteer: Volunteer) -> str:
    """Create the feed; returns its path (the URL without scheme and host)."""
    response = client.post(FEED, headers=as_(volunteer))
    assert response.status_code == 201, response.get_data(as_text=True)
    return "/" + response.get_json()["url"].split("/", 3)[3]


def fetch(client: Any, path: str, **headers: str) -> icalendar.Calendar:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/calendar"
    return icalendar.Calendar.from_ical(response.data)


def events(calendar: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(event["uid"]): event for event in calendar.walk("VEVENT")}


def uid(assignment: Assignment) -> str:
    return f"shift-{assignment.shift_id}-assignment-{assignment.id}@shouwang"


def end(assignment: Assignment, status: str, *, days_ago: float = 0) -> None:
    if assignment.status == "assigned":
        assignment.shift.primary_count -= assignment.role == "primary"
        assignment.shift.backup_count -= assignment.role == "backup"
    assignment.status, assignment.ended_at = status, utcnow() - timedelta(days=days_ago)
    db.session.flush()


# ----------------------------------------------------------------------------------- the URL


def test_create_shows_the_url_once_and_stores_only_a_keyed_hash(client, volunteer) -> None:
    assert client.get(FEED, headers=as_(volunteer)).get_json() == {
        "active": False, "created_at": None, "last_used_at": None
    }
    response = client.post(FEED, headers=as_(volunteer))
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["active"] is True
    assert body["url"].startswith("http://localhost/api/v1/calendar/") and body["url"].endswith(".ics")
    assert body["webcal_url"] == "webcal://" + body["url"].removeprefix("http://")
    token = body["url"].rsplit("/", 1)[1].removesuffix(".ics")
    assert len(token) == 43

    feed = db.session.scalar(sa.select(CalendarFeed).where(CalendarFeed.volunteer_id == volunteer.id))
    assert feed.token_hash == keyed_hash(token) and token not in feed.token_hash
    status = client.get(FEED, headers=as_(volunteer))
    assert status.get_json()["active"] is True
    assert token not in status.get_data(as_text=True)


def test_rotating_revokes_the_old_url(client, volunteer) -> None:
    old = subscribe(client, volunteer)
    new = subscribe(client, volunteer)
    assert new != old
    assert_problem(client.get(old), 404, "calendar_feed_not_found")
    assert client.get(new).status_code == 200
    live = db.session.scalars(
        sa.select(CalendarFeed).where(CalendarFeed.volunteer_id == volunteer.id, CalendarFeed.revoked_at.is_(None))
    ).all()
    assert len(live) == 1


def test_revoking_stops_the_url_and_is_idempotent(client, volunteer) -> None:
    path = subscribe(client, volunteer)
    assert client.delete(FEED, headers=as_(volunteer)).status_code == 204
    body = assert_problem(client.get(path, headers=EN), 404, "calendar_feed_not_found")
    assert body["detail"] == "The calendar feed does not exist or was revoked."
    assert client.get(FEED, headers=as_(volunteer)).get_json()["active"] is False
    assert client.delete(FEED, headers=as_(volunteer)).status_code == 204


@pytest.mark.parametrize(
    "token", ["x", "A" * 43, "A" * 44, "%00" * 43, "Ω" * 43, "a.b"]
)
def test_unknown_or_malformed_tokens_are_404(client, volunteer, token) -> None:
    subscribe(client, volunteer)
    assert_problem(client.get(f"/api/v1/calendar/{token}.ics"), 404, "calendar_feed_not_found")


def test_a_token_with_a_slash_matches_no_route(client, volunteer) -> None:
    subscribe(client, volunteer)
    assert_problem(client.get("/api/v1/calendar/../x/y.ics"), 404, "not_found")


def test_feed_management_refusals(client, tree, volunteer) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    for method in ("get", "post", "delete"):
        assert_problem(getattr(client, method)(FEED, headers=as_(organiser)), 403, "forbidden")
        assert_problem(getattr(client, method)(FEED), 401, "unauthorized")
    retired = factories.make_volunteer(tree.grid_a, status="retired")
    assert_problem(client.post(FEED, headers=as_(retired)), 403, "calendar_feed_unavailable")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CalendarFeed)) == 0


def test_retired_volunteers_feed_is_gone_suspended_ones_still_shows_shifts(client, tree, volunteer) -> None:
    assignment = factories.make_assignment(factories.make_shift(tree.grid_a), volunteer)
    path = subscribe(client, volunteer)
    volunteer.status = "suspended"
    db.session.flush()
    assert uid(assignment) in events(fetch(client, path))
    volunteer.status = "retired"
    db.session.flush()
    assert_problem(client.get(path), 404, "calendar_feed_not_found")


# ----------------------------------------------------------------------------------- the calendar


def test_feed_holds_my_assigned_shifts_with_zones_places_and_backups(client, tree, volunteer) -> None:
    primary_shift = factories.make_shift(tree.grid_a, starts_in=DAY, title="夜间巡逻")
    primary_shift.meeting_point, primary_shift.instructions = "东站广场北门", "带好袖标；注意安全"
    primary = factories.make_assignment(primary_shift, volunteer)
    backup = factories.make_assignment(factories.make_shift(tree.grid_b, starts_in=2 * DAY, backup_slots=1),
                                       volunteer, role="backup")
    recent = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=-10 * DAY), volunteer)
    absent = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=-5 * DAY), volunteer)
    end(absent, "absent")
    waitlisted = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=3 * DAY), volunteer,
                                           status="waitlisted")
    invited = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=3 * DAY), volunteer,
                                        status="invited")
    too_old = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=-40 * DAY), volunteer)
    beyond_horizon = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=80 * DAY), volunteer)
    someone_else = factories.make_volunteer(tree.grid_a)
    factories.make_assignment(primary_shift, someone_else)
    path = subscribe(client, volunteer)

    response = client.get(path)
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "private, max-age=300"
    assert "Authorization" not in response.request.headers
    calendar = icalendar.Calendar.from_ical(response.data)
    assert str(calendar["version"]) == "2.0" and str(calendar["method"]) == "PUBLISH"
    assert [str(zone["tzid"]) for zone in calendar.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    found = events(calendar)
    assert set(found) == {uid(primary), uid(backup), uid(recent), uid(absent)}
    assert not {uid(waitlisted), uid(invited), uid(too_old), uid(beyond_horizon)} & set(found)

    event = found[uid(primary)]
    start = event.decoded("dtstart")
    assert start == primary_shift.starts_at and start.tzinfo == ZoneInfo("Asia/Shanghai")
    assert event["dtstart"].params["TZID"] == "Asia/Shanghai"
    assert event.decoded("dtend") == primary_shift.ends_at
    assert str(event["summary"]) == f"夜间巡逻 · {tree.grid_a.name}"
    assert str(event["location"]) == "东站广场北门"
    assert str(event["description"]) == "带好袖标；注意安全"
    assert str(event["status"]) == "CONFIRMED"
    assert event.decoded("last-modified") == max(primary_shift.updated_at, primary.updated_at).replace(microsecond=0)

    backup_event = found[uid(backup)]
    assert str(backup_event["summary"]).startswith("【备岗】")
    assert str(backup_event["location"]) == tree.grid_b.name  # no meeting point: the grid
    assert "备岗" in str(backup_event["description"])


def test_cancelled_and_ended_places_show_as_cancelled_for_a_while(client, tree, volunteer) -> None:
    called_off = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=DAY), volunteer)
    called_off.shift.status, called_off.shift.cancelled_at = "cancelled", utcnow()
    end(called_off, "cancelled")
    withdrawn = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=2 * DAY), volunteer)
    end(withdrawn, "withdrawn", days_ago=3)
    long_ago = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=3 * DAY), volunteer)
    end(long_ago, "removed", days_ago=20)
    again = factories.make_assignment(withdrawn.shift, volunteer)  # signed up again: a new place
    path = subscribe(client, volunteer)

    found = events(fetch(client, path))
    assert {uid: str(event["status"]) for uid, event in found.items()} == {
        uid(called_off): "CANCELLED",
        uid(withdrawn): "CANCELLED",
        uid(again): "CONFIRMED",
    }
    assert str(found[uid(called_off)]["transp"]) == "TRANSPARENT"


def test_events_carry_the_shifts_own_zone_and_the_volunteers_language(client, tree) -> None:
    community = factories.make_area(AreaLevel.COMMUNITY, tree.subdistrict_a, timezone="Asia/Urumqi")
    grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(87.6, 43.8),
                               timezone="Asia/Urumqi")
    volunteer = factories.make_volunteer(grid)
    volunteer.user.locale = "en"
    shift = factories.make_shift(grid, backup_slots=1, title="Night patrol")
    assignment = factories.make_assignment(shift, volunteer, role="backup")
    path = subscribe(client, volunteer)

    calendar = fetch(client, path)
    event = events(calendar)[uid(assignment)]
    assert event["dtstart"].params["TZID"] == "Asia/Urumqi"
    start = event.decoded("dtstart")
    assert start == shift.starts_at and start.utcoffset() == timedelta(hours=6)
    assert str(event["summary"]) == f"[Backup] Night patrol · {grid.name}"
    assert str(calendar["x-wr-calname"]) == "Shouwang · my patrol shifts"
    assert [str(zone["tzid"]) for zone in calendar.walk("VTIMEZONE")] == ["Asia/Urumqi"]


def test_etag_answers_304_until_something_changes(client, tree, volunteer) -> None:
    shift = factories.make_shift(tree.grid_a)
    assignment = factories.make_assignment(shift, volunteer)
    path = subscribe(client, volunteer)
    first = client.get(path)
    etag = first.headers["ETag"]
    sequence = int(events(icalendar.Calendar.from_ical(first.data))[uid(assignment)]["sequence"])

    unchanged = client.get(path, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b""

    shift.title, shift.updated_at = "雨天巡逻", shift.updated_at + timedelta(hours=1)
    db.session.flush()
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    event = events(icalendar.Calendar.from_ical(changed.data))[uid(assignment)]
    assert int(event["sequence"]) > sequence
    assert str(event["summary"]).startswith("雨天巡逻")


def test_fetching_records_last_use_at_most_hourly(client, tree, volunteer) -> None:
    path = subscribe(client, volunteer)
    client.get(path)
    feed = db.session.scalar(sa.select(CalendarFeed).where(CalendarFeed.volunteer_id == volunteer.id))
    first_use = feed.last_used_at
    assert first_use is not None and utcnow() - first_use < timedelta(minutes=1)
    client.get(path)
    db.session.refresh(feed)
    assert feed.last_used_at == first_use
    assert client.get(FEED, headers=as_(volunteer)).get_json()["last_used_at"] is not None


def test_an_empty_feed_is_still_a_valid_calendar(client, volunteer) -> None:
    calendar = fetch(client, subscribe(client, volunteer))
    assert events(calendar) == {}
    assert str(calendar["prodid"]).startswith("-//Shouwang//")
    assert str(calendar["x-published-ttl"]) == "PT1H"
    assert calendar.decoded("refresh-interval") == timedelta(hours=1)


def test_times_are_utc_instants_of_the_stored_shift(client, tree, volunteer) -> None:
    shift = factories.make_shift(tree.grid_a, starts_in=DAY, hours=3)
    assignment = factories.make_assignment(shift, volunteer)
    event = events(fetch(client, subscribe(client, volunteer)))[uid(assignment)]
    assert event.decoded("dtstart").astimezone(UTC) == shift.starts_at
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(hours=3)


# ----------------------------------------------------------------------------------- races


@pytest.mark.committing
def test_rotations_at_once_leave_exactly_one_working_url(app) -> None:
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        area = city
        for level in (AreaLevel.DISTRICT, AreaLevel.SUBDISTRICT, AreaLevel.COMMUNITY):
            area = factories.make_area(level, area)
        grid = factories.make_area(AreaLevel.GRID, area, boundary=factories.square(109.84, 40.65))
        volunteer = factories.make_volunteer(grid)
        headers = [as_(volunteer) for _ in range(6)]
        volunteer_id = volunteer.id
        db.session.commit()
    barrier = races.barrier(len(headers))
    urls: list[str | None] = [None] * len(headers)

    def rotate(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(FEED, headers=headers[index])
        assert response.status_code == 201, response.get_data(as_text=True)
        urls[index] = "/" + response.get_json()["url"].split("/", 3)[3]

    races.run_threads([lambda index=index: rotate(index) for index in range(len(headers))])

    client = app.test_client()
    assert None not in urls
    assert sorted(client.get(url).status_code for url in urls) == [200] + [404] * 5
    with app.app_context():
        live = db.session.scalar(
            sa.select(sa.func.count()).select_from(CalendarFeed).where(
                CalendarFeed.volunteer_id == volunteer_id, CalendarFeed.revoked_at.is_(None)
            )
        )
        assert live == 1
        db.session.remove()
