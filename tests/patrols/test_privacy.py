"""Location under PIPL: the separate consent to tracking, refused uploads, deleting one's track,
the log of reads of someone's track and the staff's view of it, the export's location sections.
(The export: ``test_privacy_export.py``; retention: ``test_retention.py``; races: ``test_privacy_races.py``.)"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from patrols.models import Patrol
from patrols.privacy.models import LocationConsent
from patrols.tracks.models import TrackPoint
from tests import factories
from tests.problems import EN, assert_problem

API = "/api/v1"
CONSENT = f"{API}/me/location-consent"
TRACK_POINTS = f"{API}/me/track-points"
ACCESS = f"{API}/location-access"
LAT0, LON0 = 40.655, 109.845  # inside tree.grid_a
TERMS = "2026-12"


def as_(who: Any, **extra: str) -> dict[str, str]:
    return {**factories.headers_for(getattr(who, "user", who)), **EN, **extra}


def walk(start: Any, count: int, *, north: float = 0.0) -> list[dict[str, Any]]:
    return [
        {"lat": LAT0 + north + i * 0.0001, "lon": LON0, "accuracy_m": 8.0, "time": (start + timedelta(seconds=10 * i)).isoformat()}
        for i in range(count)
    ]


def upload(client: Any, volunteer: Any, assignment: Any, points: list[dict[str, Any]]) -> Any:
    return client.post(f"{API}/assignments/{assignment.id}/track", json={"points": points}, headers=as_(volunteer))


def points_of(volunteer: Any) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(TrackPoint)
        .join(Patrol, Patrol.id == TrackPoint.patrol_id)
        .where(Patrol.volunteer_id == volunteer.id)
    )


def audit_actions(volunteer: Any) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.target_type == "volunteer", AuditEntry.target_id == str(volunteer.id))
            .order_by(AuditEntry.id)
        )
    )


def on_shift(grid: Any, *, consent: bool = True) -> tuple[Any, Any, Any]:
    shift = factories.make_shift(grid, starts_in=timedelta(minutes=-30), hours=2)
    volunteer = factories.make_volunteer(grid, location_consent=consent)
    return shift, volunteer, factories.make_assignment(shift, volunteer)


# --- consent -----------------------------------------------------------------------------------


def test_consent_is_granted_once_withdrawn_at_once_and_its_history_kept(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, location_consent=False)
    state = client.get(CONSENT, headers=as_(volunteer)).get_json()
    assert state == {
        "granted": False, "version": None, "granted_at": None, "current_version": TERMS,
        "up_to_date": False, "history": [],
    }

    granted = client.post(CONSENT, json={"version": TERMS}, headers=as_(volunteer))
    assert granted.status_code == 200
    state = granted.get_json()
    assert state["granted"] is True and state["version"] == TERMS and state["up_to_date"] is True
    assert state["history"] == [{"version": TERMS, "granted_at": state["granted_at"], "withdrawn_at": None}]
    # Granting again changes nothing: the same consent, one row, one audit entry.
    again = client.post(CONSENT, json={"version": TERMS}, headers=as_(volunteer))
    assert again.status_code == 200 and again.get_json() == state

    withdrawn = client.delete(CONSENT, headers=as_(volunteer))
    assert withdrawn.status_code == 200
    after = withdrawn.get_json()
    assert after["granted"] is False and after["version"] is None and after["up_to_date"] is False
    assert after["history"][0]["granted_at"] == state["granted_at"] and after["history"][0]["withdrawn_at"]
    # Withdrawing without a consent in force is a no-op with the same answer.
    repeat = client.delete(CONSENT, headers=as_(volunteer))
    assert repeat.status_code == 200 and repeat.get_json() == after

    regranted = client.post(CONSENT, json={"version": TERMS}, headers=as_(volunteer)).get_json()
    assert regranted["granted"] is True and len(regranted["history"]) == 2
    assert regranted["history"][1] == after["history"][0]  # newest first; the old grant unchanged
    assert audit_actions(volunteer) == ["location_consent.grant", "location_consent.withdraw", "location_consent.grant"]
    # The registration's privacy consent is another one, and stays.
    db.session.refresh(volunteer)
    assert volunteer.consent_version is not None and volunteer.consented_at is not None


def test_a_grant_must_name_the_current_terms(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, location_consent=False)
    refused = client.post(CONSENT, json={"version": "2025-01"}, headers=as_(volunteer))
    body = assert_problem(refused, 422, "location_terms_outdated")
    assert "version" in body["errors"]
    for bad in ({}, {"version": ""}, {"version": "x" * 33}, {"version": 7}):
        assert client.post(CONSENT, json=bad, headers=as_(volunteer)).status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LocationConsent)) == 0
    assert audit_actions(volunteer) == []


def test_a_consent_to_older_terms_is_replaced_by_one_to_the_current(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, location_consent=False)
    db.session.add(LocationConsent(volunteer_id=volunteer.id, version="2025-06"))
    db.session.flush()
    before = client.get(CONSENT, headers=as_(volunteer)).get_json()
    assert before["granted"] is True and before["version"] == "2025-06" and before["up_to_date"] is False

    state = client.post(CONSENT, json={"version": TERMS}, headers=as_(volunteer)).get_json()
    assert state["version"] == TERMS and state["up_to_date"] is True
    assert [(row["version"], row["withdrawn_at"] is None) for row in state["history"]] == [
        (TERMS, True), ("2025-06", False)
    ]


def test_consent_and_deletion_are_for_volunteers_only(client, tree) -> None:
    for role, area in (("organiser", tree.community_a), ("staff", tree.district_a), ("admin", tree.city)):
        user = factories.make_user(role, area)
        for method, url in (("get", CONSENT), ("post", CONSENT), ("delete", CONSENT), ("delete", TRACK_POINTS)):
            kwargs = {"json": {"version": TERMS}} if method == "post" else {}
            assert_problem(getattr(client, method)(url, headers=as_(user), **kwargs), 403, "forbidden")
    assert client.get(CONSENT).status_code == 401


# --- uploads need the consent ------------------------------------------------------------------


def test_an_upload_without_consent_is_refused_and_nothing_stored(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a, consent=False)
    refused = upload(client, volunteer, assignment, walk(shift.starts_at, 3))
    assert_problem(refused, 403, "location_consent_required")
    assert points_of(volunteer) == 0
    # Someone else's assignment stays a 404, consent or not: nothing is told about it.
    _shift, other, others = on_shift(tree.grid_a)
    assert_problem(upload(client, volunteer, others, walk(shift.starts_at, 1)), 404, "assignment_not_found")
    assert points_of(other) == 0


def test_withdrawal_stops_collection_at_once_but_not_check_in(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a)
    recorded_offline = walk(shift.starts_at + timedelta(minutes=5), 3, north=0.001)
    assert upload(client, volunteer, assignment, walk(shift.starts_at, 4)).status_code == 200
    assert client.delete(CONSENT, headers=as_(volunteer)).status_code == 200

    # A batch the phone recorded before the withdrawal and delivers after it is refused too.
    assert_problem(upload(client, volunteer, assignment, recorded_offline), 403, "location_consent_required")
    assert points_of(volunteer) == 4
    # Check-in still records its one position (verifying presence for the service relation).
    check_in = client.post(
        f"{API}/assignments/{assignment.id}/check-in",
        json={
            "client_id": str(uuid.uuid4()), "lat": LAT0, "lon": LON0, "accuracy_m": 10,
            "device_time": utcnow().isoformat(),
        },
        headers=as_(volunteer),
    )
    assert check_in.status_code == 200 and check_in.get_json()["check_in"]["lat"] == LAT0
    # Granting again lets the phone send what it kept.
    assert client.post(CONSENT, json={"version": TERMS}, headers=as_(volunteer)).status_code == 200
    assert upload(client, volunteer, assignment, recorded_offline).get_json()["stored"] == 3


# --- deleting one's track ----------------------------------------------------------------------


def test_deleting_own_track_points_keeps_the_summaries(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a)
    second = factories.make_assignment(factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-20)), volunteer)
    _other_shift, other, others = on_shift(tree.grid_a)
    first_summary = upload(client, volunteer, assignment, walk(shift.starts_at, 5)).get_json()
    upload(client, volunteer, second, walk(shift.starts_at + timedelta(minutes=15), 2))
    upload(client, other, others, walk(shift.starts_at, 3))

    answer = client.delete(TRACK_POINTS, headers=as_(volunteer))
    assert answer.status_code == 200
    assert answer.get_json()["deleted"] == 7
    assert points_of(volunteer) == 0 and points_of(other) == 3
    track = client.get(f"{API}/assignments/{assignment.id}/track", headers=as_(volunteer)).get_json()
    assert track["purged"] is True and track["features"] == []
    assert (track["distance_m"], track["track_point_count"]) == (first_summary["distance_m"], 5)

    assert client.delete(TRACK_POINTS, headers=as_(volunteer)).get_json()["deleted"] == 0
    assert audit_actions(volunteer) == ["track_points.delete", "track_points.delete"]
    # The consent is another matter: deleting the points leaves it in force.
    assert client.get(CONSENT, headers=as_(volunteer)).get_json()["granted"] is True


def test_a_volunteer_without_a_profile_is_told_so(client, tree) -> None:
    user = factories.make_user("volunteer", tree.grid_a)
    assert_problem(client.get(CONSENT, headers=as_(user)), 404, "volunteer_not_found")
    assert_problem(client.delete(TRACK_POINTS, headers=as_(user)), 404, "volunteer_not_found")


# --- the access log ----------------------------------------------------------------------------


def read_track(client: Any, who: Any, assignment: Any) -> Any:
    return client.get(f"{API}/assignments/{assignment.id}/track", headers=as_(who))


def location_entries() -> list[AuditEntry]:
    return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action.startswith("location.")).order_by(AuditEntry.id)))


def test_reading_someone_elses_track_is_logged_and_ones_own_is_not(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a)
    upload(client, volunteer, assignment, walk(shift.starts_at, 2))
    assert read_track(client, volunteer, assignment).status_code == 200
    assert location_entries() == []

    organiser = factories.make_user("organiser", tree.community_a)
    assert read_track(client, organiser, assignment).status_code == 200
    [entry] = location_entries()
    assert (entry.actor_id, entry.actor_role, entry.action) == (organiser.id, "organiser", "location.track_read")
    assert (entry.target_type, entry.target_id) == ("volunteer", str(volunteer.id))
    assert entry.area_path == tree.grid_a.path and entry.after == {"assignment_id": assignment.id}
    # Out of reach it is a 404, and nothing was read, so nothing is logged.
    stranger = factories.make_user("organiser", tree.community_b)
    assert_problem(read_track(client, stranger, assignment), 404, "assignment_not_found")
    assert len(location_entries()) == 1


@pytest.fixture
def reads(client, tree) -> dict[str, Any]:
    """Tracks read: Ann's in grid A by organiser A (twice) and staff A, Bo's in grid B by organiser B."""
    made: dict[str, Any] = {}
    _shift, made["ann"], ann_place = on_shift(tree.grid_a)
    _shift_b, made["bo"], bo_place = on_shift(tree.grid_b)
    made["organiser_a"] = factories.make_user("organiser", tree.community_a, display_name="王组织")
    made["organiser_b"] = factories.make_user("organiser", tree.community_b)
    made["staff_a"] = factories.make_user("staff", tree.district_a)
    for who, place in (
        ("organiser_a", ann_place), ("staff_a", ann_place), ("organiser_b", bo_place), ("organiser_a", ann_place),
    ):
        assert read_track(client, made[who], place).status_code == 200
    made["ann_place"] = ann_place
    # The volunteer's own choices are audited too, but they are no reads of positions.
    client.delete(CONSENT, headers=as_(made["ann"]))
    return made


def test_staff_read_the_log_of_their_area_newest_first(client, tree, reads) -> None:
    page = client.get(ACCESS, headers=as_(reads["staff_a"])).get_json()
    assert page["next_cursor"] is None
    items = page["items"]
    assert [item["reader"]["user_id"] for item in items] == [
        reads["organiser_a"].id, reads["staff_a"].id, reads["organiser_a"].id
    ]
    first = items[0]
    assert first["action"] == "track_read" and first["what"] == {"assignment_id": reads["ann_place"].id}
    assert first["reader"] == {"user_id": reads["organiser_a"].id, "role": "organiser", "name": "王组织"}
    assert first["volunteer"] == {"volunteer_id": reads["ann"].id, "name": reads["ann"].real_name}
    assert first["area_path"] == tree.grid_a.path and first["at"]

    city = client.get(ACCESS, headers=as_(factories.make_user("admin", tree.city))).get_json()["items"]
    assert len(city) == 4


def test_the_log_filters_and_pages(client, tree, reads) -> None:
    admin = as_(factories.make_user("admin", tree.city))

    def ids(**query: Any) -> list[int]:
        answer = client.get(ACCESS, query_string=query, headers=admin)
        assert answer.status_code == 200, answer.get_json()
        return [item["id"] for item in answer.get_json()["items"]]

    everything = ids()
    assert len(ids(volunteer_id=reads["bo"].id)) == 1
    assert len(ids(volunteer_id=reads["ann"].id)) == 3
    assert len(ids(actor_id=reads["organiser_a"].id)) == 2
    assert ids(actor_id=reads["organiser_a"].id, volunteer_id=reads["bo"].id) == []
    at = {entry.id: entry.at for entry in location_entries()}
    newest = everything[0]
    assert ids(since=at[newest].isoformat()) == [e for e in everything if at[e] >= at[newest]]
    assert newest not in ids(until=at[newest].isoformat())

    first = client.get(ACCESS, query_string={"limit": 3}, headers=admin).get_json()
    rest = client.get(ACCESS, query_string={"limit": 3, "cursor": first["next_cursor"]}, headers=admin).get_json()
    assert [i["id"] for i in first["items"] + rest["items"]] == everything and rest["next_cursor"] is None
    assert client.get(ACCESS, query_string={"volunteer_id": "x"}, headers=admin).status_code == 422
    assert client.get(ACCESS, query_string={"since": "2026-01-01T00:00:00"}, headers=admin).status_code == 422


def test_only_staff_and_admins_read_the_log(client, tree, reads) -> None:
    for who in (reads["organiser_a"], reads["ann"]):
        assert_problem(client.get(ACCESS, headers=as_(who)), 403, "forbidden")
    assert client.get(ACCESS).status_code == 401


def test_a_sibling_districts_reads_stay_out_of_the_log(client, tree) -> None:
    # District ids whose paths are string prefixes of each other: /…/9100002/ and /…/91000023/.
    near = factories.make_area(AreaLevel.DISTRICT, tree.city, area_id=9_100_002)
    sibling = factories.make_area(AreaLevel.DISTRICT, tree.city, area_id=91_000_023)
    assert sibling.path.startswith(near.path.rstrip("/"))
    places = {}
    for district, lon in ((near, 109.90), (sibling, 109.93)):
        sub = factories.make_area(AreaLevel.SUBDISTRICT, district)
        community = factories.make_area(AreaLevel.COMMUNITY, sub)
        grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(lon, 40.65))
        _shift, volunteer, assignment = on_shift(grid)
        read_track(client, factories.make_user("organiser", community), assignment)
        places[district.id] = volunteer
    staff = factories.make_user("staff", near)
    items = client.get(ACCESS, headers=as_(staff)).get_json()["items"]
    assert [item["volunteer"]["volunteer_id"] for item in items] == [places[near.id].id]
    # Filtering by the sibling's volunteer tells nothing either.
    hidden = client.get(ACCESS, query_string={"volunteer_id": places[sibling.id].id}, headers=as_(staff))
    assert hidden.get_json() == {"items": [], "next_cursor": None}


def test_phone_writes_replay_with_their_idempotency_key(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, location_consent=False)
    key = {"Idempotency-Key": "consent-1"}
    first = client.post(CONSENT, json={"version": TERMS}, headers=as_(volunteer, **key))
    again = client.post(CONSENT, json={"version": TERMS}, headers=as_(volunteer, **key))
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json() == first.get_json()
    assert_problem(
        client.post(CONSENT, json={"version": "2025-01"}, headers=as_(volunteer, **key)), 409, "idempotency_key_reused"
    )
    deleted = client.delete(TRACK_POINTS, headers=as_(volunteer, **{"Idempotency-Key": "wipe-1"}))
    replayed = client.delete(TRACK_POINTS, headers=as_(volunteer, **{"Idempotency-Key": "wipe-1"}))
    assert replayed.headers.get("Idempotent-Replayed") == "true" and replayed.get_json() == deleted.get_json()
    assert audit_actions(volunteer) == ["location_consent.grant", "track_points.delete"]
