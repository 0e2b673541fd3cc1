"""The overview page: ``GET /console/overview/?area=<id>&month=YYYY-MM``."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, request

from console.overview import service
from console.overview.schemas import OverviewArgs
from console.signin import signed_in
from console.web import render
from core.auth import Caller
from core.errors import ValidationFailed
from core.i18n import N_

bp = Blueprint("overview", __name__, url_prefix="/overview")
NAV_ITEM = ("console.overview.page", N_("Overview"))


@bp.get("/")
@signed_in
def page(caller: Caller) -> Any:
    try:
        args = OverviewArgs().load(request.args)
    except ma.ValidationError as error:
        raise ValidationFailed(errors=error.normalized_messages()) from None  # the 422 page, as the API's answer
    view = service.overview(caller, args.get("area"), args.get("month"))
    return render("console/overview/page.html", view=view)
