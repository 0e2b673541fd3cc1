"""Flask's cookie session is built only for a request that carries the cookie or writes to it
(core/cookie_session.py), with Flask's own answers either way."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_an_api_request_gets_no_session_cookie_and_no_vary(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []
    assert "Cookie" not in response.headers.get("Vary", "")


def test_the_console_keeps_its_form_secret_in_the_session_across_requests(client: FlaskClient) -> None:
    first = client.get("/console/login")
    cookies = " ".join(first.headers.getlist("Set-Cookie"))
    assert "session=" in cookies and "Cookie" in first.headers.get("Vary", "")
    # The next page opens the signed cookie it was given: the same session, so no new cookie.
    second = client.get("/console/login")
    assert second.status_code == 200 and "session=" not in " ".join(second.headers.getlist("Set-Cookie"))
    assert "Cookie" in second.headers.get("Vary", "")
