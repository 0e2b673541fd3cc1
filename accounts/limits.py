"""Brute-force limits on logins, shared by every way in (the API's JSON login, the console's form).

They count failed attempts only (a response with status 401), per phone number and per client
address; the limit strings are read per request so operators (and tests) can change them without a
restart. Both ways in share one budget: the keys do not say which way the attempt came.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, request

from core.extensions import client_address, limiter
from core.validators import normalise_cn_mobile


def _login_failed(response: Any) -> bool:
    return response.status_code == 401


def _phone_tried() -> object:
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("phone")
    body = request.get_json(silent=True)
    return body.get("phone") if isinstance(body, dict) else None


def _login_phone_key() -> str:
    """The phone being tried, normalised so that spellings of one number share a budget."""
    raw = _phone_tried()
    if not isinstance(raw, str):
        return "login-phone:-"
    try:
        return "login-phone:" + normalise_cn_mobile(raw)
    except ma.ValidationError:
        return "login-phone:" + raw.strip()[:64]


def _login_address_key() -> str:
    return "login-address:" + client_address()


# shared_limit: one budget for every view it decorates (the API's login and the console's), not one per view.
limit_failed_logins_per_phone = limiter.shared_limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_PHONE"],
    "login-phone",
    key_func=_login_phone_key,
    deduct_when=_login_failed,
)
limit_failed_logins_per_address = limiter.shared_limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    "login-address",
    key_func=_login_address_key,
    deduct_when=_login_failed,
)
