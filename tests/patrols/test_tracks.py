"""GPS tracks: batch upload, de-duplication, jumps, GeoJSON, scope, refusals, retention purge."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
import pytest
import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from core.geo import haversine_m
from patrols.models import Patrol
from patrols.privacy.retention import purge_track_points
from patrols.tracks.fold import analyse_track
from patrols.tracks.models import TrackPoint
from tests import factories
from tests.problems import assert_problem

LAT0, LON0 = 40.655, 109.845  # inside tree.grid_a
STEP_LAT = 0.0001  # about 11.1 m north per fix


def track_url(assignment_id: int) -> str:
    return f"/api/v1/assignments/{assignment_id}/track"


@pytest.fixture
def shift(tree) -> Any:
    return factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-30), hours=2)


@pytest.fixture
def volunteer(tree) -> Any:
    return factories.make_volunteer(tree.grid_a)


@pytest.fixture
def assignment(shift, volunteer) -> Any:
    return factories.make_assignment(shift, volunteer)


def walk(start: datetime, count: int, *, step_seconds: int = 10) -> list[dict[str, Any]]:
    """``count`` fixes walking north at about 4 km/h from LAT0, LON0."""
    return [
        {
            "lat": LAT0 + i * STEP_LAT,
            "lon": LON0,
            "accuracy_m": 8.0,
            "time": (start + timedelta(seconds=i * step_seconds)).isoformat(),
        }
        for i in range(count)
    ]


def stored_points(assignment_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(TrackPoint)
        .join(Patrol, Patrol.id == TrackPoint.patrol_id)
        .where(Patrol.assignment_id == assignment_id)
    )


def patrol_of(assignment_id: int) -> Patrol | None:
    return db.session.scalar(sa.select(Patrol).where(Patrol.assignment_id == assignment_id))


# --- unit: jumps (distances: tests/test_core_geo.py) --------------------------------------


def test_analyse_track_leaves_a_jump_out_and_compares_with_the_last_plausible_point() -> None:
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    points = [
        (t0, 40.0, 109.0),
        (t0 + timedelta(seconds=10), 40.0001, 109.0),  # 11 m in 10 s
        (t0 + timedelta(seconds=20), 40.1, 109.0),  # 11 km in 10 s: a jump
        (t0 + timedelta(seconds=30), 40.0002, 109.0),  # back near the walk: plausible from point 2
    ]
    distance, flags = analyse_track(points, max_speed_kmh=150)
    assert flags == [False, False, True, False]
    assert distance == pytest.approx(haversine_m(40.0, 109.0, 40.0002, 109.0), rel=1e-6)


def test_analyse_track_speed_limit_is_the_boundary() -> None:
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    # 1 km in 30 s is 120 km/h (allowed); 1 km in 20 s is 180 km/h (a jump).
    km = 1000 / 111_195
    ok = [(t0, 40.0, 109.0), (t0 + timedelta(seconds=30), 40.0 + km, 109.0)]
    fast = [(t0, 40.0, 109.0), (t0 + timedelta(seconds=20), 40.0 + km, 109.0)]
    assert analyse_track(ok, 150)[1] == [False, False]
    assert analyse_track(fast, 150) == (0.0, [False, True])
    assert analyse_track([], 150) == (0.0, [])


# --- upload ------------------------------------------------------------------------------------


def test_upload_stores_points_before_check_in_and_updates_the_patrol(client, assignment, volunteer) -> None:
    start = utcnow() - timedelta(minutes=20)
    points = walk(start, 50)
    response = client.post(
        track_url(assignment.id), json={"points": list(reversed(points))},
        headers=factories.headers_for(volunteer.user),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["received"] == 50 and body["stored"] == 50 and body["duplicates"] == 0
    assert body["track_point_count"] == 50
    assert body["distance_m"] == pytest.approx(49 * haversine_m(LAT0, LON0, LAT0 + STEP_LAT, LON0), rel=1e-3)
    patrol = patrol_of(assignment.id)
    assert patrol is not None and patrol.presence_status is None  # no check-in yet
    assert patrol.track_point_count == 50
    assert patrol.distance_m == body["distance_m"]
    stored = db.session.scalars(sa.select(TrackPoint).where(TrackPoint.patrol_id == patrol.id)).all()
    assert all(point.received_at >= start for point in stored)
    assert {p.accuracy_m for p in stored} == {8.0}


def test_track_comes_back_as_geojson_ordered_by_time(client, assignment, volunteer) -> None:
    points = walk(utcnow() - timedelta(minutes=20), 5)
    headers = factories.headers_for(volunteer.user)
    client.post(track_url(assignment.id), json={"points": [points[3], points[0], points[4], points[1], points[2]]}, headers=headers)
    body = client.get(track_url(assignment.id), headers=headers).get_json()
    assert body["type"] == "FeatureCollection"
    assert body["track_point_count"] == 5 and body["purged"] is False
    line, *fixes = body["features"]
    assert line["geometry"]["type"] == "LineString"
    assert line["geometry"]["coordinates"] == [[p["lon"], p["lat"]] for p in points]
    assert line["properties"]["distance_m"] == pytest.approx(body["distance_m"], abs=0.1)
    assert [f["geometry"]["coordinates"] for f in fixes] == [[p["lon"], p["lat"]] for p in points]
    times = [datetime.fromisoformat(f["properties"]["time"]) for f in fixes]
    assert times == sorted(times)
    assert times[0].utcoffset() == timedelta(0)  # instants are shown in UTC
    assert all(f["properties"]["implausible"] is False for f in fixes)


def test_repeated_batch_and_repeats_within_a_batch_change_nothing(client, assignment, volunteer) -> None:
    points = walk(utcnow() - timedelta(minutes=20), 10)
    headers = factories.headers_for(volunteer.user)
    first = client.post(track_url(assignment.id), json={"points": points + points[:3]}, headers=headers)
    assert first.get_json()["stored"] == 10 and first.get_json()["duplicates"] == 3
    patrol = patrol_of(assignment.id)
    before = (patrol.distance_m, patrol.track_point_count)

    again = client.post(track_url(assignment.id), json={"points": points}, headers=headers)
    assert again.status_code == 200
    assert again.get_json()["stored"] == 0 and again.get_json()["duplicates"] == 10
    # The same instant written with another offset is the same fix.
    shifted = [dict(points[0], time=datetime.fromisoformat(points[0]["time"]).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Shanghai")).isoformat())]
    assert client.post(track_url(assignment.id), json={"points": shifted}, headers=headers).get_json()["stored"] == 0
    db.session.refresh(patrol)
    assert (patrol.distance_m, patrol.track_point_count) == before
    assert stored_points(assignment.id) == 10


def test_late_points_slot_into_the_track(client, assignment, volunteer) -> None:
    points = walk(utcnow() - timedelta(minutes=20), 6)
    headers = factories.headers_for(volunteer.user)
    client.post(track_url(assignment.id), json={"points": points[::2]}, headers=headers)
    late = client.post(track_url(assignment.id), json={"points": points[1::2]}, headers=headers)
    assert late.get_json()["track_point_count"] == 6
    assert late.get_json()["distance_m"] == pytest.approx(5 * haversine_m(LAT0, LON0, LAT0 + STEP_LAT, LON0), abs=0.1)


def test_idempotency_key_replays_the_first_response(client, assignment, volunteer) -> None:
    points = walk(utcnow() - timedelta(minutes=20), 4)
    headers = factories.headers_for(volunteer.user, **{"Idempotency-Key": str(uuid.uuid4())})
    first = client.post(track_url(assignment.id), json={"points": points}, headers=headers)
    replay = client.post(track_url(assignment.id), json={"points": points}, headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json() == first.get_json()
    other = client.post(track_url(assignment.id), json={"points": points[:2]}, headers=headers)
    assert_problem(other, 409, "idempotency_key_reused")


def test_jump_is_flagged_and_left_out_of_the_distance(client, assignment, volunteer) -> None:
    start = utcnow() - timedelta(minutes=20)
    points = walk(start, 4)
    stray = {"lat": LAT0 + 0.1, "lon": LON0, "accuracy_m": 30.0, "time": (start + timedelta(seconds=15)).isoformat()}
    headers = factories.headers_for(volunteer.user)
    body = client.post(track_url(assignment.id), json={"points": [*points, stray]}, headers=headers).get_json()
    assert body["implausible_count"] == 1 and body["track_point_count"] == 5
    assert body["distance_m"] == pytest.approx(3 * haversine_m(LAT0, LON0, LAT0 + STEP_LAT, LON0), abs=0.1)
    track = client.get(track_url(assignment.id), headers=headers).get_json()
    fixes = [f for f in track["features"] if f["properties"]["kind"] == "fix"]
    assert [f["properties"]["implausible"] for f in fixes] == [False, False, True, False, False]
    assert len(track["features"][0]["geometry"]["coordinates"]) == 4


# --- refusals ----------------------------------------------------------------------------------


def assert_nothing_stored(assignment_id: int) -> None:
    assert stored_points(assignment_id) == 0
    assert patrol_of(assignment_id) is None


def test_batch_over_the_limit_is_refused_whole(client, assignment, volunteer) -> None:
    points = walk(utcnow() - timedelta(minutes=25), 1001, step_seconds=1)
    response = client.post(track_url(assignment.id), json={"points": points}, headers=factories.headers_for(volunteer.user))
    assert_problem(response, 422, "batch_too_large")
    assert_nothing_stored(assignment.id)


def test_a_full_batch_of_1000_is_accepted(client, assignment, volunteer) -> None:
    points = walk(utcnow() - timedelta(minutes=25), 1000, step_seconds=1)
    response = client.post(track_url(assignment.id), json={"points": points}, headers=factories.headers_for(volunteer.user))
    assert response.status_code == 200 and response.get_json()["stored"] == 1000
    assert stored_points(assignment.id) == 1000


def test_body_over_max_content_length_is_413(client, assignment, volunteer) -> None:
    body = json.dumps({"points": walk(utcnow(), 1), "pad": "x" * (1024 * 1024)})
    response = client.post(
        track_url(assignment.id), data=body, content_type="application/json",
        headers=factories.headers_for(volunteer.user),
    )
    assert_problem(response, 413, "payload_too_large")
    assert_nothing_stored(assignment.id)


@pytest.mark.parametrize(
    "change, field",
    [({"lat": 90.5}, "lat"), ({"lon": -181}, "lon"), ({"accuracy_m": -1}, "accuracy_m"), ({"time": "2026-01-01T10:00:00"}, "time")],
)
def test_bad_point_refuses_the_whole_batch(client, assignment, volunteer, change, field) -> None:
    points = walk(utcnow() - timedelta(minutes=20), 3)
    points[2].update(change)
    response = client.post(track_url(assignment.id), json={"points": points}, headers=factories.headers_for(volunteer.user))
    body = assert_problem(response, 422, "validation_failed")
    assert field in body["errors"]["points"]["2"]
    assert_nothing_stored(assignment.id)


@pytest.mark.parametrize("field", ["lat", "lon", "accuracy_m"])
@pytest.mark.parametrize("index", [0, 2])
def test_a_number_too_large_for_a_float_is_refused_with_the_batch(client, assignment, volunteer, field, index) -> None:
    """JSON takes an integer of any length; one beyond a float's range is a 422 naming the field,
    whichever check meets it first (the first point, or one after plain ones), never an overflow."""
    points = walk(utcnow() - timedelta(minutes=20), 3)
    points[index][field] = 12345
    body = json.dumps({"points": points}).replace("12345", "1" + "0" * 400)
    response = client.post(
        track_url(assignment.id), data=body, content_type="application/json",
        headers=factories.headers_for(volunteer.user),
    )
    errors = assert_problem(response, 422, "validation_failed")["errors"]
    assert field in errors["points"][str(index)]
    assert_nothing_stored(assignment.id)


def test_points_far_outside_the_shift_are_refused(client, assignment, volunteer, shift) -> None:
    points = walk(utcnow() - timedelta(minutes=20), 2)
    points.append({"lat": LAT0, "lon": LON0, "time": (shift.ends_at + timedelta(hours=3)).isoformat()})
    response = client.post(track_url(assignment.id), json={"points": points}, headers=factories.headers_for(volunteer.user))
    body = assert_problem(response, 422, "validation_failed")
    assert "time" in body["errors"]["points"]["2"]
    assert_nothing_stored(assignment.id)


def test_empty_batch_is_422(client, assignment, volunteer) -> None:
    response = client.post(track_url(assignment.id), json={"points": []}, headers=factories.headers_for(volunteer.user))
    assert_problem(response, 422, "validation_failed")


def test_another_volunteers_assignment_is_not_found(client, tree, assignment) -> None:
    other = factories.make_volunteer(tree.grid_a)
    points = walk(utcnow() - timedelta(minutes=20), 3)
    response = client.post(track_url(assignment.id), json={"points": points}, headers=factories.headers_for(other.user))
    assert_problem(response, 404, "assignment_not_found")
    assert_problem(client.get(track_url(assignment.id), headers=factories.headers_for(other.user)), 404, "assignment_not_found")
    assert_nothing_stored(assignment.id)


def test_organisers_may_not_upload(client, tree, assignment) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    response = client.post(
        track_url(assignment.id), json={"points": walk(utcnow(), 1)}, headers=factories.headers_for(organiser)
    )
    assert_problem(response, 403, "forbidden")


def test_managers_read_tracks_in_their_subtree_only(client, tree, assignment, volunteer) -> None:
    client.post(track_url(assignment.id), json={"points": walk(utcnow() - timedelta(minutes=20), 3)}, headers=factories.headers_for(volunteer.user))
    inside = factories.make_user("organiser", tree.community_a)
    outside = factories.make_user("organiser", tree.community_b)
    response = client.get(track_url(assignment.id), headers=factories.headers_for(inside))
    assert response.status_code == 200 and response.get_json()["track_point_count"] == 3
    assert_problem(client.get(track_url(assignment.id), headers=factories.headers_for(outside)), 404, "assignment_not_found")


def test_cancelled_shift_and_ended_assignment_are_refused(client, tree, shift, assignment, volunteer) -> None:
    headers = factories.headers_for(volunteer.user)
    points = walk(utcnow() - timedelta(minutes=20), 2)
    assignment.status = "withdrawn"
    db.session.flush()
    assert_problem(client.post(track_url(assignment.id), json={"points": points}, headers=headers), 409, "assignment_not_active")
    assignment.status = "assigned"
    shift.status = "cancelled"
    db.session.flush()
    assert_problem(client.post(track_url(assignment.id), json={"points": points}, headers=headers), 409, "shift_cancelled")
    assert_nothing_stored(assignment.id)


def test_unknown_assignment_is_404(client, volunteer) -> None:
    response = client.post(track_url(999_999), json={"points": walk(utcnow(), 1)}, headers=factories.headers_for(volunteer.user))
    assert_problem(response, 404, "assignment_not_found")


# --- retention ---------------------------------------------------------------------------------


def test_purge_removes_old_points_and_keeps_the_summary(client, tree, volunteer, assignment) -> None:
    old_shift = factories.make_shift(tree.grid_a, starts_in=timedelta(days=-100), hours=2)
    old_assignment = factories.make_assignment(old_shift, volunteer)
    headers = factories.headers_for(volunteer.user)
    refused = client.post(
        track_url(old_assignment.id), json={"points": walk(old_shift.starts_at, 2)}, headers=headers
    )
    assert_problem(refused, 409, "track_expired")

    # Points stored while the shift was recent (written directly: uploads are refused by now).
    from patrols.service import patrol_for
    from patrols.tracks.service import refresh_summary

    old_patrol = patrol_for(old_assignment)
    for i in range(3):
        db.session.add(TrackPoint(
            patrol_id=old_patrol.id, device_at=old_shift.starts_at + timedelta(seconds=10 * i),
            received_at=old_shift.starts_at, lat=LAT0 + i * STEP_LAT, lon=LON0, accuracy_m=5.0,
        ))
    db.session.flush()
    refresh_summary(old_patrol)
    summary = (old_patrol.distance_m, old_patrol.track_point_count)
    assert summary[1] == 3 and summary[0] > 0
    client.post(track_url(assignment.id), json={"points": walk(utcnow() - timedelta(minutes=20), 4)}, headers=headers)

    assert purge_track_points() == 3
    assert purge_track_points() == 0
    db.session.expire_all()
    assert stored_points(old_assignment.id) == 0
    assert stored_points(assignment.id) == 4
    track = client.get(track_url(old_assignment.id), headers=headers).get_json()
    assert track["purged"] is True and track["features"] == []
    assert (track["distance_m"], track["track_point_count"]) == summary


def test_purge_honours_now_and_the_retention_setting(app, tree, volunteer) -> None:
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(days=-10), hours=1)
    from patrols.service import patrol_for

    patrol = patrol_for(factories.make_assignment(shift, volunteer))
    db.session.add(TrackPoint(patrol_id=patrol.id, device_at=shift.starts_at, received_at=shift.starts_at, lat=LAT0, lon=LON0))
    db.session.flush()
    assert purge_track_points() == 0
    assert purge_track_points(now=utcnow() + timedelta(days=81)) == 1


def test_fast_point_parsing_matches_the_schema() -> None:
    from patrols.tracks.schemas import TrackBatchSchema, TrackPointInSchema

    points = [
        {"lat": 40, "lon": 109.5, "time": "2026-03-01T19:00:00+08:00"},
        {"lat": -90.0, "lon": 180, "accuracy_m": 0, "time": "2026-03-01T11:00:01Z"},
        {"lat": 1.5, "lon": 2.5, "accuracy_m": None, "time": "2026-03-01T11:00:02.123456+00:00"},
    ]
    assert TrackBatchSchema().load({"points": points})["points"] == TrackPointInSchema(many=True).load(points)
    # Anything the fast path does not take goes through the schema, with the schema's errors.
    mixed = [*points, {"lat": "40.1", "lon": 109, "time": "2026-03-01T19:00:00+08:00"}]
    assert TrackBatchSchema().load({"points": mixed})["points"][-1]["lat"] == 40.1
    with pytest.raises(ma.ValidationError) as refused:
        TrackBatchSchema().load({"points": [*points, {"lat": True, "lon": 1, "time": "2026-03-01T19:00:00"}]})
    assert set(refused.value.messages["points"][3]) == {"lat", "time"}


def test_the_whole_batch_check_takes_exactly_what_the_point_by_point_check_takes() -> None:
    """``plain_batch`` (a field at a time over the batch) gives what ``plain_points`` (point by
    point) gives, or leaves the batch to it: for a plain batch, and for each way one point can
    differ (types, NaN, ±inf, bounds, keys, every time shape, impossible dates, years)."""
    from patrols.tracks.schemas import _PLAIN_INSTANT, TrackPointList, plain_batch, plain_times

    base = [
        {"lat": 40.0 + i / 1000, "lon": 109.5, "accuracy_m": 8.0, "time": f"2026-03-01T19:00:{i:02d}+08:00"}
        for i in range(20)
    ]
    variants: list[dict[str, Any]] = [
        {"lat": 40}, {"lat": -90}, {"lat": 90.0}, {"lat": 90.0001}, {"lat": -91}, {"lat": True}, {"lat": "40"},
        {"lat": None}, {"lat": float("nan")}, {"lat": float("inf")}, {"lat": -float("inf")}, {"lat": 10**400},
        {"lon": 180}, {"lon": -180.0}, {"lon": 180.5}, {"lon": False}, {"lon": float("nan")}, {"lon": [1]},
        {"accuracy_m": None}, {"accuracy_m": 0}, {"accuracy_m": 10_000}, {"accuracy_m": 10_000.5},
        {"accuracy_m": -0.1}, {"accuracy_m": True}, {"accuracy_m": "8"}, {"accuracy_m": float("nan")},
        {"time": "2026-03-01T11:00:01Z"}, {"time": "2026-03-01T11:00:01.123456+00:00"},
        {"time": "2026-03-01T11:00:01.1234567+00:00"}, {"time": "2026-03-01T11:00:01"},
        {"time": "2026-02-30T11:00:01Z"}, {"time": "2026-03-01T25:00:01Z"}, {"time": "2026-03-01T11:00:01+24:00"},
        {"time": "1999-12-31T23:59:59Z"}, {"time": "2100-01-01T00:00:00Z"}, {"time": "2099-12-31T23:59:59-05:00"},
        {"time": "2026-03-01 11:00:01Z"}, {"time": "20260301T110001Z"}, {"time": 1740000000}, {"time": None},
        {"extra": 1}, {"lat": 40.5, "accuracy_m": None, "time": "2026-03-01T19:00:00.5Z"},
        {"time": "2026-03-01T11:00:01Z\n2026-03-01T11:00:02Z"}, {"time": "2026-03-01T11:00:01Z\n"},
    ]
    batches: list[list[Any]] = [base, [], [None], [[1, 2]], base[:1], [*base[:3], "x"]]
    for change in variants:
        for index in (0, 7, 19):
            batch = [dict(point) for point in base]
            batch[index].update(change)
            batches.append(batch)
        batches.append([{**point, **change} for point in base])
    for accuracy in (-0.1, 10_000.5, True, "8", float("nan"), 0, 3):  # beside a fix without accuracy
        batches.append([{**point, "accuracy_m": None if i == 0 else accuracy if i == 5 else 8.0}
                        for i, point in enumerate(base)])  # fmt: skip
    for missing in ("lat", "lon", "time", "accuracy_m"):
        batches.append([{key: value for key, value in point.items() if key != missing} for point in base])
        # one point without it and with another key instead: as many keys in all as a plain batch
        batches.append([{key: value for key, value in point.items() if i or key != missing} | ({} if i else {"x": 1})
                        for i, point in enumerate(base)])  # fmt: skip
    taken = 0
    for batch in batches:
        by_point = TrackPointList.plain_points(batch)
        whole = plain_batch(batch)
        assert whole is None or whole == by_point, batch
        if by_point and all(_PLAIN_INSTANT.fullmatch(point["time"]) for point in batch):
            assert whole == by_point, batch  # left to the point-by-point check only for other time shapes
        if whole is not None:
            taken += 1
            assert [type(point["lat"]) for point in whole] == [float] * len(whole)
    assert taken >= len(variants)  # the check takes most plain batches itself
    plain = ["2026-03-01T11:00:01Z", "2099-03-01T11:00:01.5+08:00"]
    assert plain_times(plain) and plain_times(plain[:1])
    for times in (["2026-03-01T11:00:01Z\n2026-03-01T11:00:02Z"], [*plain, "2026-03-01T11:00:01Z\n"],
                  ["1999-12-31T23:59:59Z"], ["2100-01-01T00:00:00Z"], ["2026-03-01T11:00:01"]):  # fmt: skip
        assert not plain_times(times), times
