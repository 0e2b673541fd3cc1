"""The overview's "needs attention" lists the live SOS of the area first (GET /sos's rows for the same
caller): raised, acknowledged or not, through the API; never an SOS that ended or one outside the
area; and reading the list logs no location read (it shows no position)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from grids.models import Area
from patrols.privacy.service import ACCESS_ACTION_PREFIX
from tests import factories
from tests.conftest import Tree
from tests.console.support import signed_in
from volunteers.models import Volunteer

API = "/api/v1"


def raise_sos(client: FlaskClient, volunteer: Volunteer, grid: Area, note: str | None = None) -> int:
    west, south = grid.boundary["coordinates"][0][0]  # the grid's corner: inside it, a little in
    response = client.post(f"{API}/me/sos", json={
        "client_id": str(uuid.uuid4()), "lat": south + 0.001, "lon": west + 0.001, "accuracy_m": 8.0,
        "device_time": (utcnow() - timedelta(minutes=7)).isoformat(), "note": note,
    }, headers=factories.headers_for(volunteer.user))  # fmt: skip
    assert response.status_code == 201, response.get_json()
    sos_id: int = response.get_json()["id"]
    return sos_id


def post(client: FlaskClient, who: Any, path: str, body: dict[str, Any]) -> None:
    response = client.post(f"{API}{path}", json=body, headers=factories.headers_for(who))
    assert response.status_code == 200, response.get_json()


def open_sos(html: str) -> list[tuple[str, str]]:
    """(SOS id, acknowledged) of the listed SOS, in order."""
    section = re.search(r'data-test="attention-open_sos">(.*?)</ul>', html, re.S)
    assert section
    return re.findall(r'data-sos="(\d+)" data-acknowledged="(true|false)"', section.group(1))


def count(html: str) -> str:
    match = re.search(r'data-test="attention-open_sos-count">([^<]*)<', html)
    assert match
    return match.group(1)


def test_live_sos_of_the_area_come_first_unanswered_before_acknowledged(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    unanswered = raise_sos(client, factories.make_volunteer(tree.grid_a, real_name="甲"), tree.grid_a, "摔伤")
    # Raised later, so newer in GET /sos's order, but someone is on it already.
    answered = raise_sos(client, factories.make_volunteer(tree.grid_a_east, real_name="乙"), tree.grid_a_east)
    post(client, organiser, f"/sos/{answered}/acknowledge", {"response": "going"})
    cancelled_by = factories.make_volunteer(tree.grid_a, real_name="丁")
    cancelled = raise_sos(client, cancelled_by, tree.grid_a)
    post(client, cancelled_by.user, f"/me/sos/{cancelled}/cancel", {})
    other_district = raise_sos(client, factories.make_volunteer(tree.grid_b, real_name="丙"), tree.grid_b)
    sibling = raise_sos(client, factories.make_volunteer(tree.grid_a2, real_name="戊"), tree.grid_a2)
    reads_before = location_reads()

    staff = factories.make_user("staff", tree.district_a)
    html = signed_in(client, staff).get("/console/overview/").get_data(as_text=True)

    assert count(html) == "3"
    assert open_sos(html) == [(str(sibling), "false"), (str(unanswered), "false"), (str(answered), "true")]
    # The first heading of the list, above the short shifts.
    assert html.index('data-test="attention-open_sos"') < html.index('data-test="attention-short_shifts"')
    item = re.search(rf'data-sos="{unanswered}".*?</li>', html, re.S)
    assert item and "甲" in item.group(0) and tree.grid_a.name in item.group(0)
    assert re.search(r'<time class="muted" datetime="[^"]+">', item.group(0))
    assert "丁" not in html and "丙" not in html  # ended; another district
    assert location_reads() == reads_before  # the list shows no position: nothing to log

    # The community's organiser sees their community's only (not the sibling community A2's).
    client.delete_cookie("console_token", path="/console/")
    html = signed_in(client, organiser).get("/console/overview/").get_data(as_text=True)
    assert open_sos(html) == [(str(unanswered), "false"), (str(answered), "true")]
    # The city's staff see both districts'.
    client.delete_cookie("console_token", path="/console/")
    html = signed_in(client, factories.make_user("staff", tree.city)).get("/console/overview/").get_data(as_text=True)
    assert {sos for sos, _ in open_sos(html)} == {str(answered), str(unanswered), str(sibling), str(other_district)}


def test_without_a_live_sos_the_heading_reads_zero(client: FlaskClient, tree: Tree) -> None:
    html = signed_in(client, factories.make_user("organiser", tree.community_a)).get("/console/overview/").get_data(as_text=True)
    assert count(html) == "0" and open_sos(html) == []


def location_reads() -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action.startswith(ACCESS_ACTION_PREFIX))
    ) or 0
