"""Exports of the participation report: the XLSX read back with openpyxl and the CSV with csv hold
the JSON report's very figures; headers in Chinese and English; the layout (frozen header, widths,
number and date formats); formula neutralisation end to end; the refusals."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from core.extensions import db
from grids.models import Area, AreaLevel
from patrols.models import Patrol
from reports.exports.base import XLSX_MIMETYPE
from reports.exports.writers import UTF8_BOM, CellKind, Column, Sheet, csv_chunks, neutralise, write_xlsx
from shifts.models import Shift
from tests import factories
from tests.problems import EN, assert_problem
from volunteers.models import Volunteer

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXPORT = "/api/v1/reports/participation/export"
REPORT = "/api/v1/reports/participation"
SEPTEMBER = {"period": "month", "value": "2026-09"}
#: A volunteer and a grid whose names a spreadsheet would run as formulas.
EVIL_GRID = '=HYPERLINK("http://evil.example","点我")'
EVIL_VOLUNTEER = "+1+cmd|' /C calc'!A0"

#: English header → where the JSON report keeps the figure (asserted independently of the export's
#: own column list, so a column wired to the wrong figure fails here).
FIGURES = {
    "Volunteers registered": ("volunteers", "registered"),
    "Volunteers approved": ("volunteers", "approved"),
    "Newly approved": ("volunteers", "newly_approved"),
    "Suspended or closed": ("volunteers", "suspended_closed"),
    "Active volunteers": ("volunteers", "active"),
    "Shifts planned": ("shifts", "planned"),
    "Shifts cancelled": ("shifts", "cancelled"),
    "Places planned": ("shifts", "places_planned"),
    "Places filled": ("shifts", "places_filled"),
    "Fill rate": ("shifts", "fill_rate"),
    "Assignments": ("presence", "assignments"),
    "Served": ("presence", "served"),
    "No-shows": ("presence", "no_shows"),
    "Late withdrawals": ("presence", "late_withdrawals"),
    "Presences in review": ("presence", "in_review"),
    "Attendance rate": ("presence", "attendance_rate"),
    "Served hours": ("presence", "served_hours"),
    "Hours entered by hand": ("presence", "manual_hours"),
    "Reports filed": ("reports", "filed"),
    "Red reports": ("reports", "by_level", "red"),
    "Reports taken up": ("reports", "taken_up"),
    "Median minutes to resolve": ("reports", "median_minutes_to_resolve"),
    "Points awarded": ("points", "awarded"),
    "Points redeemed": ("points", "redeemed"),
}


def local(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=SHANGHAI).astimezone(UTC)


def _volunteer(grid: Area, name: str) -> Volunteer:
    volunteer = factories.make_volunteer(grid, real_name=name)
    volunteer.created_at = local(1)
    return volunteer


def _served(shift: Shift, volunteer: Volunteer, minutes: int) -> None:
    assignment = factories.make_assignment(shift, volunteer)
    db.session.add(Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id,
                          presence_status="verified", served_minutes=minutes))


def _shift(grid: Area, start: datetime, hours: float, places: int) -> Shift:
    shift = factories.make_shift(grid, max_headcount=places)
    shift.starts_at, shift.ends_at = start, start + timedelta(hours=hours)
    return shift


@pytest.fixture
def world() -> dict[str, Any]:
    """September 2026 in a community of two grids, one named like a formula, with a volunteer named
    like one: served shifts, a no-show and an empty place."""
    city, district, _subdistrict, community, grid = factories.make_branch()
    evil_grid = factories.make_area(AreaLevel.GRID, community, name=EVIL_GRID, boundary=factories.square(109.86, 40.65))
    calm, evil = _volunteer(grid, "李四"), _volunteer(grid, EVIL_VOLUNTEER)
    first = _shift(grid, local(10, 22), 3.5, places=3)
    _served(first, calm, 210)
    _served(first, evil, 200)
    second = _shift(evil_grid, local(12, 9), 2, places=2)
    _served(second, calm, 120)
    factories.make_assignment(second, evil, status="absent")
    db.session.flush()
    return {
        "city": city, "district": district, "community": community, "grid": grid, "evil_grid": evil_grid,
        "calm": calm, "evil": evil,
        "staff": factories.make_user("staff", district),
    }


def _json_report(client: Any, user: Any, **query: Any) -> dict[str, Any]:
    response = client.get(REPORT, query_string=query, headers=factories.headers_for(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _export(client: Any, user: Any, headers: dict[str, str] | None = None, **query: Any) -> Any:
    # buffered: the body is read and the response closed, as a server does (it closes the temporary file)
    return client.get(EXPORT, query_string=query, headers=factories.headers_for(user, **(headers or {})), buffered=True)


def _workbook(response: Any) -> Any:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == XLSX_MIMETYPE
    return load_workbook(io.BytesIO(response.get_data()))


def _records(sheet: Worksheet) -> list[dict[str, Any]]:
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _figure(figures: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        figures = figures[key]
    return figures


def _assert_same_figures(record: dict[str, Any], figures: dict[str, Any]) -> None:
    for header, path in FIGURES.items():
        expected = None if figures.get(path[0]) is None else _figure(figures, path)
        assert record[header] == expected, (header, record[header], expected)


def test_neutralise_prefixes_what_a_spreadsheet_would_run() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", EVIL_GRID):
        assert neutralise(text) == "'" + text
    for value in ("李四", "a=b", " =1", "", "'=already", 12, -3, 0.5, None, date(2026, 9, 1)):
        assert neutralise(value) == value


def test_the_workbook_holds_the_reports_figures_sheet_by_sheet(client: Any, world: dict[str, Any]) -> None:
    query = {"area_id": world["community"].id, **SEPTEMBER, "series": "week"}
    report = _json_report(client, world["staff"], **query)
    workbook = _workbook(_export(client, world["staff"], EN, **query, format="xlsx"))
    assert workbook.sheetnames == ["Area", "Grids", "Series"]
    (area,) = _records(workbook["Area"])
    assert area["Level"] == "community" and area["ID"] == world["community"].id and area["Name"] == report["area"]["name"]
    assert area["From"] == datetime(2026, 9, 1) and area["To"] == datetime(2026, 9, 30)
    _assert_same_figures(area, report["figures"])
    assert area["Served hours"] == 8.83 and area["Attendance rate"] == 0.75 and area["Fill rate"] == 0.8
    grids = _records(workbook["Grids"])
    assert [row["ID"] for row in grids] == [child["id"] for child in report["children"]]
    for row, child in zip(grids, report["children"], strict=True):
        _assert_same_figures(row, child["figures"])
    series = _records(workbook["Series"])
    assert [row["Name"] for row in series] == [point["label"] for point in report["series"]]
    assert {row["Level"] for row in series} == {"week"}
    for row, point in zip(series, report["series"], strict=True):
        _assert_same_figures(row, point)
        assert row["Volunteers approved"] is None  # a stock, not a flow: not per week


def test_a_grids_workbook_lists_its_volunteers(client: Any, world: dict[str, Any]) -> None:
    query = {"area_id": world["grid"].id, **SEPTEMBER}
    report = _json_report(client, world["staff"], **query)
    workbook = _workbook(_export(client, world["staff"], EN, **query))
    assert workbook.sheetnames == ["Area", "Volunteers"]
    volunteers = _records(workbook["Volunteers"])
    assert [row["ID"] for row in volunteers] == [world["calm"].id, world["evil"].id]
    assert {row["Level"] for row in volunteers} == {"volunteer"}
    for row, child in zip(volunteers, report["children"], strict=True):
        _assert_same_figures(row, child["figures"])
        assert row["Shifts planned"] is None  # shifts are no volunteer's


def test_the_workbook_layout(client: Any, world: dict[str, Any]) -> None:
    workbook = _workbook(_export(client, world["staff"], EN, area_id=world["community"].id, **SEPTEMBER))
    sheet = workbook["Grids"]
    assert sheet.freeze_panes == "A2"
    assert all(cell.font.b for cell in sheet[1])
    headers = [cell.value for cell in sheet[1]]
    row = {header: cell for header, cell in zip(headers, sheet[2], strict=True)}
    assert row["Served hours"].number_format == "0.0"
    assert row["Attendance rate"].number_format == "0.0%"
    assert row["Assignments"].number_format == "0"
    assert row["From"].number_format == "yyyy-mm-dd" and row["As of"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert row["Name"].data_type == "s" and row["Assignments"].data_type == "n"
    widths = {letter: dimension.width for letter, dimension in sheet.column_dimensions.items()}
    assert widths["C"] >= 16 and widths["F"] >= 20


def test_headers_are_chinese_by_default_and_english_on_request(client: Any, world: dict[str, Any]) -> None:
    query = {"area_id": world["community"].id, **SEPTEMBER}
    chinese = _workbook(_export(client, world["staff"], **query))
    assert chinese.sheetnames == ["本区域", "网格"]
    headers = [cell.value for cell in chinese["网格"][1]]
    assert headers[:3] == ["层级", "编号", "名称"] and "服务时长（小时）" in headers and "出勤率" in headers
    english = _workbook(_export(client, world["staff"], EN, **query))
    assert [cell.value for cell in english["Grids"][1]][:3] == ["Level", "ID", "Name"]
    text = _export(client, world["staff"], EN, **query, format="csv").get_data(as_text=True)
    assert text.startswith(UTF8_BOM + "Level,ID,Name,From,To,As of,")


def test_the_csv_is_one_table_with_a_level_column(client: Any, world: dict[str, Any]) -> None:
    query = {"area_id": world["community"].id, **SEPTEMBER, "series": "week"}
    report = _json_report(client, world["staff"], **query)
    response = _export(client, world["staff"], EN, **query, format="csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8; header=present"
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf")
    records = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    levels = [record["Level"] for record in records]
    assert levels == ["community"] + ["grid"] * len(report["children"]) + ["week"] * len(report["series"])
    area = records[0]
    assert area["From"] == "2026-09-01" and area["To"] == "2026-09-30"
    children = records[1 : 1 + len(report["children"])]
    rows_and_figures = [(area, report["figures"]), *zip(children, [c["figures"] for c in report["children"]], strict=True)]
    for record, figures in rows_and_figures:
        for header, path in FIGURES.items():
            value = _figure(figures, path)
            assert record[header] == ("" if value is None else str(value)), header


def test_formulas_in_names_are_neutralised_in_both_formats(client: Any, world: dict[str, Any]) -> None:
    community = {"area_id": world["community"].id, **SEPTEMBER}
    grids = _records(_workbook(_export(client, world["staff"], EN, **community))["Grids"])
    assert grids[1]["Name"] == "'" + EVIL_GRID
    volunteers = _records(_workbook(_export(client, world["staff"], EN, area_id=world["grid"].id, **SEPTEMBER))["Volunteers"])
    assert volunteers[1]["Name"] == "'" + EVIL_VOLUNTEER
    text = _export(client, world["staff"], EN, area_id=world["grid"].id, **SEPTEMBER, format="csv").get_data(as_text=True)
    names = [record["Name"] for record in csv.DictReader(io.StringIO(text.lstrip(UTF8_BOM)))]
    assert names[2] == "'" + EVIL_VOLUNTEER
    assert not any(name.startswith(("=", "+", "-", "@")) for name in names)


def test_the_format_follows_the_accept_header_without_format(client: Any, world: dict[str, Any]) -> None:
    query = {"area_id": world["community"].id, **SEPTEMBER}
    assert _export(client, world["staff"], {"Accept": "text/csv"}, **query).mimetype == "text/csv"
    assert _export(client, world["staff"], {"Accept": "*/*"}, **query).mimetype == XLSX_MIMETYPE
    octets = _export(client, world["staff"], {"Accept": "application/octet-stream"}, **query)
    assert octets.mimetype == "application/octet-stream" and octets.get_data().startswith(b"PK")


def test_the_file_name_has_an_ascii_fallback_and_the_area_name(client: Any, world: dict[str, Any]) -> None:
    community = world["community"]
    response = _export(client, world["staff"], area_id=community.id, **SEPTEMBER, format="csv")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="participation-{community.id}-2026-09.csv"; ')
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == f"参与情况-{community.name}-2026-09.csv"
    assert disposition.isascii()
    assert response.headers["Cache-Control"] == "private, no-store"


def test_refusals(client: Any, world: dict[str, Any]) -> None:
    other_district = factories.make_area(AreaLevel.DISTRICT, world["city"])
    outsider = factories.make_user("staff", other_district)
    community = {"area_id": world["community"].id, **SEPTEMBER}
    assert_problem(_export(client, outsider, **community), 403, "out_of_scope")
    assert _export(client, world["calm"].user, **community).status_code == 403
    body = assert_problem(_export(client, world["staff"], **community, format="pdf"), 422, "validation_failed")
    assert "format" in body["errors"]
    assert_problem(_export(client, world["staff"], {"Accept": "application/json"}, **community), 406, "not_acceptable")
    bad_period = {"area_id": world["community"].id, "period": "month", "value": "2026-13"}
    assert "value" in assert_problem(_export(client, world["staff"], **bad_period), 422, "validation_failed")["errors"]
    inverted = {"area_id": world["community"].id, "from": "2026-09-30", "to": "2026-09-01"}
    assert "to" in assert_problem(_export(client, world["staff"], **inverted), 422, "validation_failed")["errors"]
    assert client.get(EXPORT, query_string=community).status_code == 401


def test_the_writers_read_rows_once_as_they_come() -> None:
    """Rows from a generator: each is read once, and the outputs hold every one of them."""
    columns = [Column("n", CellKind.INTEGER), Column("name", CellKind.TEXT), Column("hours", CellKind.DECIMAL)]
    count = 2500

    def rows() -> Any:
        for number in range(count):
            yield [number, f"=x{number}" if number % 2 else f"v{number}", number / 10]

    chunks = list(csv_chunks(columns, rows()))
    assert len(chunks) > 1  # streamed in pieces, not one string
    lines = b"".join(chunks).decode("utf-8-sig").splitlines()
    assert len(lines) == count + 1 and lines[2] == "1,'=x1,0.1"
    spool = io.BytesIO()
    write_xlsx([Sheet("rows", columns, rows())], spool)
    sheet = load_workbook(spool)["rows"]
    assert sheet.max_row == count + 1 and sheet["B3"].value == "'=x1" and sheet["C3"].value == 0.1

