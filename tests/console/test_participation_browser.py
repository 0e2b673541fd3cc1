"""The participation page in Chromium on the demo site: staff drill down by clicking, from their
district through a sub-district and a community to a grid and one of its volunteers, and download
the grid's workbook, which holds the rows the table showed.

On today's demo data the figures are mostly zeros (the tables and links are there all the same);
with the richer demo (a month of served shifts) the same test compares non-zero figures."""

from __future__ import annotations

import json
from pathlib import Path

from openpyxl import load_workbook
from playwright.sync_api import Page

from console.participation.routes import COLUMNS
from reports.exports.participation import FIELDS, KEY_HEADERS
from tests.console.conftest import TABLET, Visit

_NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def _level(page: Page) -> str:
    return page.locator("[data-test=participation-title]").get_attribute("data-level") or ""


def _drill_into_first_child(page: Page) -> str:
    link = page.locator("[data-test=child-row] a[data-test=drill]").first
    target = link.get_attribute("data-id") or ""
    link.click()
    page.wait_for_load_state("load")
    return target


def _table(page: Page) -> list[dict[str, object]]:
    """Each row the table shows: its id, name and the figures behind its cells."""
    rows = []
    for row in page.locator("[data-test=child-row]").all():
        cells = {
            cell.get_attribute("data-key"): json.loads(cell.get_attribute("data-value") or "null")
            for cell in row.locator("td[data-key]").all()
        }
        name = row.locator("a[data-test=drill]").inner_text()
        rows.append({"id": int(row.get_attribute("data-id") or 0), "name": name, **cells})
    return rows


def test_staff_drill_down_to_a_volunteer_and_download_the_grids_workbook(visit: Visit, tmp_path: Path) -> None:
    page = visit.page
    visit.sign_in("staff")
    page.goto("/console/participation/")
    levels = []
    for expected in ("district", "subdistrict", "community", "grid"):
        assert _level(page) == expected
        levels.append(expected)
        assert page.locator("[data-test=crumb]").count() == len(levels)  # from the district down, never the city
        assert page.evaluate(_NO_SIDEWAYS_SCROLL)
        visit.screenshot(f"participation-{expected}")
        if expected != "grid":
            child = _drill_into_first_child(page)
            assert page.locator("[data-test=participation-title]").get_attribute("data-area") == child

    shown = _table(page)
    assert shown and page.locator("[data-test=participation-table]").get_attribute("data-children-level") == "volunteer"
    with page.expect_download() as arriving:
        page.click("[data-test=download-xlsx]")
    saved = tmp_path / arriving.value.suggested_filename
    arriving.value.save_as(saved)
    assert saved.suffix == ".xlsx"
    workbook = load_workbook(saved)
    area_rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert len(area_rows[0]) == len(KEY_HEADERS) + len(FIELDS) and all(area_rows[0])  # the header row
    grid_id = int(page.locator("[data-test=participation-title]").get_attribute("data-area") or 0)
    assert [(row[0], row[1]) for row in area_rows[1:]] == [("grid", grid_id)]
    volunteer_rows = list(workbook.worksheets[1].iter_rows(values_only=True))[1:]
    assert [(row[1], row[2]) for row in volunteer_rows] == [(row["id"], row["name"]) for row in shown]
    column_of = {field.path: len(KEY_HEADERS) + index for index, field in enumerate(FIELDS)}
    for file_row, table_row in zip(volunteer_rows, shown, strict=True):
        for _label, path, _kind in COLUMNS:
            assert file_row[column_of[path]] == table_row[".".join(path)], (path, file_row, table_row)

    volunteer = _drill_into_first_child(page)
    assert page.locator("[data-test=volunteer-title]").get_attribute("data-id") == volunteer
    assert page.locator("[data-test=crumb]").count() == 4
    assert page.locator("[data-test=volunteer-figures] td[data-key='presence.served_hours']").count() == 1
    visit.screenshot("participation-volunteer")
    visit.assert_clean()


def test_the_period_picker_and_a_tablet(visit: Visit) -> None:
    page = visit.page
    page.set_viewport_size(TABLET)
    visit.sign_in("organiser")
    page.goto("/console/participation/")
    page.select_option("[data-test=period-kind]", "quarter")
    page.fill("[data-test=period-value]", "2026-Q3")
    page.click("[data-test=period-apply]")
    page.wait_for_load_state("load")
    assert page.locator("[data-test=period]").get_attribute("data-label") == "2026-Q3"
    assert page.evaluate(_NO_SIDEWAYS_SCROLL)
    visit.screenshot("participation-tablet")
    visit.assert_clean()
    page.select_option("[data-test=period-kind]", "month")
    page.fill("[data-test=period-value]", "2026-13")
    with page.expect_navigation() as refused:
        page.click("[data-test=period-apply]")
    assert refused.value is not None and refused.value.status == 422  # the API's refusal, as a page
    assert page.locator("[data-test=participation-table]").count() == 0
