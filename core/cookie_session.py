"""Flask's signed-cookie session, without its cost on requests that carry no session cookie.

Only the console keeps anything in Flask's session (flask-wtf's CSRF secret); the API's requests
carry no such cookie, yet Flask built an itsdangerous signer to open the empty session and read
seven cookie settings to save it again, on every request: a tenth of the bare endpoint's CPU
(bench/README.md, issue 19). The answers are Flask's own: a request without the cookie gets an
empty session, and an empty session that nobody touched is saved as nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin

if TYPE_CHECKING:
    from flask import Flask, Request, Response


class LazyCookieSessionInterface(SecureCookieSessionInterface):
    """:class:`SecureCookieSessionInterface` that signs and reads settings only when there is a cookie
    to read or a session to write."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not app.secret_key:
            return None  # as Flask: no key, no session (it falls back to a null session)
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()  # what Flask opens for a request without the cookie
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not session and not session.accessed and not session.modified:
            return  # Flask would neither add Vary: Cookie nor set or delete a cookie
        super().save_session(app, session, response)
