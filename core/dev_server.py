"""Raw UTF-8 in a query string, as werkzeug's development server (`flask run`, `make run`) passes it.

PEP 3333 gives an application the request's bytes as latin-1 characters in ``QUERY_STRING``, and
werkzeug's request turns them back into bytes and decodes UTF-8, so a raw ``?q=东站`` from a server
that follows PEP 3333 arrives intact. The development server, though, takes the request line that
``http.server`` already decoded as latin-1 and encodes it once more as UTF-8 before the latin-1 step
(``_wsgi_encoding_dance``), so raw non-ASCII bytes arrive encoded twice and match nothing, while
the percent-encoded ``?q=%E4%B8%9C%E7%AB%99`` is ASCII and unaffected. Undoing that one extra
encoding before the request is parsed repairs every query argument of every endpoint.
(gunicorn 27, which make serve installs, refuses such a request line outright with 400, as RFC 9112
allows: clients percent-encode, as every HTTP library does.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the typing-only module of PEP 3333's types (Python 3.11)
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


def repair_query_string(wsgi_app: WSGIApplication) -> WSGIApplication:
    """Wrap ``wsgi_app`` so the development server's double-encoded query strings arrive once encoded."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        # Only the development server sets werkzeug.socket; other servers are left alone.
        if "werkzeug.socket" in environ and not query.isascii():
            try:
                once = query.encode("latin-1").decode("utf-8")
                once.encode("latin-1")  # the server's own latin-1 text, one character per byte
            except UnicodeError:
                pass  # not the double encoding described above: leave it to werkzeug
            else:
                environ["QUERY_STRING"] = once
        return wsgi_app(environ, start_response)

    return app
