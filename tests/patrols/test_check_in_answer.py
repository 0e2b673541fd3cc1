"""The check-in's answer is the patrol as stored: its own columns are not read back from the database
(``patrols/presence/service.py``, the upsert's short ``RETURNING``), so the answer must still say
exactly what ``GET …/patrol`` says afterwards, whatever the row held before the check-in."""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone
from typing import Any

from core.db import utcnow
from tests import factories
from tests.patrols.test_presence import INSIDE, as_, check_in, check_out, event, on_shift

API = "/api/v1"
BEIJING = timezone(timedelta(hours=8))


def stored(client: Any, volunteer: Any, assignment: Any) -> dict[str, Any]:
    response = client.get(f"{API}/assignments/{assignment.id}/patrol", headers=as_(volunteer))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_answer_is_the_patrol_as_stored(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    # The phone's clock in Beijing time, an accuracy without a fraction: stored and shown in UTC.
    body = event(utcnow().astimezone(BEIJING) - timedelta(seconds=3), accuracy_m=12)

    response = check_in(client, volunteer, assignment, body)

    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["check_in"]["device_time"].endswith("+00:00")
    assert answer == stored(client, volunteer, assignment)


def test_a_track_before_the_check_in_is_in_the_answer(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    start = utcnow() - timedelta(minutes=5)
    points = [
        {"lat": INSIDE[0] + i * 0.0001, "lon": INSIDE[1], "accuracy_m": 8.0,
         "time": (start + timedelta(seconds=20 * i)).isoformat()}
        for i in range(5)
    ]  # fmt: skip
    track = client.post(
        f"{API}/assignments/{assignment.id}/track", json={"points": points}, headers=factories.headers_for(volunteer.user)
    )
    assert track.status_code == 200, track.get_json()

    answer = check_in(client, volunteer, assignment, event()).get_json()

    assert answer["track_point_count"] == 5 and answer["distance_m"] > 0
    assert answer == stored(client, volunteer, assignment)


def test_a_check_out_before_the_check_in_is_in_the_answer(client, tree) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    assert check_out(client, volunteer, assignment, event(client_id=str(uuid.uuid4()))).status_code == 200

    answer = check_in(client, volunteer, assignment, event(utcnow() - timedelta(minutes=1))).get_json()

    assert answer["check_out"] is not None and answer["served_minutes"] is not None
    assert answer == stored(client, volunteer, assignment)
