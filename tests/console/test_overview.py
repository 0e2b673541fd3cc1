"""The overview page through the test client: its figures are the API's for the same caller and
month, its lists count what needs attention in the area only, and it refuses what the API refuses
(an area outside the caller's subtree, a sibling's, a volunteer, junk arguments)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from accounts import sessions
from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel
from patrols.models import Patrol
from patrols.reports.models import Report
from shifts.models import Shift
from tests import factories
from tests.conftest import Tree
from tests.console.support import signed_in
from volunteers.models import Volunteer

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=SHANGHAI).astimezone(UTC)


def _shift(grid: Area, start: datetime, hours: float = 2, places: int = 3) -> Shift:
    shift = factories.make_shift(grid, max_headcount=places)
    shift.starts_at, shift.ends_at = start, start + timedelta(hours=hours)
    db.session.flush()
    return shift


def _patrol(shift: Shift, volunteer: Volunteer, presence: str, minutes: int | None) -> None:
    assignment = factories.make_assignment(shift, volunteer)
    db.session.add(Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id,
                          presence_status=presence, served_minutes=minutes))
    db.session.flush()


def _report(grid: Area, volunteer: Volunteer, level: str, received: datetime, status: str = "open") -> None:
    db.session.add(Report(
        client_id=str(uuid.uuid4()), volunteer_id=volunteer.id, grid_id=grid.id, category="other", level=level,
        status=status, description="情况", lat=40.65, lon=109.84, device_at=received, received_at=received,
    ))
    db.session.flush()


@pytest.fixture
def months(tree: Tree) -> dict[str, Any]:
    """September 2026 against August in district A (and the same kind of rows in district B, which
    must never show), plus what needs attention now."""
    v1 = factories.make_volunteer(tree.grid_a, real_name="甲")
    v2 = factories.make_volunteer(tree.grid_a_east, real_name="乙")
    vb = factories.make_volunteer(tree.grid_b, real_name="丙")
    for volunteer in (v1, v2, vb):
        volunteer.created_at = local(7, 1)  # registered before the months reported on
    september = _shift(tree.grid_a, local(9, 10, 8))
    _patrol(september, v1, "verified", 120)
    factories.make_assignment(september, v2, status="absent")
    _patrol(_shift(tree.grid_a_east, local(9, 12, 19)), v2, "approved", 90)
    _patrol(_shift(tree.grid_a, local(8, 20, 8)), v1, "verified", 60)
    _patrol(_shift(tree.grid_b, local(9, 11, 8)), vb, "verified", 600)
    _report(tree.grid_a, v1, "red", local(9, 10, 9), status="resolved")
    _report(tree.grid_a, v1, "green", local(9, 10, 9), status="resolved")
    _report(tree.grid_a_east, v2, "orange", local(8, 3, 9), status="resolved")
    _report(tree.grid_b, vb, "red", local(9, 3, 9), status="resolved")
    # Needs attention now: in district A one of each; in district B the same, never counted for A.
    for grid, volunteer in ((tree.grid_a, v1), (tree.grid_b, vb)):
        gap = factories.make_shift(grid, starts_in=timedelta(hours=10), min_headcount=2)
        ended = _shift(grid, utcnow() - timedelta(hours=5))
        _patrol(ended, volunteer, "needs_review", None)
        _report(grid, volunteer, "red", utcnow() - timedelta(hours=1))
        _report(grid, volunteer, "yellow", utcnow() - timedelta(hours=1))  # not urgent
        factories.make_volunteer(grid, status="pending", real_name="待审")
        assert gap.primary_count < gap.min_headcount
    factories.fold_into_rollups()
    return {"v1": v1}


_FIGURE = r'data-test="{test}">\s*<div class="label">[^<]*</div>\s*<div class="value">([^<]*)'


def shown(html: str, test: str) -> str:
    match = re.search(_FIGURE.format(test=test), html)
    assert match, f"no figure {test}"
    return match.group(1).strip()


def level_count(html: str, level: str) -> int:
    match = re.search(rf'data-test="reports-{level}">.*?<span class="count">(\d+)</span>', html, re.S)
    assert match
    return int(match.group(1))


def attention_count(html: str, key: str) -> str:
    match = re.search(rf'data-test="attention-{key}-count">([^<]*)<', html)
    assert match
    return match.group(1)


def api(client: FlaskClient, user: Any, path: str) -> dict[str, Any]:
    response = client.get(path, headers=factories.headers_for(user))
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_the_figures_are_the_apis_for_the_same_caller_and_month(client: FlaskClient, tree: Tree, months: dict[str, Any]) -> None:
    staff = factories.make_user("staff", tree.district_a)
    page = signed_in(client, staff).get(f"/console/overview/?area={tree.district_a.id}&month=2026-09")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    area = tree.district_a.id
    now = api(client, staff, f"/api/v1/reports/participation?area_id={area}&period=month&value=2026-09")["figures"]
    before = api(client, staff, f"/api/v1/reports/participation?area_id={area}&period=month&value=2026-08")["figures"]
    coverage = api(client, staff, f"/api/v1/reports/coverage?area_id={area}&period=month&value=2026-09")

    assert now["volunteers"]["active"] == 2 and now["presence"]["served_hours"] == 3.5  # district B left out
    assert int(shown(html, "figure-active-volunteers")) == now["volunteers"]["active"]
    assert float(shown(html, "figure-served-hours")) == now["presence"]["served_hours"]
    assert float(shown(html, "figure-attendance")) == round(now["presence"]["attendance_rate"] * 100, 1)
    assert shown(html, "figure-coverage") == (
        "—" if coverage["totals"]["coverage_pct"] is None else str(coverage["totals"]["coverage_pct"])
    )
    for level in ("red", "orange", "yellow", "green"):
        assert level_count(html, level) == now["reports"]["by_level"][level]
    assert level_count(html, "red") == 1 and level_count(html, "orange") == 0
    # The change from last month: served hours 3.5 against 1.0; orange one fewer.
    assert before["presence"]["served_hours"] == 1.0
    assert re.search(r'data-test="figure-served-hours">.*?<div class="change up">\+2\.5', html, re.S)
    assert re.search(r'data-test="reports-orange">.*?<span class="change good-down">-1<', html, re.S)
    # The weakest grids: the coverage report's order, each linking to its participation page.
    ranked = [grid["grid_id"] for grid in coverage["grids"]][:10]
    assert re.findall(r'href="/console/participation/\?area=(\d+)"', html) == [str(grid) for grid in ranked]
    assert 'data-drawn' not in html and 'data-test="trend-chart"' in html
    assert '"days": ["2026-09-01"' in html  # the chart's data block: a point per day of the month


def test_what_needs_attention_counts_the_area_only(client: FlaskClient, tree: Tree, months: dict[str, Any]) -> None:
    staff = factories.make_user("staff", tree.district_a)
    html = signed_in(client, staff).get("/console/overview/").get_data(as_text=True)
    for key in ("short_shifts", "presence_review", "urgent_reports", "pending_volunteers"):
        assert attention_count(html, key) == "1", key
    assert "待审" in html and 'href="/console/vetting/"' in html and 'href="/console/triage/"' in html
    # The city sees both districts' rows.
    admin = factories.make_user("staff", tree.city)
    client.delete_cookie("console_token", path="/console/")
    html = signed_in(client, admin).get("/console/overview/").get_data(as_text=True)
    for key in ("short_shifts", "presence_review", "urgent_reports", "pending_volunteers"):
        assert attention_count(html, key) == "2", key
    # ... and, asked for district A, district A's only (each list takes the area, not the caller's).
    html = client.get(f"/console/overview/?area={tree.district_a.id}").get_data(as_text=True)
    for key in ("short_shifts", "presence_review", "urgent_reports", "pending_volunteers"):
        assert attention_count(html, key) == "1", key


def test_by_default_the_callers_area_and_the_month_under_way(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    console = signed_in(client, organiser)
    index = console.get("/console/")
    assert index.status_code == 302 and index.headers["Location"].endswith("/console/overview/")
    html = console.get("/console/overview/").get_data(as_text=True)
    month = utcnow().astimezone(SHANGHAI).strftime("%Y-%m")
    assert f"{tree.community_a.name} · {month}" in html


def test_an_area_outside_the_callers_subtree_is_the_403_page(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    console = signed_in(client, organiser)
    assert console.get(f"/console/overview/?area={tree.grid_a.id}").status_code == 200
    for outside in (tree.community_a2, tree.subdistrict_a, tree.district_a, tree.community_b, tree.grid_b):
        page = console.get(f"/console/overview/?area={outside.id}")
        assert page.status_code == 403, outside.name
        assert "problem" in page.get_data(as_text=True)


def test_a_sibling_whose_id_extends_the_callers_is_refused(client: FlaskClient, tree: Tree) -> None:
    inside = factories.make_area(AreaLevel.SUBDISTRICT, tree.district_a, area_id=3_000_003)
    sibling = factories.make_area(AreaLevel.SUBDISTRICT, tree.district_a, area_id=30_000_031)
    assert sibling.path.startswith(inside.path.rstrip("/"))  # a prefix of the text, not of the path
    console = signed_in(client, factories.make_user("organiser", inside))
    assert console.get(f"/console/overview/?area={inside.id}").status_code == 200
    assert console.get(f"/console/overview/?area={sibling.id}").status_code == 403
    staff_b = factories.make_user("staff", tree.district_b)
    client.delete_cookie("console_token", path="/console/")
    assert signed_in(client, staff_b).get(f"/console/overview/?area={tree.district_a.id}").status_code == 403


def test_a_volunteer_is_refused(client: FlaskClient, tree: Tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    # A volunteer cannot sign in to the console; with a session made by hand, the page still refuses.
    token = sessions.open_browser_session(volunteer.user, timedelta(minutes=30))
    client.set_cookie("console_token", token, path="/console/")
    page = client.get("/console/overview/")
    assert page.status_code == 403
    assert "figures" not in page.get_data(as_text=True)


def test_signed_out_goes_to_the_sign_in_page(client: FlaskClient) -> None:
    page = client.get("/console/overview/?month=2026-09")
    assert page.status_code == 302 and "/console/login?next=" in page.headers["Location"]


@pytest.mark.parametrize("query", [
    "area=abc", "area=0", "area=-1", "area=99999999999999999999", "area=2147483647", "area=1.5",
    "month=2026-13", "month=26-01", "month=junk", "month=2026-09%0A", "month=%ED%A0%80", "month=" + "9" * 5000,
    "area=%ED%A0%80",
])
def test_junk_arguments_are_a_4xx_page(client: FlaskClient, tree: Tree, query: str) -> None:
    console = signed_in(client, factories.make_user("staff", tree.district_a))
    page = console.get(f"/console/overview/?{query}")
    assert 400 <= page.status_code < 500, (query, page.status_code)
    assert page.mimetype == "text/html"
