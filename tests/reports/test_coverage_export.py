"""The coverage report's export: the XLSX read back with openpyxl and the CSV with csv hold the
JSON report's very figures (minutes as hours), part by part; headers in Chinese and English; the
layout; formula neutralisation; the refusals (those of the JSON report)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from core.extensions import db
from grids.models import AreaLevel
from reports.exports.base import XLSX_MIMETYPE
from reports.exports.writers import UTF8_BOM
from tests import factories
from tests.conftest import Tree
from tests.problems import EN, assert_problem
from tests.reports.test_coverage import DAYS, _day, _start, world  # noqa: F401  (world: the hand-built four weeks)

EXPORT = "/api/v1/reports/coverage/export"
REPORT = "/api/v1/reports/coverage"
EVIL_GRID = "@SUM(1+1)*cmd|' /C calc'!A0"
SHEETS = ["Area", "Grids", "Uncovered shifts", "Days without patrol", "Below steward quota"]


def _period() -> dict[str, str]:
    return {"from": _start().isoformat(), "to": (_start() + timedelta(days=DAYS - 1)).isoformat()}


def _get(client: FlaskClient, url: str, user: Any, headers: dict[str, str] | None = None, **query: Any) -> Any:
    return client.get(url, query_string=query, headers=factories.headers_for(user, **(headers or {})), buffered=True)


def _records(sheet: Worksheet) -> list[dict[str, Any]]:
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _assert_figures(record: dict[str, Any], figures: dict[str, Any]) -> None:
    assert record["Shifts"] == figures["shift_count"]
    for header, key in (("Planned hours", "planned_minutes"), ("Target hours", "target_minutes"),
                        ("Expected hours", "expected_minutes"), ("Staffed hours", "staffed_minutes"),
                        ("Served hours", "served_minutes")):
        assert record[header] == _hours(figures[key]), header
    assert record["Coverage (%)"] == figures["coverage_pct"]
    assert record["Previous expected hours"] == _hours(figures["previous"]["expected_minutes"])
    assert record["Previous served hours"] == _hours(figures["previous"]["served_minutes"])
    assert record["Previous coverage (%)"] == figures["previous"]["coverage_pct"]
    assert record["Change (points)"] == figures["coverage_change"]


def _staff(world: Tree) -> Any:
    return factories.make_user("staff", world.district_a)


def test_the_workbook_holds_the_reports_figures_part_by_part(client: FlaskClient, world: Tree) -> None:
    staff = _staff(world)
    query = {"area_id": world.district_a.id, **_period()}
    report = _get(client, REPORT, staff, **query).get_json()
    response = _get(client, EXPORT, staff, EN, **query, format="xlsx")
    assert response.status_code == 200 and response.mimetype == XLSX_MIMETYPE
    workbook = load_workbook(io.BytesIO(response.get_data()))
    assert workbook.sheetnames == SHEETS

    (area,) = _records(workbook["Area"])
    assert (area["ID"], area["Name"], area["Grids"], area["Grids without shifts"]) == (world.district_a.id, "东河区", 3, 1)
    assert area["From"] == datetime.combine(_start(), datetime.min.time())
    _assert_figures(area, report["totals"])
    assert area["Served hours"] == 7.67 and area["Coverage (%)"] == 25.6 and area["Change (points)"] == 12.3

    grids = _records(workbook["Grids"])
    assert [row["ID"] for row in grids] == [grid["grid_id"] for grid in report["grids"]]
    assert [row["Rank"] for row in grids] == [1, 2, 3]
    for row, grid in zip(grids, report["grids"], strict=True):
        _assert_figures(row, grid)
        assert row["Uncovered shifts"] == grid["uncovered_shift_count"]
        assert row["Days without patrol"] == grid["days_without_patrol_count"]
    assert [row["Expected from"] for row in grids] == ["Nothing expected", "Weekly target", "Shifts planned"]
    assert grids[1]["Weekly target hours"] == 7 and grids[0]["Weekly target hours"] is None

    (uncovered,) = _records(workbook["Uncovered shifts"])
    grid_a = report["grids"][1]
    assert uncovered["ID"] == world.grid_a.id and uncovered["Shift ID"] == grid_a["uncovered_shifts"][0]["shift_id"]
    assert uncovered["Starts"] == datetime.fromisoformat(f"{_day(20)}T08:00:00")  # the grid's wall clock
    assert uncovered["Ends"] == datetime.fromisoformat(f"{_day(20)}T10:00:00")

    empty = _records(workbook["Days without patrol"])
    expected = [(grid["grid_id"], window["first"], window["last"]) for grid in report["grids"]
                for window in grid["days_without_patrol"]]
    assert [(row["ID"], row["From"].date().isoformat(), row["To"].date().isoformat()) for row in empty] == expected
    assert sum(row["Days"] for row in empty) == sum(grid["days_without_patrol_count"] for grid in report["grids"])

    (quota,) = _records(workbook["Below steward quota"])
    assert quota == {"ID": world.grid_a_east.id, "Name": world.grid_a_east.name,
                     "Volunteer kind": factories.kind("alley_steward").name_en, "Quota": 2, "Active volunteers": 1,
                     "Missing": 1}


def test_headers_are_chinese_by_default_and_the_layout(client: FlaskClient, world: Tree) -> None:
    response = _get(client, EXPORT, _staff(world), area_id=world.district_a.id, **_period())
    workbook = load_workbook(io.BytesIO(response.get_data()))
    assert workbook.sheetnames == ["本区域", "网格", "无人服务班次", "无巡逻日", "配额不足网格"]
    sheet = workbook["网格"]
    headers = [cell.value for cell in sheet[1]]
    assert headers[:4] == ["排名", "编号", "代码", "名称"] and "覆盖率（%）" in headers
    assert sheet.freeze_panes == "A2" and all(cell.font.b for cell in sheet[1])
    row = dict(zip(headers, sheet[2], strict=True))
    assert row["应巡时长（人·小时）"].number_format == "0.0" and row["排名"].number_format == "0"
    assert row["应巡依据"].value == "无应巡要求"
    assert workbook["本区域"]["D2"].number_format == "yyyy-mm-dd"
    assert workbook["无人服务班次"]["D2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert {letter: dimension.width for letter, dimension in sheet.column_dimensions.items()}["D"] >= 16
    (quota,) = _records(workbook["配额不足网格"])
    assert quota["志愿者类型"] == factories.kind("alley_steward").name_zh


def test_the_csv_is_one_table_with_a_part_column(client: FlaskClient, world: Tree) -> None:
    staff = _staff(world)
    query = {"area_id": world.district_a.id, **_period()}
    report = _get(client, REPORT, staff, **query).get_json()
    response = _get(client, EXPORT, staff, EN, **query, format="csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8; header=present"
    data = response.get_data()
    assert data.startswith(UTF8_BOM.encode())
    records = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert list(records[0])[:3] == ["Part", "ID", "Name"]
    windows = sum(len(grid["days_without_patrol"]) for grid in report["grids"])
    assert [record["Part"] for record in records] == (
        ["area"] + ["grid"] * 3 + ["uncovered_shift"] + ["days_without_patrol"] * windows + ["below_quota"]
    )
    area, grids = records[0], records[1:4]
    assert area["Served hours"] == str(_hours(report["totals"]["served_minutes"])) and area["Rank"] == ""
    assert area["From"] == _day(0) and area["To"] == _day(DAYS - 1)
    for record, grid in zip(grids, report["grids"], strict=True):
        assert record["ID"] == str(grid["grid_id"]) and record["Rank"] == str(grid["rank"])
        assert record["Expected hours"] == str(_hours(grid["expected_minutes"]))
        assert record["Coverage (%)"] == ("" if grid["coverage_pct"] is None else str(grid["coverage_pct"]))
    assert records[4]["Starts"] == f"{_day(20)}T08:00:00" and records[4]["Shift ID"] != ""
    assert records[-1]["Missing"] == "1" and records[-1]["Served hours"] == ""
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="coverage-{world.district_a.id}-{_day(0)}_{_day(DAYS - 1)}.csv"')


def test_names_that_look_like_formulas_are_neutralised(client: FlaskClient, world: Tree) -> None:
    world.grid_a_east.name = EVIL_GRID
    db.session.flush()
    query = {"area_id": world.district_a.id, **_period()}
    workbook = load_workbook(io.BytesIO(_get(client, EXPORT, _staff(world), EN, **query).get_data()))
    for sheet in ("Grids", "Days without patrol", "Below steward quota"):
        names = [row["Name"] for row in _records(workbook[sheet])]
        assert "'" + EVIL_GRID in names and EVIL_GRID not in names, sheet
    text = _get(client, EXPORT, _staff(world), EN, **query, format="csv").get_data(as_text=True)
    names = [record["Name"] for record in csv.DictReader(io.StringIO(text.lstrip(UTF8_BOM)))]
    assert "'" + EVIL_GRID in names and not any(name.startswith(("=", "+", "-", "@")) for name in names)


def test_refusals_are_the_reports(client: FlaskClient, world: Tree) -> None:
    query = {"area_id": world.district_a.id, **_period()}
    outsider = factories.make_user("staff", world.district_b)
    assert_problem(_get(client, EXPORT, outsider, **query), 403, "out_of_scope")
    organiser = factories.make_user("organiser", world.community_a)
    assert_problem(_get(client, EXPORT, organiser, **query), 403, "out_of_scope")
    volunteer = factories.make_volunteer(world.grid_a)
    assert_problem(_get(client, EXPORT, volunteer.user, **query), 403, "forbidden")
    staff = _staff(world)
    assert "format" in assert_problem(_get(client, EXPORT, staff, **query, format="pdf"), 422, "validation_failed")["errors"]
    assert_problem(_get(client, EXPORT, staff, {"Accept": "application/json"}, **query), 406, "not_acceptable")
    inverted = {"area_id": world.district_a.id, "from": _day(5), "to": _day(1)}
    assert "to" in assert_problem(_get(client, EXPORT, staff, **inverted), 422, "validation_failed")["errors"]
    unknown = {**query, "area_id": 2_000_000_000}
    assert "area_id" in assert_problem(_get(client, EXPORT, staff, **unknown), 422, "validation_failed")["errors"]
    assert client.get(EXPORT, query_string=query).status_code == 401
    city = factories.make_user("admin", world.city)
    assert _get(client, EXPORT, city, **{**query, "area_id": factories.make_area(AreaLevel.DISTRICT, world.city).id},
                format="csv").status_code == 200  # an area without grids: the header and the area's row
