"""The API says what it does: date-times, booleans, partial updates and error codes follow one rule
each, everywhere, and the OpenAPI document says what the server checks.

- every ``date-time`` comes from ``core.fields.Instant``: an offset in, UTC out (checked on the
  document's schemas and on the values of real responses);
- JSON booleans are ``true``/``false`` only, query booleans the words ``true``/``false``;
- every PATCH needs a field to change;
- an error code or message registered twice with different texts stops the app from starting.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from marshmallow import class_registry
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from core import i18n
from core.db import utcnow
from core.extensions import api
from core.fields import Instant, QueryBoolean, StrictBoolean, UpdateSchema
from tests import factories
from tests.conftest import Tree
from tests.problems import EN, assert_problem

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
OUR_PACKAGES = ("accounts", "core", "grids", "volunteers", "shifts", "patrols", "notifications", "rewards")
#: The middle of the test tree's grid_a (the 0.01° square from 109.84, 40.65).
INSIDE = {"lat": 40.655, "lon": 109.845}


# --- the fields behind the document ----------------------------------------------------------------


def our_schema_classes() -> list[type[ma.Schema]]:
    classes = {cls for group in class_registry._registry.values() for cls in group}
    return sorted(
        (cls for cls in classes if cls.__module__.split(".")[0] in OUR_PACKAGES),
        key=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
    )


def leaf_fields(field: ma.fields.Field) -> Iterator[ma.fields.Field]:
    """A field and the fields inside it (list items, dict values); nested schemas are walked on their own."""
    yield field
    if isinstance(field, ma.fields.List):
        yield from leaf_fields(field.inner)
    if isinstance(field, ma.fields.Tuple):
        for inner in field.tuple_fields:
            yield from leaf_fields(inner)
    if isinstance(field, ma.fields.Dict) and field.value_field is not None:
        yield from leaf_fields(field.value_field)


def test_every_date_time_and_boolean_field_is_ours(app: Flask) -> None:
    classes = our_schema_classes()
    assert len(classes) > 100
    strangers = []
    for cls in classes:
        for name, declared in cls._declared_fields.items():
            for field in leaf_fields(declared):
                if isinstance(field, ma.fields.DateTime) and not isinstance(field, Instant):
                    strangers.append(f"{cls.__module__}.{cls.__qualname__}.{name}: {type(field).__name__}")
                if isinstance(field, ma.fields.Boolean) and not isinstance(field, StrictBoolean | QueryBoolean):
                    strangers.append(f"{cls.__module__}.{cls.__qualname__}.{name}: {type(field).__name__}")
    assert strangers == []


def _components_by_schema_class() -> dict[str, type[ma.Schema]]:
    return {name: key[0] for key, name in api.ma_plugin.converter.refs.items()}


def _field_for(schema_class: type[ma.Schema], key: str) -> ma.fields.Field | None:
    for name, field in schema_class._declared_fields.items():
        if (field.data_key or name) == key:
            return field
    return None


def _date_time_properties(schema: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    """(path, property name) of every ``format: date-time`` directly among ``schema``'s properties,
    and of any deeper inline one (which no schema class could vouch for)."""
    for key, prop in (schema.get("properties") or {}).items():
        if prop.get("format") == "date-time":
            yield path, key
        for inner in (prop.get("items"), prop.get("additionalProperties")):
            if isinstance(inner, dict) and "$ref" not in inner:
                if inner.get("format") == "date-time":
                    yield f"{path}.{key}[]", key
                yield from (("inline " + p, k) for p, k in _date_time_properties(inner, f"{path}.{key}"))


def test_every_date_time_in_the_document_comes_from_our_field(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    classes = _components_by_schema_class()
    checked, strangers = 0, []
    for name, schema in document["components"]["schemas"].items():
        for where, key in _date_time_properties(schema, name):
            field = _field_for(classes[name], key) if where == name else None
            checked += 1
            if not isinstance(field, Instant):
                strangers.append(f"{where}.{key}")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("schema", {}).get("format") == "date-time":
                    checked += 1
                    field = _query_field(app, path, method, parameter["name"])
                    if not isinstance(field, Instant):
                        strangers.append(f"{method.upper()} {path} ?{parameter['name']}")
            for content in operation.get("requestBody", {}).get("content", {}).values():
                inline = content.get("schema", {})
                if "$ref" not in inline:
                    strangers.extend(f"{method.upper()} {path} body {key}" for _, key in _date_time_properties(inline, path))
    assert checked > 80 and strangers == []


def _views(app: Flask, path: str, method: str) -> Iterator[Any]:
    """The view functions flask-smorest documented as ``method path``."""
    for rule in app.url_map.iter_rules():
        if re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) != path or method.upper() not in rule.methods:
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        yield getattr(view_class, method.lower()) if view_class else view


def _argument_schemas(app: Flask, path: str, method: str, location: str) -> list[type[ma.Schema]]:
    schemas = []
    for view in _views(app, path, method):
        for argument in view._apidoc.get("arguments", {}).get("parameters", []):
            if argument["in"] == location:
                schema = argument["schema"]
                schemas.append(schema if isinstance(schema, type) else type(schema))
    return schemas


def _query_field(app: Flask, path: str, method: str, name: str) -> ma.fields.Field | None:
    for schema_class in _argument_schemas(app, path, method, "query"):
        field = _field_for(schema_class, name)
        if field is not None:
            return field
    return None


def _nested_fields(schema_class: type[ma.Schema], seen: set[type] | None = None) -> Iterator[ma.fields.Field]:
    seen = seen if seen is not None else set()
    if schema_class in seen:
        return
    seen.add(schema_class)
    for declared in schema_class._declared_fields.values():
        for field in leaf_fields(declared):
            yield field
            if isinstance(field, ma.fields.Nested):
                nested = field.nested() if callable(field.nested) and not isinstance(field.nested, type) else field.nested
                nested_class = nested if isinstance(nested, type) else type(nested)
                yield from _nested_fields(nested_class, seen)


def test_booleans_are_strict_in_bodies_and_words_in_query_strings(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    seen = {"json": 0, "query": 0}
    wrong = []
    for path, operations in document["paths"].items():
        for method in operations:
            for location, expected in (("json", StrictBoolean), ("query", QueryBoolean)):
                for schema_class in _argument_schemas(app, path, method, location):
                    for field in _nested_fields(schema_class):
                        if isinstance(field, ma.fields.Boolean):
                            seen[location] += 1
                            if type(field) is not expected:
                                wrong.append(f"{method.upper()} {path} {location}: {type(field).__name__}")
    assert seen["json"] >= 7 and seen["query"] >= 7 and wrong == []


def test_strict_booleans_through_the_api(client: FlaskClient, tree: Tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    headers = factories.headers_for(volunteer.user, **EN)
    quiet = {"quiet_start": "22:00", "quiet_end": "07:00"}
    for value in (1, 0, "true", "false", "yes", 1.0, None):
        response = client.put(f"{API}/me/leaderboard-preference", json={"opt_out": value}, headers=headers)
        assert assert_problem(response, 422, "validation_failed")["errors"]["opt_out"], value
        response = client.put(
            f"{API}/me/notification-settings", json={"quiet_hours_enabled": value, **quiet}, headers=headers
        )
        assert assert_problem(response, 422, "validation_failed")["errors"]["quiet_hours_enabled"], value
    for value in (True, False):
        response = client.put(f"{API}/me/leaderboard-preference", json={"opt_out": value}, headers=headers)
        assert response.status_code == 200 and response.get_json()["opt_out"] is value
        response = client.put(
            f"{API}/me/notification-settings", json={"quiet_hours_enabled": value, **quiet}, headers=headers
        )
        assert response.status_code == 200 and response.get_json()["quiet_hours_enabled"] is value
    for word in ("1", "0", "True", "yes", ""):
        response = client.get(f"{API}/me/notifications", query_string={"unread_only": word}, headers=headers)
        assert assert_problem(response, 422, "validation_failed")["errors"] == {"unread_only": ["Not a valid boolean."]}
    for word in ("true", "false"):
        assert client.get(f"{API}/me/notifications", query_string={"unread_only": word}, headers=headers).status_code == 200


# --- the document is as strict as the server ----------------------------------------------------------

#: Operations whose every input rule the document can state (no references to other rows, no rule
#: across fields or relative to now): generated valid input must be accepted, invalid refused.
SELF_CONTAINED = {
    "PATCH /api/v1/me": "volunteer",
    "PUT /api/v1/me/leaderboard-preference": "volunteer",
    "POST /api/v1/me/devices": "volunteer",
    "POST /api/v1/volunteer-kinds": "admin",
}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_the_document_says_what_the_server_accepts(app: Flask, tree: Tree, mode: GenerationMode) -> None:
    callers = {"volunteer": factories.make_volunteer(tree.grid_a).user, "admin": factories.make_user("admin", tree.city)}
    check = positive_data_acceptance if mode is GenerationMode.POSITIVE else negative_data_rejection
    operations = [
        result.ok() for result in schemathesis.openapi.from_wsgi("/api/openapi.json", app).get_all_operations()
    ]
    chosen = [operation for operation in operations if operation.label in SELF_CONTAINED]
    assert len(chosen) == len(SELF_CONTAINED)
    failures = []
    for operation in chosen:
        headers = factories.headers_for(callers[SELF_CONTAINED[operation.label]])

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[check])  # noqa: B023 -- run in this iteration

        try:
            exercise()
        except Exception as error:  # every operation's failure, then fail once
            failures.append(f"{operation.label}: {error}")
    assert failures == []


def test_text_patterns_spell_out_what_strip_removes() -> None:
    """Text's pattern names the whitespace characters: ECMA-262's \\s, which a client or generator
    reads, leaves out some that Python's str.strip() removes."""
    from core.validators import _WHITESPACE, Text

    space = re.compile(f"[{_WHITESPACE}]")
    assert all(bool(space.fullmatch(chr(code))) == chr(code).isspace() for code in range(0x110000))
    pattern = Text().metadata["pattern"]
    assert "\\s" not in pattern  # spelled out, not left to the reader's dialect
    assert re.fullmatch(pattern, " 守望 ") and not re.fullmatch(pattern, "a\x00")
    assert not any(re.fullmatch(pattern, f" {chr(code)}\t") for code in range(0x110000) if chr(code).isspace())


# --- partial updates ---------------------------------------------------------------------------------


def test_every_patch_needs_a_field_to_change(app: Flask, client: FlaskClient, tree: Tree) -> None:
    """Walks the document: each PATCH refuses ``{}`` and a missing body with 422, says so as
    ``minProperties``, and its body schema is an ``UpdateSchema``."""
    document = client.get("/api/openapi.json").get_json()
    admin = factories.headers_for(factories.make_user("admin", tree.city), **EN)
    volunteer = factories.headers_for(factories.make_volunteer(tree.grid_a).user, **EN)
    patched = []
    for path, operations in document["paths"].items():
        if "patch" not in operations:
            continue
        patched.append(path)
        operation = operations["patch"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        component = document["components"]["schemas"][ref.split("/")[-1]]
        assert component["minProperties"] >= 1, path
        # A required field (a series edit's scope) is reported first; the rule itself is tested below.
        expected = {name: ["Missing data for required field."] for name in component.get("required", [])}
        assert all(issubclass(schema, UpdateSchema) for schema in _argument_schemas(app, path, "patch", "json"))
        url = re.sub(r"\{\w+\}", str(tree.grid_a.id), path)
        own = path in (f"{API}/me", f"{API}/volunteers/me")
        for headers in (volunteer,) if own else (admin,):
            for body in ({"json": {}}, {}, {"data": "", "content_type": "application/json"}):
                response = client.patch(url, headers=headers, **body)
                problem = assert_problem(response, 422, "validation_failed")
                assert problem["errors"] == (expected or {"_schema": ["Provide at least one field to change."]}), path
    assert len(patched) == 8


def test_series_scope_alone_is_not_a_change(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    response = client.patch(
        f"{API}/shift-series/1", json={"scope": "all", "reason": "x"}, headers=factories.headers_for(organiser, **EN)
    )
    assert assert_problem(response, 422, "validation_failed")["errors"] == {
        "_schema": ["Provide at least one field to change."]
    }


# --- date-times in and out ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T19:00:00+08:00", "2026-12-01T11:00:00+00:00"),
        ("2026-12-01T11:00:00Z", "2026-12-01T11:00:00+00:00"),
        ("2026-12-01t11:00:00z", "2026-12-01T11:00:00+00:00"),
        ("2026-12-01T11:00:00.5-05:30", "2026-12-01T16:30:00.500000+00:00"),
        ("2026-12-01T11:00:00.123456789+00:00", "2026-12-01T11:00:00.123456+00:00"),
    ],
)
def test_an_instant_takes_any_offset_and_is_written_in_utc(text: str, expected: str) -> None:
    field = Instant()
    loaded = field.deserialize(text)
    assert loaded.utcoffset() == timedelta(0) and field._serialize(loaded, None, None) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-12-01T19:00:00", "Datetime must have a time zone offset."),
        ("2026-12-01 19:00:00+08:00", "Not a valid datetime."),
        ("20261201T190000+0800", "Not a valid datetime."),
        ("2026-12-01", "Not a valid datetime."),
        ("2026-02-30T19:00:00Z", "Not a valid datetime."),
        ("2026-12-01T24:00:00Z", "Not a valid datetime."),
        ("2026-12-01T19:00:00+24:00", "Not a valid datetime."),
        ("0001-01-01T00:00:00+01:00", "Not a valid datetime."),  # before year 1 in UTC
        ("2026-12-01T19:00:00Z\n", "Not a valid datetime."),
        (1764586800, "Not a valid datetime."),
    ],
)
def test_an_instant_without_an_offset_or_not_rfc_3339_is_refused(text: Any, message: str) -> None:
    with pytest.raises(ma.ValidationError) as refused:
        Instant().deserialize(text)
    assert refused.value.messages == [message]


def test_a_naive_value_is_never_written_as_an_instant() -> None:
    with pytest.raises(ValueError):
        Instant()._serialize(datetime(2026, 12, 1, 19), None, None)


def test_the_offset_message_is_translated(client: FlaskClient, tree: Tree) -> None:
    admin = factories.make_user("admin", tree.city)
    for headers, message in (({}, "日期时间必须带时区偏移。"), (EN, "Datetime must have a time zone offset.")):
        response = client.get(
            f"{API}/audit", query_string={"since": "2026-01-01T00:00:00"}, headers=factories.headers_for(admin, **headers)
        )
        assert assert_problem(response, 422, "validation_failed")["errors"] == {"since": [message]}


class Recorder:
    """Calls the API as ``user`` and keeps every answer, to check them against the document."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.answers: list[tuple[str, str, int, Any]] = []

    def __call__(self, method: str, user: Any, path: str, **kwargs: Any) -> Any:
        headers = factories.headers_for(getattr(user, "user", user), **EN)
        response = self.client.open(f"{API}{path}", method=method, headers=headers, **kwargs)
        assert response.status_code < 300, (method, path, response.get_json())
        body = response.get_json(silent=True)
        self.answers.append((method, path.split("?")[0], response.status_code, body))
        return body


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def _walk(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str, found: list) -> None:
    """Every (where, schema, value) whose schema is a string with a format or pattern."""
    schema = _resolve(document, schema)
    if value is None:
        return
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(keyword, []):
            if _resolve(document, branch).get("type", "object") == "object" and not isinstance(value, dict):
                continue
            _walk(document, branch, value, where, found)
    if isinstance(value, str) and ("format" in schema or "pattern" in schema):
        found.append((where, schema, value))
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                _walk(document, properties[key], item, f"{where}.{key}", found)
            elif isinstance(schema.get("additionalProperties"), dict):
                _walk(document, schema["additionalProperties"], item, f"{where}.{key}", found)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _walk(document, schema["items"], item, f"{where}[{index}]", found)


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    candidates = []
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, f"{API}{path}") and method.lower() in operations:
            candidates.append((template.count("{"), operations[method.lower()]))
    assert candidates, (method, path)
    return min(candidates, key=lambda candidate: candidate[0])[1]


def _scenario(calls: Recorder, tree: Tree) -> None:
    """Shifts, series, my shifts, assignments, patrols, reports, notifications, rewards, accounts."""
    admin = factories.make_user("admin", tree.city)
    staff = factories.make_user("staff", tree.district_a)
    organiser = factories.make_user("organiser", tree.community_a)
    volunteer = factories.make_volunteer(tree.grid_a)
    now = utcnow()

    calls("POST", admin, f"/areas/{tree.city.id}/point-rules", json={
        "effective_from": (now - timedelta(days=30)).astimezone(SHANGHAI).isoformat(), "points_per_hour": 10,
        "expiry_years": 1, "manual_hours_earn_points": True,
    })
    start = (now + timedelta(days=2)).astimezone(SHANGHAI).replace(microsecond=0)
    one_off = calls("POST", organiser, "/shifts", json={
        "grid_id": tree.grid_a.id, "title": "夜间巡逻", "max_headcount": 3,
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
    })
    calls("PATCH", organiser, f"/shifts/{one_off['id']}", json={"title": "夜巡"})
    series = calls("POST", organiser, "/shift-series", json={
        "grid_id": tree.grid_a.id, "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=6", "title": "周巡",
        "starts_on": (now + timedelta(days=1)).astimezone(SHANGHAI).date().isoformat(),
        "start_time": "19:00", "end_time": "21:00", "max_headcount": 3,
    })
    calls("GET", organiser, f"/shift-series/{series['id']}")
    calls("GET", organiser, "/shift-series?limit=5")
    first = series["upcoming_shifts"][0]
    calls("GET", volunteer, f"/shifts/{first['id']}")
    place = calls("POST", volunteer, f"/shifts/{first['id']}/signup", json={})
    calls("GET", volunteer, f"/assignments/{place['id']}")
    calls("GET", volunteer, "/me/shifts")
    calls("GET", volunteer, "/shifts/open?include_full=true")
    calls("GET", organiser, f"/areas/{tree.grid_a.id}/shifts")
    calls("GET", organiser, f"/shifts/{first['id']}/assignments")
    calls("POST", organiser, f"/shift-series/{series['id']}/cancel", json={
        "scope": "following", "from_occurrence": series["upcoming_shifts"][-1]["occurrence"], "reason": "改期",
    })

    under_way = factories.make_shift(tree.grid_a, starts_in=-timedelta(minutes=10))
    patrol_place = factories.make_assignment(under_way, volunteer)
    checkpoint = calls("POST", organiser, f"/areas/{tree.grid_a.id}/checkpoints", json={"name": "东门", **INSIDE})
    device_time = now.astimezone(SHANGHAI).isoformat()
    calls("POST", volunteer, f"/assignments/{patrol_place.id}/check-in", json={
        "client_id": str(uuid.uuid4()), **INSIDE, "accuracy_m": 8, "device_time": device_time,
    })
    calls("POST", volunteer, f"/assignments/{patrol_place.id}/checkpoint-scans", json={
        "client_id": str(uuid.uuid4()), "payload": checkpoint["qr_payload"], **INSIDE, "device_time": device_time,
    })
    calls("POST", volunteer, f"/assignments/{patrol_place.id}/track", json={"points": [
        {"lat": 40.655, "lon": 109.845 + i / 10_000, "time": (now + timedelta(seconds=i * 30)).isoformat()}
        for i in range(3)
    ]})
    calls("POST", volunteer, f"/assignments/{patrol_place.id}/check-out", json={
        "client_id": str(uuid.uuid4()), **INSIDE, "accuracy_m": 8,
        "device_time": (now + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
    })
    calls("GET", volunteer, f"/assignments/{patrol_place.id}/patrol")
    calls("GET", volunteer, f"/assignments/{patrol_place.id}/patrol/summary")
    calls("GET", volunteer, f"/assignments/{patrol_place.id}/checkpoint-scans")
    calls("GET", organiser, f"/areas/{tree.grid_a.id}/checkpoints")
    track = calls("GET", volunteer, f"/assignments/{patrol_place.id}/track")
    fixes = [feature["properties"] for feature in track["features"] if feature["properties"]["kind"] == "fix"]
    assert fixes and all(p["time"].endswith("+00:00") and p["received_at"].endswith("+00:00") for p in fixes)

    report = calls("POST", volunteer, "/reports", json={
        "client_id": str(uuid.uuid4()), "category": "safety_hazard", "level": "yellow", "description": "井盖缺失",
        **INSIDE, "device_time": device_time,
    })
    calls("POST", organiser, f"/reports/{report['id']}/acknowledge", json={})
    calls("GET", organiser, f"/reports/{report['id']}")
    calls("GET", volunteer, "/reports/mine")

    calls("POST", volunteer, "/me/devices", json={"token": "fcm-token:" + "x" * 40, "platform": "android"})
    calls("GET", volunteer, "/me/devices")
    broadcast = calls("POST", organiser, "/broadcasts", json={
        "area_id": tree.community_a.id, "title": "今晚需要增援", "body": "请回复。",
    })
    calls("GET", organiser, f"/broadcasts/{broadcast['id']}")
    calls("GET", volunteer, "/me/notifications")
    calls("PUT", volunteer, "/me/notification-settings", json={
        "quiet_hours_enabled": True, "quiet_start": "22:00", "quiet_end": "07:00",
    })
    calls("PUT", admin, f"/areas/{tree.city.id}/reminder-settings", json={"offsets_minutes": [60]})

    calls("POST", organiser, "/service-hours", json={
        "volunteer_id": volunteer.id, "served_on": (now - timedelta(days=1)).astimezone(SHANGHAI).date().isoformat(),
        "minutes": 120, "note": "社区值守",
    })
    calls("GET", volunteer, "/me/points")
    calls("GET", volunteer, "/me/points/history")
    calls("GET", volunteer, "/me/badges")
    item = calls("POST", staff, "/catalogue-items", json={
        "name": "保温杯", "points_cost": 10, "stock": 5,
        "valid_from": (now - timedelta(days=1)).isoformat(), "valid_until": (now + timedelta(days=30)).isoformat(),
    })
    redemption = calls("POST", volunteer, f"/catalogue-items/{item['id']}/redemptions", json={"client_id": str(uuid.uuid4())})
    calls("POST", staff, f"/redemptions/{redemption['id']}/approve")
    calls("GET", volunteer, "/redemptions/mine")
    calls("GET", volunteer, "/leaderboards?period=month&metric=points")
    calls("GET", admin, f"/areas/{tree.city.id}/point-rules/current")
    calls("GET", admin, "/rewards/invariant")

    calls("GET", volunteer, "/me")
    calls("GET", volunteer, "/volunteers/me")
    calls("GET", admin, "/audit")
    calls("GET", admin, f"/areas/{tree.grid_a.id}")


def test_every_date_time_in_real_responses_is_an_instant_in_utc(client: FlaskClient, tree: Tree) -> None:
    document = client.get("/api/openapi.json").get_json()
    calls = Recorder(client)
    _scenario(calls, tree)
    found: list[tuple[str, dict[str, Any], str]] = []
    for method, path, status, body in calls.answers:
        responses = _operation(document, method, path)["responses"]
        content = responses[str(status)].get("content", {}).get("application/json")
        if content is not None:
            _walk(document, content["schema"], body, f"{method} {path}", found)
    instants, wrong = set(), []
    for where, schema, value in found:
        if schema.get("format") == "date-time":
            moment = datetime.fromisoformat(value)
            instants.add(where.rsplit(".", 1)[-1])
            if moment.tzinfo is None or moment.utcoffset() != timedelta(0) or not value.endswith("+00:00"):
                wrong.append(f"{where}: {value}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            wrong.append(f"{where}: {value!r} does not match {schema['pattern']}")
    assert wrong == []
    assert {
        "occurrence", "first_occurrence", "until", "starts_at", "created_at", "device_time", "received_at",
        "first_scanned_at", "expires_at", "effective_from", "valid_from", "decided_at", "at", "checked_at",
        "registered_at",
    } <= instants
    shown = {where.rsplit(".", 1)[-1]: value for where, _, value in found}
    assert shown["occurrence_local"].endswith("T19:00:00") and shown["first_occurrence_local"].endswith("T19:00:00")


# --- error codes ------------------------------------------------------------------------------------------


def test_a_code_or_pattern_registered_again_with_another_text_fails() -> None:
    i18n.register_titles(i18n.title("contract_probe_code", "Probe"))
    i18n.register_titles(i18n.title("contract_probe_code", "Probe"))  # the same again is fine
    with pytest.raises(i18n.RegistrationClash, match="contract_probe_code"):
        i18n.register_titles(i18n.title("contract_probe_other", "Other"), i18n.title("contract_probe_code", "A probe"))
    assert i18n.title_for("contract_probe_code", "en") == "Probe"
    assert i18n.title_for("contract_probe_other", "en") == i18n.title_for("bad_request", "en")  # nothing half-added

    # A message cannot clash: the catalogue holds one translation per text (tests/test_translations.py).
    i18n.register_patterns({r"^Contract probe (\d+)\.$": "Contract probe number {0}."})
    with pytest.raises(i18n.RegistrationClash):
        i18n.register_patterns({r"^Contract probe (\d+)\.$": "Another probe {0}."})
    assert i18n.translate("Contract probe 7.", "zh") == "Contract probe number 7."  # untranslated: the msgid


@pytest.mark.parametrize(
    ("code", "english"),
    [
        ("shift_cancelled", "Shift cancelled"),
        ("assignment_not_live", "Place no longer held"),
        ("client_id_reused", "The client id belongs to another record"),
        ("not_a_city", "The area is not a city"),
    ],
)
def test_codes_that_were_registered_twice_have_one_title(app: Flask, code: str, english: str) -> None:
    assert i18n.title_for(code, "en") == english
