"""A client generated from our OpenAPI document works: openapi-python-client, a generator nobody here
wrote, turns the document into a package, and a volunteer's day driven through that package against
a real server parses into the generated models. The document-level rules that keep generated
clients typed (operationIds, 401 and 403, null in nullable enums, typed nullable objects, text and
image responses, an ASCII title) are checked by walking the whole document.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import io
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from flask import Flask
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_openapi_document
from packaging.utils import canonicalize_name
from PIL import Image

from core.api import NULL_ONLY
from core.extensions import db
from grids.models import AreaLevel
from tests import factories
from tests.live_server import dev_server

SPEC_PATH = "/api/openapi.json"
#: No formatter run after generation: the generated code is used as it comes.
GENERATOR_CONFIG = "post_hooks: []\n"
#: Inside factories.square(109.84, 40.65), the grid of the world below.
INSIDE = {"lat": 40.655, "lon": 109.845}
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="session")
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get(SPEC_PATH)
    assert response.status_code == 200
    return response.get_json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def _schemas_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in the document that may be a schema (all of them: the rules below only look at
    keys that appear in schemas)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _schemas_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas_in(value)


# --- the document ---------------------------------------------------------------------------------


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate_openapi_document(document)
    assert document["openapi"] == "3.0.3"


def test_every_operation_has_a_unique_readable_operation_id(document: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for path, method, operation in operations(document):
        name = operation.get("operationId")
        assert name and re.fullmatch(r"[a-z][a-z0-9_]*", name), (method, path, name)
        assert name not in seen, f"{name} is both {seen[name]} and {method} {path}"
        seen[name] = f"{method} {path}"
    # Derived from the views: function name, or HTTP method + class name for class-based views.
    assert seen["check_in"] == "post /api/v1/assignments/{assignment_id}/check-in"
    assert seen["get_report"] == "get /api/v1/reports/{report_id}"
    assert seen["patch_me"] == "patch /api/v1/me"


def _problem_response(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response["content"]["application/problem+json"]["schema"]


def test_every_operation_that_takes_a_token_documents_401(document: dict[str, Any]) -> None:
    secured = 0
    for path, method, operation in operations(document):
        if any("bearerAuth" in requirement for requirement in operation.get("security", [])):
            secured += 1
            assert "401" in operation["responses"], (method, path)
            problem = _problem_response(document, operation["responses"]["401"])
            assert problem == {"$ref": "#/components/schemas/Problem"}, (method, path)
    assert secured > 100


def test_every_operation_answering_401_without_a_token_says_it_takes_one(
    client: Any, document: dict[str, Any]
) -> None:
    """Asked without a token, an operation that answers 401 must document bearer auth (and so 401)."""
    refused = 0
    for path, method, operation in operations(document):
        url = re.sub(r"\{[^}]+\}", "1", path)
        if path.endswith(".ics"):
            continue  # the feed's secret is in its path, not a token
        response = client.open(url, method=method.upper(), json={} if method != "get" else None)
        if response.status_code == 401:
            refused += 1
            assert operation.get("security"), (method, path)
            assert "401" in operation["responses"], (method, path)
    assert refused > 100


def test_operations_limited_to_roles_document_403(document: dict[str, Any]) -> None:
    limited = [
        (path, method, operation)
        for path, method, operation in operations(document)
        if "Allowed roles:" in operation.get("description", "")
    ]
    assert len(limited) > 50
    for path, method, operation in limited:
        assert "403" in operation["responses"], (method, path)


def test_nullable_enums_list_null(document: dict[str, Any]) -> None:
    """OpenAPI 3.0.3: ``nullable`` does not widen an ``enum``, so a null a server sends must be listed."""
    nullable_enums = [s for s in _schemas_in(document) if s.get("nullable") is True and "enum" in s]
    assert len(nullable_enums) > 10
    for schema in nullable_enums:
        assert None in schema["enum"], schema
    for schema in _schemas_in(document):
        if isinstance(schema.get("enum"), list) and None in schema["enum"]:
            assert schema.get("nullable") is True, schema
    components = document["components"]["schemas"]
    for name, field in (
        ("ReportEvent", "from_status"), ("Area", "grid_kind"), ("AreaSummary", "grid_kind"),
        ("LocateResult", "grid_kind"), ("PatrolPresence", "presence_status"),
    ):
        assert None in components[name]["properties"][field]["enum"], (name, field)


def test_nullable_objects_are_their_type_or_null(document: dict[str, Any]) -> None:
    """A nullable nested object is ``anyOf: [$ref, null only]``: no branch that takes any object."""
    unions = [s["anyOf"] for s in _schemas_in(document) if isinstance(s.get("anyOf"), list)]
    assert len(unions) > 5
    for branches in unions:
        for branch in branches:
            assert "$ref" in branch or branch == NULL_ONLY, branches
    root = {**document["components"]["schemas"]["PatrolPresence"]["properties"]["check_in"],
            "components": document["components"]}
    validator = OAS30Validator(root)
    record = {"client_id": "x", "device_time": None, "received_at": None, "lat": None, "lon": None,
              "accuracy_m": None, "flags": []}
    assert validator.is_valid(None) and validator.is_valid(record)
    assert not validator.is_valid({"anything": 1}) and not validator.is_valid("text")
    for name, field in (("PatrolPresence", "check_in"), ("PatrolPresence", "check_out"),
                        ("PatrolPresence", "review"), ("Volunteer", "emergency_contact")):
        assert NULL_ONLY in document["components"]["schemas"][name]["properties"][field]["anyOf"]


def test_text_and_image_responses_are_declared_as_clients_read_them(document: dict[str, Any]) -> None:
    paths = document["paths"]
    feed = paths["/api/v1/calendar/{token}.ics"]["get"]["responses"]["200"]["content"]
    assert feed == {"text/calendar": {"schema": {"type": "string"}}}
    for path in ("/api/v1/reports/{report_id}/photos/{photo_id}", "/api/v1/catalogue-items/{item_id}/photo"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert list(content) == ["image/jpeg", "image/png", "application/octet-stream"], path
        assert all(media["schema"] == {"type": "string", "format": "binary"} for media in content.values())
    # An export: the workbook as bytes (octet-stream before text/csv, since a generated client reads
    # the first type it knows), the CSV as text.
    export = paths["/api/v1/reports/participation/export"]["get"]["responses"]["200"]["content"]
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert list(export) == [xlsx, "application/octet-stream", "text/csv"]
    assert export[xlsx]["schema"] == export["application/octet-stream"]["schema"] == {"type": "string", "format": "binary"}
    assert export["text/csv"]["schema"] == {"type": "string"}


def test_the_title_is_ascii_and_the_description_keeps_the_name(document: dict[str, Any]) -> None:
    assert document["info"]["title"] == "Shouwang API"
    assert document["info"]["title"].isascii()
    assert "守望" in document["info"]["description"]


# --- the generated client -------------------------------------------------------------------------


@dataclass
class GeneratedClient:
    package: ModuleType
    project_name: str

    def operation(self, operation_id: str) -> ModuleType:
        """The generated module of an operation (``api/<tag>/<operationId>.py``)."""
        root = Path(self.package.__file__).parent
        (found,) = root.glob(f"api/*/{operation_id}.py")
        return importlib.import_module(f"{self.package.__name__}.api.{found.parent.name}.{operation_id}")

    def model(self, name: str) -> type:
        return getattr(importlib.import_module(f"{self.package.__name__}.models"), name)

    def anonymous(self, base_url: str) -> Any:
        return self.package.Client(
            base_url=base_url, raise_on_unexpected_status=True, httpx_args={"trust_env": False}
        )

    def authenticated(self, base_url: str, token: str) -> Any:
        return self.package.AuthenticatedClient(
            base_url=base_url, token=token, raise_on_unexpected_status=True, httpx_args={"trust_env": False}
        )


@pytest.fixture(scope="session")
def generated(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeneratedClient]:
    """The client openapi-python-client makes of our document, generated once per session."""
    root = tmp_path_factory.mktemp("generated_client")
    spec = root / "openapi.json"
    spec.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(GENERATOR_CONFIG)
    project = root / "project"
    result = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(spec),
         "--output-path", str(project), "--meta", "setup", "--config", str(config), "--fail-on-warning"],
        capture_output=True, text=True, timeout=300,
    )
    # --fail-on-warning: a response or schema the generator had to leave out fails here.
    assert result.returncode == 0, result.stdout + result.stderr
    project_name = re.search(r'name="([^"]+)"', (project / "setup.py").read_text()).group(1)
    (package_dir,) = [path.parent for path in project.glob("*/__init__.py")]
    sys.path.insert(0, str(project))
    try:
        yield GeneratedClient(importlib.import_module(package_dir.name), project_name)
    finally:
        sys.path.remove(str(project))
        for name in [name for name in sys.modules if name.split(".")[0] == package_dir.name]:
            del sys.modules[name]


def test_the_generated_package_has_names_pip_accepts(generated: GeneratedClient) -> None:
    # pip refuses a project name outside PEP 508 (as 'shouwang-守望-api-client' was); this is its rule.
    assert canonicalize_name(generated.project_name, validate=True) == "shouwang-api-client"
    assert generated.package.__name__ == "shouwang_api_client"


def test_every_operation_is_generated(generated: GeneratedClient, document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        module = generated.operation(operation["operationId"])
        assert callable(module.sync_detailed), (method, path)


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    with dev_server(app, threaded=True) as base_url:
        yield base_url


@dataclass
class World:
    city_id: int
    subdistrict_id: int
    community_id: int
    grid_id: int
    organiser_phone: str


def _committed_world(app: Flask) -> World:
    """Areas down to a grid and an organiser of its community, committed for the server's threads."""
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY, name="包头市")
        district = factories.make_area(AreaLevel.DISTRICT, city, name="东河区")
        subdistrict = factories.make_area(AreaLevel.SUBDISTRICT, district, name="和平路街道")
        community = factories.make_area(AreaLevel.COMMUNITY, subdistrict, name="东站社区")
        grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(109.84, 40.65))
        organiser = factories.make_user("organiser", community)
        world = World(city.id, subdistrict.id, community.id, grid.id, organiser.phone)
        db.session.commit()
        return world


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Day:
    """What the scenario made, for the sweep of every GET afterwards."""

    world: World
    volunteer_token: str
    organiser_token: str
    ids: dict[str, Any]


def _a_volunteers_day(generated: GeneratedClient, base_url: str, world: World) -> Day:
    """Register, approve, plan, sign up, check out before checking in, report with a photo, read it
    back, and get the calendar feed, all through the generated client; returns what it made."""
    call = lambda operation_id, **kwargs: generated.operation(operation_id).sync(**kwargs)  # noqa: E731
    model = generated.model
    public = generated.anonymous(base_url)

    phone, password = factories.unique_phone(), "Patrol-2026-client"
    registered = call("register_volunteer", client=public, body=model("Registration")(
        real_name="李四", phone=phone, password=password, national_id=factories.national_id(),
        kind="volunteer_police", home_grid_id=world.grid_id, consent=True,
    ))
    assert isinstance(registered, model("Volunteer")), registered
    assert registered.status == "pending" and isinstance(registered.status, enum.Enum)
    assert registered.emergency_contact is None  # nullable object: parsed, not refused

    def log_in(phone: str, password: str) -> str:
        tokens = call("post_login", client=public, body=model("Login")(phone=phone, password=password))
        assert isinstance(tokens, model("SessionTokens")), tokens
        return tokens.access_token

    organiser_token = log_in(world.organiser_phone, factories.DEFAULT_PASSWORD)
    organiser = generated.authenticated(base_url, organiser_token)
    pending = call("get_volunteer", volunteer_id=registered.id, client=organiser)
    assert isinstance(pending, model("Volunteer")) and pending.emergency_contact is None
    approved = call("approve_volunteer", volunteer_id=registered.id, client=organiser,
                    body=model("Approve")(certificate_no="BT-2026-0001"))
    assert isinstance(approved, model("Volunteer")) and approved.status == "active"

    # Check-in opens 30 minutes before the start: this shift's window is already open.
    starts_at = _now() + timedelta(minutes=20)
    shift = call("create_shift", client=organiser, body=model("ShiftCreate")(
        title="东站夜巡", max_headcount=3, grid_id=world.grid_id,
        starts_at=starts_at, ends_at=starts_at + timedelta(hours=2),
    ))
    assert isinstance(shift, model("Shift")), shift
    assert shift.starts_at == starts_at  # parsed as an aware datetime, the same instant

    volunteer_token = log_in(phone, password)
    volunteer = generated.authenticated(base_url, volunteer_token)
    assignment = call("sign_up", shift_id=shift.id, client=volunteer, body=model("SignUp")())
    assert isinstance(assignment, model("Assignment")) and assignment.status == "assigned"

    def presence_event(body_model: str, minutes: int) -> Any:
        return model(body_model)(client_id=uuid.uuid4(), accuracy_m=8.0,
                                 device_time=_now() + timedelta(minutes=minutes), **INSIDE)

    # Offline phone: the check-out arrives first. Its presence has no check-in and no status yet.
    early = call("check_out", assignment_id=assignment.id, client=volunteer,
                 body=presence_event("PresenceEvent", 0))
    assert isinstance(early, model("PatrolPresence")), early
    assert early.check_in is None and early.presence_status is None and early.review is None
    assert isinstance(early.check_out, model("PresenceEventRecord"))
    presence = call("check_in", assignment_id=assignment.id, client=volunteer,
                    body=presence_event("CheckIn", -1))
    assert isinstance(presence, model("PatrolPresence")), presence
    assert isinstance(presence.check_in, model("PresenceEventRecord"))
    assert presence.presence_status == "verified" and isinstance(presence.presence_status, enum.Enum)
    patrol = call("get_patrol", assignment_id=assignment.id, client=organiser)
    assert isinstance(patrol, model("PatrolPresence")) and patrol.id == presence.id

    report = call("file_report", client=volunteer, body=model("ReportCreate")(
        client_id=uuid.uuid4(), category=model("ReportCreateCategory").SAFETY_HAZARD,
        level=model("ReportCreateLevel").ORANGE, description="河堤护栏松动。", accuracy_m=10.0,
        device_time=_now(), assignment_id=assignment.id, **INSIDE,
    ))
    assert isinstance(report, model("ReportDetail")), report
    jpeg = _jpeg()
    File = generated.package.types.File
    photo = call("upload_report_photo", report_id=report.id, client=volunteer, body=model("PhotoUpload")(
        file=File(payload=io.BytesIO(jpeg), file_name="hazard.jpg", mime_type="image/jpeg"),
        client_id=uuid.uuid4(),
    ))
    assert isinstance(photo, model("ReportPhoto")) and photo.content_type == "image/jpeg"

    for reader in (volunteer, organiser):
        detail = call("get_report", report_id=report.id, client=reader)
        assert isinstance(detail, model("ReportDetail")), detail
        assert [p.id for p in detail.photos] == [photo.id]
        (filed,) = detail.history
        assert filed.from_status is None and filed.to_status == "open"  # null in a nullable enum

    download = generated.operation("get_report_photo").sync_detailed(
        report_id=report.id, photo_id=photo.id, client=volunteer
    )
    assert isinstance(download.parsed, File)
    assert download.headers["content-type"] == "image/jpeg"
    assert download.parsed.payload.read().startswith(b"\xff\xd8")  # JPEG, re-encoded
    with httpx.Client(base_url=base_url, trust_env=False) as raw:
        asked = raw.get(photo.url, headers={"Authorization": f"Bearer {volunteer_token}",
                                            "Accept": "application/octet-stream"})
    assert asked.status_code == 200 and asked.headers["content-type"] == "application/octet-stream"

    feed = call("create_calendar_feed", client=volunteer)
    assert isinstance(feed, model("CalendarFeedCreated")), feed
    token = feed.url.rsplit("/", 1)[-1].removesuffix(".ics")
    ics = call("calendar_document", token=token, client=public)
    assert isinstance(ics, str) and ics.startswith("BEGIN:VCALENDAR") and "东站夜巡" in ics

    community = call("get_area_item", area_id=world.community_id, client=public)
    assert isinstance(community, model("Area")) and community.grid_kind is None
    (summary,) = call("get_area_children", area_id=world.subdistrict_id, client=public).items
    assert isinstance(summary, model("AreaSummary")) and summary.grid_kind is None
    located = call("get_area_locate", client=public, **INSIDE)
    assert isinstance(located, model("LocateResult")) and located.grid_kind == "urban"

    return Day(world, volunteer_token, organiser_token, {
        "area_id": world.community_id, "city_id": world.city_id, "grid_id": world.grid_id,
        "volunteer_id": registered.id, "user_id": registered.user_id, "shift_id": shift.id,
        "assignment_id": assignment.id, "report_id": report.id, "photo_id": photo.id, "token": token,
    })


@pytest.mark.committing
def test_a_volunteers_day_through_the_generated_client(
    app: Flask, generated: GeneratedClient, live_server: str
) -> None:
    _a_volunteers_day(generated, live_server, _committed_world(app))


#: Required query parameters of GET operations, as the generated client takes them.
QUERY_VALUES: dict[str, Callable[[GeneratedClient], dict[str, Any]]] = {
    "get_area_search": lambda _generated: {"q": "东站"},
    "get_area_locate": lambda _generated: INSIDE,
    "get_leaderboard": lambda generated: {
        "period": generated.model("GetLeaderboardPeriod").MONTH,
        "metric": generated.model("GetLeaderboardMetric").HOURS,
    },
    "handover_export": lambda _generated: {"first": date(2026, 9, 1), "last": date(2026, 9, 30)},
}
#: For an id the day made none of (a series, a swap, …): no such record, a documented 404.
MISSING_ID = 2**31 - 1
#: Reached with a 2xx by the sweep: the responses that once failed to parse among them.
MUST_PARSE = {
    "get_report", "get_patrol", "get_area_item", "get_area_children", "get_area_locate",
    "get_volunteer", "get_own_profile", "get_report_photo", "calendar_document", "get_assignment",
    "list_my_shifts", "list_my_reports", "list_reports", "list_volunteers", "get_me", "get_shift",
    "get_leaderboard",
}


@pytest.mark.committing
def test_every_get_it_can_reach_parses_through_the_generated_client(
    app: Flask, generated: GeneratedClient, live_server: str, document: dict[str, Any]
) -> None:
    """After the day above, every GET with the day's ids, as the volunteer, the organiser and
    anonymously: every answer must be a documented status whose body parses."""
    day = _a_volunteers_day(generated, live_server, _committed_world(app))
    callers = {
        "volunteer": generated.authenticated(live_server, day.volunteer_token),
        "organiser": generated.authenticated(live_server, day.organiser_token),
        "anonymous": generated.anonymous(live_server),
    }
    parsed_2xx: set[str] = set()
    failures: list[str] = []
    for _path, method, operation in operations(document):
        if method != "get":
            continue
        name = operation["operationId"]
        signature = inspect.signature(generated.operation(name).sync_detailed)
        required = [p.name for p in signature.parameters.values()
                    if p.default is inspect.Parameter.empty and p.name != "client"]
        values = {**day.ids, **QUERY_VALUES.get(name, lambda _generated: {})(generated)}
        arguments = {parameter: values.get(parameter, MISSING_ID) for parameter in required}
        for role, caller in callers.items():
            try:
                response = generated.operation(name).sync_detailed(client=caller, **arguments)
            except Exception as error:  # an undocumented status, or a body the client cannot parse
                failures.append(f"{name} as {role}: {type(error).__name__}: {error}"[:500])
                continue
            if str(int(response.status_code)) not in operation["responses"]:
                failures.append(f"{name} as {role}: {int(response.status_code)} is not documented")
            if 200 <= response.status_code < 300:
                assert response.parsed is not None, (name, role)
                assert type(response.parsed).__name__ != "Problem", (name, role)
                parsed_2xx.add(name)
    assert failures == []
    assert parsed_2xx >= MUST_PARSE, MUST_PARSE - parsed_2xx
