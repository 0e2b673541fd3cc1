"""SOS races with real commits on separate connections (SQLite and PostgreSQL): two raises at once,
an acknowledgement racing the escalation, two escalation runs at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.extensions import db
from patrols.sos.escalation import escalate_due
from patrols.sos.models import SosAlert, SosEvent, SosRecipient
from tests import factories, races

pytestmark = pytest.mark.committing

API = "/api/v1"
LAT, LON = 40.655, 109.845


def sos_body(client_id: str | None = None) -> dict[str, Any]:
    return {
        "client_id": client_id or str(uuid.uuid4()), "lat": LAT, "lon": LON, "accuracy_m": 10.0,
        "device_time": utcnow().isoformat(),
    }


def setup_people(app: Flask) -> dict[str, Any]:
    """A volunteer, an organiser over their grid and the district's staff: their headers and ids."""
    with app.app_context():
        _city, district, _subdistrict, community, grid = factories.make_branch()
        volunteer = factories.make_volunteer(grid)
        organiser = factories.make_user("organiser", community)
        staff = factories.make_user("staff", district)
        people = {
            "volunteer": factories.headers_for(volunteer.user), "volunteer_id": volunteer.id,
            "organiser": factories.headers_for(organiser), "organiser_id": organiser.id, "staff_id": staff.id,
        }
        db.session.commit()
        db.session.remove()
    return people


def read(app: Flask, query: Callable[[], Any]) -> Any:
    with app.app_context():
        try:
            return query()
        finally:
            db.session.remove()


def alerts(app: Flask, volunteer_id: int) -> list[tuple[int, str, str]]:
    return read(app, lambda: db.session.execute(
        sa.select(SosAlert.id, SosAlert.status, SosAlert.level).where(SosAlert.volunteer_id == volunteer_id)
    ).tuples().all())


def kinds(app: Flask, sos_id: int) -> list[str]:
    return read(app, lambda: list(db.session.scalars(
        sa.select(SosEvent.kind).where(SosEvent.sos_id == sos_id).order_by(SosEvent.id)
    )))


def raise_one(app: Flask, people: dict[str, Any]) -> int:
    response = app.test_client().post(f"{API}/me/sos", json=sos_body(), headers=people["volunteer"])
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def make_due(app: Flask, sos_id: int) -> Any:
    """Bring the SOS's escalation forward to a minute ago; returns the instant to run at."""
    def update() -> Any:
        due = utcnow() - timedelta(minutes=1)
        db.session.execute(sa.update(SosAlert).where(SosAlert.id == sos_id).values(escalate_at=due))
        db.session.commit()
        return due

    return read(app, update)


def escalate_in_own_context(app: Flask, now: Any) -> Callable[[], int]:
    def run() -> int:
        with app.app_context():
            try:
                return escalate_due(now)
            finally:
                db.session.remove()

    return run


def test_two_raises_at_once_leave_one_live_sos(app: Flask) -> None:
    people = setup_people(app)
    responses = races.at_once(app, [("POST", f"{API}/me/sos", sos_body(), people["volunteer"]) for _ in range(6)])
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 5
    assert {r.get_json()["code"] for r in responses if r.status_code == 409} == {"sos_already_live"}
    [(sos_id, status, _level)] = alerts(app, people["volunteer_id"])
    assert status == "open"
    assert kinds(app, sos_id) == ["raised", "alerted"]


def test_the_same_sos_sent_at_once_is_one_sos(app: Flask) -> None:
    people = setup_people(app)
    body = sos_body()
    responses = races.at_once(app, [("POST", f"{API}/me/sos", body, people["volunteer"]) for _ in range(6)])
    assert sorted(response.status_code for response in responses) == [200] * 5 + [201]
    assert len({response.get_json()["id"] for response in responses}) == 1
    assert len(alerts(app, people["volunteer_id"])) == 1


@pytest.mark.parametrize("round_", range(3))
def test_an_acknowledgement_racing_the_escalation_leaves_a_consistent_sos(app: Flask, round_: int) -> None:
    people = setup_people(app)
    sos_id = raise_one(app, people)
    now = make_due(app, sos_id) + timedelta(seconds=1)
    client = app.test_client()
    gate = races.barrier(2)

    def ack() -> Any:
        gate.wait()
        return client.post(f"{API}/sos/{sos_id}/acknowledge", json={"response": "going"}, headers=people["organiser"])

    def escalate() -> int:
        gate.wait()
        return escalate_in_own_context(app, now)()

    answer, steps = races.run_threads([ack, escalate])
    assert answer.status_code == 200, answer.get_json()
    [(_id, status, level)] = alerts(app, people["volunteer_id"])
    assert status == "acknowledged"
    row = read(app, lambda: db.session.execute(
        sa.select(SosAlert.escalate_at, SosAlert.acknowledged_at).where(SosAlert.id == sos_id)
    ).one())
    assert row.escalate_at is None and row.acknowledged_at is not None
    events = kinds(app, sos_id)
    # Either the escalation came first (one step, then the acknowledgement) or it found nothing due.
    assert (steps, level, events.count("escalated")) in ((1, "district", 1), (0, "community", 0))
    assert events.count("acknowledged") == 1
    # Nothing is due any more: a later run changes nothing.
    assert escalate_in_own_context(app, now + timedelta(hours=1))() == 0


def test_two_escalation_runs_at_once_make_each_step_once(app: Flask) -> None:
    people = setup_people(app)
    sos_ids = [raise_one(app, setup_people(app) if i else people) for i in range(3)]
    now = max(make_due(app, sos_id) for sos_id in sos_ids) + timedelta(seconds=1)
    gate = races.barrier(4)

    def run() -> int:
        gate.wait()
        return escalate_in_own_context(app, now)()

    steps = races.run_threads([run] * 4)
    assert sum(steps) == 3
    for sos_id in sos_ids:
        assert kinds(app, sos_id).count("escalated") == 1
    levels = read(app, lambda: set(db.session.scalars(sa.select(SosAlert.level).where(SosAlert.id.in_(sos_ids)))))
    assert levels == {"district"}
    staff = read(app, lambda: db.session.execute(
        sa.select(SosRecipient.sos_id, SosRecipient.user_id).where(SosRecipient.reason == "staff")
    ).tuples().all())
    assert len(staff) == 3 and len(set(staff)) == 3
