"""Signing in to the console from Flask's test client, as a browser does: GET the form for its CSRF
token, POST it with the phone and password; the client keeps the cookies."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from accounts.models import User
from tests.factories import DEFAULT_PASSWORD

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token_of(page: TestResponse) -> str:
    match = _CSRF_FIELD.search(page.get_data(as_text=True))
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


class Console:
    """A browser on the console: ``get`` pages, ``post`` forms (the CSRF token added unless told not to)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.csrf_token = ""

    def sign_in(self, user: User, password: str = DEFAULT_PASSWORD) -> TestResponse:
        self.csrf_token = csrf_token_of(self.client.get("/console/login"))
        response = self.client.post(
            "/console/login", data={"phone": user.phone, "password": password, "csrf_token": self.csrf_token}
        )
        return response

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, *, with_csrf: bool = True, **kwargs: Any) -> TestResponse:
        form = dict(data or {})
        if with_csrf:
            form.setdefault("csrf_token", self.csrf_token)
        return self.client.post(path, data=form, **kwargs)


def signed_in(client: FlaskClient, user: User) -> Console:
    console = Console(client)
    response = console.sign_in(user)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return console
