"""Ids in URLs out of the caller's reach answer exactly as ids that do not exist.

For every operation of the OpenAPI document with a record id in its path (or a record id in its
query string), and for each caller — organiser of community K, staff of district D, admin of city
C, volunteer of K — the answer for an existing record in a place the caller may not reach is
compared with the answer for an id that does not exist: status, media type, language and the
whole body (type, title, status, detail, code, errors) must be the same, ignoring only the id
itself where it appears. So a client learns nothing about records in other areas (no existence
oracle), and no name or status leaks.

The operations come from the document, so a new endpoint is covered without touching this file;
one whose id parameter names a kind of record this file does not know fails until it is added to
``KINDS`` (or, with a reason, to ``PUBLIC_PATH_PARAMS``). Every request is built valid from the
document's schemas (overrides in ``BODIES`` where a generated value is not enough), and the answer
for the missing id must show that the handler got as far as its lookup (a 404), or that the role
itself is refused (403 ``forbidden``, the same for every id): a request refused earlier (422)
would compare equal without testing anything, so that fails too. As a control, the same request
for the record *in* reach must answer differently from the missing id (the world's records are
real and reached).

The places out of reach are siblings whose paths are string prefixes of the caller's (see
``tests/test_reach.py``): community ``…/8000004/`` and ``…/80000043/``, districts ``8000002`` and
``80000023``, cities ``8000001`` and ``80000013``; a scope test comparing paths without their
trailing slash lets each sibling in and fails here.

Exceptions, by design:

- areas are public (anyone reads the tree; ``GET /areas/{id}`` needs no login), so acting on an
  area outside one's subtree (``/areas/{area_id}/…``, ``/areas/{grid_id}/checkpoints``, point
  rules, reminder settings, the area schedule) keeps 403 ``out_of_scope``: its existence is no
  secret. Area ids in query strings likewise (``area_id``, ``grid_id``, ``under``, ``parent_id``).
- volunteers see shifts anywhere in their home city (without names), so for them only shifts of
  another city are out of reach.
- the calendar feed's ``token`` is a secret, not a record id.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from PIL import Image

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel
from notifications.models import Notification
from patrols.service import patrol_for
from records.stars import service as star_levels
from rewards.awarding import service as awarding
from rewards.catalogue.models import CatalogueItem
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, LedgerReason
from tests import factories
from volunteers.models import Volunteer

NO_SUCH_ID = 2_000_000_000
HTTP_METHODS = ("get", "put", "post", "patch", "delete")

#: The caller's places and its siblings; each sibling's id is the caller's with a digit appended.
PLACES = ("home", "sibling", "district", "city")
#: Places each caller may not reach: organiser of K, staff of D, admin of C, volunteer of K.
OUT_OF_REACH = {
    "organiser": ("sibling", "district", "city"),
    "staff": ("district", "city"),
    "admin": ("city",),
    "volunteer": ("sibling", "district", "city"),
}
#: Volunteers see shifts anywhere in their home city (without names): only another city's are hidden.
VOLUNTEERS_SEE_CITY_WIDE = {"shift"}

#: Path parameters that are not ids of hidden records, and why.
PUBLIC_PATH_PARAMS = {
    "area_id": "areas are public: acting on one outside one's subtree is 403 out_of_scope",
    "grid_id": "a grid is an area: public, 403 out_of_scope outside one's subtree",
    "token": "the calendar feed's secret, not a record id (unknown or revoked: 404 for everyone)",
    "channel": "a push channel's name (fcm, hms, …), public; the vendor posts receipts there by its proof, no login",
    "number": "a certificate's number is printed on it for anyone to check (public, rate-limited; unknown: 404 for everyone)",
}
#: Query parameters naming areas (public, as above).
PUBLIC_QUERY_PARAMS = {"area_id", "grid_id", "under", "parent_id"}

#: Which record each id parameter names.
KINDS = {
    "user_id": "user",
    "volunteer_id": "volunteer",
    "shift_id": "shift",
    "series_id": "series",
    "assignment_id": "assignment",
    "swap_id": "swap",
    "patrol_id": "patrol",
    "checkpoint_id": "checkpoint",
    "report_id": "report",
    "photo_id": "photo",
    "device_id": "device",
    "notification_id": "notification",
    "broadcast_id": "broadcast",
    "entry_id": "entry",
    "item_id": "item",
    "redemption_id": "redemption",
    "export_id": "export",
    "training_id": "training",
    "evaluation_id": "evaluation",
    "service_record_id": "service_record",
    "star_level_id": "star_level",
    "star_objection_id": "star_objection",
    "certificate_id": "certificate",
    "sos_id": "sos",
    # in query strings (the audit log's filters)
    "target_id": "user",
    "actor_id": "user",
}
#: Records that belong to a user rather than an area: a manager's "own" is their own, not the home place's.
#: (An export job is its owner's alone: even the admin of its city does not reach another's.)
PERSONAL_KINDS = {"device", "notification", "export"}


# --- the world ---------------------------------------------------------------------------------------


def square_at(index: int) -> tuple[float, float]:
    return (109.70 + 0.02 * index, 40.60)


@dataclass
class Place:
    community: Area
    grid: Area
    records: dict[str, int] = field(default_factory=dict)
    volunteer: Volunteer | None = None


class World:
    """City C: district D (sub-district S: community K, and its sibling community K″) and district
    D″; a second city C″. One record of every kind in K (home), K″ (sibling), D″ (district) and C″
    (city); the callers are organiser K, staff D, admin C and a volunteer of K (the home
    records' volunteer)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        area = self.area
        city = area(AreaLevel.CITY, None, 8_000_001)
        district = area(AreaLevel.DISTRICT, city, 8_000_002)
        subdistrict = area(AreaLevel.SUBDISTRICT, district, 8_000_003)
        community = area(AreaLevel.COMMUNITY, subdistrict, 8_000_004)
        sibling = area(AreaLevel.COMMUNITY, subdistrict, 80_000_043)
        district_2 = area(AreaLevel.DISTRICT, city, 80_000_023)
        community_3 = area(AreaLevel.COMMUNITY, area(AreaLevel.SUBDISTRICT, district_2, 8_000_007), 8_000_008)
        city_2 = area(AreaLevel.CITY, None, 80_000_013)
        community_c2 = area(
            AreaLevel.COMMUNITY,
            area(AreaLevel.SUBDISTRICT, area(AreaLevel.DISTRICT, city_2, 8_000_010), 8_000_011),
            8_000_012,
        )
        assert sibling.path.startswith(community.path.rstrip("/"))
        assert district_2.path.startswith(district.path.rstrip("/"))
        assert city_2.path.startswith(city.path.rstrip("/"))
        grids = {
            "home": area(AreaLevel.GRID, community, 8_000_005, square=square_at(0)),
            "sibling": area(AreaLevel.GRID, sibling, 80_000_053, square=square_at(1)),
            "district": area(AreaLevel.GRID, community_3, 8_000_009, square=square_at(2)),
            "city": area(AreaLevel.GRID, community_c2, 8_000_014, square=square_at(3)),
        }
        communities = {"home": community, "sibling": sibling, "district": community_3, "city": community_c2}
        self.places = {name: Place(communities[name], grids[name]) for name in PLACES}
        self.admins = {"home": factories.make_user("admin", city), "city": factories.make_user("admin", city_2)}
        for name, place in self.places.items():
            self.fill(place, self.admins["city" if name == "city" else "home"])
        home = self.places["home"]
        assert home.volunteer is not None
        self.callers: dict[str, User] = {
            "organiser": db.session.get(User, home.records["user"]),
            "staff": factories.make_user("staff", district),
            "admin": self.admins["home"],
            "volunteer": home.volunteer.user,
        }

    @staticmethod
    def area(level: AreaLevel, parent: Area | None, area_id: int, square: tuple[float, float] | None = None) -> Area:
        boundary = factories.square(*square, size=0.01) if square else None
        return factories.make_area(level, parent, area_id=area_id, boundary=boundary)

    def call(self, method: str, url: str, who: User, expect: int, **kwargs: Any) -> dict[str, Any]:
        response = getattr(self.client, method)(url, headers=factories.headers_for(who), **kwargs)
        assert response.status_code == expect, (url, response.get_json())
        return response.get_json()

    def fill(self, place: Place, admin: User) -> None:
        """One record of each kind in ``place``, made as the app would make them."""
        grid, records = place.grid, place.records
        lon, lat = grid.min_lon + 0.005, grid.min_lat + 0.005
        records["user"] = factories.make_user("organiser", place.community).id
        volunteer = factories.make_volunteer(grid, real_name="甲")
        neighbour = factories.make_volunteer(grid, real_name="乙")
        place.volunteer = volunteer
        records["volunteer"] = volunteer.id
        shift = factories.make_shift(grid, starts_in=timedelta(days=2))
        assignment = factories.make_assignment(shift, volunteer)
        records["shift"], records["assignment"] = shift.id, assignment.id
        records["patrol"] = patrol_for(assignment).id
        records["swap"] = self.call(
            "post", "/api/v1/swap-requests", volunteer.user, 201,
            json={"assignment_id": assignment.id, "to_volunteer_id": neighbour.id},
        )["id"]
        records["series"] = self.call(
            "post", "/api/v1/shift-series", admin, 201,
            json={
                "grid_id": grid.id, "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=1",
                "starts_on": (date.today() + timedelta(days=10)).isoformat(),
                "start_time": "19:00", "end_time": "21:00", "title": "夜巡", "max_headcount": 3,
            },
        )["id"]
        records["checkpoint"] = self.call(
            "post", f"/api/v1/areas/{grid.id}/checkpoints", admin, 201, json={"name": "东门", "lat": lat, "lon": lon}
        )["id"]
        report = self.call(
            "post", "/api/v1/reports", volunteer.user, 201,
            json={
                "client_id": str(uuid.uuid4()), "category": "safety_hazard", "level": "yellow",
                "description": "井盖缺失", "lat": lat, "lon": lon, "accuracy_m": 8.0,
                "device_time": (utcnow() - timedelta(minutes=3)).isoformat(), "grid_id": grid.id,
            },
        )
        records["report"] = report["id"]
        records["photo"] = self.call(
            "post", f"/api/v1/reports/{report['id']}/photos", volunteer.user, 201,
            data={"client_id": str(uuid.uuid4()), "file": (io.BytesIO(png()), "photo.png")},
            content_type="multipart/form-data",
        )["id"]
        ledger.append(volunteer.id, 100, LedgerReason.ADJUSTMENT, "test", uuid.uuid4().hex, note="test")
        records["entry"] = db.session.scalar(
            sa.select(sa.func.max(LedgerEntry.id)).where(LedgerEntry.volunteer_id == volunteer.id)
        )
        item = CatalogueItem(
            area_id=place.community.id, name="保温杯", description="", points_cost=30, stock=5, active=True
        )
        db.session.add(item)
        db.session.flush()
        records["item"] = item.id
        records["redemption"] = self.call(
            "post", f"/api/v1/catalogue-items/{item.id}/redemptions", volunteer.user, 201,
            json={"client_id": str(uuid.uuid4())},
        )["id"]
        records["device"] = self.call(
            "post", "/api/v1/me/devices", volunteer.user, 201,
            json={"token": f"token-{uuid.uuid4().hex}", "platform": "android"},
        )["id"]
        records["broadcast"] = self.call(
            "post", "/api/v1/broadcasts", admin, 201,
            json={"area_id": place.community.id, "title": "通知", "body": "今晚巡逻"},
        )["id"]
        records["export"] = self.call(
            "post", "/api/v1/reports/exports", db.session.get(User, records["user"]), 202,
            json={"report": "coverage", "format": "csv", "area_id": place.community.id, "period": "month"},
        )["id"]
        organiser = db.session.get_one(User, records["user"])
        records["training"] = self.call(
            "post", "/api/v1/records/trainings", organiser, 201,
            json={"volunteer_ids": [volunteer.id], "title": "急救培训", "held_on": date.today().isoformat(), "minutes": 60},
        )["items"][0]["id"]
        records["evaluation"] = self.call(
            "post", "/api/v1/records/evaluations", organiser, 201,
            json={"volunteer_id": volunteer.id, "year": date.today().year, "rating": "good"},
        )["id"]
        records["service_record"] = self.call(
            "post", "/api/v1/service-hours", organiser, 201,
            json={"volunteer_id": volunteer.id, "served_on": (date.today() - timedelta(days=2)).isoformat(),
                  "minutes": 60, "note": "值守"},
        )["id"]
        records["star_level"] = star_levels.propose(volunteer.id, "star_1", utcnow()).id  # as the badge's listener
        records["star_objection"] = self.call(
            "post", f"/api/v1/star-levels/{records['star_level']}/objections", db.session.get(User, records["user"]), 201,
            json={"reason": "时长有误"},
        )["id"]
        # A certificate asked of the place's community for hours served there.
        awarding.award_manual_hours(
            volunteer.id, grid, date.today() - timedelta(days=1), 60, note="巡逻", actor_id=records["user"]
        )
        records["certificate"] = self.call(
            "post", "/api/v1/me/certificates", volunteer.user, 201,
            json={"issuer_area_id": place.community.id, "first_day": (date.today() - timedelta(days=7)).isoformat(),
                  "last_day": (date.today() - timedelta(days=1)).isoformat()},
        )["id"]
        # The place's volunteer's SOS, raised on its grid (alerting the place's organiser).
        records["sos"] = self.call(
            "post", "/api/v1/me/sos", volunteer.user, 201,
            json={"client_id": str(uuid.uuid4()), "lat": lat, "lon": lon, "accuracy_m": 8.0,
                  "device_time": (utcnow() - timedelta(minutes=1)).isoformat()},
        )["id"]
        records["notification"] = db.session.scalar(
            sa.select(sa.func.max(Notification.id)).where(Notification.user_id == volunteer.user_id)
        )
        assert all(records.values()), records


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (12, 8), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


# --- requests built from the document --------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]
    path_params: tuple[str, ...]
    query_ids: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            spec = item[method]
            params = [*item.get("parameters", []), *spec.get("parameters", [])]
            yield Operation(
                method,
                path,
                spec,
                tuple(p["name"] for p in params if p["in"] == "path"),
                tuple(p["name"] for p in params if p["in"] == "query" and p["name"].endswith("_id")),
            )


class Schemas:
    """Minimal valid values for the document's schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.components = document["components"]["schemas"]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        for combined in ("allOf", "anyOf", "oneOf"):
            if combined in schema:
                choices = [self.resolve(s) for s in schema[combined]]
                return next((s for s in choices if s.get("type") not in ("null", None)), choices[0])
        return schema

    def value(self, schema: dict[str, Any]) -> Any:
        schema = self.resolve(schema)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next(k for k in kind if k != "null")
        if "enum" in schema:
            return next(v for v in schema["enum"] if v is not None)
        if kind == "object" or "properties" in schema:
            properties = schema.get("properties", {})
            names = schema.get("required") or list(properties)[:1]
            return {name: self.value(properties[name]) for name in names}
        if kind == "array":
            return [self.value(schema.get("items", {})) for _ in range(schema.get("minItems", 0) or 0)]
        if kind == "integer":
            return max(int(schema.get("minimum", 1)), 1)
        if kind == "number":
            low, high = schema.get("minimum"), schema.get("maximum")
            if low is not None and high is not None:
                return (low + high) / 2
            return float(low) + 1 if low is not None else 1.0
        if kind == "boolean":
            return False
        text_format = schema.get("format")
        if text_format == "date-time":
            return (utcnow() - timedelta(minutes=1)).isoformat()
        if text_format == "date":
            return date.today().isoformat()
        if text_format == "uuid":
            return str(uuid.uuid4())
        if text_format == "binary":
            return (io.BytesIO(png()), "photo.png")
        return "x" * max(int(schema.get("minLength", 1)), 1)


#: Bodies where a generated value is not enough to get past validation to the lookup.
BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "PATCH /api/v1/shift-series/{series_id}": lambda: {"scope": "all", "title": "夜巡"},
    "POST /api/v1/shift-series/{series_id}/cancel": lambda: {"scope": "all", "reason": "停"},
}


@dataclass
class Request:
    method: str
    url: str
    kwargs: dict[str, Any]


def build(schemas: Schemas, operation: Operation, ids: dict[str, int], query: dict[str, int]) -> Request:
    """A valid request for ``operation`` with these path ids and query ids (fresh values each time,
    so no client id or idempotency record is ever shared between two requests)."""
    url = operation.path
    for name, value in ids.items():
        url = url.replace("{" + name + "}", str(value))
    params: dict[str, Any] = dict(query)
    for parameter in operation.spec.get("parameters", []):
        if parameter["in"] == "query" and parameter.get("required") and parameter["name"] not in params:
            params[parameter["name"]] = schemas.value(parameter["schema"])
    kwargs: dict[str, Any] = {"query_string": params}
    body = operation.spec.get("requestBody", {}).get("content", {})
    if operation.name in BODIES:
        kwargs["json"] = BODIES[operation.name]()
    elif "application/json" in body:
        kwargs["json"] = schemas.value(body["application/json"]["schema"])
    elif "multipart/form-data" in body:
        kwargs["data"] = schemas.value(body["multipart/form-data"]["schema"])
        kwargs["content_type"] = "multipart/form-data"
    return Request(operation.method, url, kwargs)


def text_of(response: Any, limit: int = 300) -> str:
    return response.get_data()[:limit].decode("utf-8", "replace")


def answer(response: Any, ids: set[int]) -> tuple[int, str, str | None, bytes]:
    """What a client can tell apart, with the ids asked about blanked out."""
    body = response.get_data()
    for value in ids:
        body = re.sub(rb"\b%d\b" % value, b"{id}", body)
    return response.status_code, response.mimetype, response.headers.get("Content-Language"), body


# --- the test ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One id of ``operation`` asked about: in the path (all path ids at once) or one query filter."""

    operation: Operation
    label: str
    path_kinds: dict[str, str]
    query_kind: tuple[str, str] | None
    hidden: tuple[str, ...]

    def ids(self, world: World, place: str | None) -> tuple[dict[str, int], dict[str, int]]:
        """Path and query ids naming the records of ``place`` (None: ids that do not exist)."""
        def record(kind: str, where: str) -> int:
            return world.places[where].records[kind]

        if self.query_kind is None:
            path = {n: record(k, place) if place else NO_SUCH_ID for n, k in self.path_kinds.items()}
            return path, {}
        name, kind = self.query_kind
        path = {n: record(k, "home") for n, k in self.path_kinds.items()}
        return path, {name: record(kind, place) if place else NO_SUCH_ID}


def cases(operation: Operation, role: str) -> Iterator[Case]:
    path_kinds = {name: KINDS[name] for name in operation.path_params}
    if path_kinds:
        hidden = OUT_OF_REACH[role]
        if role == "volunteer" and set(path_kinds.values()) <= VOLUNTEERS_SEE_CITY_WIDE:
            hidden = ("city",)
        yield Case(operation, operation.name, path_kinds, None, hidden)
    for name in operation.query_ids:
        if name in KINDS:
            yield Case(operation, f"{operation.name}?{name}=", path_kinds, (name, KINDS[name]), OUT_OF_REACH[role])


def unknown_parameters(operation: Operation) -> list[str]:
    return [
        name
        for name in (*operation.path_params, *operation.query_ids)
        if name not in KINDS and name not in PUBLIC_PATH_PARAMS and name not in PUBLIC_QUERY_PARAMS
    ]


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    return client.get("/api/openapi.json").get_json()


@pytest.mark.parametrize("role", sorted(OUT_OF_REACH))
def test_ids_out_of_reach_answer_as_ids_that_do_not_exist(client, document, role) -> None:
    world = World(client)
    caller = world.callers[role]
    schemas = Schemas(document)
    problems: list[str] = []
    walked: set[str] = set()

    def send(case: Case, place: str | None) -> tuple[Any, set[int]]:
        path, query = case.ids(world, place)
        request = build(schemas, case.operation, path, query)
        response = getattr(client, request.method)(request.url, headers=factories.headers_for(caller), **request.kwargs)
        if response.status_code >= 500:
            problems.append(f"{case.label} [{place}]: {response.status_code}")
        return response, {NO_SUCH_ID, *path.values(), *query.values()}

    for operation in operations(document):
        if unknown := unknown_parameters(operation):
            problems.append(f"{operation.name}: id parameter(s) {unknown} name no known kind of record (add to KINDS)")
            continue
        if any(name in PUBLIC_PATH_PARAMS for name in operation.path_params):
            continue  # an area (public) or the calendar secret: see the module docstring
        for case in cases(operation, role):
            walked.add(case.label)
            missing, missing_ids = send(case, None)
            lookup_reached = missing.status_code == 404 or (
                missing.status_code == 403 and (missing.get_json(silent=True) or {}).get("code") == "forbidden"
            )
            if case.query_kind is None and not lookup_reached:
                problems.append(
                    f"{case.label}: an unknown id answered {missing.status_code} {text_of(missing)} — "
                    "give it a valid request in BODIES so that it reaches its lookup"
                )
                continue
            for place in case.hidden:
                response, ids = send(case, place)
                if answer(response, ids | missing_ids) != answer(missing, ids | missing_ids):
                    problems.append(
                        f"{case.label} [{place}]: {response.status_code} {text_of(response)} "
                        f"≠ unknown id {missing.status_code} {text_of(missing)}"
                    )
            # The control: the record in reach is found (the world's records are real and reached).
            # A user's own records are the caller's own, which the home place holds only for the volunteer.
            personal = bool(set(case.path_kinds.values()) & PERSONAL_KINDS) and role != "volunteer"
            if case.query_kind is None and missing.status_code == 404 and not personal:
                home, ids = send(case, "home")
                if answer(home, ids | missing_ids) == answer(missing, ids | missing_ids):
                    problems.append(f"{case.label}: the record in reach answered as a missing one: {text_of(home)}")

    assert not problems, "\n".join(problems)
    assert len(walked) >= 70, sorted(walked)  # the walk found the operations (76 today)
