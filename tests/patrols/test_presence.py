"""Check-in, check-out, presence review, served minutes, automatic close and no-shows through the API."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import current_app

from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from core.geo import distance_to_boundary_m
from core.idempotency import IdempotencyRecord
from patrols import signals
from patrols.models import Patrol
from patrols.presence.tasks import close_forgotten_check_outs, mark_no_shows
from shifts.models import Assignment, Shift
from tests import factories
from tests.problems import EN, assert_problem
from tests.signal_events import Events, recording

API = "/api/v1"
# grid_a is the 0.01° square from (109.84, 40.65); its middle:
INSIDE = (40.655, 109.845)
METRES_PER_DEGREE_LON = 111_320 * math.cos(math.radians(40.655))
SIGNAL_NAMES = ("checked_in", "checked_out", "shift_served", "absent", "presence_reviewed")


@pytest.fixture
def events() -> Iterator[Events]:
    with recording(signals, SIGNAL_NAMES) as recorded:
        yield recorded


def as_(volunteer_or_user: Any, **extra: str) -> dict[str, str]:
    user = getattr(volunteer_or_user, "user", volunteer_or_user)
    return {**factories.headers_for(user), **EN, **extra}


def event(
    device_time: datetime | None = None,
    *,
    at: tuple[float, float] = INSIDE,
    accuracy_m: float = 10,
    client_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "client_id": client_id or str(uuid.uuid4()),
        "lat": at[0],
        "lon": at[1],
        "accuracy_m": accuracy_m,
        "device_time": (device_time or utcnow()).isoformat(),
        **extra,
    }


def check_in(client: Any, volunteer: Any, assignment: Any, body: dict[str, Any], **headers: str) -> Any:
    return client.post(
        f"{API}/assignments/{assignment.id}/check-in", json=body, headers=as_(volunteer, **headers)
    )


def check_out(client: Any, volunteer: Any, assignment: Any, body: dict[str, Any], **headers: str) -> Any:
    return client.post(
        f"{API}/assignments/{assignment.id}/check-out", json=body, headers=as_(volunteer, **headers)
    )


def on_shift(grid: Any, *, started_ago: timedelta = timedelta(minutes=10), hours: float = 2, **kwargs: Any):
    """A shift in ``grid`` that began ``started_ago``, and a volunteer with a primary place on it."""
    shift = factories.make_shift(grid, starts_in=-started_ago, hours=hours, **kwargs)
    volunteer = factories.make_volunteer(grid)
    return shift, volunteer, factories.make_assignment(shift, volunteer)


def patrols_of(assignment: Any) -> list[Patrol]:
    return list(db.session.scalars(sa.select(Patrol).where(Patrol.assignment_id == assignment.id)))


# --- check-in: geofence and flags ----------------------------------------------------------------


def test_check_in_inside_the_grid_is_verified_and_records_lateness(client, tree, events) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a)
    body = event(shift.starts_at + timedelta(minutes=5, seconds=30))

    response = check_in(client, volunteer, assignment, body)

    assert response.status_code == 200, response.get_json()
    patrol = response.get_json()
    assert patrol["presence_status"] == "verified" and patrol["counts"] is True
    assert patrol["late_minutes"] == 5
    assert patrol["check_in"]["client_id"] == body["client_id"]
    assert patrol["check_in"]["flags"] == []
    assert patrol["check_in"]["device_time"].endswith("+00:00")  # instants are shown in UTC
    assert patrol["check_in"]["received_at"] is not None
    assert patrol["check_out"] is None and patrol["served_minutes"] is None
    assert events.named("checked_in") == [
        {
            "patrol_id": patrol["id"],
            "assignment_id": assignment.id,
            "shift_id": shift.id,
            "volunteer_id": volunteer.id,
            "presence_status": "verified",
            "late_minutes": 5,
        }
    ]


def test_the_same_client_id_is_a_replay_and_another_is_refused(client, tree, events) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    body = event()
    first = check_in(client, volunteer, assignment, body)

    again = check_in(client, volunteer, assignment, body)
    other = check_in(client, volunteer, assignment, event())

    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert_problem(other, 409, "already_checked_in")
    assert len(events.named("checked_in")) == 1
    [patrol] = patrols_of(assignment)
    assert patrol.check_in_client_id == body["client_id"]


def test_a_client_id_used_for_another_event_is_refused(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    body = event()
    assert check_in(client, volunteer, assignment, body).status_code == 200
    assert_problem(check_out(client, volunteer, assignment, body), 409, "client_id_reused")
    other_shift = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-5))
    other = factories.make_assignment(other_shift, volunteer)
    assert_problem(check_in(client, volunteer, other, body), 409, "client_id_reused")
    assert patrols_of(other) == []


def metres_east_of_grid(metres: float) -> tuple[float, float]:
    return (40.655, 109.85 + metres / METRES_PER_DEGREE_LON)


@pytest.mark.parametrize(
    ("metres_outside", "accuracy_m", "status", "flags"),
    [
        (50, 80, "verified", []),  # within the reported accuracy of the edge
        (50, 30, "needs_review", ["outside_grid"]),
        (150, 500, "needs_review", ["poor_accuracy", "outside_grid"]),  # allowance capped at 100 m
        (0, 150, "needs_review", ["poor_accuracy"]),
    ],
)
def test_the_geofence_allows_for_accuracy_but_only_so_far(
    client, tree, metres_outside, accuracy_m, status, flags
) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    at = metres_east_of_grid(metres_outside) if metres_outside else INSIDE

    response = check_in(client, volunteer, assignment, event(at=at, accuracy_m=accuracy_m))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["presence_status"] == status
    assert response.get_json()["check_in"]["flags"] == flags


def test_mock_location_and_odd_clocks_need_review_but_are_kept(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    mocked = check_in(client, volunteer, assignment, event(mock_location=True))
    assert mocked.get_json()["check_in"]["flags"] == ["mock_location"]
    assert mocked.get_json()["counts"] is False

    _shift2, volunteer2, assignment2 = on_shift(tree.grid_a)
    ahead = check_in(client, volunteer2, assignment2, event(utcnow() + timedelta(minutes=10)))
    assert ahead.status_code == 200
    assert ahead.get_json()["check_in"]["flags"] == ["device_time_future"]
    # Judged by receipt time, since the device's clock runs ahead: 10 minutes late.
    assert ahead.get_json()["late_minutes"] in (10, 11)

    old, volunteer3, assignment3 = on_shift(tree.grid_a, started_ago=timedelta(hours=100))
    synced = check_in(client, volunteer3, assignment3, event(old.starts_at + timedelta(minutes=1)))
    assert synced.status_code == 200, synced.get_json()
    assert synced.get_json()["check_in"]["flags"] == ["clock_skew"]
    assert synced.get_json()["late_minutes"] == 1


def test_an_offline_check_in_delivered_hours_later_is_verified(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(hours=5), hours=2)

    response = check_in(client, volunteer, assignment, event(shift.starts_at - timedelta(minutes=3)))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["presence_status"] == "verified"
    assert response.get_json()["late_minutes"] == 0


# --- check-in: refusals --------------------------------------------------------------------------


def test_check_in_only_inside_its_window(client, tree) -> None:
    soon = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=20))
    later = factories.make_shift(tree.grid_a, starts_in=timedelta(hours=3))
    volunteer = factories.make_volunteer(tree.grid_a)
    early = check_in(client, volunteer, factories.make_assignment(later, volunteer), event())
    assert_problem(early, 409, "outside_check_in_window")
    on_time = check_in(client, volunteer, factories.make_assignment(soon, volunteer), event())
    assert on_time.status_code == 200 and on_time.get_json()["late_minutes"] == 0

    _ended, volunteer2, assignment2 = on_shift(tree.grid_a, started_ago=timedelta(hours=3), hours=2)
    assert_problem(check_in(client, volunteer2, assignment2, event()), 409, "outside_check_in_window")
    assert patrols_of(assignment2) == []


MICROSECOND = timedelta(microseconds=1)


def test_check_in_window_edges_are_inclusive_to_the_microsecond(client, tree) -> None:
    # Opens CHECK_IN_OPENS_MINUTES before the start: that instant is in, one microsecond
    # earlier is out. Closes at the end: that instant is in, one microsecond later is out. The
    # device's time is what counts (it is behind our receipt here, as for any offline phone).
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(minutes=40))
    opens = shift.starts_at - timedelta(minutes=current_app.config["CHECK_IN_OPENS_MINUTES"])
    too_early = check_in(client, volunteer, assignment, event(opens - MICROSECOND))
    assert_problem(too_early, 409, "outside_check_in_window")
    first = check_in(client, volunteer, assignment, event(opens))
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["late_minutes"] == 0

    ended, volunteer2, assignment2 = on_shift(tree.grid_a, started_ago=timedelta(hours=3), hours=2)
    too_late = check_in(client, volunteer2, assignment2, event(ended.ends_at + MICROSECOND))
    assert_problem(too_late, 409, "outside_check_in_window")
    last = check_in(client, volunteer2, assignment2, event(ended.ends_at))
    assert last.status_code == 200, last.get_json()
    assert last.get_json()["late_minutes"] == 120


def test_check_out_opens_with_check_in_to_the_microsecond(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(minutes=40))
    opens = shift.starts_at - timedelta(minutes=current_app.config["CHECK_IN_OPENS_MINUTES"])
    too_early = check_out(client, volunteer, assignment, event(opens - MICROSECOND))
    assert_problem(too_early, 409, "outside_check_out_window")
    assert patrols_of(assignment) == []
    assert check_out(client, volunteer, assignment, event(opens)).status_code == 200


def test_check_in_refusals_write_nothing(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    other_volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    url = f"{API}/assignments/{assignment.id}/check-in"

    assert_problem(check_in(client, other_volunteer, assignment, event()), 404, "assignment_not_found")
    assert_problem(client.post(url, json=event(), headers=as_(organiser)), 403, "forbidden")
    assert_problem(client.post(url, json=event()), 401, "unauthorized")
    assert_problem(client.post(f"{API}/assignments/999999/check-in", json=event(), headers=as_(volunteer)),
                   404, "assignment_not_found")
    for bad in (
        {"lat": 91}, {"lon": -180.5}, {"accuracy_m": -1}, {"client_id": "not-a-uuid"},
        {"device_time": "2026-03-01T19:00:00"}, {"device_time": "1970-01-01T00:00:00+00:00"},
        {"surprise": 1},
    ):
        body = assert_problem(check_in(client, volunteer, assignment, {**event(), **bad}), 422,
                              "validation_failed")
        assert set(body["errors"]) == set(bad)
    assert patrols_of(assignment) == []


def test_cancelled_shifts_and_ended_places_take_no_check_in(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a)
    shift.status = "cancelled"
    db.session.flush()
    assert_problem(check_in(client, volunteer, assignment, event()), 409, "shift_cancelled")

    _shift2, volunteer2, assignment2 = on_shift(tree.grid_a)
    assignment2.status = "withdrawn"
    db.session.flush()
    assert_problem(check_in(client, volunteer2, assignment2, event()), 409, "assignment_not_live")
    assert_problem(check_out(client, volunteer2, assignment2, event()), 409, "assignment_not_live")
    assert patrols_of(assignment) == [] and patrols_of(assignment2) == []


def test_idempotency_key_replays_and_refuses_another_body(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    body = event()
    first = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-1"})
    again = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-1"})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    reused = check_in(client, volunteer, assignment, event(), **{"Idempotency-Key": "k-1"})
    assert_problem(reused, 409, "idempotency_key_reused")


# The check-in records its key after the view, with the answer (core.idempotency, view_serialises):
# a retry runs the view again, and must still get the first answer and change nothing.


def test_a_retried_check_in_gets_its_first_answer_even_after_the_patrol_moved_on(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    body = event()
    first = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-1"})
    assert check_out(client, volunteer, assignment, event()).status_code == 200

    again = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-1"})

    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    assert again.get_json()["check_out"] is None  # the patrol now has one; the first answer had not


def test_the_same_key_on_another_assignment_is_409_and_checks_nothing_in(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    later = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-5)), volunteer)
    assert check_in(client, volunteer, assignment, event(), **{"Idempotency-Key": "k-1"}).status_code == 200

    reused = check_in(client, volunteer, later, event(), **{"Idempotency-Key": "k-1"})

    assert_problem(reused, 409, "idempotency_key_reused")
    assert patrols_of(later) == []  # the view ran, and its check-in was rolled back with the 409


def test_a_refused_check_in_keeps_no_key_and_its_retry_runs(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(minutes=-45))
    body = event()
    early = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-1"})
    assert_problem(early, 409, "outside_check_in_window")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 0
    shift.starts_at -= timedelta(minutes=40)
    shift.ends_at -= timedelta(minutes=40)
    db.session.flush()

    retried = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-1"})

    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    [record] = db.session.scalars(sa.select(IdempotencyRecord))
    assert (record.status_code, record.response_body) == (200, retried.get_data(as_text=True))


def test_a_check_in_under_an_expired_unpurged_key_runs_and_takes_the_key(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    later = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-5)), volunteer)
    assert check_in(client, volunteer, assignment, event(), **{"Idempotency-Key": "k-1"}).status_code == 200
    [record] = db.session.scalars(sa.select(IdempotencyRecord))
    record.created_at = utcnow() - timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"], minutes=1)
    db.session.flush()

    fresh = check_in(client, volunteer, later, event(), **{"Idempotency-Key": "k-1"})

    assert fresh.status_code == 200 and "Idempotent-Replayed" not in fresh.headers
    assert len(patrols_of(later)) == 1
    [record] = db.session.scalars(sa.select(IdempotencyRecord).execution_options(populate_existing=True))
    assert record.path == f"{API}/assignments/{later.id}/check-in"


# --- check-out and served minutes ----------------------------------------------------------------


def test_served_minutes_are_clipped_to_the_shift_and_grace(client, tree, events) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(hours=3), hours=2)
    check_in(client, volunteer, assignment, event(shift.starts_at - timedelta(minutes=20)))

    response = check_out(client, volunteer, assignment, event(shift.ends_at + timedelta(minutes=45)))

    assert response.status_code == 200, response.get_json()
    patrol = response.get_json()
    assert patrol["served_minutes"] == 120 + 30  # from the start to the end plus the 30 min grace
    assert patrol["check_out"]["flags"] == [] and patrol["auto_closed"] is False
    assert events.named("checked_out") == [
        {"patrol_id": patrol["id"], "assignment_id": assignment.id, "shift_id": shift.id,
         "volunteer_id": volunteer.id, "auto_closed": False}
    ]
    assert events.named("shift_served") == [
        {"patrol_id": patrol["id"], "assignment_id": assignment.id, "shift_id": shift.id,
         "volunteer_id": volunteer.id, "served_minutes": 150}
    ]
    assert_problem(check_out(client, volunteer, assignment, event()), 409, "already_checked_out")
    assert len(events.named("shift_served")) == 1


def test_a_check_out_before_its_check_in_is_reconciled(client, tree, events) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(hours=3), hours=2)
    out_body = event(shift.ends_at - timedelta(minutes=10))

    early = check_out(client, volunteer, assignment, out_body)
    assert early.status_code == 200, early.get_json()
    assert early.get_json()["presence_status"] is None and early.get_json()["served_minutes"] is None
    assert early.get_json()["check_in"] is None

    late = check_in(client, volunteer, assignment, event(shift.starts_at + timedelta(minutes=7)))
    assert late.get_json()["served_minutes"] == 120 - 10 - 7
    assert late.get_json()["late_minutes"] == 7
    assert check_out(client, volunteer, assignment, out_body).get_json()["served_minutes"] == 103
    assert [e["served_minutes"] for e in events.named("shift_served")] == [103]
    assert len(patrols_of(assignment)) == 1


def test_a_flagged_check_out_sends_presence_to_review(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(hours=3), hours=2)
    check_in(client, volunteer, assignment, event(shift.starts_at))
    far = metres_east_of_grid(5000)
    response = check_out(client, volunteer, assignment, event(shift.ends_at, at=far))
    assert response.get_json()["presence_status"] == "needs_review"
    assert response.get_json()["check_out"]["flags"] == ["outside_grid"]
    assert response.get_json()["served_minutes"] is None


def test_a_flagged_check_out_before_its_check_in_sends_presence_to_review(client, tree, events) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(hours=3), hours=2)
    far = metres_east_of_grid(5000)
    early = check_out(client, volunteer, assignment, event(shift.ends_at, at=far))
    assert early.get_json()["presence_status"] is None

    late = check_in(client, volunteer, assignment, event(shift.starts_at))

    assert late.get_json()["presence_status"] == "needs_review"
    assert late.get_json()["check_in"]["flags"] == [] and late.get_json()["served_minutes"] is None
    assert events.named("shift_served") == []
    [patrol] = patrols_of(assignment)
    assert patrol.presence_status == "needs_review"


def test_a_clean_check_out_keeps_presence_under_review(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(hours=3), hours=2)
    check_in(client, volunteer, assignment, event(shift.starts_at, mock_location=True))
    response = check_out(client, volunteer, assignment, event(shift.ends_at))
    assert response.get_json()["presence_status"] == "needs_review"
    assert response.get_json()["check_out"]["flags"] == []


def test_check_out_before_check_in_opens_is_refused(client, tree) -> None:
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(hours=2))
    volunteer = factories.make_volunteer(tree.grid_a)
    assignment = factories.make_assignment(shift, volunteer)
    assert_problem(check_out(client, volunteer, assignment, event()), 409, "outside_check_out_window")
    assert patrols_of(assignment) == []


# --- review --------------------------------------------------------------------------------------


def flagged_patrol(client: Any, grid: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    shift, volunteer, assignment = on_shift(grid, started_ago=timedelta(hours=3), hours=2)
    check_in(client, volunteer, assignment, event(shift.starts_at, mock_location=True))
    body = check_out(client, volunteer, assignment, event(shift.ends_at)).get_json()
    assert body["presence_status"] == "needs_review" and body["served_minutes"] is None
    return shift, volunteer, assignment, body


def test_approval_makes_presence_count_and_settles_served_minutes(client, tree, events) -> None:
    _shift, volunteer, assignment, patrol = flagged_patrol(client, tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    url = f"{API}/patrols/{patrol['id']}/approve"

    response = client.post(url, json={"reason": "电话确认在岗"}, headers=as_(organiser))

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["presence_status"] == "approved" and body["counts"] is True
    assert body["served_minutes"] == 120
    assert body["review"]["reviewed_by"] == organiser.id and body["review"]["reason"] == "电话确认在岗"
    assert events.named("presence_reviewed") == [
        {"patrol_id": patrol["id"], "assignment_id": assignment.id, "volunteer_id": volunteer.id,
         "presence_status": "approved", "reason": "电话确认在岗", "actor_id": organiser.id}
    ]
    assert [e["served_minutes"] for e in events.named("shift_served")] == [120]
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEntry.target_type == "patrol")) == 1
    again = client.post(url, json={}, headers=as_(organiser))
    assert_problem(again, 409, "presence_not_under_review")


def test_rejection_needs_a_reason_and_the_patrol_never_counts(client, tree, events) -> None:
    _shift, _volunteer, _assignment, patrol = flagged_patrol(client, tree.grid_a)
    staff = factories.make_user("staff", tree.district_a)
    url = f"{API}/patrols/{patrol['id']}/reject"
    assert_problem(client.post(url, json={}, headers=as_(staff)), 422, "validation_failed")

    response = client.post(url, json={"reason": "定位造假"}, headers=as_(staff))

    assert response.get_json()["presence_status"] == "rejected"
    assert response.get_json()["served_minutes"] is None
    assert events.named("shift_served") == []
    approve = client.post(f"{API}/patrols/{patrol['id']}/approve", json={}, headers=as_(staff))
    assert_problem(approve, 409, "presence_not_under_review")


def test_review_is_for_managers_in_scope_only(client, tree) -> None:
    _shift, volunteer, _assignment, patrol = flagged_patrol(client, tree.grid_a)
    elsewhere = factories.make_user("organiser", tree.community_b)
    url = f"{API}/patrols/{patrol['id']}/approve"
    assert_problem(client.post(url, json={}, headers=as_(elsewhere)), 404, "patrol_not_found")
    assert_problem(client.post(url, json={}, headers=as_(volunteer)), 403, "forbidden")
    organiser = factories.make_user("organiser", tree.community_a)
    assert_problem(client.post(f"{API}/patrols/999999/approve", json={}, headers=as_(organiser)),
                   404, "patrol_not_found")
    assert db.session.get(Patrol, patrol["id"]).presence_status == "needs_review"


def test_the_review_queue_lists_the_callers_area_page_by_page(client, tree) -> None:
    mine = [flagged_patrol(client, tree.grid_a)[3]["id"] for _ in range(2)]
    flagged_patrol(client, tree.grid_b)
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    check_in(client, volunteer, assignment, event())  # verified: not in the queue
    organiser = factories.make_user("organiser", tree.community_a)

    first = client.get(f"{API}/patrols/review?limit=1", headers=as_(organiser)).get_json()
    second = client.get(f"{API}/patrols/review?limit=1&cursor={first['next_cursor']}",
                        headers=as_(organiser)).get_json()

    assert [p["id"] for p in first["items"] + second["items"]] == mine
    assert second["next_cursor"] is None
    verified = client.get(f"{API}/patrols/review?status=verified", headers=as_(organiser)).get_json()
    assert [p["assignment_id"] for p in verified["items"]] == [assignment.id]
    assert_problem(client.get(f"{API}/patrols/review", headers=as_(volunteer)), 403, "forbidden")
    assert_problem(client.get(f"{API}/patrols/review?status=odd", headers=as_(organiser)), 422,
                   "validation_failed")


def test_a_patrol_is_seen_by_its_volunteer_and_managers_in_scope(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    url = f"{API}/assignments/{assignment.id}/patrol"
    assert_problem(client.get(url, headers=as_(volunteer)), 404, "patrol_not_found")
    check_in(client, volunteer, assignment, event())

    assert client.get(url, headers=as_(volunteer)).get_json()["presence_status"] == "verified"
    organiser = factories.make_user("organiser", tree.community_a)
    assert client.get(url, headers=as_(organiser)).status_code == 200
    assert_problem(client.get(url, headers=as_(factories.make_volunteer(tree.grid_a))), 404,
                   "assignment_not_found")
    assert_problem(client.get(url, headers=as_(factories.make_user("organiser", tree.community_b))),
                   404, "assignment_not_found")


# --- periodic tasks ------------------------------------------------------------------------------


def test_a_forgotten_check_out_is_closed_at_end_plus_grace(client, tree, events) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(hours=2, minutes=31), hours=2)
    recent, volunteer2, assignment2 = on_shift(
        tree.grid_a, started_ago=timedelta(hours=2, minutes=20), hours=2
    )
    check_in(client, volunteer, assignment, event(shift.starts_at + timedelta(minutes=10)))
    check_in(client, volunteer2, assignment2, event(recent.starts_at))

    assert close_forgotten_check_outs() == 1
    assert close_forgotten_check_outs() == 0

    patrol = client.get(f"{API}/assignments/{assignment.id}/patrol", headers=as_(volunteer)).get_json()
    assert patrol["auto_closed"] is True and patrol["check_out"]["client_id"] is None
    assert patrol["served_minutes"] == 110  # counted up to the scheduled end, not the grace
    assert [e["auto_closed"] for e in events.named("checked_out")] == [True]
    assert [e["served_minutes"] for e in events.named("shift_served")] == [110]
    assert patrols_of(assignment2)[0].auto_closed is False

    # The phone's own check-out, synced late, replaces the automatic close; minutes stay settled.
    late = check_out(client, volunteer, assignment, event(shift.ends_at - timedelta(minutes=30)))
    assert late.status_code == 200, late.get_json()
    assert late.get_json()["auto_closed"] is False and late.get_json()["served_minutes"] == 110
    assert len(events.named("shift_served")) == 1


def test_a_forgotten_check_out_is_closed_exactly_at_end_plus_grace(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, started_ago=timedelta(hours=2, minutes=40), hours=2)
    check_in(client, volunteer, assignment, event(shift.starts_at))
    due = shift.ends_at + timedelta(minutes=current_app.config["CHECK_OUT_GRACE_MINUTES"])
    assert close_forgotten_check_outs(due - MICROSECOND) == 0
    assert patrols_of(assignment)[0].auto_closed is False
    assert close_forgotten_check_outs(due) == 1
    assert patrols_of(assignment)[0].auto_closed is True


def test_no_shows_are_marked_absent_and_the_backup_takes_the_place(client, tree, events) -> None:
    shift = factories.make_shift(
        tree.grid_a, starts_in=timedelta(minutes=-16), max_headcount=2, backup_slots=1
    )
    no_show, present, backup = (factories.make_volunteer(tree.grid_a) for _ in range(3))
    missing = factories.make_assignment(shift, no_show)
    here = factories.make_assignment(shift, present)
    standby = factories.make_assignment(shift, backup, role="backup")
    check_in(client, present, here, event())
    _fresh, _volunteer2, assignment2 = on_shift(tree.grid_a, started_ago=timedelta(minutes=14))
    for placed_yesterday in (missing, here, standby, assignment2):
        placed_yesterday.updated_at = utcnow() - timedelta(days=1)
    db.session.flush()

    assert mark_no_shows() == 1
    assert mark_no_shows() == 0  # the backup promoted just now has its own 15 minutes

    assert db.session.get(Assignment, missing.id).status == "absent"
    assert db.session.get(Assignment, here.id).status == "assigned"
    promoted = db.session.get(Assignment, standby.id)
    assert (promoted.status, promoted.role) == ("assigned", "primary")
    assert db.session.get(Assignment, assignment2.id).status == "assigned"
    assert events.named("absent") == [
        {"assignment_id": missing.id, "shift_id": shift.id, "volunteer_id": no_show.id}
    ]
    stored = db.session.get(Shift, shift.id)
    db.session.refresh(stored)
    assert (stored.primary_count, stored.backup_count) == (2, 0)
    # 16 minutes on, the promoted backup and the later shift's primary are due too.
    assert mark_no_shows(utcnow() + timedelta(minutes=16)) == 2
    assert db.session.get(Assignment, standby.id).status == "absent"
    assert db.session.get(Assignment, assignment2.id).status == "absent"

    # The no-show's phone was offline: its check-in still arrives and waits for review.
    late = check_in(client, no_show, missing, event(shift.starts_at + timedelta(minutes=2)))
    assert late.status_code == 200, late.get_json()
    assert late.get_json()["presence_status"] == "needs_review"
    assert late.get_json()["check_in"]["flags"] == ["marked_absent"]


# --- rules as units ------------------------------------------------------------------------------


def test_distance_to_boundary_is_in_metres() -> None:
    square = factories.square(109.84, 40.65)
    assert distance_to_boundary_m(square, 109.845, 40.655) == 0
    assert distance_to_boundary_m(square, *reversed(metres_east_of_grid(100))) == pytest.approx(100, rel=0.01)
    north = 40.66 + 200 / 110_574
    assert distance_to_boundary_m(square, 109.845, north) == pytest.approx(200, rel=0.01)
