"""No 500 for bad input, from anyone (core/request_input.py, core/auth.py ``claims_problem``).

JSON nested too deep, strings that are not valid Unicode, query strings that do not decode, chunked
bodies over the limit and correctly signed tokens with claims we never issue: each is a 4xx
problem, for every caller, on every operation that takes a JSON body, and nothing is written.
"""

from __future__ import annotations

import io
import random
import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from accounts.models import User
from core.errors import ValidationFailed
from core.extensions import db
from core.request_input import MAX_JSON_DEPTH, NOT_UNICODE, NOT_UTF8, TOO_DEEP, parse_json_document
from rewards.catalogue.models import CatalogueItem
from tests import factories
from tests.conftest import Tree
from tests.problems import EN, assert_problem

API = "/api/v1"
ROLES = ("volunteer", "organiser", "staff", "admin")
LONE = "\ud800"


def nested(depth: int, leaf: str = "[]") -> str:
    """A JSON array ``depth`` containers deep (2 bytes per level)."""
    return "[" * (depth - 1) + leaf + "]" * (depth - 1)


def post_json(client: FlaskClient, method: str, path: str, text: str, headers: dict[str, str]) -> Any:
    return client.open(path, method=method, data=text.encode("utf-8", "surrogatepass"),
                       content_type="application/json", headers=headers)


@pytest.fixture
def callers(tree: Tree) -> dict[str, User]:
    return {
        "volunteer": factories.make_volunteer(tree.grid_a).user,
        "organiser": factories.make_user("organiser", tree.community_a),
        "staff": factories.make_user("staff", tree.district_a),
        "admin": factories.make_user("admin", tree.city),
    }


def row_counts() -> dict[str, int]:
    factories.fold_into_rollups()  # the setup's roll-ups, as its commit would (not the request's writes)
    db.session.expire_all()
    return {
        table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


# --- JSON depth ---------------------------------------------------------------------------------


def test_a_two_kilobyte_body_nested_a_thousand_deep_is_400_before_anything_runs(client: FlaskClient) -> None:
    body = nested(1000)
    assert len(body) < 2100
    problem = assert_problem(post_json(client, "POST", f"{API}/auth/login", body, EN), 400, "json_too_deep")
    assert problem["detail"] == TOO_DEEP
    # Deeper than the decoder itself can go is the same answer.
    assert_problem(post_json(client, "POST", f"{API}/auth/login", nested(100_000), {}), 400, "json_too_deep")


def test_depth_is_refused_one_past_the_limit_and_not_at_it(client: FlaskClient) -> None:
    # {"phone": [[…]]}: the object is one container, the lists the rest.
    at_limit = '{"phone": ' + nested(MAX_JSON_DEPTH - 1) + ', "password": "x"}'
    past_limit = '{"phone": ' + nested(MAX_JSON_DEPTH) + ', "password": "x"}'
    problem = assert_problem(post_json(client, "POST", f"{API}/auth/login", at_limit, EN), 422, "validation_failed")
    assert problem["errors"]["phone"] == ["Not a valid string."]
    assert_problem(post_json(client, "POST", f"{API}/auth/login", past_limit, EN), 400, "json_too_deep")
    # Breadth is not depth: many shallow containers pass.
    wide = '{"phone": "13800138000", "password": "x", "extra": [' + ",".join(["[]"] * 500) + "]}"
    assert_problem(post_json(client, "POST", f"{API}/auth/login", wide, EN), 422, "validation_failed")


def test_a_multipolygon_area_boundary_is_well_inside_the_depth_limit(client: FlaskClient, tree: Tree) -> None:
    admin = factories.make_user("admin", tree.city)
    ring = [[109.84, 40.65], [109.841, 40.65], [109.841, 40.651], [109.84, 40.651], [109.84, 40.65]]
    body = {"parent_id": tree.community_a.id, "level": "grid", "code": "G-MULTI", "name": "多块网格", "grid_kind": "urban",
            "boundary": {"type": "MultiPolygon", "coordinates": [[ring], [[[x + 0.01, y] for x, y in ring]]]}}
    response = client.post(f"{API}/areas", json=body, headers=factories.headers_for(admin))
    assert response.status_code == 201, response.get_json()["errors"]


# --- strings that are not valid Unicode ----------------------------------------------------------


def test_a_lone_surrogate_is_422_naming_the_field_and_a_surrogate_pair_is_text(client: FlaskClient) -> None:
    lone = '{"phone": "13800138000", "password": "abc\\ud800defgh"}'
    problem = assert_problem(post_json(client, "POST", f"{API}/auth/login", lone, EN), 422, "validation_failed")
    assert problem["errors"] == {"password": [NOT_UNICODE]}
    zh = assert_problem(post_json(client, "POST", f"{API}/auth/login", lone, {}), 422, "validation_failed")
    assert zh["errors"] == {"password": ["不是有效的 Unicode 文本（含未配对的代理字符）。"]}
    # An escaped pair is one character (😀): an ordinary wrong password.
    pair = '{"phone": "13800138000", "password": "abc\\ud83d\\ude00defgh"}'
    assert_problem(post_json(client, "POST", f"{API}/auth/login", pair, EN), 401, "invalid_credentials")
    # Surrogates encoded as UTF-8 bytes are not UTF-8 at all: malformed JSON.
    raw = b'{"phone": "13800138000", "password": "abc\xed\xa0\x80defgh"}'
    response = client.post(f"{API}/auth/login", data=raw, content_type="application/json")
    assert_problem(response, 400, "malformed_json")


def test_every_way_a_document_can_carry_a_surrogate_is_refused_and_none_other() -> None:
    """The checks skip what cannot hold a surrogate (text decoded here from UTF-8, ASCII text),
    never what can: an escape in bytes or text, a surrogate itself in text given already decoded
    (the provider's ``loads`` of a str), beside other non-ASCII text or not."""
    for document in ('{"a": "x\\udfff"}', b'{"a": "x\\uD800"}', '{"a": "\ud800"}', '{"a": "急救\udc00"}',
                     '{"\ud800": 1}'):
        with pytest.raises(ValidationFailed):
            parse_json_document(document)
    for document in ('{"a": "x\\ud83d\\ude00"}', '{"a": "急救😀"}', "[]",
                     '{"a": "x\\\\ud800"}', '{"a": "急救"}'.encode()):
        parse_json_document(document)


def test_nested_fields_list_positions_and_field_names_are_named(client: FlaskClient, callers) -> None:
    body = '{"skills": ["急救", "\\udc00"], "emergency_contact": {"name": "\\ud800", "phone": "13800138000"}}'
    headers = factories.headers_for(callers["volunteer"], **EN)
    problem = assert_problem(post_json(client, "PATCH", f"{API}/volunteers/me", body, headers), 422, "validation_failed")
    assert problem["errors"] == {"skills": {"1": [NOT_UNICODE]}, "emergency_contact": {"name": [NOT_UNICODE]}}

    bad_key = '{"display_name": "ok", "\\ud800x": "y"}'
    problem = assert_problem(post_json(client, "PATCH", f"{API}/me", bad_key, headers), 422, "validation_failed")
    assert problem["errors"] == {"_json": ["A field name is not valid Unicode text (an unpaired surrogate)."]}
    assert problem["errors"]  # and the answer itself encodes (it is here, parsed)


SAMPLES: list[tuple[str, str, tuple[str, ...], str]] = [
    # method, path ({shift} for a shift id), roles that may call it (() = public), the string field
    ("POST", "/auth/login", (), "password"),
    ("POST", "/volunteers/register", (), "real_name"),
    ("PATCH", "/me", ROLES, "display_name"),
    ("PATCH", "/volunteers/me", ("volunteer",), "skills"),
    ("POST", "/areas", ("staff", "admin"), "name"),
    ("POST", "/broadcasts", ("organiser", "staff", "admin"), "title"),
    ("POST", "/shifts/{shift}/cancel", ("organiser", "staff", "admin"), "reason"),
    ("POST", "/catalogue-items", ("staff", "admin"), "name"),
]


@pytest.mark.parametrize(("method", "path", "allowed", "field"), SAMPLES, ids=[f"{m} {p}" for m, p, *_ in SAMPLES])
def test_deep_and_surrogate_bodies_for_every_role_and_no_role(
    client: FlaskClient, tree: Tree, callers, method: str, path: str, allowed: tuple[str, ...], field: str
) -> None:
    path = API + path.format(shift=factories.make_shift(tree.grid_a).id)
    value = '["\\ud800"]' if field == "skills" else '"\\ud800"'
    surrogate = f'{{"{field}": {value}}}'
    tokens = {role: factories.headers_for(callers[role]) for role in ROLES}
    before = row_counts()
    for role in (None, *ROLES):
        headers = {**EN, **tokens.get(role, {})}
        deep = post_json(client, method, path, '{"x": ' + nested(1000) + "}", headers)
        lone = post_json(client, method, path, surrogate, headers)
        if not allowed or role in allowed:
            assert_problem(deep, 400, "json_too_deep")
            problem = assert_problem(lone, 422, "validation_failed")
            expected = {"0": [NOT_UNICODE]} if field == "skills" else [NOT_UNICODE]
            assert problem["errors"] == {field: expected}, (role, problem)
        else:  # refused for who they are before the body is read
            status, code = (401, "unauthorized") if role is None else (403, "forbidden")
            assert_problem(deep, status, code)
            assert_problem(lone, status, code)
    assert row_counts() == before


def _allowed_role(operation: dict[str, Any]) -> str | None:
    """The first role an operation allows (core.auth documents them), admin if any, None if public."""
    if not operation.get("security") or {} in operation["security"]:
        return None
    match = re.search(r"Allowed roles: ([a-z, ]+)\.", operation.get("description", ""))
    return match.group(1).split(", ")[0] if match else "admin"


def _surrogate_body(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[str, str]:
    """A body putting a lone surrogate into the schema's first property, and that property's name."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    field = next(iter(schema.get("properties", {})), "note")
    return f'{{"{field}": "\\ud800"}}', field


def test_every_json_body_operation_refuses_deep_and_surrogate_bodies(
    app: Flask, client: FlaskClient, callers
) -> None:
    spec = client.get("/api/openapi.json").get_json()
    tokens = {role: factories.headers_for(callers[role]) for role in ROLES}
    before = row_counts()
    checked, failures = 0, []
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            body = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
            if body is None:
                continue
            path = re.sub(r"\{[^}]+\}", "1", template)
            role = _allowed_role(operation)
            headers = {**EN, **tokens.get(role or "", {})}
            surrogate, field = _surrogate_body(spec, body["schema"])
            for kind, text, status, code in [
                ("deep", '{"x": ' + nested(1000) + "}", 400, "json_too_deep"),
                ("surrogate", surrogate, 422, "validation_failed"),
            ]:
                response = post_json(client, method.upper(), path, text, headers)
                problem = response.get_json(silent=True) or {}
                ok = (response.status_code, response.mimetype, problem.get("code")) == (
                    status, "application/problem+json", code)
                if ok and kind == "surrogate":
                    ok = NOT_UNICODE in str(problem.get("errors", {}).get(field))
                if not ok:
                    failures.append(f"{method.upper()} {template} as {role} ({kind}): "
                                    f"{response.status_code} {response.get_data(as_text=True)[:200]}")
            checked += 1
    assert failures == []
    assert checked >= 60, checked  # every operation with a JSON body (67 when this was written)
    assert row_counts() == before


# --- query strings --------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [b"q=%ED%A0%80", b"q=\xed\xa0\x80", b"q=ok&q=%FF", b"%FF=1"],
                         ids=["escaped-surrogate", "raw-surrogate", "escaped-ff", "bad-name"])
def test_a_query_string_that_is_not_utf8_is_422_naming_the_parameter(client: FlaskClient, query: bytes) -> None:
    # A WSGI server hands the raw query over as latin-1 text (PEP 3333).
    response = client.get(f"{API}/areas/search", headers=EN,
                          environ_overrides={"QUERY_STRING": query.decode("latin-1")})
    problem = assert_problem(response, 422, "validation_failed")
    name = "\ufffd" if query.startswith(b"%FF=") else "q"
    assert problem["errors"] == {name: [NOT_UTF8]}


def test_a_utf8_query_string_raw_or_escaped_is_read(client: FlaskClient, tree: Tree) -> None:
    for query in (b"q=%E4%B8%9C%E7%AB%99", "q=东站".encode()):
        response = client.get(f"{API}/areas/search", environ_overrides={"QUERY_STRING": query.decode("latin-1")})
        assert response.status_code == 200, response.get_json()
        assert [area["name"] for area in response.get_json()["items"]] == ["东站社区"]


# --- chunked bodies -------------------------------------------------------------------------------


def chunked(client: FlaskClient, method: str, path: str, body: bytes, content_type: str, **headers: str) -> Any:
    """A body sent with Transfer-Encoding: chunked and no Content-Length.

    gunicorn (and werkzeug's own server) de-chunk the body and set ``wsgi.input_terminated``; the
    app then sees no Content-Length and a stream that ends with the body. The test client does
    the same here.
    """
    return client.open(path, method=method, input_stream=io.BytesIO(body),
                       headers={"Content-Type": content_type, "Transfer-Encoding": "chunked", **headers},
                       environ_overrides={"wsgi.input_terminated": True})


def test_a_chunked_body_over_the_limit_is_413_and_one_at_the_limit_is_read(app: Flask, client: FlaskClient) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    padding = b'{"phone": "13800138000", "password": "wrong-password", "pad": "'
    at_limit = padding + b"x" * (limit - len(padding) - 2) + b'"}'
    assert len(at_limit) == limit
    over = at_limit[:-2] + b'x"}'
    assert_problem(chunked(client, "POST", f"{API}/auth/login", over, "application/json"), 413, "payload_too_large")
    # At the limit the whole body is read: the schema sees it (an unknown field), not a cut-off text.
    response = chunked(client, "POST", f"{API}/auth/login", at_limit, "application/json", **EN)
    assert assert_problem(response, 422, "validation_failed")["errors"] == {"pad": ["Unknown field."]}
    small = b'{"phone": "13800138000", "password": "wrong-password"}'
    assert_problem(chunked(client, "POST", f"{API}/auth/login", small, "application/json"), 401, "invalid_credentials")


def test_a_chunked_upload_gets_its_route_limit(app: Flask, client: FlaskClient, tree: Tree, tmp_path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "REPORT_PHOTO_DIR", str(tmp_path / "photos"))
    staff = factories.make_user("staff", tree.district_a)
    item = CatalogueItem(area_id=tree.district_a.id, name="保温杯", description="", points_cost=10, stock=3)
    db.session.add(item)
    db.session.flush()
    image = io.BytesIO()
    noise = random.Random(12).randbytes(700 * 700 * 3)  # does not compress: about 1.5 MB as PNG
    Image.frombytes("RGB", (700, 700), noise).save(image, format="PNG")
    upload = FileStorage(io.BytesIO(image.getvalue()), filename="cup.png", content_type="image/png")
    boundary, body = encode_multipart({"file": upload})
    assert len(body) > app.config["MAX_CONTENT_LENGTH"]  # over the default limit, within the photo route's
    response = chunked(client, "PUT", f"{API}/catalogue-items/{item.id}/photo", body,
                       f"multipart/form-data; boundary={boundary}", **factories.headers_for(staff))
    assert response.status_code == 200, response.get_json()
    monkeypatch.setitem(app.config, "REPORT_PHOTO_MAX_BYTES", len(body) // 2)
    response = chunked(client, "PUT", f"{API}/catalogue-items/{item.id}/photo", body,
                       f"multipart/form-data; boundary={boundary}", **factories.headers_for(staff))
    assert_problem(response, 413, "payload_too_large")


# --- token claims ----------------------------------------------------------------------------------


BAD_CLAIMS: dict[str, dict[str, Any]] = {
    "unknown role": {"role": "superuser"},
    "role not text": {"role": ["admin"]},
    "no role": {"role": None},
    "no area_path": {"area_path": None},
    "area_path not a path": {"area_path": "1/2"},
    "area_path as a prefix of everything": {"area_path": "/"},
    "area_path a number": {"area_path": 7},
    "no sid": {"sid": None},
    "sid a number": {"sid": 12},
    "sid a list": {"sid": ["a"]},
}


@pytest.fixture
def organiser_session(client: FlaskClient, tree: Tree) -> tuple[User, str]:
    user = factories.make_user("organiser", tree.community_a)
    response = client.post(f"{API}/auth/login", json={"phone": user.phone, "password": factories.DEFAULT_PASSWORD})
    assert response.status_code == 200
    return user, decode_token(response.get_json()["access_token"])["sid"]


@pytest.mark.parametrize("change", list(BAD_CLAIMS.values()), ids=list(BAD_CLAIMS))
def test_a_correctly_signed_access_token_with_claims_we_never_issue_is_401(
    client: FlaskClient, tree: Tree, organiser_session, change: dict[str, Any]
) -> None:
    user, sid = organiser_session
    claims = {"role": "organiser", "area_path": tree.community_a.path, "sid": sid}
    good = create_access_token(identity=str(user.id), additional_claims=claims)
    assert client.get(f"{API}/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    claims.update(change)
    claims = {key: value for key, value in claims.items() if value is not None}
    token = create_access_token(identity=str(user.id), additional_claims=claims)
    bearer = {"Authorization": f"Bearer {token}"}
    for response in (
        client.get(f"{API}/me", headers=bearer),
        client.get(f"{API}/areas", headers=bearer),  # optional authentication
        client.post(f"{API}/broadcasts", json={"area_id": tree.community_a.id, "title": "t", "body": "b"},
                    headers=bearer),
        client.post(f"{API}/auth/logout", headers=bearer),
    ):
        assert_problem(response, 401, "invalid_token")
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("subject", ["abc", "²", "٣", "0", "-1", " 1", str(2**31), "1" * 40])
def test_a_subject_that_is_not_a_user_id_is_401(client: FlaskClient, tree: Tree, organiser_session, subject: str) -> None:
    _, sid = organiser_session
    token = create_access_token(identity=subject, additional_claims={
        "role": "organiser", "area_path": tree.community_a.path, "sid": sid})
    assert_problem(client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")


def test_token_types_and_refresh_claims_are_checked(client: FlaskClient, tree: Tree, organiser_session) -> None:
    user, sid = organiser_session
    claims = {"role": "organiser", "area_path": tree.community_a.path, "sid": sid}
    odd_type = create_access_token(identity=str(user.id), additional_claims={**claims, "type": "weird"})
    assert_problem(client.get(f"{API}/me", headers={"Authorization": f"Bearer {odd_type}"}), 401, "invalid_token")
    for extra in ({"sid": None}, {"jti": 5}, {"sid": {"a": 1}}):
        refresh_claims = {key: value for key, value in {"sid": sid, **extra}.items() if value is not None}
        token = create_refresh_token(identity=str(user.id), additional_claims=refresh_claims,
                                     expires_delta=timedelta(minutes=5))
        response = client.post(f"{API}/auth/refresh", headers={"Authorization": f"Bearer {token}"})
        assert_problem(response, 401, "invalid_token")
