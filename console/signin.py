"""The console's browser session: who is signed in, and the CSRF check of every form.

A console sign-in is an ordinary login (``accounts.sessions.open_browser_session``): its access token
lives in an ``HttpOnly`` cookie scoped to ``/console/`` (flask-jwt-extended's cookie mode), so the API,
which reads tokens from the ``Authorization`` header only, never takes it. Each page opened gives a
new token of ``CONSOLE_IDLE_TIMEOUT``, which is the idle timeout; signing out revokes the login as
the API's logout does, and a revoked or expired token is simply a signed-out browser.

CSRF: every request that is not GET/HEAD/OPTIONS, sign-in included, must carry the form field
``csrf_token`` or the ``X-CSRFToken`` header (Flask-WTF, its secret in Flask's session cookie), so a
page elsewhere cannot post a form with the caller's cookies; ``SameSite=Lax`` is the second fence.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, redirect, request, url_for
from flask_jwt_extended import get_jwt, set_access_cookies, unset_jwt_cookies, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_wtf.csrf import CSRFError, CSRFProtect
from jwt import PyJWTError

from accounts import sessions
from accounts.models import AuthSession, User
from accounts.service import authenticated_user
from core.auth import Caller, current_caller
from core.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

csrf = CSRFProtect()

#: A page opened less than this after the token was given keeps the token (no new cookie on every asset).
_REISSUE_AFTER = timedelta(minutes=1)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def configure_cookies(app: Flask) -> None:
    """Cookie attributes of the access token and of the CSRF secret; Flask-WTF checks only where the
    console asks it to (the API's clients send no CSRF token: they send no cookie)."""
    secure = not app.config["CONSOLE_INSECURE_COOKIES"]
    app.config.update(
        JWT_ACCESS_COOKIE_NAME="console_token",
        JWT_ACCESS_COOKIE_PATH="/console/",
        JWT_COOKIE_SECURE=secure,
        JWT_COOKIE_SAMESITE="Lax",
        JWT_SESSION_COOKIE=True,  # gone when the browser closes
        JWT_COOKIE_CSRF_PROTECT=False,  # Flask-WTF checks every console form, sign-in included
        SESSION_COOKIE_NAME="console_session",
        SESSION_COOKIE_PATH="/console/",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # valid while the browser's session cookie lives
    )
    csrf.init_app(app)


def check_csrf() -> None:
    """Refuse (400) a request that changes something without the form's CSRF token."""
    if request.method not in _SAFE_METHODS:
        csrf.protect()


def browser_caller() -> Caller | None:
    """The caller of a live console session, or None (no cookie, expired, revoked, tampered)."""
    if "console_caller" in g:
        caller: Caller | None = g.console_caller
        return caller
    try:
        verify_jwt_in_request(locations=["cookies"])
        caller = current_caller()
    except (JWTExtendedException, PyJWTError):
        caller = None
    g.console_caller = caller
    return caller


def signed_in(view: F) -> F:
    """A page for organisers, staff and admins: the view gets the :class:`Caller` first.

    Signed out: to the sign-in page, coming back here afterwards. A volunteer: the plain page that
    says the console is for organisers and staff (403).
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from console.web import render

        caller = browser_caller()
        if caller is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("console.login", next=target))
        if not caller.is_manager:
            return render("console/volunteers_elsewhere.html", status=403)
        return view(caller, *args, **kwargs)

    return wrapper  # type: ignore[return-value]  # wraps(view): the signature F promises


def sign_in(response: Response, user: User) -> None:
    """Open a login for ``user`` and hand the browser its cookie."""
    token = sessions.open_browser_session(
        user, current_app.config["CONSOLE_IDLE_TIMEOUT"],
        user_agent=request.headers.get("User-Agent"), client_address=request.remote_addr,
    )
    set_access_cookies(response, token)


def sign_out(response: Response) -> None:
    """Revoke the login of this browser (if any) and clear its cookie."""
    caller = browser_caller()
    if caller is not None:
        sessions.revoke_session(caller.session_id, sessions.REASON_LOGOUT)
    unset_jwt_cookies(response)


def slide_idle_timeout(response: Response) -> Response:
    """A page opened: a new token of the full idle timeout, at most once a minute."""
    caller = g.get("console_caller")
    if caller is None or response.status_code >= 400 or request.endpoint == "console.logout":
        return response
    issued = datetime.fromtimestamp(get_jwt()["iat"], UTC)
    if datetime.now(UTC) - issued < _REISSUE_AFTER:
        return response
    user = authenticated_user()  # the account the revocation check read (accounts/tokens.py)
    session = db.session.get(AuthSession, caller.session_id)
    if user is None or session is None:
        return response
    token, _ = sessions.issue_access_token(user, session, current_app.config["CONSOLE_IDLE_TIMEOUT"])
    set_access_cookies(response, token)
    return response


def csrf_refused(error: CSRFError) -> Response:
    from console.web import error_page, gettext

    return error_page(400, gettext("This form has expired"), gettext(
        "The form was not sent from this console page, or the page was open too long. Reload the page and try again."
    ))
