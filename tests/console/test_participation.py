"""The participation page through the test client: the API's figures for the same caller, the
drill-down links and breadcrumbs, a volunteer's figures, the scope refusals, junk periods, and the
download buttons giving the API's very files."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook

from console.participation.routes import COLUMNS, figure_at
from tests import factories
from tests.conftest import Tree
from tests.console.report_world import SEPTEMBER, SHANGHAI, World, html, main_of, september
from tests.console.support import signed_in

PAGE = "/console/participation/"
API = "/api/v1/reports/participation"


@pytest.fixture
def world(tree: Tree) -> World:
    return september(tree)


def _api(client: FlaskClient, user: Any, path: str = API, **query: Any) -> Any:
    response = client.get(path, query_string=query, headers=factories.headers_for(user), buffered=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response


def _values(row: Any) -> dict[str, Any]:
    return {cell.get("data-key"): json.loads(cell.get("data-value")) for cell in row.xpath(".//td[@data-key]")}


def _expected(figures: dict[str, Any]) -> dict[str, Any]:
    return {".".join(path): figure_at(figures, path) for _label, path, _kind in COLUMNS}


def _query(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


def test_a_districts_page_shows_the_apis_figures_for_the_area_and_each_child(client: FlaskClient, world: World) -> None:
    staff = factories.make_user("staff", world.tree.district_a)
    report = _api(client, staff, area_id=world.tree.district_a.id, **SEPTEMBER).get_json()
    page = signed_in(client, staff).get(PAGE, query_string={"area": world.tree.district_a.id, **SEPTEMBER})
    assert page.status_code == 200
    doc = html(page)
    assert _values(doc.xpath("//tr[@data-test='area-row']")[0]) == _expected(report["figures"])
    rows = doc.xpath("//tr[@data-test='child-row']")
    assert [int(row.get("data-id")) for row in rows] == [child["id"] for child in report["children"]]
    for row, child in zip(rows, report["children"], strict=True):
        assert _values(row) == _expected(child["figures"])
        link = row.xpath(".//a[@data-test='drill']")[0].get("href")
        assert link.startswith(PAGE) and _query(link) == {"area": [str(child["id"])], "period": ["month"], "value": ["2026-09"]}
    assert report["figures"]["presence"]["served"] == 3  # the world is not all zeros


def test_staff_drill_down_to_a_grids_volunteers_and_a_volunteers_figures(client: FlaskClient, world: World) -> None:
    tree = world.tree
    staff = factories.make_user("staff", tree.district_a)
    console = signed_in(client, staff)
    path = [tree.district_a, tree.subdistrict_a, tree.community_a, tree.grid_a]
    link = f"{PAGE}?area={tree.district_a.id}&period=month&value=2026-09"
    for depth, area in enumerate(path):
        page = console.get(link)
        assert page.status_code == 200, link
        doc = html(page)
        assert int(doc.xpath("//*[@data-test='participation-title']")[0].get("data-area")) == area.id
        crumbs = [int(crumb.get("data-area")) for crumb in doc.xpath("//*[@data-test='crumb']")]
        assert crumbs == [step.id for step in path[: depth + 1]]  # from the staff's district, never the city
        if depth + 1 < len(path):
            link = doc.xpath(f"//a[@data-test='drill'][@data-id='{path[depth + 1].id}']")[0].get("href")
    report = _api(client, staff, area_id=tree.grid_a.id, **SEPTEMBER).get_json()
    assert report["children_level"] == "volunteer"
    rows = doc.xpath("//tr[@data-test='child-row']")
    assert {row.get("data-level") for row in rows} == {"volunteer"}
    assert [int(row.get("data-id")) for row in rows] == [world.calm.id, world.late.id, world.east.id]
    for row, child in zip(rows, report["children"], strict=True):
        assert _values(row) == _expected(child["figures"])  # shifts are no volunteer's: null, shown as —
    link = doc.xpath(f"//a[@data-test='drill'][@data-id='{world.calm.id}']")[0].get("href")
    volunteer_page = console.get(link)
    assert volunteer_page.status_code == 200
    figures = next(child for child in report["children"] if child["id"] == world.calm.id)["figures"]
    values = {cell.get("data-key"): json.loads(cell.get("data-value")) for cell in html(volunteer_page).xpath("//td[@data-key]")}
    assert values["presence.served"] == figures["presence"]["served"] == 1
    assert values["presence.served_hours"] == figures["presence"]["served_hours"] == 2.0
    assert values["points.awarded"] == figures["points"]["awarded"]
    assert all(values[key] == figure_at(figures, tuple(key.split("."))) for key in values)


def test_an_organisers_page_opens_on_their_community_this_month(client: FlaskClient, world: World) -> None:
    organiser = factories.make_user("organiser", world.tree.community_a)
    page = signed_in(client, organiser).get(PAGE)
    assert page.status_code == 200
    doc = html(page)
    title = doc.xpath("//*[@data-test='participation-title']")[0]
    assert int(title.get("data-area")) == world.tree.community_a.id
    assert doc.xpath("//*[@data-test='period']")[0].get("data-label") == datetime.now(SHANGHAI).strftime("%Y-%m")
    assert [int(c.get("data-area")) for c in doc.xpath("//*[@data-test='crumb']")] == [world.tree.community_a.id]


def test_an_area_outside_the_callers_subtree_is_the_403_page(client: FlaskClient, world: World) -> None:
    tree = world.tree
    console = signed_in(client, factories.make_user("organiser", tree.community_a))
    for area in (tree.community_a2, tree.district_a, tree.grid_b, tree.city):  # a sibling, above, elsewhere
        page = console.get(PAGE, query_string={"area": area.id, **SEPTEMBER})
        assert page.status_code == 403, area.name
        assert "text/html" in page.content_type
        assert world.late.real_name not in page.get_data(as_text=True)
    for fmt in ("xlsx", "csv"):
        assert console.get(f"{PAGE}export.{fmt}", query_string={"area": tree.community_a2.id}).status_code == 403


def test_a_volunteer_out_of_reach_is_the_404_page_of_a_missing_one(client: FlaskClient, world: World) -> None:
    tree = world.tree
    console = signed_in(client, factories.make_user("organiser", tree.community_a))
    missing = console.get(f"{PAGE}volunteers/2147483000", query_string=SEPTEMBER)
    assert missing.status_code == 404
    for query in (SEPTEMBER, {"area": tree.grid_a.id, **SEPTEMBER}):
        stranger = console.get(f"{PAGE}volunteers/{world.stranger.id}", query_string=query)
        assert stranger.status_code == 404
        assert main_of(stranger) == main_of(missing)
        assert world.stranger.real_name not in stranger.get_data(as_text=True)
    assert console.get(f"{PAGE}volunteers/{world.calm.id}", query_string=SEPTEMBER).status_code == 200
    # the grid's report lists a visitor homed elsewhere; named with the grid, they are found there
    visiting = console.get(f"{PAGE}volunteers/{world.east.id}", query_string={"area": tree.grid_a.id, **SEPTEMBER})
    assert visiting.status_code == 200


@pytest.mark.parametrize("query", [
    {"period": "month", "value": "2026-13"},
    {"period": "fortnight"},
    {"period": "quarter", "value": "2026-11"},
    {"period": "range", "from": "2026-09-10", "to": "2026-09-01"},
    {"period": "range", "from": "2001-01-01", "to": "2026-09-01"},
    {"period": "range", "from": "2026-09-10"},
    {"from": "2026-02-30", "to": "2026-03-01"},
    {"value": "2026-09"},
    {"area": "abc"},
    {"area": "99999999999999999999"},
    {"area": "0"},
    "area=%ED%A0%80",  # a lone surrogate, as a browser might send it
    "period=month&value=%ED%A0%80",
    "period=month&value=%FF",
    {"period": "month", "value": "9" * 5000},
    {"surprise": "1"},
])
def test_junk_in_the_query_is_a_4xx_page(client: FlaskClient, tree: Tree, query: dict[str, str] | str) -> None:
    console = signed_in(client, factories.make_user("staff", tree.district_a))
    for path in (PAGE, f"{PAGE}export.csv", f"{PAGE}volunteers/1"):
        page = console.get(path, query_string=query)
        assert 400 <= page.status_code < 500, (path, query, page.status_code)
        assert "text/html" in page.content_type


def test_an_unknown_area_is_422_as_in_the_api(client: FlaskClient, tree: Tree) -> None:
    console = signed_in(client, factories.make_user("admin", tree.city))
    assert console.get(PAGE, query_string={"area": 2147483000}).status_code == 422


def test_signed_out_the_pages_and_files_lead_to_the_sign_in_page(client: FlaskClient, tree: Tree) -> None:
    for path in (PAGE, f"{PAGE}export.xlsx", f"{PAGE}volunteers/1"):
        response = client.get(path, query_string={"area": tree.grid_a.id})
        assert response.status_code == 302 and "/console/login" in response.headers["Location"]


@pytest.fixture
def frozen_as_of(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """One ``as_of`` for both requests (the files carry it), so the two files can be compared."""
    instant = datetime(2026, 10, 2, 8, 30, tzinfo=UTC)
    monkeypatch.setattr("reports.participation.service.figures_as_of", lambda: instant)
    return instant


@pytest.mark.usefixtures("frozen_as_of")
def test_the_csv_download_is_the_apis_file(client: FlaskClient, world: World) -> None:
    staff = factories.make_user("staff", world.tree.district_a)
    query = {"area": world.tree.community_a.id, **SEPTEMBER}
    page = html(signed_in(client, staff).get(PAGE, query_string=query))
    link = page.xpath("//a[@data-test='download-csv']")[0].get("href")
    mine = client.get(link, buffered=True)
    theirs = client.get(f"{API}/export", query_string={"area_id": world.tree.community_a.id, **SEPTEMBER, "format": "csv"},
                        headers=factories.headers_for(staff, **{"Accept-Language": "zh"}), buffered=True)
    assert mine.status_code == theirs.status_code == 200
    assert mine.get_data() == theirs.get_data()
    assert world.calm.real_name not in mine.get_data(as_text=True)  # a community's children are grids
    for header in ("Content-Disposition", "Content-Type", "X-Content-Type-Options"):
        assert mine.headers[header] == theirs.headers[header], header
    assert "filename*=UTF-8''" in mine.headers["Content-Disposition"]
    assert "no-store" in mine.headers["Cache-Control"]


@pytest.mark.usefixtures("frozen_as_of")
def test_the_xlsx_download_is_the_apis_workbook(client: FlaskClient, world: World) -> None:
    staff = factories.make_user("staff", world.tree.district_a)
    console = signed_in(client, staff)
    for area in (world.tree.district_a, world.tree.grid_a):
        page = html(console.get(PAGE, query_string={"area": area.id, **SEPTEMBER}))
        mine = client.get(page.xpath("//a[@data-test='download-xlsx']")[0].get("href"), buffered=True)
        theirs = client.get(f"{API}/export", query_string={"area_id": area.id, **SEPTEMBER, "format": "xlsx"},
                            headers=factories.headers_for(staff, **{"Accept-Language": "zh"}), buffered=True)
        assert mine.status_code == theirs.status_code == 200
        assert mine.headers["Content-Disposition"] == theirs.headers["Content-Disposition"]
        assert mine.headers["Content-Type"] == theirs.headers["Content-Type"]
        ours, api = (load_workbook(io.BytesIO(response.get_data())) for response in (mine, theirs))
        assert ours.sheetnames == api.sheetnames
        for name in api.sheetnames:
            assert list(ours[name].iter_rows(values_only=True)) == list(api[name].iter_rows(values_only=True))
        # the table's rows are the file's rows: the area, then each child in order
        children = [int(row.get("data-id")) for row in page.xpath("//tr[@data-test='child-row']")]
        assert [row[1] for row in list(ours.worksheets[1].iter_rows(values_only=True))[1:]] == children
