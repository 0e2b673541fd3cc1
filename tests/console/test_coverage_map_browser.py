"""The coverage map in Chromium on the demo site: the grids are drawn on the canvas from their stored
boundaries (no tile, nothing fetched elsewhere), the tooltip names a grid, and a click on a grid opens
its participation page.

On today's demo data coverage may be nil everywhere (grey grids); with the richer demo (a month of
served shifts, good and bad coverage) the same test sees coloured grids and figures in the tooltip."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.console.conftest import TABLET, Visit

#: Pixels of the chart's canvas that are neither blank nor the page's white.
_PAINTED = """(element) => {
  const canvas = element.querySelector('canvas');
  if (!canvas) { return 0; }
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i + 3] > 0 && !(pixels[i] > 250 && pixels[i + 1] > 250 && pixels[i + 2] > 250)) { painted++; }
  }
  return painted;
}"""
_TO_PIXEL = "(point) => window.Shouwang.charts['coverage-map'].convertToPixel({seriesIndex: 0}, point)"
_NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
#: Resolves after the next frame, once the window's resize event (dispatched before frame callbacks) has run.
_NEXT_FRAME = "() => new Promise((resolve) => requestAnimationFrame(() => resolve(true)))"


def test_staff_see_their_districts_grids_and_click_one_to_its_participation(visit: Visit) -> None:
    page = visit.page
    visit.sign_in("staff")
    page.goto("/console/coverage_map/")
    chart = page.locator("[data-test=coverage-map]")
    chart.and_(page.locator("[data-drawn=true]")).wait_for()
    page.wait_for_function(f"() => ({_PAINTED})(document.querySelector('[data-test=coverage-map]')) > 1000")
    data = page.evaluate("() => window.Shouwang.data('coverage-map-data')")
    assert len(data["grids"]) == len(data["geojson"]["features"]) > 1
    assert page.evaluate(_NO_SIDEWAYS_SCROLL)
    visit.screenshot("coverage-map")

    grid = data["grids"][0]
    x, y = page.evaluate(_TO_PIXEL, grid["point"])
    box = chart.bounding_box()
    assert box is not None and 0 < x < box["width"] and 0 < y < box["height"]
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.get_by_text(grid["grid_name"], exact=True).last.wait_for()  # the tooltip names the grid
    visit.screenshot("coverage-map-tooltip")
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url("**/console/participation/**")
    landed = urlsplit(page.url)
    assert landed.path == "/console/participation/"
    assert parse_qs(landed.query)["area"] == [str(grid["grid_id"])]
    assert page.locator("[data-test=participation-title]").get_attribute("data-area") == str(grid["grid_id"])
    visit.assert_clean()


def test_the_map_fits_a_tablet(visit: Visit) -> None:
    page = visit.page
    page.set_viewport_size(TABLET)
    visit.sign_in("admin")
    page.goto("/console/coverage_map/")
    page.locator("[data-test=coverage-map][data-drawn=true]").wait_for()
    assert page.evaluate(_NO_SIDEWAYS_SCROLL)
    visit.screenshot("coverage-map-tablet")
    visit.assert_clean()


def test_a_window_squeezed_to_nothing_and_back_keeps_the_map(visit: Visit) -> None:
    """A resize that leaves the map no room is not drawn (ECharts' map threw on a zero-wide chart:
    "Cannot read properties of null (reading '0')", seen when a full-page screenshot briefly made the
    window 1x1 on a loaded machine); the next resize with room draws it at the new size."""
    page = visit.page
    visit.sign_in("staff")
    page.goto("/console/coverage_map/")
    page.locator("[data-test=coverage-map][data-drawn=true]").wait_for()
    page.set_viewport_size({"width": 1, "height": 1})
    page.wait_for_function("() => window.innerWidth === 1")
    page.evaluate(_NEXT_FRAME)
    assert visit.script_errors == []
    page.set_viewport_size(TABLET)
    page.wait_for_function("() => window.innerWidth === 1024")
    page.evaluate(_NEXT_FRAME)
    chart = page.locator("[data-test=coverage-map]")
    width = page.evaluate("() => window.Shouwang.charts['coverage-map'].getWidth()")
    box = chart.bounding_box()
    assert box is not None and width == round(box["width"]) > 0
    page.wait_for_function(f"() => ({_PAINTED})(document.querySelector('[data-test=coverage-map]')) > 1000")
    visit.assert_clean()
