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
from patrols.sos import signals as sos_signals
from patrols.sos.escalation import escalate_due
from patrols.sos.models import SosAlert, SosEvent, SosPosition, SosRecipient
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
