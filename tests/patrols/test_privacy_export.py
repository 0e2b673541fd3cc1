"""The location sections of the personal-data export: consents, tracks kept, SOS, who read them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from core.db import utcnow
from core.extensions import db
from patrols.sos.models import SosAlert, SosEvent, SosPosition
from tests import factories
from tests.patrols.test_privacy import (
    API,
    CONSENT,
    LAT0,
    LON0,
    TERMS,
    TRACK_POINTS,
    as_,
    on_shift,
    read_track,
    upload,
    walk,
)

# --- the personal-data export ------------------------------------------------------------------


def sos_for(volunteer: Any, grid: Any, *, ended: bool = True) -> SosAlert:
    now = utcnow()
    alert = SosAlert(
        volunteer_id=volunteer.id, client_id=str(uuid.uuid4()), device_at=now - timedelta(hours=1),
        received_at=now - timedelta(hours=1), lat=LAT0, lon=LON0, accuracy_m=12.0, note="有人落水",
        grid_id=grid.id, area_path=grid.path, located_by="position",
        status="cancelled" if ended else "open", level="community",
        ended_at=now - timedelta(minutes=30) if ended else None,
    )
    db.session.add(alert)
    db.session.flush()
    db.session.add_all([
        SosEvent(sos_id=alert.id, kind="raised", actor_id=volunteer.user_id, at=alert.received_at),
        SosEvent(sos_id=alert.id, kind="alerted", at=alert.received_at, data={"user_ids": [1, 2]}),
        SosPosition(sos_id=alert.id, device_at=alert.device_at + timedelta(seconds=5), lat=LAT0 + 0.001, lon=LON0),
    ])
    db.session.flush()
    return alert


def test_the_export_holds_consents_tracks_sos_and_who_read_them(client, tree) -> None:
    shift, volunteer, assignment = on_shift(tree.grid_a)
    _other_shift, other, others = on_shift(tree.grid_a)
    upload(client, volunteer, assignment, walk(shift.starts_at, 3))
    upload(client, other, others, walk(shift.starts_at, 2))
    alert = sos_for(volunteer, tree.grid_a)
    sos_for(other, tree.grid_a, ended=False)
    organiser = factories.make_user("organiser", tree.community_a, display_name="王组织")
    read_track(client, organiser, assignment)
    read_track(client, organiser, others)
    client.delete(CONSENT, headers=as_(volunteer))

    sections = client.get(f"{API}/volunteers/me/export", headers=as_(volunteer)).get_json()["sections"]
    [consent] = sections["location_consents"]
    assert consent["version"] == TERMS and consent["withdrawn_at"] is not None
    [track] = sections["track_points"]
    assert track["assignment_id"] == assignment.id and track["shift_id"] == shift.id
    assert [point["lat"] for point in track["points"]] == pytest.approx([LAT0, LAT0 + 0.0001, LAT0 + 0.0002])
    assert set(track["points"][0]) == {"time", "received_at", "lat", "lon", "accuracy_m"}
    [sos] = sections["sos"]
    assert (sos["id"], sos["status"], sos["level"], sos["note"], sos["lat"]) == (alert.id, "cancelled", "community", "有人落水", LAT0)
    assert [event["kind"] for event in sos["events"]] == ["raised", "alerted"]
    assert "data" not in sos["events"][1]  # whom it alerted is their data, not the volunteer's
    assert [position["lat"] for position in sos["positions"]] == [pytest.approx(LAT0 + 0.001)]
    [read] = sections["location_access_log"]
    assert read["action"] == "track_read" and read["what"] == {"assignment_id": assignment.id}
    assert read["reader"] == {"user_id": organiser.id, "role": "organiser", "name": "王组织"}

    # Once deleted, the track is no longer in the export.
    client.delete(TRACK_POINTS, headers=as_(volunteer))
    again = client.get(f"{API}/volunteers/me/export", headers=as_(volunteer)).get_json()["sections"]
    assert again["track_points"] == []
