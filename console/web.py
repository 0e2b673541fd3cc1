"""The console's blueprint: pages rendered in the caller's language, with strict security headers,
and every error answered as a page rather than problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, g, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from accounts.service import authenticated_user
from console.signin import browser_caller, check_csrf, csrf_refused, slide_idle_timeout
from core import i18n
from core.errors import ApiError, handle_unexpected

PREFIX = "/console"
bp = Blueprint(
    "console", __name__, url_prefix=PREFIX, template_folder="templates",
    static_folder="static", static_url_path="/static",
)

LANGUAGE_COOKIE = "console_language"

#: The navigation bar: (endpoint, English label marked for extraction), added by each page's package
#: (``NAV_ITEM`` in its routes module) in the order of ``console.FEATURE_ROUTES``.
NAVIGATION: list[tuple[str, str]] = []

# Every asset comes from the app itself (no CDN: users sit on closed networks) and no inline script
# runs. Inline styles are allowed: ECharts writes its tooltips with style attributes.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))


def console_language() -> str:
    """The language the caller chose with the switch (a cookie), else Chinese."""
    if "console_language" not in g:
        chosen = request.cookies.get(LANGUAGE_COOKIE)
        g.console_language = chosen if chosen in i18n.supported_languages() else i18n.DEFAULT_LANGUAGE
    language: str = g.console_language
    return language


def gettext(message: str, **variables: Any) -> str:
    """``message`` (English, marked for extraction where it is written) in the console's language;
    ``%(name)s`` placeholders filled from ``variables``."""
    text = i18n.gettext_in(console_language(), message)
    return text % variables if variables else text


def _ngettext(singular: str, plural: str, count: int) -> str:
    return i18n.current_catalogues().of(console_language()).ngettext(singular, plural, count)


def safe_next(target: str | None) -> str | None:
    """A redirect target only if it is a path of the console (never another host: no open redirect)."""
    if not target or not target.startswith(PREFIX + "/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def render(template: str, status: int = 200, **context: Any) -> Response:
    """A page of the console, in the caller's language."""
    response = Response(render_template(template, **context), status=status, mimetype="text/html")
    response.headers["Content-Language"] = console_language()
    return response


def error_page(status: int, title: str, detail: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    response = render("console/error.html", status=status, title=title, detail=detail)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


bp.before_request(check_csrf)
bp.register_error_handler(CSRFError, csrf_refused)


@bp.context_processor
def _page_context() -> dict[str, Any]:
    caller = browser_caller() if request.endpoint != "console.static" else None
    return {
        "caller": caller,
        "me": authenticated_user() if caller else None,
        "navigation": NAVIGATION if caller and caller.is_manager else [],
    }


@bp.after_request
def _security_headers(response: Response) -> Response:
    slide_idle_timeout(response)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"  # pages show personal data
    response.vary.add("Cookie")
    return response


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    language = console_language()
    title = i18n.title_for(error.code, language)
    detail = i18n.translate(error.detail, language) if error.detail else None
    return error_page(error.status, title, detail, error.headers)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return _unexpected(error)
    headers = {}
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    if status == 429:
        headers.update(dict(getattr(error, "get_headers", lambda: [])()))
        headers.pop("Content-Type", None)
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            413: "payload_too_large", 429: "too_many_requests"}.get(status, "bad_request")
    return error_page(status, i18n.title_for(code, console_language()), None, headers)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    handle_unexpected(error)  # logs it, as for the API
    return error_page(500, i18n.title_for("internal_error", console_language()))


def init_web(app: Flask) -> None:
    """Templates get the console's gettext (``_``), ``ngettext`` and the language; catalogues are
    core's (translations/), so a console text is translated like any other."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    # newstyle: Jinja fills ``%(name)s`` from the call's keywords, escaping them.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
        lambda message: i18n.gettext_in(console_language(), message), _ngettext, newstyle=True
    )
    app.jinja_env.globals["console_language"] = console_language
