"""Each place's copy of its shift's times (``Assignment.shift_starts_at``/``shift_ends_at``, kept by the
database's triggers, migration 0022) equals its shift's after every path that makes a place or moves
a shift, through the HTTP API; and the schedule read by the copies keeps its edges exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from shifts import rules
from shifts.calendar import service as calendar
from shifts.filling import listeners
from shifts.models import Assignment, Shift
from tests import factories
from tests.problems import EN
from tests.shifts.test_autofill import next_monday, plan
from tests.shifts.test_autofill import request as autofill_request
from tests.shifts.test_autofill import shift_at as autofill_shift
from tests.shifts.test_autofill import volunteer as available_volunteer
from tests.shifts.test_series import series_body

API = "/api/v1"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def copies_off() -> tuple[int, list[Any]]:
    """How many places there are, and the ones whose copies differ from their shift's times."""
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Assignment))
    wrong = db.session.execute(
        sa.select(Assignment.id, Assignment.shift_starts_at, Shift.starts_at, Assignment.shift_ends_at, Shift.ends_at)
        .join(Shift, Shift.id == Assignment.shift_id)
        .where(
            sa.or_(
                Assignment.shift_starts_at.is_distinct_from(Shift.starts_at),
                Assignment.shift_ends_at.is_distinct_from(Shift.ends_at),
            )
        )
    ).all()
    return total, wrong


def assert_copies_right(at_least: int) -> None:
    total, wrong = copies_off()
    assert wrong == []
    assert total >= at_least  # the check looked at the places the test made


def as_(who: Any) -> dict[str, str]:
    return {**factories.headers_for(getattr(who, "user", who)), **EN}


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def local(days: int, hour: int) -> str:
    start = (utcnow() + days * DAY).replace(hour=hour, minute=0, second=0, microsecond=0)
    return start.isoformat()


# --- every writer ------------------------------------------------------------------------------


def test_created_shift_signup_assign_invite_accept_and_promotion(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    created = ok(client.post(
        f"{API}/shifts", headers=as_(organiser),
        json={"grid_id": tree.grid_a.id, "starts_at": local(2, 11), "ends_at": local(2, 13), "title": "巡逻",
              "max_headcount": 3, "backup_slots": 1},
    ), 201)
    shift = db.session.get(Shift, created["id"])
    signed, assigned, invited, waiting, backup = (factories.make_volunteer(tree.grid_a) for _ in range(5))
    held = ok(client.post(f"{API}/shifts/{shift.id}/signup", json={}, headers=as_(signed)), 201)
    ok(client.post(f"{API}/shifts/{shift.id}/assign", json={"volunteer_id": assigned.id, "role": "primary"},
                   headers=as_(organiser)), 201)
    invitation = ok(client.post(f"{API}/shifts/{shift.id}/invite", json={"volunteer_id": invited.id, "role": "primary"},
                                headers=as_(organiser)), 201)
    assert ok(client.post(f"{API}/assignments/{invitation['id']}/accept", headers=as_(invited)))["status"] == "assigned"
    ok(client.post(f"{API}/shifts/{shift.id}/signup", json={"role": "backup"}, headers=as_(backup)), 201)
    assert ok(client.post(f"{API}/shifts/{shift.id}/signup", json={}, headers=as_(waiting)), 201)["status"] == "waitlisted"
    ok(client.post(f"{API}/assignments/{held['id']}/withdraw", json={}, headers=as_(signed)))  # the backup moves up

    assert_copies_right(at_least=5)


def test_moving_a_shift_moves_every_place_on_it_live_or_ended(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    shift = factories.make_shift(tree.grid_a, starts_in=DAY, max_headcount=3)
    other = factories.make_shift(tree.grid_a_east, starts_in=DAY, max_headcount=3)
    live, ended = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    factories.make_assignment(shift, live)
    gone = factories.make_assignment(shift, ended)
    gone.status, gone.ended_at = "withdrawn", utcnow()
    shift.primary_count -= 1
    untouched = factories.make_assignment(other, ended)
    db.session.flush()
    start = shift.starts_at + 3 * HOUR

    ok(client.patch(f"{API}/shifts/{shift.id}", json={"starts_at": start.isoformat()}, headers=as_(organiser)))
    assert_copies_right(at_least=3)
    ok(client.patch(f"{API}/shifts/{shift.id}", json={"ends_at": (start + 5 * HOUR).isoformat()}, headers=as_(organiser)))
    assert_copies_right(at_least=3)

    copies = db.session.execute(
        sa.select(Assignment.shift_starts_at, Assignment.shift_ends_at).where(Assignment.shift_id == shift.id)
    ).all()
    assert copies == [(start, start + 5 * HOUR)] * 2  # the ended place too: its history reads by them
    assert db.session.execute(
        sa.select(Assignment.shift_starts_at).where(Assignment.id == untouched.id)
    ).scalar_one() == other.starts_at


def test_series_expansion_and_a_series_edit_that_moves_its_occurrences(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    series = ok(client.post(f"{API}/shift-series", json=series_body(tree.grid_a), headers=as_(organiser)), 201)
    occurrences = db.session.scalars(
        sa.select(Shift).where(Shift.series_id == series["id"]).order_by(Shift.starts_at).limit(3)
    ).all()
    volunteers = [factories.make_volunteer(tree.grid_a) for _ in occurrences]
    for occurrence, volunteer in zip(occurrences, volunteers, strict=True):
        ok(client.post(f"{API}/shifts/{occurrence.id}/assign", json={"volunteer_id": volunteer.id, "role": "primary"},
                       headers=as_(organiser)), 201)
    assert_copies_right(at_least=3)

    ok(client.patch(f"{API}/shift-series/{series['id']}", json={"scope": "all", "start_time": "20:00", "end_time": "22:30"},
                    headers=as_(organiser)))

    assert_copies_right(at_least=3)
    db.session.expire_all()
    moved = db.session.scalars(sa.select(Assignment).where(Assignment.volunteer_id.in_([v.id for v in volunteers]))).all()
    assert {(a.shift_ends_at - a.shift_starts_at) for a in moved} == {timedelta(hours=2, minutes=30)}


def test_an_approved_swap_gives_the_new_place_its_shifts_times(client, tree) -> None:
    ann, bo = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a_east)
    organiser = factories.make_user("organiser", tree.community_a)
    place = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=DAY, hours=3.5), ann)
    swap = ok(client.post(f"{API}/swap-requests", json={"assignment_id": place.id, "to_volunteer_id": bo.id},
                          headers=as_(ann)), 201)
    ok(client.post(f"{API}/swap-requests/{swap['id']}/accept", json={}, headers=as_(bo)))
    ok(client.post(f"{API}/swap-requests/{swap['id']}/approve", json={}, headers=as_(organiser)))

    assert_copies_right(at_least=2)
    replacement = db.session.execute(
        sa.select(Assignment.shift_starts_at, Assignment.shift_ends_at).where(Assignment.volunteer_id == bo.id)
    ).one()
    assert replacement == (place.shift.starts_at, place.shift.ends_at)


def test_an_applied_autofill_plan_gives_its_places_their_shifts_times(client, tree) -> None:
    staff = factories.make_user("staff", tree.district_a)
    monday = next_monday()
    for day in range(3):
        autofill_shift(tree.grid_a, monday + timedelta(days=day), "19:00", 2 + day / 2, places=2)
    for _ in range(3):
        available_volunteer(tree.grid_a)
    dry = plan(client, staff, autofill_request(tree.community_a, monday))
    applied = plan(client, staff, autofill_request(tree.community_a, monday, apply=True, plan_token=dry["plan_token"]))

    assert applied["summary"]["assigned"] == 6
    assert_copies_right(at_least=6)


# --- the schedule read at its edges ------------------------------------------------------------


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The schedule read's clock, held at one instant (a whole second ahead, microseconds apart below)."""
    instant = (utcnow() + DAY).replace(microsecond=0)
    monkeypatch.setattr("shifts.schedules.mine.utcnow", lambda: instant)
    return instant


def placed(grid: Any, volunteer: Any, starts_at: datetime, ends_at: datetime) -> Assignment:
    shift = factories.make_shift(grid)
    shift.starts_at, shift.ends_at = starts_at, ends_at  # a move: the trigger carries it to the place
    db.session.flush()
    return factories.make_assignment(shift, volunteer)


def test_a_shift_ending_at_this_very_instant_is_past_and_one_a_microsecond_later_upcoming(client, tree, now) -> None:
    me = factories.make_volunteer(tree.grid_a)
    tick = timedelta(microseconds=1)
    ended_now = placed(tree.grid_a, me, now - 2 * HOUR, now)
    ends_next = placed(tree.grid_a_east, me, now - 2 * HOUR + tick, now + tick)
    starts_now = placed(tree.grid_a2, me, now, now + 2 * HOUR)
    ended_before = placed(tree.grid_b, me, now - 5 * HOUR, now - 3 * HOUR)

    upcoming = ok(client.get(f"{API}/me/shifts?when=upcoming", headers=as_(me)))
    past = ok(client.get(f"{API}/me/shifts?when=past", headers=as_(me)))

    assert [item["id"] for item in upcoming["items"]] == [ends_next.id, starts_now.id]
    assert [item["id"] for item in past["items"]] == [ended_now.id, ended_before.id]


def test_pages_of_places_starting_at_the_same_instant_go_by_id_both_ways(client, tree, now) -> None:
    me = factories.make_volunteer(tree.grid_a)
    later, earlier = now + DAY, now - DAY
    ahead = [placed(grid, me, later, later + HOUR) for grid in (tree.grid_a, tree.grid_a_east, tree.grid_a2)]
    behind = [placed(grid, me, earlier, earlier + HOUR) for grid in (tree.grid_a, tree.grid_a_east, tree.grid_a2)]

    def walk(when: str) -> list[int]:
        seen, cursor = [], None
        while True:
            query = {"when": when, "limit": 1, **({"cursor": cursor} if cursor else {})}
            body = ok(client.get(f"{API}/me/shifts", query_string=query, headers=as_(me)))
            seen += [item["id"] for item in body["items"]]
            if (cursor := body["next_cursor"]) is None:
                return seen

    assert walk("upcoming") == sorted(place.id for place in ahead)
    assert walk("past") == sorted((place.id for place in behind), reverse=True)


def test_the_schedule_follows_a_move_of_the_shift(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    me = factories.make_volunteer(tree.grid_a)
    first = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=DAY), me)
    second = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=2 * DAY), me)
    assert [i["id"] for i in ok(client.get(f"{API}/me/shifts", headers=as_(me)))["items"]] == [first.id, second.id]

    moved_to = (utcnow() + 12 * HOUR).replace(second=0, microsecond=0).astimezone(UTC)
    ok(client.patch(f"{API}/shifts/{second.shift_id}", json={"starts_at": moved_to.isoformat()}, headers=as_(organiser)))

    items = ok(client.get(f"{API}/me/shifts", headers=as_(me)))["items"]
    assert [item["id"] for item in items] == [second.id, first.id]
    assert items[0]["shift"]["starts_at"] == moved_to.isoformat()


# --- the other reads by the copies, at their edges ---------------------------------------------

TICK = timedelta(microseconds=1)


def test_clashes_are_half_open_the_rest_included_and_follow_a_move(app, tree) -> None:
    """A shift starting exactly at another's end does not overlap it; one starting exactly ``rest``
    after it is fine; a microsecond less breaks the rest, a microsecond of overlap overlaps."""
    me = factories.make_volunteer(tree.grid_a)
    start = (utcnow() + 2 * DAY).replace(microsecond=0)
    held = placed(tree.grid_a, me, start, start + 2 * HOUR)
    end, rest = held.shift.ends_at, timedelta(minutes=app.config["SHIFT_MIN_REST_MINUTES"])
    assert rest > timedelta(0)

    def clash(starts_at: datetime, ends_at: datetime, **kwargs: Any) -> list[tuple[int, bool]]:
        return [(shift.id, overlaps) for shift, overlaps in rules.clashing_shifts(me.id, starts_at, ends_at, **kwargs)]

    assert clash(end + rest, end + rest + HOUR) == []
    assert clash(end + rest - TICK, end + 2 * HOUR) == [(held.shift_id, False)]
    assert clash(end, end + HOUR) == [(held.shift_id, False)]
    assert clash(end - TICK, end + HOUR) == [(held.shift_id, True)]
    assert clash(start - 2 * HOUR, start - rest) == []
    assert clash(start - 2 * HOUR, start - rest + TICK) == [(held.shift_id, False)]
    assert clash(start - 2 * HOUR, start) == [(held.shift_id, False)]
    assert clash(start - 2 * HOUR, start + TICK) == [(held.shift_id, True)]
    assert clash(start - HOUR, end + HOUR, ignore_shift_ids=[held.shift_id]) == []

    app.config["SHIFT_MIN_REST_MINUTES"] = 0
    try:
        assert clash(end, end + HOUR) == [] and clash(start - HOUR, start) == []
        assert clash(end - TICK, end + HOUR) == [(held.shift_id, True)]
    finally:
        app.config["SHIFT_MIN_REST_MINUTES"] = int(rest.total_seconds() // 60)

    held.shift.starts_at, held.shift.ends_at = start + DAY, start + DAY + 2 * HOUR  # a move, flushed by the read
    assert clash(start, start + 2 * HOUR) == []
    assert clash(start + DAY + HOUR, start + DAY + 3 * HOUR) == [(held.shift_id, True)]


def test_clashes_count_only_assigned_places_on_scheduled_shifts_in_time_order(tree) -> None:
    me = factories.make_volunteer(tree.grid_a)
    start = (utcnow() + 2 * DAY).replace(microsecond=0)
    later = placed(tree.grid_a, me, start + HOUR, start + 3 * HOUR)
    first = placed(tree.grid_a_east, me, start, start + HOUR)
    waiting = placed(tree.grid_a2, me, start, start + 2 * HOUR)
    waiting.status = "waitlisted"
    called_off = placed(tree.grid_b, me, start, start + 2 * HOUR)
    called_off.shift.status = "cancelled"
    db.session.flush()

    found = rules.clashing_shifts(me.id, start + HOUR, start + 2 * HOUR)
    assert [(shift.id, overlaps) for shift, overlaps in found] == [(first.shift_id, False), (later.shift_id, True)]


def test_the_calendar_feed_holds_a_place_ended_exactly_its_days_ago_and_one_starting_exactly_at_the_horizon(app, tree) -> None:
    me = factories.make_volunteer(tree.grid_a)
    now = (utcnow() + DAY).replace(microsecond=0)
    oldest = now - timedelta(days=calendar.PAST_DAYS)
    horizon = now + timedelta(days=app.config["SERIES_HORIZON_DAYS"])
    kept_last = placed(tree.grid_a, me, oldest - 2 * HOUR, oldest)
    placed(tree.grid_a_east, me, oldest - 2 * HOUR, oldest - TICK)
    at_horizon = placed(tree.grid_a, me, horizon, horizon + HOUR)
    placed(tree.grid_a_east, me, horizon + TICK, horizon + HOUR)
    same_start = [placed(grid, me, now, now + HOUR) for grid in (tree.grid_a2, tree.grid_b)]

    shown = [place.id for place in calendar.feed_assignments(me, now)]
    assert shown == [kept_last.id, *sorted(place.id for place in same_start), at_horizon.id]


def test_a_suspension_releases_the_places_starting_after_now_not_one_starting_this_instant(
    tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = factories.make_volunteer(tree.grid_a)
    now = (utcnow() + DAY).replace(microsecond=0)
    monkeypatch.setattr("shifts.filling.listeners.utcnow", lambda: now)
    starting_now = placed(tree.grid_a, me, now, now + HOUR)
    next_tick = placed(tree.grid_a_east, me, now + TICK, now + HOUR)
    later = placed(tree.grid_a2, me, now + DAY, now + DAY + HOUR)
    waiting = placed(tree.grid_b, me, now + DAY, now + DAY + HOUR)
    waiting.status = "waitlisted"
    called_off = placed(tree.grid_a, me, now + 2 * DAY, now + 2 * DAY + HOUR)
    called_off.shift.status = "cancelled"
    db.session.flush()

    assert listeners.release_future_places(me.id, None, listeners.LEFT_BECAUSE["suspended"]) == 3

    db.session.expire_all()
    statuses = {place.id: db.session.get(Assignment, place.id).status for place in
                (starting_now, next_tick, later, waiting, called_off)}
    assert statuses == {starting_now.id: "assigned", next_tick.id: "removed", later.id: "removed",
                        waiting.id: "removed", called_off.id: "assigned"}
