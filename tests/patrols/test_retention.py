"""Retention per kind of positional data, at the exact edges: a row one microsecond past its time is
gone, one microsecond short of it stays, and the summaries stay either way."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from core.tasks import celery
from patrols.checkpoints.models import Checkpoint, CheckpointScan
from patrols.models import Patrol
from patrols.privacy import retention
from patrols.service import patrol_for
from patrols.sos.models import SosAlert, SosEvent, SosPosition
from patrols.tracks.models import TrackPoint
from tests import factories
from tests.problems import EN

API = "/api/v1"
LAT0, LON0 = 40.655, 109.845
NOW = datetime.fromisoformat("2026-12-07T04:00:00.500000+00:00")
US = timedelta(microseconds=1)


def ended_at(setting: str, offset: timedelta) -> datetime:
    """A moment ``offset`` after the cutoff of ``setting`` at NOW (negative: before, so past its time)."""
    return NOW - timedelta(days=_config(setting)) + offset


def _config(setting: str) -> int:
    from flask import current_app

    return int(current_app.config[setting])


def shift_ending(grid: Any, ends: datetime) -> Any:
    shift = factories.make_shift(grid)
    shift.starts_at, shift.ends_at = ends - timedelta(hours=2), ends
    db.session.flush()
    return shift


def patrol_on(grid: Any, ends: datetime, *, status: str = "verified", points: int = 0) -> Patrol:
    shift = shift_ending(grid, ends)
    volunteer = factories.make_volunteer(grid)
    patrol = patrol_for(factories.make_assignment(shift, volunteer))
    start = shift.starts_at
    patrol.check_in_client_id, patrol.check_in_device_at, patrol.check_in_received_at = str(uuid.uuid4()), start, start
    patrol.check_in_lat, patrol.check_in_lon, patrol.check_in_accuracy_m = LAT0, LON0, 9.0
    patrol.check_out_client_id, patrol.check_out_device_at, patrol.check_out_received_at = str(uuid.uuid4()), ends, ends
    patrol.check_out_lat, patrol.check_out_lon, patrol.check_out_accuracy_m = LAT0, LON0, 11.0
    patrol.check_in_flags = ["poor_accuracy"] if status != "verified" else []
    patrol.presence_status, patrol.served_minutes = status, 120
    for i in range(points):
        db.session.add(TrackPoint(
            patrol_id=patrol.id, device_at=start + timedelta(seconds=10 * i), received_at=start,
            lat=LAT0 + i * 0.0001, lon=LON0, accuracy_m=5.0,
        ))
    patrol.distance_m, patrol.track_point_count = 11.1 * max(points - 1, 0), points
    db.session.flush()
    return patrol


def points_of(patrol: Patrol) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(TrackPoint).where(TrackPoint.patrol_id == patrol.id))


# --- tracks ------------------------------------------------------------------------------------


def test_track_points_go_one_microsecond_past_their_time_and_the_summary_stays(client, tree) -> None:
    past = patrol_on(tree.grid_a, ended_at("TRACK_RETENTION_DAYS", -US), points=3)
    edge = patrol_on(tree.grid_a, ended_at("TRACK_RETENTION_DAYS", timedelta(0)), points=2)
    kept = patrol_on(tree.grid_a, ended_at("TRACK_RETENTION_DAYS", US), points=2)

    assert retention.purge_track_points(NOW) == 3
    assert retention.purge_track_points(NOW) == 0
    db.session.expire_all()
    assert (points_of(past), points_of(edge), points_of(kept)) == (0, 2, 2)
    assert (past.distance_m, past.track_point_count) == (pytest.approx(22.2), 3)
    volunteer = db.session.get(Patrol, past.id).assignment.volunteer
    track = client.get(f"{API}/assignments/{past.assignment_id}/track", headers=factories.headers_for(volunteer.user)).get_json()
    assert track["purged"] is True and track["track_point_count"] == 3


def test_track_purge_works_through_batches(tree) -> None:
    patrols = [patrol_on(tree.grid_a, ended_at("TRACK_RETENTION_DAYS", -timedelta(days=i + 1)), points=2) for i in range(5)]
    assert retention.purge_track_points(NOW, batch_size=2) == 10
    assert all(points_of(patrol) == 0 for patrol in patrols)


# --- presence positions ------------------------------------------------------------------------


def scan_on(patrol: Patrol, grid: Any) -> CheckpointScan:
    checkpoint = Checkpoint(grid_id=grid.id, name="东门", lat=LAT0, lon=LON0, active=True, qr_version=1)
    db.session.add(checkpoint)
    db.session.flush()
    scan = CheckpointScan(
        patrol_id=patrol.id, checkpoint_id=checkpoint.id, client_id=str(uuid.uuid4()),
        device_at=patrol.check_in_device_at, received_at=patrol.check_in_device_at, lat=LAT0, lon=LON0,
        accuracy_m=7.0, distance_m=3.2, flags=[],
    )
    db.session.add(scan)
    db.session.flush()
    return scan


def test_presence_positions_clear_past_their_time_once_presence_is_decided(client, tree) -> None:
    setting = "PRESENCE_POSITION_RETENTION_DAYS"
    past = patrol_on(tree.grid_a, ended_at(setting, -US), status="approved", points=2)
    scan = scan_on(past, tree.grid_a)
    kept = patrol_on(tree.grid_a, ended_at(setting, US))
    kept_scan = scan_on(kept, tree.grid_a)
    under_review = patrol_on(tree.grid_a, ended_at(setting, -timedelta(days=3)), status="needs_review")

    assert retention.purge_presence_positions(NOW) == 1
    assert retention.purge_presence_positions(NOW) == 0
    db.session.expire_all()
    assert (past.check_in_lat, past.check_in_lon, past.check_in_accuracy_m) == (None, None, None)
    assert (past.check_out_lat, past.check_out_lon, past.check_out_accuracy_m) == (None, None, None)
    assert past.positions_purged_at == NOW
    # What presence decided stays: status, flags, minutes, distances, the scan itself.
    assert (past.presence_status, past.served_minutes, past.check_in_flags) == ("approved", 120, ["poor_accuracy"])
    assert (scan.lat, scan.lon, scan.accuracy_m, scan.distance_m) == (None, None, None, 3.2)
    assert points_of(past) == 2  # tracks have their own retention
    assert (kept.check_in_lat, kept.positions_purged_at, kept_scan.lat) == (LAT0, None, LAT0)
    assert under_review.check_in_lat == LAT0 and under_review.positions_purged_at is None

    # The views cope with the cleared columns.
    manager = factories.headers_for(factories.make_user("organiser", tree.community_a))
    patrol = client.get(f"{API}/assignments/{past.assignment_id}/patrol", headers={**manager, **EN})
    assert patrol.status_code == 200, patrol.get_json()
    body = patrol.get_json()
    assert body["check_in"]["lat"] is None and body["check_in"]["flags"] == ["poor_accuracy"]
    assert body["positions_purged_at"] is not None and body["served_minutes"] == 120
    scans = client.get(f"{API}/assignments/{past.assignment_id}/checkpoint-scans", headers=manager)
    assert scans.status_code == 200, scans.get_json()
    assert [(s["lat"], s["distance_m"]) for s in scans.get_json()["items"]] == [(None, 3.2)]
    summary = client.get(f"{API}/assignments/{past.assignment_id}/patrol/summary", headers=manager)
    assert summary.status_code == 200, summary.get_json()

    # Once its review is done, the patrol under review is cleared on the next run.
    under_review.presence_status = "rejected"
    db.session.flush()
    assert retention.purge_presence_positions(NOW) == 1
    db.session.expire_all()
    assert under_review.check_in_lat is None and under_review.presence_status == "rejected"


# --- SOS positions -----------------------------------------------------------------------------


def sos_ended(volunteer: Any, grid: Any, ended: datetime | None, status: str = "closed") -> SosAlert:
    alert = SosAlert(
        volunteer_id=volunteer.id, client_id=str(uuid.uuid4()), device_at=NOW - timedelta(days=400),
        received_at=NOW - timedelta(days=400), lat=LAT0, lon=LON0, accuracy_m=12.0, grid_id=grid.id,
        area_path=grid.path, located_by="position", status=status, level="district", ended_at=ended,
    )
    db.session.add(alert)
    db.session.flush()
    db.session.add_all([
        SosEvent(sos_id=alert.id, kind="raised", at=alert.received_at),
        *[SosPosition(sos_id=alert.id, device_at=alert.device_at + timedelta(seconds=i), lat=LAT0, lon=LON0) for i in range(3)],
    ])
    db.session.flush()
    return alert


def positions_of(alert: SosAlert) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(SosPosition).where(SosPosition.sos_id == alert.id))


def test_sos_positions_go_past_their_time_and_a_live_sos_keeps_them(tree) -> None:
    setting = "SOS_POSITION_RETENTION_DAYS"
    volunteers = [factories.make_volunteer(tree.grid_a) for _ in range(4)]
    past = sos_ended(volunteers[0], tree.grid_a, ended_at(setting, -US), status="cancelled")
    kept = sos_ended(volunteers[1], tree.grid_a, ended_at(setting, US))
    live = sos_ended(volunteers[2], tree.grid_a, None, status="acknowledged")  # raised 400 days ago, still open
    edge = sos_ended(volunteers[3], tree.grid_a, ended_at(setting, timedelta(0)))

    assert retention.purge_sos_positions(NOW) == 1
    assert retention.purge_sos_positions(NOW) == 0
    db.session.expire_all()
    assert (past.lat, past.lon, past.accuracy_m, past.positions_purged_at) == (None, None, None, NOW)
    assert positions_of(past) == 0
    # The alert and its history stay.
    assert past.status == "cancelled" and past.level == "district"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SosEvent).where(SosEvent.sos_id == past.id)) == 1
    for alert in (kept, live, edge):
        assert (alert.lat, alert.positions_purged_at, positions_of(alert)) == (LAT0, None, 3)


# --- the task ----------------------------------------------------------------------------------


def test_one_task_enforces_every_kind_under_both_names(app, tree) -> None:
    now = utcnow()
    track = patrol_on(tree.grid_a, now - timedelta(days=_config("TRACK_RETENTION_DAYS") + 1), points=2)
    alert = sos_ended(factories.make_volunteer(tree.grid_a), tree.grid_a, now - timedelta(days=_config("SOS_POSITION_RETENTION_DAYS") + 1))
    assert "patrols.enforce_retention" in celery.conf.beat_schedule
    assert "patrols.purge_track_points" not in celery.conf.beat_schedule  # sent once, under the new name

    # Messages queued under the old name still run the whole retention.
    counts = celery.tasks["patrols.purge_track_points"].apply().get()
    assert counts == {"track_partitions_dropped": 0, "track_points": 2, "presence_positions": 1, "sos_positions": 1}
    db.session.expire_all()
    assert points_of(track) == 0 and track.check_in_lat is None and alert.lat is None
    assert celery.tasks["patrols.enforce_retention"].apply().get() == {
        "track_partitions_dropped": 0, "track_points": 0, "presence_positions": 0, "sos_positions": 0
    }
