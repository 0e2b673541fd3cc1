"""The overview in a real browser: staff sign in and land on it, its trend chart is drawn (the canvas
has pixels), the layout holds on an office screen and a tablet, and nothing foreign loads."""

from __future__ import annotations

from tests.console.conftest import TABLET, Visit

#: Pixels of the chart's canvas that are not fully transparent (ECharts draws axes, labels and
#: the legend even for a month of zeros; a chart that failed to draw leaves none).
_PAINTED = """(element) => {
  const canvas = element.querySelector('canvas');
  if (!canvas) { return -1; }
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) { painted += 1; } }
  return painted;
}"""


def test_staff_sign_in_and_land_on_the_overview_with_its_chart_drawn(visit: Visit) -> None:
    page = visit.page
    visit.sign_in("staff")
    assert page.url.endswith("/console/overview/")
    assert page.locator("nav.mainnav a.active").get_attribute("href") == "/console/overview/"
    chart = page.locator("[data-test=trend-chart]")
    chart.locator("canvas").wait_for()
    assert chart.get_attribute("data-drawn") == "true"
    assert chart.evaluate(_PAINTED) > 1000
    assert page.locator("[data-test=figures] .figure").count() == 5
    assert page.locator("[data-test=weak-grid]").count() == 10  # the demo district has more than ten grids
    assert page.locator("[data-test=attention] h3").count() == 4
    # No horizontal scroll on the office screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    visit.screenshot("overview")
    page.set_viewport_size(TABLET)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    visit.screenshot("overview-tablet")
    # A weak grid's link leads to its participation page (built beside this one).
    href = page.locator("[data-test=weak-grid] a").first.get_attribute("href")
    assert href is not None and href.startswith("/console/participation/?area=")
    visit.assert_clean()


def test_an_organiser_cannot_open_the_districts_overview_by_editing_the_url(visit: Visit) -> None:
    district_id = visit.site.sql("SELECT area_id FROM users WHERE phone = :phone",
                                 phone=visit.site.logins["staff"]["phone"])[0][0]
    visit.sign_in("organiser")
    response = visit.page.goto(f"/console/overview/?area={district_id}")
    assert response is not None and response.status == 403
    assert visit.page.locator("[data-test=figures]").count() == 0
    visit.screenshot("overview-out-of-scope")
    # Chromium logs the page's own 403 as a failed resource: the one error expected here.
    visit.script_errors = [error for error in visit.script_errors if "status of 403" not in error]
    visit.assert_clean()
