"""SOS through the API: raising (located, alerted), positions, acknowledging, cancelling, closing,
the responders' views and the location access log, refusals, and the escalation run at exact instants."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from core.geo import EARTH_RADIUS_M
from grids.models import AreaLevel
from patrols.privacy.service import SOS_READ
from patrols.service import patrol_for
from patrols.sos import signals as sos_signals
from patrols.sos.escalation import escalate_due, escalate_one
from patrols.sos.models import SosAlert, SosEvent, SosPosition, SosRecipient
from patrols.sos.service import Place, locate, volunteers_on_duty_near
from tests import factories
from tests.problems import assert_problem
from tests.signal_events import recording

API = "/api/v1"
LAT, LON = 40.653, 109.845  # inside tree.grid_a (109.84..109.85, 40.65..40.66)
SIGNALS = ("sos_alerted", "sos_acknowledged", "sos_ended")


@pytest.fixture
def sent():
    with recording(sos_signals, SIGNALS) as events:
        yield events


@pytest.fixture
def volunteer(tree) -> Any:
    return factories.make_volunteer(tree.grid_a, real_name="李四")


@pytest.fixture
def organiser(tree) -> Any:
    return factories.make_user("organiser", tree.community_a)


def north_of(lat: float, metres: float) -> float:
    """The latitude ``metres`` due north along the meridian (the great circle is exactly this)."""
    return lat + math.degrees(metres / EARTH_RADIUS_M)


def sos_body(**extra: Any) -> dict[str, Any]:
    return {
        "client_id": str(uuid.uuid4()), "lat": LAT, "lon": LON, "accuracy_m": 9.0,
        "device_time": (utcnow() - timedelta(seconds=20)).isoformat(), **extra,
    }


def raise_sos(client, volunteer, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return client.post(f"{API}/me/sos", json=body or sos_body(), headers=factories.headers_for(volunteer.user, **headers))


def raised(client, volunteer, **extra: Any) -> dict[str, Any]:
    response = raise_sos(client, volunteer, sos_body(**extra))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def on_duty(client, tree, grid=None, *, lat: float = LAT, lon: float = LON, real_name: str = "王五") -> Any:
    """A volunteer checked in (through the API) at (lat, lon) to a shift under way on ``grid``."""
    grid = grid or tree.grid_a
    person = factories.make_volunteer(grid, real_name=real_name)
    shift = factories.make_shift(grid, starts_in=timedelta(minutes=-20), hours=2)
    assignment = factories.make_assignment(shift, person)
    response = client.post(
        f"{API}/assignments/{assignment.id}/check-in",
        json={"client_id": str(uuid.uuid4()), "lat": lat, "lon": lon, "accuracy_m": 10, "device_time": utcnow().isoformat()},
        headers=factories.headers_for(person.user),
    )
    assert response.status_code == 200, response.get_json()
    person.assignment_id = assignment.id
    return person


def recipients(sos_id: int) -> dict[int, str]:
    rows = db.session.execute(sa.select(SosRecipient.user_id, SosRecipient.reason).where(SosRecipient.sos_id == sos_id))
    return dict(rows.tuples().all())


def events_of(sos_id: int) -> list[str]:
    return list(db.session.scalars(sa.select(SosEvent.kind).where(SosEvent.sos_id == sos_id).order_by(SosEvent.id)))


def sos_row(sos_id: int) -> SosAlert:
    return db.session.get_one(SosAlert, sos_id, populate_existing=True)


# --- raising -------------------------------------------------------------------------------------


def test_raising_alerts_the_grids_organisers_and_keeps_both_times(client, tree, volunteer, organiser, sent) -> None:
    before = utcnow()
    body = sos_body(note="有人跟踪我", mock_location=True)
    response = raise_sos(client, volunteer, body)
    assert response.status_code == 201
    sos = response.get_json()
    assert sos["status"] == "open" and sos["level"] == "community"
    assert sos["located_by"] == "position" and sos["grid_id"] == tree.grid_a.id
    assert sos["note"] == "有人跟踪我" and sos["acknowledgements"] == []
    assert [event["kind"] for event in sos["events"]] == ["raised", "alerted"]
    row = sos_row(sos["id"])
    assert row.device_at.isoformat() == sos["device_time"].replace("Z", "+00:00")
    assert row.received_at >= before and row.area_path == tree.grid_a.path
    assert row.escalate_at == row.received_at + timedelta(minutes=3)
    assert recipients(sos["id"]) == {organiser.id: "organiser"}
    [alerted] = sent.named("sos_alerted")
    assert alerted["user_ids"] == [organiser.id] and alerted["level"] == "community"
    assert alerted["lat"] == LAT and alerted["note"] == "有人跟踪我"
    raised_event = db.session.scalar(sa.select(SosEvent).where(SosEvent.sos_id == sos["id"], SosEvent.kind == "raised"))
    assert raised_event.data["mock_location"] is True
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "sos.raised")) == 1


def test_the_same_client_id_again_is_the_same_sos_and_nothing_new(client, volunteer, organiser, sent) -> None:
    body = sos_body()
    first = raise_sos(client, volunteer, body)
    again = raise_sos(client, volunteer, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SosAlert)) == 1
    assert len(sent.named("sos_alerted")) == 1
    assert events_of(first.get_json()["id"]) == ["raised", "alerted"]


def test_an_idempotency_key_replays_the_first_answer(client, volunteer) -> None:
    body = sos_body()
    first = raise_sos(client, volunteer, body, **{"Idempotency-Key": "sos-1"})
    again = raise_sos(client, volunteer, body, **{"Idempotency-Key": "sos-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()


def test_a_second_live_sos_is_refused_and_one_after_the_end_is_fine(client, volunteer) -> None:
    sos = raised(client, volunteer)
    assert_problem(raise_sos(client, volunteer), 409, "sos_already_live")
    cancel = client.post(f"{API}/me/sos/{sos['id']}/cancel", json={}, headers=factories.headers_for(volunteer.user))
    assert cancel.status_code == 200 and cancel.get_json()["status"] == "cancelled"
    assert raise_sos(client, volunteer).status_code == 201


def test_another_volunteers_client_id_is_refused(client, tree, volunteer) -> None:
    body = sos_body()
    assert raise_sos(client, volunteer, body).status_code == 201
    other = factories.make_volunteer(tree.grid_a)
    assert_problem(raise_sos(client, other, body), 409, "client_id_taken")


@pytest.mark.parametrize("status", ["pending", "suspended", "retired"])
def test_only_active_volunteers_raise_an_sos(client, tree, status) -> None:
    person = factories.make_volunteer(tree.grid_a, status=status)
    assert_problem(raise_sos(client, person), 403, "volunteer_not_active")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SosAlert)) == 0


@pytest.mark.parametrize("role", ["organiser", "staff", "admin"])
def test_other_roles_may_not_raise_one(client, tree, role) -> None:
    user = factories.make_user(role, tree.community_a)
    response = client.post(f"{API}/me/sos", json=sos_body(), headers=factories.headers_for(user))
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize(
    "change",
    [
        {"lat": 91}, {"lon": -181}, {"accuracy_m": -1}, {"device_time": "yesterday"},
        {"device_time": "1999-12-31T23:00:00+08:00"}, {"client_id": "not-a-uuid"}, {"note": "x" * 201},
        {"mock_location": "yes"}, {"lat": None}, {"extra": 1},
    ],
)
def test_bad_input_is_422_and_nothing_is_written(client, volunteer, change) -> None:
    response = raise_sos(client, volunteer, sos_body(**change))
    assert_problem(response, 422, "validation_failed")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SosAlert)) == 0


# --- where it is located -------------------------------------------------------------------------


def test_on_duty_it_is_the_shifts_grid_wherever_the_position(client, tree, organiser) -> None:
    person = on_duty(client, tree, tree.grid_b, lat=40.625, lon=109.805)
    sos = raised(client, person)  # the position is in grid_a, the shift is on grid_b
    assert sos["located_by"] == "shift" and sos["grid_id"] == tree.grid_b.id
    assert sos_row(sos["id"]).assignment_id == person.assignment_id
    assert organiser.id not in recipients(sos["id"])


def test_an_assigned_shift_under_way_locates_it_before_check_in(client, tree, volunteer) -> None:
    shift = factories.make_shift(tree.grid_b, starts_in=timedelta(minutes=-5), hours=1)
    assignment = factories.make_assignment(shift, volunteer)
    sos = raised(client, volunteer)
    assert (sos["located_by"], sos["grid_id"]) == ("shift", tree.grid_b.id)
    assert sos_row(sos["id"]).assignment_id == assignment.id


def test_a_shift_not_yet_under_way_does_not_count(client, tree, volunteer) -> None:
    shift = factories.make_shift(tree.grid_b, starts_in=timedelta(minutes=10), hours=1)
    factories.make_assignment(shift, volunteer)
    sos = raised(client, volunteer, lat=40.665, lon=109.845)  # in grid_a2
    assert (sos["located_by"], sos["grid_id"]) == ("position", tree.grid_a2.id)


def test_off_duty_outside_every_grid_it_is_the_home_grid(client, tree, volunteer) -> None:
    sos = raised(client, volunteer, lat=31.2, lon=121.5)
    assert (sos["located_by"], sos["grid_id"]) == ("home_grid", tree.grid_a.id)


def test_a_grid_of_another_city_is_not_taken(client, tree, volunteer) -> None:
    _c, _d, _s, _k, far_grid = factories.make_branch(lon=110.5, lat=41.5)
    sos = raised(client, volunteer, lat=41.505, lon=110.505)
    assert (sos["located_by"], sos["grid_id"]) == ("home_grid", tree.grid_a.id)
    assert far_grid.id != sos["grid_id"]


def placed_at(grid: Any, volunteer: Any, starts_at: Any, ends_at: Any) -> Any:
    """A place of ``volunteer`` on a shift of ``grid`` at exactly these instants."""
    shift = factories.make_shift(grid)
    shift.starts_at, shift.ends_at = starts_at, ends_at  # a move: the trigger carries it to the place
    db.session.flush()
    return factories.make_assignment(shift, volunteer)


def checked_in_only(assignment: Any) -> Any:
    """The place's patrol, checked in and never out (the task has not closed it)."""
    patrol = patrol_for(assignment)
    patrol.check_in_client_id, patrol.check_in_lat, patrol.check_in_lon = str(uuid.uuid4()), LAT, LON
    db.session.flush()
    return patrol


def test_on_duty_at_the_edges_a_shift_starting_this_instant_counts_one_ending_now_not(tree, volunteer) -> None:
    now = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    ending = placed_at(tree.grid_b, volunteer, now - timedelta(hours=2), now)
    starting = placed_at(tree.grid_a2, volunteer, now, now + timedelta(hours=2))
    assert locate(volunteer, 31.2, 121.5, now) == Place(tree.grid_a2, "shift", starting.id)
    assert locate(volunteer, 31.2, 121.5, now - timedelta(microseconds=1)) == Place(tree.grid_b, "shift", ending.id)
    assert locate(volunteer, 31.2, 121.5, now + timedelta(hours=2)).located_by == "home_grid"

    placed_at(tree.grid_a, volunteer, now - timedelta(minutes=30), now + timedelta(hours=1))  # under way, started earlier
    same_start = placed_at(tree.grid_a_east, volunteer, now, now + timedelta(hours=1))  # the latest start; a tie by id
    assert locate(volunteer, 31.2, 121.5, now).assignment_id == max(starting.id, same_start.id)


def test_a_checked_in_place_comes_before_one_under_way_even_long_ended(tree, volunteer) -> None:
    now = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    under_way = placed_at(tree.grid_a2, volunteer, now - timedelta(minutes=5), now + timedelta(hours=2))
    assert locate(volunteer, LAT, LON, now).assignment_id == under_way.id
    stale = placed_at(tree.grid_b, volunteer, now - timedelta(days=3), now - timedelta(days=3) + timedelta(hours=2))
    checked_in_only(stale)
    older_stale = placed_at(tree.grid_a_east, volunteer, now - timedelta(days=4), now - timedelta(days=4) + timedelta(hours=2))
    checked_in_only(older_stale)
    assert locate(volunteer, LAT, LON, now) == Place(tree.grid_b, "shift", stale.id)

    for place in (stale, older_stale):  # the task closed them: no longer on duty
        patrol_for(place).auto_closed = True
    db.session.flush()
    assert locate(volunteer, LAT, LON, now).assignment_id == under_way.id


def test_the_volunteers_on_duty_near_at_the_edges_of_their_shift(tree, volunteer) -> None:
    now = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    starting, ending = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    checked_in_only(placed_at(tree.grid_a, starting, now, now + timedelta(hours=2)))
    checked_in_only(placed_at(tree.grid_a, ending, now - timedelta(hours=2), now))
    assert volunteers_on_duty_near(LAT, LON, 1000, now, besides=volunteer.id) == [starting.user_id]
    assert volunteers_on_duty_near(LAT, LON, 1000, now - timedelta(microseconds=1), besides=volunteer.id) == [ending.user_id]
    assert volunteers_on_duty_near(LAT, LON, 1000, now, besides=starting.id) == []


# --- who is alerted ------------------------------------------------------------------------------


def test_sibling_area_organisers_are_not_alerted(client) -> None:
    city = factories.make_area(AreaLevel.CITY)
    district = factories.make_area(AreaLevel.DISTRICT, city)
    subdistrict = factories.make_area(AreaLevel.SUBDISTRICT, district)
    near = factories.make_area(AreaLevel.COMMUNITY, subdistrict, area_id=9_100_002)
    sibling = factories.make_area(AreaLevel.COMMUNITY, subdistrict, area_id=91_000_023)
    assert sibling.path.startswith(near.path.rstrip("/"))
    grid = factories.make_area(AreaLevel.GRID, sibling, boundary=factories.square(109.6, 40.5))
    person = factories.make_volunteer(grid)
    theirs = factories.make_user("organiser", sibling)
    not_theirs = factories.make_user("organiser", near)
    sos = raised(client, person, lat=40.505, lon=109.605)
    assert recipients(sos["id"]) == {theirs.id: "organiser"}
    assert not_theirs.id not in recipients(sos["id"])


def test_without_organisers_the_covering_staff_are_alerted(client, tree, volunteer) -> None:
    staff = factories.make_user("staff", tree.district_a)
    factories.make_user("staff", tree.district_b)
    inactive = factories.make_user("organiser", tree.community_a)
    inactive.is_active = False
    db.session.flush()
    sos = raised(client, volunteer)
    assert recipients(sos["id"]) == {staff.id: "staff"}


def test_volunteers_on_duty_just_inside_the_radius_are_alerted_just_outside_not(client, tree, volunteer, organiser) -> None:
    inside = on_duty(client, tree, lat=north_of(LAT, 999.5), real_name="近")
    outside = on_duty(client, tree, lat=north_of(LAT, 1000.5), real_name="远")
    sos = raised(client, volunteer)
    found = recipients(sos["id"])
    assert found == {organiser.id: "organiser", inside.user_id: "nearby"}
    assert outside.user_id not in found


def test_a_volunteer_in_the_boxs_corner_but_beyond_the_radius_is_not_alerted(client, tree, volunteer) -> None:
    # 900 m north and 900 m east: inside the bounding box SQL narrows by, 1.27 km away.
    east = LON + math.degrees(900 / (EARTH_RADIUS_M * math.cos(math.radians(LAT))))
    corner = on_duty(client, tree, lat=north_of(LAT, 900), lon=east, real_name="角落")
    near = on_duty(client, tree, lat=north_of(LAT, 700), lon=LON, real_name="近处")
    sos = raised(client, volunteer)
    assert set(recipients(sos["id"])) == {near.user_id}
    assert corner.user_id not in recipients(sos["id"])


def test_a_recent_track_point_counts_before_the_check_in_position(client, tree, volunteer) -> None:
    walked_away = on_duty(client, tree, lat=LAT, real_name="走远")
    walked_near = on_duty(client, tree, lat=north_of(LAT, 5000), real_name="走近")
    stale = on_duty(client, tree, lat=north_of(LAT, 5000), real_name="旧点")
    for person, lat, minutes_ago in ((walked_away, north_of(LAT, 3000), 2), (walked_near, LAT, 2), (stale, LAT, 31)):
        upload = client.post(
            f"{API}/assignments/{person.assignment_id}/track",
            json={"points": [{"lat": lat, "lon": LON, "accuracy_m": 5, "time": (utcnow() - timedelta(minutes=minutes_ago)).isoformat()}]},
            headers=factories.headers_for(person.user),
        )
        assert upload.status_code == 200, upload.get_json()
    sos = raised(client, volunteer)
    assert set(recipients(sos["id"])) == {walked_near.user_id}


def test_the_raiser_and_volunteers_checked_out_are_never_alerted(client, tree) -> None:
    raiser = on_duty(client, tree, real_name="本人")
    gone = on_duty(client, tree, real_name="已走")
    response = client.post(
        f"{API}/assignments/{gone.assignment_id}/check-out",
        json={"client_id": str(uuid.uuid4()), "lat": LAT, "lon": LON, "accuracy_m": 10, "device_time": utcnow().isoformat()},
        headers=factories.headers_for(gone.user),
    )
    assert response.status_code == 200
    sos = raised(client, raiser)
    assert recipients(sos["id"]) == {}


# --- positions -----------------------------------------------------------------------------------


def send_positions(client, volunteer, sos_id: int, positions: list[dict[str, Any]], **headers: str) -> Any:
    return client.post(
        f"{API}/me/sos/{sos_id}/positions", json={"positions": positions}, headers=factories.headers_for(volunteer.user, **headers)
    )


def fixes(count: int, *, start_seconds_ago: int = 100) -> list[dict[str, Any]]:
    start = utcnow() - timedelta(seconds=start_seconds_ago)
    return [
        {"lat": LAT + 0.0001 * i, "lon": LON, "accuracy_m": 6.0, "time": (start + timedelta(seconds=i)).isoformat()}
        for i in range(count)
    ]


def test_positions_are_kept_and_repeats_change_nothing(client, volunteer) -> None:
    sos = raised(client, volunteer)
    batch = fixes(5)
    first = send_positions(client, volunteer, sos["id"], batch)
    assert first.status_code == 200
    assert first.get_json() == {"sos_id": sos["id"], "received": 5, "stored": 5, "duplicates": 0}
    again = send_positions(client, volunteer, sos["id"], [*batch[3:], *fixes(1, start_seconds_ago=10), batch[4]])
    assert again.get_json() == {"sos_id": sos["id"], "received": 4, "stored": 1, "duplicates": 3}
    assert db.session.scalar(sa.select(sa.func.count()).where(SosPosition.sos_id == sos["id"])) == 6


def test_a_batch_of_exactly_the_maximum_is_taken_one_more_is_refused(client, app, volunteer) -> None:
    sos = raised(client, volunteer)
    limit = app.config["SOS_MAX_POSITIONS"]
    assert_problem(send_positions(client, volunteer, sos["id"], fixes(limit + 1, start_seconds_ago=500)), 422, "batch_too_large")
    assert db.session.scalar(sa.select(sa.func.count()).where(SosPosition.sos_id == sos["id"])) == 0
    assert send_positions(client, volunteer, sos["id"], fixes(limit, start_seconds_ago=500)).get_json()["stored"] == limit


@pytest.mark.parametrize("positions", [[], [{"lat": 40.6, "lon": 200, "time": "2026-12-07T10:00:00+08:00"}], [{"lat": 40.6, "lon": 109.8}]])
def test_bad_position_batches_are_422(client, volunteer, positions) -> None:
    sos = raised(client, volunteer)
    assert_problem(send_positions(client, volunteer, sos["id"], positions), 422, "validation_failed")


def test_positions_only_while_live_and_only_to_ones_own(client, tree, volunteer) -> None:
    sos = raised(client, volunteer)
    other = factories.make_volunteer(tree.grid_a)
    assert_problem(send_positions(client, other, sos["id"], fixes(1)), 404, "sos_not_found")
    client.post(f"{API}/me/sos/{sos['id']}/cancel", json={"note": "误触"}, headers=factories.headers_for(volunteer.user))
    assert_problem(send_positions(client, volunteer, sos["id"], fixes(1)), 409, "sos_not_live")


# --- acknowledging, cancelling, closing ----------------------------------------------------------


def acknowledge(client, user, sos_id: int, response: str = "going", **extra: Any) -> Any:
    return client.post(
        f"{API}/sos/{sos_id}/acknowledge", json={"response": response, **extra}, headers=factories.headers_for(user)
    )


def test_the_first_acknowledgement_stops_the_escalation_later_ones_are_recorded(client, tree, volunteer, organiser, sent) -> None:
    nearby = on_duty(client, tree, real_name="赵六")
    sos = raised(client, volunteer)
    first = acknowledge(client, nearby.user, sos["id"], "going", note="两分钟到")
    assert first.status_code == 200
    assert first.get_json()["status"] == "acknowledged"
    row = sos_row(sos["id"])
    assert row.escalate_at is None and row.acknowledged_at is not None
    later = acknowledge(client, organiser, sos["id"], "handled")
    assert later.status_code == 200
    assert sos_row(sos["id"]).acknowledged_at == row.acknowledged_at
    assert [(s["actor_id"], s["first"]) for s in sent.named("sos_acknowledged")] == [(nearby.user_id, True), (organiser.id, False)]
    mine = client.get(f"{API}/me/sos/{sos['id']}", headers=factories.headers_for(volunteer.user)).get_json()
    assert [(a["name"], a["role"], a["response"]) for a in mine["acknowledgements"]] == [
        ("赵六", "volunteer", "going"), (organiser.display_name, "organiser", "handled"),
    ]
    assert [event["kind"] for event in mine["events"]] == ["raised", "alerted", "acknowledged", "acknowledged"]


def test_the_volunteer_may_not_acknowledge_their_own(client, volunteer) -> None:
    sos = raised(client, volunteer)
    assert_problem(acknowledge(client, volunteer.user, sos["id"]), 403, "own_sos")


def test_acknowledging_needs_reach_or_an_alert(client, tree, volunteer) -> None:
    sos = raised(client, volunteer)
    for user in (
        factories.make_user("organiser", tree.community_a2),
        factories.make_user("staff", tree.district_b),
        factories.make_volunteer(tree.grid_a).user,
    ):
        assert_problem(acknowledge(client, user, sos["id"]), 404, "sos_not_found")
    assert_problem(acknowledge(client, factories.make_user("staff", tree.district_b), 2_000_000_000), 404, "sos_not_found")
    assert acknowledge(client, factories.make_user("admin", tree.city), sos["id"]).status_code == 200


def test_cancel_is_a_false_alarm_counted_for_the_organisers(client, tree, volunteer, organiser, sent) -> None:
    for _ in range(2):
        sos = raised(client, volunteer)
        response = client.post(f"{API}/me/sos/{sos['id']}/cancel", json={"note": "误触"}, headers=factories.headers_for(volunteer.user))
        assert response.get_json()["status"] == "cancelled"
        assert response.get_json()["end_note"] == "误触"
    assert [s["user_ids"] for s in sent.named("sos_ended")] == [[organiser.id]] * 2
    live = raised(client, volunteer)
    listed = client.get(f"{API}/sos", headers=factories.headers_for(organiser)).get_json()["items"]
    assert [(item["status"], item["false_alarms"]) for item in listed] == [("open", 2), ("cancelled", 2), ("cancelled", 2)]
    assert listed[0]["id"] == live["id"]
    assert {item["volunteer_name"] for item in listed} == {"李四"}
    assert_problem(
        client.post(f"{API}/me/sos/{sos['id']}/cancel", json={}, headers=factories.headers_for(volunteer.user)), 409, "sos_not_live"
    )


def test_false_alarms_older_than_the_window_are_not_counted(client, app, volunteer, organiser) -> None:
    sos = raised(client, volunteer)
    client.post(f"{API}/me/sos/{sos['id']}/cancel", json={}, headers=factories.headers_for(volunteer.user))
    row = sos_row(sos["id"])
    row.ended_at = utcnow() - timedelta(days=app.config["SOS_FALSE_ALARM_DAYS"], seconds=1)
    db.session.flush()
    live = raised(client, volunteer)
    detail = client.get(f"{API}/sos/{live['id']}", headers=factories.headers_for(organiser)).get_json()
    assert detail["false_alarms"] == 0


def test_an_organiser_closes_it_with_a_note_and_everyone_alerted_stands_down(client, tree, volunteer, organiser, sent) -> None:
    nearby = on_duty(client, tree)
    sos = raised(client, volunteer)
    assert_problem(client.post(f"{API}/sos/{sos['id']}/close", json={}, headers=factories.headers_for(organiser)), 422, "validation_failed")
    closed = client.post(f"{API}/sos/{sos['id']}/close", json={"note": "已送医"}, headers=factories.headers_for(organiser))
    assert closed.status_code == 200
    assert (closed.get_json()["status"], closed.get_json()["end_note"]) == ("closed", "已送医")
    [ended] = sent.named("sos_ended")
    assert ended["status"] == "closed" and sorted(ended["user_ids"]) == sorted([organiser.id, nearby.user_id])
    for step in (
        client.post(f"{API}/sos/{sos['id']}/close", json={"note": "再次"}, headers=factories.headers_for(organiser)),
        acknowledge(client, organiser, sos["id"]),
        client.post(f"{API}/me/sos/{sos['id']}/cancel", json={}, headers=factories.headers_for(volunteer.user)),
    ):
        assert_problem(step, 409, "sos_not_live")
    assert events_of(sos["id"]) == ["raised", "alerted", "closed"]
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "sos.closed")) == 1


def test_a_nearby_volunteer_may_not_close_and_out_of_scope_managers_see_nothing(client, tree, volunteer) -> None:
    nearby = on_duty(client, tree)
    sos = raised(client, volunteer)
    assert_problem(client.post(f"{API}/sos/{sos['id']}/close", json={"note": "x"}, headers=factories.headers_for(nearby.user)), 403, "forbidden")
    sibling = factories.make_user("organiser", tree.community_a2)
    assert_problem(client.post(f"{API}/sos/{sos['id']}/close", json={"note": "x"}, headers=factories.headers_for(sibling)), 404, "sos_not_found")
    assert sos_row(sos["id"]).status == "open"


# --- reading -------------------------------------------------------------------------------------


def reads_logged(sos_id: int) -> list[tuple[int | None, str]]:
    rows = db.session.execute(
        sa.select(AuditEntry.actor_id, AuditEntry.target_id).where(AuditEntry.action == SOS_READ).order_by(AuditEntry.id)
    ).tuples()
    return [(actor, target) for actor, target in rows]


def test_a_responders_read_shows_positions_in_time_order_and_is_logged(client, tree, volunteer, organiser) -> None:
    nearby = on_duty(client, tree)
    sos = raised(client, volunteer)
    send_positions(client, volunteer, sos["id"], [fixes(2, start_seconds_ago=5)[1], fixes(1, start_seconds_ago=60)[0]])
    detail = client.get(f"{API}/sos/{sos['id']}", headers=factories.headers_for(organiser)).get_json()
    assert [p["source"] for p in detail["positions"]] == ["update", "alert", "update"]
    times = [p["time"] for p in detail["positions"]]
    assert times == sorted(times)
    assert detail["volunteer_phone"] == volunteer.user.phone and detail["recipients_count"] == 2
    assert detail["volunteer_name"] == "李四" and detail["false_alarms"] == 0
    assert client.get(f"{API}/sos/{sos['id']}", headers=factories.headers_for(nearby.user)).status_code == 200
    assert reads_logged(sos["id"]) == [(organiser.id, str(volunteer.id)), (nearby.user_id, str(volunteer.id))]
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == SOS_READ).limit(1))
    assert entry.area_path == tree.grid_a.path and entry.after == {"sos_id": sos["id"]}
    # The volunteer reading their own is not logged.
    assert client.get(f"{API}/sos/{sos['id']}", headers=factories.headers_for(volunteer.user)).status_code == 200
    assert client.get(f"{API}/me/sos/{sos['id']}", headers=factories.headers_for(volunteer.user)).status_code == 200
    assert len(reads_logged(sos["id"])) == 2


def test_others_get_404_exactly_like_a_missing_id(client, tree, volunteer) -> None:
    sos = raised(client, volunteer)
    missing = client.get(f"{API}/sos/2000000000", headers=factories.headers_for(factories.make_user("staff", tree.district_b)))
    for user in (
        factories.make_user("organiser", tree.community_a2),
        factories.make_user("staff", tree.district_b),
        factories.make_volunteer(tree.grid_a).user,
    ):
        hidden = client.get(f"{API}/sos/{sos['id']}", headers=factories.headers_for(user))
        assert_problem(hidden, 404, "sos_not_found")
        assert hidden.get_json() == missing.get_json()
        mine = client.get(f"{API}/me/sos/{sos['id']}", headers=factories.headers_for(user))
        assert mine.status_code in (403, 404)
    assert reads_logged(sos["id"]) == []


def test_the_responders_list_is_live_first_scoped_and_filtered(client, tree, organiser) -> None:
    ended = raised(client, factories.make_volunteer(tree.grid_a))
    client.post(f"{API}/sos/{ended['id']}/close", json={"note": "好"}, headers=factories.headers_for(organiser))
    newer_ended = raised(client, factories.make_volunteer(tree.grid_a))
    client.post(f"{API}/sos/{newer_ended['id']}/close", json={"note": "好"}, headers=factories.headers_for(organiser))
    live = raised(client, factories.make_volunteer(tree.grid_a))
    elsewhere = raised(client, factories.make_volunteer(tree.grid_b), lat=40.625, lon=109.805)
    headers = factories.headers_for(organiser)
    pages, cursor = [], None
    while True:
        page = client.get(f"{API}/sos", query_string={"limit": 1, **({"cursor": cursor} if cursor else {})}, headers=headers).get_json()
        pages += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == [live["id"], newer_ended["id"], ended["id"]]
    assert elsewhere["id"] not in pages
    closed = client.get(f"{API}/sos", query_string={"status": "closed"}, headers=headers).get_json()["items"]
    assert [item["id"] for item in closed] == [newer_ended["id"], ended["id"]]
    staff = factories.make_user("staff", tree.city)
    narrowed = client.get(f"{API}/sos", query_string={"area_id": tree.community_b.id}, headers=factories.headers_for(staff))
    assert [item["id"] for item in narrowed.get_json()["items"]] == [elsewhere["id"]]
    assert_problem(client.get(f"{API}/sos", query_string={"area_id": tree.community_b.id}, headers=headers), 403, "out_of_scope")
    assert_problem(client.get(f"{API}/sos", query_string={"cursor": "WyJ4IiwxXQ"}, headers=headers), 422, "validation_failed")
    assert "lat" not in closed[0]


def test_my_list_is_mine_newest_first(client, tree, volunteer) -> None:
    first = raised(client, volunteer)
    client.post(f"{API}/me/sos/{first['id']}/cancel", json={}, headers=factories.headers_for(volunteer.user))
    second = raised(client, volunteer)
    raised(client, factories.make_volunteer(tree.grid_a))
    page = client.get(f"{API}/me/sos", headers=factories.headers_for(volunteer.user)).get_json()
    assert [item["id"] for item in page["items"]] == [second["id"], first["id"]]


# --- escalation ----------------------------------------------------------------------------------


def test_escalation_at_exact_instants_community_district_city(client, tree, volunteer, organiser, sent) -> None:
    district_staff = factories.make_user("staff", tree.district_a)
    factories.make_user("staff", tree.district_b)  # another district: never
    factories.make_user("admin", tree.district_a)  # admins only at the city
    city_staff = factories.make_user("staff", tree.city)
    city_admin = factories.make_user("admin", tree.city)
    sos = raised(client, volunteer)
    due = sos_row(sos["id"]).escalate_at
    assert due is not None
    assert escalate_due(due - timedelta(microseconds=1)) == 0
    assert sos_row(sos["id"]).level == "community"
    assert escalate_due(due) == 1
    row = sos_row(sos["id"])
    assert row.level == "district" and row.escalate_at == due + timedelta(minutes=3)
    assert recipients(sos["id"]) == {organiser.id: "organiser", district_staff.id: "staff"}
    assert escalate_due(due) == 0  # run again at the same instant: nothing more
    assert escalate_due(row.escalate_at - timedelta(microseconds=1)) == 0
    assert escalate_due(row.escalate_at) == 1
    row = sos_row(sos["id"])
    assert row.level == "city" and row.escalate_at is None
    assert set(recipients(sos["id"])) == {organiser.id, district_staff.id, city_staff.id, city_admin.id}
    assert escalate_due(row.received_at + timedelta(days=1)) == 0
    assert [(s["level"], s["user_ids"]) for s in sent.named("sos_alerted")] == [
        ("community", [organiser.id]), ("district", [district_staff.id]), ("city", [city_staff.id, city_admin.id]),
    ]
    assert events_of(sos["id"]) == ["raised", "alerted", "escalated", "escalated"]
    assert client.get(f"{API}/sos/{sos['id']}", headers=factories.headers_for(city_staff)).status_code == 200


def test_a_district_without_staff_passes_on_to_the_city_at_the_next_run(client, tree, volunteer, organiser, sent) -> None:
    factories.make_user("staff", tree.district_b)  # another district's staff: not this one's
    city_staff = factories.make_user("staff", tree.city)
    sos = raised(client, volunteer)
    due = sos_row(sos["id"]).escalate_at
    assert due is not None
    assert escalate_due(due) == 1
    row = sos_row(sos["id"])
    assert row.level == "district" and row.escalate_at == due  # nobody alerted: due again at once
    assert escalate_due(due + timedelta(seconds=30)) == 1  # the next run
    assert sos_row(sos["id"]).level == "city"
    assert [(s["level"], s["user_ids"]) for s in sent.named("sos_alerted")] == [
        ("community", [organiser.id]), ("district", []), ("city", [city_staff.id]),
    ]


def test_an_acknowledged_or_ended_sos_never_escalates(client, tree, volunteer, organiser) -> None:
    acknowledged = raised(client, volunteer)
    acknowledge(client, organiser, acknowledged["id"], "handled")
    other = factories.make_volunteer(tree.grid_a)
    cancelled = raised(client, other)
    due = sos_row(cancelled["id"]).escalate_at
    client.post(f"{API}/me/sos/{cancelled['id']}/cancel", json={}, headers=factories.headers_for(other.user))
    assert escalate_due(due + timedelta(hours=1)) == 0
    assert {sos_row(acknowledged["id"]).level, sos_row(cancelled["id"]).level} == {"community"}


def test_a_run_that_read_the_sos_before_it_was_answered_or_ended_leaves_it(client, tree, volunteer, organiser) -> None:
    # What a run's step finds when an acknowledgement or a cancel commits between its read and its update.
    acknowledged = raised(client, volunteer)
    due = sos_row(acknowledged["id"]).escalate_at
    acknowledge(client, organiser, acknowledged["id"])
    assert escalate_one(acknowledged["id"], "community", due) is False
    other = factories.make_volunteer(tree.grid_a)
    cancelled = raised(client, other)
    client.post(f"{API}/me/sos/{cancelled['id']}/cancel", json={}, headers=factories.headers_for(other.user))
    assert escalate_one(cancelled["id"], "community", due + timedelta(minutes=1)) is False
    for sos_id in (acknowledged["id"], cancelled["id"]):
        row = sos_row(sos_id)
        assert (row.level, row.escalate_at) == ("community", None)
        assert "escalated" not in events_of(sos_id)


def test_the_escalation_sends_the_latest_position(client, tree, volunteer) -> None:
    factories.make_user("staff", tree.district_a)
    sos = raised(client, volunteer)
    send_positions(client, volunteer, sos["id"], [{"lat": 40.6555, "lon": 109.8466, "accuracy_m": 4, "time": utcnow().isoformat()}])
    with recording(sos_signals, SIGNALS) as events:
        escalate_due(sos_row(sos["id"]).escalate_at)
    [alerted] = events.named("sos_alerted")
    assert (alerted["lat"], alerted["lon"], alerted["accuracy_m"]) == (40.6555, 109.8466, 4)


def test_the_periodic_task_is_registered(app) -> None:
    from core.tasks import beat_schedule

    schedule = beat_schedule(app.config)
    assert schedule["patrols.escalate_sos"]["schedule"] == timedelta(seconds=app.config["SOS_ESCALATION_SECONDS"])
