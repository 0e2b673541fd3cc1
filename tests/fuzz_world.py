"""A small city with something of every kind in it, for the API fuzz to aim at.

Two communities in different districts (A: 东河区 东站社区, B: 昆都仑区 友谊社区), each with its
volunteers and managers, shifts with places, a patrol under way with its presence, a report with a
photo, a checkpoint, an open SOS, a repeating series, a catalogue item and a redemption, a swap proposed,
a device, a broadcast and the notifications it made. The fuzz's callers live in A, so B's ids are
the ones they may not reach. Built through the API wherever the API makes it, so what the fuzz
meets is what clients make.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from PIL import Image

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from grids.models import Area
from rewards.catalogue.models import CatalogueItem
from rewards.ledger import service as ledger
from tests import factories
from tests.conftest import Tree

API = "/api/v1"

#: The callers the fuzz sends every request as; None sends no token.
ROLES = ("volunteer", "organiser", "staff", "admin", "anonymous")

#: Where each kind of id comes from, by the name it has in a path, query or body.
_ID_SOURCES: dict[str, str] = {
    "area_id": "SELECT id FROM areas",
    "parent_id": "SELECT id FROM areas",
    "city_id": "SELECT id FROM areas WHERE level = 'city'",
    "grid_id": "SELECT id FROM areas WHERE level = 'grid'",
    "home_grid_id": "SELECT id FROM areas WHERE level = 'grid'",
    "user_id": "SELECT id FROM users",
    "assignee_id": "SELECT id FROM users",
    "volunteer_id": "SELECT id FROM volunteers",
    "to_volunteer_id": "SELECT id FROM volunteers",
    "shift_id": "SELECT id FROM shifts",
    "series_id": "SELECT id FROM shift_series",
    "assignment_id": "SELECT id FROM shift_assignments",
    "to_assignment_id": "SELECT id FROM shift_assignments",
    "swap_id": "SELECT id FROM shift_swaps",
    "patrol_id": "SELECT id FROM patrols",
    "checkpoint_id": "SELECT id FROM checkpoints",
    "report_id": "SELECT id FROM patrol_reports",
    "photo_id": "SELECT id FROM patrol_report_photos",
    "device_id": "SELECT id FROM devices",
    "notification_id": "SELECT id FROM notifications",
    "up_to_id": "SELECT id FROM notifications",
    "broadcast_id": "SELECT id FROM broadcasts",
    "entry_id": "SELECT id FROM ledger_entries",
    "item_id": "SELECT id FROM catalogue_items",
    "redemption_id": "SELECT id FROM redemptions",
    "certificate_id": "SELECT id FROM certificates",
    "sos_id": "SELECT id FROM sos_alerts",
    "issuer_area_id": "SELECT id FROM areas WHERE level <> 'grid'",
}


@dataclass
class World:
    tree: Tree
    #: Authorization headers by role (an empty dict for "anonymous").
    headers: dict[str, dict[str, str]]
    #: Real ids by the name a parameter or body field gives them.
    ids: dict[str, list[Any]] = field(default_factory=dict)


def _inside(grid: Area) -> dict[str, float]:
    return {"lat": (grid.min_lat + grid.max_lat) / 2, "lon": (grid.min_lon + grid.max_lon) / 2}


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (30, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, (response.request.path, response.status_code, response.get_json())
    return response.get_json()


class _Community:
    """Everything one community holds; ``volunteer`` is the fuzz's caller in community A."""

    def __init__(self, client: FlaskClient, admin: User, city: Area, district: Area, community: Area, grid: Area) -> None:
        self.client, self.grid = client, grid
        self.volunteer = factories.make_volunteer(grid, real_name="王芳")
        self.peer = factories.make_volunteer(grid, real_name="李强")
        self.organiser = factories.make_user("organiser", community)
        self.staff = factories.make_user("staff", district)
        self.headers = {
            "volunteer": factories.headers_for(self.volunteer.user),
            "peer": factories.headers_for(self.peer.user),
            "organiser": factories.headers_for(self.organiser),
            "staff": factories.headers_for(self.staff),
            "admin": factories.headers_for(admin),
        }
        self._plan(community)
        self._patrol()
        self._report()
        self._rewards(district)
        self._certificates(community)
        self._phone()
        self._sos()

    def post(self, who: str, path: str, body: Any = None, status: int = 201, **kwargs: Any) -> dict[str, Any]:
        response = self.client.post(f"{API}{path}", json=body, headers=self.headers[who], **kwargs)
        return _ok(response, status)

    def _plan(self, community: Area) -> None:
        soon = factories.make_shift(self.grid, starts_in=timedelta(days=2), max_headcount=3, backup_slots=1)
        later = factories.make_shift(self.grid, starts_in=timedelta(days=3), max_headcount=3)
        place = self.post("organiser", f"/shifts/{soon.id}/assign", {"volunteer_id": self.volunteer.id})["id"]
        factories.make_assignment(later, self.peer)
        self.post("volunteer", "/swap-requests", {"assignment_id": place, "to_volunteer_id": self.peer.id})
        monday = date.today() + timedelta(days=7 - date.today().weekday())
        self.post("organiser", "/shift-series", {
            "grid_id": self.grid.id, "rrule": "FREQ=WEEKLY;BYDAY=MO,WE", "starts_on": monday.isoformat(),
            "start_time": "19:00", "end_time": "21:00", "title": "夜巡", "max_headcount": 2,
        })
        self.post("organiser", "/broadcasts", {"area_id": community.id, "title": "今晚需要增援", "body": "还差两名志愿者"})

    def _sos(self) -> None:
        """The peer's SOS, open on the grid (alerting its organiser)."""
        self.post("peer", "/me/sos", {"client_id": str(uuid.uuid4()), **_inside(self.grid), "accuracy_m": 12,
                                      "device_time": (utcnow() - timedelta(minutes=1)).isoformat(), "note": "求助"})

    def _patrol(self) -> None:
        under_way = factories.make_shift(self.grid, starts_in=timedelta(minutes=-20), hours=2)
        self.place = factories.make_assignment(under_way, self.volunteer)
        self.post("organiser", f"/areas/{self.grid.id}/checkpoints", {"name": "东门", **_inside(self.grid)})
        check_in = {"client_id": str(uuid.uuid4()), **_inside(self.grid), "accuracy_m": 10,
                    "device_time": (utcnow() - timedelta(minutes=15)).isoformat()}
        self.post("volunteer", f"/assignments/{self.place.id}/check-in", check_in, status=200)

    def _report(self) -> None:
        report = self.post("volunteer", "/reports", {
            "client_id": str(uuid.uuid4()), "category": "safety_hazard", "level": "orange",
            "description": "井盖缺失", **_inside(self.grid), "accuracy_m": 8.0,
            "device_time": (utcnow() - timedelta(minutes=3)).isoformat(),
        })
        response = self.client.post(
            f"{API}/reports/{report['id']}/photos",
            data={"client_id": str(uuid.uuid4()), "file": (io.BytesIO(_jpeg()), "p.jpg")},
            content_type="multipart/form-data", headers=self.headers["volunteer"],
        )
        _ok(response)

    def _rewards(self, district: Area) -> None:
        ledger.append(self.volunteer.id, 200, "served_shift", "patrol", uuid.uuid4().hex)
        item = CatalogueItem(area_id=district.id, name="保温杯", description="", points_cost=30, stock=5, active=True)
        db.session.add(item)
        db.session.flush()
        for _ in range(2):  # one stays requested, one is approved
            redemption = self.post("volunteer", f"/catalogue-items/{item.id}/redemptions", {"client_id": str(uuid.uuid4())})
        self.post("staff", f"/redemptions/{redemption['id']}/approve", {}, status=200)

    def _certificates(self, community: Area) -> None:
        """Hours entered last week; one certificate issued (its number public), one still asked for."""
        served_on = (date.today() - timedelta(days=2)).isoformat()
        self.post("organiser", "/service-hours", {"volunteer_id": self.volunteer.id, "served_on": served_on,
                                                  "minutes": 90, "note": "交通疏导"})
        for days, issue in ((7, True), (6, False)):
            period = {"first_day": (date.today() - timedelta(days=days)).isoformat(), "last_day": date.today().isoformat()}
            asked = self.post("volunteer", "/me/certificates", {"issuer_area_id": community.id, **period})
            if issue:
                self.number = self.post("organiser", f"/certificates/{asked['id']}/issue", {}, status=200)["number"]

    def _phone(self) -> None:
        self.post("volunteer", "/me/devices", {"token": f"fcm-{uuid.uuid4().hex}", "platform": "android"})
        self.feed = self.post("volunteer", "/me/calendar-feed")["url"].rsplit("/", 1)[1].removesuffix(".ics")


def build_world(client: FlaskClient, tree: Tree) -> World:
    admin = factories.make_user("admin", tree.city)
    rules = {"effective_from": (utcnow() - timedelta(days=30)).isoformat(), "points_per_hour": 10,
             "rounding_minutes": 15, "report_bonus": {"red": 20, "orange": 10, "yellow": 5, "green": 2}}
    _ok(client.post(f"{API}/areas/{tree.city.id}/point-rules", json=rules, headers=factories.headers_for(admin)))
    a = _Community(client, admin, tree.city, tree.district_a, tree.community_a, tree.grid_a)
    b = _Community(client, admin, tree.city, tree.district_b, tree.community_b, tree.grid_b)
    world = World(tree=tree, headers={
        "volunteer": a.headers["volunteer"],
        "organiser": a.headers["organiser"],
        "staff": a.headers["staff"],
        "admin": a.headers["admin"],
        "anonymous": {},
    })
    for name, query in _ID_SOURCES.items():
        world.ids[name] = list(db.session.scalars(sa.text(f"{query} ORDER BY id")))
        assert world.ids[name], f"the world has no {name}"
    world.ids["token"] = [a.feed, b.feed]
    world.ids["number"] = [a.number, b.number]
    return world

