"""QR checkpoints: placing, signed payloads, forged and revoked codes, scans, the patrol summary."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from patrols.checkpoints.models import Checkpoint, CheckpointScan
from patrols.models import Patrol
from tests import factories
from tests.problems import assert_problem

LAT0, LON0 = 40.655, 109.845  # the middle of tree.grid_a (109.84–109.85, 40.65–40.66)
PAYLOAD = re.compile(r"^SW1\.\d+\.\d+\.[A-Za-z0-9_-]{22}$")


def checkpoints_url(grid_id: int) -> str:
    return f"/api/v1/areas/{grid_id}/checkpoints"


def scans_url(assignment_id: int) -> str:
    return f"/api/v1/assignments/{assignment_id}/checkpoint-scans"


def summary_url(assignment_id: int) -> str:
    return f"/api/v1/assignments/{assignment_id}/patrol/summary"


@pytest.fixture
def organiser(tree) -> Any:
    return factories.make_user("organiser", tree.community_a)


@pytest.fixture
def volunteer(tree) -> Any:
    return factories.make_volunteer(tree.grid_a)


@pytest.fixture
def assignment(tree, volunteer) -> Any:
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-30), hours=2)
    return factories.make_assignment(shift, volunteer)


def place(client, organiser, grid, name: str = "东门", lat: float = LAT0, lon: float = LON0) -> Any:
    return client.post(
        checkpoints_url(grid.id), json={"name": name, "lat": lat, "lon": lon},
        headers=factories.headers_for(organiser),
    )


@pytest.fixture
def checkpoint(client, tree, organiser) -> dict[str, Any]:
    response = place(client, organiser, tree.grid_a)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def scan(client, volunteer, assignment, payload: str, *, client_id: str | None = None, **changes: Any) -> Any:
    body = {
        "client_id": client_id or str(uuid.uuid4()),
        "payload": payload,
        "lat": LAT0,
        "lon": LON0,
        "accuracy_m": 10.0,
        "device_time": (utcnow() - timedelta(minutes=5)).isoformat(),
        **changes,
    }
    return client.post(scans_url(assignment.id), json=body, headers=factories.headers_for(volunteer.user))


def scan_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(CheckpointScan))


# --- placing checkpoints -----------------------------------------------------------------------


def test_organiser_places_a_checkpoint_and_gets_a_signed_payload(client, tree, organiser, checkpoint) -> None:
    assert checkpoint["grid_id"] == tree.grid_a.id and checkpoint["name"] == "东门"
    assert checkpoint["active"] is True and checkpoint["qr_version"] == 1
    assert PAYLOAD.match(checkpoint["qr_payload"])
    assert checkpoint["qr_payload"].startswith(f"SW1.{checkpoint['id']}.1.")
    fetched = client.get(f"/api/v1/checkpoints/{checkpoint['id']}", headers=factories.headers_for(organiser))
    assert fetched.get_json() == checkpoint
    listed = client.get(checkpoints_url(tree.grid_a.id), headers=factories.headers_for(organiser)).get_json()
    assert [item["id"] for item in listed["items"]] == [checkpoint["id"]]


def test_checkpoint_just_outside_the_grid_is_accepted_far_outside_refused(client, tree, organiser) -> None:
    # The grid's west edge is 109.84; 0.001° of longitude is about 85 m here.
    assert place(client, organiser, tree.grid_a, lon=109.839).status_code == 201
    response = place(client, organiser, tree.grid_a, lon=109.83)
    body = assert_problem(response, 422, "checkpoint_outside_grid")
    assert "lon" in body["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkpoint)) == 1


def test_placing_refusals(client, tree, organiser, volunteer) -> None:
    outsider = factories.make_user("organiser", tree.community_b)
    assert_problem(place(client, outsider, tree.grid_a), 403, "out_of_scope")
    assert_problem(place(client, volunteer.user, tree.grid_a), 403, "forbidden")
    assert_problem(place(client, organiser, tree.community_a), 422, "not_a_grid")
    missing = client.post(
        checkpoints_url(999_999), json={"name": "x", "lat": LAT0, "lon": LON0},
        headers=factories.headers_for(organiser),
    )
    assert_problem(missing, 404, "area_not_found")
    assert_problem(place(client, organiser, tree.grid_a, lat=91), 422, "validation_failed")
    assert_problem(place(client, organiser, tree.grid_a, name="  "), 422, "validation_failed")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkpoint)) == 0


def test_other_subtree_may_not_read_or_change_a_checkpoint(client, tree, checkpoint) -> None:
    outsider = factories.make_user("organiser", tree.community_b)
    headers = factories.headers_for(outsider)
    assert_problem(client.get(f"/api/v1/checkpoints/{checkpoint['id']}", headers=headers), 404, "checkpoint_not_found")
    assert_problem(client.post(f"/api/v1/checkpoints/{checkpoint['id']}/deactivate", headers=headers), 404, "checkpoint_not_found")
    assert_problem(client.post(f"/api/v1/checkpoints/{checkpoint['id']}/rotate-qr", headers=headers), 404, "checkpoint_not_found")
    # The grid itself is public (the area tree is), so its list is refused as out of scope.
    assert_problem(client.get(checkpoints_url(tree.grid_a.id), headers=headers), 403, "out_of_scope")
    assert db.session.get(Checkpoint, checkpoint["id"]).active is True
    assert_problem(client.get("/api/v1/checkpoints/999999", headers=headers), 404, "checkpoint_not_found")


def test_deactivated_checkpoint_is_hidden_and_its_code_refused(client, tree, organiser, volunteer, assignment, checkpoint) -> None:
    headers = factories.headers_for(organiser)
    response = client.post(f"/api/v1/checkpoints/{checkpoint['id']}/deactivate", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["active"] is False and response.get_json()["qr_payload"] is None
    assert client.post(f"/api/v1/checkpoints/{checkpoint['id']}/deactivate", headers=headers).status_code == 200
    assert client.get(checkpoints_url(tree.grid_a.id), headers=headers).get_json()["items"] == []
    listed = client.get(checkpoints_url(tree.grid_a.id) + "?include_inactive=true", headers=headers).get_json()
    assert [item["id"] for item in listed["items"]] == [checkpoint["id"]]
    assert_problem(scan(client, volunteer, assignment, checkpoint["qr_payload"]), 422, "checkpoint_inactive")
    assert scan_count() == 0


# --- signed payloads ---------------------------------------------------------------------------


def _tamper(payload: str) -> list[str]:
    prefix, checkpoint_id, version, mac = payload.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    return [
        f"{prefix}.{checkpoint_id}.{version}.{flipped}",  # altered MAC
        f"{prefix}.{int(checkpoint_id) + 1}.{version}.{mac}",  # another checkpoint's id
        f"{prefix}.{checkpoint_id}.{int(version) + 1}.{mac}",  # a version not issued
        f"SW2.{checkpoint_id}.{version}.{mac}",
        f"{prefix}.{checkpoint_id}.{version}.{mac[:-1]}",
        f"{prefix}.99999999999.{version}.{mac}",
        "not a checkpoint",
    ]


def test_forged_or_altered_payloads_are_refused(client, tree, organiser, volunteer, assignment, checkpoint) -> None:
    place(client, organiser, tree.grid_a, name="西门")  # so the next id exists
    for forged in _tamper(checkpoint["qr_payload"]):
        response = scan(client, volunteer, assignment, forged)
        body = assert_problem(response, 422, "qr_invalid")
        assert "payload" in body["errors"], forged
    assert scan_count() == 0
    assert db.session.scalar(sa.select(Patrol).where(Patrol.assignment_id == assignment.id)) is None


def test_payload_signed_with_another_key_is_refused(app, client, volunteer, assignment, checkpoint) -> None:
    app.config["CHECKPOINT_QR_KEY"] = "a-dedicated-key"
    try:
        assert_problem(scan(client, volunteer, assignment, checkpoint["qr_payload"]), 422, "qr_invalid")
    finally:
        app.config["CHECKPOINT_QR_KEY"] = None
    assert scan(client, volunteer, assignment, checkpoint["qr_payload"]).status_code == 201


def test_rotating_revokes_the_old_payload(client, organiser, volunteer, assignment, checkpoint) -> None:
    rotated = client.post(f"/api/v1/checkpoints/{checkpoint['id']}/rotate-qr", headers=factories.headers_for(organiser))
    assert rotated.status_code == 200
    new = rotated.get_json()
    assert new["qr_version"] == 2 and new["qr_payload"] != checkpoint["qr_payload"]
    assert_problem(scan(client, volunteer, assignment, checkpoint["qr_payload"]), 422, "qr_invalid")
    assert scan(client, volunteer, assignment, new["qr_payload"]).status_code == 201


# --- scans -------------------------------------------------------------------------------------


def test_scan_is_recorded_before_check_in_with_position(client, volunteer, assignment, checkpoint) -> None:
    response = scan(client, volunteer, assignment, checkpoint["qr_payload"], lat=LAT0 + 0.0002)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["checkpoint_id"] == checkpoint["id"] and body["assignment_id"] == assignment.id
    assert body["flags"] == [] and body["distance_m"] == pytest.approx(22.2, abs=0.2)
    patrol = db.session.scalar(sa.select(Patrol).where(Patrol.assignment_id == assignment.id))
    assert patrol.id == body["patrol_id"] and patrol.presence_status is None
    stored = db.session.get(CheckpointScan, body["id"])
    assert stored.received_at >= stored.device_at


def test_same_client_id_returns_the_original_scan(client, tree, organiser, volunteer, assignment, checkpoint) -> None:
    client_id = str(uuid.uuid4())
    first = scan(client, volunteer, assignment, checkpoint["qr_payload"], client_id=client_id)
    other = place(client, organiser, tree.grid_a, name="西门").get_json()
    replay = scan(client, volunteer, assignment, other["qr_payload"], client_id=client_id, lat=LAT0 + 0.001)
    assert replay.status_code == 201
    assert replay.get_json() == first.get_json()
    assert scan_count() == 1


def test_client_id_of_another_assignment_is_409(client, tree, volunteer, assignment, checkpoint) -> None:
    client_id = str(uuid.uuid4())
    scan(client, volunteer, assignment, checkpoint["qr_payload"], client_id=client_id)
    other = factories.make_volunteer(tree.grid_a)
    other_assignment = factories.make_assignment(
        factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-10)), other
    )
    response = scan(client, other, other_assignment, checkpoint["qr_payload"], client_id=client_id)
    assert_problem(response, 409, "client_id_reused")
    assert scan_count() == 1


def test_idempotency_key_replays_a_scan(client, volunteer, assignment, checkpoint) -> None:
    body = {
        "client_id": str(uuid.uuid4()), "payload": checkpoint["qr_payload"], "lat": LAT0, "lon": LON0,
        "device_time": utcnow().isoformat(),
    }
    headers = factories.headers_for(volunteer.user, **{"Idempotency-Key": "scan-1"})
    first = client.post(scans_url(assignment.id), json=body, headers=headers)
    replay = client.post(scans_url(assignment.id), json=body, headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.get_json() == first.get_json()
    assert scan_count() == 1


def test_scan_far_from_the_checkpoint_is_flagged_not_dropped(client, volunteer, assignment, checkpoint) -> None:
    response = scan(client, volunteer, assignment, checkpoint["qr_payload"], lat=LAT0 + 0.004, accuracy_m=20)
    assert response.status_code == 201
    assert response.get_json()["flags"] == ["far_from_checkpoint"]


def test_checkpoint_of_another_grid_is_refused(client, tree, organiser, volunteer, assignment) -> None:
    east = place(client, organiser, tree.grid_a_east, lon=109.855).get_json()
    assert_problem(scan(client, volunteer, assignment, east["qr_payload"]), 422, "checkpoint_other_grid")
    assert scan_count() == 0


def test_scan_outside_the_shift_is_refused(client, volunteer, assignment, checkpoint) -> None:
    when = (assignment.shift.ends_at + timedelta(hours=2)).isoformat()
    body = assert_problem(scan(client, volunteer, assignment, checkpoint["qr_payload"], device_time=when), 422, "scan_outside_shift")
    assert "device_time" in body["errors"]
    assert scan_count() == 0


def test_scan_refusals_by_caller_and_input(client, tree, organiser, volunteer, assignment, checkpoint) -> None:
    other = factories.make_volunteer(tree.grid_a)
    assert_problem(scan(client, other, assignment, checkpoint["qr_payload"]), 404, "assignment_not_found")
    response = client.post(
        scans_url(assignment.id),
        json={"client_id": str(uuid.uuid4()), "payload": checkpoint["qr_payload"], "lat": LAT0, "lon": LON0,
              "device_time": utcnow().isoformat()},
        headers=factories.headers_for(organiser),
    )
    assert_problem(response, 403, "forbidden")
    assert_problem(scan(client, volunteer, assignment, checkpoint["qr_payload"], lat=-91), 422, "validation_failed")
    assert_problem(scan(client, volunteer, assignment, checkpoint["qr_payload"], client_id="nope"), 422, "validation_failed")
    assignment.status = "removed"
    db.session.flush()
    assert_problem(scan(client, volunteer, assignment, checkpoint["qr_payload"]), 409, "assignment_not_active")
    assert scan_count() == 0


# --- summary -----------------------------------------------------------------------------------


def test_summary_lists_visited_and_missed_checkpoints(client, tree, organiser, volunteer, assignment, checkpoint) -> None:
    west = place(client, organiser, tree.grid_a, name="西门", lon=109.841).get_json()
    gone = place(client, organiser, tree.grid_a, name="旧岗").get_json()
    client.post(f"/api/v1/checkpoints/{gone['id']}/deactivate", headers=factories.headers_for(organiser))
    scan(client, volunteer, assignment, checkpoint["qr_payload"])
    scan(client, volunteer, assignment, checkpoint["qr_payload"], lat=LAT0 + 0.01)
    client.post(
        f"/api/v1/assignments/{assignment.id}/track",
        json={"points": [
            {"lat": LAT0, "lon": LON0, "time": (utcnow() - timedelta(minutes=10)).isoformat()},
            {"lat": LAT0 + 0.001, "lon": LON0, "time": (utcnow() - timedelta(minutes=9)).isoformat()},
        ]},
        headers=factories.headers_for(volunteer.user),
    )
    body = client.get(summary_url(assignment.id), headers=factories.headers_for(volunteer.user)).get_json()
    assert body["track_point_count"] == 2 and body["distance_m"] == pytest.approx(111.2, abs=0.2)
    assert [(v["checkpoint_id"], v["scans"], v["flagged"]) for v in body["visited"]] == [(checkpoint["id"], 2, True)]
    assert body["missed"] == [{"checkpoint_id": west["id"], "name": "西门"}]
    scans = client.get(scans_url(assignment.id), headers=factories.headers_for(organiser)).get_json()
    assert len(scans["items"]) == 2


def test_summary_without_any_patrol_event(client, volunteer, assignment, checkpoint) -> None:
    body = client.get(summary_url(assignment.id), headers=factories.headers_for(volunteer.user)).get_json()
    assert body["patrol_id"] is None and body["distance_m"] == 0 and body["visited"] == []
    assert [m["checkpoint_id"] for m in body["missed"]] == [checkpoint["id"]]
    assert db.session.scalar(sa.select(Patrol).where(Patrol.assignment_id == assignment.id)) is None


def test_summary_scope(client, tree, organiser, assignment) -> None:
    assert client.get(summary_url(assignment.id), headers=factories.headers_for(organiser)).status_code == 200
    outsider = factories.make_user("organiser", tree.community_b)
    assert_problem(client.get(summary_url(assignment.id), headers=factories.headers_for(outsider)), 404, "assignment_not_found")
    stranger = factories.make_volunteer(tree.grid_a)
    assert_problem(client.get(summary_url(assignment.id), headers=factories.headers_for(stranger.user)), 404, "assignment_not_found")
    assert_problem(client.get(scans_url(assignment.id), headers=factories.headers_for(stranger.user)), 404, "assignment_not_found")


# --- a scan sent with the check-in -------------------------------------------------------------


def check_in_with_scan(client, volunteer, assignment, payload: str, client_id: str | None = None) -> Any:
    body = {
        "client_id": client_id or str(uuid.uuid4()),
        "lat": LAT0,
        "lon": LON0,
        "accuracy_m": 10.0,
        "device_time": (utcnow() - timedelta(minutes=1)).isoformat(),
        "checkpoint_payload": payload,
    }
    return client.post(
        f"/api/v1/assignments/{assignment.id}/check-in", json=body, headers=factories.headers_for(volunteer.user)
    )


def test_check_in_with_a_scan_records_both_once(client, organiser, volunteer, assignment, checkpoint) -> None:
    client_id = str(uuid.uuid4())
    first = check_in_with_scan(client, volunteer, assignment, checkpoint["qr_payload"], client_id)
    again = check_in_with_scan(client, volunteer, assignment, checkpoint["qr_payload"], client_id)

    assert first.status_code == again.status_code == 200, first.get_json()
    assert first.get_json()["presence_status"] == "verified" and again.get_json() == first.get_json()
    [stored] = db.session.scalars(sa.select(CheckpointScan)).all()
    assert (stored.checkpoint_id, stored.client_id, stored.flags) == (checkpoint["id"], client_id, [])
    assert stored.patrol_id == first.get_json()["id"]
    body = client.get(summary_url(assignment.id), headers=factories.headers_for(organiser)).get_json()
    assert [(v["checkpoint_id"], v["scans"]) for v in body["visited"]] == [(checkpoint["id"], 1)]
    assert body["missed"] == []


def test_check_in_with_a_forged_or_foreign_scan_records_nothing(client, tree, organiser, volunteer, assignment, checkpoint) -> None:
    forged = checkpoint["qr_payload"][:-2] + ("AA" if not checkpoint["qr_payload"].endswith("AA") else "BB")
    other_grid = place(client, factories.make_user("organiser", tree.community_b), tree.grid_b,
                       lat=40.625, lon=109.805).get_json()

    refused_forged = check_in_with_scan(client, volunteer, assignment, forged)
    refused_foreign = check_in_with_scan(client, volunteer, assignment, other_grid["qr_payload"])

    body = assert_problem(refused_forged, 422, "qr_invalid")
    assert "checkpoint_payload" in body["errors"]
    assert_problem(refused_foreign, 422, "checkpoint_other_grid")
    assert scan_count() == 0
    assert db.session.scalars(sa.select(Patrol).where(Patrol.assignment_id == assignment.id)).all() == []
    # The phone may then check in without the scan.
    assert check_in_with_scan(client, volunteer, assignment, checkpoint["qr_payload"]).status_code == 200
