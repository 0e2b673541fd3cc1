"""Non-ASCII query arguments arrive the same whether the client percent-encodes them or sends raw UTF-8."""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient

from tests import factories
from tests.conftest import Tree
from tests.live_server import dev_server, raw_get


def names(body: bytes) -> list[str]:
    return [item["name"] for item in json.loads(body)["items"]]


def test_raw_utf8_on_the_development_server_finds_what_percent_encoding_finds(app: Flask, tree: Tree) -> None:
    factories.make_area("community", tree.subdistrict_b, name="Café 社区")
    with dev_server(app) as base:
        for text in ("东站", "Café"):  # beyond latin-1, and inside it (é is one latin-1 character)
            raw = raw_get(base, b"/api/v1/areas/search?q=" + text.encode())
            encoded = raw_get(base, b"/api/v1/areas/search?q=" + quote(text).encode())
            assert raw[0] == encoded[0] == 200, (raw, encoded)
            assert names(raw[1]) == names(encoded[1]) != [], text
        assert names(raw_get(base, "/api/v1/areas/search?q=东站".encode())[1]) == ["东站社区"]


def test_every_query_argument_is_repaired_not_only_search(app: Flask, tree: Tree) -> None:
    staff = factories.make_user("staff", tree.district_a)
    factories.make_user("organiser", tree.community_a, display_name="王芳")
    factories.make_user("organiser", tree.community_a, display_name="李强")
    with dev_server(app) as base:
        status, body = raw_get(base, "/api/v1/users?q=王芳".encode(), factories.headers_for(staff))
    assert status == 200, body
    assert [user["display_name"] for user in json.loads(body)["items"]] == ["王芳"]


def test_servers_that_follow_pep_3333_are_left_alone(client: FlaskClient, tree: Tree) -> None:
    """A server that follows PEP 3333 gives the raw bytes as latin-1 characters, which werkzeug decodes."""
    as_pep_3333 = "q=" + "东站".encode().decode("latin-1")
    response = client.get("/api/v1/areas/search", environ_overrides={"QUERY_STRING": as_pep_3333})
    assert response.status_code == 200
    assert [item["name"] for item in response.get_json()["items"]] == ["东站社区"]
