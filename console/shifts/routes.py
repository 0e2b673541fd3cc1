"""The Shifts page: a community's week, grid by grid, and one shift with its roster."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from console.shifts import service
from console.shifts.schemas import WeekArgs, load_query
from console.signin import signed_in
from console.web import console_language, render
from core.auth import Caller
from core.i18n import N_
from shifts.service import get_managed_shift, shift_view

bp = Blueprint("shifts", __name__, url_prefix="/shifts")
NAV_ITEM = ("console.shifts.page", N_("Shifts"))


@bp.get("/")
@signed_in
def page(caller: Caller) -> Any:
    """A week of a community's shifts; without a community (and the caller's area is not one), the
    communities of the caller's subtree to choose from."""
    args = load_query(WeekArgs(), request.args)
    community = service.chosen_community(caller, args.get("community"))
    if community is None:
        choices, more = service.communities_to_choose(caller, args.get("q"))
        return render("console/shifts/choose.html", communities=choices, more=more, q=args.get("q", ""))
    monday = args.get("week") or service.current_monday(community.timezone)
    return render("console/shifts/week.html", week=service.week_of(community, monday))


@bp.get("/<int:shift_id>")
@signed_in
def shift(caller: Caller, shift_id: int) -> Any:
    """One shift and its roster; a shift outside the caller's subtree is the 404 of a missing id."""
    managed = get_managed_shift(caller, shift_id)
    view = shift_view(managed)
    service.local_times(view)
    community = managed.grid.parent
    week = service.week_containing(view["starts_at"], community.timezone if community else view["timezone"])
    return render(
        "console/shifts/shift.html", shift=view, community=community, week=week,
        roster=service.roster_of(caller, managed, console_language()),
    )
