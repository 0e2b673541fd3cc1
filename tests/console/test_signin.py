"""Sign-in, sign-out, CSRF, cookies and headers of the console, through the test client."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests import factories
from tests.conftest import Tree
from tests.console.support import signed_in


def test_a_signed_in_organiser_reaches_the_console(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    console = signed_in(client, organiser)
    page = console.get("/console/")
    assert page.status_code in (200, 302)
    assert "/console/login" not in page.headers.get("Location", "")
