"""``area_sums``: an area's own figures and series without its children or medians, for the console's
overview, must be exactly the sums ``area_report`` answers (the medians, which it leaves out, aside)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from core.auth import Caller, Role
from core.errors import OutOfScope
from core.extensions import db
from demo_data import seed_demo
from grids.models import Area, AreaLevel
from reports.participation.service import area_report, area_sums
from reports.replica import reading_reports
from tests import factories
from tests.conftest import Tree

MEDIANS = ("median_minutes_to_take_up", "median_minutes_to_resolve")


def _without_medians(figures: dict[str, Any]) -> dict[str, Any]:
    return {**figures, "reports": {key: value for key, value in figures["reports"].items() if key not in MEDIANS}}


def _months() -> list[str]:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    last = today.replace(day=1) - timedelta(days=1)
    return [f"{today:%Y-%m}", f"{last:%Y-%m}"]


def test_the_sums_are_the_reports_own_for_this_month_and_the_last(app: Flask) -> None:
    seed_demo()  # once for every level: the seed is the slow part
    factories.fold_into_rollups()
    city = db.session.scalars(sa.select(Area).where(Area.level == AreaLevel.CITY)).one()
    caller = Caller(user_id=1, role=Role.ADMIN, area_path=city.path, session_id="test")
    for level in (AreaLevel.CITY, AreaLevel.DISTRICT, AreaLevel.COMMUNITY, AreaLevel.GRID):
        area = db.session.scalars(sa.select(Area).where(Area.level == level).order_by(Area.id).limit(1)).one()
        seen = 0
        with app.test_request_context(), reading_reports():
            for month in _months():
                for series in (None, "day"):
                    args: dict[str, Any] = {"area_id": area.id, "period": "month", "value": month}
                    if series:
                        args["series"] = series
                    sums, report = area_sums(caller, args), area_report(caller, args)
                    assert sums["period"] == report["period"] and sums["area"] == report["area"], level
                    assert _without_medians(sums["figures"]) == _without_medians(report["figures"]), level
                    if level != AreaLevel.GRID:
                        assert all(sums["figures"]["reports"][name] is None for name in MEDIANS)
                    assert (sums["series"] is None) == (series is None)
                    for mine, theirs in zip(sums["series"] or [], report["series"] or [], strict=True):
                        assert _without_medians(mine) == _without_medians(theirs), (level, mine["label"])
                    seen += report["figures"]["reports"]["filed"] + report["figures"]["presence"]["served"]
        assert seen > 0, level  # the demo's history is there: the comparison compared figures


def test_outside_the_callers_subtree_it_refuses_before_computing(app: Flask, tree: Tree) -> None:
    caller = Caller(user_id=1, role=Role.STAFF, area_path=tree.district_a.path, session_id="test")
    with app.test_request_context(), pytest.raises(OutOfScope):
        area_sums(caller, {"area_id": tree.district_b.id, "period": "month"})
