"""A scripted offline day: everything the phone queued arrives late, out of order and twice.

The phone checks in, records 300 track points, scans two checkpoints, files a report and checks
out, all without network; hours later it sends the queue in a scrambled order, and then again.
The end state must be exactly one served patrol with the right minutes, points and scans.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from patrols import signals
from patrols.checkpoints.models import CheckpointScan
from patrols.models import Patrol
from patrols.reports.models import Report
from patrols.tracks.models import TrackPoint
from tests import factories

API = "/api/v1"
#: The demo grid square is 0.01° a side from (109.84, 40.65): walk inside it.
LON, LAT = 109.842, 40.652


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _queued_events(
    assignment_id: int, start: datetime, payloads: list[str], report: dict[str, Any] | None
) -> list[tuple[str, str, dict[str, Any]]]:
    """(idempotency key, path, body) of every request the phone queued, in the order it made them."""
    base = f"{API}/assignments/{assignment_id}"

    def event(minute: float) -> dict[str, Any]:
        return {
            "client_id": str(uuid.uuid4()),
            "lat": LAT + minute * 0.00002,
            "lon": LON + minute * 0.00002,
            "accuracy_m": 8,
            "device_time": _iso(start + timedelta(minutes=minute)),
        }

    queue = [(str(uuid.uuid4()), f"{base}/check-in", event(2))]
    points = [
        {
            "lat": LAT + i * 0.00001,
            "lon": LON + (i % 10) * 0.00001,
            "accuracy_m": 6,
            "time": _iso(start + timedelta(minutes=3, seconds=20 * i)),
        }
        for i in range(300)
    ]
    for first in range(0, 300, 100):
        queue.append((str(uuid.uuid4()), f"{base}/track", {"points": points[first : first + 100]}))
    for minute, payload in zip((30, 60), payloads, strict=True):
        scan = event(minute) | {"payload": payload}
        queue.append((str(uuid.uuid4()), f"{base}/checkpoint-scans", scan))
    if report is not None:
        queue.append((str(uuid.uuid4()), f"{API}/reports", report))
    queue.append((str(uuid.uuid4()), f"{base}/check-out", event(110)))
    return queue


def test_an_offline_day_arrives_scrambled_and_twice_and_counts_once(client, tree) -> None:
    start = (utcnow() - timedelta(hours=5)).replace(second=0, microsecond=0)
    shift = factories.make_shift(tree.grid_a, starts_in=start - utcnow(), hours=2)
    volunteer = factories.make_volunteer(tree.grid_a)
    assignment = factories.make_assignment(shift, volunteer)
    organiser = factories.make_user("organiser", tree.community_a)
    payloads = []
    for name, (lon, lat) in (("东门", (109.843, 40.653)), ("菜市场", (109.846, 40.656))):
        created = client.post(
            f"{API}/areas/{tree.grid_a.id}/checkpoints",
            json={"name": name, "lat": lat, "lon": lon},
            headers=factories.headers_for(organiser),
        )
        assert created.status_code == 201, created.get_json()
        payloads.append(created.get_json()["qr_payload"])
    report = {
        "client_id": str(uuid.uuid4()), "category": "safety_hazard", "level": "orange",
        "description": "河堤护栏松动，夜间有人靠近。", "lat": LAT + 0.001, "lon": LON + 0.001,
        "accuracy_m": 10, "device_time": _iso(start + timedelta(minutes=45)),
        "assignment_id": assignment.id,
    }
    queue = _queued_events(assignment.id, start, payloads, report=report)
    served: list[dict[str, Any]] = []
    filed: list[dict[str, Any]] = []
    record: Callable[..., None] = lambda _sender, **kwargs: served.append(kwargs)  # noqa: E731
    record_report: Callable[..., None] = lambda _sender, **kwargs: filed.append(kwargs)  # noqa: E731
    headers = factories.headers_for(volunteer.user)

    with signals.shift_served.connected_to(record), signals.report_filed.connected_to(record_report):
        for round_number in range(2):
            order = list(queue)
            random.Random(round_number).shuffle(order)
            if round_number == 0:
                order.sort(key=lambda item: not item[1].endswith("check-out"))  # check-out first
            for key, path, body in order:
                # The second time round without the header: the client UUIDs and the points'
                # device times alone must keep every effect single.
                sent = {**headers, "Idempotency-Key": key} if round_number == 0 else headers
                response = client.post(path, json=body, headers=sent)
                assert response.status_code in (200, 201), (path, response.get_json())

    patrols = db.session.scalars(sa.select(Patrol).where(Patrol.assignment_id == assignment.id)).all()
    assert len(patrols) == 1
    patrol = patrols[0]
    assert patrol.presence_status == "verified"
    assert patrol.served_minutes == 108  # checked in at +2 min, out at +110 min, inside the shift
    assert patrol.track_point_count == 300
    assert db.session.scalar(
        sa.select(sa.func.count()).select_from(TrackPoint).where(TrackPoint.patrol_id == patrol.id)
    ) == 300
    scans = db.session.scalars(sa.select(CheckpointScan).where(CheckpointScan.patrol_id == patrol.id)).all()
    assert len(scans) == 2
    assert [event["served_minutes"] for event in served] == [108]
    reports = db.session.scalars(sa.select(Report).where(Report.volunteer_id == volunteer.id)).all()
    assert len(reports) == 1 and reports[0].level == "orange" and reports[0].grid_id == tree.grid_a.id
    assert [event["report_id"] for event in filed] == [reports[0].id]
    summary = client.get(f"{API}/assignments/{assignment.id}/patrol/summary", headers=headers).get_json()
    assert len(summary["visited"]) == 2 and summary["missed"] == []
    assert summary["distance_m"] > 0
