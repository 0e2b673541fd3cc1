"""An SOS through the API, read back from the inboxes (GET /me/notifications): the alert reaches the
grid's organisers and the volunteers on duty nearby, each escalation the staff it reaches, the
answer the raiser, the end everyone alerted but the one who ended it; each once, all urgent."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from patrols.privacy import retention
from patrols.sos.escalation import escalate_due
from patrols.sos.models import SosAlert
from tests import factories
from tests.conftest import Tree
from volunteers.models import Volunteer

API = "/api/v1"
LAT, LON = 40.653, 109.845  # inside tree.grid_a


def inbox(client: FlaskClient, user: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/me/notifications", headers=factories.headers_for(getattr(user, "user", user)))
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def kinds(client: FlaskClient, user: Any) -> list[str]:
    return [item["kind"] for item in inbox(client, user)]


def raise_sos(client: FlaskClient, volunteer: Volunteer, **extra: Any) -> int:
    body = {
        "client_id": str(uuid.uuid4()), "lat": LAT, "lon": LON, "accuracy_m": 9.0,
        "device_time": utcnow().isoformat(), **extra,
    }  # fmt: skip
    response = client.post(f"{API}/me/sos", json=body, headers=factories.headers_for(volunteer.user))
    assert response.status_code == 201, response.get_json()
    sos_id: int = response.get_json()["id"]
    return sos_id


def post(client: FlaskClient, user: Any, path: str, body: dict[str, Any]) -> None:
    response = client.post(f"{API}{path}", json=body, headers=factories.headers_for(getattr(user, "user", user)))
    assert response.status_code == 200, response.get_json()


def on_duty_nearby(client: FlaskClient, tree: Tree) -> Volunteer:
    """A volunteer checked in, through the API, 100 m from the SOS on a shift under way."""
    person = factories.make_volunteer(tree.grid_a, real_name="王五")
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-20), hours=2)
    assignment = factories.make_assignment(shift, person)
    response = client.post(
        f"{API}/assignments/{assignment.id}/check-in",
        json={"client_id": str(uuid.uuid4()), "lat": LAT + 0.0009, "lon": LON, "accuracy_m": 10,
              "device_time": utcnow().isoformat()},
        headers=factories.headers_for(person.user),
    )  # fmt: skip
    assert response.status_code == 200, response.get_json()
    return person


@pytest.fixture
def world(client: FlaskClient, tree: Tree) -> dict[str, Any]:
    return {
        "volunteer": factories.make_volunteer(tree.grid_a, real_name="李四"),
        "organiser": factories.make_user("organiser", tree.community_a, display_name="赵六"),
        "sibling_organiser": factories.make_user("organiser", tree.community_a2),
        "staff": factories.make_user("staff", tree.district_a),
        "city_staff": factories.make_user("staff", tree.city),
        "other_staff": factories.make_user("staff", tree.district_b),
        "nearby": on_duty_nearby(client, tree),
    }


def escalate(sos_id: int) -> int:
    """Run the escalation at the moment the SOS is due, as beat would."""
    due = db.session.get_one(SosAlert, sos_id, populate_existing=True).escalate_at
    assert due is not None
    return escalate_due(now=due)


def test_an_sos_is_in_the_inboxes_of_the_organisers_and_those_on_duty_nearby(
    client: FlaskClient, tree: Tree, world: dict[str, Any]
) -> None:
    sos_id = raise_sos(client, world["volunteer"], note="有人跟踪我")

    for who in ("organiser", "nearby"):
        (item,) = inbox(client, world[who])
        assert item["kind"] == "sos_alert" and item["urgent"] is True
        assert item["data"] == {
            "type": "sos_alert", "sos_id": str(sos_id), "lat": str(LAT), "lon": str(LON), "level": "community",
        }  # fmt: skip
        assert "李四" in item["title"] and "有人跟踪我" in item["body"] and tree.grid_a.name in item["body"]
    for who in ("volunteer", "sibling_organiser", "staff", "city_staff", "other_staff"):
        assert kinds(client, world[who]) == [], who


def test_each_escalation_reaches_its_level_once(client: FlaskClient, world: dict[str, Any]) -> None:
    sos_id = raise_sos(client, world["volunteer"])

    assert escalate(sos_id) == 1
    assert escalate_due(now=utcnow()) == 0  # beat again before the next step is due: nothing
    assert kinds(client, world["staff"]) == ["sos_escalated"]
    (item,) = inbox(client, world["staff"])
    assert item["data"]["level"] == "district" and item["urgent"] is True
    assert kinds(client, world["city_staff"]) == []

    assert escalate(sos_id) == 1
    assert kinds(client, world["city_staff"]) == ["sos_escalated"]
    assert inbox(client, world["city_staff"])[0]["data"]["level"] == "city"
    # Everyone still has exactly one alert; the other district hears nothing.
    assert kinds(client, world["staff"]) == ["sos_escalated"]
    assert kinds(client, world["organiser"]) == ["sos_alert"]
    assert kinds(client, world["other_staff"]) == []


def test_the_raiser_hears_who_answered_and_how(client: FlaskClient, world: dict[str, Any]) -> None:
    volunteer = world["volunteer"]
    volunteer.user.locale = "en"
    sos_id = raise_sos(client, volunteer)

    post(client, world["organiser"], f"/sos/{sos_id}/acknowledge", {"response": "going"})
    post(client, world["nearby"], f"/sos/{sos_id}/acknowledge", {"response": "handled"})

    handled, going = inbox(client, volunteer)  # newest first
    assert (going["kind"], going["urgent"], going["body"]) == (
        "sos_acknowledged",
        True,
        "赵六 (organiser) is on the way to you.",
    )
    assert going["data"] == {"type": "sos_acknowledged", "sos_id": str(sos_id), "response": "going"}
    assert handled["body"] == "王五 (volunteer) has handled your SOS."
    # Neither is told of their own answer; nobody else hears of it.
    assert kinds(client, world["organiser"]) == ["sos_alert"]
    assert kinds(client, world["nearby"]) == ["sos_alert"]


def test_a_close_tells_everyone_alerted_but_the_one_who_closed_it_and_the_raiser_who_closed_it(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    sos_id = raise_sos(client, world["volunteer"])
    escalate(sos_id)

    post(client, world["organiser"], f"/sos/{sos_id}/close", {"note": "已送医"})

    for who in ("nearby", "staff"):
        ended = inbox(client, world[who])[0]
        assert ended["kind"] == "sos_ended" and ended["urgent"] is True
        assert ended["data"] == {"type": "sos_ended", "sos_id": str(sos_id), "status": "closed"}
        assert "已送医" in ended["body"] and "赵六" in ended["body"]
    assert kinds(client, world["organiser"]) == ["sos_alert"]
    assert kinds(client, world["city_staff"]) == []  # never alerted, nothing to stand down from
    (own,) = inbox(client, world["volunteer"])  # the raiser learns who closed it, and why
    assert own["kind"] == "sos_ended" and own["urgent"] is True
    assert own["data"] == {"type": "sos_ended", "sos_id": str(sos_id), "status": "closed"}
    assert "赵六" in own["body"] and "已送医" in own["body"] and "李四" not in own["body"]


def test_a_false_alarm_called_off_tells_everyone_alerted(client: FlaskClient, world: dict[str, Any]) -> None:
    sos_id = raise_sos(client, world["volunteer"])

    post(client, world["volunteer"], f"/me/sos/{sos_id}/cancel", {})

    assert kinds(client, world["organiser"]) == ["sos_ended", "sos_alert"]
    assert kinds(client, world["nearby"]) == ["sos_ended", "sos_alert"]
    assert inbox(client, world["organiser"])[0]["data"]["status"] == "cancelled"
    assert kinds(client, world["volunteer"]) == []


def test_retention_takes_an_ended_sos_position_out_of_its_alerts_deep_links(
    client: FlaskClient, tree: Tree, world: dict[str, Any]
) -> None:
    sos_id = raise_sos(client, world["volunteer"])
    escalate(sos_id)
    other = raise_sos(client, factories.make_volunteer(tree.grid_a))  # live: its position stays
    post(client, world["organiser"], f"/sos/{sos_id}/close", {"note": "已送医"})
    ended = db.session.get_one(SosAlert, sos_id, populate_existing=True).ended_at
    assert ended is not None
    days = timedelta(days=client.application.config["SOS_POSITION_RETENTION_DAYS"])

    assert retention.purge_sos_positions(ended + days) == 0  # exactly at its time: kept
    assert {item["data"]["sos_id"]: item["data"].get("lat") for item in inbox(client, world["organiser"])
            if item["kind"] == "sos_alert"} == {str(sos_id): str(LAT), str(other): str(LAT)}  # fmt: skip
    assert retention.purge_sos_positions(ended + days + timedelta(microseconds=1)) == 1

    alerts = {
        item["data"]["sos_id"]: item["data"]
        for item in inbox(client, world["organiser"])
        if item["kind"] == "sos_alert"
    }
    assert alerts[str(sos_id)] == {"type": "sos_alert", "sos_id": str(sos_id), "level": "community"}
    assert alerts[str(other)]["lat"] == str(LAT) and alerts[str(other)]["lon"] == str(LON)
    (escalated,) = [item for item in inbox(client, world["staff"]) if item["kind"] == "sos_escalated"]
    assert escalated["data"] == {"type": "sos_escalated", "sos_id": str(sos_id), "level": "district"}
    # The notifications themselves, and the stand-down, stay.
    assert kinds(client, world["nearby"]) == ["sos_ended", "sos_alert", "sos_alert"]
