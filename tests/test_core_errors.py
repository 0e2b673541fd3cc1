"""One error shape everywhere (RFC 9457 problem+json), Chinese by default and English on request."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.exc import DataError, OperationalError

from core.errors import register_error_handlers
from tests.problems import assert_problem


def test_unknown_route_is_a_404_problem_in_chinese(client) -> None:
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert body["title"] == "资源不存在"


def test_english_on_request(client) -> None:
    response = client.get("/api/v1/no-such-thing", headers={"Accept-Language": "en-GB,en;q=0.9"})
    body = assert_problem(response, 404, "not_found")
    assert body["title"] == "Resource not found"
    assert response.headers["Content-Language"] == "en"


def test_chinese_wins_when_preferred(client) -> None:
    response = client.get("/api/v1/no-such-thing", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert assert_problem(response, 404, "not_found")["title"] == "资源不存在"


def test_wrong_method_is_a_405_problem_with_allow(client) -> None:
    response = client.delete("/healthz")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_body_over_one_mebibyte_is_413(client) -> None:
    response = client.post(
        "/api/v1/auth/login", data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        content_type="application/json",
    )
    assert_problem(response, 413, "payload_too_large")


def test_unexpected_error_is_a_500_without_internals() -> None:
    app = Flask("probe")
    register_error_handlers(app)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret connection string postgresql://user:pw@db")

    response = app.test_client().get("/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "postgresql" not in response.get_data(as_text=True)
    assert body["detail"] == "服务器内部错误"


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ok"}


def test_openapi_document_and_docs_page(client) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "bearerAuth" in spec["components"]["securitySchemes"]
    default_error = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert "application/problem+json" in default_error["content"]
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"swagger-ui" in page.data
    assert b"/api/docs/assets/swagger-ui-bundle.js" in page.data
    with client.get("/api/docs/assets/swagger-ui-bundle.js") as asset:
        assert asset.status_code == 200 and len(asset.data) > 100_000


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_need_no_token(client, path: str) -> None:
    assert client.get(path).status_code == 200


def _probe_app(error: Exception) -> Flask:
    app = Flask("probe")
    register_error_handlers(app)

    @app.get("/fail")
    def fail() -> str:
        raise error

    return app


def test_lost_database_connection_is_503_with_retry_after() -> None:
    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    response = _probe_app(lost).test_client().get("/fail", headers={"Accept-Language": "en"})
    body = assert_problem(response, 503, "service_unavailable")
    assert response.headers["Retry-After"] == "1"
    assert "server closed" not in response.get_data(as_text=True)
    assert body["title"] == "Service unavailable"


def test_value_the_database_refuses_is_422_not_500() -> None:
    refused = DataError("INSERT", {}, Exception("integer out of range"))
    response = _probe_app(refused).test_client().get("/fail")
    assert_problem(response, 422, "validation_failed")


def test_ids_beyond_the_database_range_are_404(client) -> None:
    assert_problem(client.get(f"/api/v1/areas/{2**31}"), 404, "not_found")
