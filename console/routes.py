"""Sign-in, sign-out, the language switch and the console's front door."""

from __future__ import annotations

from typing import Any, cast

import marshmallow as ma
from flask import Response, abort, current_app, redirect, request, url_for

from accounts import sessions
from accounts.limits import limit_failed_logins_per_address, limit_failed_logins_per_phone
from accounts.schemas import LoginSchema
from console.signin import browser_caller, sign_in, sign_out, signed_in
from console.web import LANGUAGE_COOKIE, NAVIGATION, PREFIX, bp, gettext, render, safe_next
from core import i18n
from core.auth import Caller
from core.errors import Unauthorized


def _redirect(location: str) -> Response:
    """flask.redirect, typed as what it returns in an app (mypy sees werkzeug's base class)."""
    return cast(Response, redirect(location))


@bp.get("/")
@signed_in
def index(caller: Caller) -> Any:
    """The first page of the navigation (the overview)."""
    if NAVIGATION:
        return redirect(url_for(NAVIGATION[0][0]))
    return render("console/base.html")


@bp.get("/login")
def login() -> Any:
    caller = browser_caller()
    target = safe_next(request.args.get("next"))
    if caller is not None and caller.is_manager:
        return redirect(target or url_for("console.index"))
    return render("console/login.html", next=target)


@bp.post("/login")
@limit_failed_logins_per_phone
@limit_failed_logins_per_address
def login_submit() -> Any:
    """Failed attempts count towards the same limits as the API's login (accounts/limits.py)."""
    target = safe_next(request.form.get("next"))
    try:
        data = LoginSchema().load({"phone": request.form.get("phone", ""), "password": request.form.get("password", "")})
        user = sessions.authenticate(data["phone"], data["password"])
    except (ma.ValidationError, Unauthorized):
        message = gettext("Wrong phone number or password.")
        return render("console/login.html", status=401, next=target, error=message,
                      phone=request.form.get("phone", "")[:32])
    if user.role == "volunteer":
        return render("console/volunteers_elsewhere.html", status=403)
    response = _redirect(target or url_for("console.index"))
    sign_in(response, user)
    return response


@bp.post("/logout")
def logout() -> Response:
    response = _redirect(url_for("console.login"))
    sign_out(response)
    return response


@bp.get("/language/<language>")
def language(language: str) -> Response:
    """Switch the console's language (a cookie), back to the page it was chosen on."""
    if language not in i18n.supported_languages():
        abort(404)
    response = _redirect(safe_next(request.args.get("next")) or url_for("console.index"))
    response.set_cookie(
        LANGUAGE_COOKIE, language, max_age=365 * 86400, path=PREFIX + "/",
        secure=not current_app.config["CONSOLE_INSECURE_COOKIES"], httponly=True, samesite="Lax",
    )
    return response


@bp.route("/<path:unknown>", methods=["GET", "POST"])
def unknown_page(unknown: str) -> Response:
    abort(404)
